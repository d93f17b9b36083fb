//! Rule-engine throughput on a generated corpus: the `default` and `flagwise-compat` packs,
//! a naive baseline that evaluates each rule on its own, and (feature `hyperscan`) Hyperscan
//! on the same literal and regex set.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flagstream_benches::traffic::TrafficGenerator;
use flagstream_benches::{corpus, realistic};
use flagstream_rules::{Event, Pack, RuleSet};

const SEED: u64 = 42;

fn packs(c: &mut Criterion) {
    let corpora = [
        ("2KB", corpus::prompts(SEED, 500, 2048, 0.05)),
        ("mixed_0.5-8KB", corpus::prompts(SEED, 500, 0, 0.05)),
        // Traffic full of the words rules anchor on (see `realistic`), with and without
        // planted findings.
        ("realistic_2KB", realistic::prompts(SEED, 500, 2048, 0.05)),
        (
            "realistic_2KB_clean",
            realistic::prompts(SEED, 500, 2048, 0.0),
        ),
    ];
    for (label, prompts) in corpora {
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

    /// Hyperscan as fast as it goes: block mode, one database, match reports only (no
    /// start-of-match, no validation, no evidence), counting matches.
    fn run(
        group: &mut BenchmarkGroup<'_, WallTime>,
        name: &str,
        patterns: Vec<Pattern>,
        prompts: &[String],
    ) {
        let mut patterns = patterns;
        for (i, p) in patterns.iter_mut().enumerate() {
            p.id = Some(i);
        }
        let db: BlockDatabase = Patterns::from(patterns)
            .build()
            .expect("hyperscan database");
        let scratch = db.alloc_scratch().expect("scratch");
        group.bench_function(name, |b| {
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

    fn pattern(re: &str, flags: CompileFlags) -> Pattern {
        Pattern::with_flags(re, flags).expect("hyperscan pattern")
    }

    pub fn bench(group: &mut BenchmarkGroup<'_, WallTime>, prompts: &[String]) {
        // FlagWise's default literals and regexes: the `flagwise-compat` pack's patterns.
        let mut compat: Vec<Pattern> = [
            "password",
            "secret",
            "api_key",
            "private_key",
            "confidential",
            "classified",
            "internal",
        ]
        .iter()
        .map(|k| pattern(k, CompileFlags::CASELESS))
        .collect();
        for re in [
            r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}",
            r"\b(?:\d{4}[-\s]?){3}\d{4}\b",
            r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b",
            r"\b\d{3}[-.]?\d{3}[-.]?\d{4}\b",
        ] {
            compat.push(pattern(re, CompileFlags::CASELESS));
        }
        run(group, "flagwise-compat_hyperscan", compat, prompts);

        // The `default` pack's candidates as regexes: its keywords, the shapes its PII
        // detectors validate, the secret formats' prefixes and the assignment context, the
        // injection phrase families and the smuggled characters. Hyperscan only finds
        // candidates; the pack also validates them (Luhn, mod-97, CRC32, …) and reports
        // spans and excerpts, so this is a lower bound on the work, not the same output.
        let word = CompileFlags::CASELESS;
        let mut default: Vec<Pattern> = [
            "password",
            "passwd",
            "api key",
            "secret key",
            "private key",
            "access token",
            "mot de passe",
            "contraseña",
            "passwort",
        ]
        .iter()
        .map(|k| pattern(&format!(r"\b{k}\b"), word | CompileFlags::UTF8))
        .collect();
        for re in [
            // PII shapes.
            r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}",
            r"\b\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}\b",
            r"\b[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,4})?\b",
            r"\b\d{3}-\d{2}-\d{4}\b",
            r"(?:\+\d{1,3}[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b",
            r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
            r"\b(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{1,4}\b",
            // Secret-like names assigned a value.
            r"(?:password|passwd|secret|token|api_?key|access_?key|client_?secret)[\x22']?\s*[:=]\s*[\x22']?[^\s\x22']{8,}",
            // Injection families.
            r"\b(?:ignore|disregard|forget|override)\W+(?:\w+\W+){0,3}(?:previous|prior|above|earlier|all)\W+(?:\w+\W+){0,2}(?:instructions|rules|directions|prompts?)\b",
            r"\b(?:reveal|show|print|repeat|output|tell)\W+(?:\w+\W+){0,3}(?:system|initial|hidden)\W+(?:prompt|instructions|message)\b",
            r"\b(?:developer|god|jailbreak|unrestricted)\W+mode\b",
            r"\byou\W+are\W+(?:now\W+)?(?:dan|an?\W+unrestricted|free\W+from)\b",
            r"\bdo\W+anything\W+now\b",
            r"\bpretend\W+(?:that\W+)?you\W+(?:have\W+no|are\W+not\W+bound)\b",
            r"(?:^|\n)\s*(?:###\s*)?(?:system|assistant)\s*:",
            r"<\|im_start\|>|\[/?inst\]|<</?sys>>",
        ] {
            default.push(pattern(re, word));
        }
        for prefix in [
            "AKIA",
            "ASIA",
            "ghp_",
            "gho_",
            "ghu_",
            "ghs_",
            "ghr_",
            "github_pat_",
            "glpat-",
            "sk-proj-",
            "sk-ant-",
            "sk-or-v1-",
            "xoxb-",
            "xoxp-",
            "xapp-",
            "hooks.slack.com/services/",
            "sk_live_",
            "rk_live_",
            "sk_test_",
            "AIza",
            "GOCSPX-",
            "ya29.",
            "-----BEGIN",
            "eyJhbGci",
            "SG\\.",
            "npm_",
            "pypi-",
            "dckr_pat_",
            "hf_",
            "dapi",
            "shpat_",
            "shpss_",
            "sq0atp-",
            "sq0csp-",
            "dop_v1_",
            "doo_v1_",
            "ATATT3",
            "PMAK-",
            "lin_api_",
            "dp\\.pt\\.",
            "hvs\\.",
            "AGE-SECRET-KEY-1",
            "glc_",
            "glsa_",
            "NRAK-",
            "sntrys_",
            "pul-",
            "xai-",
            "gsk_",
            "r8_",
            "pplx-",
            "lsv2_pt_",
            "rubygems_",
            "tskey-",
            "pk\\.eyJ",
            "squ_",
            "pscale_tkn_",
            "sbp_",
            "FlyV1 ",
            "LTAI",
            "sl\\.",
            "EAAC",
            "key-",
            "xkeysib-",
        ] {
            default.push(pattern(
                &format!("{prefix}[A-Za-z0-9_\\-.=/+]{{16,}}"),
                CompileFlags::empty(),
            ));
        }
        // Smuggled characters: zero-width and bidi controls, Unicode tag characters.
        default.push(pattern(
            r"[\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2060}-\x{2064}\x{2066}-\x{2069}\x{FEFF}]|[\x{E0000}-\x{E007F}]",
            CompileFlags::UTF8,
        ));
        run(group, "default_candidates_hyperscan", default, prompts);
    }
}

/// The consumer's per-event work on the traffic its benchmark produces (2 KB events, 5 %
/// flaggable): parsing alone, then parsing and the `default` pack.
fn events(c: &mut Criterion) {
    let mut generator = TrafficGenerator::new(SEED, 0.05, 0.0);
    generator.event_bytes = 2048;
    let payloads: Vec<Vec<u8>> = (0..500).map(|_| generator.next_event().payload).collect();
    let set = RuleSet::build(Pack::builtin("default").expect("pack").rules).expect("build");
    let mut group = c.benchmark_group("event/2KB");
    group.throughput(Throughput::Elements(payloads.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            payloads
                .iter()
                .filter(|p| Event::parse(p, None).is_ok())
                .count()
        })
    });
    group.bench_function("parse_evaluate", |b| {
        b.iter(|| {
            payloads
                .iter()
                .filter_map(|p| Event::parse(p, None).ok())
                .filter(|e| set.evaluate(e).flagged)
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, packs, events);
criterion_main!(benches);
