//! `imagegen keys create|list|revoke` on the default ledger of a temporary folder: a key is
//! printed once and stored only as its hash. These commands need no provider key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use imagegen::ledger::api_keys::{ApiKeyRecord, KeyPeriod, api_key_hash};
use serde_json::Value;

mod common;

use common::{Run, bare_cmd, ledger_path, run};

fn keys(dir: &Path, args: &[&str]) -> Run {
    run(bare_cmd(dir).arg("keys").args(args))
}

/// Whether `text` is a gateway key: `igk_` and 40 lower-case hex digits.
fn is_key(text: &str) -> bool {
    text.strip_prefix("igk_").is_some_and(|hex| {
        hex.len() == 40
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Creates a key; returns it (the one line on stdout).
fn create(dir: &Path, args: &[&str]) -> String {
    let created = keys(dir, &[&["create"], args].concat());
    assert_eq!(created.code, 0, "{}", created.stderr);
    let lines: Vec<&str> = created.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout: {:?}", created.stdout);
    assert!(created.stdout.ends_with('\n'));
    assert!(is_key(lines[0]), "not a key: {:?}", lines[0]);
    assert!(
        created.stderr.contains("will not be shown again"),
        "{}",
        created.stderr
    );
    assert!(!created.stderr.contains(lines[0]));
    lines[0].to_owned()
}

/// Runs `f` on the ledger the CLI used in `dir`.
fn with_ledger<T>(dir: &Path, f: impl AsyncFnOnce(&dyn imagegen::ledger::Ledger) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = ledger_path(dir).display().to_string();
        let ledger = imagegen::ledger::open(&url).await.unwrap();
        let value = f(ledger.as_ref()).await;
        ledger.close().await;
        value
    })
}

fn find(dir: &Path, key: &str) -> Option<ApiKeyRecord> {
    let hash = api_key_hash(key);
    with_ledger(dir, async |ledger| {
        ledger.find_api_key(&hash).await.unwrap()
    })
}

/// The bytes of the ledger file and its write-ahead log (when there is one).
fn ledger_bytes(dir: &Path) -> Vec<u8> {
    let path = ledger_path(dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let mut wal = path.into_os_string();
    wal.push("-wal");
    if let Ok(more) = std::fs::read(&wal) {
        bytes.extend(more);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn create_prints_the_key_once_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let key = create(dir.path(), &["--name", "ci-bot", "--budget", "50"]);

    let stored = ledger_bytes(dir.path());
    assert!(
        !contains(&stored, &key),
        "the ledger holds the plaintext key"
    );
    assert!(!contains(&stored, &key[4..]));
    assert!(
        contains(&stored, &api_key_hash(&key)),
        "the ledger holds the key's hash"
    );

    let found = find(dir.path(), &key).expect("the key is live");
    assert_eq!(found.name, "ci-bot");
    assert_eq!(found.prefix, key[..10]);
    assert_eq!(found.limit, Some("50".parse().unwrap()));
    assert_eq!(
        found.period,
        KeyPeriod::Month,
        "month is the default with a budget"
    );
    // Two keys are never the same.
    let other = create(dir.path(), &["--name", "other"]);
    assert_ne!(other, key);
}

#[test]
fn periods_default_to_total_without_a_budget() {
    let dir = tempfile::tempdir().unwrap();
    let open = create(dir.path(), &["--name", "open"]);
    let daily = create(
        dir.path(),
        &["--name", "daily", "--budget", "2.5", "--period", "day"],
    );
    let found = find(dir.path(), &open).unwrap();
    assert_eq!((found.limit, found.period), (None, KeyPeriod::Total));
    let found = find(dir.path(), &daily).unwrap();
    assert_eq!(
        (found.limit, found.period),
        (Some("2.5".parse().unwrap()), KeyPeriod::Day)
    );
    let bad = keys(dir.path(), &["create", "--name", "x", "--period", "weekly"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let bad = keys(dir.path(), &["create", "--name", "x", "--budget", "0"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stdout.is_empty());
}

#[test]
fn list_shows_keys_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let empty = keys(dir.path(), &["list"]);
    assert_eq!(empty.code, 0, "{}", empty.stderr);
    assert!(
        empty.stdout.contains("no gateway keys yet"),
        "{}",
        empty.stdout
    );
    let empty = keys(dir.path(), &["list", "--json"]);
    assert_eq!(empty.json(), serde_json::json!({ "keys": [] }));

    let ci = create(dir.path(), &["--name", "ci-bot", "--budget", "50"]);
    let open = create(dir.path(), &["--name", "open"]);

    let listed = keys(dir.path(), &["list"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", listed.stdout);
    assert!(lines[0].starts_with("NAME"), "{}", lines[0]);
    let ci_row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(ci_row[..5], ["ci-bot", &ci[..10], "50", "month", "0"]);
    assert_eq!(*ci_row.last().unwrap(), "-", "not revoked");
    let open_row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(open_row[..5], ["open", &open[..10], "-", "total", "0"]);

    let json = keys(dir.path(), &["list", "--json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let value = json.json();
    let listed_keys = value["keys"].as_array().unwrap();
    assert_eq!(listed_keys.len(), 2);
    assert_eq!(listed_keys[0]["name"], "ci-bot");
    assert_eq!(listed_keys[0]["prefix"], Value::from(&ci[..10]));
    assert_eq!(listed_keys[0]["period"], "month");
    assert_eq!(listed_keys[0]["revoked_at_ms"], Value::Null);
    assert_eq!(listed_keys[1]["limit"], Value::Null);
    assert!(listed_keys[0].get("spent").is_some());

    // Never a key or its hash.
    for out in [&listed.stdout, &json.stdout, &listed.stderr, &json.stderr] {
        for key in [&ci, &open] {
            assert!(!out.contains(key.as_str()), "{out}");
            assert!(!out.contains(&key[4..]), "{out}");
            assert!(!out.contains(&api_key_hash(key)), "{out}");
        }
    }
}

#[test]
fn revoke_removes_the_key_from_find() {
    let dir = tempfile::tempdir().unwrap();
    let by_name = create(dir.path(), &["--name", "by-name"]);
    let by_prefix = create(dir.path(), &["--name", "by-prefix"]);
    let by_key = create(dir.path(), &["--name", "by-key"]);

    let revoked = keys(dir.path(), &["revoke", "by-name"]);
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    assert!(revoked.stdout.is_empty());
    assert!(find(dir.path(), &by_name).is_none());
    assert!(find(dir.path(), &by_prefix).is_some());

    let revoked = keys(dir.path(), &["revoke", &by_prefix[..10]]);
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    assert!(find(dir.path(), &by_prefix).is_none());

    let revoked = keys(dir.path(), &["revoke", &by_key]);
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    assert!(find(dir.path(), &by_key).is_none());
    assert!(!revoked.stderr.contains(&by_key[4..]), "{}", revoked.stderr);
    let again = keys(dir.path(), &["revoke", &by_key]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(!again.stderr.contains(&by_key[4..]), "{}", again.stderr);

    // Nothing left to revoke under that name.
    let again = keys(dir.path(), &["revoke", "by-name"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("no live gateway key"),
        "{}",
        again.stderr
    );

    // Revoked keys are still listed, with when.
    let value = keys(dir.path(), &["list", "--json"]).json();
    let listed = value["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|k| k["revoked_at_ms"].is_u64()));

    // A revoked key's name may be used again.
    let fresh = create(dir.path(), &["--name", "by-name"]);
    assert_eq!(find(dir.path(), &fresh).unwrap().name, "by-name");
}

#[test]
fn a_duplicate_name_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let first = create(dir.path(), &["--name", "team"]);
    let second = keys(dir.path(), &["create", "--name", "team"]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second.stdout.is_empty(),
        "no key is printed: {}",
        second.stdout
    );
    assert!(
        second.stderr.contains("already exists"),
        "{}",
        second.stderr
    );
    let bad_name = keys(dir.path(), &["create", "--name", "igk_team"]);
    assert_eq!(bad_name.code, 2, "{}", bad_name.stderr);
    assert!(bad_name.stdout.is_empty());
    // The first key still works; nothing else was stored.
    assert_eq!(find(dir.path(), &first).unwrap().name, "team");
    let value = keys(dir.path(), &["list", "--json"]).json();
    assert_eq!(value["keys"].as_array().unwrap().len(), 1);
}
