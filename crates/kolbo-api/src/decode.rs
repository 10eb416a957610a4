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
//! 2. **Lenient**, only when the direct pass fails:
//!    - **Numbers first.** A number no `f64` can hold (`1e999`, `-1e400`) makes serde_json
//!      refuse the whole text, so the text goes through
//!      [`imagegen_http::json::finite_numbers`], which turns each such number into `null`
//!      (and nothing else); each one is logged as a warning naming its path.
//!    - **Then a tree.** The repaired text is rebuilt as a [`serde_json::Value`], object
//!      by object, with these rules:
//!      - **A key sent twice: the last value wins**, as in `serde_json::Value` and
//!        JavaScript's `JSON.parse` (a derived struct rejects it as a "duplicate field"
//!        instead). So `"state":"processing","state":"completed"` reads as completed;
//!        that two values disagreed is logged as a warning.
//!      - **A key sent in both spellings keeps its snake_case one** (`generation_id` over
//!        `generationId`, in either order; `alias` alone rejects both as a duplicate
//!        field).
//!      - A member whose text still does not parse (nested too deep) is left out.
//!    - **Then serde again**, into the same type; while it fails on one member (a
//!      mistyped optional field, a list element that is not what the list holds), that
//!      member is left out, as serde names it with its path, and decoding runs again.
//!
//!    So one bad optional field becomes absent instead of making the whole answer
//!    unreadable (a number out of range reads as `null`, which an optional field takes as
//!    absent); a bad required field still fails it. This pass renames nothing and invents
//!    nothing: it only drops, and picks the last of repeated keys.
//!
//! When both fail, the answer is [`KolboError::Unreadable`]: with the direct pass's
//! reason, or, when the body held numbers out of range, with what the lenient pass could
//! not read and each such number as sent (`generation_id = 1e999`).
//! This module also owns the error-envelope probe ([`error_envelope`]) and
//! [`salvage_generation_id`], which finds a paid generation's id in a body cut short.

use std::collections::BTreeSet;
use std::fmt;

use imagegen_http::json::{ReplacedNumber, finite_numbers};
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
    from_slice(bytes).map_err(|refused| KolboError::Unreadable {
        status,
        detail: refused.detail(bytes),
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

/// Why a body did not decode in either pass.
struct Refused {
    /// The direct pass's error, which names the line and column.
    direct: serde_json::Error,
    /// The lenient pass's last error, when it got as far as a tree.
    lenient: Option<serde_path_to_error::Error<serde_json::Error>>,
    /// The numbers out of range the lenient pass turned into `null`.
    out_of_range: Vec<ReplacedNumber>,
}

impl Refused {
    /// The [`KolboError::Unreadable`] detail: the direct reason, or, when the body held
    /// numbers out of range, what the lenient pass could not read and those numbers.
    fn detail(&self, bytes: &[u8]) -> String {
        match &self.lenient {
            Some(lenient) if !self.out_of_range.is_empty() => {
                let numbers: Vec<String> = self
                    .out_of_range
                    .iter()
                    .map(|n| format!("{} = {}", n.path, n.number))
                    .collect();
                format!(
                    "unexpected JSON shape: {lenient}, with a number no f64 can hold read as \
                     null ({})",
                    numbers.join(", ")
                )
            }
            _ if self.direct.is_data() => format!("unexpected JSON shape: {}", self.direct),
            _ => unreadable_detail(bytes),
        }
    }
}

/// The two passes.
fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Refused> {
    let direct = match serde_json::from_slice(bytes) {
        Ok(decoded) => return Ok(decoded),
        Err(error) => error,
    };
    let (repaired, out_of_range) = lenient(bytes);
    let mut refused = Refused {
        direct,
        lenient: None,
        out_of_range,
    };
    let Some(mut repaired) = repaired else {
        return Err(refused);
    };
    for _ in 0..MAX_LEFT_OUT {
        let failed_at = match serde_path_to_error::deserialize::<_, T>(&repaired) {
            Ok(decoded) => {
                tracing::debug!(error = %refused.direct, "kolbo: answer decoded by the lenient pass");
                return Ok(decoded);
            }
            Err(error) => {
                let path = error.path().clone();
                refused.lenient = Some(error);
                path
            }
        };
        if !leave_out(&mut repaired, &failed_at) {
            break;
        }
        tracing::warn!(member = %failed_at, "kolbo: leaving out a member that does not read as documented");
    }
    Err(refused)
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

/// The body as a [`Value`] without what made serde refuse it (`None` when it is not JSON
/// at all: cut short, HTML, not UTF-8), and the numbers out of range it held, now `null`.
fn lenient(bytes: &[u8]) -> (Option<Value>, Vec<ReplacedNumber>) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return (None, Vec::new());
    };
    let finite = finite_numbers(text);
    for number in &finite.replaced {
        tracing::warn!(
            member = %number.path,
            number = %number.number,
            "kolbo: reading a number no f64 can hold as null"
        );
    }
    (repair(&finite.text, 0), finite.replaced)
}

/// One JSON value, rebuilt: objects and arrays member by member, each member cut out as a
/// raw value first (which checks its syntax but not its numbers), so that one member serde
/// cannot hold is dropped and the rest kept (its numbers are already finite, see
/// [`lenient`]; what remains is nesting too deep). `None` when `raw` cannot be kept at all.
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

/// Builds an object from its members: of a key given twice the last value wins (as in
/// `serde_json::Value` and JavaScript's `JSON.parse`; a last value that cannot be kept at
/// all leaves the key absent), and of a key given in both spellings (`generationId` and
/// `generation_id`, `_id` and `id`) only the snake_case one is kept.
fn merge(members: Vec<(String, Box<RawValue>)>, depth: usize) -> Map<String, Value> {
    let mut map = Map::new();
    let mut seen = BTreeSet::new();
    for (key, raw) in members {
        let repeated = !seen.insert(key.clone());
        let value = repair(raw.get(), depth);
        if repeated && map.get(&key) != value.as_ref() {
            tracing::warn!(
                key,
                "kolbo: a key sent twice with different values; keeping the last"
            );
        }
        match value {
            // `Map::insert` keeps the key's first position.
            Some(value) => {
                map.insert(key, value);
            }
            None => {
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
    let Err(error) = serde_json::from_slice::<Value>(bytes) else {
        return "unexpected JSON".into();
    };
    // serde_json stops at a number out of range; whether the text is also cut short shows
    // once such numbers read as null.
    let truncated = error.is_eof()
        || std::str::from_utf8(bytes).is_ok_and(|text| {
            let finite = finite_numbers(text);
            !finite.replaced.is_empty()
                && serde_json::from_str::<Value>(&finite.text).is_err_and(|e| e.is_eof())
        });
    if truncated {
        format!("truncated JSON: {error}")
    } else {
        format!("not JSON: {error}")
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
    fn of_a_key_sent_twice_the_last_value_wins() {
        let twice = status(r#"{"state":"processing","progress":10,"progress":20}"#).unwrap();
        assert_eq!(twice.state, GenerationState::Processing);
        assert_eq!(twice.progress, Some(20.0));
        let agreed = status(r#"{"state":"processing","progress":10,"progress":10}"#).unwrap();
        assert_eq!(agreed.progress, Some(10.0));
        let thrice = status(r#"{"state":"pending","progress":1,"progress":2,"progress":3}"#);
        assert_eq!(thrice.unwrap().progress, Some(3.0));
        // A required field too: the job is done.
        let state = status(
            r#"{"state":"processing","result":{"urls":["https://cdn/a.png"]},"state":"completed"}"#,
        )
        .unwrap();
        assert_eq!(state.state, GenerationState::Completed);
        assert_eq!(state.result.unwrap().urls, ["https://cdn/a.png"]);
        // A last value out of range is null: the field is absent, not the earlier value.
        let last_bad = status(r#"{"state":"processing","progress":10,"progress":1e999}"#);
        assert_eq!(last_bad.unwrap().progress, None);
        let first_bad = status(r#"{"state":"processing","progress":1e999,"progress":10}"#);
        assert_eq!(first_bad.unwrap().progress, Some(10.0));
        // A last value of the wrong type is left out like any other.
        let mistyped = status(r#"{"state":"processing","progress":10,"progress":"x"}"#);
        assert_eq!(mistyped.unwrap().progress, None);
        // Nested objects and the key order are kept.
        assert_eq!(
            lenient(br#"{"a":1,"b":{"c":1,"c":2},"a":3}"#).0,
            Some(json!({"a":3,"b":{"c":2}}))
        );
        let keys: Vec<String> = lenient(br#"{"a":1,"b":2,"a":3}"#)
            .0
            .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
            .unwrap();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn a_required_field_out_of_range_says_what_came_back() {
        let error = body::<GenerationStarted>(200, br#"{"success":true,"generation_id":1e999}"#)
            .unwrap_err();
        let KolboError::Unreadable {
            status: 200,
            detail,
            body_prefix,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert!(detail.starts_with("unexpected JSON shape"), "{detail}");
        assert!(detail.contains("missing field `generation_id`"), "{detail}");
        assert!(detail.contains("generation_id = 1e999"), "{detail}");
        assert!(body_prefix.contains("1e999"), "{body_prefix}");
        let error = status(r#"{"state":-1e400,"progress":50}"#).unwrap_err();
        assert!(
            matches!(&error, KolboError::Unreadable { detail, .. }
                if detail.contains("missing field `state`") && detail.contains("state = -1e400")),
            "{error:?}"
        );
        // A body that is not JSON besides stays "not JSON".
        let error = status(r#"{"state":"completed","progress":1e999"#).unwrap_err();
        assert!(
            matches!(&error, KolboError::Unreadable { detail, .. } if detail.starts_with("truncated JSON")),
            "{error:?}"
        );
    }

    #[test]
    fn numbers_at_the_edge_of_f64_are_read_exactly() {
        // An exact parser (serde_json's `float_roundtrip`, on in the workspace) rounds these
        // to ±f64::MAX; serde_json's default parser refused them.
        let edge = format!("17976931348623157{}", "0".repeat(292));
        for (number, read) in [
            ("1.7976931348623158e308", f64::MAX),
            ("-1.7976931348623158e308", f64::MIN),
            (&edge, f64::MAX),
        ] {
            let status = status(&format!(
                r#"{{"state":"completed","progress":{number},"result":{{"urls":["u"]}}}}"#
            ))
            .unwrap();
            assert_eq!(status.state, GenerationState::Completed, "{number}");
            assert_eq!(status.progress, Some(read), "{number}");
        }
        let kept = status(r#"{"state":"completed","progress":1.7976931348e308,"x":1e999}"#);
        assert_eq!(kept.unwrap().progress, Some(1.797_693_134_8e308));
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
    fn the_lenient_tree_reads_numbers_out_of_range_as_null() {
        let (tree, numbers) =
            lenient(br#"{"a":[1,1e999,"x"],"b":{"c":-1e999,"d":null},"e":1e999,"f":"1e999"}"#);
        assert_eq!(
            tree,
            Some(json!({"a":[1,null,"x"],"b":{"c":null,"d":null},"e":null,"f":"1e999"}))
        );
        let paths: Vec<&str> = numbers.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(paths, ["a[1]", "b.c", "e"]);
        assert_eq!(lenient(br#"{"a":1"#).0, None);
        assert_eq!(lenient(b"\xff").0, None);
        assert_eq!(lenient(b"1e999").0, Some(Value::Null));
    }

    #[test]
    fn deep_nesting_is_dropped_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let status = status(&format!(r#"{{"state":"failed","error":{deep}}}"#)).unwrap();
        assert_eq!(status.state, GenerationState::Failed);
        assert_eq!(status.error, None);
        // Rebuilt member by member down to LENIENT_DEPTH; the subtree below parses whole
        // or is dropped (here: deeper than serde_json's nesting limit).
        let shallow = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let kept = (1..LENIENT_DEPTH).fold(json!([]), |inner, _| json!([inner]));
        assert_eq!(lenient(shallow.as_bytes()).0, Some(kept));
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
