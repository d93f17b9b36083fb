//! The dashboards and alert rules shipped in `helm/flagstream/` against what the binaries
//! really export: every metric they name exists, and, with a real Prometheus scraping a
//! running consumer and API, every PromQL expression evaluates and returns data and every
//! SQL panel runs as the read-only role.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::procs::{
    free_port, start_api, start_consumer, start_tansu, wait_for_port, Process, ADMIN_PASSWORD,
};
use crate::support::{self, event, unique, wait_for_rows, CLEAN, FLAGGABLE};

const WITHIN: Duration = Duration::from_secs(120);

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/flagstream")
}

fn alert_rules() -> PathBuf {
    chart().join("alerts/flagstream-rules.yml")
}

fn dashboards() -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(chart().join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        all.push((path.display().to_string(), json));
    }
    assert_eq!(all.len(), 3, "pipeline, detections and API dashboards");
    all
}

/// Every panel target's query, of one kind (`expr` for PromQL, `rawSql` for SQL).
fn queries(dashboard: &Value, key: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(q) = target[key].as_str() {
                out.push((panel["title"].as_str().unwrap().to_owned(), q.to_owned()));
            }
        }
    }
    out
}

/// The `flagstream_…` metric names a text mentions.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("flagstream_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Sample names an exposition declares: counters end in `_total`, histograms have
/// `_bucket`, `_sum` and `_count`.
fn exported(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            match kind {
                "counter" => names.insert(format!("{name}_total")),
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                    true
                }
                _ => names.insert(name.to_owned()),
            };
        }
    }
    names
}

#[test]
fn dashboards_and_alerts_name_only_metrics_the_consumer_exports() {
    let metrics = flagstream_consumer::metrics::Metrics::new();
    // A labelled family is exported once it has a series.
    metrics.set_lag("t", 0, 1);
    metrics.set_rule_costs(vec![("r".into(), 1e-6)]);
    metrics
        .dead_letters
        .get_or_create(&vec![("reason", "invalid_json".into())])
        .inc();
    let exports = exported(&metrics.render());
    assert!(
        exports.contains("flagstream_events_consumed_total"),
        "{exports:?}"
    );
    let mut text = std::fs::read_to_string(alert_rules()).unwrap();
    for (_, dashboard) in dashboards() {
        text.push_str(&dashboard.to_string());
    }
    let named = metric_names(&text);
    let consumer: Vec<_> = named
        .iter()
        .filter(|n| !n.starts_with("flagstream_api_"))
        .collect();
    assert!(consumer.len() >= 15, "{consumer:?}");
    let unknown: Vec<_> = consumer.iter().filter(|n| !exports.contains(**n)).collect();
    assert!(
        unknown.is_empty(),
        "named but not exported by the consumer: {unknown:?}"
    );
}

#[test]
fn the_readme_explains_every_panel_and_alert() {
    let readme = std::fs::read_to_string(chart().join("../../README.md")).unwrap();
    for (file, dashboard) in dashboards() {
        for panel in dashboard["panels"].as_array().unwrap() {
            let row = format!(
                "| {} | {} |",
                panel["title"].as_str().unwrap(),
                panel["description"].as_str().unwrap()
            );
            assert!(
                readme.contains(&row),
                "README lacks the panel row of {file}: {row}"
            );
        }
    }
    let rules = std::fs::read_to_string(alert_rules()).unwrap();
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            readme.contains(&format!("| `{alert}` |")),
            "README lacks alert {alert}"
        );
    }
}

/// A Prometheus server on loopback, scraping `targets` every second and evaluating the
/// shipped alert rules every second.
fn start_prometheus(dir: &Path, targets: &[String]) -> (Process, String, u16) {
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
         scrape_configs:\n  - job_name: flagstream\n    static_configs:\n      - targets: [{}]\n",
        alert_rules().display(),
        targets.join(", ")
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let binary = std::env::var("PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    let process = Process::start(
        "prometheus",
        Command::new(binary).args([
            &format!("--config.file={}", dir.join("prometheus.yml").display()),
            &format!("--storage.tsdb.path={}", dir.join("data").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ]),
    );
    (process, format!("http://127.0.0.1:{port}"), port)
}

/// A dashboard expression as Grafana would send it for "all instances".
fn as_grafana_sends(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$__interval", "30s")
        .replace("$instance", ".*")
}

/// A SQL panel as Grafana's PostgreSQL datasource would expand its macros, over a range
/// that holds the test's events.
fn expand_sql_macros(sql: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find("$__") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let open = tail.find('(').unwrap();
        let close = tail.find(')').unwrap();
        let args: Vec<&str> = tail[open + 1..close].split(',').map(str::trim).collect();
        let expanded = match &tail[3..open] {
            "timeFilter" => format!(
                "{} BETWEEN '2000-01-01T00:00:00Z' AND now() + interval '1 year'",
                args[0]
            ),
            "timeGroupAlias" => format!("date_trunc('minute', {}) AS \"time\"", args[0]),
            other => panic!("macro $__{other} is not expanded by this test: add it"),
        };
        out.push_str(&expanded);
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    assert!(!out.contains('$'), "unexpanded variable in {out}");
    out
}

async fn query(http: &reqwest::Client, prometheus: &str, expr: &str) -> Value {
    http.get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .expect("query Prometheus")
        .json()
        .await
        .expect("Prometheus answers JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_evaluates_every_dashboard_and_alert_expression_on_live_binaries() {
    let topic = unique("llm_traffic");
    let (_broker, bootstrap) = start_tansu(&topic, 2).await;
    let db = support::fresh_database().await;
    let (api_port, api_metrics, consumer_metrics) = (free_port(), free_port(), free_port());
    let _api = start_api(&db.url, api_port, api_metrics);
    let _consumer = start_consumer(
        &db.url,
        &bootstrap,
        &topic,
        &unique("monitoring"),
        Some(consumer_metrics),
    );
    let mut messages: Vec<(i32, Option<Vec<u8>>)> = (0..20)
        .map(|i| {
            let prompt = if i % 2 == 0 { FLAGGABLE } else { CLEAN };
            (i % 2, Some(event(&format!("mon-{i}"), prompt)))
        })
        .collect();
    messages.push((0, Some(b"not json".to_vec())));
    support::produce(&support::producer(&bootstrap), &topic, &messages).await;
    wait_for_rows(&db.pool, "flags", 10, WITHIN).await;
    wait_for_rows(&db.pool, "dead_letters", 1, WITHIN).await;

    // API traffic of every kind the API dashboard shows: a success, a 401, a failed login.
    wait_for_port(api_port).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{api_port}");
    let failed = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "admin", "password": "wrong-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().expect("a token");
    let listed = http
        .get(format!("{base}/api/v1/flags"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let denied = http
        .get(format!("{base}/api/v1/flags"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);

    let dir = tempdir();
    let (_prometheus, prometheus, port) = start_prometheus(
        &dir,
        &[
            format!("'127.0.0.1:{consumer_metrics}'"),
            format!("'127.0.0.1:{api_metrics}'"),
        ],
    );
    wait_for_port(port).await;
    // The port opens before the TSDB is loaded; until then queries get a plain-text 503.
    support::eventually(WITHIN, "Prometheus ready", || async {
        let ready = http.get(format!("{prometheus}/-/ready")).send().await;
        ready.ok()?.status().is_success().then_some(())
    })
    .await;

    let mut expressions = Vec::new();
    for (file, dashboard) in dashboards() {
        for (panel, expr) in queries(&dashboard, "expr") {
            expressions.push((format!("{file}: {panel}"), as_grafana_sends(&expr)));
        }
    }
    assert!(expressions.len() >= 20, "{expressions:?}");
    for (what, expr) in &expressions {
        let result = support::eventually(WITHIN, &format!("data for {what}: {expr}"), || {
            let http = &http;
            let prometheus = &prometheus;
            async move {
                let answer = query(http, prometheus, expr).await;
                assert_eq!(answer["status"], "success", "{what}: {expr}: {answer}");
                let result = answer["data"]["result"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                (!result.is_empty()).then_some(result)
            }
        })
        .await;
        eprintln!("{what}: {} series", result.len());
    }

    // The alert rules: Prometheus loaded all of them, evaluates them without error, and
    // every metric they watch has series.
    let rules = support::eventually(WITHIN, "every alert rule evaluated", || {
        let http = &http;
        let prometheus = &prometheus;
        async move {
            let answer: Value = http
                .get(format!("{prometheus}/api/v1/rules"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let rules: Vec<Value> = answer["data"]["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            let evaluated = !rules.is_empty()
                && rules.iter().all(|r| {
                    r["lastEvaluation"]
                        .as_str()
                        .is_some_and(|t| !t.starts_with("0001"))
                });
            evaluated.then_some(rules)
        }
    })
    .await;
    let shipped = std::fs::read_to_string(alert_rules()).unwrap();
    assert_eq!(
        rules.len(),
        shipped.matches("- alert: ").count(),
        "{rules:?}"
    );
    for rule in &rules {
        let expr = rule["query"].as_str().unwrap();
        assert_eq!(rule["health"], "ok", "{}: {rule}", rule["name"]);
        let answer = query(&http, &prometheus, expr).await;
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
        for name in metric_names(expr) {
            let answer = query(
                &http,
                &prometheus,
                &format!("count({{__name__=\"{name}\"}})"),
            )
            .await;
            let present = answer["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty());
            assert!(
                present,
                "alert {} watches {name}, which has no series",
                rule["name"]
            );
        }
    }
    // With everything healthy, nothing fires.
    let firing: Vec<_> = rules.iter().filter(|r| r["state"] == "firing").collect();
    assert!(firing.is_empty(), "{firing:?}");

    // SQL panels, as Grafana's read-only login would run them.
    let login = unique("grafana_reader");
    sqlx::query(&format!(
        "CREATE ROLE {login} LOGIN PASSWORD 'reader-password' IN ROLE flagstream_readonly"
    ))
    .execute(&db.pool)
    .await
    .unwrap();
    let reader_url = db
        .url
        .replacen("postgres@", &format!("{login}:reader-password@"), 1);
    let mut reader = PgConnection::connect(&reader_url).await.unwrap();
    let mut panels = 0;
    for (file, dashboard) in dashboards() {
        for (panel, sql) in queries(&dashboard, "rawSql") {
            let sql = expand_sql_macros(&sql);
            let rows = sqlx::query(&sql)
                .fetch_all(&mut reader)
                .await
                .unwrap_or_else(|e| panic!("{file}: {panel}: {e}\n{sql}"));
            assert!(!rows.is_empty(), "{file}: {panel}: no rows\n{sql}");
            panels += 1;
        }
    }
    assert!(panels >= 10, "{panels} SQL panels");
    reader.close().await.unwrap();
    sqlx::query(&format!("DROP ROLE {login}"))
        .execute(&db.pool)
        .await
        .unwrap();
}

fn tempdir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("prometheus"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
