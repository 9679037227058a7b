//! The gateway's integration tests: real backends on ephemeral ports (small servers in this
//! process, or real processes where one must be killed), the real gateway in front.

mod docker;
mod edge;
mod failover;
mod handover;
mod hardening;
mod helpers;
mod protocols;
mod routing;
mod tls;
