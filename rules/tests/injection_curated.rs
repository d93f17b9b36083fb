//! The curated injection set (`tests/data/injection`): every attack is detected, in the
//! field it arrives in, and no hard negative is. Evidence is per signal: each detection
//! names its detector and the span of the phrase that fired.
#![allow(clippy::unwrap_used)]

use flagstream_rules::{Event, Rule, RuleSet};
use serde_json::{json, Value};

fn items(file: &str) -> Vec<(String, String)> {
    let path = format!("{}/tests/data/injection/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            (
                v["field"].as_str().unwrap().to_owned(),
                v["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn detections(rules: &RuleSet, field: &str, text: &str) -> Vec<(String, String)> {
    let mut event = json!({"id": "t", "timestamp": 0, "src_ip": "10.0.0.1", "provider": "p",
                           "model": "m", "prompt": ""});
    event[field] = text.into();
    let event = Event::parse(event.to_string().as_bytes(), None).unwrap();
    rules
        .evaluate(&event)
        .detections
        .iter()
        .map(|d| {
            (
                d.detector.clone().unwrap_or_default(),
                d.field.as_str().to_owned(),
            )
        })
        .collect()
}

fn rules() -> RuleSet {
    let rule: Rule = serde_json::from_value(json!({
        "id": "injection", "name": "injection", "severity": "high", "points": 50,
        "kind": "detector", "detector": "injection.*"
    }))
    .unwrap();
    RuleSet::build(vec![rule]).unwrap()
}

#[test]
fn every_curated_attack_is_detected_in_its_field() {
    let rules = rules();
    let attacks = items("curated-attacks.jsonl");
    assert!(attacks.len() >= 30);
    let missed: Vec<&String> = attacks
        .iter()
        .filter(|(field, text)| {
            !detections(&rules, field, text)
                .iter()
                .any(|d| d.0.starts_with("injection."))
        })
        .map(|(_, text)| text)
        .collect();
    assert!(
        missed.is_empty(),
        "missed {} attacks: {missed:#?}",
        missed.len()
    );
}

#[test]
fn no_curated_hard_negative_fires() {
    let rules = rules();
    let negatives = items("curated-hard-negatives.jsonl");
    assert!(negatives.len() >= 30);
    let fired: Vec<(&String, Vec<(String, String)>)> = negatives
        .iter()
        .map(|(field, text)| (text, detections(&rules, field, text)))
        .filter(|(_, d)| !d.is_empty())
        .collect();
    assert!(fired.is_empty(), "false positives: {fired:#?}");
}
