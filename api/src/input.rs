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

/// Refuses a JSON document with NUL in any key or string, before it is stored as `jsonb`.
pub fn no_nul(field: &'static str, value: &Value) -> Result<(), Error> {
    let found = match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => return items.iter().try_for_each(|v| no_nul(field, v)),
        Value::Object(map) => {
            for (k, v) in map {
                if k.contains('\0') {
                    return no_nul(field, &Value::String(k.clone()));
                }
                no_nul(field, v)?;
            }
            false
        }
        _ => false,
    };
    if found {
        Err(Error::invalid(
            field,
            format!("`{field}` must not contain NUL characters"),
        ))
    } else {
        Ok(())
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
        assert!(no_nul("rule", &json!({ "k": ["ok", { "deep": "x\u{0}" }] })).is_err());
        assert!(no_nul("rule", &json!({ "k\u{0}": 1 })).is_err());
        assert!(no_nul("rule", &json!({ "k": ["ok", 1, null] })).is_ok());
    }
}
