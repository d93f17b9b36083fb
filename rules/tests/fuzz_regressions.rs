//! Inputs the fuzz targets (`fuzz/`, run by `scripts/fuzz`) found to crash or misbehave,
//! kept verbatim so the fix stays fixed. Each test names its target.
#![allow(clippy::unwrap_used)]

use flagstream_rules::{Event, Rule, RuleSet};

fn event(prompt: &str) -> Event {
    let value = serde_json::json!({
        "id": "e1", "timestamp": "2026-03-01T12:00:00Z", "src_ip": "10.0.0.1",
        "provider": "openai", "model": "gpt-4o", "prompt": prompt,
    });
    Event::parse(value.to_string().as_bytes(), None).unwrap()
}

/// Target `rules`: a FlagWise-dialect regex that can match the empty string (here through
/// the leading `|`) panicked on non-ASCII text, where match offsets in the case-folded copy
/// are mapped back to the original (`m.end() - 1` underflowed). An empty match is a match
/// for Python's `re.search`, so the rule counts, with an empty span, as it does on ASCII
/// text.
#[test]
fn flagwise_regex_matching_empty_on_non_ascii_text() {
    let crash = br#"{"id": "f", "name": "f", "severity": "high", "points": 29, "dialect": "flagwise", "kind": "regex", "pattern": "|\b(?:\\d{0}[-\\s]?=)}\\d{4}\\b"}"#;
    let rule: Rule = serde_json::from_slice(crash).unwrap();
    let set = RuleSet::build(vec![rule]).unwrap();
    for text in ["Contraseña: straße", "x", "é"] {
        let verdict = set.evaluate(&event(text));
        assert!(verdict.flagged, "{text:?}");
        assert_eq!(verdict.score, 29, "{text:?}");
        for d in &verdict.detections {
            assert!(d.start <= d.end && d.end <= text.len(), "{text:?}: {d:?}");
        }
    }

    // Empty matches at the end of the text and after a multi-byte character too.
    let rule: Rule = serde_json::from_value(serde_json::json!({
        "id": "g", "name": "g", "severity": "low", "points": 1, "dialect": "flagwise",
        "kind": "regex", "pattern": "$|ß?$",
    }))
    .unwrap();
    let set = RuleSet::build(vec![rule]).unwrap();
    for text in ["İstanbul", "naïve ", "ß", "straße"] {
        let verdict = set.evaluate(&event(text));
        assert!(verdict.flagged, "{text:?}");
        for d in &verdict.detections {
            assert!(d.start <= d.end && d.end <= text.len(), "{text:?}: {d:?}");
            assert!(text.is_char_boundary(d.start) && text.is_char_boundary(d.end));
        }
    }
}

/// Target `rules`: a native regex matching the empty string (`\b`) right where the
/// normalizer had removed an invisible character (U+202E) gave a span ending before it
/// started: the start was mapped past the removed character, the end before it.
#[test]
fn empty_match_where_invisible_characters_were_removed() {
    let crash = br#"{"id": "cf", "name": "f", "severity": "high", "points": 30, "dbalect": "flagwite", "kind": "regex", "pattern": "\\b"}"#;
    let rule: Rule = serde_json::from_slice(crash).unwrap();
    let set = RuleSet::build(vec![rule]).unwrap();
    for text in [
        "Ｉｇｎｏｒｅ previous rules \u{202e}evil",
        "a\u{200b}b \u{200b}\u{200b}c\u{200b}",
        "\u{feff}x",
    ] {
        let verdict = set.evaluate(&event(text));
        assert!(verdict.flagged, "{text:?}");
        for d in &verdict.detections {
            assert!(d.start <= d.end && d.end <= text.len(), "{text:?}: {d:?}");
            assert!(text.is_char_boundary(d.start) && text.is_char_boundary(d.end));
        }
    }
}
