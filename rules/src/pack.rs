//! Rule packs shipped inside the crate, so a fresh install detects something on day one.

use serde::Deserialize;

use crate::{Error, Rule};

#[derive(Debug, Clone, Deserialize)]
pub struct Pack {
    pub name: String,
    pub version: u32,
    pub rules: Vec<Rule>,
}

const PACKS: &[(&str, &str)] = &[("default", include_str!("../packs/default.json"))];

impl Pack {
    /// The names of the built-in packs.
    pub fn names() -> impl Iterator<Item = &'static str> {
        PACKS.iter().map(|(name, _)| *name)
    }

    /// A built-in pack by name.
    pub fn builtin(name: &str) -> Result<Pack, Error> {
        let (_, text) = PACKS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| Error::InvalidPack(format!("no built-in pack named {name:?}")))?;
        Pack::from_json(text)
    }

    pub fn from_json(text: &str) -> Result<Pack, Error> {
        serde_json::from_str(text).map_err(|e| Error::InvalidPack(e.to_string()))
    }
}
