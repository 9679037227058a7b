//! Auth's integration tests: the real service against a fresh Postgres database per test.

mod binary;
mod helpers;
mod startup;
