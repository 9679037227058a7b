//! The `slipway` binary, run as a user runs it, against real Postgres.

mod bus;
mod db;
mod dev;
mod doctor;
mod env;
mod helpers;
mod init;
mod lock;
mod migrate;
mod new;
mod roles;
mod stack;
mod up;
