//! How every Kolbo answer body becomes a type.
//!
//! Every answer goes through [`body`] (or [`value`], for an id recovered from a cut-off
//! body), in two passes:
//!
//! 1. **Direct**: plain serde, `serde_json::from_slice::<T>`, straight into the wire
//!    types. They carry the tolerance a well-formed body needs: camelCase spellings of
//!    older Kolbo builds (`generationId`, `supportedAspectRatios`, `_id`, …) are
//!    `#[serde(alias)]`es of the snake_case fields, unknown fields are ignored and unknown
//!    enum values are kept. Nearly every body ends here, parsed once.
//! 2. **Lenient**, only when the direct pass fails: the body is rebuilt as a
//!    [`serde_json::Value`] in which a value serde cannot hold (a number out of range such
//!    as `1e999`) is left out, a key sent twice with different values is left out, and a
//!    key sent in both spellings keeps its snake_case one (`alias` alone rejects both as a
//!    duplicate field). That value is then decoded into the same type; while it fails on
//!    one member (a mistyped optional field, a list element that is not what the list
//!    holds), that member is left out, as serde names it with its path, and decoding runs
//!    again. So one bad optional field becomes absent instead of making the whole answer
//!    unreadable; a bad required field still fails it. This pass renames nothing, it only
//!    drops.
//!
//! When both fail, the answer is [`KolboError::Unreadable`] with the direct pass's reason.
//! This module also owns the error-envelope probe ([`error_envelope`]) and
//! [`salvage_generation_id`], which finds a paid generation's id in a body cut short.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::KolboError;
use crate::types::ErrorBody;

pub(crate) mod tolerant;

/// How deep the lenient pass rebuilds member by member; below this a subtree must parse
/// as a whole (Kolbo's bodies are four levels deep). Bounds its recursion and its cost.
const LENIENT_DEPTH: usize = 16;

/// How many bytes of a bad body an error keeps.
const BODY_PREFIX_LIMIT: usize = imagegen_core::error::BODY_PREFIX_LIMIT;

/// Decodes an answer body (HTTP status `status`) into `T`: directly, else leniently (see
/// the module documentation).
pub(crate) fn body<T: DeserializeOwned>(status: u16, bytes: &[u8]) -> Result<T, KolboError> {
    from_slice(bytes).map_err(|error| KolboError::Unreadable {
        status,
        detail: if error.is_data() {
            format!("unexpected JSON shape: {error}")
        } else {
            unreadable_detail(bytes)
        },
        body_prefix: body_prefix(bytes),
    })
}

/// Decodes a body already parsed (the id recovered from a cut-off answer); `bytes` is what
/// arrived, kept for the error.
pub(crate) fn value<T: DeserializeOwned>(
    status: u16,
    json: Value,
    bytes: &[u8],
) -> Result<T, KolboError> {
    T::deserialize(json).map_err(|error| KolboError::Unreadable {
        status,
        detail: format!("unexpected JSON shape: {error}"),
        body_prefix: body_prefix(bytes),
    })
}

/// The error envelope of a body, when it is one: it parses as [`ErrorBody`] and says
/// `success: false` / `status: false`, or carries a `code` or a message. Whether the call
/// failed is the caller's to decide from this and the HTTP status.
///
/// A success answer is probed with the direct pass alone (a success body that does not
/// read as an envelope is simply not one); an error answer gets both passes, so an
/// envelope with one odd field still yields its message.
pub(crate) fn error_envelope(bytes: &[u8], success: bool) -> Option<ErrorBody> {
    let envelope = if success {
        serde_json::from_slice::<ErrorBody>(bytes).ok()
    } else {
        from_slice::<ErrorBody>(bytes).ok()
    };
    envelope.filter(|b| b.is_error() || b.code.is_some() || b.message().is_some())
}

/// The two passes; the error is the direct pass's, which names the line and column.
fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    let direct = match serde_json::from_slice(bytes) {
        Ok(decoded) => return Ok(decoded),
        Err(error) => error,
    };
    let Some(mut repaired) = lenient(bytes) else {
        return Err(direct);
    };
    for _ in 0..MAX_LEFT_OUT {
        let failed_at = match serde_path_to_error::deserialize::<_, T>(&repaired) {
            Ok(decoded) => {
                tracing::debug!(error = %direct, "kolbo: answer decoded by the lenient pass");
                return Ok(decoded);
            }
            Err(error) => error.path().clone(),
        };
        if !leave_out(&mut repaired, &failed_at) {
            break;
        }
        tracing::warn!(member = %failed_at, "kolbo: leaving out a member that does not read as documented");
    }
    Err(direct)
}

/// How many members the lenient pass leaves out at most before it gives up.
const MAX_LEFT_OUT: usize = 32;

/// Removes the member at `path` (an object key or an array element) from `value`; `false`
/// when the path is the whole body or names nothing there.
fn leave_out(value: &mut Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = value;
    for segment in parents {
        let next = match (segment, node) {
            (Segment::Map { key }, Value::Object(map)) => map.get_mut(key.as_str()),
            (Segment::Seq { index }, Value::Array(items)) => items.get_mut(*index),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => return false,
        }
    }
    match (last, node) {
        (Segment::Map { key }, Value::Object(map)) => map.shift_remove(key.as_str()).is_some(),
        (Segment::Seq { index }, Value::Array(items)) if *index < items.len() => {
            items.remove(*index);
            true
        }
        _ => false,
    }
}

/// The body as a [`Value`] without what made serde refuse it, or `None` when it is not
/// JSON at all (cut short, HTML, not UTF-8).
fn lenient(bytes: &[u8]) -> Option<Value> {
    repair(std::str::from_utf8(bytes).ok()?, 0)
}

/// One JSON value, rebuilt: objects and arrays member by member, each member cut out as a
/// raw value first (which checks its syntax but not its numbers), so that one member serde
/// cannot hold is dropped and the rest kept. `None` when `raw` cannot be kept at all.
fn repair(raw: &str, depth: usize) -> Option<Value> {
    match raw.trim_start().as_bytes().first()? {
        b'{' if depth < LENIENT_DEPTH => {
            let Members(members) = serde_json::from_str(raw).ok()?;
            Some(Value::Object(merge(members, depth + 1)))
        }
        b'[' if depth < LENIENT_DEPTH => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(raw).ok()?;
            Some(Value::Array(
                items
                    .iter()
                    .filter_map(|item| repair(item.get(), depth + 1))
                    .collect(),
            ))
        }
        _ => match serde_json::from_str(raw) {
            Ok(scalar) => Some(scalar),
            Err(error) => {
                tracing::warn!(%error, "kolbo: leaving out a value that does not parse");
                None
            }
        },
    }
}

/// An object's members in order, repeated keys included.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// Builds an object from its members: a key given twice keeps its value only if both agree
/// (which one the server meant is unknown, so a disagreement leaves the field absent), and
/// of a key given in both spellings (`generationId` and `generation_id`, `_id` and `id`)
/// only the snake_case one is kept.
fn merge(members: Vec<(String, Box<RawValue>)>, depth: usize) -> Map<String, Value> {
    let mut map = Map::new();
    let mut seen = BTreeSet::new();
    for (key, raw) in members {
        let first = seen.insert(key.clone());
        match repair(raw.get(), depth) {
            Some(value) if first => {
                map.insert(key, value);
            }
            Some(value) if map.get(&key) == Some(&value) => {}
            _ => {
                if !first {
                    tracing::warn!(
                        key,
                        "kolbo: leaving out a key sent twice with different values"
                    );
                }
                map.shift_remove(&key);
            }
        }
    }
    let shadowed: Vec<String> = map
        .keys()
        .filter(|key| {
            let snake = snake_case(key);
            snake != **key && map.contains_key(&snake)
        })
        .cloned()
        .collect();
    for key in shadowed {
        map.shift_remove(&key);
    }
    map
}

/// `generationId` → `generation_id`, `_id` → `id`.
fn snake_case(key: &str) -> String {
    let mut snake = String::with_capacity(key.len() + 4);
    for c in key.trim_start_matches('_').chars() {
        if c.is_ascii_uppercase() {
            if !snake.is_empty() && !snake.ends_with('_') {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

/// Why a body that did not decode is unreadable: empty, cut short, or not JSON.
fn unreadable_detail(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "empty body".into();
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(_) => "unexpected JSON".into(),
        Err(e) if e.is_eof() => format!("truncated JSON: {e}"),
        Err(e) => format!("not JSON: {e}"),
    }
}

/// The start of a body, for an error message.
pub(crate) fn body_prefix(bytes: &[u8]) -> String {
    imagegen_core::error::body_prefix(&bytes[..bytes.len().min(BODY_PREFIX_LIMIT)])
}

/// Finds a complete `"generation_id": "…"` (or `generationId`) in a body that does not
/// parse, such as one cut off mid-transfer.
pub(crate) fn salvage_generation_id(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    for key in ["\"generation_id\"", "\"generationId\""] {
        let mut rest = text.as_ref();
        while let Some(at) = rest.find(key) {
            rest = &rest[at + key.len()..];
            let Some(after_colon) = rest.trim_start().strip_prefix(':') else {
                continue;
            };
            let Some(literal) = after_colon.trim_start().strip_prefix('"') else {
                continue;
            };
            let mut escaped = false;
            let end = literal.char_indices().find_map(|(i, c)| {
                let found = !escaped && c == '"';
                escaped = !escaped && c == '\\';
                found.then_some(i)
            })?;
            let id: String = serde_json::from_str(&format!("\"{}\"", &literal[..end])).ok()?;
            if !id.trim().is_empty() {
                return Some(id);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::types::{GenerationStarted, GenerationState, GenerationStatus, KolboModel};

    fn status(body: &str) -> Result<GenerationStatus, KolboError> {
        super::body(200, body.as_bytes())
    }

    #[test]
    fn the_direct_pass_reads_camel_case_and_mistyped_fields() {
        let started: GenerationStarted = body(
            200,
            br#"{"generationId":"g1","credits_charged":"lots","poll_interval_hint":-4}"#,
        )
        .unwrap();
        assert_eq!(started.generation_id, "g1");
        assert_eq!(started.credits_charged, None);
        let model: KolboModel = body(200, br#"{"identifier":"m","supportsVisualDna":1}"#).unwrap();
        assert_eq!(model.supports_visual_dna, Some(true));
    }

    #[test]
    fn snake_case_wins_when_both_spellings_arrive() {
        let started: GenerationStarted =
            body(200, br#"{"generationId":"old","generation_id":"new"}"#).unwrap();
        assert_eq!(started.generation_id, "new");
        let started: GenerationStarted =
            body(200, br#"{"generation_id":"new","generationId":"old"}"#).unwrap();
        assert_eq!(started.generation_id, "new");
        let model: KolboModel = body(
            200,
            br#"{"identifier":"m","newModel":false,"new_model":true,
                 "supportedAspectRatios":["1:1"],"supported_aspect_ratios":["16:9"]}"#,
        )
        .unwrap();
        assert_eq!(model.new_model, Some(true));
        assert_eq!(model.supported_aspect_ratios, Some(vec!["16:9".to_owned()]));
    }

    #[test]
    fn a_progress_out_of_range_is_left_out_not_the_status() {
        let status = status(
            r#"{"success":true,"generation_id":"g1","state":"processing","progress":1e999}"#,
        )
        .unwrap();
        assert_eq!(status.state, GenerationState::Processing);
        assert_eq!(status.generation_id.as_deref(), Some("g1"));
        assert_eq!(status.progress, None);
        // Deeper down too: the result keeps its URLs.
        let status = status_with_result(r#"{"urls":["https://cdn/a.png"],"model":-1e400}"#);
        let result = status.result.unwrap();
        assert_eq!(result.urls, ["https://cdn/a.png"]);
        assert_eq!(result.model, None);
    }

    fn status_with_result(result: &str) -> GenerationStatus {
        status(&format!(r#"{{"state":"completed","result":{result}}}"#)).unwrap()
    }

    #[test]
    fn a_key_sent_twice_is_left_out_unless_both_agree() {
        let twice = status(r#"{"state":"processing","progress":10,"progress":20}"#).unwrap();
        assert_eq!(twice.state, GenerationState::Processing);
        assert_eq!(twice.progress, None);
        let agreed = status(r#"{"state":"processing","progress":10,"progress":10}"#).unwrap();
        assert_eq!(agreed.progress, Some(10.0));
        let thrice = status(r#"{"state":"pending","progress":1,"progress":2,"progress":1}"#);
        assert_eq!(thrice.unwrap().progress, None);
        // A required field the server contradicts itself on cannot be guessed.
        let state = status(r#"{"state":"processing","state":"failed"}"#).unwrap_err();
        assert!(
            matches!(&state, KolboError::Unreadable { detail, .. } if detail.contains("duplicate field `state`")),
            "{state:?}"
        );
    }

    #[test]
    fn unreadable_bodies_keep_the_direct_reason() {
        for (body, detail) in [
            ("", "empty body"),
            (r#"{"state":"proc"#, "truncated JSON"),
            ("<html>502</html>", "not JSON"),
            (
                r#"{"progress":5}"#,
                "unexpected JSON shape: missing field `state`",
            ),
        ] {
            match status(body) {
                Err(KolboError::Unreadable {
                    status: 200,
                    detail: got,
                    ..
                }) => assert!(got.starts_with(detail), "{body}: {got}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn repair_keeps_what_parses() {
        assert_eq!(
            lenient(br#"{"a":[1,1e999,"x"],"b":{"c":-1e999,"d":null},"e":1e999}"#),
            Some(json!({"a":[1,"x"],"b":{"d":null}}))
        );
        assert_eq!(lenient(br#"{"a":1"#), None);
        assert_eq!(lenient(b"\xff"), None);
        assert_eq!(lenient(b"1e999"), None);
    }

    #[test]
    fn deep_nesting_is_dropped_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let status = status(&format!(r#"{{"state":"failed","error":{deep}}}"#)).unwrap();
        assert_eq!(status.state, GenerationState::Failed);
        assert_eq!(status.error, None);
        let shallow = format!("{}1e999{}", "[".repeat(20), "]".repeat(20));
        // Rebuilt member by member down to LENIENT_DEPTH; the subtree below parses whole
        // or is dropped.
        let kept = (1..LENIENT_DEPTH).fold(json!([]), |inner, _| json!([inner]));
        assert_eq!(lenient(shallow.as_bytes()), Some(kept));
    }

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("generationId"), "generation_id");
        assert_eq!(
            snake_case("supportedAspectRatiosByType"),
            "supported_aspect_ratios_by_type"
        );
        assert_eq!(snake_case("_id"), "id");
        assert_eq!(
            snake_case("smartSelect_StrengthsSummary"),
            "smart_select_strengths_summary"
        );
        assert_eq!(snake_case("credits_used"), "credits_used");
    }

    #[test]
    fn the_envelope_probe_reads_both_shapes() {
        let envelope = error_envelope(
            br#"{"success":false,"error":"Model not found","code":"MODEL_NOT_FOUND"}"#,
            false,
        )
        .unwrap();
        assert!(envelope.is_error());
        assert_eq!(envelope.code.as_deref(), Some("MODEL_NOT_FOUND"));
        let limiter =
            error_envelope(br#"{"status":false,"message":"Too many requests"}"#, false).unwrap();
        assert_eq!(limiter.message(), Some("Too many requests"));
        assert!(error_envelope(br#"{"success":true,"generation_id":"g"}"#, true).is_none());
        assert!(error_envelope(b"<html>", false).is_none());
        // An error answer with one odd field still gives its message; a 200 saying
        // success: false is an envelope too.
        let odd = error_envelope(
            br#"{"success":false,"message":"No credits","code":7}"#,
            false,
        )
        .unwrap();
        assert_eq!(odd.message(), Some("No credits"));
        assert!(
            error_envelope(br#"{"success":false,"error":"Invalid prompt"}"#, true)
                .unwrap()
                .is_error()
        );
    }

    #[test]
    fn salvages_complete_ids_only() {
        assert_eq!(
            salvage_generation_id(br#"{"success":true,"generation_id":"abc123","type":"ima"#),
            Some("abc123".into())
        );
        assert_eq!(
            salvage_generation_id(br#"{"generationId" : "g\"1","#),
            Some("g\"1".into())
        );
        assert_eq!(salvage_generation_id(br#"{"generation_id":"abc1"#), None);
        assert_eq!(salvage_generation_id(br#"{"generation_id":12,"#), None);
        assert_eq!(salvage_generation_id(b"<html>"), None);
    }
}
