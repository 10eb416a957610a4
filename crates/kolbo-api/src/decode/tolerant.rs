//! Flags as Kolbo sends them: `true`/`false`, or `1`/`0` from older builds; anything else
//! is absent. (A mistyped optional field of any other kind is left out by the decoder's
//! lenient pass, in [`crate::decode`].)

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A boolean flag: `true`/`false`, or a number (non-zero is `true`); anything else, `None`.
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

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(default)]
        amount: Option<u32>,
        #[serde(default)]
        items: Vec<u32>,
        #[serde(default, deserialize_with = "flag")]
        on: Option<bool>,
    }

    fn decode(body: &str) -> Probe {
        crate::decode::body(200, body.as_bytes()).unwrap()
    }

    #[test]
    fn flags_and_wrong_types_become_absent_through_the_decoder() {
        let p = decode(r#"{"amount":"n/a","items":[1,"x",3],"on":0}"#);
        assert_eq!(p.amount, None);
        assert_eq!(p.items, [1, 3]);
        assert_eq!(p.on, Some(false));
        let p = decode(r#"{"amount":null,"items":null,"on":1}"#);
        assert_eq!((p.amount, p.items.len(), p.on), (None, 0, Some(true)));
        let p = decode(r#"{}"#);
        assert_eq!((p.amount, p.items.len(), p.on), (None, 0, None));
        let p = decode(r#"{"amount":3,"items":[1,2],"on":true}"#);
        assert_eq!((p.amount, p.items, p.on), (Some(3), vec![1, 2], Some(true)));
    }
}
