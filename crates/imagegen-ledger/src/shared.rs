// The ledger's operations, written once for both databases.
//
// This file is `include!`d by `sqlite.rs` and `postgres.rs`, each of which first defines
// `Db` (the sqlx database), `DbConn`, `DbRow`, `Store` (its ledger type, with `pool`,
// `writer`, `url` and `clock` fields), `STORE_NAME`, `BACKEND`, `begin_write` (a
// `WriteTx`, a transaction that may read then write: `BEGIN IMMEDIATE` on SQLite, a plain
// `BEGIN` on PostgreSQL, where every read-modify-write below starts with a row-locking
// UPDATE) and `write_conn` (a `WriteConn`, the connection for one statement). The SQL is
// portable: `$N` parameters, `RETURNING`, `ON CONFLICT`, integer arithmetic only.

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use imagegen_core::provider::unix_millis;
use imagegen_core::{Credits, JobHandle, ModelId, ProviderId};
use sqlx::Row;

use crate::generations::{GenerationRecord, GenerationState, NewGeneration};
use crate::holds::{HoldOutcome, HoldResolution};
use crate::image_query::{DeletedImage, ImageEntry, ImageKey, ImageQuery};
use crate::lease::Lease;
use crate::rate_slots::{RateSlot, RateSlotId};
use crate::api_keys::{
    ApiKeyId, ApiKeyRecord, NewApiKey, api_key_hash, is_well_formed, key_budget_name,
};
use crate::convert::{
    DAY_MS, contains_pattern, credits, int, micros, path, path_text, uint, uint32, without_query,
};
use crate::error::LedgerError;
use crate::idempotency::IdempotencyBegin;
use crate::types::{
    AcceptedJob, AccountHash, Backend, BudgetStatus, Cooldown, Finished, HistoryEntry,
    HistoryQuery, ImageRecord, ImportReport, JobFinish, JobRecord, JobResult, JobState,
    JournalEntry, JournalOutcome, NewImage, NewRequest, RequestId, ReservationId, ReservationState,
    SavedJob, Settlement, SpendGroup, SpendQuery, SpendRow,
};
use crate::{Ledger, LedgerError as E};

/// The columns `job_from_row` reads, from `jobs AS j`.
const JOB_COLUMNS: &str = "j.provider, j.job_id, j.model, j.state, j.handle_json, \
     j.plan_json, j.request_id, j.prompt, j.out_dir, j.reserved_micros, j.charged_micros, \
     j.accepted_at_ms, j.finished_at_ms, j.error, j.budget, j.reservation_id, \
     j.lease_owner, j.lease_until_ms, j.api_key_id";

/// The columns `generation_from_row` reads, from `generations`.
const GENERATION_COLUMNS: &str = "id, caller, state, request_key, progress, status, response, \
     lease_owner, lease_until_ms, created_at_ms, updated_at_ms, finished_at_ms";

/// The columns `image_from_row` reads, from `images`.
const IMAGE_COLUMNS: &str = "provider, job_id, image_index, path, sha256, bytes, mime, \
     width, height, alt_text, source_url, created_at_ms";

/// [`IMAGE_COLUMNS`] from `images AS i`.
const IMAGE_COLUMNS_I: &str = "i.provider, i.job_id, i.image_index, i.path, i.sha256, \
     i.bytes, i.mime, i.width, i.height, i.alt_text, i.source_url, i.created_at_ms";

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the connect options: they hold the password.
        f.debug_struct(STORE_NAME)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Store {
    fn now_ms(&self) -> Result<i64, LedgerError> {
        int(unix_millis(self.clock.wall_time()), "the time")
    }

    async fn write(&self, op: &'static str) -> Result<WriteTx, LedgerError> {
        begin_write(&self.writer).await.map_err(E::db(op))
    }

    /// A read connection.
    async fn read(&self, op: &'static str) -> Result<ReadConn, LedgerError> {
        read_conn(&self.readers).await.map_err(E::db(op))
    }

    /// The write connection, for one statement in autocommit.
    async fn conn(&self, op: &'static str) -> Result<WriteConn, LedgerError> {
        write_conn(&self.writer).await.map_err(E::db(op))
    }

    /// Each of `jobs` with its images, by index.
    async fn with_images(
        &self,
        jobs: Vec<JobRecord>,
        op: &'static str,
    ) -> Result<Vec<SavedJob>, LedgerError> {
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM images WHERE provider = $1 AND job_id = $2 \
             ORDER BY image_index"
        );
        let mut found = Vec::with_capacity(jobs.len());
        for job in jobs {
            let images = sqlx::query(&sql)
                .bind(job.provider.as_str())
                .bind(&job.job_id)
                .fetch_all(&mut *self.read(op).await?)
                .await
                .map_err(E::db(op))?
                .iter()
                .map(image_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            found.push(SavedJob { job, images });
        }
        Ok(found)
    }
}

/// Reads column `column` of `row`.
fn get<'r, T>(row: &'r DbRow, column: &str) -> Result<T, LedgerError>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    row.try_get(column).map_err(E::db("read a stored row"))
}

fn get_u64(row: &DbRow, column: &str) -> Result<u64, LedgerError> {
    uint(get::<i64>(row, column)?, column)
}

fn get_opt_u64(row: &DbRow, column: &str) -> Result<Option<u64>, LedgerError> {
    get::<Option<i64>>(row, column)?
        .map(|v| uint(v, column))
        .transpose()
}

fn get_opt_u32(row: &DbRow, column: &str) -> Result<Option<u32>, LedgerError> {
    get::<Option<i64>>(row, column)?
        .map(|v| uint32(v, column))
        .transpose()
}

fn get_credits(row: &DbRow, column: &str) -> Result<Credits, LedgerError> {
    credits(get::<i64>(row, column)?, column)
}

fn get_opt_credits(row: &DbRow, column: &str) -> Result<Option<Credits>, LedgerError> {
    get::<Option<i64>>(row, column)?
        .map(|v| credits(v, column))
        .transpose()
}

fn get_job_state(row: &DbRow, column: &str) -> Result<JobState, LedgerError> {
    let text: String = get(row, column)?;
    JobState::parse(&text).ok_or(E::Corrupt {
        what: format!("job state `{text}`"),
    })
}

fn get_reservation_state(row: &DbRow, column: &str) -> Result<ReservationState, LedgerError> {
    let text: String = get(row, column)?;
    ReservationState::parse(&text).ok_or(E::Corrupt {
        what: format!("reservation state `{text}`"),
    })
}

fn job_from_row(row: &DbRow) -> Result<JobRecord, LedgerError> {
    let provider = ProviderId::new(get::<String>(row, "provider")?);
    let job_id: String = get(row, "job_id")?;
    let handle_json: String = get(row, "handle_json")?;
    let handle: JobHandle =
        serde_json::from_str(&handle_json).map_err(|source| E::CorruptJson {
            what: format!("handle of job {provider}/{job_id}"),
            source,
        })?;
    Ok(JobRecord {
        model: get::<Option<String>>(row, "model")?.map(ModelId::new),
        state: get_job_state(row, "state")?,
        handle,
        plan_json: get(row, "plan_json")?,
        request: get_opt_u64(row, "request_id")?.map(RequestId),
        prompt: get(row, "prompt")?,
        out_dir: path(get(row, "out_dir")?),
        reserved: get_credits(row, "reserved_micros")?,
        charged: get_opt_credits(row, "charged_micros")?,
        accepted_at_ms: get_u64(row, "accepted_at_ms")?,
        finished_at_ms: get_opt_u64(row, "finished_at_ms")?,
        error: get(row, "error")?,
        budget: get(row, "budget")?,
        reservation: get_opt_u64(row, "reservation_id")?.map(ReservationId),
        lease: match (
            get::<Option<String>>(row, "lease_owner")?,
            get_opt_u64(row, "lease_until_ms")?,
        ) {
            (Some(owner), Some(until_ms)) => Some(Lease::new(owner, until_ms)),
            _ => None,
        },
        api_key: get_opt_u64(row, "api_key_id")?.map(ApiKeyId),
        provider,
        job_id,
    })
}

/// The claim of up to `$4` rows of `table` still `open` whose lease (held by another
/// than `$1`) ran out by `$3`, oldest by `age` first, for `$1` until `$2`; returns their
/// ids. The outer condition is checked again on the latest row after PostgreSQL's row
/// lock, so of two instances claiming at once, one gets each row; SQLite's write lock
/// lets one claimer in at a time.
fn claim_sql(table: &str, open: &str, age: &str) -> String {
    let expired = format!(
        "state = '{open}' AND lease_owner IS NOT NULL AND lease_owner <> $1 \
         AND lease_until_ms <= $3"
    );
    format!(
        "UPDATE {table} SET lease_owner = $1, lease_until_ms = $2 \
         WHERE id IN (SELECT id FROM {table} WHERE {expired} ORDER BY {age}, id LIMIT $4) \
         AND {expired} RETURNING id"
    )
}

fn generation_from_row(row: &DbRow) -> Result<GenerationRecord, LedgerError> {
    let state: String = get(row, "state")?;
    Ok(GenerationRecord {
        id: get(row, "id")?,
        caller: get(row, "caller")?,
        state: GenerationState::parse(&state).ok_or(E::Corrupt {
            what: format!("generation state `{state}`"),
        })?,
        request_key: get(row, "request_key")?,
        progress: get(row, "progress")?,
        status: get::<Option<i64>>(row, "status")?
            .map(|s| u16::try_from(s).map_err(|_| E::Corrupt {
                what: format!("generation status {s}"),
            }))
            .transpose()?,
        response: get(row, "response")?,
        lease: Lease::new(
            get::<String>(row, "lease_owner")?,
            get_u64(row, "lease_until_ms")?,
        ),
        created_at_ms: get_u64(row, "created_at_ms")?,
        updated_at_ms: get_u64(row, "updated_at_ms")?,
        finished_at_ms: get_opt_u64(row, "finished_at_ms")?,
    })
}

fn image_from_row(row: &DbRow) -> Result<ImageRecord, LedgerError> {
    Ok(ImageRecord {
        provider: ProviderId::new(get::<String>(row, "provider")?),
        job_id: get(row, "job_id")?,
        index: uint32(get::<i64>(row, "image_index")?, "image_index")?,
        path: path(get(row, "path")?),
        sha256: get(row, "sha256")?,
        bytes: get_opt_u64(row, "bytes")?,
        mime: get(row, "mime")?,
        width: get_opt_u32(row, "width")?,
        height: get_opt_u32(row, "height")?,
        alt_text: get(row, "alt_text")?,
        source_url: get(row, "source_url")?,
        created_at_ms: get_u64(row, "created_at_ms")?,
    })
}

fn budget_from_row(row: &DbRow) -> Result<BudgetStatus, LedgerError> {
    let limit = get_opt_credits(row, "limit_micros")?;
    let spent = get_credits(row, "spent_micros")?;
    let reserved = get_credits(row, "reserved_micros")?;
    let committed = spent
        .checked_add(reserved)
        .unwrap_or(Credits::from_micros(u64::MAX));
    Ok(BudgetStatus {
        name: get(row, "name")?,
        limit,
        spent,
        reserved,
        remaining: limit.map(|limit| limit.saturating_sub(committed)),
        overshoot: get_credits(row, "overshoot_micros")?,
    })
}

/// A job as the `jobs` row binds it.
struct JobRow<'a> {
    provider: &'a str,
    job_id: &'a str,
    model: Option<&'a str>,
    images_requested: i64,
    handle_json: String,
    plan_json: Option<&'a str>,
    request_id: Option<i64>,
    prompt: &'a str,
    out_dir: &'a str,
    reserved: i64,
    charged: Option<i64>,
    accepted_at_ms: i64,
    budget: Option<&'a str>,
    reservation_id: Option<i64>,
    lease_owner: Option<&'a str>,
    lease_until_ms: Option<i64>,
    api_key_id: Option<i64>,
}

impl<'a> JobRow<'a> {
    fn of(job: &'a AcceptedJob) -> Result<Self, LedgerError> {
        let handle = &job.handle;
        Ok(Self {
            provider: handle.provider.as_str(),
            job_id: &handle.job_id,
            model: handle.model.as_ref().map(ModelId::as_str),
            images_requested: i64::from(handle.images_requested),
            handle_json: serde_json::to_string(handle).map_err(|source| E::Json {
                what: "a job handle",
                source,
            })?,
            plan_json: job.plan_json.as_deref(),
            request_id: job.request.map(|r| int(r.0, "a request id")).transpose()?,
            prompt: &job.prompt,
            out_dir: path_text(&job.out_dir)?,
            reserved: micros(job.reserved, "a job's reservation")?,
            charged: handle
                .credits_charged
                .map(|c| micros(c, "a job's charge"))
                .transpose()?,
            accepted_at_ms: int(handle.accepted_at_ms, "a job's acceptance time")?,
            budget: job.budget.as_deref(),
            reservation_id: job
                .reservation
                .map(|r| int(r.0, "a reservation id"))
                .transpose()?,
            lease_owner: job.lease.as_ref().map(|l| l.owner.as_str()),
            lease_until_ms: job
                .lease
                .as_ref()
                .map(|l| int(l.until_ms, "a lease's end"))
                .transpose()?,
            api_key_id: job.api_key.map(|k| int(k.0, "a key id")).transpose()?,
        })
    }
}

/// Inserts an accepted job unless (provider, job id) is there: whether it was inserted.
async fn insert_job(conn: &mut DbConn, job: &AcceptedJob) -> Result<bool, LedgerError> {
    let row = JobRow::of(job)?;
    let inserted = sqlx::query(
        "INSERT INTO jobs (provider, job_id, model, images_requested, state, handle_json, \
         plan_json, request_id, prompt, out_dir, reserved_micros, charged_micros, \
         accepted_at_ms, budget, reservation_id, lease_owner, lease_until_ms, api_key_id) \
         VALUES ($1, $2, $3, $4, 'accepted', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17) \
         ON CONFLICT (provider, job_id) DO NOTHING RETURNING id",
    )
    .bind(row.provider)
    .bind(row.job_id)
    .bind(row.model)
    .bind(row.images_requested)
    .bind(&row.handle_json)
    .bind(row.plan_json)
    .bind(row.request_id)
    .bind(row.prompt)
    .bind(row.out_dir)
    .bind(row.reserved)
    .bind(row.charged)
    .bind(row.accepted_at_ms)
    .bind(row.budget)
    .bind(row.reservation_id)
    .bind(row.lease_owner)
    .bind(row.lease_until_ms)
    .bind(row.api_key_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(E::db("record an accepted job"))?;
    Ok(inserted.is_some())
}

/// An image as the `images` row binds it.
struct ImageRow<'a> {
    index: i64,
    path: &'a str,
    bytes: Option<i64>,
    width: Option<i64>,
    height: Option<i64>,
    source_url: Option<String>,
    image: &'a NewImage,
}

impl<'a> ImageRow<'a> {
    fn of(image: &'a NewImage) -> Result<Self, LedgerError> {
        Ok(Self {
            index: i64::from(image.index),
            path: path_text(&image.path)?,
            bytes: image.bytes.map(|b| int(b, "an image's size")).transpose()?,
            width: image.width.map(i64::from),
            height: image.height.map(i64::from),
            source_url: image.source_url.as_deref().map(without_query),
            image,
        })
    }
}

/// Whether a request keyed `request_key` is recorded (its write-ahead row: it may have
/// been sent), read on `conn`.
async fn request_recorded_in(conn: &mut DbConn, request_key: &str) -> Result<bool, LedgerError> {
    let row = sqlx::query("SELECT 1 AS found FROM requests WHERE request_key = $1 LIMIT 1")
        .bind(request_key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(E::db("look up a request"))?;
    Ok(row.is_some())
}

/// Finishes an open job (and settles its held reservation) inside `conn`'s transaction.
/// `None` when there is no such job.
async fn finish_in(
    conn: &mut DbConn,
    provider: &ProviderId,
    job_id: &str,
    finish: &JobFinish,
    now_ms: i64,
) -> Result<Option<Finished>, LedgerError> {
    const OP: &str = "finish a job";
    let (state, error, images) = match &finish.result {
        JobResult::Done { images } => (JobState::Done, None, images.as_slice()),
        JobResult::Failed { error } => (JobState::Failed, Some(error.as_str()), &[][..]),
    };
    let images = images
        .iter()
        .map(ImageRow::of)
        .collect::<Result<Vec<_>, _>>()?;
    let finished_at_ms = int(finish.finished_at_ms, "a job's finish time")?;
    let charged = finish
        .charged
        .map(|c| micros(c, "a job's charge"))
        .transpose()?;
    let updated = sqlx::query(
        "UPDATE jobs SET state = $3, finished_at_ms = $4, error = $5, \
         charged_micros = COALESCE($6, charged_micros), model = COALESCE($7, model) \
         WHERE provider = $1 AND job_id = $2 AND state = 'accepted' \
         RETURNING charged_micros, reservation_id",
    )
    .bind(provider.as_str())
    .bind(job_id)
    .bind(state.as_str())
    .bind(finished_at_ms)
    .bind(error)
    .bind(charged)
    .bind(finish.model.as_ref().map(ModelId::as_str))
    .fetch_optional(&mut *conn)
    .await
    .map_err(E::db(OP))?;
    let Some(updated) = updated else {
        let existing = sqlx::query("SELECT state FROM jobs WHERE provider = $1 AND job_id = $2")
            .bind(provider.as_str())
            .bind(job_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(E::db(OP))?;
        return existing
            .map(|row| {
                Ok(Finished {
                    newly: false,
                    state: get_job_state(&row, "state")?,
                    settlement: None,
                })
            })
            .transpose();
    };
    for image in &images {
        sqlx::query(
            "INSERT INTO images (provider, job_id, image_index, path, sha256, bytes, mime, \
             width, height, alt_text, source_url, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (provider, job_id, image_index) DO NOTHING",
        )
        .bind(provider.as_str())
        .bind(job_id)
        .bind(image.index)
        .bind(image.path)
        .bind(image.image.sha256.as_deref())
        .bind(image.bytes)
        .bind(image.image.mime.as_deref())
        .bind(image.width)
        .bind(image.height)
        .bind(image.image.alt_text.as_deref())
        .bind(image.source_url.as_deref())
        .bind(finished_at_ms)
        .execute(&mut *conn)
        .await
        .map_err(E::db(OP))?;
    }
    let reservation: Option<i64> = get(&updated, "reservation_id")?;
    let settlement = match reservation {
        Some(id) => {
            let charged: Option<i64> = get(&updated, "charged_micros")?;
            close_reservation(&mut *conn, id, Close::Settle(charged), now_ms)
                .await?
                .ok()
        }
        None => None,
    };
    Ok(Some(Finished {
        newly: true,
        state,
        settlement,
    }))
}

/// How a reservation ends.
#[derive(Clone, Copy)]
enum Close {
    /// Spent this much (`None`: the whole reservation).
    Settle(Option<i64>),
    /// Nothing spent.
    Release,
}

/// Ends reservation `id` inside `conn`'s transaction. `Ok(Err(state))` when it is not
/// held (`None`: no such reservation): nothing is counted.
async fn close_reservation(
    conn: &mut DbConn,
    id: i64,
    close: Close,
    now_ms: i64,
) -> Result<Result<Settlement, Option<ReservationState>>, LedgerError> {
    const OP: &str = "end a reservation";
    let (state, charged) = match close {
        Close::Settle(charged) => (ReservationState::Settled, charged),
        Close::Release => (ReservationState::Released, None),
    };
    // A conditional UPDATE: of two concurrent closes of one reservation, the second finds
    // it no longer held (PostgreSQL re-checks the condition after the row lock).
    let closed = sqlx::query(
        "UPDATE reservations SET state = $2, closed_at_ms = $3, \
         charged_micros = CASE WHEN $2 = 'settled' THEN COALESCE($4, amount_micros) END \
         WHERE id = $1 AND state = 'held' RETURNING budget, amount_micros, charged_micros",
    )
    .bind(id)
    .bind(state.as_str())
    .bind(now_ms)
    .bind(charged)
    .fetch_optional(&mut *conn)
    .await
    .map_err(E::db(OP))?;
    let Some(closed) = closed else {
        let existing = sqlx::query("SELECT state FROM reservations WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(E::db(OP))?;
        return match existing {
            Some(row) => Ok(Err(Some(get_reservation_state(&row, "state")?))),
            None => Ok(Err(None)),
        };
    };
    let budget: String = get(&closed, "budget")?;
    let amount: i64 = get(&closed, "amount_micros")?;
    let charged: i64 = get::<Option<i64>>(&closed, "charged_micros")?.unwrap_or(0);
    let overshoot = charged.saturating_sub(amount).max(0);
    sqlx::query(
        "UPDATE budgets SET reserved_micros = reserved_micros - $2, \
         spent_micros = spent_micros + $3, overshoot_micros = overshoot_micros + $4, \
         updated_at_ms = $5 WHERE name = $1",
    )
    .bind(&budget)
    .bind(amount)
    .bind(charged)
    .bind(overshoot)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .map_err(E::db(OP))?;
    let settlement = Settlement {
        reserved: credits(amount, "amount_micros")?,
        charged: credits(charged, "charged_micros")?,
        overshoot: (overshoot > 0)
            .then(|| credits(overshoot, "overshoot"))
            .transpose()?,
    };
    if let Some(over) = settlement.overshoot {
        tracing::warn!(
            reservation = id,
            %budget,
            reserved = %settlement.reserved,
            charged = %settlement.charged,
            %over,
            "the provider charged more than was reserved; the whole charge is counted"
        );
    }
    Ok(Ok(settlement))
}

fn closed_error(id: ReservationId, state: Option<ReservationState>) -> LedgerError {
    match state {
        Some(state) => E::ReservationClosed { id, state },
        None => E::UnknownReservation(id),
    }
}

fn model_key(model: Option<&ModelId>) -> &str {
    model.map_or("", ModelId::as_str)
}

/// The columns `key_from_row` reads, from `api_keys` (never `key_hash`).
const KEY_COLUMNS: &str = "id, name, prefix, limit_micros, period, created_at_ms, revoked_at_ms";

/// A gateway key as stored, with nothing spent yet (see `with_usage`).
fn key_from_row(row: &DbRow) -> Result<ApiKeyRecord, LedgerError> {
    let period: String = get(row, "period")?;
    Ok(ApiKeyRecord {
        id: ApiKeyId(get_u64(row, "id")?),
        name: get(row, "name")?,
        prefix: get(row, "prefix")?,
        limit: get_opt_credits(row, "limit_micros")?,
        period: period.parse().map_err(|_| E::Corrupt {
            what: format!("gateway key period `{period}`"),
        })?,
        created_at_ms: get_u64(row, "created_at_ms")?,
        revoked_at_ms: get_opt_u64(row, "revoked_at_ms")?,
        spent: Credits::ZERO,
        reserved: Credits::ZERO,
    })
}

/// `key` with what it spent and holds in its period at `now_ms` (nothing while that
/// period's budget does not exist).
async fn with_usage(
    conn: &mut DbConn,
    mut key: ApiKeyRecord,
    now_ms: u64,
) -> Result<ApiKeyRecord, LedgerError> {
    let budget = key_budget_name(key.id, key.period, now_ms);
    let row = sqlx::query("SELECT spent_micros, reserved_micros FROM budgets WHERE name = $1")
        .bind(&budget)
        .fetch_optional(&mut *conn)
        .await
        .map_err(E::db("read a gateway key's budget"))?;
    if let Some(row) = row {
        key.spent = get_credits(&row, "spent_micros")?;
        key.reserved = get_credits(&row, "reserved_micros")?;
    }
    Ok(key)
}

/// What an idempotency record that `INSERT` could not claim holds, for a request whose
/// hash is `request_hash`.
fn idempotency_from_row(row: &DbRow, request_hash: &str) -> Result<IdempotencyBegin, LedgerError> {
    let stored: String = get(row, "request_hash")?;
    if stored != request_hash {
        return Ok(IdempotencyBegin::Conflict);
    }
    let state: String = get(row, "state")?;
    match state.as_str() {
        "running" => Ok(IdempotencyBegin::Running),
        "done" => {
            let status: Option<i64> = get(row, "status")?;
            let response: Option<String> = get(row, "response")?;
            let status = status.and_then(|s| u16::try_from(s).ok());
            match (status, response) {
                (Some(status), Some(response)) => Ok(IdempotencyBegin::Done { status, response }),
                _ => Err(E::Corrupt {
                    what: "finished idempotency record without a status or response".to_owned(),
                }),
            }
        }
        other => Err(E::Corrupt {
            what: format!("idempotency state `{other}`"),
        }),
    }
}

impl Store {
    /// Holds `amount` on `budget` ([`Ledger::reserve`]); `leased`: for that generation,
    /// under that lease ([`Ledger::reserve_leased`]).
    async fn hold(
        &self,
        budget: &str,
        amount: Credits,
        leased: Option<(&str, &Lease)>,
    ) -> Result<ReservationId, LedgerError> {
        const OP: &str = "reserve credits";
        let amount_micros = micros(amount, "a reservation")?;
        let now = self.now_ms()?;
        let lease_until = leased
            .map(|(_, lease)| int(lease.until_ms, "a lease's end"))
            .transpose()?;
        let mut tx = self.write(OP).await?;
        // The check and the hold are one conditional UPDATE: under SQLite's write lock,
        // and on PostgreSQL re-evaluated on the latest row after its row lock, so
        // concurrent reservations can never pass the limit together.
        let held = sqlx::query(
            "UPDATE budgets SET reserved_micros = reserved_micros + $2, updated_at_ms = $3 \
             WHERE name = $1 \
             AND (limit_micros IS NULL OR spent_micros + reserved_micros + $2 <= limit_micros) \
             RETURNING name",
        )
        .bind(budget)
        .bind(amount_micros)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        if held.is_none() {
            let status = sqlx::query(
                "SELECT name, limit_micros, spent_micros, reserved_micros, overshoot_micros \
                 FROM budgets WHERE name = $1",
            )
            .bind(budget)
            .fetch_optional(&mut *tx)
            .await
            .map_err(E::db(OP))?
            .map(|row| budget_from_row(&row))
            .transpose()?;
            tx.rollback().await.map_err(E::db(OP))?;
            return Err(match status {
                None => E::UnknownBudget(budget.to_owned()),
                Some(status) => E::BudgetExceeded {
                    budget: budget.to_owned(),
                    needed: amount,
                    remaining: status.remaining.unwrap_or(Credits::ZERO),
                },
            });
        }
        let row = sqlx::query(
            "INSERT INTO reservations (budget, amount_micros, state, created_at_ms, \
             generation_id, lease_owner, lease_until_ms) \
             VALUES ($1, $2, 'held', $3, $4, $5, $6) RETURNING id",
        )
        .bind(budget)
        .bind(amount_micros)
        .bind(now)
        .bind(leased.map(|(generation, _)| generation))
        .bind(leased.map(|(_, lease)| lease.owner.as_str()))
        .bind(lease_until)
        .fetch_one(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        let id = ReservationId(get_u64(&row, "id")?);
        tx.commit().await.map_err(E::db(OP))?;
        self.durable(OP).await?;
        Ok(id)
    }

    /// Resolves held reservation `id` if its lease (another's than `claimer`) ran out by
    /// `now`, from what was sent for its generation (see [`crate::holds`]); one whose
    /// jobs are still open is looked at again after `until`. `None` when it is no longer
    /// held, or was renewed, or another resolved it first.
    async fn resolve_hold(
        &self,
        id: i64,
        claimer: &str,
        until: i64,
        now: i64,
    ) -> Result<Option<HoldResolution>, LedgerError> {
        const OP: &str = "resolve a hold whose lease ran out";
        let mut tx = self.write(OP).await?;
        // A no-op UPDATE locks the row (PostgreSQL re-checks the condition on the latest
        // row), so of concurrent resolvers one goes on, the others find nothing.
        let locked = sqlx::query(
            "UPDATE reservations SET lease_until_ms = lease_until_ms \
             WHERE id = $1 AND state = 'held' AND lease_owner IS NOT NULL \
             AND lease_owner <> $2 AND lease_until_ms <= $3 \
             RETURNING budget, amount_micros, lease_owner, generation_id",
        )
        .bind(id)
        .bind(claimer)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        let Some(locked) = locked else {
            tx.rollback().await.map_err(E::db(OP))?;
            return Ok(None);
        };
        let budget: String = get(&locked, "budget")?;
        let amount_micros: i64 = get(&locked, "amount_micros")?;
        let owner: String = get(&locked, "lease_owner")?;
        let generation_id: Option<String> = get(&locked, "generation_id")?;
        // Its generation names its request once it is known, before anything is sent.
        let request_key: Option<String> = match &generation_id {
            Some(generation) => sqlx::query("SELECT request_key FROM generations WHERE id = $1")
                .bind(generation)
                .fetch_optional(&mut *tx)
                .await
                .map_err(E::db(OP))?
                .map(|row| get::<Option<String>>(&row, "request_key"))
                .transpose()?
                .flatten(),
            None => None,
        };
        // Its request's jobs, and any job linked to the reservation itself.
        let jobs = sqlx::query(
            "SELECT j.state, j.charged_micros, j.reserved_micros FROM jobs AS j \
             WHERE j.reservation_id = $1 OR j.request_id IN \
             (SELECT r.id FROM requests AS r WHERE r.request_key = $2)",
        )
        .bind(id)
        .bind(request_key.as_deref())
        .fetch_all(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        let mut open = false;
        let mut charged: i64 = 0;
        for job in &jobs {
            if get_job_state(job, "state")? == JobState::Accepted {
                open = true;
            }
            // A charge not known counts what was reserved for the job, as a finished
            // job's reservation settles.
            let cost = get::<Option<i64>>(job, "charged_micros")?
                .unwrap_or(get::<i64>(job, "reserved_micros")?);
            charged = charged.saturating_add(cost.max(0));
        }
        let close = if open {
            None
        } else if !jobs.is_empty() {
            Some(Close::Settle(Some(charged)))
        } else if let Some(key) = &request_key
            && request_recorded_in(&mut tx, key).await?
        {
            // The write-ahead: it may have been sent, and charged.
            Some(Close::Settle(None))
        } else {
            Some(Close::Release)
        };
        let outcome = match close {
            None => {
                // Looked at again after a lease: the jobs, taken over, finish first.
                sqlx::query("UPDATE reservations SET lease_until_ms = $2 WHERE id = $1")
                    .bind(id)
                    .bind(until)
                    .execute(&mut *tx)
                    .await
                    .map_err(E::db(OP))?;
                HoldOutcome::Waiting
            }
            Some(close) => match close_reservation(&mut tx, id, close, now).await? {
                Ok(settlement) => match close {
                    Close::Release => HoldOutcome::Released,
                    Close::Settle(None) => HoldOutcome::SettledInFull(settlement),
                    Close::Settle(Some(_)) => HoldOutcome::Settled(settlement),
                },
                Err(_) => {
                    tx.rollback().await.map_err(E::db(OP))?;
                    return Ok(None);
                }
            },
        };
        tx.commit().await.map_err(E::db(OP))?;
        self.durable(OP).await?;
        if let HoldOutcome::SettledInFull(settlement) = &outcome {
            tracing::warn!(
                reservation = id,
                %budget,
                %owner,
                generation = generation_id.as_deref().unwrap_or(""),
                charged = %settlement.charged,
                "a gateway died after recording its request and before recording any job: \
                 the provider may have charged, so its hold is settled in full"
            );
        }
        Ok(Some(HoldResolution {
            id: ReservationId(uint(id, "a reservation id")?),
            budget,
            amount: credits(amount_micros, "amount_micros")?,
            owner,
            generation_id,
            outcome,
        }))
    }
}

#[async_trait]
impl Ledger for Store {
    fn backend(&self) -> Backend {
        BACKEND
    }

    fn url(&self) -> &str {
        &self.url
    }

    async fn record_request(&self, request: &NewRequest) -> Result<RequestId, LedgerError> {
        let row = sqlx::query(
            "INSERT INTO requests (created_at_ms, prompt, request_json, out_dir, batch_key, \
             batch_line, request_key) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(int(request.created_at_ms, "a request's time")?)
        .bind(&request.prompt)
        .bind(&request.request_json)
        .bind(path_text(&request.out_dir)?)
        .bind(request.batch.as_ref().map(|b| b.key.as_str()))
        .bind(request.batch.as_ref().map(|b| i64::from(b.line)))
        .bind(&request.request_key)
        .fetch_one(&mut *self.conn("record a request").await?)
        .await
        .map_err(E::db("record a request"))?;
        // On disk before this returns: a request is recorded before it is first sent
        // (the write-ahead), and a takeover reads "no request" as "nothing was sent".
        self.durable("record a request").await?;
        Ok(RequestId(get_u64(&row, "id")?))
    }

    async fn record_accepted(&self, job: &AcceptedJob) -> Result<bool, LedgerError> {
        let mut conn = self.conn("record an accepted job").await?;
        // One statement in autocommit, then on disk before this returns: a paid job is
        // durable before it is waited on.
        let inserted = insert_job(&mut conn, job).await?;
        drop(conn);
        self.durable("record an accepted job").await?;
        Ok(inserted)
    }

    async fn finish_job(
        &self,
        provider: &ProviderId,
        job_id: &str,
        finish: &JobFinish,
    ) -> Result<Finished, LedgerError> {
        let now = self.now_ms()?;
        let mut tx = self.write("finish a job").await?;
        match finish_in(&mut tx, provider, job_id, finish, now).await? {
            Some(finished) => {
                if finished.newly {
                    tx.commit().await.map_err(E::db("finish a job"))?;
                    self.durable("finish a job").await?;
                } else {
                    tx.rollback().await.map_err(E::db("finish a job"))?;
                }
                Ok(finished)
            }
            None => {
                tx.rollback().await.map_err(E::db("finish a job"))?;
                Err(E::UnknownJob {
                    provider: provider.clone(),
                    job_id: job_id.to_owned(),
                })
            }
        }
    }

    async fn job(
        &self,
        provider: &ProviderId,
        job_id: &str,
    ) -> Result<Option<JobRecord>, LedgerError> {
        let sql =
            format!("SELECT {JOB_COLUMNS} FROM jobs AS j WHERE j.provider = $1 AND j.job_id = $2");
        sqlx::query(&sql)
            .bind(provider.as_str())
            .bind(job_id)
            .fetch_optional(&mut *self.read("read a job").await?)
            .await
            .map_err(E::db("read a job"))?
            .map(|row| job_from_row(&row))
            .transpose()
    }

    async fn open_jobs(&self) -> Result<Vec<JobRecord>, LedgerError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs AS j WHERE j.state = 'accepted' \
             ORDER BY j.accepted_at_ms, j.id"
        );
        sqlx::query(&sql)
            .fetch_all(&mut *self.read("list open jobs").await?)
            .await
            .map_err(E::db("list open jobs"))?
            .iter()
            .map(job_from_row)
            .collect()
    }

    async fn saved_jobs(&self, request_key: &str) -> Result<Vec<SavedJob>, LedgerError> {
        const OP: &str = "look up saved images";
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs AS j JOIN requests AS r ON r.id = j.request_id \
             WHERE r.request_key = $1 AND j.state = 'done' AND EXISTS \
             (SELECT 1 FROM images AS i WHERE i.provider = j.provider AND i.job_id = j.job_id) \
             ORDER BY j.finished_at_ms DESC, j.id DESC"
        );
        let jobs = sqlx::query(&sql)
            .bind(request_key)
            .fetch_all(&mut *self.read(OP).await?)
            .await
            .map_err(E::db(OP))?
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.with_images(jobs, OP).await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, LedgerError> {
        let rows = sqlx::query(
            "SELECT j.id, j.provider, j.job_id, j.model, j.prompt, j.state, j.reserved_micros, \
             j.charged_micros, j.accepted_at_ms, j.finished_at_ms, j.error, i.path \
             FROM (SELECT * FROM jobs WHERE lower(prompt) LIKE $2 ESCAPE '!' \
                   ORDER BY accepted_at_ms DESC, id DESC LIMIT $1) AS j \
             LEFT JOIN images AS i ON i.provider = j.provider AND i.job_id = j.job_id \
             ORDER BY j.accepted_at_ms DESC, j.id DESC, i.image_index",
        )
        .bind(i64::from(query.limit))
        .bind(contains_pattern(query.search.as_deref()))
        .fetch_all(&mut *self.read("read the history").await?)
        .await
        .map_err(E::db("read the history"))?;
        let mut entries: Vec<HistoryEntry> = Vec::new();
        let mut last_id = None;
        for row in &rows {
            let id: i64 = get(row, "id")?;
            let file: Option<String> = get(row, "path")?;
            if last_id != Some(id) {
                last_id = Some(id);
                entries.push(HistoryEntry {
                    provider: ProviderId::new(get::<String>(row, "provider")?),
                    job_id: get(row, "job_id")?,
                    model: get::<Option<String>>(row, "model")?.map(ModelId::new),
                    prompt: get(row, "prompt")?,
                    state: get_job_state(row, "state")?,
                    reserved: get_credits(row, "reserved_micros")?,
                    charged: get_opt_credits(row, "charged_micros")?,
                    accepted_at_ms: get_u64(row, "accepted_at_ms")?,
                    finished_at_ms: get_opt_u64(row, "finished_at_ms")?,
                    error: get(row, "error")?,
                    files: Vec::new(),
                });
            }
            if let (Some(entry), Some(file)) = (entries.last_mut(), file) {
                entry.files.push(PathBuf::from(file));
            }
        }
        Ok(entries)
    }

    async fn spend(&self, query: &SpendQuery) -> Result<Vec<SpendRow>, LedgerError> {
        let since = int(query.since_ms.unwrap_or(0), "a time")?;
        let until = query.until_ms.map_or(Ok(i64::MAX), |t| int(t, "a time"))?;
        let key = query.api_key.map(|k| int(k.0, "a key id")).transpose()?;
        const SUMS: &str = "CAST(SUM(charged_micros) AS BIGINT) AS credits, COUNT(*) AS jobs \
             FROM jobs WHERE charged_micros IS NOT NULL \
             AND accepted_at_ms >= $1 AND accepted_at_ms < $2 \
             AND ($3 IS NULL OR api_key_id = $3)";
        let sql = match query.group {
            SpendGroup::Provider => {
                format!("SELECT provider, {SUMS} GROUP BY provider ORDER BY provider")
            }
            SpendGroup::Model => format!(
                "SELECT provider, model, {SUMS} GROUP BY provider, model \
                 ORDER BY provider, COALESCE(model, '')"
            ),
            SpendGroup::Day => format!(
                "SELECT accepted_at_ms / {DAY_MS} AS day, {SUMS} \
                 GROUP BY accepted_at_ms / {DAY_MS} ORDER BY day"
            ),
            SpendGroup::ProviderDay => format!(
                "SELECT provider, accepted_at_ms / {DAY_MS} AS day, {SUMS} \
                 GROUP BY provider, accepted_at_ms / {DAY_MS} ORDER BY day, provider"
            ),
        };
        let rows = sqlx::query(&sql)
            .bind(since)
            .bind(until)
            .bind(key)
            .fetch_all(&mut *self.read("sum the spend").await?)
            .await
            .map_err(E::db("sum the spend"))?;
        rows.iter()
            .map(|row| {
                let group = query.group;
                Ok(SpendRow {
                    provider: match group {
                        SpendGroup::Provider | SpendGroup::Model | SpendGroup::ProviderDay => {
                            Some(ProviderId::new(get::<String>(row, "provider")?))
                        }
                        SpendGroup::Day => None,
                    },
                    model: match group {
                        SpendGroup::Model => get::<Option<String>>(row, "model")?.map(ModelId::new),
                        _ => None,
                    },
                    day: match group {
                        SpendGroup::Day | SpendGroup::ProviderDay => {
                            Some(crate::convert::utc_day(get(row, "day")?))
                        }
                        _ => None,
                    },
                    credits: get_credits(row, "credits")?,
                    jobs: get_u64(row, "jobs")?,
                })
            })
            .collect()
    }

    async fn import_journal(&self, entries: &[JournalEntry]) -> Result<ImportReport, LedgerError> {
        const OP: &str = "import a journal";
        let now = self.now_ms()?;
        let mut report = ImportReport::default();
        let mut tx = self.write(OP).await?;
        for entry in entries {
            match entry {
                JournalEntry::Accepted {
                    at_ms,
                    job,
                    prompt,
                    out_dir,
                    reserved,
                } => {
                    let mut handle = job.clone();
                    if handle.accepted_at_ms == 0 {
                        handle.accepted_at_ms = *at_ms;
                    }
                    let accepted = AcceptedJob::new(handle, prompt.clone(), out_dir, *reserved);
                    if insert_job(&mut tx, &accepted).await? {
                        report.accepted += 1;
                    } else {
                        report.already_known += 1;
                    }
                }
                JournalEntry::Finished {
                    at_ms,
                    provider,
                    job_id,
                    outcome,
                } => {
                    let finish = match outcome {
                        JournalOutcome::Saved { paths } => {
                            let images = (0u32..)
                                .zip(paths)
                                .map(|(index, path)| NewImage::new(index, path))
                                .collect();
                            JobFinish::done(*at_ms, images)
                        }
                        JournalOutcome::Failed { error } => JobFinish::failed(*at_ms, error),
                    };
                    match finish_in(&mut tx, provider, job_id, &finish, now).await? {
                        Some(finished) if finished.newly => report.finished += 1,
                        Some(_) => report.already_known += 1,
                        None => report.unmatched += 1,
                    }
                }
                JournalEntry::Skipped { .. } => report.skipped += 1,
            }
        }
        tx.commit().await.map_err(E::db(OP))?;
        self.durable(OP).await?;
        Ok(report)
    }

    async fn set_budget(&self, name: &str, limit: Option<Credits>) -> Result<(), LedgerError> {
        let limit = limit.map(|l| micros(l, "a budget's limit")).transpose()?;
        sqlx::query(
            "INSERT INTO budgets (name, limit_micros, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET limit_micros = excluded.limit_micros, \
             updated_at_ms = excluded.updated_at_ms",
        )
        .bind(name)
        .bind(limit)
        .bind(self.now_ms()?)
        .execute(&mut *self.conn("set a budget").await?)
        .await
        .map_err(E::db("set a budget"))?;
        self.durable("set a budget").await?;
        Ok(())
    }

    async fn budget(&self, name: &str) -> Result<Option<BudgetStatus>, LedgerError> {
        sqlx::query(
            "SELECT name, limit_micros, spent_micros, reserved_micros, overshoot_micros \
             FROM budgets WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&mut *self.read("read a budget").await?)
        .await
        .map_err(E::db("read a budget"))?
        .map(|row| budget_from_row(&row))
        .transpose()
    }

    async fn reserve(&self, budget: &str, amount: Credits) -> Result<ReservationId, LedgerError> {
        self.hold(budget, amount, None).await
    }

    async fn shrink(&self, id: ReservationId, amount: Credits) -> Result<(), LedgerError> {
        const OP: &str = "shrink a reservation";
        let key = int(id.0, "a reservation id")?;
        let wanted = micros(amount, "a reservation")?;
        let now = self.now_ms()?;
        let mut tx = self.write(OP).await?;
        // A no-op UPDATE to lock the row (PostgreSQL) before reading it.
        let row = sqlx::query(
            "UPDATE reservations SET state = state WHERE id = $1 \
             RETURNING budget, amount_micros, state",
        )
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        let Some(row) = row else {
            tx.rollback().await.map_err(E::db(OP))?;
            return Err(E::UnknownReservation(id));
        };
        let state = get_reservation_state(&row, "state")?;
        let held: i64 = get(&row, "amount_micros")?;
        if state != ReservationState::Held {
            tx.rollback().await.map_err(E::db(OP))?;
            return Err(E::ReservationClosed { id, state });
        }
        if wanted > held {
            tx.rollback().await.map_err(E::db(OP))?;
            return Err(E::CannotGrow {
                id,
                held: credits(held, "amount_micros")?,
                wanted: amount,
            });
        }
        let budget: String = get(&row, "budget")?;
        sqlx::query("UPDATE reservations SET amount_micros = $2 WHERE id = $1")
            .bind(key)
            .bind(wanted)
            .execute(&mut *tx)
            .await
            .map_err(E::db(OP))?;
        sqlx::query(
            "UPDATE budgets SET reserved_micros = reserved_micros - $2, updated_at_ms = $3 \
             WHERE name = $1",
        )
        .bind(&budget)
        .bind(held - wanted)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        tx.commit().await.map_err(E::db(OP))?;
        self.durable(OP).await?;
        Ok(())
    }

    async fn settle(&self, id: ReservationId, charged: Credits) -> Result<Settlement, LedgerError> {
        const OP: &str = "settle a reservation";
        let key = int(id.0, "a reservation id")?;
        let charged = micros(charged, "a charge")?;
        let now = self.now_ms()?;
        let mut tx = self.write(OP).await?;
        match close_reservation(&mut tx, key, Close::Settle(Some(charged)), now).await? {
            Ok(settlement) => {
                tx.commit().await.map_err(E::db(OP))?;
                self.durable(OP).await?;
                Ok(settlement)
            }
            Err(state) => {
                tx.rollback().await.map_err(E::db(OP))?;
                Err(closed_error(id, state))
            }
        }
    }

    async fn release(&self, id: ReservationId) -> Result<(), LedgerError> {
        const OP: &str = "release a reservation";
        let key = int(id.0, "a reservation id")?;
        let now = self.now_ms()?;
        let mut tx = self.write(OP).await?;
        match close_reservation(&mut tx, key, Close::Release, now).await? {
            Ok(_) => {
                tx.commit().await.map_err(E::db(OP))?;
                self.durable(OP).await?;
                Ok(())
            }
            Err(state) => {
                tx.rollback().await.map_err(E::db(OP))?;
                Err(closed_error(id, state))
            }
        }
    }

    async fn set_cooldown(
        &self,
        provider: &ProviderId,
        model: Option<&ModelId>,
        until_ms: u64,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO cooldowns (provider, model, until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (provider, model) DO UPDATE SET until_ms = excluded.until_ms \
             WHERE excluded.until_ms > cooldowns.until_ms",
        )
        .bind(provider.as_str())
        .bind(model_key(model))
        .bind(int(until_ms, "a cooldown's end")?)
        .execute(&mut *self.conn("set a cooldown").await?)
        .await
        .map_err(E::db("set a cooldown"))?;
        self.durable("set a cooldown").await?;
        Ok(())
    }

    async fn cooldown(
        &self,
        provider: &ProviderId,
        model: Option<&ModelId>,
        now_ms: u64,
    ) -> Result<Option<u64>, LedgerError> {
        sqlx::query(
            "SELECT until_ms FROM cooldowns \
             WHERE provider = $1 AND model = $2 AND until_ms > $3",
        )
        .bind(provider.as_str())
        .bind(model_key(model))
        .bind(int(now_ms, "a time")?)
        .fetch_optional(&mut *self.read("read a cooldown").await?)
        .await
        .map_err(E::db("read a cooldown"))?
        .map(|row| get_u64(&row, "until_ms"))
        .transpose()
    }

    async fn cooldowns(&self, now_ms: u64) -> Result<Vec<Cooldown>, LedgerError> {
        sqlx::query(
            "SELECT provider, model, until_ms FROM cooldowns WHERE until_ms > $1 \
             ORDER BY provider, model",
        )
        .bind(int(now_ms, "a time")?)
        .fetch_all(&mut *self.read("list cooldowns").await?)
        .await
        .map_err(E::db("list cooldowns"))?
        .iter()
        .map(|row| {
            let model: String = get(row, "model")?;
            Ok(Cooldown {
                provider: ProviderId::new(get::<String>(row, "provider")?),
                model: (!model.is_empty()).then(|| ModelId::new(model)),
                until_ms: get_u64(row, "until_ms")?,
            })
        })
        .collect()
    }

    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, LedgerError> {
        const OP: &str = "create a gateway key";
        key.check()?;
        let limit = key
            .limit
            .map(|l| micros(l, "a gateway key's budget"))
            .transpose()?;
        let now_ms = unix_millis(self.clock.wall_time());
        let created = int(now_ms, "the time")?;
        let sql = format!(
            "INSERT INTO api_keys (name, key_hash, prefix, limit_micros, period, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING {KEY_COLUMNS}"
        );
        let mut tx = self.write(OP).await?;
        // No conflict target: a live key's name (a partial unique index) and the key's
        // hash are both unique; which one it was is read below.
        let row = sqlx::query(&sql)
            .bind(&key.name)
            .bind(&key.key_hash)
            .bind(&key.prefix)
            .bind(limit)
            .bind(key.period.as_str())
            .bind(created)
            .fetch_optional(&mut *tx)
            .await
            .map_err(E::db(OP))?;
        let Some(row) = row else {
            let live =
                sqlx::query("SELECT id FROM api_keys WHERE name = $1 AND revoked_at_ms IS NULL")
                    .bind(&key.name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(E::db(OP))?;
            tx.rollback().await.map_err(E::db(OP))?;
            return Err(match live {
                Some(_) => E::DuplicateApiKeyName {
                    name: key.name.clone(),
                },
                None => E::DuplicateApiKey,
            });
        };
        let record = with_usage(&mut tx, key_from_row(&row)?, now_ms).await?;
        tx.commit().await.map_err(E::db(OP))?;
        self.durable(OP).await?;
        Ok(record)
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, LedgerError> {
        const OP: &str = "find a gateway key";
        let now_ms = unix_millis(self.clock.wall_time());
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at_ms IS NULL"
        );
        let mut conn = self.read(OP).await?;
        let row = sqlx::query(&sql)
            .bind(key_hash)
            .fetch_optional(&mut *conn)
            .await
            .map_err(E::db(OP))?;
        match row {
            Some(row) => Ok(Some(
                with_usage(&mut conn, key_from_row(&row)?, now_ms).await?,
            )),
            None => Ok(None),
        }
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, LedgerError> {
        const OP: &str = "list gateway keys";
        let now_ms = unix_millis(self.clock.wall_time());
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at_ms, id");
        let mut conn = self.read(OP).await?;
        let rows = sqlx::query(&sql)
            .fetch_all(&mut *conn)
            .await
            .map_err(E::db(OP))?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            keys.push(with_usage(&mut conn, key_from_row(row)?, now_ms).await?);
        }
        Ok(keys)
    }

    async fn revoke_api_key(&self, name_or_prefix: &str) -> Result<bool, LedgerError> {
        const OP: &str = "revoke a gateway key";
        // A whole key is matched by its hash (names never start with `igk_`).
        let hash = is_well_formed(name_or_prefix).then(|| api_key_hash(name_or_prefix));
        let now = self.now_ms()?;
        let mut tx = self.write(OP).await?;
        let rows = sqlx::query(
            "SELECT id FROM api_keys WHERE revoked_at_ms IS NULL \
             AND (name = $1 OR prefix = $1 OR key_hash = $2)",
        )
        .bind(name_or_prefix)
        .bind(hash.as_deref())
        .fetch_all(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        let id: i64 = match rows.as_slice() {
            [row] => get(row, "id")?,
            [] => {
                tx.rollback().await.map_err(E::db(OP))?;
                return Ok(false);
            }
            many => {
                tx.rollback().await.map_err(E::db(OP))?;
                return Err(E::AmbiguousApiKey {
                    prefix: name_or_prefix.to_owned(),
                    matches: many.len(),
                });
            }
        };
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        tx.commit().await.map_err(E::db(OP))?;
        self.durable(OP).await?;
        Ok(revoked.rows_affected() == 1)
    }

    async fn ensure_key_budget(
        &self,
        key: &ApiKeyRecord,
        now_ms: u64,
    ) -> Result<Option<String>, LedgerError> {
        let Some(name) = key.budget_name(now_ms) else {
            return Ok(None);
        };
        let limit = key
            .limit
            .map(|l| micros(l, "a gateway key's budget"))
            .transpose()?;
        sqlx::query(
            "INSERT INTO budgets (name, limit_micros, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&name)
        .bind(limit)
        .bind(self.now_ms()?)
        .execute(&mut *self.conn("create a gateway key's budget").await?)
        .await
        .map_err(E::db("create a gateway key's budget"))?;
        self.durable("create a gateway key's budget").await?;
        Ok(Some(name))
    }

    async fn begin_idempotent(
        &self,
        scope: &str,
        idem_key: &str,
        request_hash: &str,
        generation_id: Option<&str>,
        now_ms: u64,
    ) -> Result<IdempotencyBegin, LedgerError> {
        const OP: &str = "begin an idempotent request";
        let now = int(now_ms, "a time")?;
        // A record abandoned between the INSERT and the read is claimed again; one that
        // keeps being claimed and abandoned by others is reported as running.
        for _ in 0..3 {
            let inserted = sqlx::query(
                "INSERT INTO idempotency (scope, idem_key, request_hash, state, created_at_ms, \
                 generation_id) VALUES ($1, $2, $3, 'running', $4, $5) \
                 ON CONFLICT (scope, idem_key) DO NOTHING RETURNING state",
            )
            .bind(scope)
            .bind(idem_key)
            .bind(request_hash)
            .bind(now)
            .bind(generation_id)
            .fetch_optional(&mut *self.conn(OP).await?)
            .await
            .map_err(E::db(OP))?;
            if inserted.is_some() {
                self.durable(OP).await?;
                return Ok(IdempotencyBegin::Started);
            }
            let existing = sqlx::query(
                "SELECT request_hash, state, status, response FROM idempotency \
                 WHERE scope = $1 AND idem_key = $2",
            )
            .bind(scope)
            .bind(idem_key)
            .fetch_optional(&mut *self.read(OP).await?)
            .await
            .map_err(E::db(OP))?;
            if let Some(row) = existing {
                return idempotency_from_row(&row, request_hash);
            }
        }
        Ok(IdempotencyBegin::Running)
    }

    async fn finish_idempotent(
        &self,
        scope: &str,
        idem_key: &str,
        status: u16,
        response: &str,
    ) -> Result<bool, LedgerError> {
        let done = sqlx::query(
            "UPDATE idempotency SET state = 'done', status = $3, response = $4, \
             finished_at_ms = $5 WHERE scope = $1 AND idem_key = $2 AND state = 'running'",
        )
        .bind(scope)
        .bind(idem_key)
        .bind(i64::from(status))
        .bind(response)
        .bind(self.now_ms()?)
        .execute(&mut *self.conn("finish an idempotent request").await?)
        .await
        .map_err(E::db("finish an idempotent request"))?;
        self.durable("finish an idempotent request").await?;
        Ok(done.rows_affected() == 1)
    }

    async fn abandon_idempotent(&self, scope: &str, idem_key: &str) -> Result<bool, LedgerError> {
        let deleted = sqlx::query(
            "DELETE FROM idempotency WHERE scope = $1 AND idem_key = $2 AND state = 'running'",
        )
        .bind(scope)
        .bind(idem_key)
        .execute(&mut *self.conn("abandon an idempotent request").await?)
        .await
        .map_err(E::db("abandon an idempotent request"))?;
        self.durable("abandon an idempotent request").await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn prune_idempotent(&self, before_ms: u64) -> Result<u64, LedgerError> {
        let deleted = sqlx::query("DELETE FROM idempotency WHERE created_at_ms < $1")
            .bind(int(before_ms, "a time")?)
            .execute(&mut *self.conn("prune idempotency records").await?)
            .await
            .map_err(E::db("prune idempotency records"))?;
        self.durable("prune idempotency records").await?;
        Ok(deleted.rows_affected())
    }

    async fn idempotent_generation(
        &self,
        scope: &str,
        idem_key: &str,
    ) -> Result<Option<String>, LedgerError> {
        let row = sqlx::query(
            "SELECT generation_id FROM idempotency WHERE scope = $1 AND idem_key = $2",
        )
        .bind(scope)
        .bind(idem_key)
        .fetch_optional(&mut *self.read("read an idempotent request's generation").await?)
        .await
        .map_err(E::db("read an idempotent request's generation"))?;
        match row {
            Some(row) => get(&row, "generation_id"),
            None => Ok(None),
        }
    }

    async fn images(&self, query: &ImageQuery) -> Result<Vec<ImageEntry>, LedgerError> {
        const OP: &str = "list images";
        let since = int(query.since_ms.unwrap_or(0), "a time")?;
        let until = query.until_ms.map_or(Ok(i64::MAX), |t| int(t, "a time"))?;
        let search = query.search.as_deref().map(|s| contains_pattern(Some(s)));
        let key = query.api_key.map(|k| int(k.0, "a key id")).transpose()?;
        let (after_ms, after_provider, after_job, after_index) = match &query.after {
            Some(cursor) => (
                Some(int(cursor.created_at_ms, "a time")?),
                Some(cursor.key.provider.as_str()),
                Some(cursor.key.job_id.as_str()),
                Some(i64::from(cursor.key.index)),
            ),
            None => (None, None, None, None),
        };
        let sql = format!(
            "SELECT {IMAGE_COLUMNS_I} FROM images AS i \
             JOIN jobs AS j ON j.provider = i.provider AND j.job_id = i.job_id \
             WHERE ($1 IS NULL OR i.provider = $1) AND ($2 IS NULL OR j.model = $2) \
             AND i.created_at_ms >= $3 AND i.created_at_ms < $4 \
             AND ($5 IS NULL OR lower(j.prompt) LIKE $5 ESCAPE '!') \
             AND ($6 IS NULL OR j.api_key_id = $6) \
             AND ($7 IS NULL OR i.created_at_ms < $7 OR (i.created_at_ms = $7 AND \
                  (i.provider < $8 OR (i.provider = $8 AND (i.job_id < $9 OR \
                   (i.job_id = $9 AND i.image_index < $10)))))) \
             ORDER BY i.created_at_ms DESC, i.provider DESC, i.job_id DESC, i.image_index DESC \
             LIMIT $11"
        );
        let rows = sqlx::query(&sql)
            .bind(query.provider.as_ref().map(ProviderId::as_str))
            .bind(query.model.as_ref().map(ModelId::as_str))
            .bind(since)
            .bind(until)
            .bind(search)
            .bind(key)
            .bind(after_ms)
            .bind(after_provider)
            .bind(after_job)
            .bind(after_index)
            .bind(i64::from(query.limit.max(1)))
            .fetch_all(&mut *self.read(OP).await?)
            .await
            .map_err(E::db(OP))?;
        let mut jobs: std::collections::HashMap<(String, String), JobRecord> =
            std::collections::HashMap::new();
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let image = image_from_row(row)?;
            let id = (image.provider.as_str().to_owned(), image.job_id.clone());
            let job = match jobs.get(&id) {
                Some(job) => job.clone(),
                None => {
                    let job = self
                        .job(&image.provider, &image.job_id)
                        .await?
                        .ok_or(E::Corrupt {
                            what: format!("image of unknown job {}/{}", id.0, id.1),
                        })?;
                    jobs.insert(id, job.clone());
                    job
                }
            };
            entries.push(ImageEntry { image, job });
        }
        Ok(entries)
    }

    async fn image(&self, key: &ImageKey) -> Result<Option<ImageEntry>, LedgerError> {
        let row = sqlx::query(&format!(
            "SELECT {IMAGE_COLUMNS} FROM images \
             WHERE provider = $1 AND job_id = $2 AND image_index = $3"
        ))
        .bind(key.provider.as_str())
        .bind(&key.job_id)
        .bind(i64::from(key.index))
        .fetch_optional(&mut *self.read("read an image").await?)
        .await
        .map_err(E::db("read an image"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let image = image_from_row(&row)?;
        let job = self.job(&key.provider, &key.job_id).await?.ok_or(E::Corrupt {
            what: format!("image of unknown job {}/{}", key.provider, key.job_id),
        })?;
        Ok(Some(ImageEntry { image, job }))
    }

    async fn delete_image(&self, key: &ImageKey) -> Result<Option<DeletedImage>, LedgerError> {
        const OP: &str = "delete an image";
        let mut tx = self.write(OP).await?;
        let deleted = sqlx::query(
            "DELETE FROM images WHERE provider = $1 AND job_id = $2 AND image_index = $3 \
             RETURNING path",
        )
        .bind(key.provider.as_str())
        .bind(&key.job_id)
        .bind(i64::from(key.index))
        .fetch_optional(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        let Some(deleted) = deleted else {
            tx.rollback().await.map_err(E::db(OP))?;
            return Ok(None);
        };
        let file: String = get(&deleted, "path")?;
        let others = sqlx::query("SELECT COUNT(*) AS n FROM images WHERE path = $1")
            .bind(&file)
            .fetch_one(&mut *tx)
            .await
            .map_err(E::db(OP))?;
        let file_still_used = get_u64(&others, "n")? > 0;
        tx.commit().await.map_err(E::db(OP))?;
        self.durable(OP).await?;
        Ok(Some(DeletedImage {
            path: path(file),
            file_still_used,
        }))
    }

    async fn request_recorded(&self, request_key: &str) -> Result<bool, LedgerError> {
        let mut conn = self.read("look up a request").await?;
        request_recorded_in(&mut conn, request_key).await
    }

    async fn request_jobs(&self, request_key: &str) -> Result<Vec<SavedJob>, LedgerError> {
        const OP: &str = "look up a request's jobs";
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs AS j JOIN requests AS r ON r.id = j.request_id \
             WHERE r.request_key = $1 ORDER BY j.accepted_at_ms, j.id"
        );
        let jobs = sqlx::query(&sql)
            .bind(request_key)
            .fetch_all(&mut *self.read(OP).await?)
            .await
            .map_err(E::db(OP))?
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.with_images(jobs, OP).await
    }

    async fn renew_leases(&self, owner: &str, until_ms: u64) -> Result<u64, LedgerError> {
        const OP: &str = "renew leases";
        let until = int(until_ms, "a lease's end")?;
        let mut tx = self.write(OP).await?;
        let jobs = sqlx::query(
            "UPDATE jobs SET lease_until_ms = $2 WHERE lease_owner = $1 AND state = 'accepted'",
        )
        .bind(owner)
        .bind(until)
        .execute(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        let generations = sqlx::query(
            "UPDATE generations SET lease_until_ms = $2 \
             WHERE lease_owner = $1 AND state = 'running'",
        )
        .bind(owner)
        .bind(until)
        .execute(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        let holds = sqlx::query(
            "UPDATE reservations SET lease_until_ms = $2 WHERE lease_owner = $1 AND state = 'held'",
        )
        .bind(owner)
        .bind(until)
        .execute(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        tx.commit().await.map_err(E::db(OP))?;
        self.durable(OP).await?;
        Ok(jobs.rows_affected() + generations.rows_affected() + holds.rows_affected())
    }

    async fn release_leases(&self, owner: &str) -> Result<u64, LedgerError> {
        // Expired now: another instance may claim what this one leaves open at once.
        let now = self.now_ms()?;
        let mut released = 0;
        for (table, open) in [
            ("jobs", "accepted"),
            ("generations", "running"),
            ("reservations", "held"),
        ] {
            let done = sqlx::query(&format!(
                "UPDATE {table} SET lease_until_ms = $2 \
                 WHERE lease_owner = $1 AND state = '{open}' AND lease_until_ms > $2"
            ))
            .bind(owner)
            .bind(now)
            .execute(&mut *self.conn("release leases").await?)
            .await
            .map_err(E::db("release leases"))?;
            self.durable("release leases").await?;
            released += done.rows_affected();
        }
        Ok(released)
    }

    async fn claim_expired_jobs(
        &self,
        lease: &Lease,
        limit: u32,
    ) -> Result<Vec<JobRecord>, LedgerError> {
        const OP: &str = "claim jobs whose lease ran out";
        let now = self.now_ms()?;
        let mut tx = self.write(OP).await?;
        let claimed = sqlx::query(&claim_sql("jobs", "accepted", "accepted_at_ms"))
            .bind(&lease.owner)
            .bind(int(lease.until_ms, "a lease's end")?)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(E::db(OP))?;
        let mut jobs = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let id: i64 = get(row, "id")?;
            let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs AS j WHERE j.id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(E::db(OP))?;
            jobs.push(job_from_row(&row)?);
        }
        tx.commit().await.map_err(E::db(OP))?;
        self.durable(OP).await?;
        Ok(jobs)
    }

    async fn create_generation(&self, generation: &NewGeneration) -> Result<(), LedgerError> {
        let now = self.now_ms()?;
        sqlx::query(
            "INSERT INTO generations (id, caller, state, request_key, lease_owner, \
             lease_until_ms, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, 'running', $3, $4, $5, $6, $6)",
        )
        .bind(&generation.id)
        .bind(&generation.caller)
        .bind(generation.request_key.as_deref())
        .bind(&generation.lease.owner)
        .bind(int(generation.lease.until_ms, "a lease's end")?)
        .bind(now)
        .execute(&mut *self.conn("record a generation").await?)
        .await
        .map_err(E::db("record a generation"))?;
        Ok(())
    }

    async fn set_generation_request_key(
        &self,
        id: &str,
        owner: &str,
        request_key: &str,
    ) -> Result<bool, LedgerError> {
        let set = sqlx::query(
            "UPDATE generations SET request_key = $3, updated_at_ms = $4 \
             WHERE id = $1 AND lease_owner = $2 AND finished_at_ms IS NULL",
        )
        .bind(id)
        .bind(owner)
        .bind(request_key)
        .bind(self.now_ms()?)
        .execute(&mut *self.conn("name a generation's request").await?)
        .await
        .map_err(E::db("name a generation's request"))?;
        Ok(set.rows_affected() == 1)
    }

    async fn generation(&self, id: &str) -> Result<Option<GenerationRecord>, LedgerError> {
        sqlx::query(&format!("SELECT {GENERATION_COLUMNS} FROM generations WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.read("read a generation").await?)
            .await
            .map_err(E::db("read a generation"))?
            .map(|row| generation_from_row(&row))
            .transpose()
    }

    async fn set_generation_progress(&self, id: &str, progress: &str) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE generations SET progress = $2, updated_at_ms = $3 \
             WHERE id = $1 AND state = 'running'",
        )
        .bind(id)
        .bind(progress)
        .bind(self.now_ms()?)
        .execute(&mut *self.conn("record a generation's progress").await?)
        .await
        .map_err(E::db("record a generation's progress"))?;
        Ok(())
    }

    async fn finish_generation(
        &self,
        id: &str,
        status: u16,
        response: &str,
    ) -> Result<bool, LedgerError> {
        let state = if (200..300).contains(&status) {
            GenerationState::Succeeded
        } else {
            GenerationState::Failed
        };
        let now = self.now_ms()?;
        let done = sqlx::query(
            "UPDATE generations SET state = $2, status = $3, response = $4, \
             updated_at_ms = $5, finished_at_ms = $5 WHERE id = $1 AND state = 'running'",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(i64::from(status))
        .bind(response)
        .bind(now)
        .execute(&mut *self.conn("finish a generation").await?)
        .await
        .map_err(E::db("finish a generation"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_expired_generations(
        &self,
        lease: &Lease,
        limit: u32,
    ) -> Result<Vec<GenerationRecord>, LedgerError> {
        const OP: &str = "claim generations whose lease ran out";
        let now = self.now_ms()?;
        let mut tx = self.write(OP).await?;
        let claimed = sqlx::query(&claim_sql("generations", "running", "created_at_ms"))
            .bind(&lease.owner)
            .bind(int(lease.until_ms, "a lease's end")?)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(E::db(OP))?;
        let mut generations = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let id: String = get(row, "id")?;
            let row = sqlx::query(&format!(
                "SELECT {GENERATION_COLUMNS} FROM generations WHERE id = $1"
            ))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(E::db(OP))?;
            generations.push(generation_from_row(&row)?);
        }
        tx.commit().await.map_err(E::db(OP))?;
        self.durable(OP).await?;
        Ok(generations)
    }

    async fn acquire_rate_slot(
        &self,
        provider: &ProviderId,
        account: &AccountHash,
        limit: u32,
        window_ms: u64,
    ) -> Result<RateSlot, LedgerError> {
        const OP: &str = "take a rate-limit slot";
        let limit = limit.max(1);
        let now = self.now_ms()?;
        let window = int(window_ms, "a rate window")?;
        let mut tx = self.write(OP).await?;
        // Lock the account's row: acquisitions for one account take turns.
        sqlx::query(
            "INSERT INTO rate_windows (provider, account_hash, window_start_ms, taken) \
             VALUES ($1, $2, 0, 0) ON CONFLICT (provider, account_hash) \
             DO UPDATE SET taken = rate_windows.taken",
        )
        .bind(provider.as_str())
        .bind(account.as_str())
        .execute(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        sqlx::query(
            "DELETE FROM rate_slots WHERE provider = $1 AND account_hash = $2 AND \
             ((done_at_ms IS NOT NULL AND done_at_ms <= $3) \
              OR (done_at_ms IS NULL AND taken_at_ms <= $4))",
        )
        .bind(provider.as_str())
        .bind(account.as_str())
        .bind(now.saturating_sub(window))
        .bind(now.saturating_sub(window.saturating_mul(2)))
        .execute(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        let counted = sqlx::query(
            "SELECT COUNT(*) AS slots, MIN(done_at_ms) AS first_done FROM rate_slots \
             WHERE provider = $1 AND account_hash = $2",
        )
        .bind(provider.as_str())
        .bind(account.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        let slots = get_u64(&counted, "slots")?;
        if slots >= u64::from(limit) {
            tx.commit().await.map_err(E::db(OP))?;
            self.durable(OP).await?;
            // The first answered call leaves the window then; with every call in flight,
            // look again after a fraction of the spacing.
            let wait_ms = match get::<Option<i64>>(&counted, "first_done")? {
                Some(done) => u64::try_from(done.saturating_add(window).saturating_sub(now))
                    .unwrap_or(0),
                None => window_ms / u64::from(limit.saturating_mul(4)),
            };
            return Ok(RateSlot::Wait(std::time::Duration::from_millis(wait_ms.max(1))));
        }
        let row = sqlx::query(
            "INSERT INTO rate_slots (provider, account_hash, taken_at_ms) VALUES ($1, $2, $3) \
             RETURNING id",
        )
        .bind(provider.as_str())
        .bind(account.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(E::db(OP))?;
        let id = RateSlotId(get_u64(&row, "id")?);
        tx.commit().await.map_err(E::db(OP))?;
        self.durable(OP).await?;
        Ok(RateSlot::Taken(id))
    }

    async fn finish_rate_slot(&self, id: RateSlotId) -> Result<(), LedgerError> {
        sqlx::query("UPDATE rate_slots SET done_at_ms = $2 WHERE id = $1 AND done_at_ms IS NULL")
            .bind(int(id.0, "a slot id")?)
            .bind(self.now_ms()?)
            .execute(&mut *self.conn("finish a rate-limit slot").await?)
            .await
            .map_err(E::db("finish a rate-limit slot"))?;
        self.durable("finish a rate-limit slot").await?;
        Ok(())
    }

    async fn close(&self) {
        self.writer.close().await;
        close_readers(&self.readers).await;
    }

    async fn reserve_leased(
        &self,
        budget: &str,
        amount: Credits,
        generation_id: &str,
        lease: &Lease,
    ) -> Result<ReservationId, LedgerError> {
        self.hold(budget, amount, Some((generation_id, lease))).await
    }

    async fn resolve_expired_holds(
        &self,
        lease: &Lease,
        limit: u32,
    ) -> Result<Vec<HoldResolution>, LedgerError> {
        const OP: &str = "resolve holds whose lease ran out";
        let now = self.now_ms()?;
        let until = int(lease.until_ms, "a lease's end")?;
        let candidates = sqlx::query(
            "SELECT id FROM reservations WHERE state = 'held' AND lease_owner IS NOT NULL \
             AND lease_owner <> $1 AND lease_until_ms <= $2 \
             ORDER BY created_at_ms, id LIMIT $3",
        )
        .bind(&lease.owner)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.read(OP).await?)
        .await
        .map_err(E::db(OP))?;
        let mut resolved = Vec::with_capacity(candidates.len());
        for row in &candidates {
            let id: i64 = get(row, "id")?;
            if let Some(resolution) = self.resolve_hold(id, &lease.owner, until, now).await? {
                resolved.push(resolution);
            }
        }
        Ok(resolved)
    }
}
