//! `json::finite_numbers`, the lenient passes' number repair, on arbitrary text.
//!
//! Invariants: never panics; nothing replaced means the text is borrowed and identical;
//! otherwise the text is the input with exactly each replaced number token turned into
//! `null`, at the offsets reported; the repair is idempotent; repaired text that parses
//! as JSON holds only finite numbers.
#![no_main]

use std::borrow::Cow;

use imagegen_http::json::finite_numbers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let repaired = finite_numbers(text);
    if repaired.replaced.is_empty() {
        assert!(matches!(repaired.text, Cow::Borrowed(_)));
        assert_eq!(repaired.text, text);
        return;
    }
    // Rebuild: the input with each replaced token as `null`.
    let mut expected = String::with_capacity(text.len());
    let mut copied = 0;
    for number in &repaired.replaced {
        assert!(number.offset >= copied, "offsets in order");
        let token_len = text[number.offset..]
            .bytes()
            .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .count();
        assert!(token_len > 0, "a number at {}", number.offset);
        let token = &text[number.offset..number.offset + token_len];
        let shown = number.number.trim_end_matches('…');
        assert!(
            token.starts_with(shown),
            "{token:?} shown as {:?}",
            number.number
        );
        expected.push_str(&text[copied..number.offset]);
        expected.push_str("null");
        copied = number.offset + token_len;
    }
    expected.push_str(&text[copied..]);
    assert_eq!(repaired.text, expected);
    let again = finite_numbers(&repaired.text);
    assert!(
        again.replaced.is_empty(),
        "idempotent: {:?}",
        again.replaced
    );
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&repaired.text) {
        assert_finite(&value);
    }
});

fn assert_finite(value: &serde_json::Value) {
    match value {
        serde_json::Value::Number(n) => assert!(n.as_f64().is_none_or(f64::is_finite)),
        serde_json::Value::Array(items) => items.iter().for_each(assert_finite),
        serde_json::Value::Object(map) => map.values().for_each(assert_finite),
        _ => {}
    }
}
