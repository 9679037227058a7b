//! The Postgres backend: the `bus` schema's functions, a pooled connection each call, and
//! LISTEN/NOTIFY wake-ups with the group's next due time as the fallback.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::backend::{Backend, BusError, Result, Waiter};
use crate::message::{DeadLetter, Delivery, FailState, Group, Publish};

/// The channel `bus.publish` notifies, once per publishing transaction.
pub const CHANNEL: &str = "bus";

/// The Postgres backend: the bus's tables and SQL functions in the `bus` schema.
#[derive(Debug, Clone)]
pub struct PgBus {
    pool: PgPool,
}

impl PgBus {
    /// The bus on `pool`'s database (migrated with [`crate::migrations`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for publishing inside a service's own transaction.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// `bus.complete_many`, or with a lease `bus.extend_many`, one statement per group;
    /// whether each delivery's attempt was still current.
    async fn many(&self, deliveries: &[Delivery], lease: Option<Duration>) -> Result<Vec<bool>> {
        let mut groups: Vec<&str> = deliveries.iter().map(|d| d.group.as_str()).collect();
        groups.sort_unstable();
        groups.dedup();
        let mut current = std::collections::HashSet::new();
        for group in groups {
            let of_group = deliveries.iter().filter(|d| d.group == group);
            let (ids, attempts): (Vec<Uuid>, Vec<i32>) = of_group.map(|d| (d.id, d.attempt)).unzip();
            let sql = match lease {
                None => "SELECT message_id, attempt FROM bus.complete_many($1, $2, $3)",
                Some(_) => {
                    "SELECT message_id, attempt FROM bus.extend_many($1, $2, $3, make_interval(secs => $4))"
                }
            };
            let mut query = sqlx::query_as::<_, (Uuid, i32)>(sql).bind(group).bind(ids).bind(attempts);
            if let Some(lease) = lease {
                query = query.bind(secs(lease));
            }
            current.extend(
                query.fetch_all(&self.pool).await?.into_iter().map(|(id, attempt)| (group, id, attempt)),
            );
        }
        Ok(deliveries.iter().map(|d| current.contains(&(d.group.as_str(), d.id, d.attempt))).collect())
    }
}

/// Publishes in the caller's transaction: the event exists if and only if it commits.
pub async fn publish(conn: &mut PgConnection, message: &Publish) -> Result<Option<Uuid>> {
    publish_with(conn, message).await
}

async fn publish_with(db: impl PgExecutor<'_>, m: &Publish) -> Result<Option<Uuid>> {
    m.check_size()?;
    sqlx::query_scalar("SELECT bus.publish($1, $2, $3, $4, $5, $6)")
        .bind(&m.topic)
        .bind(&m.payload)
        .bind(&m.headers)
        .bind(m.dedupe_key.as_deref())
        .bind(m.deliver_at)
        .bind(m.id)
        .fetch_one(db)
        .await
        .map_err(|e| too_large(e, std::slice::from_ref(m)))
}

/// The database's own size checks (`deliveries_size`, `messages_size`: for publishers in any
/// language) as the same error as the check before the round trip; they count the JSON as
/// Postgres prints it.
fn too_large(error: sqlx::Error, batch: &[Publish]) -> BusError {
    match error.as_database_error().and_then(|e| e.constraint()) {
        Some("deliveries_size" | "messages_size") => {
            let largest = batch.iter().max_by_key(|m| m.size());
            BusError::TooLarge {
                topic: largest.map(|m| m.topic.clone()).unwrap_or_default(),
                bytes: largest.map(Publish::size).unwrap_or_default(),
                limit: crate::MAX_MESSAGE_BYTES,
            }
        }
        _ => BusError::Database(error),
    }
}

/// Publishes a batch in the caller's transaction, in one statement: all of it exists if and
/// only if the transaction commits. Each message's id in order, `None` for a duplicate.
pub async fn publish_many(conn: &mut PgConnection, messages: &[Publish]) -> Result<Vec<Option<Uuid>>> {
    publish_many_with(conn, messages).await
}

async fn publish_many_with(db: impl PgExecutor<'_>, messages: &[Publish]) -> Result<Vec<Option<Uuid>>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    for m in messages {
        m.check_size()?;
    }
    let topics: Vec<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
    let payloads: Vec<&Value> = messages.iter().map(|m| &m.payload).collect();
    let headers: Vec<&Value> = messages.iter().map(|m| &m.headers).collect();
    let keys: Vec<Option<&str>> = messages.iter().map(|m| m.dedupe_key.as_deref()).collect();
    let at: Vec<Option<DateTime<Utc>>> = messages.iter().map(|m| m.deliver_at).collect();
    let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
    let published: Vec<Option<Uuid>> = sqlx::query_scalar("SELECT bus.publish_many($1, $2, $3, $4, $5, $6)")
        .bind(topics)
        .bind(payloads)
        .bind(headers)
        .bind(keys)
        .bind(at)
        .bind(ids)
        .fetch_one(db)
        .await
        .map_err(|e| too_large(e, messages))?;
    Ok(published)
}

/// Completes a delivery in the handler's own transaction, so what the handler wrote and the
/// acknowledgement commit together: a redelivery cannot repeat the side effect. False if the
/// attempt was fenced out (roll back then).
pub async fn complete_in(conn: &mut PgConnection, delivery: &Delivery) -> Result<bool> {
    complete_with(conn, delivery).await
}

async fn complete_with(db: impl PgExecutor<'_>, d: &Delivery) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT bus.complete($1, $2, $3)")
        .bind(&d.group)
        .bind(d.id)
        .bind(d.attempt)
        .fetch_one(db)
        .await?)
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

type ClaimRow = (Uuid, String, Value, Value, i32, DateTime<Utc>);
type DeadRow = (Uuid, String, i32, Option<String>, DateTime<Utc>, Value);

impl Backend for PgBus {
    type Waiter = PgWaiter;

    async fn publish(&self, message: &Publish) -> Result<Option<Uuid>> {
        publish_with(&self.pool, message).await
    }

    async fn publish_many(&self, messages: &[Publish]) -> Result<Vec<Option<Uuid>>> {
        publish_many_with(&self.pool, messages).await
    }

    async fn subscribe(&self, group: &Group, topics: &[&str]) -> Result<()> {
        for topic in topics {
            sqlx::query("SELECT bus.subscribe($1, $2, $3, $4, $5)")
                .bind(&group.name)
                .bind(topic)
                .bind(group.max_attempts)
                .bind(millis(group.backoff_base))
                .bind(millis(group.backoff_max))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn claim(&self, group: &str, worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>> {
        let rows: Vec<ClaimRow> = sqlx::query_as(
            "SELECT message_id, topic, payload, headers, attempt, published_at \
             FROM bus.claim($1, $2, $3, make_interval(secs => $4))",
        )
        .bind(group)
        .bind(worker)
        .bind(i32::try_from(max).unwrap_or(i32::MAX))
        .bind(secs(lease))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, topic, payload, headers, attempt, published_at)| Delivery {
                id,
                group: group.to_string(),
                topic,
                payload,
                headers,
                attempt,
                published_at,
            })
            .collect())
    }

    async fn extend(&self, d: &Delivery, lease: Duration) -> Result<bool> {
        Ok(sqlx::query_scalar("SELECT bus.extend($1, $2, $3, make_interval(secs => $4))")
            .bind(&d.group)
            .bind(d.id)
            .bind(d.attempt)
            .bind(secs(lease))
            .fetch_one(&self.pool)
            .await?)
    }

    async fn complete(&self, d: &Delivery) -> Result<bool> {
        complete_with(&self.pool, d).await
    }

    async fn complete_many(&self, deliveries: &[Delivery]) -> Result<Vec<bool>> {
        self.many(deliveries, None).await
    }

    async fn extend_many(&self, deliveries: &[Delivery], lease: Duration) -> Result<Vec<bool>> {
        self.many(deliveries, Some(lease)).await
    }

    async fn fail(&self, d: &Delivery, error: &str, permanent: bool) -> Result<FailState> {
        let state: Option<String> = sqlx::query_scalar("SELECT bus.fail($1, $2, $3, $4, $5)")
            .bind(&d.group)
            .bind(d.id)
            .bind(d.attempt)
            .bind(error)
            .bind(permanent)
            .fetch_one(&self.pool)
            .await?;
        Ok(match state.as_deref() {
            Some("dead") => FailState::Dead,
            Some(_) => FailState::Retrying,
            None => FailState::Fenced,
        })
    }

    async fn release(&self, d: &Delivery) -> Result<bool> {
        Ok(sqlx::query_scalar("SELECT bus.release($1, $2, $3)")
            .bind(&d.group)
            .bind(d.id)
            .bind(d.attempt)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn waiter(&self, group: &str) -> Result<PgWaiter> {
        warn_if_vacuum_lags(&self.pool).await;
        let mut waiter = PgWaiter { pool: self.pool.clone(), group: group.to_string(), listener: None };
        waiter.listen().await;
        Ok(waiter)
    }

    async fn dead_letters(&self, group: &str) -> Result<Vec<DeadLetter>> {
        let rows: Vec<DeadRow> = sqlx::query_as(
            "SELECT message_id, topic, attempt, last_error, failed_at, payload FROM bus.dead_letters($1)",
        )
        .bind(group)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(message_id, topic, attempt, last_error, failed_at, payload)| DeadLetter {
                message_id,
                topic,
                attempt,
                last_error,
                failed_at,
                payload,
            })
            .collect())
    }

    async fn retry_dead(&self, group: &str, message: Uuid) -> Result<bool> {
        Ok(sqlx::query_scalar("SELECT bus.retry_dead($1, $2)")
            .bind(group)
            .bind(message)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn discard_dead(&self, group: &str, message: Uuid) -> Result<bool> {
        Ok(sqlx::query_scalar("SELECT bus.discard_dead($1, $2)")
            .bind(group)
            .bind(message)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn sweep(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT bus.sweep()").fetch_one(&self.pool).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// How long a worker out of work waits for a wake-up before it asks for its next due time.
const GRACE: Duration = Duration::from_millis(10);

/// Sleeps until a NOTIFY on the bus channel, the group's next due time, or the poll interval;
/// if the listening connection breaks, it polls until it can listen again.
#[derive(Debug)]
pub struct PgWaiter {
    pool: PgPool,
    group: String,
    listener: Option<PgListener>,
}

impl PgWaiter {
    async fn listen(&mut self) {
        let listener = async {
            let mut l = PgListener::connect_with(&self.pool).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        match listener.await {
            Ok(l) => self.listener = Some(l),
            Err(error) => tracing::warn!(%error, "cannot LISTEN for bus wake-ups; polling instead"),
        }
    }

    /// Waits up to `time` for a wake-up (all that came are taken); whether one came. Without
    /// a listening connection it sleeps the whole time; a broken one is dropped, to listen
    /// again at the next wait.
    async fn woken_within(&mut self, time: Duration) -> bool {
        let Some(listener) = &mut self.listener else {
            tokio::time::sleep(time).await;
            return false;
        };
        match tokio::time::timeout(time, listener.recv()).await {
            Ok(Ok(_)) => {
                drain(listener);
                true
            }
            Err(_) => false,
            Ok(Err(error)) => {
                tracing::warn!(%error, "bus wake-up connection lost; reconnecting");
                self.listener = None;
                false
            }
        }
    }

    /// How long until the group's next delivery is due, if it has one.
    async fn until_due(&self) -> Option<Duration> {
        let due: Option<DateTime<Utc>> = sqlx::query_scalar("SELECT bus.next_due($1)")
            .bind(&self.group)
            .fetch_one(&self.pool)
            .await
            .ok()?;
        due.map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
    }
}

impl Waiter for PgWaiter {
    async fn wait(&mut self, max: Duration) {
        // Wake-ups that came while the worker was claiming: there may be work, and one claim
        // serves them all (no round trip for the due time).
        if let Some(listener) = &mut self.listener
            && drain(listener) > 0
        {
            return;
        }
        // Under load the next publish's wake-up is moments away: wait for it a little before
        // asking for the group's next due time, a query that reads past the dead entries at
        // the head of its indexes (half a millisecond then, once per wait). What no wake-up
        // announces (a delayed delivery, an expired lease) comes at most `GRACE` later.
        let started = std::time::Instant::now();
        if self.listener.is_some() && self.woken_within(GRACE.min(max)).await {
            return;
        }
        // The due time counts from now; the poll interval from the start of this wait.
        let left = max.saturating_sub(started.elapsed());
        let sleep = self.until_due().await.map_or(left, |due| due.min(left));
        if sleep.is_zero() {
            return;
        }
        if self.listener.is_none() {
            self.listen().await;
        }
        self.woken_within(sleep).await;
    }
}

/// Discards the wake-ups already received; how many there were.
fn drain(listener: &mut PgListener) -> usize {
    std::iter::from_fn(|| listener.next_buffered()).count()
}

/// Autovacuum slower than every 15 s lets the hot tables' dead rows pile up and the bus slow
/// down by half or more under load (docs/bus.md): said once per worker, at its start.
async fn warn_if_vacuum_lags(pool: &PgPool) {
    let settings: std::result::Result<(String, f64), _> = sqlx::query_as(
        "SELECT current_setting('autovacuum'), \
                extract(epoch FROM current_setting('autovacuum_naptime')::interval)::float8",
    )
    .fetch_one(pool)
    .await;
    match settings {
        Ok((on, _)) if on != "on" => tracing::warn!(
            "autovacuum is off on the bus's database: its hot tables will bloat and the bus slow down; \
             turn it on (autovacuum = on)"
        ),
        Ok((_, naptime)) if naptime > 15.0 => tracing::warn!(
            autovacuum_naptime_s = naptime,
            "autovacuum looks at the bus's hot tables only every {naptime} s: under load the bus slows down \
             between visits; set autovacuum_naptime = 5s (Slipway's compose files do)"
        ),
        Ok(_) => {}
        Err(error) => tracing::debug!(%error, "cannot read the autovacuum settings"),
    }
}
