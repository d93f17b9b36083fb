//! Built-in validated detectors with stable ids: personal data, secret formats, prompt
//! injection phrases. Each scanner is compiled once and reports byte spans in the text it is
//! given; the rule engine decides which are enabled and turns spans into detections.

pub mod injection;
pub mod pii;
pub mod secrets;
