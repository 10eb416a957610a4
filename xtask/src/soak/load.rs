//! The soak's load generator: `generations` requests to `POST /v1/images/generations`,
//! `concurrency` at a time, each with its own `Idempotency-Key`, sent to a live gateway and
//! retried as the official `openai` clients retry: on a lost connection, 408, 409, 429 and
//! 5xx, unless the answer says `x-should-retry: false` (it may have been charged), after a
//! short pause, on whichever gateway is up. Every request ends with a final answer or at
//! the deadline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Keys, Pool};

/// What to send.
#[derive(Debug, Clone)]
pub(crate) struct LoadPlan {
    pub(crate) generations: usize,
    pub(crate) concurrency: usize,
    pub(crate) keys: Keys,
    /// Every this many requests goes with the capped key.
    pub(crate) capped_every: usize,
    pub(crate) deadline: Instant,
    /// In every prompt.
    pub(crate) tag: String,
}

/// The models asked for in turn (`None`: the router picks the cheapest).
const MODELS: [Option<&str>; 3] = [Some("kolbo/z-image/turbo"), Some("koala/gpt-image-2"), None];
/// The model of the capped key's requests (one provider, so its credits add up).
const CAPPED_MODEL: &str = "koala/gpt-image-2";
/// One attempt's limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(90);

/// One request's final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 200 with this many images.
    Images(usize),
    /// 402 `budget_exceeded`.
    BudgetRefused,
    /// Another final answer: status and code.
    Failed(u16, String),
    /// No final answer before the deadline.
    Unanswered,
}

/// What the load generator saw.
#[derive(Debug, Default)]
pub(crate) struct LoadReport {
    pub(crate) succeeded: usize,
    pub(crate) images: usize,
    pub(crate) budget_refused: usize,
    /// Final failures by `status code`.
    pub(crate) failed: BTreeMap<String, usize>,
    pub(crate) unanswered: usize,
    pub(crate) attempts: usize,
    pub(crate) taken_over: usize,
    pub(crate) latency_p50: f64,
    pub(crate) latency_p99: f64,
    pub(crate) latency_max: f64,
    /// Each request's answer, by index.
    pub(crate) answers: Vec<Answer>,
}

/// The prompt of request `i`.
pub(crate) fn prompt(tag: &str, i: usize) -> String {
    format!("{tag}-{i:06} a lighthouse on a cliff at dusk")
}

/// Whether request `i` goes with the capped key.
pub(crate) fn is_capped(plan_every: usize, i: usize) -> bool {
    plan_every > 0 && i % plan_every == plan_every - 1
}

/// Sends every request; `answered` counts final answers as they come.
pub(crate) async fn run(plan: LoadPlan, pool: Arc<Pool>, answered: Arc<AtomicUsize>) -> LoadReport {
    let http = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .pool_max_idle_per_host(256)
        .build()
    {
        Ok(http) => http,
        Err(_) => return LoadReport::default(),
    };
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..plan.concurrency.min(plan.generations))
        .map(|worker| {
            let (http, plan, pool) = (http.clone(), Arc::clone(&plan), Arc::clone(&pool));
            let (next, answered) = (Arc::clone(&next), Arc::clone(&answered));
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= plan.generations {
                        break;
                    }
                    let started = Instant::now();
                    let (answer, attempts, taken_over) =
                        request(&http, &plan, &pool, i, worker).await;
                    answered.fetch_add(1, Ordering::Relaxed);
                    mine.push((i, answer, attempts, taken_over, started.elapsed()));
                }
                mine
            })
        })
        .collect();
    let mut report = LoadReport {
        answers: vec![Answer::Unanswered; plan.generations],
        ..LoadReport::default()
    };
    let mut latencies = Vec::new();
    for worker in workers {
        let Ok(results) = worker.await else { continue };
        for (i, answer, attempts, taken_over, took) in results {
            report.attempts += attempts;
            report.taken_over += usize::from(taken_over);
            match &answer {
                Answer::Images(n) => {
                    report.succeeded += 1;
                    report.images += n;
                    latencies.push(took.as_secs_f64());
                }
                Answer::BudgetRefused => report.budget_refused += 1,
                Answer::Failed(status, code) => {
                    *report.failed.entry(format!("{status} {code}")).or_default() += 1;
                }
                Answer::Unanswered => {}
            }
            report.answers[i] = answer;
        }
    }
    report.unanswered = report
        .answers
        .iter()
        .filter(|a| **a == Answer::Unanswered)
        .count();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    report.latency_p50 = at(0.5);
    report.latency_p99 = at(0.99);
    report.latency_max = latencies.last().copied().unwrap_or(0.0);
    report
}

/// Request `i` until a final answer or the deadline: the answer, the attempts, and
/// whether the answer said it was taken over.
async fn request(
    http: &reqwest::Client,
    plan: &LoadPlan,
    pool: &Pool,
    i: usize,
    worker: usize,
) -> (Answer, usize, bool) {
    let capped = is_capped(plan.capped_every, i);
    let key = if capped {
        &plan.keys.capped
    } else {
        &plan.keys.open[i % 2]
    };
    let mut body = json!({"prompt": prompt(&plan.tag, i), "size": "1024x1024"});
    let model = if capped {
        Some(CAPPED_MODEL)
    } else {
        MODELS[i % MODELS.len()]
    };
    if let Some(model) = model {
        body["model"] = json!(model);
    }
    if i % 7 == 3 && !capped {
        body["n"] = json!(2);
    }
    let idempotency = format!("{}-{i}", plan.tag);
    let mut attempts = 0;
    let mut pause = Duration::from_millis(100);
    loop {
        if Instant::now() >= plan.deadline {
            return (Answer::Unanswered, attempts, false);
        }
        let Some(url) = pool.url(worker + attempts) else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        attempts += 1;
        let sent = http
            .post(format!("{url}/v1/images/generations"))
            .bearer_auth(key)
            .header("Idempotency-Key", &idempotency)
            .json(&body)
            .send()
            .await;
        let retry = match sent {
            Err(_) => true,
            Ok(response) => {
                let status = response.status().as_u16();
                let should_retry = response
                    .headers()
                    .get("x-should-retry")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body: Value = match response.json().await {
                    Ok(body) => body,
                    // The body was cut (the gateway died while answering): ask again.
                    Err(_) => Value::Null,
                };
                let taken_over = body["imagegen"]["taken_over"] == true;
                let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
                match status {
                    200 if body["data"].is_array() => {
                        let n = body["data"].as_array().map_or(0, Vec::len);
                        return (Answer::Images(n), attempts, taken_over);
                    }
                    402 if code == "budget_exceeded" => {
                        return (Answer::BudgetRefused, attempts, taken_over);
                    }
                    408 | 409 | 429 | 500..=599 if should_retry.as_deref() != Some("false") => true,
                    200 => true,
                    _ => return (Answer::Failed(status, code), attempts, taken_over),
                }
            }
        };
        if retry {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tenth_request_is_capped() {
        let capped: Vec<usize> = (0..30).filter(|i| is_capped(10, *i)).collect();
        assert_eq!(capped, [9, 19, 29]);
        assert!(prompt("soak-13", 42).starts_with("soak-13-000042 "));
    }
}
