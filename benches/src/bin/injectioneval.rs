//! Recall and false-positive rate of the `injection.*` detectors on labelled collections.
//!
//! Reads every `*.jsonl` in a directory (written by `scripts/eval-injection`, or the
//! curated set in `rules/tests/data/injection`), one item per line:
//! `{"collection": "...", "label": "attack" | "benign", "field": "prompt" | "response", "text": "..."}`.
//! Items are split by a hash of their text into a tuning half and a held-out half; the
//! detectors are tuned on the first only, and the targets are read off the second.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use flagstream_rules::{Event, Rule, RuleSet};
use serde_json::{json, Value};

#[derive(Default)]
struct Tally {
    items: usize,
    hits: usize,
}

impl Tally {
    fn rate(&self) -> f64 {
        if self.items == 0 {
            0.0
        } else {
            100.0 * self.hits as f64 / self.items as f64
        }
    }
}

/// FNV-1a: a split that is stable across runs, machines and orderings.
fn held_out(text: &str) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h.is_multiple_of(2)
}

fn main() -> anyhow::Result<()> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .context("usage: flagstream-injection-eval DIR [--misses N]")?
        .into();
    let show_misses: usize = std::env::args()
        .skip_while(|a| a != "--misses")
        .nth(1)
        .map_or(Ok(0), |n| n.parse())?;
    let rule: Rule = serde_json::from_value(json!({
        "id": "eval.injection", "name": "injection", "severity": "high", "points": 50,
        "kind": "detector", "detector": "injection.*"
    }))?;
    let rules = RuleSet::build(vec![rule])?;
    // (collection, label, held_out) → tally
    let mut tallies: BTreeMap<(String, String, bool), Tally> = BTreeMap::new();
    let mut misses: Vec<(String, String)> = Vec::new();
    let mut bytes = 0usize;
    let started = Instant::now();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let item: Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}", file.display(), n + 1))?;
            let (Some(collection), Some(label), Some(body)) = (
                item["collection"].as_str(),
                item["label"].as_str(),
                item["text"].as_str(),
            ) else {
                anyhow::bail!(
                    "{}:{}: needs collection, label and text",
                    file.display(),
                    n + 1
                );
            };
            let field = item["field"].as_str().unwrap_or("prompt");
            let mut event = json!({
                "id": "eval", "timestamp": 0, "src_ip": "10.0.0.1",
                "provider": "eval", "model": "eval", "prompt": "",
            });
            event[field] = body.into();
            let event = Event::parse(event.to_string().as_bytes(), None)?;
            bytes += body.len();
            let fired = rules.evaluate(&event).flagged;
            let split = held_out(body);
            let tally = tallies
                .entry((collection.to_owned(), label.to_owned(), split))
                .or_default();
            tally.items += 1;
            tally.hits += usize::from(fired);
            let wrong = (label == "attack") != fired;
            if wrong && !split && misses.len() < show_misses {
                misses.push((
                    format!("{collection} {label}"),
                    body.chars().take(300).collect(),
                ));
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{:<34} {:>7} {:>9} {:>9}   (attack: recall %, benign: false positives %)",
        "collection", "label", "tune", "held-out"
    );
    let mut keys: Vec<(String, String)> = tallies
        .keys()
        .map(|(c, l, _)| (c.clone(), l.clone()))
        .collect();
    keys.dedup();
    for (collection, label) in keys {
        let get = |split| tallies.get(&(collection.clone(), label.clone(), split));
        let cell = |t: Option<&Tally>| {
            t.map_or("-".to_owned(), |t| format!("{:.1} ({})", t.rate(), t.items))
        };
        println!(
            "{collection:<34} {label:>7} {:>9} {:>9}",
            cell(get(false)),
            cell(get(true))
        );
    }
    println!(
        "{} bytes in {:.2?} ({:.0} MB/s, one rule set with every injection detector)",
        bytes,
        elapsed,
        bytes as f64 / elapsed.as_secs_f64() / 1e6
    );
    for (what, text) in misses {
        println!("MISS {what}: {text:?}");
    }
    Ok(())
}
