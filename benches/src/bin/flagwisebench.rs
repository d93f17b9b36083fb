//! The `flagwise-compat` pack against FlagWise's own engine on the same events: Flagstream's
//! throughput (fastest of five passes, one core) and the Python reference's
//! (`rules/tests/flagwise_reference.py --bench`: FlagWise's rule loop with Python's `re`,
//! timed inside the interpreter, parsing excluded), on ASCII and on mixed-language 2 KB
//! prompts with 5 % planted findings.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use flagstream_benches::corpus;
use flagstream_rules::{Event, Pack, RuleSet};

const PACK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../rules/packs/flagwise-compat.toml"
);
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../rules/tests/flagwise_reference.py"
);

/// Seconds for the fastest of five passes, and how many events were flagged.
fn flagstream(set: &RuleSet, events: &[Event]) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut flagged = 0;
    for _ in 0..5 {
        let started = Instant::now();
        flagged = events.iter().filter(|e| set.evaluate(e).flagged).count();
        best = best.min(started.elapsed().as_secs_f64());
    }
    (best, flagged)
}

/// Seconds the Python reference spends matching, and how many events it flagged.
fn python(prompts: &[String]) -> anyhow::Result<(f64, usize)> {
    let mut child = Command::new("python3")
        .args([REFERENCE, PACK, "--bench"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("python3 (3.11 or later) runs the reference")?;
    let mut input = String::new();
    for p in prompts {
        input.push_str(&serde_json::json!({"prompt": p, "model": "gpt-4o"}).to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().context("stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    anyhow::ensure!(output.status.success(), "the reference failed");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    Ok((
        report["seconds"].as_f64().context("seconds")?,
        report["flagged"].as_u64().context("flagged")? as usize,
    ))
}

fn main() -> anyhow::Result<()> {
    let set = RuleSet::build(Pack::builtin("flagwise-compat")?.rules)?;
    println!(
        "{:<10} {:>12} {:>12} {:>9}   flagged (flagstream / python)",
        "corpus", "flagstream", "python", "speed-up"
    );
    for (label, prompts) in [
        ("ascii", corpus::ascii_prompts(42, 4000, 2048, 0.05)),
        ("mixed", corpus::prompts(42, 4000, 2048, 0.05)),
    ] {
        let events = corpus::events(&prompts);
        let bytes: usize = prompts.iter().map(String::len).sum();
        let (ours, ours_flagged) = flagstream(&set, &events);
        let (theirs, theirs_flagged) = python(&prompts)?;
        let rate = |secs: f64| format!("{:.0} MB/s", bytes as f64 / secs / 1e6);
        println!(
            "{label:<10} {:>12} {:>12} {:>8.0}x   {ours_flagged} / {theirs_flagged}",
            rate(ours),
            rate(theirs),
            theirs / ours
        );
    }
    Ok(())
}
