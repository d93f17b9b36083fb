//! Invariants over generated input: twins agree, spans are sound, nothing panics.
#![allow(clippy::unwrap_used)]

use flagstream_rules::{Event, Pack, Rule, RuleSet};
use proptest::prelude::*;
use serde_json::json;

fn event_with(prompt: &str, response: &str) -> Event {
    let body = json!({
        "id": "p", "timestamp": "2026-01-01T00:00:00Z", "src_ip": "10.0.0.1",
        "provider": "openai", "model": "gpt-4o", "prompt": prompt, "response": response,
    });
    Event::parse(body.to_string().as_bytes(), None).expect("valid event")
}

fn rule(kind: serde_json::Value) -> Rule {
    let mut value = json!({"id": "r", "name": "r", "severity": "low", "points": 1});
    value
        .as_object_mut()
        .unwrap()
        .extend(kind.as_object().unwrap().clone());
    serde_json::from_value(value).unwrap()
}

fn spans(set: &RuleSet, text: &str) -> Vec<(usize, usize)> {
    set.evaluate(&event_with(text, ""))
        .detections
        .iter()
        .map(|d| (d.start, d.end))
        .collect()
}

/// Text that mixes ASCII, accents, CJK, zero-width, bidi and tag characters, and base64.
fn messy_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[a-zA-Z0-9 .,:;=@_/+-]{0,12}",
            Just("é".to_owned()),
            Just("日本".to_owned()),
            Just("\u{200B}".to_owned()),
            Just("\u{202E}".to_owned()),
            Just("\u{E0069}\u{E0067}".to_owned()),
            Just("aWdub3JlIHByZXZpb3VzIGluc3RydWN0aW9ucw==".to_owned()),
            Just("4111 1111 1111 1111".to_owned()),
            Just("password=Xk9#mQ2$vL7p".to_owned()),
            any::<char>().prop_map(String::from),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_keyword_and_its_escaped_regex_twin_find_the_same_spans(
        middle in "[a-w]{0,4}",
        text in "[a-wxyXY .]{0,60}",
        whole_word in any::<bool>(),
    ) {
        // Keywords start with a letter found nowhere else in them, so they cannot overlap
        // themselves (the automaton reports overlaps, a regex does not).
        let keyword = format!("x{middle}y");
        let keyword_set = RuleSet::build(vec![rule(json!({
            "kind": "keyword", "keywords": [keyword], "whole_word": whole_word,
        }))]).unwrap();
        let escaped = regex::escape(&keyword);
        let pattern = if whole_word { format!(r"\b{escaped}\b") } else { escaped };
        let regex_set = RuleSet::build(vec![rule(json!({"kind": "regex", "pattern": pattern}))]).unwrap();
        prop_assert_eq!(spans(&keyword_set, &text), spans(&regex_set, &text));
    }

    #[test]
    fn detections_are_in_bounds_on_char_boundaries_and_never_carry_the_match(
        prompt in messy_text(),
        response in messy_text(),
    ) {
        let set = RuleSet::build(Pack::builtin("default").unwrap().rules).unwrap();
        let event = event_with(&prompt, &response);
        for d in set.evaluate(&event).detections {
            let text = match d.field {
                flagstream_rules::Field::Prompt => &event.prompt,
                flagstream_rules::Field::Response => event.response.as_deref().unwrap_or(""),
                _ => continue,
            };
            prop_assert!(d.start <= d.end && d.end <= text.len(), "{:?}", d);
            prop_assert!(text.is_char_boundary(d.start) && text.is_char_boundary(d.end), "{:?}", d);
            let matched = &text[d.start..d.end];
            if matched.chars().count() > 4 {
                prop_assert!(!d.excerpt.contains(matched), "excerpt {:?} shows {:?}", d.excerpt, matched);
            }
        }
    }

    #[test]
    fn build_never_panics_on_arbitrary_rules(
        kind in prop_oneof![
            Just("keyword"), Just("regex"), Just("model"), Just("provider"),
            Just("cidr"), Just("threshold"), Just("detector"), Just("nonsense"),
        ],
        strings in prop::collection::vec(any::<String>(), 0..4),
        number in any::<f64>(),
        flag in any::<bool>(),
    ) {
        let value = json!({
            "id": strings.first().cloned().unwrap_or_default(), "name": "n", "severity": "low",
            "points": 1, "kind": kind, "keywords": strings, "case_sensitive": flag,
            "pattern": strings.last().cloned().unwrap_or_default(), "deny": strings,
            "ranges": strings, "metric": "cost_usd", "op": "gt", "value": number,
            "detector": strings.first().cloned().unwrap_or_default(),
        });
        if let Ok(r) = serde_json::from_value::<Rule>(value) {
            let _ = RuleSet::build(vec![r]);
        }
    }

    #[test]
    fn evaluation_never_panics_on_arbitrary_events(
        prompt in messy_text(),
        bytes in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let set = RuleSet::build(Pack::builtin("default").unwrap().rules).unwrap();
        let _ = set.evaluate(&event_with(&prompt, &prompt));
        // Arbitrary bytes are refused with an error, never a panic.
        let _ = Event::parse(&bytes, None);
    }
}
