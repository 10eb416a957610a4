//! Field-level tolerance: a response field of an unexpected type becomes "absent" instead
//! of failing the whole response.
//!
//! Kolbo documents few guarantees about optional fields, and losing a paid generation id
//! because, say, `credits_charged` arrived as `"n/a"` would be far worse than not knowing
//! the charge. The wire types put these helpers on every optional field
//! (`#[serde(default, deserialize_with = "tolerant::option")]`); only the fields a response
//! cannot do without (a generation id, a state) are parsed strictly. Each helper reads its
//! value as a [`serde_json::Value`] first, so a value of the wrong type can be dropped
//! without failing the rest; they behave the same whoever calls them (plain
//! `serde_json::from_str` included).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An optional field: any value that does not parse as `T` (including `null`) is `None`.
pub(crate) fn option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
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
    Ok(match Value::deserialize(deserializer)? {
        Value::Bool(b) => Some(b),
        Value::Number(n) => n.as_f64().map(|v| v != 0.0),
        _ => None,
    })
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
        let p: Probe = serde_json::from_str(r#"{"amount":3,"items":[1,2],"on":true}"#).unwrap();
        assert_eq!((p.amount, p.items, p.on), (Some(3), vec![1, 2], Some(true)));
    }
}
