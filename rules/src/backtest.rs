//! What a draft rule would have done to past traffic. The consumer replays the topic and
//! feeds every event here; this module decides what the draft matches, what the rule set
//! with the draft in it would flag compared with the active set, and keeps a bounded tally
//! that survives a checkpoint (it is serialized with the read positions, so a resumed
//! backtest counts nothing twice).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::{Error, Event, Mode, Rule, RuleSet, Verdict};

/// Most draft rules one backtest tries.
pub const MAX_DRAFT_RULES: usize = 100;
/// Matches and flag differences kept as samples, each.
const MAX_SAMPLES: usize = 20;
/// Distinct excerpts counted; later ones are counted as `other_values`.
const MAX_VALUES: usize = 1_000;
/// Distinct models counted; later ones go under [`OTHER`].
const MAX_MODELS: usize = 200;
const TOP_VALUES: usize = 20;
const OTHER: &str = "(other)";

/// What is tried: rules (new ones, or new definitions of active ones with the same id) and
/// active rules the draft retires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub replaces: Vec<String>,
}

/// The three sets a backtest evaluates each event with.
pub struct Sets {
    /// The rules as they are.
    pub active: RuleSet,
    /// The active rules with the draft applied.
    pub proposed: RuleSet,
    /// The draft rules alone: what they match, and what they cost.
    pub draft: RuleSet,
    /// Active rules the proposed set does not have as they are (replaced or retired).
    gone: HashSet<String>,
}

impl Sets {
    /// Draft rules are tried enabled and enforcing, whatever their definition says: the
    /// question is what they would catch.
    pub fn build(active: Vec<Rule>, draft: &Draft, threshold: u32) -> Result<Sets, Error> {
        let tried: Vec<Rule> = draft
            .rules
            .iter()
            .cloned()
            .map(|mut r| {
                r.enabled = true;
                r.mode = Mode::Enforce;
                r
            })
            .collect();
        let gone: HashSet<String> = draft
            .rules
            .iter()
            .map(|r| r.id.clone())
            .chain(draft.replaces.iter().cloned())
            .collect();
        let proposed = active
            .iter()
            .filter(|r| !gone.contains(&r.id))
            .cloned()
            .chain(tried.iter().cloned())
            .collect();
        Ok(Sets {
            active: RuleSet::build(active)?.with_threshold(threshold),
            proposed: RuleSet::build(proposed)?.with_threshold(threshold),
            draft: RuleSet::build(tried)?.with_threshold(threshold),
            gone,
        })
    }

    /// Whether the proposed set flags the event, given the active set's and the draft's
    /// verdicts. The score is the points of the matched enforce rules, so when no draft
    /// rule and no replaced or retired rule matched, the proposed set matches exactly what
    /// the active set did; only the other events (a few percent) are evaluated again.
    pub fn proposed_flags(&self, event: &Event, active: &Verdict, draft: &Verdict) -> bool {
        let touched = !draft.detections.is_empty()
            || active
                .detections
                .iter()
                .any(|d| self.gone.contains(&d.rule_id));
        match touched {
            true => self.proposed.evaluate(event).flagged,
            false => active.flagged,
        }
    }
}

/// Where an event was read.
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub partition: i32,
    pub offset: i64,
}

/// A redacted match, as a backtest shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub event_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub event_time: time::OffsetDateTime,
    pub partition: i32,
    pub offset: i64,
    pub model: String,
    /// `rule_id`, `field`, redacted `excerpt` of each detection shown.
    pub detections: Vec<SampleDetection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleDetection {
    pub rule_id: String,
    pub field: String,
    pub excerpt: String,
}

/// Everything counted so far. Bounded: samples, excerpts and models are capped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Events in the range that were evaluated.
    pub events: u64,
    /// Messages in the range that are not events (the live consumer dead-letters them).
    pub unreadable: u64,
    /// Events at least one draft rule matched.
    pub matching: u64,
    /// Events the set with the draft applied would flag.
    pub would_flag: u64,
    /// Events the active set flags.
    pub active_flags: u64,
    /// Flagged with the draft, not by the active set.
    pub new_flags: u64,
    /// Flagged by the active set, not with the draft (a replaced or retired rule's).
    pub lost_flags: u64,
    /// Draft detections per rule, per field, and matching events per model.
    pub by_rule: BTreeMap<String, u64>,
    pub by_field: BTreeMap<String, u64>,
    pub by_model: BTreeMap<String, u64>,
    /// Redacted excerpts of draft detections and how often each occurred.
    pub values: BTreeMap<String, u64>,
    /// Detections whose excerpt came after [`MAX_VALUES`] distinct ones.
    pub other_values: u64,
    pub samples: Vec<Sample>,
    pub new_flag_samples: Vec<Sample>,
    pub lost_flag_samples: Vec<Sample>,
    /// Time the draft rules alone took, and the text they scanned, for their cost.
    pub draft_nanos: u64,
    pub draft_bytes: u64,
}

impl Tally {
    /// Counts one event. `draft` is the draft set's verdict; `active` and `proposed` whether
    /// each set flags it.
    pub fn add(&mut self, event: &Event, at: At, draft: &Verdict, active: bool, proposed: bool) {
        self.events += 1;
        self.draft_bytes += text_len(event) as u64;
        self.active_flags += u64::from(active);
        self.would_flag += u64::from(proposed);
        let sample = || Sample {
            event_id: event.id.clone(),
            event_time: event.timestamp,
            partition: at.partition,
            offset: at.offset,
            model: event.model.clone(),
            detections: draft
                .detections
                .iter()
                .map(|d| SampleDetection {
                    rule_id: d.rule_id.clone(),
                    field: d.field.as_str().to_owned(),
                    excerpt: d.excerpt.clone(),
                })
                .collect(),
        };
        if proposed && !active {
            self.new_flags += 1;
            push_bounded(&mut self.new_flag_samples, sample);
        }
        if active && !proposed {
            self.lost_flags += 1;
            push_bounded(&mut self.lost_flag_samples, sample);
        }
        if draft.detections.is_empty() {
            return;
        }
        self.matching += 1;
        push_bounded(&mut self.samples, sample);
        let models = self.by_model.len();
        let model = match self.by_model.contains_key(&event.model) || models < MAX_MODELS {
            true => event.model.as_str(),
            false => OTHER,
        };
        *self.by_model.entry(model.to_owned()).or_default() += 1;
        for d in &draft.detections {
            *self.by_rule.entry(d.rule_id.clone()).or_default() += 1;
            *self
                .by_field
                .entry(d.field.as_str().to_owned())
                .or_default() += 1;
            let distinct = self.values.len();
            match self.values.get_mut(&d.excerpt) {
                Some(n) => *n += 1,
                None if distinct < MAX_VALUES => {
                    self.values.insert(d.excerpt.clone(), 1);
                }
                None => self.other_values += 1,
            }
        }
    }

    /// The most frequent excerpts, most frequent first.
    pub fn top_values(&self) -> Vec<(&str, u64)> {
        let mut top: Vec<(&str, u64)> = self.values.iter().map(|(v, n)| (v.as_str(), *n)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        top.truncate(TOP_VALUES);
        top
    }
}

impl Tally {
    /// What a finished backtest reports: the counts, the top excerpts instead of all of
    /// them, and what the draft rules cost per event.
    pub fn report(&self) -> serde_json::Value {
        let top: Vec<serde_json::Value> = self
            .top_values()
            .into_iter()
            .map(|(excerpt, count)| serde_json::json!({"excerpt": excerpt, "count": count}))
            .collect();
        let per_event = match self.events {
            0 => 0.0,
            n => self.draft_nanos as f64 / n as f64,
        };
        let mb_per_second = match self.draft_nanos {
            0 => 0.0,
            ns => self.draft_bytes as f64 / 1e6 / (ns as f64 / 1e9),
        };
        serde_json::json!({
            "events": self.events,
            "unreadable": self.unreadable,
            "matching_events": self.matching,
            "would_flag": self.would_flag,
            "active_flags": self.active_flags,
            "new_flags": self.new_flags,
            "lost_flags": self.lost_flags,
            "by_rule": self.by_rule,
            "by_field": self.by_field,
            "by_model": self.by_model,
            "top_values": top,
            "other_values": self.other_values,
            "samples": self.samples,
            "new_flag_samples": self.new_flag_samples,
            "lost_flag_samples": self.lost_flag_samples,
            "cost": {"draft_ns_per_event": per_event, "draft_mb_per_second": mb_per_second},
        })
    }
}

fn push_bounded(samples: &mut Vec<Sample>, sample: impl FnOnce() -> Sample) {
    if samples.len() < MAX_SAMPLES {
        samples.push(sample());
    }
}

/// Bytes of text the rules scan in an event.
fn text_len(event: &Event) -> usize {
    event.prompt.len()
        + [&event.system, &event.response, &event.tool_args]
            .into_iter()
            .flatten()
            .map(String::len)
            .sum::<usize>()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(id: &str, keyword: &str) -> Rule {
        serde_json::from_value(
            json!({"id": id, "name": id, "severity": "high", "points": 50,
                                      "kind": "keyword", "keywords": [keyword]}),
        )
        .unwrap()
    }

    fn event(id: &str, prompt: &str) -> Event {
        let raw = json!({"id": id, "timestamp": "2026-12-01T00:00:00Z", "src_ip": "10.0.0.1",
                         "provider": "openai", "model": "gpt-4o", "prompt": prompt});
        Event::parse(raw.to_string().as_bytes(), None).unwrap()
    }

    fn run(sets: &Sets, events: &[Event]) -> Tally {
        let mut tally = Tally::default();
        for (i, e) in events.iter().enumerate() {
            let at = At {
                partition: 0,
                offset: i as i64,
            };
            let draft = sets.draft.evaluate(e);
            let active = sets.active.evaluate(e);
            let proposed = sets.proposed_flags(e, &active, &draft);
            assert_eq!(proposed, sets.proposed.evaluate(e).flagged, "{}", e.id);
            tally.add(e, at, &draft, active.flagged, proposed);
        }
        tally
    }

    #[test]
    fn a_replacement_reports_new_and_lost_flags_against_the_active_set() {
        let active = vec![rule("acme.birds", "falcon"), rule("acme.fish", "salmon")];
        // The new definition of acme.birds looks for osprey instead of falcon.
        let mut shadow = rule("acme.birds", "osprey");
        shadow.mode = Mode::Shadow;
        let draft = Draft {
            rules: vec![shadow],
            replaces: vec![],
        };
        let sets = Sets::build(active, &draft, 1).unwrap();
        let events = [
            event("a", "the falcon flies"),
            event("b", "an osprey dives"),
            event("c", "salmon and osprey"),
            event("d", "nothing here"),
        ];
        let tally = run(&sets, &events);
        assert_eq!(tally.events, 4);
        assert_eq!(tally.matching, 2);
        assert_eq!((tally.active_flags, tally.would_flag), (2, 2));
        assert_eq!((tally.new_flags, tally.lost_flags), (1, 1));
        assert_eq!(tally.new_flag_samples[0].event_id, "b");
        assert_eq!(tally.lost_flag_samples[0].event_id, "a");
        assert_eq!(tally.by_rule["acme.birds"], 2);
        assert_eq!(tally.by_field["prompt"], 2);
        assert_eq!(tally.by_model["gpt-4o"], 2);
        assert_eq!(tally.top_values()[0].1, 1);
        assert!(tally
            .samples
            .iter()
            .all(|s| !s.detections[0].excerpt.contains("osprey")));
    }

    #[test]
    fn retiring_a_rule_loses_its_flags_and_the_tally_stays_bounded() {
        let active = vec![rule("acme.fish", "salmon")];
        let draft = Draft {
            rules: vec![rule("acme.birds", "osprey")],
            replaces: vec!["acme.fish".into()],
        };
        let sets = Sets::build(active, &draft, 1).unwrap();
        // Even events only the retired rule flags; odd ones only the new rule, each with a
        // different excerpt.
        let n = 2 * (MAX_VALUES + 50);
        let events: Vec<Event> = (0..n)
            .map(|i| match i % 2 {
                0 => event(&format!("e{i}"), "salmon"),
                _ => event(&format!("e{i}"), &format!("osprey {i:06}")),
            })
            .collect();
        let tally = run(&sets, &events);
        assert_eq!(
            (tally.lost_flags, tally.new_flags),
            (n as u64 / 2, n as u64 / 2)
        );
        assert_eq!(tally.matching, n as u64 / 2);
        assert_eq!(tally.samples.len(), MAX_SAMPLES);
        assert!(tally.values.len() <= MAX_VALUES);
        assert_eq!(
            tally.values.values().sum::<u64>() + tally.other_values,
            tally.matching
        );
        assert_eq!(tally.other_values, 50);
        // What a checkpoint stores comes back the same.
        let back: Tally = serde_json::from_value(serde_json::to_value(&tally).unwrap()).unwrap();
        assert_eq!(back, tally);
    }
}
