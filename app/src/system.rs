//! The operator's view (admins): what `/readyz` and `/metrics` know, in pictures. This
//! process samples its own metrics every [`SAMPLE_EVERY`] and keeps the last hour in
//! memory, so the page needs no monitoring stack; each server process shows its own
//! traffic (behind a load balancer, look at each, or scrape `/metrics`).

use crate::error::AppError;
use crate::ui::{Audience, Loaded};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// How often a sample is taken, in seconds.
pub const SAMPLE_EVERY_SECS: u64 = 15;
/// Samples kept: one hour.
pub const SAMPLES_KEPT: usize = 240;

/// One line of figures over the last hour, oldest first (`None`: no sample yet, or
/// nothing to divide by).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub unit: String,
    pub points: Vec<Option<f64>>,
}

impl Series {
    pub fn last(&self) -> Option<f64> {
        self.points.iter().rev().find_map(|p| *p)
    }
}

/// The System page's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemView {
    /// (part, ready) as `/readyz` answers now.
    pub ready: Vec<(String, bool)>,
    /// Whole-process figures: request rate and latency, job queue, broker, archive, spool.
    pub process: Vec<Series>,
    /// Request rate and mean latency by route, busiest first.
    pub routes: Vec<(String, Series, Series)>,
    /// Deliveries waiting on scheduled lanes, by subscription id.
    pub backlog: Vec<(i64, Series)>,
    pub sample_every_secs: u64,
}

#[server(prefix = "/_fn", endpoint = "system_view")]
pub async fn load_system() -> Result<SystemView, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    sampling::view(&state, &caller).await
}

/// A sparkline: the series as a polyline scaled to its own maximum, with its points also
/// given as text for screen readers (the figures beside it).
#[component]
fn Sparkline(series: Series) -> impl IntoView {
    const W: f64 = 240.0;
    const H: f64 = 40.0;
    let max = series.points.iter().flatten().copied().fold(0.0_f64, f64::max);
    let n = series.points.len().max(2) as f64 - 1.0;
    let line: String = series
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|v| format!("{:.1},{:.1}", i as f64 / n * W, H - if max > 0.0 { v / max * (H - 2.0) } else { 0.0 } - 1.0)))
        .collect::<Vec<_>>()
        .join(" ");
    let label = format!("{} over the last hour, up to {}", series.name, figure(Some(max), &series.unit));
    view! {
        <svg class="sparkline" viewBox=format!("0 0 {W} {H}") width="240" height="40" role="img" aria-label=label>
            <polyline points=line fill="none" stroke="currentColor" stroke-width="1.5"/>
        </svg>
    }
}

fn figure(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "—".into(),
        Some(v) if v >= 100.0 || v == v.trunc() => format!("{v:.0} {unit}"),
        Some(v) => format!("{v:.2} {unit}"),
    }
}

#[component]
pub fn SystemPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_system());
    view! {
        <main class="page">
            <h1>"System"</h1>
            <p class="lead">"This process's health, traffic and queues over the last hour."</p>
            <Loaded data=data audience={Audience::Admins} page=move |v| view! {
                <section class="card" data-testid="readiness">
                    <h2>"Ready"</h2>
                    <ul class="row">
                        {v.ready.into_iter().map(|(part, ok)| view! {
                            <li><span class=if ok { "badge ok" } else { "badge danger" }>{part}": "{if ok { "ok" } else { "unavailable" }}</span></li>
                        }).collect_view()}
                    </ul>
                </section>
                <section class="card" data-testid="process">
                    <h2>"This process"</h2>
                    <p class="hint">{format!("A sample every {} s; the line spans the last hour.", v.sample_every_secs)}</p>
                    <table class="data">
                        <thead><tr><th>"Figure"</th><th class="num">"Now"</th><th>"Last hour"</th></tr></thead>
                        <tbody>
                            {v.process.into_iter().map(|s| {
                                let (name, key, now) = (s.name.clone(), s.name.clone(), figure(s.last(), &s.unit));
                                view! {
                                    <tr data-testid="figure" data-name=key>
                                        <td>{name}</td>
                                        <td class="num" data-testid="now">{now}</td>
                                        <td><Sparkline series=s/></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </section>
                <section class="card" data-testid="backlog">
                    <h2>"Broker backlog by subscription"</h2>
                    <p class="hint">"Deliveries waiting on lanes being worked through; paused and blocked lanes are on each subscriber's page."</p>
                    {if v.backlog.is_empty() {
                        view! { <p class="empty">"Nothing waiting."</p> }.into_any()
                    } else {
                        view! {
                            <table class="data">
                                <thead><tr><th>"Subscription"</th><th class="num">"Waiting"</th><th>"Last hour"</th></tr></thead>
                                <tbody>
                                    {v.backlog.into_iter().map(|(id, s)| {
                                        let now = figure(s.last(), &s.unit);
                                        view! { <tr><td>{format!("#{id}")}</td><td class="num">{now}</td><td><Sparkline series=s/></td></tr> }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }}
                </section>
                <section class="card" data-testid="routes">
                    <h2>"Requests by route"</h2>
                    {if v.routes.is_empty() {
                        view! { <p class="empty">"No requests sampled yet."</p> }.into_any()
                    } else {
                        view! {
                            <table class="data">
                                <thead><tr><th>"Route"</th><th class="num">"Requests"</th><th>"Rate"</th><th class="num">"Mean latency"</th><th>"Latency"</th></tr></thead>
                                <tbody>
                                    {v.routes.into_iter().map(|(route, rate, latency)| {
                                        let (rate_now, latency_now) = (figure(rate.last(), &rate.unit), figure(latency.last(), &latency.unit));
                                        view! {
                                            <tr data-testid="route">
                                                <td class="mono">{route}</td>
                                                <td class="num">{rate_now}</td>
                                                <td><Sparkline series=rate/></td>
                                                <td class="num">{latency_now}</td>
                                                <td><Sparkline series=latency/></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }}
                </section>
            }.into_any()/>
        </main>
    }
}

#[cfg(feature = "ssr")]
pub mod sampling {
    //! The samples: this process's Prometheus text, read back every [`SAMPLE_EVERY_SECS`]
    //! and turned into rates (counter differences) and levels (gauges).

    use super::*;
    use crate::accounts::Caller;
    use crate::platform::state::AppState;
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Where the samples come from: the process's metrics in Prometheus text format
    /// (composed by the server, which owns the recorder).
    #[derive(Clone)]
    pub struct MetricsText(pub Arc<dyn Fn() -> String + Send + Sync>);

    /// Sums of the series this page draws, by name, and per route for the HTTP ones.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Reading {
        /// When it was taken (rates divide by the real time between two).
        pub at: Option<std::time::Instant>,
        pub totals: BTreeMap<String, f64>,
        /// route → (requests, seconds spent)
        pub routes: BTreeMap<String, (f64, f64)>,
        /// subscription id → deliveries waiting (`broker_backlog`)
        pub backlog: BTreeMap<i64, f64>,
        /// Wall-clock seconds when taken (for ages of `*_timestamp_seconds` gauges).
        pub wall_secs: Option<f64>,
    }

    const REQUESTS: &str = "http_request_duration_seconds_count";
    const BACKLOG: &str = "broker_backlog";
    const LAST_ARCHIVE: &str = "chat_archive_last_run_timestamp_seconds";
    const REQUEST_SECONDS: &str = "http_request_duration_seconds_sum";
    /// Process figures: (metric, label, unit, a counter drawn as a rate).
    const FIGURES: &[(&str, &str, &str, bool)] = &[
        (REQUESTS, "HTTP requests", "/s", true),
        ("jobs_queue_depth", "Jobs due", "jobs", false),
        ("jobs_completed_total", "Jobs completed", "/s", true),
        ("broker_published_total", "Broker messages published", "/s", true),
        ("broker_deliveries_total", "Broker delivery attempts", "/s", true),
        ("chat_archived_total", "Chat messages archived", "/s", true),
        ("meetings_webhooks_spooled_total", "Webhooks spooled (database down)", "/s", true),
        ("meetings_spool_waiting", "Webhooks waiting in the spool (as this process last replayed it)", "webhooks", false),
        ("db_pool_connections", "Database connections", "conns", false),
    ];

    /// Reads Prometheus text: `name{labels} value [timestamp]` lines, comments skipped.
    pub fn read(text: &str) -> Reading {
        let mut r = Reading::default();
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let Some((name, labels, rest)) = split_sample(line) else { continue };
            let Some(Ok(value)) = rest.split_whitespace().next().map(str::parse::<f64>) else { continue };
            *r.totals.entry(name.to_owned()).or_default() += value;
            if name == BACKLOG {
                if let Some(id) = label(labels, "subscription").and_then(|id| id.parse().ok()) {
                    r.backlog.insert(id, value);
                }
            }
            if name == REQUESTS || name == REQUEST_SECONDS {
                let route = label(labels, "route").unwrap_or_else(|| "other".into());
                let entry = r.routes.entry(route).or_default();
                if name == REQUESTS { entry.0 += value } else { entry.1 += value }
            }
        }
        r
    }

    /// (name, the text between the braces, what follows): the braces are found outside
    /// quoted label values, which may hold `}` or an escaped `\"`.
    fn split_sample(line: &str) -> Option<(&str, &str, &str)> {
        let Some(open) = line.find('{') else {
            let (name, rest) = line.split_once(char::is_whitespace)?;
            return Some((name, "", rest));
        };
        let (mut quoted, mut escaped) = (false, false);
        for (i, c) in line[open + 1..].char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '}' if !quoted => return Some((&line[..open], &line[open + 1..open + 1 + i], &line[open + 2 + i..])),
                _ => {}
            }
        }
        None
    }

    /// The value of label `key` (unescaped), matched as a whole label name.
    fn label(labels: &str, key: &str) -> Option<String> {
        let (mut rest, mut value) = (labels, None);
        while let Some((name, after)) = rest.split_once("=\"") {
            let (mut out, mut escaped, mut end) = (String::new(), false, after.len());
            for (i, c) in after.char_indices() {
                match c {
                    _ if escaped => {
                        out.push(if c == 'n' { '\n' } else { c });
                        escaped = false;
                    }
                    '\\' => escaped = true,
                    '"' => {
                        end = i;
                        break;
                    }
                    c => out.push(c),
                }
            }
            if name.trim_start_matches(',').trim() == key {
                value = Some(out);
            }
            rest = after.get(end + 1..).unwrap_or("");
        }
        value
    }

    /// The last hour of readings (one per sample).
    #[derive(Clone, Default)]
    pub struct History(Arc<Mutex<VecDeque<Reading>>>);

    impl History {
        pub fn push(&self, r: Reading) {
            let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if h.len() == SAMPLES_KEPT + 1 {
                h.pop_front();
            }
            h.push_back(r);
        }

        fn readings(&self) -> Vec<Reading> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
        }

        /// Samples until `stop`: one at once, then every [`SAMPLE_EVERY_SECS`].
        pub async fn run(self, state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
            let source = state.part::<MetricsText>().clone();
            let mut tick = tokio::time::interval(Duration::from_secs(SAMPLE_EVERY_SECS));
            // After a stall, the next sample comes a period later, not in a burst.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        state.db.record_pool_gauges();
                        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs_f64());
                        self.push(Reading { at: Some(std::time::Instant::now()), wall_secs: wall, ..read(&(source.0)()) });
                    }
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// Seconds between two readings: as measured, else the sampling period.
    fn seconds(a: &Reading, b: &Reading) -> f64 {
        match (a.at, b.at) {
            (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
            _ => SAMPLE_EVERY_SECS as f64,
        }
    }

    /// The increase of a counter from `a` to `b`: as Prometheus counts it, a counter that
    /// went down was reset, and all of `b` is new.
    fn increase(a: f64, b: f64) -> f64 {
        if b >= a { b - a } else { b }
    }

    /// Rates between consecutive readings, or levels for gauges.
    pub fn series(readings: &[Reading]) -> (Vec<Series>, Vec<(String, Series, Series)>, Vec<(i64, Series)>) {
        let pad = |mut points: Vec<Option<f64>>| {
            let missing = SAMPLES_KEPT.saturating_sub(points.len());
            points.splice(0..0, std::iter::repeat_n(None, missing));
            points
        };
        let pairs = || readings.windows(2).map(|w| (&w[0], &w[1], seconds(&w[0], &w[1])));
        let process = FIGURES
            .iter()
            .map(|(metric, name, unit, counter)| {
                let value = |r: &Reading| r.totals.get(*metric).copied();
                let points = if *counter {
                    pairs().map(|(a, b, dt)| Some(increase(value(a).unwrap_or(0.0), value(b).unwrap_or(0.0)) / dt)).collect()
                } else {
                    readings.iter().skip(1).map(value).collect()
                };
                Series { name: (*name).into(), unit: (*unit).into(), points: pad(points) }
            })
            .collect::<Vec<_>>();
        // How long ago the archiver last ran (in whichever process; this one's gauge).
        let mut process = process;
        let ages = readings.iter().skip(1).map(|r| Some(r.wall_secs? - r.totals.get(LAST_ARCHIVE)?).map(|a| a.max(0.0))).collect();
        process.push(Series { name: "Since this process last ran the chat archiver".into(), unit: "s".into(), points: pad(ages) });
        let last = readings.last().cloned().unwrap_or_default();
        let backlog = last
            .backlog
            .keys()
            .map(|id| {
                let points = readings.iter().skip(1).map(|r| r.backlog.get(id).copied()).collect();
                (*id, Series { name: format!("subscription {id} backlog"), unit: "deliveries".into(), points: pad(points) })
            })
            // A subscription with nothing waiting all hour (or one deleted) is no row.
            .filter(|(_, s)| s.points.iter().flatten().any(|v| *v > 0.0))
            .collect();
        let first = readings.first().cloned().unwrap_or_default();
        let mut routes: Vec<(String, f64)> = last
            .routes
            .iter()
            .map(|(route, (n, _))| (route.clone(), n - first.routes.get(route).map(|f| f.0).unwrap_or(0.0)))
            .filter(|(_, n)| *n > 0.0)
            .collect();
        routes.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let routes = routes
            .into_iter()
            .map(|(route, _)| {
                let of = |r: &Reading| r.routes.get(&route).copied().unwrap_or_default();
                let rates = pairs().map(|(a, b, dt)| Some(increase(of(a).0, of(b).0) / dt)).collect();
                let latency = pairs()
                    .map(|(a, b, _)| {
                        let (n, secs) = (increase(of(a).0, of(b).0), increase(of(a).1, of(b).1));
                        (n > 0.0).then(|| secs / n * 1000.0)
                    })
                    .collect();
                let rate = Series { name: format!("{route} requests"), unit: "/s".into(), points: pad(rates) };
                let latency = Series { name: format!("{route} mean latency"), unit: "ms".into(), points: pad(latency) };
                (route, rate, latency)
            })
            .collect();
        (process, routes, backlog)
    }

    /// The page's data, for admins.
    pub async fn view(state: &AppState, caller: &Caller) -> Result<SystemView, AppError> {
        caller.require_admin()?;
        let ready = state.readiness().await.into_iter().map(|(part, ok)| (part.replace('_', " "), ok)).collect();
        let (process, routes, backlog) = series(&state.part::<History>().readings());
        Ok(SystemView {
            ready,
            process,
            routes,
            backlog,
            sample_every_secs: SAMPLE_EVERY_SECS,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const TEXT: &str = "# TYPE http_request_duration_seconds histogram\n\
            http_request_duration_seconds_bucket{method=\"GET\",route=\"/\",status=\"200\",le=\"0.005\"} 3\n\
            http_request_duration_seconds_sum{method=\"GET\",route=\"/\",status=\"200\"} 0.5\n\
            http_request_duration_seconds_count{method=\"GET\",route=\"/\",status=\"200\"} 10\n\
            http_request_duration_seconds_count{method=\"POST\",route=\"/chat\",status=\"201\"} 4\n\
            http_request_duration_seconds_sum{method=\"POST\",route=\"/chat\",status=\"201\"} 0.04\n\
            jobs_queue_depth 2\n";

        #[test]
        fn prometheus_text_is_read_by_name_and_route() {
            let r = read(TEXT);
            assert_eq!(r.totals[REQUESTS], 14.0);
            assert_eq!(r.totals["jobs_queue_depth"], 2.0);
            assert_eq!(r.routes["/"], (10.0, 0.5));
            assert_eq!(r.routes["/chat"], (4.0, 0.04));
        }

        #[test]
        fn backlog_by_subscription_and_the_archive_age_are_drawn() {
            let text = "broker_backlog{subscription=\"7\"} 12\nchat_archive_last_run_timestamp_seconds 1000\n";
            let a = Reading { wall_secs: Some(1010.0), ..read(text) };
            let b = Reading { wall_secs: Some(1025.0), ..read(&text.replace("} 12", "} 3")) };
            let (process, _, backlog) = series(&[a, b]);
            assert_eq!(backlog.len(), 1);
            assert_eq!((backlog[0].0, backlog[0].1.last()), (7, Some(3.0)));
            let idle = read("broker_backlog{subscription=\"8\"} 0\n");
            assert!(series(&[idle.clone(), idle]).2.is_empty(), "nothing waiting all hour: no row");
            assert_eq!(process.iter().find(|s| s.name == "Since this process last ran the chat archiver").unwrap().last(), Some(25.0));
        }

        #[test]
        fn labels_are_read_whole_and_unescaped_and_timestamps_ignored() {
            let r = read("x_count{subroute=\"/a\",route=\"/b {x}\"} 2 1700000000000\n\
                http_request_duration_seconds_count{method=\"GET\",route=\"/q\\\"uote\",x=\"}\"} 5\n\
                not a sample\n");
            assert_eq!(r.totals["x_count"], 2.0, "the value, not the timestamp");
            assert_eq!(r.routes["/q\"uote"], (5.0, 0.0));
            assert_eq!(label("subroute=\"/a\",route=\"/b\"", "route").as_deref(), Some("/b"));
            assert_eq!(label("subroute=\"/a\"", "route"), None);
        }

        #[test]
        fn counters_become_rates_and_routes_are_ordered_by_traffic() {
            let a = read(TEXT);
            let b = read(&TEXT.replace("} 10\n", "} 40\n").replace("} 0.5\n", "} 2\n"));
            let (process, routes, _) = series(&[a.clone(), b.clone()]);
            let requests = process.iter().find(|s| s.name == "HTTP requests").unwrap();
            assert_eq!(requests.points.len(), SAMPLES_KEPT);
            assert_eq!(requests.last(), Some(30.0 / SAMPLE_EVERY_SECS as f64));
            assert_eq!(process.iter().find(|s| s.name == "Jobs due").unwrap().last(), Some(2.0));
            assert_eq!(routes[0].0, "/");
            assert_eq!(routes[0].2.last(), Some(1.5 / 30.0 * 1000.0), "mean latency of the interval, ms");
            // A counter that went down was reset: all of the later value is new.
            let (process, _, _) = series(&[b, a]);
            assert_eq!(process.iter().find(|s| s.name == "HTTP requests").unwrap().last(), Some(14.0 / SAMPLE_EVERY_SECS as f64));
        }
    }
}
