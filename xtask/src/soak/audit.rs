//! The soak's audit: the provider's side (the simulator's charge book: every generation it
//! charged for, whether it gave the credits back, whether its answer was lost on the way)
//! against ours (the ledger's jobs and the image files they name).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use imagegen_ledger::{HistoryEntry, HistoryQuery, JobState, Ledger};
use imagegen_sim::{Charge, SimHandle};

use super::load::{Answer, LoadReport, is_capped};

/// What the audit found.
#[derive(Debug, Default)]
pub(crate) struct Audit {
    /// Charged and answered (id known to the client), and not in the ledger.
    pub(crate) unknown_to_ledger: usize,
    /// In the ledger, still open, though the provider made its images (charge kept).
    pub(crate) unsaved: usize,
    /// Requests charged twice or more (see the module docs of `soak`).
    pub(crate) double_charged: usize,
    /// Credits the provider kept for the capped key's requests.
    pub(crate) capped_charged: f64,
    /// Those credits over the capped key's budget.
    pub(crate) overshoot_credits: f64,
    pub(crate) charges_kept: usize,
    pub(crate) charges_refunded: usize,
    /// Charges whose answer was lost on the way.
    pub(crate) answer_lost: usize,
    /// Of those, the ones the ledger knows anyway (the id salvaged from a cut answer).
    pub(crate) answer_lost_recovered: usize,
    /// KoalaImages answers with no image (charged; no id to record).
    pub(crate) empty_answers: usize,
    pub(crate) jobs_done: usize,
    pub(crate) jobs_failed: usize,
    pub(crate) jobs_open: usize,
    /// Open at the end, and the provider failed them (gave the credits back).
    pub(crate) open_provider_failed: usize,
    pub(crate) files_checked: usize,
    pub(crate) files_missing: usize,
    /// Charged and answered, not in the ledger, and the request was answered "may have
    /// been charged": its gateway was killed between the provider's answer and the
    /// ledger's record.
    pub(crate) lost_in_kill: usize,
    /// What missed a goal, one line each (the first 20).
    pub(crate) details: Vec<String>,
}

impl Audit {
    /// Lost jobs: the goal's figure.
    pub(crate) fn lost_jobs(&self) -> usize {
        self.unknown_to_ledger + self.unsaved + self.files_missing
    }
}

/// How many of the run's jobs are open in the ledger.
pub(crate) async fn open_jobs(ledger: &dyn Ledger, tag: &str) -> usize {
    ledger.open_jobs().await.map_or(0, |open| {
        open.iter().filter(|j| j.prompt.contains(tag)).count()
    })
}

/// The run's jobs in the ledger.
async fn jobs(ledger: &dyn Ledger, tag: &str) -> Result<Vec<HistoryEntry>, String> {
    ledger
        .history(&HistoryQuery::newest(u32::MAX).matching(tag))
        .await
        .map_err(|e| format!("the ledger's history: {e}"))
}

/// The run's charges, by provider and job id.
fn charges(sim: &SimHandle, tag: &str) -> Vec<Charge> {
    sim.charges()
        .into_iter()
        .filter(|c| c.prompt.contains(tag))
        .collect()
}

/// Waits, at most `limit`, until every job of the run in the ledger has ended, except
/// those the provider failed (a KoalaImages image that failed answers 500 for ever, and
/// its job stays open for `imagegen resume`).
pub(crate) async fn settle(ledger: &dyn Ledger, sim: &SimHandle, tag: &str, limit: Duration) {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        let Ok(open) = ledger.open_jobs().await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let now = sim.clock().now();
        let failed: HashMap<(String, String), bool> = charges(sim, tag)
            .into_iter()
            .map(|c| {
                (
                    (c.provider.to_owned(), c.job_id.clone()),
                    c.is_refunded(now),
                )
            })
            .collect();
        let waiting = open
            .iter()
            .filter(|j| j.prompt.contains(tag))
            .filter(|j| {
                failed.get(&(j.provider.as_str().to_owned(), j.job_id.clone())) != Some(&true)
            })
            .count();
        if waiting == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The request index in a prompt of the run (`<tag>-000042 …`).
fn index(tag: &str, prompt: &str) -> Option<usize> {
    let at = prompt.find(tag)? + tag.len() + 1;
    prompt.get(at..at + 6)?.parse().ok()
}

/// The audit.
pub(crate) async fn audit(
    ledger: &dyn Ledger,
    sim: &SimHandle,
    load: &LoadReport,
    tag: &str,
    capped_budget: u32,
    dir: &Path,
) -> Result<Audit, String> {
    let now = sim.clock().now();
    let charges = charges(sim, tag);
    let jobs = jobs(ledger, tag).await?;
    let by_id: HashMap<(String, String), &HistoryEntry> = jobs
        .iter()
        .map(|j| ((j.provider.as_str().to_owned(), j.job_id.clone()), j))
        .collect();
    let mut audit = Audit::default();
    for job in &jobs {
        match job.state {
            JobState::Done => {
                audit.jobs_done += 1;
                for file in &job.files {
                    audit.files_checked += 1;
                    let path = if file.is_absolute() {
                        file.clone()
                    } else {
                        dir.join(file)
                    };
                    if !std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
                        audit.files_missing += 1;
                    }
                }
            }
            JobState::Failed => audit.jobs_failed += 1,
            _ => audit.jobs_open += 1,
        }
    }
    // Kept charges per request that did not end as a failed job.
    let mut live_charges: BTreeMap<usize, usize> = BTreeMap::new();
    for charge in &charges {
        let refunded = charge.is_refunded(now);
        if refunded {
            audit.charges_refunded += 1;
        } else {
            audit.charges_kept += 1;
        }
        if charge.answer_lost {
            audit.answer_lost += 1;
        }
        let entry = by_id.get(&(charge.provider.to_owned(), charge.job_id.clone()));
        match entry {
            Some(job) => {
                audit.answer_lost_recovered += usize::from(charge.answer_lost);
                if job.state == JobState::Accepted {
                    if refunded {
                        audit.open_provider_failed += 1;
                    } else {
                        audit.unsaved += 1;
                        note(
                            &mut audit.details,
                            format!(
                                "{} job {} of {:?} left open with its images made: {:?}",
                                charge.provider, charge.job_id, charge.prompt, job.error
                            ),
                        );
                    }
                }
            }
            None if charge.job_id.is_empty() => audit.empty_answers += 1,
            None if charge.answer_lost => {}
            None => {
                let answer = index(tag, &charge.prompt).and_then(|i| load.answers.get(i));
                if matches!(answer, Some(Answer::Failed(502, _))) {
                    audit.lost_in_kill += 1;
                } else {
                    audit.unknown_to_ledger += 1;
                    note(
                        &mut audit.details,
                        format!(
                            "{} job {} of {:?} charged {} credits, not in the ledger; the request's answer: {answer:?}",
                            charge.provider, charge.job_id, charge.prompt, charge.credits
                        ),
                    );
                }
            }
        }
        let failed_job = entry.is_some_and(|j| j.state == JobState::Failed);
        if let Some(i) = index(tag, &charge.prompt) {
            if !refunded && !failed_job {
                *live_charges.entry(i).or_default() += 1;
            }
            if !refunded && is_capped(super::CAPPED_EVERY, i) {
                audit.capped_charged += charge.credits;
            }
        }
    }
    for (i, n) in &live_charges {
        if *n > 1 {
            audit.double_charged += 1;
            let charged: Vec<String> = charges
                .iter()
                .filter(|c| index(tag, &c.prompt) == Some(*i) && !c.is_refunded(now))
                .map(|c| {
                    let state = by_id
                        .get(&(c.provider.to_owned(), c.job_id.clone()))
                        .map(|j| format!("{:?}", j.state));
                    format!(
                        "{} {} lost={} ledger={state:?}",
                        c.provider, c.job_id, c.answer_lost
                    )
                })
                .collect();
            note(
                &mut audit.details,
                format!(
                    "request {i} charged {n} times: {}; its answer: {:?}",
                    charged.join(", "),
                    load.answers.get(*i)
                ),
            );
        }
    }
    audit.overshoot_credits = (audit.capped_charged - f64::from(capped_budget)).max(0.0);
    Ok(audit)
}

/// Keeps the first 20 lines.
fn note(details: &mut Vec<String>, line: String) {
    if details.len() < 20 {
        details.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_request_index_from_a_prompt() {
        assert_eq!(index("soak-13", "soak-13-000042 a lighthouse"), Some(42));
        assert_eq!(index("soak-13", "a cat"), None);
        assert_eq!(index("soak-13", "soak-13-12"), None);
    }
}
