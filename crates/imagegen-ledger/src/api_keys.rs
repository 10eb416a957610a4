//! Gateway API keys: the keys clients present to `imagegen serve`, each with an optional
//! budget per day, month or in total.
//!
//! A key is `igk_` and 40 lower-case hex digits (160 bits from the operating system's
//! CSPRNG). The ledger never holds the key itself: only its SHA-256 ([`api_key_hash`]),
//! which is how a presented key is found ([`Ledger::find_api_key`]), and a short display
//! prefix (`igk_` and the first 6 hex digits) for listing and revoking. The plaintext is
//! shown once, when it is made, and cannot be recovered.
//!
//! A key's spending is an ordinary ledger budget, one per period
//! ([`ApiKeyRecord::budget_name`]): `key:<id>:total`, `key:<id>:2026-12` (a month) or
//! `key:<id>:2026-12-02` (a day, UTC). [`Ledger::ensure_key_budget`] creates the current
//! one with the key's limit when missing; the gateway then [`reserve`]s and [`settle`]s
//! against it like any other budget.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
//! use imagegen_core::Credits;
//! use imagegen_ledger::api_keys::{ApiKey, ExposeSecret, KeyPeriod, NewApiKey, api_key_hash};
//!
//! // Made once; the plaintext is shown to the person who asked, never stored.
//! let key = ApiKey::generate()?;
//! let new = NewApiKey::new("ci-bot", &key)
//!     .with_limit(Credits::whole(50))
//!     .with_period(KeyPeriod::Month);
//! let created = ledger.create_api_key(&new).await?;
//! assert_eq!(created.prefix, &key.secret().expose_secret()[..10]);
//!
//! // A request presents the key: hash it the same way and look it up.
//! let presented = key.secret().expose_secret();
//! let found = ledger.find_api_key(&api_key_hash(presented)).await?.expect("live");
//! assert_eq!(found.name, "ci-bot");
//!
//! // Its budget for this month (2026-12 here), created with its limit when missing.
//! let now_ms = 1_796_169_600_000; // 2026-12-02T00:00:00Z
//! let budget = ledger.ensure_key_budget(&found, now_ms).await?.expect("live key");
//! assert_eq!(budget, format!("key:{}:2026-12", found.id.0));
//! let reservation = ledger.reserve(&budget, Credits::whole(8)).await?;
//! ledger.settle(reservation, Credits::whole(5)).await?;
//! let status = ledger.budget(&budget).await?.expect("created above");
//! assert_eq!(status.remaining, Some(Credits::whole(45)));
//!
//! assert!(ledger.revoke_api_key("ci-bot").await?);
//! assert!(ledger.find_api_key(&api_key_hash(presented)).await?.is_none());
//! # Ok(()) }
//! ```
//!
//! [`Ledger::find_api_key`]: crate::Ledger::find_api_key
//! [`Ledger::ensure_key_budget`]: crate::Ledger::ensure_key_budget
//! [`reserve`]: crate::Ledger::reserve
//! [`settle`]: crate::Ledger::settle

use std::fmt;
use std::str::FromStr;

use imagegen_core::Credits;
pub use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::convert::utc_day;
use crate::error::LedgerError;

/// What every gateway key starts with.
pub const API_KEY_PREFIX: &str = "igk_";

/// How many lower-case hex digits follow [`API_KEY_PREFIX`] in a key.
pub const API_KEY_HEX_DIGITS: usize = 40;

/// How many hex digits of a key its display prefix keeps.
const PREFIX_HEX_DIGITS: usize = 6;

/// The longest key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 64;

/// A gateway key: its plaintext (kept secret: its `Debug` shows nothing of it), its
/// SHA-256 (what the ledger stores) and its display prefix.
///
/// ```
/// use imagegen_ledger::api_keys::{ApiKey, ExposeSecret, api_key_hash};
/// let key = ApiKey::generate()?;
/// let text = key.secret().expose_secret();
/// assert!(text.starts_with("igk_") && text.len() == 44);
/// assert_eq!(key.hash(), api_key_hash(text));
/// assert_eq!(key.prefix(), &text[..10]);
/// assert!(!format!("{key:?}").contains(&text[4..]));
/// # Ok::<(), imagegen_ledger::LedgerError>(())
/// ```
#[derive(Debug)]
pub struct ApiKey {
    secret: SecretString,
    hash: String,
    prefix: String,
}

impl ApiKey {
    /// A new key: `igk_` and 40 lower-case hex digits from the operating system's CSPRNG.
    /// Fails only when the operating system gives no random bytes
    /// ([`LedgerError::KeyGeneration`]).
    pub fn generate() -> Result<Self, LedgerError> {
        let mut bytes = [0_u8; API_KEY_HEX_DIGITS / 2];
        getrandom::fill(&mut bytes).map_err(|error| LedgerError::KeyGeneration {
            source: error.into(),
        })?;
        let mut text = String::with_capacity(API_KEY_PREFIX.len() + API_KEY_HEX_DIGITS);
        text.push_str(API_KEY_PREFIX);
        text.push_str(&crate::digest::hex(&bytes));
        bytes.fill(0);
        Ok(Self::from_well_formed(text))
    }

    /// A key someone presented, when it is well formed (see [`is_well_formed`]); `None`
    /// otherwise (nothing that is not a gateway key needs looking up).
    ///
    /// ```
    /// use imagegen_ledger::api_keys::ApiKey;
    /// let key = ApiKey::parse("igk_0123456789abcdef0123456789abcdef01234567").expect("well formed");
    /// assert_eq!(key.prefix(), "igk_012345");
    /// assert!(ApiKey::parse("sk-0123").is_none());
    /// ```
    pub fn parse(presented: &str) -> Option<Self> {
        is_well_formed(presented).then(|| Self::from_well_formed(presented.to_owned()))
    }

    fn from_well_formed(text: String) -> Self {
        let hash = api_key_hash(&text);
        let prefix = display_prefix(&text);
        Self {
            secret: SecretString::from(text),
            hash,
            prefix,
        }
    }

    /// The plaintext: show it once to whoever asked for the key, store it nowhere.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// Its SHA-256, lower-case hex: what the ledger stores and looks up.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Its display prefix: `igk_` and the first 6 hex digits.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// The SHA-256 of `key`'s bytes, lower-case hex: what the ledger stores for a gateway
/// key, and what [`Ledger::find_api_key`](crate::Ledger::find_api_key) looks up. Hash a
/// presented key with this and look the hash up.
///
/// ```
/// assert_eq!(
///     imagegen_ledger::api_key_hash("igk_0123456789abcdef0123456789abcdef01234567").len(),
///     64
/// );
/// assert_eq!(
///     imagegen_ledger::api_key_hash(""),
///     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
pub fn api_key_hash(key: &str) -> String {
    crate::digest::sha256_hex(key.as_bytes())
}

/// Whether `key` has the form of a gateway key: `igk_` and 40 lower-case hex digits.
///
/// ```
/// use imagegen_ledger::api_keys::is_well_formed;
/// assert!(is_well_formed("igk_0123456789abcdef0123456789abcdef01234567"));
/// assert!(!is_well_formed("igk_0123456789ABCDEF0123456789ABCDEF01234567"));
/// assert!(!is_well_formed("igk_012345"));
/// ```
pub fn is_well_formed(key: &str) -> bool {
    key.strip_prefix(API_KEY_PREFIX).is_some_and(|digits| {
        digits.len() == API_KEY_HEX_DIGITS && digits.bytes().all(is_lower_hex)
    })
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// `igk_` and the first 6 hex digits of a well-formed key.
fn display_prefix(key: &str) -> String {
    key.chars()
        .take(API_KEY_PREFIX.len() + PREFIX_HEX_DIGITS)
        .collect()
}

/// Whether `text` has the form of a display prefix (`igk_` and 6 lower-case hex digits).
pub(crate) fn is_display_prefix(text: &str) -> bool {
    text.strip_prefix(API_KEY_PREFIX)
        .is_some_and(|digits| digits.len() == PREFIX_HEX_DIGITS && digits.bytes().all(is_lower_hex))
}

/// Names one gateway key; never reused, even after it is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ApiKeyId(pub u64);

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key #{}", self.0)
    }
}

/// The period a key's budget counts over: each UTC day, each UTC month, or its whole
/// life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPeriod {
    /// Each UTC day starts again from zero.
    Day,
    /// Each UTC month starts again from zero.
    Month,
    /// One budget for the key's whole life.
    Total,
}

impl KeyPeriod {
    /// The name stored in `api_keys.period`: `day`, `month` or `total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
            Self::Total => "total",
        }
    }

    /// The period holding `now_ms` (milliseconds since the Unix epoch, UTC): `total`,
    /// `2026-12` or `2026-12-02`.
    ///
    /// ```
    /// use imagegen_ledger::api_keys::KeyPeriod;
    /// let now = 1_796_169_600_000 + 3_600_000; // 2026-12-02T01:00:00Z
    /// assert_eq!(KeyPeriod::Day.current(now), "2026-12-02");
    /// assert_eq!(KeyPeriod::Month.current(now), "2026-12");
    /// assert_eq!(KeyPeriod::Total.current(now), "total");
    /// ```
    pub fn current(self, now_ms: u64) -> String {
        const DAY_MS: u64 = 86_400_000;
        let days = i64::try_from(now_ms / DAY_MS).unwrap_or(i64::MAX);
        match self {
            Self::Total => "total".to_owned(),
            Self::Day => utc_day(days),
            Self::Month => {
                let mut day = utc_day(days);
                // `YYYY-MM-DD`: the month is everything before the last `-`.
                if let Some(end) = day.rfind('-') {
                    day.truncate(end);
                }
                day
            }
        }
    }
}

impl fmt::Display for KeyPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that names no [`KeyPeriod`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a key period: use day, month or total")]
pub struct UnknownKeyPeriod(pub String);

impl FromStr for KeyPeriod {
    type Err = UnknownKeyPeriod;

    /// `day`, `month` or `total`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "day" => Self::Day,
            "month" => Self::Month,
            "total" => Self::Total,
            other => return Err(UnknownKeyPeriod(other.to_owned())),
        })
    }
}

/// A gateway key to store, as [`Ledger::create_api_key`](crate::Ledger::create_api_key)
/// takes it: a name, the key's hash and prefix, and its budget (unlimited and counted in
/// total unless set).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewApiKey {
    /// Its name: unique among live keys, 1 to 64 characters, no control characters, no
    /// space at either end, not starting with `igk_`.
    pub name: String,
    /// The key's SHA-256, lower-case hex ([`api_key_hash`]); never the key itself.
    pub key_hash: String,
    /// Its display prefix: `igk_` and 6 lower-case hex digits.
    pub prefix: String,
    /// The most it may spend per period, or `None`: unlimited (still counted).
    pub limit: Option<Credits>,
    /// The period its budget counts over.
    pub period: KeyPeriod,
}

impl NewApiKey {
    /// Key `key` named `name`: unlimited, counted over its whole life.
    pub fn new(name: impl Into<String>, key: &ApiKey) -> Self {
        Self {
            name: name.into(),
            key_hash: key.hash.clone(),
            prefix: key.prefix.clone(),
            limit: None,
            period: KeyPeriod::Total,
        }
    }

    /// Spends at most `limit` per period.
    #[must_use]
    pub fn with_limit(mut self, limit: Credits) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Counts its budget over `period`.
    #[must_use]
    pub fn with_period(mut self, period: KeyPeriod) -> Self {
        self.period = period;
        self
    }

    /// Refuses what the ledger must not store: a bad name, or a "hash" that is not one
    /// (a plaintext key would otherwise be stored).
    pub(crate) fn check(&self) -> Result<(), LedgerError> {
        check_name(&self.name)?;
        let hash_ok = self.key_hash.len() == 64 && self.key_hash.bytes().all(is_lower_hex);
        if !hash_ok {
            return Err(LedgerError::InvalidApiKey {
                reason: "its hash is not 64 lower-case hex digits (store the SHA-256 of the key, never the key)",
            });
        }
        if !is_display_prefix(&self.prefix) {
            return Err(LedgerError::InvalidApiKey {
                reason: "its prefix is not `igk_` and 6 lower-case hex digits",
            });
        }
        Ok(())
    }
}

/// Whether `name` may name a key.
fn check_name(name: &str) -> Result<(), LedgerError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.chars().count() > MAX_KEY_NAME_CHARS {
        "it is longer than 64 characters"
    } else if name.chars().any(char::is_control) {
        "it holds a control character"
    } else if name.trim() != name {
        "it starts or ends with a space"
    } else if name.starts_with(API_KEY_PREFIX) {
        "it starts with `igk_`, which is how keys and their prefixes start"
    } else {
        return Ok(());
    };
    Err(LedgerError::InvalidApiKeyName {
        name: name.to_owned(),
        reason,
    })
}

/// One gateway key, as stored (never the key or its hash), with what it spent in its
/// current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ApiKeyRecord {
    /// Its id.
    pub id: ApiKeyId,
    /// Its name.
    pub name: String,
    /// Its display prefix: `igk_` and the first 6 hex digits of the key.
    pub prefix: String,
    /// The most it may spend per period, or `None`: unlimited.
    pub limit: Option<Credits>,
    /// The period its budget counts over.
    pub period: KeyPeriod,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// When it was revoked, or `None` while it is live.
    pub revoked_at_ms: Option<u64>,
    /// Settled charges in the current period (of the ledger's clock when read); zero
    /// while its budget for the period does not exist yet.
    pub spent: Credits,
    /// Held by reservations not settled yet, in the current period.
    pub reserved: Credits,
}

impl ApiKeyRecord {
    /// Whether it is live (not revoked).
    pub fn is_live(&self) -> bool {
        self.revoked_at_ms.is_none()
    }

    /// The name of the ledger budget holding this key's spending in the period of
    /// `now_ms` (UTC): `key:<id>:total`, `key:<id>:2026-12` (month) or
    /// `key:<id>:2026-12-02` (day). `None` once the key is revoked: it may spend nothing.
    /// The budget may not exist yet: [`Ledger::ensure_key_budget`] creates it.
    ///
    /// [`Ledger::ensure_key_budget`]: crate::Ledger::ensure_key_budget
    pub fn budget_name(&self, now_ms: u64) -> Option<String> {
        self.is_live()
            .then(|| key_budget_name(self.id, self.period, now_ms))
    }
}

/// The budget of key `id` for the period of `now_ms`, revoked or not.
pub(crate) fn key_budget_name(id: ApiKeyId, period: KeyPeriod, now_ms: u64) -> String {
    format!("key:{}:{}", id.0, period.current(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = ApiKey::generate().ok();
        let b = ApiKey::generate().ok();
        let (Some(a), Some(b)) = (a, b) else {
            panic!("no random bytes");
        };
        assert!(is_well_formed(a.secret().expose_secret()));
        assert_ne!(a.secret().expose_secret(), b.secret().expose_secret());
        assert_eq!(a.hash(), api_key_hash(a.secret().expose_secret()));
        assert!(is_display_prefix(a.prefix()));
    }

    #[test]
    fn periods_name_utc_days_and_months() {
        // 2026-12-31T23:59:59.999Z and the next millisecond.
        let last = 1_798_761_599_999;
        assert_eq!(KeyPeriod::Day.current(last), "2026-12-31");
        assert_eq!(KeyPeriod::Month.current(last), "2026-12");
        assert_eq!(KeyPeriod::Month.current(last + 1), "2027-01");
        assert_eq!(
            key_budget_name(ApiKeyId(7), KeyPeriod::Day, last + 1),
            "key:7:2027-01-01"
        );
        assert_eq!("month".parse(), Ok(KeyPeriod::Month));
        assert!("weekly".parse::<KeyPeriod>().is_err());
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", " x", "x ", "a\nb", "igk_abc", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["ci-bot", "Team A", "é", &"x".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_plaintext_key_is_never_taken_for_a_hash() {
        let key = ApiKey::parse("igk_0123456789abcdef0123456789abcdef01234567");
        let Some(key) = key else {
            panic!("well formed");
        };
        let mut new = NewApiKey::new("ci", &key);
        assert!(new.check().is_ok());
        new.key_hash = key.secret().expose_secret().to_owned();
        assert!(matches!(
            new.check(),
            Err(LedgerError::InvalidApiKey { .. })
        ));
    }
}
