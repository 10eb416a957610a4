//! `imagegen serve`: the OpenAI-compatible gateway (`imagegen-server`) in the foreground,
//! until Ctrl-C or SIGTERM.
//!
//! The first line on stdout is `listening on http://ADDR`. Providers come from the
//! environment as for every command; with no provider key the gateway runs on the
//! built-in simulator (said on stderr), recording in a temporary ledger unless `--db`
//! names one. The first Ctrl-C (or SIGTERM) stops it gracefully: no new connections,
//! requests in flight answered, every paid job recorded and saved. A second one quits
//! once the requests already sent to a provider are recorded.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use imagegen::ledger::Ledger;
use imagegen::{Client, ClientConfig};
use imagegen_server::{RunningServer, ServerConfig, ServerError};

use super::{connect, fail, interrupted_code, resume_command};
use crate::args::ServeArgs;
use crate::exit;
use crate::output::Output;

/// How long a second Ctrl-C waits for requests already sent to be recorded.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

pub(crate) async fn run(args: ServeArgs, db: Option<&str>, quiet: bool) -> u8 {
    let out = Output::new(false, quiet);
    let (client, ledger) = match connect_paced(&out, &args, db).await {
        Ok(connected) => connected,
        Err(error) => return fail(&out, &error),
    };
    let args = Served { args, ledger };
    serve_until(client, args, db, &out, |_| {}, stop_signal).await
}

/// What `serve` runs with: its arguments, and the ledger its client paces on.
struct Served {
    args: ServeArgs,
    ledger: Option<Arc<dyn Ledger>>,
}

/// The client from the environment. With a provider key, the ledger (`--db`, or the
/// default one) is opened first and Kolbo's generation starts are paced on it: every
/// gateway on the same ledger keeps to the account's limit together
/// (`--kolbo-rate-limit`, default Kolbo's 10 a minute). With none, the built-in simulator.
async fn connect_paced(
    out: &Output,
    args: &ServeArgs,
    db: Option<&str>,
) -> Result<(Client, Option<Arc<dyn Ledger>>), imagegen::Error> {
    let config = ClientConfig::from_env()?;
    if !config.has_provider() {
        return Ok((connect(out, true).await?, None));
    }
    let ledger = super::open_ledger(db).await?;
    let mut builder = Client::builder()
        .config(config)
        .shared_pacing(Arc::clone(&ledger));
    if let Some(rate) = args.kolbo_rate_limit {
        builder = builder.kolbo_rate_limit(rate.limit, rate.window);
    }
    Ok((builder.build()?, Some(ledger)))
}

/// Serves with `client` until `stop` completes (then stops gracefully) or completes
/// twice (then quits once what was sent is recorded); `listening` hears of the server
/// once it listens.
async fn serve_until<F: Future<Output = ()>>(
    client: Client,
    served: Served,
    db: Option<&str>,
    out: &Output,
    listening: impl FnOnce(&RunningServer),
    stop: impl Fn() -> F,
) -> u8 {
    let Served { args, ledger } = served;
    let mut config = ServerConfig::new(client.clone())
        .listen(args.listen)
        .with_max_in_flight_per_key(args.max_in_flight_per_key)
        .with_job_lease(Duration::from_secs(args.job_lease));
    if let Some(limit) = args.mcp_wait_limit {
        config = config.with_mcp_wait_limit(limit);
    }
    match (ledger, db) {
        (Some(ledger), _) => config = config.with_ledger(ledger),
        (None, Some(url)) => config = config.with_ledger_url(url),
        // The built-in simulator's jobs end with this process: nothing to resume later.
        (None, None) if client.is_simulated() => config = config.ephemeral(),
        (None, None) => {}
    }
    if let Some(dir) = args.image_dir {
        config = config.with_image_dir(dir);
    }
    if let Some(url) = args.public_url {
        config = config.with_public_url(url);
    }
    let server = match imagegen_server::serve(config).await {
        Ok(server) => server,
        Err(error) => return failed_to_start(out, &error),
    };
    out.line(format!("listening on {}", server.url()));
    if server.is_ephemeral() {
        out.note("the simulator's jobs end with this process: its ledger and images are in a temporary folder (give --db to keep them)");
    }
    if server.requires_keys() {
        out.note("requests need a gateway key (Authorization: Bearer igk_…; see `imagegen keys`)");
        if !server.local_addr().ip().is_loopback() {
            out.note("plain HTTP carries keys and images in clear: put a TLS proxy in front (and give --public-url)");
        }
    } else {
        out.note("no gateway key in the ledger: serving this machine only, without keys");
    }
    out.note(format!(
        "OpenAI clients: base_url {}/v1 (images are kept in {}); Ctrl-C stops",
        server.url(),
        server.image_store().dir().display()
    ));
    listening(&server);
    stop().await;
    out.status(
        "Stopping",
        format!(
            "no new requests; waiting for {} generation(s) in flight to be recorded (Ctrl-C again to quit sooner)",
            server.generations_in_flight()
        ),
    );
    let ledger = server.ledger().url().to_owned();
    let ephemeral = server.is_ephemeral();
    tokio::select! {
        result = server.shutdown() => match result {
            Ok(()) => {
                out.status("Stopped", "every paid job is recorded");
                exit::OK
            }
            Err(error) => {
                out.error(error.to_string());
                exit::OTHER
            }
        },
        () = stop() => {
            client.stop_submitting();
            out.warn("quitting: no new request will be sent; waiting for requests already sent to be recorded");
            tokio::select! {
                () = client.submissions_settled() => {}
                () = tokio::time::sleep(SETTLE_TIMEOUT) => {
                    out.warn("a request is still unanswered: its job may have been charged without an id; check the provider's dashboard");
                }
            }
            if !ephemeral {
                out.note(format!(
                    "paid jobs are recorded in {ledger}; finish them with: {}",
                    resume_command(db)
                ));
            }
            interrupted_code()
        }
    }
}

/// Prints why the gateway could not start and returns the exit code: 2 for what the
/// command line or the setup can fix before anything runs, 1 otherwise.
fn failed_to_start(out: &Output, error: &ServerError) -> u8 {
    super::print_with_causes(out, error);
    match error {
        ServerError::NoKeysOffLoopback { .. }
        | ServerError::PublicUrl { .. }
        | ServerError::Ledger(imagegen::ledger::LedgerError::UnsupportedUrl { .. }) => {
            exit::INVALID_INPUT
        }
        _ => exit::OTHER,
    }
}

/// Ctrl-C, or SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    // Without a handler there is nothing to wait for but the process's end.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use clap::Parser;
    use imagegen::sim::{ImageSize, SimConfig};
    use tokio::sync::{Notify, oneshot};

    use super::*;
    use crate::args::{Cli, Command};

    fn args(line: &[&str]) -> Served {
        match Cli::try_parse_from([&["imagegen", "serve"], line].concat())
            .unwrap()
            .command
        {
            Command::Serve(args) => Served { args, ledger: None },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_are_typed() {
        let defaults = args(&[]).args;
        assert_eq!(defaults.listen, imagegen_server::DEFAULT_LISTEN);
        assert_eq!(defaults.image_dir, None);
        assert_eq!(
            defaults.max_in_flight_per_key,
            imagegen_server::DEFAULT_MAX_IN_FLIGHT_PER_KEY
        );
        assert_eq!(defaults.job_lease, 30);
        assert_eq!(defaults.kolbo_rate_limit, None);
        let set = args(&[
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "https://images.example.org/",
            "--max-in-flight-per-key",
            "1",
            "--kolbo-rate-limit",
            "20/5s",
            "--job-lease",
            "3",
        ])
        .args;
        assert_eq!(set.job_lease, 3);
        assert_eq!(defaults.mcp_wait_limit, None);
        let waits = args(&["--mcp-wait-limit", "0.5"]).args;
        assert_eq!(waits.mcp_wait_limit, Some(Duration::from_millis(500)));
        let rate = set.kolbo_rate_limit.unwrap();
        assert_eq!((rate.limit, rate.window), (20, Duration::from_secs(5)));
        for (text, limit, secs) in [("10/min", 10, 60), ("600/1h", 600, 3600), ("7/60", 7, 60)] {
            let rate = args(&["--kolbo-rate-limit", text])
                .args
                .kolbo_rate_limit
                .unwrap();
            assert_eq!((rate.limit, rate.window.as_secs()), (limit, secs), "{text}");
        }
        assert_eq!(set.listen.port(), 0);
        assert_eq!(set.max_in_flight_per_key, 1);
        assert_eq!(
            set.public_url.map(|u| u.to_string()).as_deref(),
            Some("https://images.example.org/")
        );
        for bad in [
            &["--listen", "localhost"][..],
            &["--public-url", "not a url"],
            &["--max-in-flight-per-key", "0"],
            &["--kolbo-rate-limit", "0/min"],
            &["--kolbo-rate-limit", "10"],
            &["--kolbo-rate-limit", "10/0s"],
            &["--kolbo-rate-limit", "10/fortnight"],
            &["--job-lease", "0"],
            &["--mcp-wait-limit", "0"],
            &["--max-in-flight-per-key", "-1"],
            &["--max-in-flight-per-key", "many"],
        ] {
            assert!(
                Cli::try_parse_from([&["imagegen", "serve"], bad].concat()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_on_the_simulator_until_stopped() {
        let client = Client::with_simulator(
            SimConfig::default()
                .with_speed(0.0)
                .with_image_size(ImageSize::MaxSide(32)),
        )
        .await
        .unwrap();
        let stop = Arc::new(Notify::new());
        let (tell, heard) = oneshot::channel();
        let serving = tokio::spawn({
            let stop = Arc::clone(&stop);
            async move {
                let out = Output::new(false, true);
                serve_until(
                    client,
                    args(&["--listen", "127.0.0.1:0"]),
                    None,
                    &out,
                    |server| {
                        assert!(server.is_ephemeral());
                        assert!(!server.requires_keys());
                        let _ = tell.send(server.url());
                    },
                    move || {
                        let stop = Arc::clone(&stop);
                        async move { stop.notified().await }
                    },
                )
                .await
            }
        });
        let url = heard.await.unwrap();
        let models = http_get(&format!("{url}/v1/models")).await;
        assert!(models.contains("\"object\":\"list\""), "{models}");
        stop.notify_one();
        assert_eq!(serving.await.unwrap(), exit::OK);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuses_to_serve_off_loopback_without_keys() {
        let client = Client::with_simulator(SimConfig::default().with_speed(0.0))
            .await
            .unwrap();
        let out = Output::new(false, true);
        let code = serve_until(
            client,
            args(&["--listen", "0.0.0.0:0"]),
            None,
            &out,
            |_| panic!("it must not listen"),
            || async {},
        )
        .await;
        assert_eq!(code, exit::INVALID_INPUT);
    }

    /// A GET as a plain HTTP/1.1 request over TCP (the CLI has no HTTP client).
    async fn http_get(url: &str) -> String {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap().to_owned();
        tokio::task::spawn_blocking(move || {
            let (host, path) = rest.split_once('/').unwrap();
            let mut stream = std::net::TcpStream::connect(host).unwrap();
            let request =
                format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            response
        })
        .await
        .unwrap()
    }
}
