//! `slipway bus dead list|retry|discard`: the dead letters of the bus, on Postgres or on NATS
//! JetStream (`--bus` or `SLIPWAY_BUS_URL`).

use bus::nats::JsBus;
use bus::pg::PgBus;
use bus::{Backend, BusUrl};
use clap::Subcommand;
use uuid::Uuid;

use crate::{Context, Failure, registry};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dead letters: events a group gave up on, with their last error.
    #[command(subcommand)]
    Dead(Dead),
}

#[derive(Debug, Subcommand)]
pub enum Dead {
    /// List dead letters (of one group, or of every group).
    List {
        #[arg(long, short)]
        group: Option<String>,
        #[command(flatten)]
        on: On,
    },
    /// Put a dead letter back in its group's queue with fresh attempts.
    Retry {
        group: String,
        message_id: Uuid,
        #[command(flatten)]
        on: On,
    },
    /// Drop a dead letter for good.
    Discard {
        group: String,
        message_id: Uuid,
        #[command(flatten)]
        on: On,
    },
}

/// Which bus: the database's (the default), or NATS JetStream.
#[derive(Debug, clap::Args)]
pub struct On {
    /// `postgres` (the default: the services' database) or `nats://host:4222[/namespace]`.
    #[arg(long = "bus", env = "SLIPWAY_BUS_URL", default_value = "postgres")]
    url: String,
}

fn failed(e: bus::BusError) -> Failure {
    Failure::Failed(anyhow::Error::new(e))
}

pub async fn run(ctx: &Context, cmd: Command) -> Result<(), Failure> {
    let Command::Dead(dead) = cmd;
    let (Dead::List { on, .. } | Dead::Retry { on, .. } | Dead::Discard { on, .. }) = &dead;
    let url: BusUrl =
        on.url.parse().map_err(|e| Failure::Refused(format!("--bus / SLIPWAY_BUS_URL: {e}")))?;
    match url {
        BusUrl::Postgres => {
            let Some((_, db)) = registry::schemas(&ctx.sources(), Some(bus::SCHEMA))?.pop() else {
                return Err(Failure::Failed(anyhow::anyhow!("no service uses the bus")));
            };
            let pool = kit::db::pool(&db, bus::SCHEMA)?;
            let groups = sqlx::query_scalar("SELECT name FROM bus.groups ORDER BY name")
                .fetch_all(&pool)
                .await
                .map_err(|e| Failure::Failed(e.into()))?;
            on_bus(&PgBus::new(pool), groups, dead).await
        }
        BusUrl::Nats { url, namespace } => {
            let bus = JsBus::connect(&url, &namespace).await.map_err(failed)?;
            let groups = bus.groups().await.map_err(failed)?;
            on_bus(&bus, groups, dead).await
        }
    }
}

async fn on_bus(bus: &impl Backend, all_groups: Vec<String>, dead: Dead) -> Result<(), Failure> {
    match dead {
        Dead::List { group, .. } => {
            let groups = group.map_or(all_groups, |g| vec![g]);
            let mut total = 0;
            for g in groups {
                for letter in bus.dead_letters(&g).await.map_err(failed)? {
                    total += 1;
                    println!(
                        "{g}  {}  {}  attempt {}  {}\n    {}",
                        letter.message_id,
                        letter.topic,
                        letter.attempt,
                        letter.failed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        letter.last_error.as_deref().unwrap_or("(no error recorded)")
                    );
                }
            }
            println!("{total} dead letter(s)");
        }
        Dead::Retry { group, message_id, .. } => {
            if !bus.retry_dead(&group, message_id).await.map_err(failed)? {
                return Err(Failure::Failed(anyhow::anyhow!("{group} has no dead letter {message_id}")));
            }
            println!("{group}: {message_id} queued again");
        }
        Dead::Discard { group, message_id, .. } => {
            if !bus.discard_dead(&group, message_id).await.map_err(failed)? {
                return Err(Failure::Failed(anyhow::anyhow!("{group} has no dead letter {message_id}")));
            }
            println!("{group}: {message_id} discarded");
        }
    }
    Ok(())
}
