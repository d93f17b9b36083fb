//! The LLM request event, as gateways publish it in FlagWise's Kafka message schema.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::body::Texts;
use crate::error::Error as EventError;
use crate::wire::{Strict, Top, DUPLICATE_KEY};

/// Where an event was read from; used to derive a stable id for events that carry none, so a
/// replay of the same message yields the same id.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// One LLM request as seen by the gateway.
///
/// Required fields follow FlagWise (`timestamp`, `src_ip`, `provider`, `model`, `prompt`);
/// everything else is optional, and fields Flagstream does not know are kept in `extra`
/// rather than dropped, so nothing the gateway sent is lost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub src_ip: IpAddr,
    pub provider: String,
    pub model: String,
    /// All user-side text: the `prompt` field and the non-system text of `messages[]`.
    pub prompt: String,
    /// System text: Anthropic's `system`, system/developer messages.
    pub system: Option<String>,
    /// FlagWise drops the response; a leak is as likely in what the model says as in what it
    /// was asked, so Flagstream keeps it. A provider response object contributes its text; an
    /// object of unknown shape is kept as its JSON text.
    pub response: Option<String>,
    /// Tool-call arguments from the request or response (OpenAI `tool_calls`, Anthropic
    /// `tool_use.input`).
    pub tool_args: Option<String>,
    pub user: Option<String>,
    pub app: Option<String>,
    pub team: Option<String>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub cost_usd: Option<f64>,
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub headers: Option<Map<String, Value>>,
    pub duration_ms: Option<u64>,
    pub status_code: Option<u16>,
    pub extra: Map<String, Value>,
}

impl Event {
    /// Parses one Kafka message value. `origin` supplies the id when the message has none.
    pub fn parse(bytes: &[u8], origin: Option<Origin<'_>>) -> Result<Event, EventError> {
        // Validated once up front (SIMD), so the parser need not re-check every string.
        let text = simdutf8::basic::from_utf8(bytes).map_err(|_| {
            let detail = std::str::from_utf8(bytes).err().map(|e| e.to_string());
            EventError::NotUtf8(detail.unwrap_or_default())
        })?;
        let top: Top = serde_json::from_str(text).map_err(json_error)?;
        let Top(Some(w)) = top else {
            return Err(EventError::NotObject);
        };
        let id = match w.id {
            None | Some(Value::Null) => match origin {
                Some(o) => format!("{}/{}/{}", o.topic, o.partition, o.offset),
                None => return Err(EventError::MissingField("id")),
            },
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(wrong("id", "a non-empty string")),
        };
        let timestamp = parse_timestamp(required(w.timestamp, "timestamp")?)?;
        let src_ip = required_string(w.src_ip, "src_ip")?;
        let src_ip = src_ip
            .trim()
            .parse()
            .map_err(|_| wrong("src_ip", "an IPv4 or IPv6 address"))?;
        let provider = required_string(w.provider, "provider")?;
        let model = required_string(w.model, "model")?;
        let mut texts = Texts::default();
        let messages = w.messages.filter(|m| !m.is_null());
        if let Some(messages) = &messages {
            if !messages.is_array() {
                return Err(wrong("messages", "an array"));
            }
            texts.add_messages(messages);
        }
        if let Some(system) = w.system {
            texts.add_system(&system);
        }
        // `prompt` is required as in FlagWise, unless the body's `messages[]` carries it.
        let prompt = match (w.prompt, texts.prompt()) {
            (Some(Value::String(s)), None) => s,
            (Some(Value::String(s)), Some(m)) if s.is_empty() => m,
            (Some(Value::String(s)), Some(m)) => format!("{s}\n{m}"),
            (None | Some(Value::Null), Some(m)) => m,
            (None | Some(Value::Null), None) if messages.is_some() => String::new(),
            (None | Some(Value::Null), None) => return Err(EventError::MissingField("prompt")),
            (Some(_), _) => return Err(wrong("prompt", "a string")),
        };
        let response = match w.response {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) if texts.add_response(&other) => texts.response(),
            Some(other) => Some(other.to_string()),
        };
        let cost_usd = match w.cost_usd {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64().filter(|c| c.is_finite() && *c >= 0.0),
            Some(_) => return Err(wrong("cost_usd", "a non-negative number")),
        };
        Ok(Event {
            id,
            timestamp,
            src_ip,
            provider,
            model,
            prompt,
            system: texts.system(),
            response,
            tool_args: texts.tool_args(),
            user: optional_string(w.user, "user")?,
            app: optional_string(w.app, "app")?,
            team: optional_string(w.team, "team")?,
            tokens_in: optional_uint(w.tokens_in, "tokens_in")?.or(texts.tokens_in),
            tokens_out: optional_uint(w.tokens_out, "tokens_out")?.or(texts.tokens_out),
            cost_usd,
            endpoint: optional_string(w.endpoint, "endpoint")?,
            method: optional_string(w.method, "method")?,
            headers: parse_headers(w.headers)?,
            duration_ms: optional_uint(w.duration_ms, "duration_ms")?,
            status_code: optional_uint(w.status_code, "status_code")?
                .map(u16::try_from)
                .transpose()
                .map_err(|_| wrong("status_code", "an HTTP status code"))?,
            extra: w.extra,
        })
    }
}

/// Names the parse failures an operator acts on differently: a repeated key or a nesting
/// attack is not the truncated or hand-written JSON that `not_json` usually means.
fn json_error(e: serde_json::Error) -> EventError {
    let message = e.to_string();
    if let Some(key) = message.strip_prefix(DUPLICATE_KEY) {
        EventError::DuplicateKey(key.to_owned())
    } else if message.starts_with("recursion limit exceeded") {
        EventError::TooDeep(message)
    } else {
        EventError::NotJson(message)
    }
}

fn wrong(field: &'static str, expected: &'static str) -> EventError {
    EventError::WrongType { field, expected }
}

fn required(value: Option<Value>, field: &'static str) -> Result<Value, EventError> {
    match value {
        None | Some(Value::Null) => Err(EventError::MissingField(field)),
        Some(v) => Ok(v),
    }
}

fn required_string(value: Option<Value>, field: &'static str) -> Result<String, EventError> {
    match required(value, field)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        Value::String(_) => Err(EventError::MissingField(field)),
        _ => Err(wrong(field, "a string")),
    }
}

fn optional_string(
    value: Option<Value>,
    field: &'static str,
) -> Result<Option<String>, EventError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong(field, "a string")),
    }
}

fn optional_uint(value: Option<Value>, field: &'static str) -> Result<Option<u64>, EventError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => Ok(Some(u)),
            // Gateways written in JavaScript send durations like 812.4.
            (None, Some(f)) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                Ok(Some(f.round() as u64))
            }
            _ => Err(wrong(field, "a non-negative number")),
        },
        Some(_) => Err(wrong(field, "a non-negative number")),
    }
}

/// FlagWise gateways send headers either as an object or as a JSON string holding one.
fn parse_headers(value: Option<Value>) -> Result<Option<Map<String, Value>>, EventError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match serde_json::from_str(&s) {
            Ok(Strict(Value::Object(map))) => Ok(Some(map)),
            Err(e) => match json_error(e) {
                e @ (EventError::DuplicateKey(_) | EventError::TooDeep(_)) => Err(e),
                _ => Err(wrong("headers", "an object or a JSON string holding one")),
            },
            Ok(_) => Err(wrong("headers", "an object or a JSON string holding one")),
        },
        Some(_) => Err(wrong("headers", "an object or a JSON string holding one")),
    }
}

/// Epoch values at or above this are milliseconds: as seconds they would be past year 5000.
const EPOCH_MILLIS_FROM: f64 = 1e11;

/// RFC 3339's years, which PostgreSQL's `timestamptz` holds too. Outside them a UTC conversion
/// can overflow (9999-12-31T23:30:00-01:00 is in year 10000), and what reaches the database
/// must convert.
const YEARS: std::ops::RangeInclusive<i32> = 0..=9999;

fn parse_timestamp(value: Value) -> Result<OffsetDateTime, EventError> {
    let t = parse_instant(&value)?;
    match t.checked_to_offset(time::UtcOffset::UTC) {
        Some(utc) if YEARS.contains(&utc.year()) => Ok(t),
        _ => Err(EventError::InvalidTimestamp(format!(
            "{} is outside years 0000 to 9999 UTC",
            truncate(&value.to_string(), 64)
        ))),
    }
}

fn parse_instant(value: &Value) -> Result<OffsetDateTime, EventError> {
    let invalid = |v: &Value| EventError::InvalidTimestamp(truncate(&v.to_string(), 64));
    match value {
        Value::Number(n) => {
            let secs = n.as_f64().ok_or_else(|| invalid(value))?;
            let nanos = if secs.abs() >= EPOCH_MILLIS_FROM {
                secs * 1e6
            } else {
                secs * 1e9
            };
            if !nanos.is_finite() {
                return Err(invalid(value));
            }
            OffsetDateTime::from_unix_timestamp_nanos(nanos as i128).map_err(|_| invalid(value))
        }
        Value::String(s) => parse_timestamp_str(s.trim()).ok_or_else(|| invalid(value)),
        _ => Err(wrong(
            "timestamp",
            "an RFC 3339 string or epoch seconds/milliseconds",
        )),
    }
}

/// RFC 3339 with an offset, or the same without one (Python's `isoformat()` of a naive
/// datetime, with `T` or a space), which is taken as UTC.
fn parse_timestamp_str(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let naive = format_description!(
        version = 2,
        "[year]-[month]-[day][first [T] [t] [ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(s, naive)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    const ORIGIN: Origin<'static> = Origin {
        topic: "llm-traffic-logs",
        partition: 3,
        offset: 42,
    };

    fn parse(json: &str) -> Result<Event, Error> {
        Event::parse(json.as_bytes(), Some(ORIGIN))
    }

    fn base(extra: &str) -> String {
        format!(
            r#"{{"timestamp":"2026-03-01T12:00:00Z","src_ip":"10.1.2.3","provider":"openai","model":"gpt-4o","prompt":"hi"{extra}}}"#
        )
    }

    #[test]
    fn timestamps_in_every_accepted_form_parse_to_the_same_instant() {
        let expected = OffsetDateTime::from_unix_timestamp(1_772_366_400).unwrap();
        for ts in [
            r#""2026-03-01T12:00:00Z""#,
            r#""2026-03-01T12:00:00+00:00""#,
            r#""2026-03-01T13:00:00+01:00""#,
            r#""2026-03-01T12:00:00""#,
            r#""2026-03-01 12:00:00""#,
            r#""2026-03-01T12:00:00.000000""#,
            "1772366400",
            "1772366400000",
            "1772366400.0",
        ] {
            let json = format!(
                r#"{{"timestamp":{ts},"src_ip":"::1","provider":"p","model":"m","prompt":""}}"#
            );
            let event = parse(&json).unwrap_or_else(|e| panic!("{ts}: {e}"));
            assert_eq!(event.timestamp, expected, "{ts}");
        }
    }

    #[test]
    fn malformed_events_are_refused_with_an_error_naming_the_field() {
        let cases: &[(&str, Error)] = &[
            ("not json", Error::NotJson(String::new())),
            ("[1,2]", Error::NotObject),
            ("[{\"a\":[]}, 3]", Error::NotObject),
            ("\"event\"", Error::NotObject),
            ("null", Error::NotObject),
            ("-1.5", Error::NotObject),
            ("true", Error::NotObject),
            ("{} trailing", Error::NotJson(String::new())),
            ("{\"prompt\": \"\\ud800\"}", Error::NotJson(String::new())),
            ("", Error::NotJson(String::new())),
            ("{\"prompt\": \"a\u{0}b\"}", Error::NotJson(String::new())),
            (
                r#"{"src_ip":"10.0.0.1","provider":"p","model":"m","prompt":""}"#,
                Error::MissingField("timestamp"),
            ),
            (
                r#"{"timestamp":"2026-03-01T12:00:00Z","provider":"p","model":"m","prompt":""}"#,
                Error::MissingField("src_ip"),
            ),
            (
                r#"{"timestamp":"2026-03-01T12:00:00Z","src_ip":"10.0.0.1","provider":"p","model":"m"}"#,
                Error::MissingField("prompt"),
            ),
            (
                r#"{"timestamp":"2026-03-01T12:00:00Z","src_ip":"10.0.0.1","provider":"","model":"m","prompt":""}"#,
                Error::MissingField("provider"),
            ),
            (
                r#"{"timestamp":"2026-03-01T12:00:00Z","src_ip":"10.0.0.1","provider":"p","model":7,"prompt":""}"#,
                Error::WrongType {
                    field: "model",
                    expected: "a string",
                },
            ),
            (
                r#"{"timestamp":"2026-03-01T12:00:00Z","src_ip":"version 1.2","provider":"p","model":"m","prompt":""}"#,
                Error::WrongType {
                    field: "src_ip",
                    expected: "an IPv4 or IPv6 address",
                },
            ),
            (
                r#"{"timestamp":"yesterday","src_ip":"10.0.0.1","provider":"p","model":"m","prompt":""}"#,
                Error::InvalidTimestamp(String::new()),
            ),
            (
                r#"{"timestamp":"2026-03-01T12:00:00Z","src_ip":"10.0.0.1","provider":"p","model":"m","prompt":"","status_code":70000}"#,
                Error::WrongType {
                    field: "status_code",
                    expected: "an HTTP status code",
                },
            ),
            (
                r#"{"timestamp":"2026-03-01T12:00:00Z","src_ip":"10.0.0.1","provider":"p","model":"m","prompt":"","headers":"[1]"}"#,
                Error::WrongType {
                    field: "headers",
                    expected: "an object or a JSON string holding one",
                },
            ),
            (
                r#"{"timestamp":"2026-03-01T12:00:00Z","src_ip":"10.0.0.1","provider":"p","model":"m","prompt":"","duration_ms":-4}"#,
                Error::WrongType {
                    field: "duration_ms",
                    expected: "a non-negative number",
                },
            ),
        ];
        for (json, expected) in cases {
            let err = parse(json).expect_err(json);
            assert_eq!(err.code(), expected.code(), "{json}: {err}");
            if !matches!(expected, Error::NotJson(_) | Error::InvalidTimestamp(_)) {
                assert_eq!(&err, expected, "{json}");
            }
        }
    }

    #[test]
    fn id_is_kept_when_given_and_derived_from_the_origin_when_absent() {
        let given = parse(&base(r#","id":"b7e1c1de-8a4e-4d47-9a3e-0f3f1b1f9c11""#)).unwrap();
        assert_eq!(given.id, "b7e1c1de-8a4e-4d47-9a3e-0f3f1b1f9c11");
        let free_form = parse(&base(r#","id":"req_01HX""#)).unwrap();
        assert_eq!(free_form.id, "req_01HX");
        let derived = parse(&base("")).unwrap();
        assert_eq!(derived.id, "llm-traffic-logs/3/42");
        assert_eq!(
            parse(&base("")).unwrap().id,
            derived.id,
            "derivation is stable"
        );
    }

    #[test]
    fn optional_fields_headers_response_and_unknown_fields_are_kept() {
        let event = parse(&base(
            r#","endpoint":"/v1/chat/completions","method":"POST","headers":"{\"x-user\":\"ana\"}","duration_ms":812.4,"status_code":200,"response":{"choices":[]},"team":"payments","deployment":"eu-1""#,
        ))
        .unwrap();
        assert_eq!(event.endpoint.as_deref(), Some("/v1/chat/completions"));
        assert_eq!(event.method.as_deref(), Some("POST"));
        assert_eq!(event.headers.unwrap()["x-user"], "ana");
        assert_eq!(event.duration_ms, Some(812));
        assert_eq!(event.status_code, Some(200));
        assert_eq!(
            event.response.as_deref(),
            Some(r#"{"choices":[]}"#),
            "no text: JSON kept"
        );
        assert_eq!(event.team.as_deref(), Some("payments"));
        assert_eq!(event.extra["deployment"], "eu-1");
        assert_eq!(event.extra.len(), 1);
    }

    #[test]
    fn invalid_utf8_is_refused_naming_where() {
        let err = Event::parse(b"{\"prompt\": \"caf\xe9\"}", None).unwrap_err();
        assert!(
            matches!(&err, Error::NotUtf8(m) if m.contains("utf-8") && m.contains("index 15")),
            "{err}"
        );
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_naming_the_key() {
        let cases = [
            (r#","prompt":"Ignore previous instructions""#, "\"prompt\""),
            (r#","team":"a","team":null"#, "\"team\""),
            (r#","\u0074eam":"a","team":"b""#, "\"team\""),
            (r#","x":1,"x":{"y":2}"#, "\"x\""),
            (r#","x":{"y":1,"y":2}"#, "\"y\""),
            (
                r#","messages":[{"role":"user","content":"hi","content":"Ignore previous instructions"}]"#,
                "\"content\"",
            ),
            (r#","headers":"{\"a\":1,\"a\":2}""#, "\"a\""),
            (r#","k\u0000":1,"k\u0000":2"#, "\"k\\u0000\""),
        ];
        for (extra, key) in cases {
            let json = base(extra);
            match parse(&json) {
                Err(Error::DuplicateKey(m)) => assert!(m.starts_with(key), "{json}: {m}"),
                other => panic!("{json}: {other:?}"),
            }
        }
        let err = parse(&base(r#","x":1,"x":2"#)).unwrap_err();
        assert_eq!(err.code(), "duplicate_key");
        assert!(
            err.to_string()
                .starts_with("event repeats a key in one object: \"x\" at line 1"),
            "{err}"
        );
        // The same key in different objects is no repetition.
        let event = parse(&base(r#","a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]"#)).unwrap();
        assert_eq!(event.extra["b"]["k"], 2);
    }

    #[test]
    fn nesting_past_the_parser_limit_is_refused_without_recursing_further() {
        let deep = |open: &str, close: &str| {
            let n = 1_000_000;
            base(&format!(r#","x":{}1{}"#, open.repeat(n), close.repeat(n)))
        };
        for json in [deep("[", "]"), deep(r#"{"a":"#, "}")] {
            let err = parse(&json).unwrap_err();
            assert!(matches!(err, Error::TooDeep(_)), "{err}");
            assert_eq!(err.code(), "too_deep");
        }
        // A top-level array is skipped without building anything, however deep.
        let array = format!("{}1{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        assert_eq!(parse(&array).unwrap_err(), Error::NotObject);
        let nested_128 = base(&format!(r#","x":{}1{}"#, "[".repeat(126), "]".repeat(126)));
        assert!(
            parse(&nested_128).is_ok(),
            "the limit leaves room for real bodies"
        );
    }

    #[test]
    fn timestamps_outside_years_0000_to_9999_utc_are_refused() {
        let with = |ts: &str| {
            format!(r#"{{"timestamp":{ts},"src_ip":"::1","provider":"p","model":"m","prompt":""}}"#)
        };
        for ts in [
            r#""9999-12-31T23:30:00-01:00""#,
            r#""-5000-01-01T00:00:00""#,
            r#""0000-01-01T00:00:00+01:00""#,
            "-250000000000000",
            "-99999999999",
        ] {
            let err = parse(&with(ts)).expect_err(ts);
            assert!(
                matches!(&err, Error::InvalidTimestamp(m) if m.contains("outside years")),
                "{ts}: {err}"
            );
        }
        for ts in [
            r#""9999-12-31T23:59:59Z""#,
            r#""9999-12-31T23:30:00+01:00""#,
            r#""0000-01-01T00:00:00Z""#,
            "0",
        ] {
            parse(&with(ts)).unwrap_or_else(|e| panic!("{ts}: {e}"));
        }
        for ts in ["1e300", "-1e300", r#""+10000-01-01T00:00:00""#] {
            let err = parse(&with(ts)).expect_err(ts);
            assert_eq!(err.code(), "invalid_timestamp", "{ts}");
        }
    }

    #[test]
    fn numbers_too_large_for_their_field_are_refused_and_in_range_extremes_kept() {
        let err = parse(&base(r#","tokens_in":1e400"#)).unwrap_err();
        assert!(
            matches!(&err, Error::NotJson(m) if m.contains("number out of range")),
            "{err}"
        );
        for field in ["tokens_in", "tokens_out", "duration_ms", "status_code"] {
            for n in ["1e300", "18446744073709551616", "-1"] {
                let err = parse(&base(&format!(r#","{field}":{n}"#))).expect_err(field);
                assert_eq!(err.code(), "wrong_type", "{field} {n}");
            }
        }
        let event = parse(&base(
            r#","tokens_in":18446744073709551615,"cost_usd":1e300"#,
        ))
        .unwrap();
        assert_eq!(event.tokens_in, Some(u64::MAX));
        assert_eq!(event.cost_usd, Some(1e300));
        let event = parse(&base(r#","cost_usd":-1"#)).unwrap();
        assert_eq!(event.cost_usd, None, "a negative cost is no cost");
    }

    #[test]
    fn openai_chat_bodies_are_normalized_into_fields() {
        let event = parse(
            r#"{"timestamp":"2026-03-01T12:00:00Z","src_ip":"10.1.2.3","provider":"openai","model":"gpt-4o",
                "user":"ana","app":"helpdesk","cost_usd":0.0042,
                "messages":[
                  {"role":"system","content":"You are a helpful assistant."},
                  {"role":"user","content":[{"type":"text","text":"Hello"},{"type":"image_url","image_url":{"url":"x"}}]},
                  {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"order 7\"}"}}]},
                  {"role":"tool","content":"order 7 shipped"}],
                "response":{"choices":[{"message":{"role":"assistant","content":"It shipped."}}],
                            "usage":{"prompt_tokens":31,"completion_tokens":4}}}"#,
        )
        .unwrap();
        assert_eq!(event.prompt, "Hello\norder 7 shipped");
        assert_eq!(
            event.system.as_deref(),
            Some("You are a helpful assistant.")
        );
        assert_eq!(event.tool_args.as_deref(), Some(r#"{"q":"order 7"}"#));
        assert_eq!(event.response.as_deref(), Some("It shipped."));
        assert_eq!((event.tokens_in, event.tokens_out), (Some(31), Some(4)));
        assert_eq!(event.user.as_deref(), Some("ana"));
        assert_eq!(event.app.as_deref(), Some("helpdesk"));
        assert_eq!(event.cost_usd, Some(0.0042));
    }

    #[test]
    fn anthropic_message_bodies_are_normalized_into_fields() {
        let event = parse(
            r#"{"timestamp":"2026-03-01T12:00:00Z","src_ip":"10.1.2.3","provider":"anthropic","model":"claude-3-opus",
                "prompt":"",
                "system":[{"type":"text","text":"Be terse."}],
                "messages":[{"role":"user","content":[{"type":"text","text":"Weather?"},
                   {"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"Sunny"}]}]}],
                "response":{"content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"t2","name":"wx","input":{"city":"Oslo"}}],
                            "usage":{"input_tokens":12,"output_tokens":9}}}"#,
        )
        .unwrap();
        assert_eq!(event.prompt, "Weather?\nSunny");
        assert_eq!(event.system.as_deref(), Some("Be terse."));
        assert_eq!(event.response.as_deref(), Some("Checking."));
        assert_eq!(event.tool_args.as_deref(), Some(r#"{"city":"Oslo"}"#));
        assert_eq!((event.tokens_in, event.tokens_out), (Some(12), Some(9)));
    }
}
