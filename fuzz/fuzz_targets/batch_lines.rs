//! A batch file (one prompt per line, or JSON Lines of request options) and a journal's
//! lines, as `imagegen batch` and `imagegen resume` read them.
//!
//! Invariants: never panics; each item names a line of the file, in order, and holds a
//! request that serializes and reads back to itself; a journal record read from a line
//! writes a line that reads back to the same record.
#![no_main]

use imagegen::journal::{JournalRecord, unfinished_of};
use imagegen_core::GenerationRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count();
    if let Ok(items) = imagegen::parse_batch(text) {
        assert!(!items.is_empty());
        let mut last = 0;
        for item in &items {
            assert!(
                item.line > last && item.line <= lines,
                "line {} of {lines}",
                item.line
            );
            last = item.line;
            let json = serde_json::to_string(&item.request).expect("serializes");
            let back: GenerationRequest = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
            assert_eq!(back, item.request, "through {json}");
        }
    }
    let mut records = Vec::new();
    for line in text.lines() {
        if let Ok(record) = serde_json::from_str::<JournalRecord>(line) {
            let json = serde_json::to_string(&record).expect("a record serializes");
            assert!(!json.contains('\n'), "one record, one line");
            let back: JournalRecord = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
            assert_eq!(back, record, "through {json}");
            records.push(record);
        }
    }
    let _ = unfinished_of(&records);
});
