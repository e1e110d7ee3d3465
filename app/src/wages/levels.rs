//! The four prevailing-wage levels of the Department of Labor, estimated from the OEWS
//! wage distribution of an occupation in an area.
//!
//! An employer filing an LCA must pay at least the prevailing wage for the job's level.
//! Since the 2021 rule the levels sit at about the 17th (Level I), 34th (II), 50th (III)
//! and 67th (IV) percentile of the OEWS distribution for the occupation and area. OEWS
//! publishes the 10th, 25th, 50th, 75th and 90th percentiles; the level wages here are
//! interpolated linearly between the published ones, an estimate rather than the DOL's
//! own figure (which the FLAG system computes from the full survey).

/// The percentile each level sits at.
pub const LEVEL_PERCENTILES: [f64; 4] = [17.0, 34.0, 50.0, 67.0];
/// The percentiles OEWS publishes, in the order they are passed here.
const PUBLISHED: [f64; 5] = [10.0, 25.0, 50.0, 75.0, 90.0];

/// The estimated Level I–IV wages from the published percentiles (p10, p25, p50, p75,
/// p90); `None` when a percentile a level needs is not published.
pub fn level_wages(published: [Option<f64>; 5]) -> Option<[f64; 4]> {
    let mut out = [0.0; 4];
    for (slot, p) in out.iter_mut().zip(LEVEL_PERCENTILES) {
        // The published pair around p: 17 and 34 between p10/p25 and p25/p50, 67 between p50/p75.
        let upper = PUBLISHED.iter().position(|q| *q >= p)?;
        if PUBLISHED[upper] == p {
            *slot = published[upper]?;
            continue;
        }
        let (p0, p1) = (PUBLISHED[upper - 1], PUBLISHED[upper]);
        let (w0, w1) = (published[upper - 1]?, published[upper]?);
        *slot = w0 + (p - p0) / (p1 - p0) * (w1 - w0);
    }
    Some(out)
}

/// The highest level a wage meets: 0 below Level I, 1–4 for Levels I–IV.
pub fn level_met(wage: f64, levels: &[f64; 4]) -> u8 {
    levels.iter().take_while(|l| wage >= **l).count() as u8
}

/// "below Level I", "Level II", … as the page says it.
pub fn level_name(met: u8) -> &'static str {
    ["below Level I", "Level I", "Level II", "Level III", "Level IV"][met.min(4) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_interpolate_between_the_published_percentiles() {
        // p10 50k, p25 65k, p50 80k, p75 100k, p90 130k, worked by hand:
        // L I  = 50k + (17−10)/(25−10)·15k = 57,000
        // L II = 65k + (34−25)/(50−25)·15k = 70,400
        // L III = p50 = 80,000
        // L IV = 80k + (67−50)/(75−50)·20k = 93,600
        let levels = level_wages([Some(50e3), Some(65e3), Some(80e3), Some(100e3), Some(130e3)]).unwrap();
        for (got, want) in levels.iter().zip([57_000.0, 70_400.0, 80_000.0, 93_600.0]) {
            assert!((got - want).abs() < 1e-6, "{levels:?}");
        }
        assert_eq!(level_met(56_999.0, &levels), 0);
        assert_eq!(level_met(57_000.0, &levels), 1);
        assert_eq!(level_met(79_999.0, &levels), 2);
        assert_eq!(level_met(93_600.0, &levels), 4);
        assert_eq!(level_name(2), "Level II");
    }

    #[test]
    fn a_missing_percentile_leaves_the_levels_unknown() {
        assert!(level_wages([Some(50e3), None, Some(80e3), Some(100e3), Some(130e3)]).is_none());
        // p90 is not needed for any level.
        assert!(level_wages([Some(50e3), Some(65e3), Some(80e3), Some(100e3), None]).is_some());
    }
}
