//! Built-in validated detectors with stable ids: personal data, secret formats, prompt
//! injection phrases. Each is compiled once per process and reports byte spans in the text
//! it is given; the rule engine decides which ids are enabled and turns spans into
//! detections. Smuggled Unicode (`unicode.*`) is found while the text is cleaned, before
//! any detector runs, so it is not one of them.

pub mod injection;
pub mod pii;
pub mod secrets;

use std::sync::LazyLock;

pub use injection::Source;

/// A finding: (index of its id in [`Detector::ids`], start, end) in the scanned text, on
/// char boundaries.
pub type Finding = (usize, usize, usize);

/// What a detector scans.
pub struct Input<'a> {
    pub text: &'a str,
    pub source: Source,
    /// Where the rule set's keyword automaton found this detector's [`Detector::anchors`]:
    /// (anchor index, start, end), non-overlapping, in text order. None: the detector looks
    /// for them itself.
    pub anchors: Option<&'a [(usize, usize, usize)]>,
}

/// A family of findings with stable ids, and the scanner that reports where they occur.
pub trait Detector: Sync {
    /// Every id this detector reports, in the order its findings index them.
    fn ids(&self) -> Vec<&'static str>;

    /// Literals (ASCII case-insensitive) the detector needs found before it looks closer.
    /// A rule set that has keywords searches for them in the same automaton pass, which is
    /// most of the cost of clean text, and hands the matches over in [`Input::anchors`].
    fn anchors(&self) -> &[Vec<u8>] {
        &[]
    }

    /// Appends every finding in `input.text`. `wanted(id)` is false for ids no rule applies
    /// to here; a detector may skip the work for them.
    fn scan(&self, input: &Input<'_>, wanted: &dyn Fn(usize) -> bool, out: &mut Vec<Finding>);
}

static SECRETS: LazyLock<secrets::SecretScanner> = LazyLock::new(secrets::SecretScanner::new);
static INJECTION: LazyLock<injection::InjectionScanner> =
    LazyLock::new(injection::InjectionScanner::new);

/// Every built-in detector: registering one is a line here. Compiled on first use, once
/// per process, so a reload or a dry-run of one rule does not compile them again.
pub fn all() -> [&'static dyn Detector; 3] {
    [&*SECRETS, &*INJECTION, &pii::Pii]
}

impl Detector for secrets::SecretScanner {
    fn ids(&self) -> Vec<&'static str> {
        secrets::SecretScanner::ids(self).collect()
    }

    fn scan(&self, input: &Input<'_>, _: &dyn Fn(usize) -> bool, out: &mut Vec<Finding>) {
        let mut found = Vec::new();
        secrets::SecretScanner::scan(self, input.text, &mut found);
        out.extend(found.into_iter().map(|(f, s, e)| (usize::from(f), s, e)));
    }
}

impl Detector for injection::InjectionScanner {
    fn ids(&self) -> Vec<&'static str> {
        injection::InjectionScanner::ids(self).collect()
    }

    fn anchors(&self) -> &[Vec<u8>] {
        self.needles()
    }

    fn scan(&self, input: &Input<'_>, _: &dyn Fn(usize) -> bool, out: &mut Vec<Finding>) {
        let mut found = Vec::new();
        match input.anchors {
            Some(anchors) => {
                let anchors = anchors.iter().copied();
                self.scan_anchors(input.text, input.source, anchors, &mut found);
            }
            None => injection::InjectionScanner::scan(self, input.text, input.source, &mut found),
        }
        out.extend(found.into_iter().map(|(f, s, e)| (usize::from(f), s, e)));
    }
}
