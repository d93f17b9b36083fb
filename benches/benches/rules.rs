//! Rule-engine throughput on a generated corpus: the `default` and `flagwise-compat` packs,
//! a naive baseline that evaluates each rule on its own, and (feature `hyperscan`) Hyperscan
//! on the same literal and regex set.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flagstream_benches::corpus;
use flagstream_rules::{Pack, RuleSet};

const SEED: u64 = 42;

fn packs(c: &mut Criterion) {
    for (label, size) in [("2KB", 2048), ("mixed_0.5-8KB", 0)] {
        let prompts = corpus::prompts(SEED, 500, size, 0.05);
        let events = corpus::events(&prompts);
        let bytes: usize = prompts.iter().map(String::len).sum();
        let mut group = c.benchmark_group(format!("rules/{label}"));
        group.throughput(Throughput::Bytes(bytes as u64));
        for pack in ["default", "flagwise-compat"] {
            let set = RuleSet::build(Pack::builtin(pack).expect("pack").rules).expect("build");
            group.bench_function(pack, |b| {
                b.iter(|| events.iter().filter(|e| set.evaluate(e).flagged).count())
            });
        }
        // The naive way: each rule compiled and run on its own, one pass per rule.
        let singles: Vec<RuleSet> = Pack::builtin("default")
            .expect("pack")
            .rules
            .into_iter()
            .filter_map(|r| RuleSet::build(vec![r]).ok())
            .collect();
        group.bench_function("default_naive_per_rule", |b| {
            b.iter(|| {
                events
                    .iter()
                    .filter(|e| singles.iter().any(|s| s.evaluate(e).flagged))
                    .count()
            })
        });
        #[cfg(feature = "hyperscan")]
        hyperscan_baseline::bench(&mut group, &prompts);
        group.finish();
    }
}

#[cfg(feature = "hyperscan")]
mod hyperscan_baseline {
    use criterion::measurement::WallTime;
    use criterion::BenchmarkGroup;
    use hyperscan::prelude::*;

    /// FlagWise's default literals and regexes, compiled as one Hyperscan database.
    pub fn bench(group: &mut BenchmarkGroup<'_, WallTime>, prompts: &[String]) {
        let mut patterns: Vec<Pattern> = [
            "password",
            "secret",
            "api_key",
            "private_key",
            "confidential",
            "classified",
            "internal",
        ]
        .iter()
        .map(|k| Pattern::with_flags(*k, CompileFlags::CASELESS).expect("literal"))
        .collect();
        for re in [
            r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}",
            r"\b(?:\d{4}[-\s]?){3}\d{4}\b",
            r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b",
            r"\b\d{3}[-.]?\d{3}[-.]?\d{4}\b",
        ] {
            patterns.push(
                Pattern::with_flags(re, CompileFlags::CASELESS | CompileFlags::SOM_LEFTMOST)
                    .expect("regex"),
            );
        }
        for (i, p) in patterns.iter_mut().enumerate() {
            p.id = Some(i);
        }
        let db: BlockDatabase = Patterns::from(patterns)
            .build()
            .expect("hyperscan database");
        let scratch = db.alloc_scratch().expect("scratch");
        group.bench_function("flagwise-compat_hyperscan", |b| {
            b.iter(|| {
                let mut hits = 0usize;
                for p in prompts {
                    db.scan(p.as_str(), &scratch, |_, _, _, _| {
                        hits += 1;
                        Matching::Continue
                    })
                    .expect("scan");
                }
                hits
            })
        });
    }
}

criterion_group!(benches, packs);
criterion_main!(benches);
