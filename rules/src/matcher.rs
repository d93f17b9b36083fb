//! The compiled text matchers behind a [`RuleSet`]: one automaton for every keyword, one
//! RegexSet for every regex, and the built-in detectors the rules reference.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::detector::injection::{InjectionScanner, Source};
use crate::detector::pii::{self, PiiKind};
use crate::detector::secrets::SecretScanner;
use crate::ruleset::{Compiled, RuleSet};
use crate::text::{Encoding, Smuggling};
use crate::{Error, Field, RuleKind};

/// Compiled-size cap per regex (and for the set): bounds memory and build time, and
/// refuses the patterns that would make the lazy DFA thrash.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;
const MAX_PATTERN_LEN: usize = 4096;
const MAX_KEYWORD_LEN: usize = 1024;
const MAX_KEYWORDS_PER_RULE: usize = 100_000;
/// Spans extracted per regex per text; the verdict keeps fewer.
const MAX_REGEX_MATCHES: usize = 64;

/// A rule matched text at `start..end` of `field` (in the original field's offsets).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub rule: usize,
    pub field: Field,
    pub start: usize,
    pub end: usize,
    pub decoded: Option<Encoding>,
    /// The built-in detector that found it, for detector rules.
    pub detector: Option<&'static str>,
}

/// A match: (rule index, start, end, built-in detector id).
pub(crate) type Found = (usize, usize, usize, Option<&'static str>);

#[derive(Debug, Clone)]
struct Keyword {
    rule: usize,
    /// Kept only for case-sensitive keywords, to confirm the automaton's caseless match.
    exact: Option<String>,
    whole_word: bool,
}

#[derive(Debug, Clone)]
struct Pattern {
    rule: usize,
    regex: Regex,
    /// Keywords with non-ASCII letters become regexes for Unicode case folding; they keep
    /// their whole-word option.
    whole_word: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Matchers {
    /// Keyword literals, followed by the injection anchors when the set has both: one
    /// automaton pass then serves the two, which is most of the cost on clean prose.
    keywords: Option<AhoCorasick>,
    keyword_meta: Vec<Keyword>,
    anchors_in_keywords: bool,
    regex_set: Option<RegexSet>,
    patterns: Vec<Pattern>,
    /// Rules interested in each secret format / injection family / PII kind.
    secrets: Option<(&'static SecretScanner, Vec<Vec<usize>>)>,
    injection: Option<(&'static InjectionScanner, Vec<Vec<usize>>)>,
    pii: Vec<(PiiKind, Vec<usize>)>,
    smuggling: [Vec<usize>; 3],
}

/// The scanners are compiled once per process, not per rule set: a reload or a dry-run of a
/// single rule should not pay for compiling forty secret formats again.
static SECRETS: LazyLock<SecretScanner> = LazyLock::new(SecretScanner::new);
static INJECTION: LazyLock<InjectionScanner> = LazyLock::new(InjectionScanner::new);

/// Every built-in detector id.
pub fn detector_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = SECRETS.ids().collect();
    ids.extend(INJECTION.ids());
    ids.extend(PiiKind::ALL.iter().map(|k| k.id()));
    ids.extend(Smuggling::ALL.iter().map(|s| s.id()));
    ids
}

fn invalid(c: &Compiled, reason: String) -> Error {
    Error::InvalidRule {
        rule_id: c.rule.id.clone(),
        reason,
    }
}

impl Matchers {
    pub fn build(rules: &[Compiled]) -> Result<Matchers, Error> {
        let mut m = Matchers::default();
        let mut literals: Vec<String> = Vec::new();
        let mut regex_sources: Vec<String> = Vec::new();
        let (secrets, injection) = (&*SECRETS, &*INJECTION);
        let mut secret_rules = vec![Vec::new(); secrets.ids().count()];
        let mut injection_rules = vec![Vec::new(); injection.ids().count()];
        for (index, c) in rules.iter().enumerate() {
            if c.rule.dialect.is_flagwise() {
                // Matched by `FlagwiseMatchers`, on the raw text.
                continue;
            }
            match &c.rule.kind {
                RuleKind::Keyword {
                    keywords,
                    case_sensitive,
                    whole_word,
                } => {
                    if keywords.is_empty() || keywords.len() > MAX_KEYWORDS_PER_RULE {
                        return Err(invalid(
                            c,
                            format!("needs 1 to {MAX_KEYWORDS_PER_RULE} keywords"),
                        ));
                    }
                    for k in keywords {
                        if k.trim().is_empty() || k.len() > MAX_KEYWORD_LEN {
                            return Err(invalid(
                                c,
                                format!(
                                    "keyword {:?} is empty or over {MAX_KEYWORD_LEN} bytes",
                                    crate::event::truncate(k, 40)
                                ),
                            ));
                        }
                        // A non-ASCII keyword joins the automaton as its few case spellings
                        // (the automaton folds ASCII itself); only one whose characters
                        // change length under case mapping, like `ß`, runs as a regex —
                        // which costs a full pass over every text.
                        let spellings = if *case_sensitive || k.is_ascii() {
                            Some(vec![k.clone()])
                        } else {
                            case_spellings(k)
                        };
                        let Some(spellings) = spellings else {
                            let source = format!("(?i){}", regex::escape(k));
                            m.add_regex(c, index, source, *whole_word, &mut regex_sources)?;
                            continue;
                        };
                        for spelling in spellings {
                            literals.push(spelling);
                            m.keyword_meta.push(Keyword {
                                rule: index,
                                exact: case_sensitive.then(|| k.clone()),
                                whole_word: *whole_word,
                            });
                        }
                    }
                }
                RuleKind::Regex {
                    pattern,
                    case_sensitive,
                } => {
                    if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
                        return Err(invalid(
                            c,
                            format!("pattern must be 1 to {MAX_PATTERN_LEN} bytes"),
                        ));
                    }
                    let source = if *case_sensitive {
                        pattern.clone()
                    } else {
                        format!("(?i){pattern}")
                    };
                    m.add_regex(c, index, source, false, &mut regex_sources)?;
                }
                RuleKind::Detector { detector } => {
                    let glob = crate::condition::Glob::new(detector);
                    let mut any = false;
                    for (i, id) in secrets.ids().enumerate() {
                        if glob.matches(id) {
                            secret_rules[i].push(index);
                            any = true;
                        }
                    }
                    for (i, id) in injection.ids().enumerate() {
                        if glob.matches(id) {
                            injection_rules[i].push(index);
                            any = true;
                        }
                    }
                    for kind in PiiKind::ALL {
                        if glob.matches(kind.id()) {
                            match m.pii.iter_mut().find(|(k, _)| *k == kind) {
                                Some((_, r)) => r.push(index),
                                None => m.pii.push((kind, vec![index])),
                            }
                            any = true;
                        }
                    }
                    for (i, kind) in Smuggling::ALL.iter().enumerate() {
                        if glob.matches(kind.id()) {
                            m.smuggling[i].push(index);
                            any = true;
                        }
                    }
                    if !any {
                        return Err(invalid(
                            c,
                            format!(
                                "unknown detector {:?}",
                                crate::event::truncate(detector, 64)
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
        let with_anchors = !literals.is_empty() && injection_rules.iter().any(|r| !r.is_empty());
        if !literals.is_empty() {
            let mut builder = AhoCorasickBuilder::new();
            let mut needles: Vec<&[u8]> = literals.iter().map(|l| l.as_bytes()).collect();
            if with_anchors {
                // Hundreds of short caseless needles: a DFA visits each byte once (see
                // the injection scanner).
                builder.kind(Some(AhoCorasickKind::DFA));
                needles.extend(injection.needles().iter().map(Vec::as_slice));
            }
            m.keywords = Some(
                builder
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(true)
                    .build(&needles)
                    .map_err(|e| Error::InvalidPack(format!("keyword automaton: {e}")))?,
            );
            m.anchors_in_keywords = with_anchors;
        }
        if !regex_sources.is_empty() {
            m.regex_set = Some(
                RegexSetBuilder::new(&regex_sources)
                    .size_limit(REGEX_SIZE_LIMIT.saturating_mul(regex_sources.len().min(64)))
                    .dfa_size_limit(REGEX_SIZE_LIMIT * 8)
                    .build()
                    .map_err(|e| Error::InvalidPack(format!("regex set: {e}")))?,
            );
        }
        if secret_rules.iter().any(|r| !r.is_empty()) {
            m.secrets = Some((secrets, secret_rules));
        }
        if injection_rules.iter().any(|r| !r.is_empty()) {
            m.injection = Some((injection, injection_rules));
        }
        Ok(m)
    }

    fn add_regex(
        &mut self,
        c: &Compiled,
        rule: usize,
        source: String,
        whole_word: bool,
        sources: &mut Vec<String>,
    ) -> Result<(), Error> {
        let regex = RegexBuilder::new(&source)
            .size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(64)
            .build()
            .map_err(|e| invalid(c, format!("regex does not compile: {e}")))?;
        if regex.is_match("") {
            return Err(invalid(
                c,
                "regex matches the empty string, so it would match every event".into(),
            ));
        }
        sources.push(source);
        self.patterns.push(Pattern {
            rule,
            regex,
            whole_word,
        });
        Ok(())
    }

    pub fn smuggling_rules(&self, kind: Smuggling) -> &[usize] {
        let i = Smuggling::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        &self.smuggling[i]
    }

    /// Appends (rule, start, end, detector) for every match in `text` of a rule allowed on
    /// `field`.
    pub fn find(
        &self,
        set: &RuleSet,
        text: &str,
        field: Field,
        active: &[bool],
        out: &mut Vec<Found>,
    ) {
        let keep = |rule: usize, s: usize, e: usize| set.keeps(rule, field, active, &text[s..e]);
        // Alone, the keyword automaton runs its prefilter (`is_match`) first and the
        // overlapping search, which steps every byte, only on the rare text that holds a
        // keyword. With the injection anchors folded in, one overlapping pass collects both;
        // anchors are kept non-overlapping, as the scanner's own search would report them.
        let mut anchors = Vec::new();
        let keywords = self
            .keywords
            .as_ref()
            .filter(|ac| self.anchors_in_keywords || ac.is_match(text));
        if let Some(ac) = keywords {
            let mut next_anchor = 0;
            for m in ac.find_overlapping_iter(text) {
                let (s, e) = (m.start(), m.end());
                let Some(k) = self.keyword_meta.get(m.pattern().as_usize()) else {
                    if s >= next_anchor {
                        next_anchor = e;
                        anchors.push((m.pattern().as_usize() - self.keyword_meta.len(), s, e));
                    }
                    continue;
                };
                if k.exact.as_deref().is_some_and(|x| x != &text[s..e])
                    || (k.whole_word && !is_whole_word(text, s, e))
                {
                    continue;
                }
                if keep(k.rule, s, e) {
                    out.push((k.rule, s, e, None));
                }
            }
        }
        if let Some(set_) = &self.regex_set {
            for i in set_.matches(text).iter() {
                let p = &self.patterns[i];
                if !set.allowed(p.rule, field, active) {
                    continue;
                }
                for m in p.regex.find_iter(text).take(MAX_REGEX_MATCHES) {
                    let (s, e) = (m.start(), m.end());
                    if (!p.whole_word || is_whole_word(text, s, e)) && keep(p.rule, s, e) {
                        out.push((p.rule, s, e, None));
                    }
                }
            }
        }
        let mut spans = Vec::new();
        if let Some((scanner, rules)) = &self.secrets {
            scanner.scan(text, &mut spans);
            for &(f, s, e) in &spans {
                for &rule in &rules[usize::from(f)] {
                    if keep(rule, s, e) {
                        out.push((rule, s, e, Some(scanner.id(f))));
                    }
                }
            }
            spans.clear();
        }
        if let Some((scanner, rules)) = &self.injection {
            // What the model reads or wrote is a document; what the user or operator wrote
            // is not (`Field::Any` keeps the stricter reading).
            let source = match field {
                Field::Response | Field::ToolArgs => Source::Document,
                _ => Source::User,
            };
            if self.anchors_in_keywords {
                scanner.scan_anchors(text, source, anchors, &mut spans);
            } else {
                scanner.scan(text, source, &mut spans);
            }
            for &(f, s, e) in &spans {
                for &rule in &rules[usize::from(f)] {
                    if keep(rule, s, e) {
                        out.push((rule, s, e, Some(scanner.id(f))));
                    }
                }
            }
        }
        let mut digit_runs = None;
        let mut pii_spans = Vec::new();
        for (kind, rules) in &self.pii {
            if !rules.iter().any(|&r| set.allowed(r, field, active)) {
                continue;
            }
            pii_spans.clear();
            let runs = digit_runs.get_or_insert_with(|| pii::digit_runs(text));
            pii::scan_with(*kind, text, runs, &mut pii_spans);
            for &(s, e) in &pii_spans {
                for &rule in rules {
                    if keep(rule, s, e) {
                        out.push((rule, s, e, Some(kind.id())));
                    }
                }
            }
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// True when the match is not glued to a word character on either side. Matches always
/// start and end on char boundaries, so slicing here cannot panic.
/// Most spellings a non-ASCII keyword may expand to before it is left to a regex.
const MAX_SPELLINGS: usize = 16;

/// The spellings of `keyword` under simple (one-to-one) case mapping of its non-ASCII
/// characters; None when a mapping changes the length or there are too many spellings.
fn case_spellings(keyword: &str) -> Option<Vec<String>> {
    let mut spellings = vec![String::new()];
    for ch in keyword.chars() {
        let mut forms = vec![ch];
        if !ch.is_ascii() {
            for mapped in [
                ch.to_lowercase().collect::<Vec<_>>(),
                ch.to_uppercase().collect(),
            ] {
                match mapped[..] {
                    [one] if !forms.contains(&one) => forms.push(one),
                    [_] => {}
                    _ => return None,
                }
            }
        }
        if spellings.len() * forms.len() > MAX_SPELLINGS {
            return None;
        }
        spellings = spellings
            .iter()
            .flat_map(|s| {
                forms.iter().map(move |f| {
                    let mut s = s.clone();
                    s.push(*f);
                    s
                })
            })
            .collect();
    }
    Some(spellings)
}

pub(crate) fn is_whole_word(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start]
        .chars()
        .next_back()
        .is_none_or(|c| !is_word_char(c));
    let after = text[end..].chars().next().is_none_or(|c| !is_word_char(c));
    let first = text[start..end].chars().next().is_some_and(is_word_char);
    let last = text[start..end]
        .chars()
        .next_back()
        .is_some_and(is_word_char);
    (before || !first) && (after || !last)
}
