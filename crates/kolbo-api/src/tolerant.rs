//! Tolerant field parsing: a response field of an unexpected type becomes "absent" instead
//! of failing the whole response.
//!
//! Kolbo documents few guarantees about optional fields, and losing a paid generation id
//! because, say, `credits_charged` arrived as `"n/a"` would be far worse than not knowing
//! the charge. Only the fields a response cannot do without (a generation id, a state) are
//! parsed strictly.

use std::cell::Cell;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

thread_local! {
    /// Set while [`from_slice`] makes its strict first attempt.
    static STRICT: Cell<bool> = const { Cell::new(false) };
}

/// Decodes a body into `T`: first strictly, where the field parsers below read each value
/// straight from the text and a field of the wrong type fails the attempt; then, only if
/// that failed, tolerantly, where each field goes through a `serde_json::Value` so a bad one
/// can be dropped. Well-formed bodies (nearly all) pay for no intermediate values; the
/// result is the same either way.
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    struct Strict;
    impl Drop for Strict {
        fn drop(&mut self) {
            STRICT.set(false);
        }
    }
    let strict = {
        STRICT.set(true);
        Strict
    };
    let first = serde_json::from_slice(bytes);
    drop(strict);
    first.or_else(|_| serde_json::from_slice(bytes))
}

fn strict() -> bool {
    STRICT.get()
}

/// An optional field: any value that does not parse as `T` (including `null`) is `None`.
pub(crate) fn option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    if strict() {
        return Option::<T>::deserialize(deserializer);
    }
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// A list field: a missing, `null` or non-list value is empty, and elements that do not
/// parse as `T` are dropped (and logged).
pub(crate) fn vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    if strict() {
        return Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default());
    }
    let Value::Array(items) = Value::deserialize(deserializer)? else {
        return Ok(Vec::new());
    };
    Ok(items
        .into_iter()
        .filter_map(|item| match serde_json::from_value(item) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                tracing::warn!(%error, "kolbo: skipping a list element that does not parse");
                None
            }
        })
        .collect())
}

/// A boolean that Kolbo may send as `true`/`false`, `0`/`1` or `null` (the catalog's
/// `supports_visual_dna` does); anything else is `None`.
pub(crate) fn flag<'de, D>(deserializer: D) -> Result<Option<bool>, D::Error>
where
    D: Deserializer<'de>,
{
    if strict() {
        return Option::<bool>::deserialize(deserializer);
    }
    Ok(match Value::deserialize(deserializer)? {
        Value::Bool(b) => Some(b),
        Value::Number(n) => n.as_f64().map(|v| v != 0.0),
        _ => None,
    })
}

/// Renames `camel` to `snake` in `map` when only the camelCase key is present; when both
/// are, the snake_case one wins and the other is dropped. Serde's `alias` fails on a body
/// carrying both spellings, which a server mid-migration can send.
pub(crate) fn prefer_snake_case(map: &mut Map<String, Value>, pairs: &[(&str, &str)]) {
    for (camel, snake) in pairs {
        if let Some(value) = map.remove(*camel)
            && !map.contains_key(*snake)
        {
            map.insert((*snake).to_owned(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "option")]
        amount: Option<u32>,
        #[serde(default, deserialize_with = "vec")]
        items: Vec<u32>,
        #[serde(default, deserialize_with = "flag")]
        on: Option<bool>,
    }

    #[test]
    fn strict_first_then_tolerant_gives_the_tolerant_result() {
        let good: Probe = from_slice(br#"{"amount":3,"items":[1,2],"on":true}"#).unwrap();
        assert_eq!(
            (good.amount, good.items, good.on),
            (Some(3), vec![1, 2], Some(true))
        );
        let bad: Probe = from_slice(br#"{"amount":"n/a","items":[1,"x",3],"on":0}"#).unwrap();
        assert_eq!(
            (bad.amount, bad.items, bad.on),
            (None, vec![1, 3], Some(false))
        );
        let nulls: Probe = from_slice(br#"{"amount":null,"items":null,"on":null}"#).unwrap();
        assert_eq!((nulls.amount, nulls.items, nulls.on), (None, vec![], None));
        assert!(!strict(), "the strict flag is reset");
        assert!(from_slice::<Probe>(b"not json").is_err());
        assert!(!strict());
    }

    #[test]
    fn wrong_types_become_absent() {
        let p: Probe =
            serde_json::from_str(r#"{"amount":"n/a","items":[1,"x",3],"on":0}"#).unwrap();
        assert_eq!(p.amount, None);
        assert_eq!(p.items, [1, 3]);
        assert_eq!(p.on, Some(false));
        let p: Probe = serde_json::from_str(r#"{"amount":null,"items":null,"on":1}"#).unwrap();
        assert_eq!((p.amount, p.items.len(), p.on), (None, 0, Some(true)));
        let p: Probe = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!((p.amount, p.items.len(), p.on), (None, 0, None));
    }

    #[test]
    fn snake_case_wins_over_camel_case() {
        let mut map: Map<String, Value> =
            serde_json::from_str(r#"{"generationId":"a","generation_id":"b","newModel":true}"#)
                .unwrap();
        prefer_snake_case(
            &mut map,
            &[("generationId", "generation_id"), ("newModel", "new_model")],
        );
        assert_eq!(
            Value::Object(map),
            serde_json::json!({"generation_id":"b","new_model":true})
        );
    }
}
