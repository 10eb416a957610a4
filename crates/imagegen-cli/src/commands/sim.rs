//! `imagegen sim`: the simulator of both APIs in the foreground, until Ctrl-C.

use imagegen::sim::{FaultMix, SimConfig};
use serde_json::json;

use crate::args::SimArgs;
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(args: SimArgs, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let config = SimConfig::default()
        .with_port(args.port)
        .with_speed(args.speed);
    let config = FaultMix::new(args.fault_rate)
        .rules()
        .into_iter()
        .filter(|_| args.fault_rate > 0.0)
        .fold(config, SimConfig::with_fault);
    let sim = match imagegen::sim::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            out.error(format!("the simulator could not start: {e}"));
            return exit::OTHER;
        }
    };
    if out.json() {
        out.emit(&json!({
            "kolbo_base_url": sim.kolbo_base_url(),
            "koala_base_url": sim.koala_base_url(),
            "kolbo_api_key": sim.kolbo_api_key(),
            "koala_api_key": sim.koala_api_key(),
        }));
    } else {
        out.status(
            "Simulating",
            format!(
                "Kolbo and KoalaImages on {} (images on {}); speed {}{}",
                sim.api_origin(),
                sim.cdn_origin(),
                args.speed,
                if args.fault_rate > 0.0 {
                    format!("; about {:.1} % of calls fail", args.fault_rate * 100.0)
                } else {
                    String::new()
                }
            ),
        );
        out.line(format!("KOLBO_BASE_URL={}", sim.kolbo_base_url()));
        out.line(format!("KOALA_BASE_URL={}", sim.koala_base_url()));
        out.line(format!("KOLBO_API_KEY={}", sim.kolbo_api_key()));
        out.line(format!("KOALA_API_KEY={}", sim.koala_api_key()));
        out.note("these are the simulator's test keys; export the four lines to point imagegen (or any client) at it. Ctrl-C stops it.");
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        out.error(format!("cannot wait for Ctrl-C: {e}"));
    }
    out.status(
        "Stopping",
        format!("after {} request(s)", sim.request_log().total()),
    );
    sim.shutdown().await;
    exit::OK
}
