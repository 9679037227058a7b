//! The backend a service's configuration chose (`SLIPWAY_BUS_URL`), behind one type: the
//! services are written once against [`AnyBus`] and run on either.

use std::future::Future;
use std::time::Duration;

use kit::health::Readiness;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::backend::{Backend, Result, Waiter};
use crate::choice::BusUrl;
use crate::message::{DeadLetter, Delivery, FailState, Group, Publish};
use crate::nats::{JsBus, JsWaiter};
use crate::outbox::Outboxed;
use crate::pg::{PgBus, PgWaiter};

/// Postgres, or JetStream with Postgres as its outbox.
#[derive(Clone, Debug)]
pub enum AnyBus {
    /// The bus in the service's own database.
    Pg(PgBus),
    /// JetStream, published to through the database's outbox.
    Nats(Outboxed),
}

impl AnyBus {
    /// The bus `url` names, its Postgres side on `pool` (the service's database). Fails when
    /// NATS cannot be reached, saying where it looked.
    pub async fn connect(url: &BusUrl, pool: PgPool) -> Result<Self> {
        let pg = PgBus::new(pool);
        match url {
            BusUrl::Postgres => Ok(Self::Pg(pg)),
            BusUrl::Nats { url, namespace } => {
                Ok(Self::Nats(Outboxed::new(pg, JsBus::connect(url, namespace).await?)))
            }
        }
    }

    /// Runs the relay from the outbox to JetStream until `shutdown`: every instance of a
    /// service on JetStream runs one beside its own worker. Returns at once on Postgres.
    pub async fn relay_until(&self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        match self {
            Self::Pg(_) => Ok(()),
            Self::Nats(bus) => bus.relay().run_until(shutdown).await,
        }
    }

    /// `readiness` with a `nats` check when this bus is JetStream.
    pub fn readiness(&self, readiness: Readiness) -> Readiness {
        match self {
            Self::Pg(_) => readiness,
            Self::Nats(bus) => {
                let bus = bus.clone();
                readiness.check("nats", move || {
                    let connected = bus.connected();
                    async move { connected.map_err(anyhow::Error::msg) }
                })
            }
        }
    }

    /// Completes `delivery` inside the handler's own transaction, so its writes and the
    /// completion commit together and a redelivery cannot repeat them. False when the attempt
    /// was fenced out or an earlier one completed it: roll back then. Either way the handler
    /// returns [`crate::Handled::Acknowledged`].
    pub async fn complete_in(&self, conn: &mut PgConnection, delivery: &Delivery) -> Result<bool> {
        match self {
            Self::Pg(_) => crate::pg::complete_in(conn, delivery).await,
            Self::Nats(bus) => bus.complete_in(conn, delivery).await,
        }
    }
}

/// Either backend's waiter.
#[derive(Debug)]
pub enum AnyWaiter {
    /// Postgres's LISTEN.
    Pg(PgWaiter),
    /// JetStream's.
    Nats(JsWaiter),
}

impl Waiter for AnyWaiter {
    async fn wait(&mut self, max: Duration) {
        match self {
            Self::Pg(w) => w.wait(max).await,
            Self::Nats(w) => w.wait(max).await,
        }
    }
}

/// Calls `$method` on whichever backend this is.
macro_rules! either {
    ($self:ident.$method:ident($($arg:expr),*)) => {
        match $self {
            AnyBus::Pg(bus) => bus.$method($($arg),*).await,
            AnyBus::Nats(bus) => bus.$method($($arg),*).await,
        }
    };
}

impl Backend for AnyBus {
    type Waiter = AnyWaiter;

    async fn publish(&self, message: &Publish) -> Result<Option<Uuid>> {
        either!(self.publish(message))
    }

    async fn publish_many(&self, messages: &[Publish]) -> Result<Vec<Option<Uuid>>> {
        either!(self.publish_many(messages))
    }

    async fn subscribe(&self, group: &Group, topics: &[&str]) -> Result<()> {
        either!(self.subscribe(group, topics))
    }

    async fn claim(&self, group: &str, worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>> {
        either!(self.claim(group, worker, max, lease))
    }

    async fn extend(&self, delivery: &Delivery, lease: Duration) -> Result<bool> {
        either!(self.extend(delivery, lease))
    }

    async fn complete(&self, delivery: &Delivery) -> Result<bool> {
        either!(self.complete(delivery))
    }

    async fn complete_many(&self, deliveries: &[Delivery]) -> Result<Vec<bool>> {
        either!(self.complete_many(deliveries))
    }

    async fn extend_many(&self, deliveries: &[Delivery], lease: Duration) -> Result<Vec<bool>> {
        either!(self.extend_many(deliveries, lease))
    }

    async fn fail(&self, delivery: &Delivery, error: &str, permanent: bool) -> Result<FailState> {
        either!(self.fail(delivery, error, permanent))
    }

    async fn release(&self, delivery: &Delivery) -> Result<bool> {
        either!(self.release(delivery))
    }

    async fn waiter(&self, group: &str) -> Result<AnyWaiter> {
        match self {
            Self::Pg(bus) => bus.waiter(group).await.map(AnyWaiter::Pg),
            Self::Nats(bus) => bus.waiter(group).await.map(AnyWaiter::Nats),
        }
    }

    async fn dead_letters(&self, group: &str) -> Result<Vec<DeadLetter>> {
        either!(self.dead_letters(group))
    }

    async fn retry_dead(&self, group: &str, message: Uuid) -> Result<bool> {
        either!(self.retry_dead(group, message))
    }

    async fn discard_dead(&self, group: &str, message: Uuid) -> Result<bool> {
        either!(self.discard_dead(group, message))
    }

    async fn sweep(&self) -> Result<u64> {
        either!(self.sweep())
    }

    fn completes_in_transaction(&self) -> bool {
        match self {
            Self::Pg(bus) => bus.completes_in_transaction(),
            Self::Nats(bus) => bus.completes_in_transaction(),
        }
    }
}
