//! Typed, layered configuration: defaults < file < `.env` (dev) < environment < `*_FILE` secrets.
//!
//! Every setting has one canonical name, its environment variable: `SLIPWAY_<SCOPE>_<KEY>` for
//! one service (`SLIPWAY_AUTH_PORT`), or `SLIPWAY_<KEY>` for a setting every service shares
//! (`SLIPWAY_DATABASE_URL`); a shared setting may also be given per service and that wins.
//! A service reads its settings through a [`Reader`], which records every problem instead of
//! stopping at the first, and [`Reader::finish`] reports them all at once.

mod common;
mod dotenv;
mod duration;
mod environment;
mod rate;
mod reader;
mod sources;

pub use common::{Common, DbConfig, DbRole, HttpConfig, LogFormat};
pub use duration::parse_duration;
pub use environment::Environment;
pub use rate::{Limit, Rate};
pub use reader::{ConfigError, ConfigErrors, Reader, Setting};
pub use sources::{Origin, Sources};

/// The prefix of every Slipway variable.
pub const PREFIX: &str = "SLIPWAY_";

/// Settings that may be given once for every service (`SLIPWAY_<KEY>`), as well as per service.
pub const SHARED_KEYS: &[&str] = &[
    "ENV",
    "RELEASE",
    "CONFIG_FILE",
    "LOG",
    "LOG_FORMAT",
    "HOST",
    "SHUTDOWN_GRACE",
    "REQUEST_TIMEOUT",
    "BODY_LIMIT",
    "DATABASE_URL",
    "DATABASE_PASSWORD",
    "DATABASE_MAX_CONNECTIONS",
    "DATABASE_CONNECT_TIMEOUT",
    "DATABASE_ACQUIRE_TIMEOUT",
    "DATABASE_STATEMENT_TIMEOUT",
    "MIGRATE_ON_START",
    "PUBLIC_URL",
    "TRUSTED_PROXIES",
    "BUS_URL",
];
