//! The gateway's `POST /v1/images/generations` body (`params::parse`), then what the
//! handler does with it before routing (the facade's request and routing choices).
//!
//! Invariants: never panics; a refusal is a 400 (a client error); a parsed body asks for
//! 1 to `MAX_IMAGES` images, names its ignored fields in the header exactly when there are
//! some, and never keeps an empty style.
#![no_main]

use imagegen_server::MAX_IMAGES;
use imagegen_server::fuzzing::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(parsed) => {
            let count = parsed.options.count.expect("the gateway always sets n");
            assert!((1..=MAX_IMAGES).contains(&count));
            assert_eq!(parsed.ignored.is_empty(), parsed.ignored_header.is_none());
            if let Some(style) = &parsed.options.style {
                assert!(!style.trim().is_empty());
            }
            if let Ok((request, _call)) = parsed.options.clone().into_parts() {
                assert_eq!(request.count(), count);
            }
        }
        Err(refused) => assert_eq!(refused.status, 400, "{refused:?}"),
    }
});
