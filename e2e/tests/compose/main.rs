//! The compose stack end to end, on a real Docker engine: what `docker compose up` gives a
//! user, driven through the gateway at 127.0.0.1:8080.

mod backup;
mod backup_s3;
mod bootstrap;
mod clean_machine;
mod deploy;
mod helpers;
mod lock;
mod nats;
mod prod;
mod stack;
mod swarm;
