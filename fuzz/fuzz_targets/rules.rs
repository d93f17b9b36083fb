//! Rule and pack compilation: the input as a rule and as a pack, in TOML and in JSON (as
//! the API and `flagstream-consumer scan` accept them), compiled with `RuleSet::build` and
//! evaluated on a few fixed events. Covers both dialects, including the translation of
//! FlagWise's Python regexes.
#![no_main]

use flagstream_fuzz::{check_verdict, sample_events};
use flagstream_rules::{Pack, Rule, RuleSet};
use libfuzzer_sys::fuzz_target;

/// Rules larger than this are not what the fuzzer should spend its time compiling: the
/// regex size limit bounds compilation, but 4 KiB of pattern is already far past real rules.
const MAX_INPUT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut candidates: Vec<Vec<Rule>> = Vec::new();
    if let Ok(pack) = Pack::from_toml(text) {
        candidates.push(pack.rules);
    }
    if let Ok(pack) = Pack::from_json(text) {
        candidates.push(pack.rules);
    }
    if let Ok(rule) = toml::from_str::<Rule>(text) {
        candidates.push(vec![rule]);
    }
    if let Ok(rule) = serde_json::from_str::<Rule>(text) {
        candidates.push(vec![rule]);
    }
    for rules in candidates {
        if let Ok(set) = RuleSet::build(rules) {
            for event in sample_events() {
                check_verdict(event, &set.evaluate(event));
            }
        }
    }
});
