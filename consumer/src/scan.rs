//! `flagstream-consumer scan`: the consumer's engine, offline, over a JSONL file.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use flagstream_rules::{Event, Origin, Pack, RuleSet};
use serde_json::json;

use crate::Error;

/// Evaluate events from a JSONL file (or stdin) with the same engine the consumer runs.
/// One verdict JSON line per event on stdout; malformed lines and a summary on stderr.
#[derive(Debug, Parser)]
#[command(name = "flagstream-consumer scan", version)]
pub struct ScanArgs {
    /// Rule pack file, TOML or JSON (default: the built-in pack named by --pack).
    #[arg(long, env = "SCAN_RULES")]
    pub rules: Option<PathBuf>,
    /// Built-in pack: default or flagwise-compat.
    #[arg(long, env = "SCAN_PACK", default_value = "default")]
    pub pack: String,
    /// Score at or above which an event is flagged.
    #[arg(long, env = "SCAN_THRESHOLD", default_value_t = 1)]
    pub threshold: u32,
    /// Events, one JSON object per line; `-` reads stdin.
    #[arg(default_value = "-")]
    pub input: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    pub malformed: u64,
    pub flagged: u64,
    pub bytes: u64,
    pub per_rule: BTreeMap<String, u64>,
}

pub fn load_rules(args: &ScanArgs) -> Result<RuleSet, Error> {
    let pack = match &args.rules {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            if path.extension().is_some_and(|e| e == "json") {
                Pack::from_json(&text)?
            } else {
                Pack::from_toml(&text)?
            }
        }
        None => Pack::builtin(&args.pack)?,
    };
    Ok(RuleSet::build(pack.rules)?.with_threshold(args.threshold))
}

/// Evaluates every line; a line that is not an event is reported on `errors` and skipped.
pub fn scan(
    rules: &RuleSet,
    input: impl BufRead,
    mut out: impl Write,
    mut errors: impl Write,
) -> Result<Summary, Error> {
    let mut summary = Summary::default();
    let mut busy = Duration::ZERO;
    for (index, line) in input.split(b'\n').enumerate() {
        let line = line?;
        let number = index as i64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.bytes += line.len() as u64;
        let started = Instant::now();
        let origin = Origin {
            topic: "line",
            partition: 0,
            offset: number,
        };
        let event = match Event::parse(&line, Some(origin)) {
            Ok(event) => event,
            Err(e) => {
                summary.malformed += 1;
                writeln!(errors, "line {number}: {e}")?;
                continue;
            }
        };
        let verdict = rules.evaluate(&event);
        busy += started.elapsed();
        summary.events += 1;
        summary.flagged += u64::from(verdict.flagged);
        let mut seen = std::collections::HashSet::new();
        for d in &verdict.detections {
            if seen.insert(d.rule_id.as_str()) {
                *summary.per_rule.entry(d.rule_id.clone()).or_default() += 1;
            }
        }
        let line = json!({"line": number, "id": event.id, "verdict": verdict});
        writeln!(out, "{line}")?;
    }
    let secs = busy.as_secs_f64().max(1e-9);
    writeln!(
        errors,
        "{} events, {} flagged, {} malformed; {:.1} MB/s evaluated",
        summary.events,
        summary.flagged,
        summary.malformed,
        summary.bytes as f64 / secs / 1e6
    )?;
    for (rule, hits) in &summary.per_rule {
        writeln!(errors, "  {rule}: {hits} events")?;
    }
    Ok(summary)
}

/// Runs the subcommand on the process's stdin/stdout/stderr or the named file.
pub fn run(args: ScanArgs) -> Result<Summary, Error> {
    let rules = load_rules(&args)?;
    let stdout = std::io::stdout().lock();
    let stderr = std::io::stderr().lock();
    if args.input == "-" {
        scan(&rules, std::io::stdin().lock(), stdout, stderr)
    } else {
        let file = std::fs::File::open(&args.input)?;
        scan(&rules, std::io::BufReader::new(file), stdout, stderr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_reports_verdicts_malformed_lines_and_a_summary() {
        let args = ScanArgs::parse_from(["scan", "--pack", "flagwise-compat"]);
        let rules = load_rules(&args).unwrap();
        let input = concat!(
            r#"{"timestamp":"2026-01-01T00:00:00Z","src_ip":"10.0.0.1","provider":"openai","model":"gpt-4","prompt":"my password"}"#,
            "\n\nnot json\n",
            r#"{"timestamp":"2026-01-01T00:00:00Z","src_ip":"10.0.0.1","provider":"openai","model":"gpt-4o","prompt":"hello"}"#,
            "\n",
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let summary = scan(&rules, input.as_bytes(), &mut out, &mut err).unwrap();
        assert_eq!(
            (summary.events, summary.flagged, summary.malformed),
            (2, 1, 1)
        );
        assert_eq!(summary.per_rule.get("flagwise.critical_keywords"), Some(&1));
        assert_eq!(summary.per_rule.get("flagwise.restricted_models"), Some(&1));
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["line"], 1);
        assert_eq!(lines[0]["verdict"]["score"], 70);
        assert_eq!(lines[1]["line"], 4);
        assert_eq!(lines[1]["verdict"]["flagged"], false);
        let err = String::from_utf8(err).unwrap();
        assert!(err.starts_with("line 3: event is not valid JSON"), "{err}");
        assert!(err.contains("2 events, 1 flagged, 1 malformed"), "{err}");
    }
}
