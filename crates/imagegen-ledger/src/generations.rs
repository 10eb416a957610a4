//! Background generations (`POST /v1/generations` on the gateway): their state and answer
//! in the ledger, so any instance sharing it can answer `GET /v1/generations/{id}`.
//!
//! The instance running one holds a [`Lease`] on it, renewed with its jobs'
//! ([`Ledger::renew_leases`](crate::Ledger::renew_leases)). When that instance dies,
//! another claims it ([`Ledger::claim_expired_generations`](crate::Ledger::claim_expired_generations)),
//! finishes its jobs and records its answer.

use serde::Serialize;

use crate::Lease;

/// Where a background generation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GenerationState {
    /// Still running.
    Running,
    /// Done, with a successful answer.
    Succeeded,
    /// Done, with an error answer.
    Failed,
}

impl GenerationState {
    /// As stored and shown: `running`, `succeeded`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A background generation, as [`Ledger::create_generation`](crate::Ledger::create_generation)
/// records it when it starts.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
/// use imagegen_ledger::{GenerationState, Lease, NewGeneration};
/// let lease = Lease::new("gw-1", 1_767_225_630_000);
/// ledger.create_generation(&NewGeneration::new("req_1", "key:7", lease)).await?;
/// ledger.finish_generation("req_1", 200, r#"{"data":[]}"#).await?;
/// let found = ledger.generation("req_1").await?.expect("recorded");
/// assert_eq!(found.state, GenerationState::Succeeded);
/// assert_eq!(found.status, Some(200));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewGeneration {
    /// Its id (the gateway's request id).
    pub id: String,
    /// Who may read it (`local`, or `key:<id>`).
    pub caller: String,
    /// The key of its request (its jobs' `requests.request_key`), once known.
    pub request_key: Option<String>,
    /// The instance running it.
    pub lease: Lease,
}

impl NewGeneration {
    /// Generation `id`, readable by `caller`, run under `lease`.
    pub fn new(id: impl Into<String>, caller: impl Into<String>, lease: Lease) -> Self {
        Self {
            id: id.into(),
            caller: caller.into(),
            request_key: None,
            lease,
        }
    }

    /// The key of its request, which finds its jobs.
    #[must_use]
    pub fn with_request_key(mut self, key: impl Into<String>) -> Self {
        self.request_key = Some(key.into());
        self
    }
}

/// A background generation, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GenerationRecord {
    /// Its id.
    pub id: String,
    /// Who may read it.
    pub caller: String,
    /// Where it stands.
    pub state: GenerationState,
    /// The key of its request.
    pub request_key: Option<String>,
    /// Its latest progress (JSON, opaque to the ledger).
    pub progress: Option<String>,
    /// The HTTP status of its answer, once done.
    pub status: Option<u16>,
    /// Its answer (JSON, opaque to the ledger), once done.
    pub response: Option<String>,
    /// Who runs it, and until when.
    pub lease: Lease,
    /// When it started.
    pub created_at_ms: u64,
    /// When its state or progress last changed.
    pub updated_at_ms: u64,
    /// When it finished.
    pub finished_at_ms: Option<u64>,
}
