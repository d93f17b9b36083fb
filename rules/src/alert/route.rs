//! Alert routes: which flags go to which destinations, grouped how. A route is stored as
//! JSON (`RouteDefinition`), compiled once (`Route`) and evaluated against a flag
//! (`AlertFlag`) by the dispatcher, and by the API's dry-run.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::alert::AlertFlag;
use crate::condition::{any_glob, Cidr, Glob};
use crate::{Error, Severity};

/// What a group key may be made of.
pub const GROUP_FIELDS: [&str; 8] = [
    "rule", "src_ip", "model", "provider", "user", "app", "severity", "category",
];

/// Longest group_wait or repeat_interval, so a typo cannot silence a route for years.
const MAX_INTERVAL_SECS: u64 = 7 * 24 * 3600;

/// A route as stored and as the API accepts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDefinition {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, rename = "match")]
    pub matchers: Matchers,
    pub destinations: Vec<String>,
    /// Slack channel override, for Slack destinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_channel: Option<String>,
    #[serde(default)]
    pub group_by: Vec<String>,
    #[serde(default)]
    pub group_wait_secs: u64,
    #[serde(default = "hour")]
    pub repeat_interval_secs: u64,
    /// Keep evaluating later routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
}

/// Every present matcher must hold; a list holds when any of its entries does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matchers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Rule id globs (`secret.*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
    /// Shadow-mode detections count only when this is set.
    #[serde(default)]
    pub include_shadow: bool,
}

fn yes() -> bool {
    true
}

fn hour() -> u64 {
    3600
}

/// A route compiled for matching.
#[derive(Debug, Clone)]
pub struct Route {
    pub definition: RouteDefinition,
    rules: Vec<Glob>,
    models: Vec<Glob>,
    providers: Vec<Glob>,
    cidrs: Vec<Cidr>,
}

impl Route {
    /// Validates and compiles a definition; errors name the field.
    pub fn compile(definition: RouteDefinition) -> Result<Route, Error> {
        let invalid = |field: &str, why: String| {
            Error::InvalidAlertConfig(format!("route `{}`: {field}: {why}", definition.id))
        };
        if !valid_id(&definition.id) {
            return Err(Error::InvalidAlertConfig(format!(
                "route id `{}` must be 1-64 characters of a-z, 0-9, '.', '_' or '-'",
                definition.id
            )));
        }
        if definition.destinations.is_empty() {
            return Err(invalid("destinations", "at least one destination".into()));
        }
        if let Some(bad) = definition.destinations.iter().find(|d| !valid_id(d)) {
            return Err(invalid(
                "destinations",
                format!("`{bad}` is not a destination id"),
            ));
        }
        if let Some(bad) = definition
            .group_by
            .iter()
            .find(|f| !GROUP_FIELDS.contains(&f.as_str()))
        {
            return Err(invalid(
                "group_by",
                format!("`{bad}` is not one of {}", GROUP_FIELDS.join(", ")),
            ));
        }
        for (field, secs) in [
            ("group_wait_secs", definition.group_wait_secs),
            ("repeat_interval_secs", definition.repeat_interval_secs),
        ] {
            if secs > MAX_INTERVAL_SECS {
                return Err(invalid(field, format!("at most {MAX_INTERVAL_SECS} s")));
            }
        }
        if definition.matchers.min_score.is_some_and(|s| s > 100) {
            return Err(invalid("match.min_score", "0 to 100".into()));
        }
        let m = &definition.matchers;
        let cidrs = m
            .cidrs
            .iter()
            .map(|c| Cidr::parse(c).map_err(|e| invalid("match.cidrs", e)))
            .collect::<Result<_, _>>()?;
        let globs = |list: &[String]| list.iter().map(|g| Glob::new(g)).collect();
        Ok(Route {
            rules: globs(&m.rules),
            models: globs(&m.models),
            providers: globs(&m.providers),
            cidrs,
            definition,
        })
    }

    pub fn id(&self) -> &str {
        &self.definition.id
    }

    /// Whether the flag is this route's: every given matcher holds.
    pub fn matches(&self, flag: &AlertFlag) -> bool {
        let m = &self.definition.matchers;
        let rules = self.rule_ids(flag);
        self.definition.enabled
            && !rules.is_empty()
            && m.min_score.is_none_or(|min| flag.score >= min)
            && m.min_severity.is_none_or(|min| flag.severity >= min)
            && (m.categories.is_empty() || flag.categories.iter().any(|c| m.categories.contains(c)))
            && (self.rules.is_empty() || rules.iter().any(|r| any_glob(&self.rules, r)))
            && (self.models.is_empty() || any_glob(&self.models, &flag.model))
            && (self.providers.is_empty() || any_glob(&self.providers, &flag.provider))
            && (self.cidrs.is_empty() || self.cidrs.iter().any(|c| c.contains(flag.src_ip)))
            && (m.users.is_empty() || flag.user.as_ref().is_some_and(|u| m.users.contains(u)))
            && (m.apps.is_empty() || flag.app.as_ref().is_some_and(|a| m.apps.contains(a)))
    }

    /// The rules of the flag's detections this route considers: enforce-mode ones, and
    /// shadow ones only when the route asks.
    pub fn rule_ids<'f>(&self, flag: &'f AlertFlag) -> BTreeSet<&'f str> {
        flag.detections
            .iter()
            .filter(|d| !d.shadow || self.definition.matchers.include_shadow)
            .map(|d| d.rule_id.as_str())
            .collect()
    }

    /// The flag's group within this route: the values of `group_by`, so flags that agree on
    /// them share one notification per `group_wait` and `repeat_interval`.
    pub fn group_key(&self, flag: &AlertFlag) -> String {
        let mut key = String::new();
        for field in &self.definition.group_by {
            let value = match field.as_str() {
                "rule" => self
                    .rule_ids(flag)
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(","),
                "src_ip" => flag.src_ip.to_string(),
                "model" => flag.model.clone(),
                "provider" => flag.provider.clone(),
                "user" => flag.user.clone().unwrap_or_default(),
                "app" => flag.app.clone().unwrap_or_default(),
                "severity" => flag.severity.as_str().to_owned(),
                _ => flag.categories.join(","),
            };
            if !key.is_empty() {
                key.push(';');
            }
            key.push_str(field);
            key.push('=');
            key.push_str(&value);
        }
        key
    }
}

/// The routes a flag goes to, in order: the first that matches, and those after it while
/// each matching route says `continue`.
pub fn route<'r>(routes: &'r [Route], flag: &AlertFlag) -> Vec<&'r Route> {
    let mut chosen = Vec::new();
    for route in routes {
        if route.matches(flag) {
            chosen.push(route);
            if !route.definition.continue_matching {
                break;
            }
        }
    }
    chosen
}

pub(crate) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}
