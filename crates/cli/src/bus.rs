//! `slipway bus dead list|retry|discard`: the dead letters of the bus.

use bus::Backend;
use bus::pg::PgBus;
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
    },
    /// Put a dead letter back in its group's queue with fresh attempts.
    Retry { group: String, message_id: Uuid },
    /// Drop a dead letter for good.
    Discard { group: String, message_id: Uuid },
}

pub async fn run(ctx: &Context, cmd: Command) -> Result<(), Failure> {
    let Command::Dead(dead) = cmd;
    let Some((_, db)) = registry::schemas(&ctx.sources(), Some(bus::SCHEMA))?.pop() else {
        return Err(Failure::Failed(anyhow::anyhow!("no service uses the bus")));
    };
    let pool = kit::db::pool(&db, bus::SCHEMA)?;
    let bus = PgBus::new(pool.clone());
    let failed = |e: bus::BusError| Failure::Failed(anyhow::Error::new(e));
    match dead {
        Dead::List { group } => {
            let groups: Vec<String> = match group {
                Some(g) => vec![g],
                None => sqlx::query_scalar("SELECT name FROM bus.groups ORDER BY name")
                    .fetch_all(&pool)
                    .await
                    .map_err(|e| Failure::Failed(e.into()))?,
            };
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
        Dead::Retry { group, message_id } => {
            if !bus.retry_dead(&group, message_id).await.map_err(failed)? {
                return Err(Failure::Failed(anyhow::anyhow!("{group} has no dead letter {message_id}")));
            }
            println!("{group}: {message_id} queued again");
        }
        Dead::Discard { group, message_id } => {
            if !bus.discard_dead(&group, message_id).await.map_err(failed)? {
                return Err(Failure::Failed(anyhow::anyhow!("{group} has no dead letter {message_id}")));
            }
            println!("{group}: {message_id} discarded");
        }
    }
    Ok(())
}
