//! Box-and-whisker statistics.
//!
//! Quartiles use linear interpolation between order statistics — R's default "type 7",
//! NumPy's default `linear`: for sorted x₁…xₙ and p in [0, 1], h = (n−1)·p + 1 and
//! Q(p) = x⌊h⌋ + (h − ⌊h⌋)·(x⌊h⌋+1 − x⌊h⌋). Whiskers follow Tukey: the furthest values
//! within 1.5 × IQR of the box; values beyond are outliers.

use serde::{Deserialize, Serialize};

/// Groups smaller than this are flagged: their box says little.
pub const MIN_GROUP: usize = 4;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BoxStats {
    pub n: usize,
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
    pub mean: f64,
    pub whisker_low: f64,
    pub whisker_high: f64,
    pub outliers: Vec<f64>,
    /// Fewer than [`MIN_GROUP`] values.
    pub too_few: bool,
}

/// Q(p) of sorted values (type 7). `sorted` must be non-empty.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Interpolates from the two order statistics around (n−1)·p (as the SQL query returns
/// them): the same formula as [`quantile`].
pub fn interpolate(n: usize, p: f64, lo: f64, hi: Option<f64>) -> f64 {
    let h = (n.saturating_sub(1)) as f64 * p;
    lo + (h - h.floor()) * (hi.unwrap_or(lo) - lo)
}

/// Tukey whiskers and outliers for sorted values given the quartiles.
pub fn whiskers(sorted: &[f64], q1: f64, q3: f64) -> (f64, f64, Vec<f64>) {
    let iqr = q3 - q1;
    let (lo_fence, hi_fence) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    let inside = || sorted.iter().copied().filter(|v| *v >= lo_fence && *v <= hi_fence);
    let low = inside().next().unwrap_or(q1);
    let high = inside().last().unwrap_or(q3);
    let outliers = sorted.iter().copied().filter(|v| *v < lo_fence || *v > hi_fence).collect();
    (low, high, outliers)
}

/// All statistics of `values` (sorted here). `None` for no values.
pub fn summarize(mut values: Vec<f64>) -> Option<BoxStats> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let (q1, median, q3) = (quantile(&values, 0.25), quantile(&values, 0.5), quantile(&values, 0.75));
    let (whisker_low, whisker_high, outliers) = whiskers(&values, q1, q3);
    Some(BoxStats {
        n: values.len(),
        min: values[0],
        q1,
        median,
        q3,
        max: values[values.len() - 1],
        mean: values.iter().sum::<f64>() / values.len() as f64,
        whisker_low,
        whisker_high,
        outliers,
        too_few: values.len() < MIN_GROUP,
    })
}

/// Where `wage` falls against market percentiles (p10, p25, p50, p75, p90), by linear
/// interpolation between them; outside the range it is clamped to 10 or 90 and marked.
pub fn market_percentile(wage: f64, p: [Option<f64>; 5]) -> Option<(f64, bool)> {
    let points: Vec<(f64, f64)> = [10.0, 25.0, 50.0, 75.0, 90.0].into_iter().zip(p).filter_map(|(pct, v)| v.map(|v| (pct, v))).collect();
    let (first, last) = (points.first()?, points.last()?);
    if wage <= first.1 {
        return Some((first.0, wage < first.1));
    }
    if wage >= last.1 {
        return Some((last.0, wage > last.1));
    }
    for w in points.windows(2) {
        let ((p0, v0), (p1, v1)) = (w[0], w[1]);
        if wage <= v1 {
            let t = if v1 > v0 { (wage - v0) / (v1 - v0) } else { 0.0 };
            return Some((p0 + t * (p1 - p0), false));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_example() {
        // 1..9 and 20: Q1 3.25, median 5.5, Q3 7.75; fences -3.5 and 14.5.
        let s = summarize(vec![20.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (3.25, 5.5, 7.75));
        assert_eq!((s.whisker_low, s.whisker_high), (1.0, 9.0));
        assert_eq!(s.outliers, vec![20.0]);
        assert_eq!((s.min, s.max, s.n, s.too_few), (1.0, 20.0, 10, false));
        assert!((s.mean - 6.5).abs() < 1e-12);
    }

    #[test]
    fn matches_numpy_linear_on_other_shapes() {
        // numpy.percentile([7, 15, 36, 39, 40, 41], [25, 50, 75]) = [20.25, 37.5, 39.75]
        let s = summarize(vec![7.0, 15.0, 36.0, 39.0, 40.0, 41.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (20.25, 37.5, 39.75));
        let one = summarize(vec![42.0]).unwrap();
        assert_eq!((one.q1, one.median, one.q3, one.too_few), (42.0, 42.0, 42.0, true));
        assert_eq!(interpolate(6, 0.25, 15.0, Some(36.0)), 20.25);
        assert_eq!(interpolate(1, 0.75, 42.0, None), 42.0);
        assert!(summarize(vec![]).is_none());
    }

    #[test]
    fn market_position_interpolates_between_percentiles() {
        let m = [Some(50.0), Some(60.0), Some(80.0), Some(100.0), Some(120.0)];
        assert_eq!(market_percentile(70.0, m), Some((37.5, false)));
        assert_eq!(market_percentile(80.0, m), Some((50.0, false)));
        assert_eq!(market_percentile(40.0, m), Some((10.0, true)), "below p10");
        assert_eq!(market_percentile(200.0, m), Some((90.0, true)), "above p90");
        assert_eq!(market_percentile(70.0, [None; 5]), None);
    }
}
