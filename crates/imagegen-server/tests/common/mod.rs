//! What the gateway's tests share: a gateway on `127.0.0.1:0` in front of the in-process
//! simulator (instant generations, small images), with its ledger and images in a
//! temporary folder, and an HTTP client to call it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use imagegen::Client;
use imagegen::ledger::Ledger;
use imagegen::sim::{ImageSize, SimConfig};
use imagegen_server::{RunningServer, ServerConfig, serve};
use serde_json::Value;

/// A gateway under test.
pub(crate) struct Gateway {
    /// The server.
    pub(crate) server: RunningServer,
    /// The client it generates with (its simulator takes faults).
    pub(crate) client: Client,
    /// An HTTP client for calling it.
    pub(crate) http: reqwest::Client,
    /// The ledger's URL (open it again after the server stopped).
    pub(crate) ledger_url: String,
    /// Where it keeps images.
    pub(crate) images: PathBuf,
    /// Holds the ledger and the images.
    pub(crate) dir: tempfile::TempDir,
}

/// The simulator every test starts from: instant, small images.
pub(crate) fn sim() -> SimConfig {
    SimConfig::default()
        .with_speed(0.0)
        .with_image_size(ImageSize::MaxSide(64))
}

/// A gateway on the default simulator.
pub(crate) async fn start() -> Gateway {
    start_with(sim(), |config| config).await
}

/// A gateway on a simulator configured by `sim`, its configuration adjusted by
/// `configure`.
pub(crate) async fn start_with(
    sim: SimConfig,
    configure: impl FnOnce(ServerConfig) -> ServerConfig,
) -> Gateway {
    let client = Client::simulated_builder(sim)
        .await
        .unwrap()
        .kolbo_pacing(false)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger_url = format!("sqlite://{}", dir.path().join("ledger.sqlite3").display());
    let images = dir.path().join("images");
    let config = ServerConfig::with_client(client.clone())
        .listen("127.0.0.1:0".parse().unwrap())
        .with_ledger_url(ledger_url.clone())
        .with_image_dir(&images);
    let server = serve(configure(config)).await.unwrap();
    Gateway {
        server,
        client,
        http: reqwest::Client::new(),
        ledger_url,
        images,
        dir,
    }
}

impl Gateway {
    /// The URL of `path` (`/v1/models`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// `POST /v1/images/generations` with `body`, as the OpenAI clients send it.
    pub(crate) async fn generate(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/images/generations"))
            .bearer_auth("sk-placeholder")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The ledger, opened again (also after the server stopped and closed its own).
    pub(crate) async fn ledger(&self) -> Arc<dyn Ledger> {
        imagegen::ledger::open(&self.ledger_url).await.unwrap()
    }

    /// The simulator.
    pub(crate) fn sim(&self) -> &imagegen::sim::SimHandle {
        self.client.simulator().unwrap()
    }

    /// How many generations the simulator was sent, both providers.
    pub(crate) fn submissions(&self) -> usize {
        let log = self.sim().request_log();
        log.count(imagegen::sim::Route::KolboGenerate)
            + log.count(imagegen::sim::Route::KoalaGenerate)
    }
}

/// A response's JSON body, with its status and headers checked by the caller.
pub(crate) async fn json(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Whether `bytes` start as a PNG or a JPEG does.
pub(crate) fn is_png_or_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// The OpenAI error of a response: status, the `error` object, and whether it forbids
/// a retry.
pub(crate) async fn error_of(response: reqwest::Response) -> (u16, Value, Option<String>) {
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("x-should-retry")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = json(response).await;
    let error = body["error"].clone();
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(
        error.get("param").is_some() && error.get("code").is_some(),
        "{body}"
    );
    (status, body, retry)
}

/// A ledger for `backend`: a SQLite file in `dir`, or a fresh PostgreSQL database; its
/// URL, and the database's name to drop when done (PostgreSQL).
pub(crate) async fn ledger_url(
    backend: imagegen_ledger::Backend,
    dir: &std::path::Path,
) -> (String, Option<String>) {
    match backend {
        imagegen_ledger::Backend::Postgres => {
            let (url, name) = imagegen_ledger::testing::fresh_database().await;
            (url, Some(name))
        }
        _ => (
            format!("sqlite://{}", dir.join("ledger.sqlite3").display()),
            None,
        ),
    }
}

/// Makes every new generation row of the ledger at `url` fail to insert, in the database
/// itself (a trigger), as a full disk or a lost database would.
pub(crate) async fn refuse_generation_rows(backend: imagegen_ledger::Backend, url: &str) {
    use sqlx::Connection;
    match backend {
        imagegen_ledger::Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql(
                "CREATE TRIGGER refuse_generations BEFORE INSERT ON generations \
                 BEGIN SELECT RAISE(ABORT, 'injected: no generation row'); END",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
        _ => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(
                "CREATE FUNCTION refuse_generations() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'injected: no generation row'; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER refuse_generations BEFORE INSERT ON generations \
                 FOR EACH ROW EXECUTE FUNCTION refuse_generations();",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
    }
}

/// Declares, for each `async fn NAME(Backend)`, the tests `NAME::sqlite` and
/// `NAME::postgres`.
#[macro_export]
macro_rules! on_both_ledgers {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(imagegen_ledger::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(imagegen_ledger::Backend::Postgres).await;
            }
        }
    )*};
}
