//! The message as it arrives: every field Flagstream reads in a slot of its own, the rest
//! kept as sent. Filled in one pass over the JSON, so known fields never go through an object
//! map (building one and taking the fields back out was a third of the parsing time).
//!
//! A key repeated in any object, at the top or nested, is an error. JSON leaves the meaning of
//! a repeated key open and parsers differ (most keep the last value, some the first): an event
//! with `"prompt"` twice may have sent the model the value this engine did not scan.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use crate::event::truncate;

/// Starts the parser error for a repeated key; the key follows, as a JSON string.
pub(crate) const DUPLICATE_KEY: &str = "duplicate key ";

macro_rules! wire {
    ($($field:ident),* $(,)?) => {
        /// A message's top-level fields.
        #[derive(Debug, Default)]
        pub(crate) struct Wire {
            $(pub $field: Option<Value>,)*
            /// Fields Flagstream does not know.
            pub extra: Map<String, Value>,
        }

        /// The names of [`Wire`]'s slots.
        const KNOWN: &[&str] = &[$(stringify!($field)),*];

        impl Wire {
            fn slot(&mut self, key: &str) -> Option<&mut Option<Value>> {
                match key {
                    $(stringify!($field) => Some(&mut self.$field),)*
                    _ => None,
                }
            }
        }
    };
}

wire!(
    id,
    timestamp,
    src_ip,
    provider,
    model,
    prompt,
    system,
    messages,
    response,
    user,
    app,
    team,
    tokens_in,
    tokens_out,
    cost_usd,
    endpoint,
    method,
    headers,
    duration_ms,
    status_code,
);

/// A message's top-level JSON value: an object's fields, or `None` for any other value
/// (which is no event).
pub(crate) struct Top(pub Option<Wire>);

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Top, D::Error> {
        deserializer.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut wire = Wire::default();
        while let Some(Key(key)) = map.next_key()? {
            match key {
                KeyName::Known(name) => {
                    if let Some(slot) = wire.slot(name) {
                        if slot.is_some() {
                            return Err(duplicate(name));
                        }
                        *slot = Some(map.next_value::<Strict>()?.0);
                    }
                }
                KeyName::Other(name) => match wire.extra.entry(name) {
                    Entry::Occupied(e) => return Err(duplicate(e.key())),
                    Entry::Vacant(e) => {
                        e.insert(map.next_value::<Strict>()?.0);
                    }
                },
            }
        }
        Ok(Top(Some(wire)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top(None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Top, E> {
        Ok(Top(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
        Ok(Top(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
        Ok(Top(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
        Ok(Top(None))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Top, E> {
        Ok(Top(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
        Ok(Top(None))
    }
}

/// A top-level key: one of [`Wire`]'s fields (read without allocating), or another name.
struct Key(KeyName);

enum KeyName {
    Known(&'static str),
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(Key(match KNOWN.iter().find(|k| **k == key) {
            Some(known) => KeyName::Known(known),
            None => KeyName::Other(key.to_owned()),
        }))
    }
}

fn duplicate<E: de::Error>(key: &str) -> E {
    // As a JSON string: a key may hold control characters, and the message is stored as text.
    E::custom(format_args!(
        "{DUPLICATE_KEY}{}",
        Value::String(truncate(key, 64))
    ))
}

/// A JSON value in which no object repeats a key. Nesting is bounded by the parser's
/// recursion limit, as for [`Value`].
pub(crate) struct Strict(pub Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Strict::deserialize(deserializer).map(|s| s.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                Entry::Occupied(e) => return Err(duplicate(e.key())),
                Entry::Vacant(e) => {
                    e.insert(map.next_value::<Strict>()?.0);
                }
            }
        }
        Ok(Value::Object(object))
    }
}
