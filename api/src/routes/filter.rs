//! Flag search: the filters of `GET /api/v1/flags` (shared by the export), validated at the
//! edge, turned into bound SQL parameters, and keyset pagination on (event_time, id) so a
//! page never repeats or skips a row while new flags arrive.

use std::net::IpAddr;

use base64::Engine as _;
use serde::Deserialize;
use sqlx::{Postgres, QueryBuilder};
use time::OffsetDateTime;

use crate::input;
use crate::Error;

const SHADOW: [&str; 3] = ["exclude", "include", "only"];
pub const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];
pub const STATUSES: [&str; 5] = [
    "new",
    "triaged",
    "true_positive",
    "false_positive",
    "resolved",
];
const MAX_TEXT: usize = 200;

#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FlagQuery {
    /// Event time, inclusive, RFC 3339.
    pub from: Option<String>,
    /// Event time, exclusive, RFC 3339.
    pub to: Option<String>,
    pub min_score: Option<i16>,
    /// Comma-separated severities.
    pub severity: Option<String>,
    pub rule_id: Option<String>,
    pub category: Option<String>,
    /// Model glob: `*` any run, `?` one character.
    pub model: Option<String>,
    pub provider: Option<String>,
    /// An address or a CIDR range.
    pub src_ip: Option<String>,
    pub user: Option<String>,
    pub app: Option<String>,
    /// Comma-separated triage statuses.
    pub status: Option<String>,
    pub assignee: Option<String>,
    /// Text in detection excerpts (case-insensitive).
    pub q: Option<String>,
    /// Rows stored only for shadow-mode rules' hits: `exclude` (default), `include` or
    /// `only`.
    pub shadow: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Also return the exact number of matching flags (costs a count).
    pub count: Option<bool>,
    /// Export only: `ndjson` (default) or `csv`.
    pub format: Option<String>,
}

/// A position in the (event_time DESC, id DESC) order: the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub micros: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}.{}", self.micros, self.id))
    }

    pub fn decode(text: &str) -> Result<Cursor, Error> {
        let bad = || Error::invalid("cursor", "cursor is not one this API returned");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (micros, id) = raw.split_once('.').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        // Years 0 to 9999, as RFC 3339 has them; PostgreSQL refuses some dates beyond.
        const SECONDS: std::ops::RangeInclusive<i64> = -62_167_219_200..=253_402_300_799;
        if !SECONDS.contains(&micros.div_euclid(1_000_000)) {
            return Err(bad());
        }
        Ok(Cursor {
            micros,
            id: id.parse().map_err(|_| bad())?,
        })
    }

    pub fn of(event_time: OffsetDateTime, id: i64) -> Cursor {
        Cursor {
            micros: (event_time.unix_timestamp_nanos() / 1_000) as i64,
            id,
        }
    }

    fn time(&self) -> Result<OffsetDateTime, Error> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.micros) * 1_000)
            .map_err(|_| Error::invalid("cursor", "cursor is not one this API returned"))
    }
}

/// Checked filters, ready to bind.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    min_score: Option<i16>,
    severities: Vec<String>,
    statuses: Vec<String>,
    rule_id: Option<String>,
    category: Option<String>,
    model_like: Option<String>,
    provider: Option<String>,
    src_ip: Option<String>,
    user: Option<String>,
    app: Option<String>,
    assignee: Option<String>,
    text_like: Option<String>,
    /// `exclude`, `include` or `only`; empty is `exclude`.
    shadow: Vec<String>,
    pub cursor: Option<Cursor>,
}

impl Filter {
    pub fn parse(q: &FlagQuery) -> Result<Filter, Error> {
        let text = |field: &'static str, v: &Option<String>| match v.as_deref() {
            Some("") => Err(Error::invalid(field, format!("`{field}` is empty"))),
            Some(s) => input::text(field, s, MAX_TEXT).map(|s| Some(s.to_owned())),
            None => Ok(None),
        };
        let list = |field: &'static str, v: &Option<String>, allowed: &[&str]| {
            let mut out = Vec::new();
            for item in v.iter().flat_map(|s| s.split(',')).map(str::trim) {
                if !allowed.contains(&item) {
                    return Err(Error::invalid(
                        field,
                        format!("`{item}` is not one of {}", allowed.join(", ")),
                    ));
                }
                out.push(item.to_owned());
            }
            Ok(out)
        };
        if let Some(score) = q.min_score {
            if !(0..=100).contains(&score) {
                return Err(Error::invalid("min_score", "min_score must be 0 to 100"));
            }
        }
        let src_ip = q.src_ip.as_deref().map(parse_network).transpose()?;
        Ok(Filter {
            from: super::time::parse("from", q.from.as_deref())?,
            to: super::time::parse("to", q.to.as_deref())?,
            min_score: q.min_score,
            severities: list("severity", &q.severity, &SEVERITIES)?,
            statuses: list("status", &q.status, &STATUSES)?,
            rule_id: text("rule_id", &q.rule_id)?,
            category: text("category", &q.category)?,
            model_like: text("model", &q.model)?.map(|m| glob_to_like(&m)),
            provider: text("provider", &q.provider)?,
            src_ip,
            user: text("user", &q.user)?,
            app: text("app", &q.app)?,
            assignee: text("assignee", &q.assignee)?,
            text_like: text("q", &q.q)?.map(|t| format!("%{}%", escape_like(&t))),
            shadow: match list("shadow", &q.shadow, &SHADOW)? {
                one if one.len() <= 1 => one,
                _ => {
                    return Err(Error::invalid(
                        "shadow",
                        "give one of exclude, include, only",
                    ))
                }
            },
            cursor: q.cursor.as_deref().map(Cursor::decode).transpose()?,
        })
    }

    /// Appends ` WHERE …` for flags aliased `f`; with `paged`, also the cursor condition.
    pub fn push_where(
        &self,
        qb: &mut QueryBuilder<'_, Postgres>,
        paged: bool,
    ) -> Result<(), Error> {
        qb.push(" WHERE true");
        match self.shadow.first().map(String::as_str) {
            Some("include") => &mut *qb,
            Some("only") => qb.push(" AND f.shadow_only"),
            _ => qb.push(" AND NOT f.shadow_only"),
        };
        if let Some(v) = self.from {
            qb.push(" AND f.event_time >= ").push_bind(v);
        }
        if let Some(v) = self.to {
            qb.push(" AND f.event_time < ").push_bind(v);
        }
        if let Some(v) = self.min_score {
            qb.push(" AND f.score >= ").push_bind(v);
        }
        if !self.severities.is_empty() {
            qb.push(" AND f.severity = ANY(")
                .push_bind(self.severities.clone())
                .push(")");
        }
        if !self.statuses.is_empty() {
            qb.push(" AND f.status = ANY(")
                .push_bind(self.statuses.clone())
                .push(")");
        }
        if let Some(v) = &self.rule_id {
            qb.push(
                " AND EXISTS (SELECT 1 FROM detections d WHERE d.flag_id = f.id AND d.rule_id = ",
            )
            .push_bind(v.clone())
            .push(")");
        }
        if let Some(v) = &self.category {
            qb.push(" AND f.categories @> ARRAY[")
                .push_bind(v.clone())
                .push("]::text[]");
        }
        if let Some(v) = &self.model_like {
            qb.push(" AND f.model LIKE ")
                .push_bind(v.clone())
                .push(" ESCAPE '\\'");
        }
        if let Some(v) = &self.provider {
            qb.push(" AND f.provider = ").push_bind(v.clone());
        }
        if let Some(v) = &self.src_ip {
            qb.push(" AND f.src_ip <<= ")
                .push_bind(v.clone())
                .push("::inet");
        }
        if let Some(v) = &self.user {
            qb.push(" AND f.user_id = ").push_bind(v.clone());
        }
        if let Some(v) = &self.app {
            qb.push(" AND f.app = ").push_bind(v.clone());
        }
        if let Some(v) = &self.assignee {
            qb.push(" AND f.assignee = ").push_bind(v.clone());
        }
        if let Some(v) = &self.text_like {
            qb.push(" AND EXISTS (SELECT 1 FROM detections d WHERE d.flag_id = f.id AND d.excerpt ILIKE ")
                .push_bind(v.clone())
                .push(" ESCAPE '\\')");
        }
        if paged {
            if let Some(c) = self.cursor {
                qb.push(" AND (f.event_time, f.id) < (")
                    .push_bind(c.time()?)
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
        }
        Ok(())
    }
}

/// Reads a `GET /api/v1/flags` query string the way the handler does (axum's `Query`
/// extractor, then [`Filter::parse`], then the SQL for a paged search) and says whether it
/// is accepted. For the fuzz target in `fuzz/`: none of it may panic, whatever the client
/// sends.
pub fn accepts(query: &str) -> bool {
    let Ok(uri) = format!("/api/v1/flags?{query}").parse::<axum::http::Uri>() else {
        return false;
    };
    let Ok(axum::extract::Query(q)) = axum::extract::Query::<FlagQuery>::try_from_uri(&uri) else {
        return false;
    };
    let Ok(filter) = Filter::parse(&q) else {
        return false;
    };
    let mut qb = QueryBuilder::new("SELECT f.id FROM flags f");
    filter.push_where(&mut qb, true).is_ok()
}

/// `10.0.0.0/8`, `2001:db8::/32` or a single address.
fn parse_network(text: &str) -> Result<String, Error> {
    let bad = || {
        Error::invalid(
            "src_ip",
            format!("`{text}` is not an IP address or CIDR range"),
        )
    };
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match prefix {
        Some(p) if p > max => Err(bad()),
        Some(p) => Ok(format!("{addr}/{p}")),
        None => Ok(addr.to_string()),
    }
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn glob_to_like(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len());
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let c = Cursor {
            micros: 1_764_000_000_123_456,
            id: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        let year_minus_9999 = Cursor {
            micros: -377_705_116_800_000_000,
            id: 1,
        };
        for bad in [
            "",
            "!!",
            "bm90LWEtY3Vyc29y",
            "MS4y.x",
            &year_minus_9999.encode(),
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs_and_networks() {
        assert_eq!(glob_to_like("claude-3-opus*"), "claude-3-opus%");
        assert_eq!(glob_to_like("gpt_4?"), "gpt\\_4_");
        assert_eq!(parse_network("10.0.0.0/8").unwrap(), "10.0.0.0/8");
        assert_eq!(parse_network("2001:db8::1").unwrap(), "2001:db8::1");
        for bad in ["10.0.0.0/33", "10.0.0", "x/8", "::/129"] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
    }
}
