//! A repair of JSON text for the wire crates' lenient decoding passes:
//! [`finite_numbers`] turns every number no `f64` can hold (`1e999`, `-1e400`, a
//! 400-digit integer) into `null`.
//!
//! serde_json refuses such a number as a syntax error ("number out of range"), so one of
//! them anywhere makes a whole answer unreadable, even as a [`serde_json::Value`]. A wire
//! crate whose plain decoding failed runs its body through [`finite_numbers`] first, then
//! parses the repaired text: the bad number reads as `null`, so an optional field holding
//! it becomes absent and a required one fails by name, while everything else is kept.
//!
//! The scan is one pass over the bytes, O(n), understands strings (a number inside a
//! string, escaped quotes included, is left alone) and allocates only when it replaces
//! something: the repaired text (once) and the list of what it replaced, each with the
//! path of the member that held it. It checks syntax only as far as it must to find
//! numbers; text that is not JSON stays not JSON.
//!
//! [`serde_json::Value`]: https://docs.rs/serde_json/latest/serde_json/enum.Value.html

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::Range;

/// The smallest magnitude treated as out of range: `f64::MAX` less about one part in
/// 10¹². A number this large either parses to infinity or lies so near `f64::MAX` that a
/// parser rounding more than once (serde_json's default parser) overflows on it; no API
/// means such a value.
pub const OUT_OF_RANGE_FROM: f64 = 1.797_693_134_86e308;

/// How many characters of a replaced number [`ReplacedNumber::number`] keeps.
const NUMBER_LIMIT: usize = 40;

/// How deep paths are tracked (serde_json's own nesting limit); deeper members are named
/// by their path down to this depth followed by `…`.
const TRACKED_DEPTH: usize = 128;

/// JSON text with its out-of-range numbers replaced, from [`finite_numbers`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FiniteNumbers<'a> {
    /// The text: borrowed when nothing was replaced, otherwise byte-identical to the input
    /// except that each replaced number is now `null`.
    pub text: Cow<'a, str>,
    /// What was replaced, in the order it appears.
    pub replaced: Vec<ReplacedNumber>,
}

/// One number [`finite_numbers`] replaced with `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplacedNumber {
    /// The member that held it, written as `serde_path_to_error` writes paths:
    /// `result.model`, `[0].seed`, `a[2]`, `.` for the whole document. Keys appear as
    /// written in the text (escapes kept); `?` is a key not read yet, `…` stands for
    /// levels nested too deep to track.
    pub path: String,
    /// The byte offset of the number in the original text.
    pub offset: usize,
    /// The number as sent, cut to its first 40 characters (then `…`).
    pub number: String,
}

/// Where the scan is: an object (with the byte range of its current key, and whether a
/// key comes next) or an array (with its current index).
enum Frame {
    Object {
        key: Option<Range<usize>>,
        expects_key: bool,
    },
    Array {
        index: usize,
    },
}

/// Replaces every number token in `text` whose magnitude no `f64` can hold (at or beyond
/// [`OUT_OF_RANGE_FROM`]: `1e999`, `-1e400`, an integer of 309 digits or more) with
/// `null`, leaving every other byte as it is; numbers inside strings are not touched. Long
/// numbers that an `f64` can hold (many digits, tiny values such as `1e-999`) are kept.
///
/// ```
/// use imagegen_http::json::finite_numbers;
///
/// let repaired = finite_numbers(r#"{"state":"completed","progress":1e999,"note":"1e999"}"#);
/// assert_eq!(repaired.text, r#"{"state":"completed","progress":null,"note":"1e999"}"#);
/// assert_eq!(repaired.replaced[0].path, "progress");
/// assert_eq!(repaired.replaced[0].number, "1e999");
///
/// // Nothing to replace: the text is borrowed, not copied.
/// assert!(matches!(finite_numbers("[1, 2.5e10]").text, std::borrow::Cow::Borrowed(_)));
/// ```
pub fn finite_numbers(text: &str) -> FiniteNumbers<'_> {
    let bytes = text.as_bytes();
    let mut repaired: Option<String> = None;
    let mut copied = 0;
    let mut replaced = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    // Containers opened below TRACKED_DEPTH, not in `frames`.
    let mut untracked = 0usize;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => {
                let end = string_end(bytes, at + 1);
                if untracked == 0
                    && let Some(Frame::Object { key, expects_key }) = frames.last_mut()
                    && *expects_key
                {
                    *key = Some(at + 1..end.saturating_sub(1).max(at + 1));
                    *expects_key = false;
                }
                at = end;
            }
            b'{' | b'[' => {
                if frames.len() < TRACKED_DEPTH {
                    frames.push(if byte == b'{' {
                        Frame::Object {
                            key: None,
                            expects_key: true,
                        }
                    } else {
                        Frame::Array { index: 0 }
                    });
                } else {
                    untracked += 1;
                }
                at += 1;
            }
            b'}' | b']' => {
                if untracked > 0 {
                    untracked -= 1;
                } else {
                    frames.pop();
                }
                at += 1;
            }
            b',' => {
                if untracked == 0 {
                    match frames.last_mut() {
                        Some(Frame::Object { expects_key, .. }) => *expects_key = true,
                        Some(Frame::Array { index }) => *index += 1,
                        None => {}
                    }
                }
                at += 1;
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(bytes, at);
                let token = text.get(at..end).unwrap_or_default();
                if is_out_of_range(token) {
                    let out = repaired.get_or_insert_with(|| String::with_capacity(text.len()));
                    out.push_str(text.get(copied..at).unwrap_or_default());
                    out.push_str("null");
                    copied = end;
                    replaced.push(ReplacedNumber {
                        path: path(text, &frames, untracked),
                        offset: at,
                        number: shortened(token),
                    });
                }
                at = end;
            }
            _ => at += 1,
        }
    }
    let text = match repaired {
        Some(mut out) => {
            out.push_str(text.get(copied..).unwrap_or_default());
            Cow::Owned(out)
        }
        None => Cow::Borrowed(text),
    };
    FiniteNumbers { text, replaced }
}

/// The index just past the string whose contents start at `from` (past its closing
/// quote, or the end of the text when it is never closed). A backslash escapes the byte
/// after it, so `\"` does not close the string.
fn string_end(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// The end of the run of number characters starting at `from`.
fn number_end(bytes: &[u8], from: usize) -> usize {
    bytes
        .get(from..)
        .unwrap_or_default()
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .map_or(bytes.len(), |len| from + len)
}

/// Whether `token` is a JSON number (RFC 8259 grammar) of magnitude at or beyond
/// [`OUT_OF_RANGE_FROM`]. Anything that is not a JSON number is left to the parser.
fn is_out_of_range(token: &str) -> bool {
    is_json_number(token.as_bytes())
        && token
            .parse::<f64>()
            .is_ok_and(|value| value.abs() >= OUT_OF_RANGE_FROM)
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, the whole of `token`.
fn is_json_number(token: &[u8]) -> bool {
    fn digits(token: &[u8], at: &mut usize) -> usize {
        let start = *at;
        while token.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at - start
    }
    let mut at = usize::from(token.first() == Some(&b'-'));
    let first = token.get(at).copied();
    let integer = digits(token, &mut at);
    if integer == 0 || (first == Some(b'0') && integer > 1) {
        return false;
    }
    if token.get(at) == Some(&b'.') {
        at += 1;
        if digits(token, &mut at) == 0 {
            return false;
        }
    }
    if matches!(token.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(token.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        if digits(token, &mut at) == 0 {
            return false;
        }
    }
    at == token.len()
}

/// The path of the member being read, as `serde_path_to_error` writes it.
fn path(text: &str, frames: &[Frame], untracked: usize) -> String {
    let mut path = String::new();
    for frame in frames {
        match frame {
            Frame::Object { key, .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                match key.as_ref().and_then(|range| text.get(range.clone())) {
                    Some(key) => path.push_str(key),
                    None => path.push('?'),
                }
            }
            Frame::Array { index } => {
                let _ = write!(path, "[{index}]");
            }
        }
    }
    if untracked > 0 {
        path.push('…');
    }
    if path.is_empty() {
        path.push('.');
    }
    path
}

/// `token`, cut to [`NUMBER_LIMIT`] characters (it is ASCII: a JSON number).
fn shortened(token: &str) -> String {
    match token.get(..NUMBER_LIMIT) {
        Some(start) if token.len() > NUMBER_LIMIT => format!("{start}…"),
        _ => token.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(text: &str) -> String {
        finite_numbers(text).text.into_owned()
    }

    fn paths(text: &str) -> Vec<String> {
        finite_numbers(text)
            .replaced
            .into_iter()
            .map(|r| r.path)
            .collect()
    }

    #[test]
    fn out_of_range_numbers_become_null_and_nothing_else_changes() {
        assert_eq!(
            repaired(r#"{"progress":1e999,"state":"completed"}"#),
            r#"{"progress":null,"state":"completed"}"#
        );
        assert_eq!(
            repaired("[ -1e400 , 1E+999,2.5e308 ]"),
            "[ null , null,null ]"
        );
        let huge = format!("1{}", "0".repeat(400));
        assert_eq!(repaired(&format!(r#"{{"a": {huge}}}"#)), r#"{"a": null}"#);
        assert_eq!(repaired("1e999"), "null");
        // Whitespace, other values and order are kept byte for byte.
        let text = "{\n  \"a\" : [1, 1e999 ,{\"b\":-1e999}],\t\"c\": true }";
        assert_eq!(
            repaired(text),
            "{\n  \"a\" : [1, null ,{\"b\":null}],\t\"c\": true }"
        );
    }

    #[test]
    fn numbers_an_f64_can_hold_are_kept() {
        let long = format!("0.{}1", "0".repeat(500));
        let many_digits = "9".repeat(300);
        for text in [
            "0",
            "-0",
            "1.5",
            "-2.5e-3",
            "1e308",
            "1.7976931348e308",
            "-1.7976931348e308",
            "1e-999",
            "-1e-99999999999999999999",
            "0e999999",
            "18446744073709551616",
            many_digits.as_str(),
            long.as_str(),
        ] {
            let result = finite_numbers(text);
            assert_eq!(result.text, text, "{text}");
            assert!(matches!(result.text, Cow::Borrowed(_)), "{text}");
            assert!(result.replaced.is_empty(), "{text}");
        }
    }

    #[test]
    fn numbers_at_the_edge_of_f64_count_as_out_of_range() {
        // Each rounds to f64::MAX when parsed exactly, but overflows in serde_json.
        let max_digits = format!("17976931348623157{}", "0".repeat(292));
        for edge in [
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "-1.79769313486232e308",
            max_digits.as_str(),
        ] {
            assert_eq!(repaired(edge), "null", "{edge}");
        }
    }

    #[test]
    fn numbers_inside_strings_are_left_alone() {
        for text in [
            r#"{"note":"1e999"}"#,
            r#"{"1e999":"x"}"#,
            r#"{"note":"say \"1e999\" twice","n":"\\"}"#,
            r#"["\\\"1e999"]"#,
            r#"{"note":"unterminated 1e999"#,
        ] {
            assert_eq!(repaired(text), text);
        }
        // After a string that ends in an escaped backslash, numbers count again.
        assert_eq!(
            repaired(r#"{"a":"x\\","b":1e999}"#),
            r#"{"a":"x\\","b":null}"#
        );
        assert_eq!(
            repaired(r#"{"a":"\"","b":[1e999,"1e999"]}"#),
            r#"{"a":"\"","b":[null,"1e999"]}"#
        );
        // Multi-byte text around a replacement is kept.
        assert_eq!(
            repaired(r#"{"é":"ü","n":1e999,"z":"ß"}"#),
            r#"{"é":"ü","n":null,"z":"ß"}"#
        );
    }

    #[test]
    fn paths_name_the_member_that_held_the_number() {
        assert_eq!(paths(r#"{"progress":1e999}"#), ["progress"]);
        assert_eq!(
            paths(r#"{"result":{"urls":["a"],"model":-1e400},"n":[1,[2,1e999]]}"#),
            ["result.model", "n[1][1]"]
        );
        assert_eq!(
            paths(r#"[{"url":"u","seed":1e999},{"url":"v","w":[{},{"x":1e999}]}]"#),
            ["[0].seed", "[1].w[1].x"]
        );
        assert_eq!(paths("1e999"), ["."]);
        assert_eq!(paths("[[], [1e999]]"), ["[1][0]"]);
        assert_eq!(paths(r#"{"a\"b":1e999}"#), [r#"a\"b"#]);
        let replaced = finite_numbers(r#"{"a": 1e999}"#).replaced;
        assert_eq!(replaced[0].offset, 6);
        assert_eq!(replaced[0].number, "1e999");
        let long = format!("-{}", "9".repeat(400));
        let number = &finite_numbers(&long).replaced[0].number;
        assert_eq!(number.chars().count(), NUMBER_LIMIT + 1);
        assert!(number.starts_with("-999") && number.ends_with('…'));
    }

    #[test]
    fn deep_nesting_is_scanned_without_tracking_every_level() {
        let depth = 100_000;
        let deep = format!("{}1e999{}", "[".repeat(depth), "]".repeat(depth));
        let result = finite_numbers(&deep);
        assert_eq!(
            result.text,
            format!("{}null{}", "[".repeat(depth), "]".repeat(depth))
        );
        assert!(result.replaced[0].path.ends_with("[0]…"));
        // Back out of the deep part, paths are exact again.
        let text = format!(
            r#"{{"deep":{}{},"after":1e999}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(paths(&text), ["after"]);
    }

    #[test]
    fn text_that_is_not_json_is_only_scanned() {
        for text in [
            "",
            "<html>1e999</html>",
            "}]",
            r#"{"a":01e999}"#,
            "1e",
            "--1e999",
        ] {
            let result = finite_numbers(text);
            assert!(result.replaced.len() <= 1, "{text}");
        }
        // Not JSON numbers: left for the parser to refuse.
        assert_eq!(repaired(r#"{"a":01e999}"#), r#"{"a":01e999}"#);
        assert_eq!(repaired("1e999.5"), "1e999.5");
        assert_eq!(repaired("+1e999"), "+null");
        assert_eq!(repaired("1.e999"), "1.e999");
    }

    #[test]
    fn json_number_grammar() {
        for good in ["0", "-0", "10", "1.5", "1e5", "1E+5", "-1.25e-10"] {
            assert!(is_json_number(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1-2", "--1", "1.2.3",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }
}
