//! Per-rule evaluation cost: each rule of a pack compiled alone and run over the corpus,
//! reported as MB/s and as a multiple of the median rule's time.

use std::time::Instant;

use flagstream_benches::corpus;
use flagstream_rules::{Pack, RuleSet};

fn main() -> anyhow::Result<()> {
    let pack = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "default".to_owned());
    let prompts = corpus::prompts(42, 2000, 2048, 0.05);
    let events = corpus::events(&prompts);
    let bytes: usize = prompts.iter().map(String::len).sum();
    let mut rows = Vec::new();
    for rule in Pack::builtin(&pack)?.rules {
        let id = rule.id.clone();
        let set = RuleSet::build(vec![rule])?;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let started = Instant::now();
            let flagged = events.iter().filter(|e| set.evaluate(e).flagged).count();
            std::hint::black_box(flagged);
            best = best.min(started.elapsed().as_secs_f64());
        }
        rows.push((id, best));
    }
    let mut times: Vec<f64> = rows.iter().map(|r| r.1).collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!("{:<28} {:>10} {:>12}", "rule", "MB/s", "× median");
    for (id, secs) in &rows {
        println!(
            "{id:<28} {:>10.0} {:>12.2}",
            bytes as f64 / secs / 1e6,
            secs / median
        );
    }
    Ok(())
}
