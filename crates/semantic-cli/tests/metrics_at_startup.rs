//! A fresh `semantic serve`, before any request, exposes every metric
//! `docs/observability.md` lists, with its documented type, at zero:
//! counters at 0 for each documented label value, histograms with no
//! observations (`_count` 0), gauges at their start-up values. So `rate()`,
//! dashboards and alerts see zeros on a new server rather than nothing.
//! The list is read from the docs, so a metric added there is checked here
//! (and `scripts/ops_checks.py` fails when the code emits one the docs do
//! not list).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::serve_process::Serve;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One row of the docs' metrics table.
#[derive(Debug)]
struct Documented {
    name: String,
    /// `counter`, `gauge` or `histogram`.
    kind: String,
    /// Labels whose values the docs enumerate (`tier` = `hot`|`warm`|`disk`).
    values: BTreeMap<String, Vec<String>>,
}

/// The table of `docs/observability.md`: rows starting with a `semantic_*`
/// name in backticks.
fn documented() -> Vec<Documented> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/observability.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut rows = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("| `semantic_") else {
            continue;
        };
        // `\|` inside a cell separates label values, not cells.
        let cells: Vec<String> = rest
            .replace("\\|", "\u{1}")
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect();
        let name = format!("semantic_{}", cells[0].trim_end_matches('`'));
        let kind = cells[1].split_whitespace().next().unwrap().to_owned();
        rows.push(Documented {
            name,
            kind,
            values: enumerated_labels(&cells[2]),
        });
    }
    assert!(rows.len() >= 20, "metrics table not found in {path:?}");
    rows
}

/// "`cache_source` = `cold`\u{1}`hot`" → {cache_source: [cold, hot]}.
fn enumerated_labels(cell: &str) -> BTreeMap<String, Vec<String>> {
    let mut labels = BTreeMap::new();
    for part in cell.split(", ") {
        let Some((label, values)) = part.split_once(" = ") else {
            continue;
        };
        let values = values
            .split('\u{1}')
            .map(|v| v.trim().trim_matches('`').to_owned())
            .collect();
        labels.insert(label.trim().trim_matches('`').to_owned(), values);
    }
    labels
}

/// A sample line: name, labels, value.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

struct Scrape {
    /// `# TYPE` lines: name → type.
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(decl) = line.strip_prefix("# TYPE ") {
                let (name, kind) = decl.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.push(Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap(),
            });
        }
        Self { types, samples }
    }

    fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

/// `k="v",k2="v2"` (our label values hold no quotes or commas).
fn labels(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_server_exposes_every_documented_metric_before_any_request() {
    let cache = tempfile::tempdir().unwrap();
    let serve = Serve::start(cache.path(), &[]).await;
    // The first request the API sees (the start-up probe is not counted).
    let response = reqwest::get(serve.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let scrape = Scrape::parse(&response.text().await.unwrap());

    let mut problems = Vec::new();
    let docs = documented();
    for metric in &docs {
        let name = metric.name.as_str();
        match scrape.types.get(name) {
            Some(kind) if *kind == metric.kind => {}
            Some(kind) => problems.push(format!("{name}: type {kind}, documented {}", metric.kind)),
            None => problems.push(format!("{name}: no `# TYPE` line")),
        }
        // A histogram's series are its `_bucket`/`_sum`/`_count` lines.
        let sampled = match metric.kind.as_str() {
            "histogram" => format!("{name}_count"),
            _ => name.to_owned(),
        };
        let series: Vec<&Sample> = scrape.series(&sampled).collect();
        if series.is_empty() {
            problems.push(format!("{name}: no series"));
        }
        if metric.kind != "gauge" {
            for s in series.iter().filter(|s| s.value != 0.0) {
                problems.push(format!(
                    "{sampled}{:?} = {} before any request",
                    s.labels, s.value
                ));
            }
        }
        for (label, values) in &metric.values {
            for value in values {
                if !series.iter().any(|s| s.labels.get(label) == Some(value)) {
                    problems.push(format!("{name}: no series with {label}=\"{value}\""));
                }
            }
        }
    }
    // And nothing exported that the docs do not list.
    let listed: BTreeSet<&str> = docs.iter().map(|m| m.name.as_str()).collect();
    for name in scrape.types.keys().filter(|n| n.starts_with("semantic_")) {
        if !listed.contains(name.as_str()) {
            problems.push(format!("{name}: exported but not in docs/observability.md"));
        }
    }
    assert!(
        problems.is_empty(),
        "fresh server's /metrics:\n{}",
        problems.join("\n")
    );
}
