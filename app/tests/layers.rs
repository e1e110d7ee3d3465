//! The arrows between the app's modules, checked from the source: each top-level module
//! uses only what README's layout table allows (so `platform` and the leaf modules beside
//! it know no capability); a capability reaches another only through
//! its public face (never its `store` or `http`); and no two top-level modules import
//! each other, directly or around a loop. A new import that breaks one of these fails
//! here with the file that made it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CAPABILITIES: &[&str] = &["accounts", "broker", "chat", "meetings", "scheduler", "wages"];
/// Modules every capability may use and that may use none of them.
const FOUNDATION: &[&str] = &["platform", "error", "named", "ui"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (file, top-level module it belongs to, `crate::a::b` paths it names as (a, b)).
fn imports() -> Vec<(String, String, Vec<(String, String)>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            let module = relative.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
            // The crate root declares and routes every module; it is not one of them.
            (module != "lib").then(|| {
                let text = std::fs::read_to_string(&path).unwrap();
                (relative, module, crate_paths(&text))
            })
        })
        .collect()
}

/// Every path `text` names below `crate::`, as (first, second) segments: `crate::a::b`,
/// `crate::a::{b, c}` and `crate::{a::b, c}` alike.
fn crate_paths(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        for path in expand(rest) {
            let mut segments = path.split("::").map(str::trim);
            let first = segments.next().unwrap_or("").to_owned();
            let second = segments.next().unwrap_or("").to_owned();
            if !first.is_empty() {
                found.push((first, second));
            }
        }
    }
    found
}

/// The paths one `use` tree (or one plain path) at the start of `text` stands for.
fn expand(text: &str) -> Vec<String> {
    let ident = |t: &str| t.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    if let Some(group) = text.strip_prefix('{') {
        // Split the group at its top-level commas.
        let (mut depth, mut start, mut items) = (0, 0, Vec::new());
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    items.push(&group[start..i]);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return items.into_iter().flat_map(|item| expand(item.trim())).collect();
    }
    let head = ident(text);
    match text[head.len()..].strip_prefix("::") {
        Some(tail) => expand(tail).into_iter().map(|t| format!("{head}::{t}")).chain(std::iter::once(head.clone())).collect(),
        None => vec![head],
    }
}

/// What each top-level module may use of the others (README, "Layout").
fn may_use(module: &str) -> &'static [&'static str] {
    match module {
        "error" | "named" => &[],
        "ui" => &["error"],
        "platform" => &["error", "named"],
        "accounts" => &["error", "named", "ui", "platform"],
        _ => &["error", "named", "ui", "platform", "accounts"],
    }
}

#[test]
fn every_module_uses_only_what_the_layout_allows() {
    let modules: Vec<&str> = CAPABILITIES.iter().chain(FOUNDATION).copied().chain(["home", "system"]).collect();
    let offenders: Vec<String> = imports()
        .into_iter()
        .flat_map(|(file, module, paths)| {
            let allowed = may_use(&module);
            let modules = modules.clone();
            paths
                .into_iter()
                .filter(move |(a, _)| a != &module && modules.contains(&a.as_str()) && !allowed.contains(&a.as_str()))
                .map(move |(a, b)| format!("{file} uses crate::{a}::{b}"))
        })
        .collect();
    assert!(offenders.is_empty(), "outside what README's layout table allows:\n{}", offenders.join("\n"));
}

#[test]
fn no_capability_reaches_into_another_ones_tables_or_routes() {
    let offenders: Vec<String> = imports()
        .into_iter()
        .flat_map(|(file, module, paths)| {
            paths
                .into_iter()
                .filter(move |(a, b)| *a != module && CAPABILITIES.contains(&a.as_str()) && (b == "store" || b == "http"))
                .map(move |(a, b)| format!("{file} uses crate::{a}::{b}"))
        })
        .collect();
    assert!(offenders.is_empty(), "ask the other capability's service instead:\n{}", offenders.join("\n"));
}

#[test]
fn top_level_modules_import_each_other_one_way_only() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut witness: BTreeMap<(String, String), String> = BTreeMap::new();
    for (file, module, paths) in imports() {
        for (a, _) in paths {
            if a != module && !a.is_empty() && a != "lib" {
                witness.entry((module.clone(), a.clone())).or_insert_with(|| file.clone());
                edges.entry(module.clone()).or_default().insert(a);
            }
        }
    }
    // Depth-first search for a loop; report it with a file for each arrow.
    fn visit(node: &str, edges: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            let arrows: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} -> {} ({})", w[0], w[1], witness[&(w[0].clone(), w[1].clone())]))
                .collect();
            panic!("a loop between modules:\n{}", arrows.join("\n"));
        }
    }
}

#[test]
fn the_path_reader_sees_grouped_and_nested_imports() {
    let found: BTreeSet<(String, String)> =
        crate_paths("use crate::broker::{store, domain::X};\nlet s = crate::chat::http::f(); crate::error::AppError; use crate::{wages::store::x, ui};")
            .into_iter()
            .collect();
    for (a, b) in [("broker", "store"), ("broker", "domain"), ("chat", "http"), ("error", "AppError"), ("wages", "store"), ("ui", "")] {
        assert!(found.contains(&(a.to_owned(), b.to_owned())), "{a}::{b} in {found:?}");
    }
}
