//! Finds a JSON array where a struct is expected, anywhere in a request body.
//!
//! serde's derived `Deserialize` fills a struct from an array by position, so
//! `{"roles": [["shift_manager", "<pizzeria>"]]}` would read like `{"roles": [{"role": ...,
//! "pizzeria_id": ...}]}`: a client cannot know it, and fields swap silently when their order
//! changes. serde_json offers no switch for it, so [`array_for_struct`] walks the already
//! parsed body a second time through [`Strict`], a deserializer over `serde_json::Value` that
//! refuses an array for a struct and otherwise behaves like serde_json's own.

use serde::de::{
    self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor,
    value::{BorrowedStrDeserializer, MapDeserializer, SeqDeserializer},
};
use serde_json::Value;

/// The rule the caller is told, and the marker [`array_for_struct`] looks for.
pub(crate) const MUST_BE_OBJECT: &str = "must be a JSON object";

/// The path (`roles[0]`, or `` for the body itself) of the first array standing where `T`
/// expects a struct, if there is one. Any other error of the second walk is not ours to report:
/// the body already deserialized without it.
pub(crate) fn array_for_struct<T: DeserializeOwned>(value: &Value) -> Option<String> {
    match serde_path_to_error::deserialize::<_, T>(Strict(value)) {
        Ok(_) => None,
        Err(e) if e.inner().to_string().starts_with(MUST_BE_OBJECT) => Some(e.path().to_string()),
        Err(_) => None,
    }
}

#[derive(Clone, Copy)]
struct Strict<'de>(&'de Value);

impl<'de> IntoDeserializer<'de, serde_json::Error> for Strict<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for Strict<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.iter().map(Strict));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Value::Object(map) => {
                let mut entries = MapDeserializer::new(
                    map.iter()
                        .map(|(k, v)| (BorrowedStrDeserializer::new(k.as_str()), Strict(v))),
                );
                let value = visitor.visit_map(&mut entries)?;
                entries.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if self.0.is_array() {
            return Err(de::Error::custom(MUST_BE_OBJECT));
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // An enum's content is rare in request bodies; serde_json's own reading is enough.
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}
