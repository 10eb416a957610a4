//! [`ClientConfig`]: what the environment (or the caller) says about providers.
//!
//! The variable names are fixed, because scripts and other tools set them:
//!
//! | variable | meaning | when unset |
//! |---|---|---|
//! | `KOLBO_API_KEY` | Kolbo's API key; Kolbo is used when it is set | Kolbo is not used |
//! | `KOALA_API_KEY` | KoalaImages' API key; KoalaImages is used when it is set | KoalaImages is not used |
//! | `KOLBO_BASE_URL` | Kolbo's API root (`https://api.kolbo.ai/api`) | the real API |
//! | `KOALA_BASE_URL` | KoalaImages' API root (`https://koala.sh/api`) | the real API |
//! | `KOALA_PLAN` | `basic` or `professional` | unknown: plan-gated models stay eligible, and a `403` marks them unavailable for the rest of the run |
//! | `KOLBO_CREDIT_USD` | dollars per Kolbo credit | `0.01`, as Kolbo documents |
//! | `KOALA_CREDIT_USD` | dollars per KoalaImages credit (it depends on your plan) | unknown: providers are compared in credits |
//! | `IMAGEGEN_POLL_INTERVAL_MS` | a fixed interval between status polls, 50 ms or more (for simulators and local proxies) | Kolbo's adaptive schedule |
//! | `IMAGEGEN_DOWNLOAD_DEADLINE` | seconds one image's download may take, retries included (fractions allowed, at least 1); past it the paid job stays open, to fetch later with `imagegen resume` | 15 minutes (KoalaImages holds a URL until its image is ready, which can take long) |
//!
//! An empty variable counts as unset. A value that cannot be used is a [`ConfigError`]
//! naming the variable, raised before any request is sent. Keys are kept as
//! [`SecretString`]s: `Debug` shows `[redacted]`, and no error ever contains one.
//!
//! ```
//! use imagegen::ClientConfig;
//! let config = ClientConfig::from_lookup(|name| match name {
//!     "KOALA_API_KEY" => Some("3f1c...".into()),
//!     "KOALA_PLAN" => Some("professional".into()),
//!     _ => None,
//! })?;
//! assert!(config.has_provider());
//! assert!(!format!("{config:?}").contains("3f1c"));
//! let bad = ClientConfig::from_lookup(|name| (name == "KOALA_PLAN").then(|| "gold".into()));
//! assert_eq!(bad.unwrap_err().variable(), "KOALA_PLAN");
//! # Ok::<(), imagegen::ConfigError>(())
//! ```

use std::fmt;
use std::time::Duration;

use imagegen_core::{CreditWorth, Usd};
use koala_api::KoalaPlan;
use secrecy::SecretString;
use url::Url;

/// `KOLBO_API_KEY`.
pub const KOLBO_API_KEY: &str = "KOLBO_API_KEY";
/// `KOALA_API_KEY`.
pub const KOALA_API_KEY: &str = "KOALA_API_KEY";
/// `KOLBO_BASE_URL`.
pub const KOLBO_BASE_URL: &str = "KOLBO_BASE_URL";
/// `KOALA_BASE_URL`.
pub const KOALA_BASE_URL: &str = "KOALA_BASE_URL";
/// `KOALA_PLAN`.
pub const KOALA_PLAN: &str = "KOALA_PLAN";
/// `KOLBO_CREDIT_USD`.
pub const KOLBO_CREDIT_USD: &str = "KOLBO_CREDIT_USD";
/// `KOALA_CREDIT_USD`.
pub const KOALA_CREDIT_USD: &str = "KOALA_CREDIT_USD";
/// `IMAGEGEN_POLL_INTERVAL_MS`.
pub const IMAGEGEN_POLL_INTERVAL_MS: &str = "IMAGEGEN_POLL_INTERVAL_MS";

/// `IMAGEGEN_DOWNLOAD_DEADLINE`.
pub const IMAGEGEN_DOWNLOAD_DEADLINE: &str = "IMAGEGEN_DOWNLOAD_DEADLINE";

/// The shortest poll interval accepted from `IMAGEGEN_POLL_INTERVAL_MS`.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A configuration value that cannot be used; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    variable: &'static str,
    message: String,
}

impl ConfigError {
    /// An error about `variable` saying what is wrong and what is allowed.
    pub fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }

    /// The variable at fault (`KOALA_PLAN`, …).
    pub fn variable(&self) -> &'static str {
        self.variable
    }

    /// What is wrong and what is allowed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Provider keys, API roots, plan and credit worth; see the [module docs](self).
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Kolbo's API key.
    pub kolbo_api_key: Option<SecretString>,
    /// KoalaImages' API key.
    pub koala_api_key: Option<SecretString>,
    /// Kolbo's API root, when not the real one.
    pub kolbo_base_url: Option<Url>,
    /// KoalaImages' API root, when not the real one.
    pub koala_base_url: Option<Url>,
    /// The KoalaImages plan ([`KoalaPlan::Unknown`] when not told).
    pub koala_plan: KoalaPlan,
    /// What a Kolbo credit is worth (`None`: Kolbo's documented $0.01).
    pub kolbo_credit_usd: Option<CreditWorth>,
    /// What a KoalaImages credit is worth, when known.
    pub koala_credit_usd: Option<CreditWorth>,
    /// A fixed poll interval instead of Kolbo's adaptive schedule.
    pub poll_interval: Option<Duration>,
    /// How long one image's download may take, retries included, instead of the
    /// downloader's default.
    pub download_deadline: Option<Duration>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = |k: &Option<SecretString>| k.as_ref().map(|_| "[redacted]");
        f.debug_struct("ClientConfig")
            .field("kolbo_api_key", &key(&self.kolbo_api_key))
            .field("koala_api_key", &key(&self.koala_api_key))
            .field(
                "kolbo_base_url",
                &self.kolbo_base_url.as_ref().map(Url::as_str),
            )
            .field(
                "koala_base_url",
                &self.koala_base_url.as_ref().map(Url::as_str),
            )
            .field("koala_plan", &self.koala_plan)
            .field("kolbo_credit_usd", &self.kolbo_credit_usd)
            .field("koala_credit_usd", &self.koala_credit_usd)
            .field("poll_interval", &self.poll_interval)
            .field("download_deadline", &self.download_deadline)
            .finish()
    }
}

impl ClientConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (for tests and for other sources).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let key = |name: &'static str| -> Result<Option<SecretString>, ConfigError> {
            match get(name) {
                None => Ok(None),
                Some(value) => {
                    let value = value.trim().to_owned();
                    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
                        return Err(ConfigError::new(
                            name,
                            "the key contains spaces or control characters: paste the key alone",
                        ));
                    }
                    Ok(Some(SecretString::from(value)))
                }
            }
        };
        let url = |name: &'static str| -> Result<Option<Url>, ConfigError> {
            get(name)
                .map(|value| parse_base_url(name, value.trim()))
                .transpose()
        };
        let worth = |name: &'static str| -> Result<Option<CreditWorth>, ConfigError> {
            get(name)
                .map(|value| parse_worth(name, value.trim()))
                .transpose()
        };
        let koala_plan = match get(KOALA_PLAN) {
            None => KoalaPlan::Unknown,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "basic" => KoalaPlan::Basic,
                "professional" | "pro" => KoalaPlan::Professional,
                _ => {
                    return Err(ConfigError::new(
                        KOALA_PLAN,
                        format!(
                            "`{}` is not a KoalaImages plan: use basic or professional, or leave it unset",
                            value.trim()
                        ),
                    ));
                }
            },
        };
        let poll_interval = get(IMAGEGEN_POLL_INTERVAL_MS)
            .map(|value| {
                let bad = || {
                    ConfigError::new(
                        IMAGEGEN_POLL_INTERVAL_MS,
                        format!(
                            "`{}` is not a number of milliseconds of at least {}",
                            value.trim(),
                            MIN_POLL_INTERVAL.as_millis()
                        ),
                    )
                };
                let ms: u64 = value.trim().parse().map_err(|_| bad())?;
                let interval = Duration::from_millis(ms);
                if interval < MIN_POLL_INTERVAL {
                    return Err(bad());
                }
                Ok(interval)
            })
            .transpose()?;
        let download_deadline = get(IMAGEGEN_DOWNLOAD_DEADLINE)
            .map(|value| match value.trim().parse::<f64>() {
                Ok(secs) if (1.0..=86_400.0).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
                _ => Err(ConfigError::new(
                    IMAGEGEN_DOWNLOAD_DEADLINE,
                    format!(
                        "`{}` is not a number of seconds from 1 to 86400 (such as 120)",
                        value.trim()
                    ),
                )),
            })
            .transpose()?;
        Ok(Self {
            kolbo_api_key: key(KOLBO_API_KEY)?,
            koala_api_key: key(KOALA_API_KEY)?,
            kolbo_base_url: url(KOLBO_BASE_URL)?,
            koala_base_url: url(KOALA_BASE_URL)?,
            koala_plan,
            kolbo_credit_usd: worth(KOLBO_CREDIT_USD)?,
            koala_credit_usd: worth(KOALA_CREDIT_USD)?,
            poll_interval,
            download_deadline,
        })
    }

    /// Whether at least one provider's key is set.
    pub fn has_provider(&self) -> bool {
        self.kolbo_api_key.is_some() || self.koala_api_key.is_some()
    }

    /// What a Kolbo credit is worth: the configured value or Kolbo's documented $0.01.
    pub fn kolbo_worth(&self) -> CreditWorth {
        self.kolbo_credit_usd
            .unwrap_or(CreditWorth::KOLBO_DOCUMENTED)
    }
}

fn parse_base_url(name: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| {
        ConfigError::new(
            name,
            format!("`{value}` is not a URL ({e}): use an http or https URL such as https://api.example.com/api"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(
            name,
            format!("`{value}` is not an http or https URL"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            name,
            "the URL carries a user name or password: put credentials in the API key variable",
        ));
    }
    Ok(url)
}

fn parse_worth(name: &'static str, value: &str) -> Result<CreditWorth, ConfigError> {
    let worth: CreditWorth = value.parse().map_err(|e| {
        ConfigError::new(
            name,
            format!("`{value}` is not an amount of dollars ({e}): write it like 0.01"),
        )
    })?;
    if worth.usd_per_credit() == Usd::ZERO {
        return Err(ConfigError::new(
            name,
            "a credit worth nothing would make that provider look free: give its price in dollars, like 0.01",
        ));
    }
    Ok(worth)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<ClientConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ClientConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let config = read(&[]).unwrap();
        assert!(!config.has_provider());
        assert_eq!(config.koala_plan, KoalaPlan::Unknown);
        assert_eq!(config.kolbo_worth(), CreditWorth::KOLBO_DOCUMENTED);
        assert_eq!(config.koala_credit_usd, None);
        assert_eq!(config.poll_interval, None);
        assert_eq!(config.download_deadline, None);
        for bad in ["0.5", "soon", "-3", "1e9"] {
            let error = read(&[("IMAGEGEN_DOWNLOAD_DEADLINE", bad)]).unwrap_err();
            assert_eq!(error.variable(), "IMAGEGEN_DOWNLOAD_DEADLINE");
        }
    }

    #[test]
    fn reads_every_variable() {
        let config = read(&[
            ("KOLBO_API_KEY", " kolbo_live_abc "),
            ("KOALA_API_KEY", "k-1"),
            ("KOLBO_BASE_URL", "http://127.0.0.1:9/api"),
            ("KOALA_BASE_URL", "https://koala.example/api"),
            ("KOALA_PLAN", "Professional"),
            ("KOLBO_CREDIT_USD", "0.02"),
            ("KOALA_CREDIT_USD", "$0.0075"),
            ("IMAGEGEN_POLL_INTERVAL_MS", "100"),
            ("IMAGEGEN_DOWNLOAD_DEADLINE", "2.5"),
        ])
        .unwrap();
        assert_eq!(config.download_deadline, Some(Duration::from_millis(2_500)));
        assert_eq!(
            config.kolbo_api_key.as_ref().unwrap().expose_secret(),
            "kolbo_live_abc"
        );
        assert_eq!(config.koala_plan, KoalaPlan::Professional);
        assert_eq!(config.kolbo_worth().to_string(), "$0.02/credit");
        assert!(config.koala_credit_usd.is_some());
        assert_eq!(config.poll_interval, Some(Duration::from_millis(100)));
        assert_eq!(
            config.kolbo_base_url.as_ref().unwrap().as_str(),
            "http://127.0.0.1:9/api"
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("kolbo_live_abc") && !shown.contains("k-1"));
    }

    #[test]
    fn empty_values_are_unset() {
        let config = read(&[("KOLBO_API_KEY", "  "), ("KOALA_PLAN", "")]).unwrap();
        assert!(!config.has_provider());
        assert_eq!(config.koala_plan, KoalaPlan::Unknown);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("KOALA_PLAN", "gold"),
            ("KOLBO_CREDIT_USD", "cheap"),
            ("KOLBO_CREDIT_USD", "0"),
            ("KOALA_CREDIT_USD", "-1"),
            ("KOLBO_BASE_URL", "not a url"),
            ("KOALA_BASE_URL", "ftp://koala.example/api"),
            ("KOALA_BASE_URL", "https://user:pw@koala.example/api"),
            ("IMAGEGEN_POLL_INTERVAL_MS", "5"),
            ("IMAGEGEN_POLL_INTERVAL_MS", "soon"),
            ("KOLBO_API_KEY", "two words"),
        ];
        for (name, value) in cases {
            let err = read(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable(), name, "{err}");
            assert!(err.to_string().starts_with(name), "{err}");
        }
        let err = read(&[("KOLBO_API_KEY", "kolbo_live_ab cd")]).unwrap_err();
        assert!(!err.to_string().contains("kolbo_live_ab"), "{err}");
    }
}
