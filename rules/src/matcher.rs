//! The compiled text matchers behind a [`RuleSet`]: one automaton for every keyword, one
//! RegexSet for every regex, and the built-in detectors the rules reference.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::detector::{self, Detector, Finding, Input, Source};
use crate::text::{Encoding, Smuggling};
use crate::{Error, Field, Rule, RuleKind};

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

/// Which matches count. The rule set decides; the matchers know rules only by index.
pub(crate) trait Admit {
    /// Whether `rule` applies to the text being matched at all.
    fn applies(&self, rule: usize) -> bool;
    /// Whether a match of `rule` on `matched` counts (the rule applies and no exception
    /// allows the text).
    fn keeps(&self, rule: usize, matched: &str) -> bool;
}

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
    /// Keyword literals, followed by the anchors of the detectors in use when the set has
    /// both: one automaton pass then serves them all, which is most of the cost on clean
    /// prose.
    keywords: Option<AhoCorasick>,
    keyword_meta: Vec<Keyword>,
    /// Some detector's anchors are among the automaton's patterns.
    anchors_in_keywords: bool,
    regex_set: Option<RegexSet>,
    patterns: Vec<Pattern>,
    /// The built-in detectors some rule uses.
    detectors: Vec<Enabled>,
    /// Rules interested in each kind of smuggled Unicode.
    smuggling: [Vec<usize>; 3],
}

/// A built-in detector in use, and the rules interested in each of its ids.
#[derive(Clone)]
struct Enabled {
    detector: &'static dyn Detector,
    ids: Vec<&'static str>,
    rules: Vec<Vec<usize>>,
    /// The index of its first anchor among the keyword automaton's patterns, when its
    /// anchors are searched there.
    anchors_at: Option<usize>,
}

impl std::fmt::Debug for Enabled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enabled")
            .field("ids", &self.ids)
            .field("rules", &self.rules)
            .field("anchors_at", &self.anchors_at)
            .finish()
    }
}

/// Every built-in detector id.
pub fn detector_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = detector::all().iter().flat_map(|d| d.ids()).collect();
    ids.extend(Smuggling::ALL.iter().map(|s| s.id()));
    ids
}

fn invalid(rule: &Rule, reason: String) -> Error {
    Error::InvalidRule {
        rule_id: rule.id.clone(),
        reason,
    }
}

impl Matchers {
    pub fn build(rules: &[&Rule]) -> Result<Matchers, Error> {
        let mut m = Matchers::default();
        let mut literals: Vec<String> = Vec::new();
        let mut regex_sources: Vec<String> = Vec::new();
        let mut detectors: Vec<Enabled> = detector::all()
            .into_iter()
            .map(|detector| {
                let ids = detector.ids();
                Enabled {
                    detector,
                    rules: vec![Vec::new(); ids.len()],
                    ids,
                    anchors_at: None,
                }
            })
            .collect();
        for (index, &c) in rules.iter().enumerate() {
            if c.dialect.is_flagwise() {
                // Matched by `FlagwiseMatchers`, on the raw text.
                continue;
            }
            match &c.kind {
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
                    for d in &mut detectors {
                        for (i, id) in d.ids.iter().enumerate() {
                            if glob.matches(id) {
                                d.rules[i].push(index);
                                any = true;
                            }
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
        detectors.retain(|d| d.rules.iter().any(|r| !r.is_empty()));
        if !literals.is_empty() {
            let mut builder = AhoCorasickBuilder::new();
            let mut needles: Vec<&[u8]> = literals.iter().map(|l| l.as_bytes()).collect();
            for d in &mut detectors {
                let anchors = d.detector.anchors();
                if !anchors.is_empty() {
                    d.anchors_at = Some(needles.len());
                    needles.extend(anchors.iter().map(Vec::as_slice));
                }
            }
            m.anchors_in_keywords = needles.len() > literals.len();
            if m.anchors_in_keywords {
                // Hundreds of short caseless needles: a DFA visits each byte once (see
                // the injection scanner).
                builder.kind(Some(AhoCorasickKind::DFA));
            }
            m.keywords = Some(
                builder
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(true)
                    .build(&needles)
                    .map_err(|e| Error::InvalidPack(format!("keyword automaton: {e}")))?,
            );
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
        m.detectors = detectors;
        Ok(m)
    }

    fn add_regex(
        &mut self,
        c: &Rule,
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

    /// Appends (rule, start, end, detector) for every match in `text` (of `field`) that
    /// `admit` keeps.
    pub fn find(&self, admit: &impl Admit, text: &str, field: Field, out: &mut Vec<Found>) {
        let keep = |rule: usize, s: usize, e: usize| admit.keeps(rule, &text[s..e]);
        // Alone, the keyword automaton runs its prefilter (`is_match`) first and the
        // overlapping search, which steps every byte, only on the rare text that holds a
        // keyword. With detector anchors folded in, one overlapping pass collects both;
        // each detector's anchors are kept non-overlapping, as its own search would report
        // them.
        let mut anchors: Vec<Vec<(usize, usize, usize)>> = Vec::new();
        let keywords = self
            .keywords
            .as_ref()
            .filter(|ac| self.anchors_in_keywords || ac.is_match(text));
        if let Some(ac) = keywords {
            if self.anchors_in_keywords {
                anchors.resize(self.detectors.len(), Vec::new());
            }
            for m in ac.find_overlapping_iter(text) {
                let (s, e, p) = (m.start(), m.end(), m.pattern().as_usize());
                let Some(k) = self.keyword_meta.get(p) else {
                    self.push_anchor(&mut anchors, p, s, e);
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
                if !admit.applies(p.rule) {
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
        // What the model reads or wrote is a document; what the user or operator wrote
        // is not (`Field::Any` keeps the stricter reading).
        let source = match field {
            Field::Response | Field::ToolArgs => Source::Document,
            _ => Source::User,
        };
        let mut findings: Vec<Finding> = Vec::new();
        for (slot, d) in self.detectors.iter().enumerate() {
            let wanted = |id: usize| d.rules[id].iter().any(|&r| admit.applies(r));
            if !(0..d.rules.len()).any(wanted) {
                continue;
            }
            let input = Input {
                text,
                source,
                anchors: d
                    .anchors_at
                    .map(|_| anchors.get(slot).map_or(&[][..], Vec::as_slice)),
            };
            findings.clear();
            d.detector.scan(&input, &wanted, &mut findings);
            for &(id, s, e) in &findings {
                for &rule in &d.rules[id] {
                    if keep(rule, s, e) {
                        out.push((rule, s, e, Some(d.ids[id])));
                    }
                }
            }
        }
    }

    /// Records automaton pattern `p`, a detector anchor, for the detector it belongs to,
    /// unless it overlaps that detector's previous anchor.
    fn push_anchor(
        &self,
        anchors: &mut [Vec<(usize, usize, usize)>],
        p: usize,
        s: usize,
        e: usize,
    ) {
        let owner = self
            .detectors
            .iter()
            .enumerate()
            .filter_map(|(slot, d)| d.anchors_at.filter(|&at| p >= at).map(|at| (slot, at)))
            .max_by_key(|&(_, at)| at);
        if let Some((slot, at)) = owner {
            let list = &mut anchors[slot];
            if list.last().is_none_or(|&(_, _, end)| s >= end) {
                list.push((p - at, s, e));
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
