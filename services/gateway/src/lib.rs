//! The gateway: the edge reverse proxy. It routes by host and path to instances it has seen
//! pass a health check, balances by least outstanding requests (power of two choices), retries
//! a request whose connection failed on another instance, rate-limits per client and route,
//! verifies access tokens at the edge, and answers 404/503 as problem+json.

mod access_log;
pub mod admin;
mod body;
mod config;
mod docker;
pub mod docker_proxy;
mod edge_auth;
mod health;
mod idle;
mod limiter;
pub mod listen;
mod proxy;
pub mod routes;
mod serve;
mod spare_maps;
mod startup;
pub mod tls;
mod upstream;
mod warm;

pub use config::{Config, Tls};
pub use startup::Application;

pub const NAME: &str = "gateway";
