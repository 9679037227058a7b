//! Auth's tables, each behind a small module of queries. Nothing outside `store` writes SQL.

pub mod audit;
pub mod events;
pub mod limiter;
pub mod sessions;
pub mod tokens;
pub mod users;
