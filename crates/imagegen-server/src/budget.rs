//! Spending limits in the ledger: the budget a caller draws on ([`budget_of`]: a gateway
//! key's budget for the current period, or the budget configured for callers without a
//! key), and a [`Hold`] on it for one request.
//!
//! The worst case is held before anything is sent, in one atomic step of the ledger, so
//! no number of concurrent requests (or gateways on one PostgreSQL ledger) can pass the
//! limit: [`reserve`] holds the dearest capable candidate's price, or, when that does not
//! fit, the cheapest one's, and caps the request at what it holds, so the router never
//! sends anything dearer. Nothing fits: 402 `budget_exceeded`. After the run the hold
//! settles at what was charged (including charges that may have happened), or is
//! released when nothing was.
//!
//! A generation's hold ([`reserve_for`]) is leased to this gateway like its jobs, and
//! names the generation: if the gateway dies holding it, another resolves it once the
//! lease runs out, from what the ledger knows was sent ([`crate::leases`]).

use std::sync::Arc;

use axum::http::StatusCode;
use imagegen::{CallOptions, Client, Credits, GenerationRequest, RouteError};
use imagegen_ledger::{Ledger, LedgerError, ReservationId};

use crate::auth::Caller;
use crate::error_map::api_error;
use crate::openai_error::{ApiError, QUOTA};
use crate::state::AppState;

/// The ledger budget `caller` draws on at `now_ms`: its key's for the current period
/// (created with the key's limit when missing), or `local` for a caller without a key.
pub(crate) async fn budget_of(
    caller: &Caller,
    ledger: &dyn Ledger,
    now_ms: u64,
    local: Option<&str>,
) -> Result<Option<String>, ApiError> {
    match caller {
        Caller::Local => Ok(local.map(str::to_owned)),
        Caller::Key(record) => match ledger.ensure_key_budget(record, now_ms).await {
            Ok(Some(name)) => Ok(Some(name)),
            Ok(None) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                crate::openai_error::AUTHENTICATION,
                "This API key was revoked.",
            )
            .code("invalid_api_key")),
            Err(e) => Err(ledger_error(&e)),
        },
    }
}

/// Credits held on a budget for one request; settle or release it after the run. One
/// dropped without either (a task that panicked) settles in full, so a limit is never
/// passed.
#[derive(Debug)]
pub(crate) struct Hold {
    held: Option<Held>,
}

#[derive(Debug)]
struct Held {
    ledger: Arc<dyn Ledger>,
    id: ReservationId,
    budget: String,
    amount: Credits,
}

/// Holds the worst case of `request` on `budget` and caps `call` at it; see the
/// [module docs](self). The hold has no lease: only this process ends it (the stdio MCP
/// server's, which has no keeper to renew one).
pub(crate) async fn reserve(
    ledger: &Arc<dyn Ledger>,
    client: &Client,
    budget: &str,
    request: &GenerationRequest,
    call: &mut CallOptions,
) -> Result<Hold, ApiError> {
    reserve_with(ledger, client, budget, request, call, None).await
}

/// As [`reserve`], for gateway generation `generation_id` (an API request's, or a
/// `generate_image` call's on `/mcp`): the hold is leased to this gateway and names the
/// generation, so if the gateway dies another resolves it from what was sent
/// ([`crate::leases`]). The generation must be recorded with its request key before
/// anything is sent for it.
pub(crate) async fn reserve_for(
    state: &AppState,
    generation_id: &str,
    budget: &str,
    request: &GenerationRequest,
    call: &mut CallOptions,
) -> Result<Hold, ApiError> {
    let leased = Some((generation_id, state));
    reserve_with(&state.ledger, &state.client, budget, request, call, leased).await
}

async fn reserve_with(
    ledger: &Arc<dyn Ledger>,
    client: &Client,
    budget: &str,
    request: &GenerationRequest,
    call: &mut CallOptions,
    leased: Option<(&str, &AppState)>,
) -> Result<Hold, ApiError> {
    let estimate = client
        .estimate_with(request, call)
        .await
        .map_err(|e| api_error(&e))?;
    let totals: Vec<Credits> = estimate
        .eligible()
        .filter_map(|c| c.total_credits)
        .collect();
    let (Some(cheapest), Some(dearest)) =
        (totals.iter().min().copied(), totals.iter().max().copied())
    else {
        // Nothing can take it: the same answer the router would give, nothing held.
        let reasons = estimate
            .candidates
            .iter()
            .map(|c| {
                let model = c.model.as_ref().map_or("auto", |m| m.as_str());
                format!("{}/{model}: {}", c.provider, c.reason)
            })
            .collect();
        let error = imagegen::Error::Route {
            error: Box::new(RouteError::NoEligibleCandidate {
                reasons,
                estimate: Box::new(estimate),
            }),
            partial: None,
        };
        return Err(api_error(&error));
    };
    let mut refusal = None;
    let amounts = if cheapest == dearest {
        vec![dearest]
    } else {
        vec![dearest, cheapest]
    };
    for amount in amounts {
        let held = match leased {
            Some((generation, state)) => {
                let lease = crate::leases::lease(state);
                ledger
                    .reserve_leased(budget, amount, generation, &lease)
                    .await
            }
            None => ledger.reserve(budget, amount).await,
        };
        match held {
            Ok(id) => {
                let cap = call
                    .max_credits_per_request
                    .map_or(amount, |cap| cap.min(amount));
                call.max_credits_per_request = Some(cap);
                tracing::debug!(%budget, %amount, "reserved");
                return Ok(Hold {
                    held: Some(Held {
                        ledger: Arc::clone(ledger),
                        id,
                        budget: budget.to_owned(),
                        amount,
                    }),
                });
            }
            Err(error @ LedgerError::BudgetExceeded { .. }) => refusal = Some(error),
            Err(error) => return Err(ledger_error(&error)),
        }
    }
    let message = refusal.map_or_else(
        || format!("budget `{budget}` cannot cover this request"),
        |e| e.to_string(),
    );
    Err(ApiError::new(StatusCode::PAYMENT_REQUIRED, QUOTA, message)
        .code("budget_exceeded")
        .no_retry())
}

impl Hold {
    /// Ends the hold after a run that charged `charged`: settled at that (what was
    /// spent is spent, even above the hold), or released when nothing was charged and no
    /// job is left in doubt.
    pub(crate) async fn settle(mut self, charged: Credits, jobs_open: bool) {
        let Some(held) = self.held.take() else {
            return;
        };
        if charged.is_zero() && !jobs_open {
            if let Err(e) = held.ledger.release(held.id).await {
                tracing::error!(budget = %held.budget, error = %e, "a reservation could not be released");
            }
            return;
        }
        match held.ledger.settle(held.id, charged).await {
            Ok(settlement) => {
                if let Some(over) = settlement.overshoot {
                    tracing::warn!(budget = %held.budget, held = %held.amount, %over, "charged more than was held");
                }
            }
            Err(e) => {
                tracing::error!(budget = %held.budget, error = %e, "a reservation could not be settled");
            }
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        tracing::warn!(budget = %held.budget, amount = %held.amount, "a request ended without settling its reservation: settling it in full");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = held.ledger.settle(held.id, held.amount).await {
                    tracing::error!(budget = %held.budget, error = %e, "a reservation could not be settled");
                }
            });
        }
    }
}

fn ledger_error(error: &LedgerError) -> ApiError {
    ApiError::internal(format!("the ledger: {error}")).code("ledger_error")
}
