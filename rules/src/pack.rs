//! Rule packs: versioned sets of rules in TOML, two of them shipped inside the crate.

use serde::{Deserialize, Serialize};

use crate::{Error, Rule};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pack {
    pub name: String,
    pub version: u32,
    #[serde(default)]
    pub description: String,
    pub rules: Vec<Rule>,
}

const PACKS: &[(&str, &str)] = &[
    ("default", include_str!("../packs/default.toml")),
    (
        "flagwise-compat",
        include_str!("../packs/flagwise-compat.toml"),
    ),
];

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
        Pack::from_toml(text)
    }

    pub fn from_toml(text: &str) -> Result<Pack, Error> {
        toml::from_str(text).map_err(|e| Error::InvalidPack(e.to_string()))
    }

    pub fn to_toml(&self) -> Result<String, Error> {
        toml::to_string(self).map_err(|e| Error::InvalidPack(e.to_string()))
    }

    pub fn from_json(text: &str) -> Result<Pack, Error> {
        serde_json::from_str(text).map_err(|e| Error::InvalidPack(e.to_string()))
    }
}
