//! Per-rule evaluation cost: each rule of a pack compiled alone and run over the generated
//! corpus and over the realistic one (`realistic`), reported as MB/s and as a multiple of
//! the median rule's time on the generated corpus.

use std::time::Instant;

use flagstream_benches::{corpus, realistic};
use flagstream_rules::{Event, Pack, RuleSet};

/// Seconds for the fastest of five passes over `events`.
fn best_of_five(set: &RuleSet, events: &[Event]) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let flagged = events.iter().filter(|e| set.evaluate(e).flagged).count();
        std::hint::black_box(flagged);
        best = best.min(started.elapsed().as_secs_f64());
    }
    best
}

fn main() -> anyhow::Result<()> {
    let pack = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "default".to_owned());
    let corpora = [
        corpus::prompts(42, 2000, 2048, 0.05),
        realistic::prompts(42, 2000, 2048, 0.05),
    ];
    let events: Vec<Vec<Event>> = corpora.iter().map(|p| corpus::events(p)).collect();
    let bytes: Vec<usize> = corpora
        .iter()
        .map(|p| p.iter().map(String::len).sum())
        .collect();
    let mut rows = Vec::new();
    for rule in Pack::builtin(&pack)?.rules {
        let id = rule.id.clone();
        let set = RuleSet::build(vec![rule])?;
        rows.push((
            id,
            best_of_five(&set, &events[0]),
            best_of_five(&set, &events[1]),
        ));
    }
    let mut times: Vec<f64> = rows.iter().map(|r| r.1).collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{:<28} {:>10} {:>12} {:>16}",
        "rule", "MB/s", "× median", "realistic MB/s"
    );
    for (id, secs, realistic_secs) in &rows {
        println!(
            "{id:<28} {:>10.0} {:>12.2} {:>16.0}",
            bytes[0] as f64 / secs / 1e6,
            secs / median,
            bytes[1] as f64 / realistic_secs / 1e6
        );
    }
    Ok(())
}
