//! The page's state lives in its URL: the filters, the grouping, the sort and the page,
//! so a view can be shared. These build and clean those addresses.

use leptos_router::params::ParamsMap;

/// The URL query without empty values (an empty form field means "no filter").
pub(super) fn clean_query(q: &ParamsMap) -> ParamsMap {
    let mut out = ParamsMap::new();
    for (k, v) in q.latest_values() {
        if !v.trim().is_empty() {
            out.replace(k.clone(), v.to_owned());
        }
    }
    out
}

/// `?a=1&b=x%20y`, escaping only what must be (the router's own escaping turns `_` into
/// `%5F`, which makes shared links unreadable).
pub(super) fn query_string(q: &ParamsMap) -> String {
    fn escape(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    let pairs: Vec<String> = q.latest_values().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect();
    if pairs.is_empty() { String::new() } else { format!("?{}", pairs.join("&")) }
}

/// `/wages?…` with some parameters replaced (or removed, for `None`).
pub(super) fn wages_href(q: &ParamsMap, changes: &[(&'static str, Option<String>)]) -> String {
    let mut q = clean_query(q);
    for (k, v) in changes {
        match v {
            Some(v) => q.replace(*k, v.clone()),
            None => drop(q.remove(k)),
        }
    }
    format!("/wages{}", query_string(&q))
}

