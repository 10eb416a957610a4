//! Ledger URLs: which store a URL names, where the default SQLite file lives, and how a URL
//! is shown without its secrets.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::error::LedgerError;

/// The file name of the default ledger, in the data directory's `imagegen` folder.
pub const DEFAULT_FILE_NAME: &str = "ledger.sqlite3";

/// What a ledger URL names.
pub(crate) enum Target {
    /// A SQLite file.
    Sqlite(SqliteConnectOptions),
    /// A PostgreSQL database.
    Postgres(PgConnectOptions),
}

/// Reads a ledger URL: `postgres://…` or `postgresql://…`, `sqlite://PATH` (or
/// `sqlite:PATH`), or a bare file path.
pub(crate) fn parse(url: &str) -> Result<Target, LedgerError> {
    let text = url.trim();
    let lower = text.to_ascii_lowercase();
    let unsupported = || LedgerError::UnsupportedUrl {
        url: redact_url(text),
    };
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return PgConnectOptions::from_str(text)
            .map(Target::Postgres)
            .map_err(|source| LedgerError::Open {
                url: redact_url(text),
                source,
            });
    }
    if lower.starts_with("sqlite:") {
        // A database in memory is one per connection: a pool of them would not be one
        // ledger. Use a file (in a temporary folder for throwaway use).
        if lower.contains(":memory:") || lower.contains("mode=memory") {
            return Err(unsupported());
        }
        return SqliteConnectOptions::from_str(text)
            .map(Target::Sqlite)
            .map_err(|source| LedgerError::Open {
                url: redact_url(text),
                source,
            });
    }
    if text.is_empty() || text.contains("://") {
        return Err(unsupported());
    }
    Ok(Target::Sqlite(SqliteConnectOptions::new().filename(text)))
}

/// `url` with any password replaced by `redacted` (in the user-info part and in
/// `password=` / `sslpassword=` query parameters), for messages and logs. A plain path is
/// returned as it is.
///
/// ```
/// use imagegen_ledger::redact_url;
/// assert_eq!(
///     redact_url("postgres://app:s3cret@db.example:5432/imagegen"),
///     "postgres://app:redacted@db.example:5432/imagegen"
/// );
/// assert_eq!(
///     redact_url("postgresql://db/imagegen?user=app&password=s3cret"),
///     "postgresql://db/imagegen?user=app&password=redacted"
/// );
/// assert_eq!(redact_url("/home/me/ledger.sqlite3"), "/home/me/ledger.sqlite3");
/// ```
pub fn redact_url(url: &str) -> String {
    const SECRET_KEYS: [&str; 2] = ["password", "sslpassword"];
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("redacted")).is_err() {
                return format!("{scheme}://redacted");
            }
            let secret_query = parsed
                .query_pairs()
                .any(|(key, _)| SECRET_KEYS.contains(&key.as_ref()));
            if secret_query {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(key, value)| {
                        let value = if SECRET_KEYS.contains(&key.as_ref()) {
                            "redacted".to_owned()
                        } else {
                            value.into_owned()
                        };
                        (key.into_owned(), value)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        // Not a URL the parser reads: keep the scheme and the host part only.
        Err(_) => {
            let after_user = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            let host = after_user.split(['/', '?', '#']).next().unwrap_or_default();
            format!("{scheme}://redacted@{host}/…")
        }
    }
}

/// The default ledger file: `$XDG_DATA_HOME/imagegen/ledger.sqlite3`, else
/// `$HOME/.local/share/imagegen/ledger.sqlite3` (on Windows, under `%LOCALAPPDATA%`).
///
/// ```
/// # fn main() -> Result<(), imagegen_ledger::LedgerError> {
/// let path = imagegen_ledger::default_sqlite_path()?;
/// assert!(path.ends_with("imagegen/ledger.sqlite3"));
/// # Ok(()) }
/// ```
pub fn default_sqlite_path() -> Result<PathBuf, LedgerError> {
    if cfg!(windows) {
        return non_empty_absolute(std::env::var_os("LOCALAPPDATA"))
            .map(|dir| dir.join("imagegen").join(DEFAULT_FILE_NAME))
            .ok_or(LedgerError::NoDataDir);
    }
    data_path_from(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
        .ok_or(LedgerError::NoDataDir)
}

/// The XDG rule: `$XDG_DATA_HOME` when set to an absolute path, else `$HOME/.local/share`.
fn data_path_from(xdg_data_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let data = non_empty_absolute(xdg_data_home)
        .or_else(|| non_empty_absolute(home).map(|home| home.join(".local").join("share")))?;
    Some(data.join("imagegen").join(DEFAULT_FILE_NAME))
}

fn non_empty_absolute(value: Option<OsString>) -> Option<PathBuf> {
    value
        .map(PathBuf::from)
        .filter(|path| Path::is_absolute(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_everywhere() {
        for (url, shown) in [
            (
                "postgres://app:hunter2@db:5432/ledger",
                "postgres://app:redacted@db:5432/ledger",
            ),
            (
                "postgresql://app:p%40ss@db/ledger?sslmode=require",
                "postgresql://app:redacted@db/ledger?sslmode=require",
            ),
            ("postgres://app@db/ledger", "postgres://app@db/ledger"),
            (
                "postgres://db/ledger?password=hunter2&user=app",
                "postgres://db/ledger?password=redacted&user=app",
            ),
            ("sqlite:///tmp/x.sqlite3", "sqlite:///tmp/x.sqlite3"),
            ("ledger.sqlite3", "ledger.sqlite3"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let broken = redact_url("postgres://app:hunter2@db:notaport/x");
        assert!(!broken.contains("hunter2"), "{broken}");
    }

    #[test]
    fn urls_name_their_store() {
        assert!(matches!(
            parse("postgres://u@localhost/db"),
            Ok(Target::Postgres(_))
        ));
        assert!(matches!(
            parse("postgresql://u@localhost/db"),
            Ok(Target::Postgres(_))
        ));
        assert!(matches!(parse("sqlite://x.db"), Ok(Target::Sqlite(_))));
        assert!(matches!(parse("/tmp/x.sqlite3"), Ok(Target::Sqlite(_))));
        assert!(matches!(parse("x.sqlite3"), Ok(Target::Sqlite(_))));
        for bad in [
            "mysql://u@h/db",
            "",
            "sqlite::memory:",
            "sqlite://x?mode=memory",
        ] {
            assert!(
                matches!(parse(bad), Err(LedgerError::UnsupportedUrl { .. })),
                "{bad}"
            );
        }
        let err = parse("mysql://u:hunter2@h/db").err().map(|e| e.to_string());
        assert!(!err.unwrap_or_default().contains("hunter2"));
    }

    #[test]
    fn the_default_file_follows_xdg() {
        assert_eq!(
            data_path_from(Some("/x/data".into()), Some("/home/me".into())),
            Some(PathBuf::from("/x/data/imagegen/ledger.sqlite3"))
        );
        assert_eq!(
            data_path_from(Some("relative".into()), Some("/home/me".into())),
            Some(PathBuf::from(
                "/home/me/.local/share/imagegen/ledger.sqlite3"
            ))
        );
        assert_eq!(
            data_path_from(Some("".into()), Some("/home/me".into())),
            Some(PathBuf::from(
                "/home/me/.local/share/imagegen/ledger.sqlite3"
            ))
        );
        assert_eq!(data_path_from(None, None), None);
    }
}
