//! The operations kit in ops/: the Grafana dashboard and the Prometheus configuration and
//! alert rules may only name metrics of the catalogue (docs/operations.md), which
//! `metrics_catalogue` holds against a running server. promtool checks the Prometheus
//! files and runs the rules' unit tests when it is installed (`.ci/run` installs it).

use crate::metrics_catalogue::{catalogue, family, repo_file, Entry};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Series Prometheus records itself for every target (not the server's).
const PROMETHEUS_OWN: &[&str] = &["up"];
/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["instance", "job"];

/// Aggregation operators: followed by `by`/`without` as often as by `(`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

/// The label names of a selector's matchers (`a="x", b=~"y,z"`).
fn matcher_labels(inner: &[char]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut quote = None;
    let mut at_start = true;
    let mut k = 0;
    while k < inner.len() {
        let c = inner[k];
        match quote {
            Some(_) if c == '\\' => k += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == ',' => at_start = true,
            None if at_start && !c.is_whitespace() => {
                let name: String = inner[k..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect();
                k += name.len().max(1) - 1;
                out.insert(name);
                at_start = false;
            }
            None => {}
        }
        k += 1;
    }
    out
}

/// The index of the `}` closing the `{` at `open`, skipping quoted label values.
fn closing_brace(chars: &[char], open: usize) -> usize {
    let mut quote = None;
    let mut k = open + 1;
    while k < chars.len() {
        match (quote, chars[k]) {
            (Some(_), '\\') => k += 1,
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(chars[k]),
            (None, '}') => return k,
            _ => {}
        }
        k += 1;
    }
    panic!("unclosed selector in {}", chars.iter().collect::<String>());
}

/// The metric selectors of a PromQL expression: each metric name with the label names
/// its matchers use. Strings, ranges, grouping clauses, functions and keywords are not
/// metrics.
fn selectors(expr: &str) -> Vec<(String, BTreeSet<String>)> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut grouping = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == '(' && grouping {
            // by (…), without (…), on (…), ignoring (…): label names.
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            grouping = false;
            i += 1;
            continue;
        }
        if c == '{' {
            // A selector with no name before it is not used here.
            i = closing_brace(&chars, i) + 1;
            continue;
        }
        if (c.is_ascii_alphabetic() || c == '_') && (i == 0 || !is_ident(chars[i - 1])) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let next = chars.get(j).copied();
            if KEYWORDS.contains(&word.to_lowercase().as_str()) {
                grouping = matches!(
                    word.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                );
                continue;
            }
            if next == Some('(') || AGGREGATIONS.contains(&word.as_str()) {
                continue; // a function or an aggregation
            }
            let mut labels = BTreeSet::new();
            if next == Some('{') {
                let end = closing_brace(&chars, j);
                labels = matcher_labels(&chars[j + 1..end]);
                i = end + 1;
            }
            out.push((word, labels));
            continue;
        }
        i += 1;
    }
    out
}

/// Every selector of `expr` names a catalogued metric (or one of Prometheus's own
/// series) and only labels that metric has; returns the metrics.
#[track_caller]
fn check_expr(expr: &str, cat: &BTreeMap<String, Entry>, where_: &str) -> Vec<String> {
    let found = selectors(expr);
    assert!(!found.is_empty(), "{where_}: no metric in {expr:?}");
    let mut names = Vec::new();
    for (series, labels) in found {
        if PROMETHEUS_OWN.contains(&series.as_str()) {
            continue;
        }
        let name = family(&series, cat).unwrap_or_else(|| {
            panic!("{where_}: {series} is not in the metrics catalogue ({expr})")
        });
        let entry = &cat[name];
        for l in &labels {
            let known = entry.labels.contains(l)
                || TARGET_LABELS.contains(&l.as_str())
                || (l == "le" && series.ends_with("_bucket"))
                || (l == "quantile" && entry.kind == "summary");
            assert!(known, "{where_}: {name} has no label {l} ({expr})");
        }
        names.push(name.to_string());
    }
    names
}

#[test]
fn the_selector_parser_finds_metrics_and_only_metrics() {
    let s = selectors(
        r#"histogram_quantile(0.99, sum by (le, record) (rate(dispatch_store_write_seconds_bucket{instance=~"$instance",x="a,b}"}[$__rate_interval]))) > on (instance) up"#,
    );
    let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["dispatch_store_write_seconds_bucket", "up"]);
    assert_eq!(
        s[0].1,
        BTreeSet::from(["instance".to_string(), "x".to_string()])
    );
    let cat = catalogue();
    let r =
        std::panic::catch_unwind(|| check_expr("rate(dispatch_nonexistent_total[5m])", &cat, "t"));
    assert!(r.is_err(), "an uncatalogued metric is refused");
    let r = std::panic::catch_unwind(|| check_expr(r#"dispatch_riders{state="idle"}"#, &cat, "t"));
    assert!(r.is_err(), "a label the metric does not have is refused");
}

/// Every `expr` in a Grafana panel tree, with the panel's title.
fn panel_exprs(panels: &[Value], out: &mut Vec<(String, String)>) {
    for p in panels {
        let title = p["title"].as_str().unwrap_or("?").to_string();
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("a Prometheus target has an expr");
            out.push((title.clone(), expr.to_string()));
        }
        if let Some(inner) = p["panels"].as_array() {
            panel_exprs(inner, out);
        }
    }
}

#[test]
fn the_grafana_dashboard_queries_only_catalogued_metrics() {
    let cat = catalogue();
    let dash: Value = serde_json::from_str(&repo_file("ops/grafana/dispatchd.json")).unwrap();
    assert!(
        dash["schemaVersion"].as_u64().unwrap() >= 36,
        "a current dashboard schema"
    );
    assert_eq!(dash["uid"], "dispatchd");
    let vars = dash["templating"]["list"].as_array().unwrap();
    let ds = vars
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a data source variable");
    assert_eq!(ds["query"], "prometheus");
    let ds_ref = format!("${{{}}}", ds["name"].as_str().unwrap());

    let panels = dash["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "panel ids are unique"
        );
        assert!(p["gridPos"]["w"].as_u64().is_some(), "{p}");
        if p["type"] != "row" {
            assert_eq!(
                p["datasource"]["uid"].as_str(),
                Some(ds_ref.as_str()),
                "{}",
                p["title"]
            );
        }
    }
    let mut exprs = Vec::new();
    panel_exprs(panels, &mut exprs);
    for v in vars.iter().filter(|v| v["type"] == "query") {
        // Grafana's `label_values(<selector>, <label>)`: the selector is PromQL.
        let def = v["definition"].as_str().unwrap();
        let selector = def
            .strip_prefix("label_values(")
            .and_then(|d| d.rsplit_once(','))
            .map_or(def, |(selector, _)| selector);
        exprs.push((format!("variable {}", v["name"]), selector.to_string()));
    }
    let mut used = BTreeSet::new();
    for (title, expr) in &exprs {
        used.extend(check_expr(expr, &cat, title));
    }
    // The panels the runbook points at.
    for want in [
        "dispatch_gps_fixes_total",
        "dispatch_offers_total",
        "dispatch_offer_latency_seconds",
        "dispatch_plan_round_seconds",
        "dispatch_orders_total",
        "dispatch_escalations_total",
        "dispatch_hub_entries",
        "dispatch_ws_frames_dropped_total",
        "dispatch_ready",
        "dispatch_store_position_lag_seconds",
    ] {
        assert!(used.contains(want), "the dashboard shows {want}");
    }
    assert!(
        exprs.iter().any(|(_, e)| e.contains("histogram_quantile")
            && e.contains("dispatch_offer_latency_seconds_bucket")),
        "first-offer latency as quantiles"
    );
}

fn yaml(rel: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_prometheus_config_and_alert_rules_hold_together() {
    let cat = catalogue();
    let config = yaml("ops/prometheus/prometheus.yml");
    let rule_files: Vec<&str> = config["rule_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(rule_files, ["alerts.yml"]);
    let job = config["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|j| j["job_name"] == "dispatchd")
        .expect("a dispatchd scrape job");
    assert_eq!(job["metrics_path"].as_str(), Some("/metrics"));
    assert!(!job["static_configs"][0]["targets"]
        .as_sequence()
        .unwrap()
        .is_empty());

    let rules = yaml("ops/prometheus/alerts.yml");
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        assert!(group["name"].as_str().is_some());
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("an alerting rule");
            assert!(alerts.insert(name.to_string()), "{name} twice");
            let expr = rule["expr"].as_str().expect("expr");
            check_expr(expr, &cat, name);
            let for_ = rule["for"].as_str().expect("for");
            assert!(
                for_.ends_with('m') || for_.ends_with('s'),
                "{name}: for {for_}"
            );
            let severity = rule["labels"]["severity"]
                .as_str()
                .expect("labels.severity");
            assert!(["page", "ticket"].contains(&severity), "{name}: {severity}");
            assert!(
                rule["annotations"]["summary"].as_str().is_some(),
                "{name}: summary"
            );
        }
    }
    for want in [
        "DispatchdDown",
        "DispatchdNotReady",
        "DispatchdFramesDropping",
        "DispatchdFirstOfferSlow",
        "DispatchdEscalationSpike",
        "DispatchdRedisLagging",
    ] {
        assert!(alerts.contains(want), "alert {want}");
    }
}

/// promtool's own checks, when it is installed (Debian: `apt-get install prometheus`).
#[test]
fn promtool_accepts_the_config_and_the_rules_pass_their_unit_tests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/prometheus");
    let run = |args: &[&str]| {
        std::process::Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
    };
    if run(&["--version"]).is_err() {
        eprintln!("promtool is not installed: skipped (the structural test above still ran)");
        return;
    }
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["check", "rules", "alerts.yml"],
        &["test", "rules", "alerts.test.yml"],
    ] {
        let out = run(args).unwrap();
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
