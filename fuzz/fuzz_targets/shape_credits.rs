//! Shapes, sizes and amounts as users and providers write them: `ImageShape` (and its
//! parts), KoalaImages' `Size`, `Credits`, `Multiplier`, `Usd` and `CreditWorth`, from
//! text and from JSON.
//!
//! Invariants: never panics; what parses displays as text that parses back to the same
//! value (shapes, sizes, amounts); serde writes what it reads; checked arithmetic never
//! panics.
#![no_main]

use std::fmt::{Debug, Display};
use std::str::FromStr;

use imagegen_core::{AspectRatio, CreditWorth, Credits, Dimensions, ImageShape, Multiplier, Usd};
use koala_api::Size;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let shape = display_round_trip::<ImageShape>(text);
    display_round_trip::<AspectRatio>(text);
    display_round_trip::<Dimensions>(text);
    if let Some(shape) = shape {
        let _ = shape.aspect_ratio();
        let size = koala_api::size::size_for_shape(shape);
        let _ = size.to_string();
    }
    let size: Size = text.parse().unwrap_or_else(|never| match never {});
    let shown = size.to_string();
    assert_eq!(shown, text, "a Size writes back as it was read");
    assert_eq!(
        shown.parse::<Size>().unwrap_or_else(|never| match never {}),
        size
    );
    let _ = (size.shape(), size.is_documented());
    json_round_trip::<Size>(text);

    let credits = display_round_trip::<Credits>(text);
    let multiplier = display_round_trip::<Multiplier>(text);
    display_round_trip::<Usd>(text);
    if let Ok(worth) = text.parse::<CreditWorth>() {
        let _ = worth.to_string();
        if let Some(c) = credits {
            let _ = worth.to_usd(c);
        }
    }
    if let Some(c) = credits {
        assert_eq!(
            c.with_unit().to_string().split(' ').next(),
            Some(c.to_string().as_str())
        );
        let _ = (
            c.checked_add(c),
            c.checked_sub(Credits::whole(1)),
            c.checked_mul(7),
        );
        let _ = c.checked_mul(u32::MAX);
        if let Some(m) = multiplier {
            let _ = c.checked_scale(m);
        }
        if let Some(f) = Credits::from_f64(c.to_f64()) {
            let _ = f;
        }
    }
    // Amounts arrive as JSON numbers or strings.
    json_round_trip::<Credits>(text);
    json_round_trip::<Multiplier>(text);
    json_round_trip::<Usd>(text);
    json_round_trip::<ImageShape>(text);
});

/// Parses `text`; what parses displays as text that parses back to the same value, and
/// serde writes it as it reads it.
fn display_round_trip<T>(text: &str) -> Option<T>
where
    T: FromStr + Display + Debug + PartialEq + Serialize + DeserializeOwned + Copy,
{
    let value = text.parse::<T>().ok()?;
    let shown = value.to_string();
    let again = shown
        .parse::<T>()
        .unwrap_or_else(|_| panic!("{value:?} displays as {shown:?}, which does not parse"));
    assert_eq!(value, again, "{text:?} → {shown:?}");
    let json = serde_json::to_string(&value).expect("serializes");
    let back: T = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{value:?} serializes as {json}, which does not read: {e}"));
    assert_eq!(value, back, "through {json}");
    Some(value)
}

/// `text` as a JSON document of `T`; what reads writes back and reads the same.
fn json_round_trip<T>(text: &str)
where
    T: Debug + PartialEq + Serialize + DeserializeOwned,
{
    let Ok(value) = serde_json::from_str::<T>(text) else {
        return;
    };
    let json = serde_json::to_string(&value).expect("serializes");
    let back: T = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{value:?} serializes as {json}, which does not read: {e}"));
    assert_eq!(value, back, "through {json}");
}
