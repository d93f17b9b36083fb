//! Bounds on the strings clients send, checked before they reach the database or the audit
//! log: PostgreSQL's `text` and `jsonb` refuse NUL (a 500 otherwise), and an unbounded
//! string is free storage for whoever sends it.

use serde_json::Value;

use crate::Error;

/// Longest note, reason or description; identifiers and names are much shorter.
pub const MAX_PROSE: usize = 4_000;
/// Longest path parameter (ids and usernames are far shorter; this only bounds lookups).
pub const MAX_PATH_PARAM: usize = 256;

/// A client-chosen parameter name, as an error's `field` (bounded, since it is echoed).
pub fn field_name(name: impl Into<String>) -> std::borrow::Cow<'static, str> {
    let mut name: String = name.into();
    if let Some((cut, _)) = name.char_indices().nth(64) {
        name.truncate(cut);
    }
    name.into()
}

/// `value` if it has no NUL and at most `max` characters; the error names `field`.
pub fn text<'a>(field: &'static str, value: &'a str, max: usize) -> Result<&'a str, Error> {
    if value.contains('\0') {
        return Err(Error::invalid(
            field,
            format!("`{field}` must not contain NUL characters"),
        ));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("`{field}` is at most {max} characters"),
        ));
    }
    Ok(value)
}

/// As [`text`], for an optional value.
pub fn optional(field: &'static str, value: Option<&str>, max: usize) -> Result<(), Error> {
    value.map_or(Ok(()), |v| text(field, v, max).map(drop))
}

/// Refuses a JSON body with NUL in any key or string (every body ends up compared with or
/// stored as `text` or `jsonb`); the error names the top-level field that holds it.
pub fn no_nul(body: &Value) -> Result<(), Error> {
    fn has_nul(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    let field = match body {
        Value::Object(map) => map
            .iter()
            .find(|(k, v)| k.contains('\0') || has_nul(v))
            .map(|(k, _)| field_name(k.as_str())),
        other => has_nul(other).then(|| "body".into()),
    };
    match field {
        Some(field) => Err(Error::invalid(
            field,
            "request bodies must not contain NUL characters",
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nul_and_length_are_refused_with_the_field() {
        assert_eq!(text("note", "fine", 10).unwrap(), "fine");
        assert!(text("note", "é".repeat(10).as_str(), 10).is_ok());
        for (value, max) in [("a\0b", 10), ("elevenchars", 10)] {
            let Error::Invalid { field, .. } = text("note", value, max).unwrap_err() else {
                panic!("not an invalid-request error");
            };
            assert_eq!(field.as_deref(), Some("note"));
        }
        let field = |body: Value| match no_nul(&body) {
            Err(Error::Invalid { field, .. }) => field.map(|f| f.into_owned()),
            _ => None,
        };
        assert_eq!(
            field(json!({ "k": ["ok", { "deep": "x\u{0}" }] })).as_deref(),
            Some("k")
        );
        assert_eq!(field(json!({ "k\u{0}": 1 })).as_deref(), Some("k\u{0}"));
        assert_eq!(field(json!(["a\u{0}"])).as_deref(), Some("body"));
        assert!(no_nul(&json!({ "k": ["ok", 1, null] })).is_ok());
    }
}
