//! The metrics catalogue in docs/operations.md against a running server's `/metrics`, both
//! ways: every exposed `dispatch_*` family is catalogued with its type and labels, and
//! every catalogued metric is exposed. The ops kit's tests (`ops_kit`) use the same parse.

use crate::helpers::*;
use std::collections::{BTreeMap, BTreeSet};

/// One row of the catalogue.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: String,
    pub unit: String,
    pub labels: BTreeSet<String>,
    pub meaning: String,
}

/// A file of the repository, read at test time.
pub fn repo_file(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Backticked names in a cell (`—` or empty: none).
fn names(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The "Metrics catalogue" table of docs/operations.md, by metric name.
pub fn catalogue() -> BTreeMap<String, Entry> {
    let doc = repo_file("docs/operations.md");
    let section = doc
        .split("\n## Metrics catalogue\n")
        .nth(1)
        .expect("docs/operations.md has a \"## Metrics catalogue\" section");
    let section = section.split("\n## ").next().unwrap();
    let mut rows = section.lines().filter(|l| l.starts_with('|'));
    let header: Vec<&str> = rows
        .next()
        .expect("a table")
        .split('|')
        .map(str::trim)
        .collect();
    assert_eq!(
        header[1..6],
        ["name", "type", "unit", "labels", "meaning"],
        "the catalogue's columns"
    );
    let mut out = BTreeMap::new();
    for row in rows.skip(1) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 7, "a row of five cells: {row}");
        let name = names(cells[1]);
        assert_eq!(name.len(), 1, "one backticked name: {row}");
        let entry = Entry {
            kind: cells[2].to_string(),
            unit: cells[3].to_string(),
            labels: names(cells[4]).into_iter().collect(),
            meaning: cells[5].to_string(),
        };
        assert!(
            ["counter", "gauge", "histogram", "summary"].contains(&entry.kind.as_str()),
            "type of {row}"
        );
        assert!(!entry.unit.is_empty() && !entry.meaning.is_empty(), "{row}");
        assert!(
            out.insert(name[0].clone(), entry).is_none(),
            "listed twice: {row}"
        );
    }
    assert!(out.len() > 20, "the catalogue was read: {} rows", out.len());
    out
}

/// The catalogued metric a scraped series name belongs to: itself, or a histogram's or
/// summary's `_bucket` / `_sum` / `_count`.
pub fn family<'a>(series: &'a str, cat: &BTreeMap<String, Entry>) -> Option<&'a str> {
    if cat.contains_key(series) {
        return Some(series);
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = series.strip_suffix(suffix)?;
        let kind = &cat.get(base)?.kind;
        let ok = kind == "histogram" || (kind == "summary" && *suffix != "_bucket");
        ok.then_some(base)
    })
}

/// A scrape: each family's `# TYPE`, and the label names seen on its samples.
struct Scrape {
    types: BTreeMap<String, String>,
    labels: BTreeMap<String, BTreeSet<String>>,
}

fn parse_scrape(text: &str) -> Scrape {
    let mut types = BTreeMap::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            types.insert(name.to_string(), kind.trim().to_string());
        }
    }
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = l.find(['{', ' ']).unwrap_or(l.len());
        let series = &l[..end];
        let fam = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| series.strip_suffix(s))
            .find(|b| types.contains_key(*b))
            .unwrap_or(series);
        let set = labels.entry(fam.to_string()).or_default();
        if let Some(inner) = l.get(end..).and_then(|r| r.strip_prefix('{')) {
            let inner = &inner[..inner.rfind('}').expect("closing brace")];
            for pair in inner.split("\",").filter(|p| !p.is_empty()) {
                let key = pair.split('=').next().unwrap().trim();
                if key != "le" && key != "quantile" {
                    set.insert(key.to_string());
                }
            }
        }
    }
    Scrape { types, labels }
}

#[actix_web::test]
async fn the_catalogue_and_the_scrape_agree_both_ways() {
    let cat = catalogue();
    let (app, c, m) = spawn_shop(|_| {}).await;
    // A little traffic, so histograms and labelled series have samples.
    let mut rider = app.rider_at(offset(SHOP, 200.0, 0.0)).await;
    let id = app.accepted_order(&c, &m).await;
    rider.take_order(&id).await;
    let r = app.get("/metrics", None).await;
    assert_eq!(r.status.as_u16(), 200);
    let scrape = parse_scrape(&r.text);

    let exposed: BTreeSet<&String> = scrape
        .types
        .keys()
        .filter(|n| n.starts_with("dispatch_"))
        .collect();
    for name in &exposed {
        let entry = cat
            .get(*name)
            .unwrap_or_else(|| panic!("{name} is exposed but not in the catalogue"));
        assert_eq!(scrape.types[*name], entry.kind, "type of {name}");
        if let Some(seen) = scrape.labels.get(*name) {
            assert_eq!(seen, &entry.labels, "labels of {name}");
        }
    }
    for (name, entry) in &cat {
        assert!(
            exposed.contains(name),
            "{name} is catalogued but /metrics does not expose it"
        );
        // The naming rules of docs/protocol.md.
        if entry.kind == "counter" {
            assert!(name.ends_with("_total"), "counter {name} ends in _total");
        }
        assert_eq!(
            name.ends_with("_seconds"),
            entry.unit == "seconds",
            "{name}: unit {} and name agree",
            entry.unit
        );
    }
    // Samples exist for what the traffic above must have moved.
    for name in ["dispatch_offer_latency_seconds", "dispatch_gps_fixes_total"] {
        assert!(scrape.labels.contains_key(name), "{name} has samples");
    }
}
