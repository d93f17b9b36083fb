//! Rules compiled once, shared read-only by every evaluation.
//!
//! All keywords of all rules live in one Aho-Corasick automaton and all regexes in one
//! RegexSet; spans are extracted only for the regexes the set reports, and validators run
//! only on candidates their scanners find.

use std::borrow::Cow;

use crate::condition::{any_glob, Cidr, Glob};
use crate::flagwise::FlagwiseMatchers;
use crate::matcher::{Admit, Hit, Matchers};
use crate::text::{decoded_runs, Cleaned, Encoding, DECODE_BUDGET, MAX_DEPTH};
use crate::verdict::excerpt;
use crate::{
    Detection, Error, Event, Exceptions, Field, Metric, Mode, Op, Rule, RuleKind, Verdict,
};

/// Detections kept per rule and field: enough evidence for triage, bounded storage.
const MAX_DETECTIONS_PER_RULE_FIELD: usize = 16;
/// Refused beyond this: a rule set this large is a mistake, and build time grows with it.
const MAX_RULES: usize = 10_000;

/// What a rule checks besides text.
#[derive(Debug, Clone)]
enum Check {
    Text,
    Model {
        allow: Vec<Glob>,
        deny: Vec<Glob>,
    },
    Provider {
        allow: Vec<Glob>,
        deny: Vec<Glob>,
    },
    /// FlagWise's model or provider check: lower-cased names, compared for equality.
    Names {
        field: Field,
        allow: Vec<String>,
        deny: Vec<String>,
    },
    Cidr(Vec<Cidr>),
    Threshold {
        metric: Metric,
        op: Op,
        value: f64,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub rule: Rule,
    /// Bit per [`Field`] the rule scans.
    pub targets: u16,
    models: Vec<Glob>,
    providers: Vec<Glob>,
    cidrs: Vec<Cidr>,
    pub exceptions: ExceptionSet,
    check: Check,
}

/// Compiled exceptions: lower-cased literals and one anchored RegexSet.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExceptionSet {
    literals: Vec<String>,
    regexes: Option<regex::RegexSet>,
}

impl ExceptionSet {
    fn build(exceptions: &Exceptions, rule_id: &str) -> Result<ExceptionSet, Error> {
        let regexes = if exceptions.regexes.is_empty() {
            None
        } else {
            let anchored = exceptions.regexes.iter().map(|r| format!("^(?:{r})$"));
            Some(
                regex::RegexSetBuilder::new(anchored)
                    .size_limit(crate::matcher::REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| Error::InvalidRule {
                        rule_id: rule_id.to_owned(),
                        reason: format!("exception regex: {e}"),
                    })?,
            )
        };
        Ok(ExceptionSet {
            literals: exceptions
                .literals
                .iter()
                .map(|l| l.to_lowercase())
                .collect(),
            regexes,
        })
    }

    pub fn allows(&self, matched: &str) -> bool {
        (!self.literals.is_empty() && self.literals.iter().any(|l| l == &matched.to_lowercase()))
            || self.regexes.as_ref().is_some_and(|r| r.is_match(matched))
    }
}

pub(crate) fn bit(field: Field) -> u16 {
    1 << field as u16
}

/// Byte spans in one field's text.
type Spans = Vec<(usize, usize)>;

/// An immutable, compiled set of rules. Cheap to clone and share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub(crate) rules: Vec<Compiled>,
    pub(crate) matchers: Matchers,
    flagwise: FlagwiseMatchers,
    /// Whether any text rule is in the native dialect (else normalization is skipped).
    native_text: bool,
    /// Union of the fields any text rule scans.
    fields: u16,
    pub(crate) global_exceptions: ExceptionSet,
    threshold: u32,
    version: u64,
}

impl RuleSet {
    /// Compiles the enabled rules. A rule that cannot be compiled is an error naming it.
    pub fn build(rules: Vec<Rule>) -> Result<RuleSet, Error> {
        RuleSet::build_with(rules, &Exceptions::default())
    }

    /// As [`RuleSet::build`], with exceptions that apply to every rule.
    pub fn build_with(rules: Vec<Rule>, global: &Exceptions) -> Result<RuleSet, Error> {
        let rules: Vec<Rule> = rules.into_iter().filter(|r| r.enabled).collect();
        if rules.len() > MAX_RULES {
            return Err(Error::InvalidPack(format!(
                "{} rules exceed the limit of {MAX_RULES}",
                rules.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            if !seen.insert(rule.id.clone()) {
                return Err(invalid(&rule, "duplicate rule id".into()));
            }
            compiled.push(compile(rule)?);
        }
        let rules: Vec<&Rule> = compiled.iter().map(|c| &c.rule).collect();
        let matchers = Matchers::build(&rules)?;
        let flagwise = FlagwiseMatchers::build(&rules)?;
        let native_text = compiled
            .iter()
            .any(|c| matches!(c.check, Check::Text) && c.rule.dialect.is_native());
        let fields = compiled
            .iter()
            .filter(|c| matches!(c.check, Check::Text))
            .fold(0, |acc, c| acc | c.targets);
        Ok(RuleSet {
            rules: compiled,
            matchers,
            flagwise,
            native_text,
            fields,
            global_exceptions: ExceptionSet::build(global, "(global)")?,
            threshold: 1,
            version: 0,
        })
    }

    /// Events scoring at least `threshold` are flagged (FlagWise flags any score above 0: 1).
    pub fn with_threshold(mut self, threshold: u32) -> RuleSet {
        self.threshold = threshold.max(1);
        self
    }

    /// Tags the set with the version of the rules it was built from, for the flags it makes.
    pub fn with_version(mut self, version: u64) -> RuleSet {
        self.version = version;
        self
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn rules(&self) -> impl ExactSizeIterator<Item = &Rule> {
        self.rules.iter().map(|c| &c.rule)
    }

    pub fn evaluate(&self, event: &Event) -> Verdict {
        let active: Vec<bool> = self.rules.iter().map(|c| applies(c, event)).collect();
        let mut hits = Vec::new();
        for field in TEXT_FIELDS {
            if self.fields & bit(field) == 0 {
                continue;
            }
            if let Some(text) = field_text(event, field) {
                if !text.is_empty() {
                    self.scan_field(field, &text, &active, &mut hits);
                }
            }
        }
        let mut metadata = Vec::new();
        for (index, c) in self.rules.iter().enumerate() {
            if active[index] {
                if let Some((field, value)) = check_metadata(&c.check, event) {
                    metadata.push((index, field, value));
                }
            }
        }
        self.verdict(event, hits, metadata)
    }

    fn scan_field(&self, field: Field, original: &str, active: &[bool], hits: &mut Vec<Hit>) {
        if !self.flagwise.is_empty() {
            let mut found = Vec::new();
            let scope = Scope {
                set: self,
                field,
                active,
            };
            self.flagwise.find(&scope, original, &mut found);
            hits.extend(found.into_iter().map(|(rule, start, end, detector)| Hit {
                rule,
                field,
                start,
                end,
                decoded: None,
                detector,
            }));
        }
        if !self.native_text {
            return;
        }
        let cleaned = Cleaned::new(original);
        for &(kind, start, end) in &cleaned.smuggled {
            for &rule in self.matchers.smuggling_rules(kind) {
                if self.allowed(rule, field, active) {
                    hits.push(Hit {
                        rule,
                        field,
                        start,
                        end,
                        decoded: None,
                        detector: Some(kind.id()),
                    });
                }
            }
        }
        let mut raw = Vec::new();
        let scope = Scope {
            set: self,
            field,
            active,
        };
        self.matchers.find(&scope, &cleaned.text, field, &mut raw);
        for (rule, s, e, detector) in raw.drain(..) {
            let (start, end) = cleaned.original_span(s, e);
            hits.push(Hit {
                rule,
                field,
                start,
                end,
                decoded: None,
                detector,
            });
        }
        let mut budget = DECODE_BUDGET;
        for (hidden, start, end) in &cleaned.tag_text {
            let span = (*start, *end);
            self.scan_decoded(
                hidden,
                field,
                active,
                span,
                Encoding::UnicodeTags,
                1,
                &mut budget,
                hits,
            );
        }
        for (encoding, s, e, decoded) in decoded_runs(&cleaned.text, &mut budget) {
            let span = cleaned.original_span(s, e);
            self.scan_decoded(
                &decoded,
                field,
                active,
                span,
                encoding,
                1,
                &mut budget,
                hits,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn scan_decoded(
        &self,
        text: &str,
        field: Field,
        active: &[bool],
        span: (usize, usize),
        encoding: Encoding,
        depth: u8,
        budget: &mut usize,
        hits: &mut Vec<Hit>,
    ) {
        let mut raw = Vec::new();
        let scope = Scope {
            set: self,
            field,
            active,
        };
        self.matchers.find(&scope, text, field, &mut raw);
        for (rule, _, _, detector) in raw {
            hits.push(Hit {
                rule,
                field,
                start: span.0,
                end: span.1,
                decoded: Some(encoding),
                detector,
            });
        }
        if depth < MAX_DEPTH {
            for (_, _, _, inner) in decoded_runs(text, budget) {
                self.scan_decoded(
                    &inner,
                    field,
                    active,
                    span,
                    encoding,
                    depth + 1,
                    budget,
                    hits,
                );
            }
        }
    }

    pub(crate) fn allowed(&self, rule: usize, field: Field, active: &[bool]) -> bool {
        active[rule] && self.rules[rule].targets & bit(field) != 0
    }

    /// Whether a match of `rule` on `field` counts: the rule applies there and neither its
    /// exceptions nor the set's allow the matched text.
    pub(crate) fn keeps(&self, rule: usize, field: Field, active: &[bool], matched: &str) -> bool {
        self.allowed(rule, field, active)
            && !self.rules[rule].exceptions.allows(matched)
            && !self.global_exceptions.allows(matched)
    }

    fn verdict(
        &self,
        event: &Event,
        mut hits: Vec<Hit>,
        metadata: Vec<(usize, Field, String)>,
    ) -> Verdict {
        hits.sort_unstable_by_key(|h| (h.field, h.start, h.end, h.rule));
        hits.dedup_by_key(|h| (h.field, h.start, h.end, h.rule));
        let mut per_rule_field = std::collections::HashMap::new();
        hits.retain(|h| {
            let n = per_rule_field.entry((h.rule, h.field)).or_insert(0usize);
            *n += 1;
            *n <= MAX_DETECTIONS_PER_RULE_FIELD
        });
        let mut matched = vec![false; self.rules.len()];
        let mut detections = Vec::with_capacity(hits.len() + metadata.len());
        // The field's text and every hit span in it, for excerpts that mask neighbours.
        let mut field_text_cache: Option<(Field, Cow<'_, str>, Spans)> = None;
        for h in &hits {
            if field_text_cache
                .as_ref()
                .is_none_or(|(f, _, _)| *f != h.field)
            {
                let text = field_text(event, h.field).unwrap_or_default();
                let spans = hits
                    .iter()
                    .filter(|o| o.field == h.field)
                    .map(|o| (o.start, o.end))
                    .collect();
                field_text_cache = Some((h.field, text, spans));
            }
            let Some((_, text, spans)) = &field_text_cache else {
                continue;
            };
            matched[h.rule] = true;
            let mut d = self.detection(
                h.rule,
                h.field,
                h.start,
                h.end,
                excerpt(text, h.start, h.end, spans),
            );
            d.decoded_from = h.decoded;
            d.detector = h.detector.map(str::to_owned);
            detections.push(d);
        }
        for (rule, field, value) in metadata {
            matched[rule] = true;
            detections.push(self.detection(rule, field, 0, 0, value));
        }
        let mut score: u32 = 0;
        let mut severity = None;
        for (c, _) in self
            .rules
            .iter()
            .zip(&matched)
            .filter(|(c, m)| **m && c.rule.mode == Mode::Enforce)
        {
            score = score.saturating_add(c.rule.points);
            severity = severity.max(Some(c.rule.severity));
        }
        let score = score.min(100);
        Verdict {
            score,
            severity,
            flagged: score >= self.threshold,
            detections,
        }
    }

    fn detection(
        &self,
        rule: usize,
        field: Field,
        start: usize,
        end: usize,
        excerpt: String,
    ) -> Detection {
        let r = &self.rules[rule].rule;
        Detection {
            rule_id: r.id.clone(),
            rule_version: r.version,
            field,
            start,
            end,
            excerpt,
            decoded_from: None,
            detector: None,
            shadow: r.mode == Mode::Shadow,
        }
    }
}

const TEXT_FIELDS: [Field; 9] = [
    Field::Prompt,
    Field::System,
    Field::Response,
    Field::ToolArgs,
    Field::Headers,
    Field::Model,
    Field::Provider,
    Field::SrcIp,
    Field::User,
];

/// The text of one field; headers are rendered one `name: value` per line.
pub(crate) fn field_text(event: &Event, field: Field) -> Option<Cow<'_, str>> {
    match field {
        Field::Prompt => Some(Cow::Borrowed(&event.prompt)),
        Field::System => event.system.as_deref().map(Cow::Borrowed),
        Field::Response => event.response.as_deref().map(Cow::Borrowed),
        Field::ToolArgs => event.tool_args.as_deref().map(Cow::Borrowed),
        Field::Headers => event.headers.as_ref().map(|h| {
            let mut out = String::new();
            for (k, v) in h {
                out.push_str(k);
                out.push_str(": ");
                match v {
                    serde_json::Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
                out.push('\n');
            }
            Cow::Owned(out)
        }),
        Field::Model => Some(Cow::Borrowed(&event.model)),
        Field::Provider => Some(Cow::Borrowed(&event.provider)),
        Field::SrcIp => Some(Cow::Owned(event.src_ip.to_string())),
        Field::User => event.user.as_deref().map(Cow::Borrowed),
        Field::Any => None,
    }
}

/// The rules of a set that are active on one field, as the matchers see them.
struct Scope<'a> {
    set: &'a RuleSet,
    field: Field,
    active: &'a [bool],
}

impl Admit for Scope<'_> {
    fn applies(&self, rule: usize) -> bool {
        self.set.allowed(rule, self.field, self.active)
    }

    fn keeps(&self, rule: usize, matched: &str) -> bool {
        self.set.keeps(rule, self.field, self.active, matched)
    }
}

fn invalid(rule: &Rule, reason: String) -> Error {
    Error::InvalidRule {
        rule_id: rule.id.clone(),
        reason,
    }
}

fn compile(rule: Rule) -> Result<Compiled, Error> {
    if rule.id.trim().is_empty() || rule.id.len() > 128 {
        return Err(invalid(&rule, "id must be 1 to 128 characters".into()));
    }
    let cidrs = |ranges: &[String]| -> Result<Vec<Cidr>, Error> {
        ranges
            .iter()
            .map(|r| Cidr::parse(r).map_err(|e| invalid(&rule, e)))
            .collect()
    };
    let globs = |list: &[String]| list.iter().map(|g| Glob::new(g)).collect::<Vec<_>>();
    let check = match &rule.kind {
        RuleKind::Keyword { .. } | RuleKind::Regex { .. } | RuleKind::Detector { .. } => {
            Check::Text
        }
        RuleKind::Model { allow, deny } | RuleKind::Provider { allow, deny } => {
            if allow.is_empty() && deny.is_empty() {
                return Err(invalid(&rule, "needs an allow or a deny list".into()));
            }
            let model = matches!(rule.kind, RuleKind::Model { .. });
            if rule.dialect.is_flagwise() {
                let lower = |l: &[String]| l.iter().map(|n| n.to_lowercase()).collect();
                Check::Names {
                    field: if model { Field::Model } else { Field::Provider },
                    allow: lower(allow),
                    deny: lower(deny),
                }
            } else if model {
                let (allow, deny) = (globs(allow), globs(deny));
                Check::Model { allow, deny }
            } else {
                let (allow, deny) = (globs(allow), globs(deny));
                Check::Provider { allow, deny }
            }
        }
        RuleKind::Cidr { ranges } => {
            if ranges.is_empty() {
                return Err(invalid(&rule, "range list is empty".into()));
            }
            Check::Cidr(cidrs(ranges)?)
        }
        RuleKind::Threshold { metric, op, value } => {
            if !value.is_finite() {
                return Err(invalid(
                    &rule,
                    "threshold value must be a finite number".into(),
                ));
            }
            Check::Threshold {
                metric: *metric,
                op: *op,
                value: *value,
            }
        }
    };
    let targets = if rule.targets.is_empty() || rule.targets.contains(&Field::Any) {
        Field::CONTENT.iter().fold(0, |acc, f| acc | bit(*f))
    } else {
        0
    } | rule
        .targets
        .iter()
        .filter(|f| **f != Field::Any)
        .fold(0, |acc, f| acc | bit(*f));
    Ok(Compiled {
        models: globs(&rule.conditions.models),
        providers: globs(&rule.conditions.providers),
        cidrs: cidrs(&rule.conditions.cidrs)?,
        exceptions: ExceptionSet::build(&rule.exceptions, &rule.id)?,
        targets,
        check,
        rule,
    })
}

/// Whether the rule's conditions hold for the event.
fn applies(c: &Compiled, event: &Event) -> bool {
    (c.models.is_empty() || any_glob(&c.models, &event.model))
        && (c.providers.is_empty() || any_glob(&c.providers, &event.provider))
        && (c.cidrs.is_empty() || c.cidrs.iter().any(|n| n.contains(event.src_ip)))
}

/// For non-text rules: the field and the excerpt to report when the rule matches.
fn check_metadata(check: &Check, event: &Event) -> Option<(Field, String)> {
    let listed = |allow: &[Glob], deny: &[Glob], value: &str| {
        any_glob(deny, value) || (!allow.is_empty() && !any_glob(allow, value))
    };
    match check {
        Check::Text => None,
        Check::Model { allow, deny } => {
            listed(allow, deny, &event.model).then(|| (Field::Model, event.model.clone()))
        }
        Check::Provider { allow, deny } => {
            listed(allow, deny, &event.provider).then(|| (Field::Provider, event.provider.clone()))
        }
        Check::Names { field, allow, deny } => {
            let value = if *field == Field::Model {
                &event.model
            } else {
                &event.provider
            };
            let lower = value.to_lowercase();
            (deny.contains(&lower) || (!allow.is_empty() && !allow.contains(&lower)))
                .then(|| (*field, value.clone()))
        }
        Check::Cidr(ranges) => ranges
            .iter()
            .any(|n| n.contains(event.src_ip))
            .then(|| (Field::SrcIp, event.src_ip.to_string())),
        Check::Threshold { metric, op, value } => {
            let actual = match metric {
                Metric::TokensIn => event.tokens_in.map(|t| t as f64),
                Metric::TokensOut => event.tokens_out.map(|t| t as f64),
                Metric::TokensTotal => match (event.tokens_in, event.tokens_out) {
                    (None, None) => None,
                    (i, o) => Some((i.unwrap_or(0) + o.unwrap_or(0)) as f64),
                },
                Metric::CostUsd => event.cost_usd,
                Metric::DurationMs => event.duration_ms.map(|d| d as f64),
                Metric::PromptLength => Some(event.prompt.chars().count() as f64),
            }?;
            op.holds(actual, *value).then(|| {
                let name = serde_json::to_value(metric)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                (Field::Any, format!("{name} = {actual}"))
            })
        }
    }
}
