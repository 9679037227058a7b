//! Auth's integration tests: the real service against a fresh Postgres database per test.

mod activation;
mod binary;
mod helpers;
mod keys;
mod login;
mod openapi;
mod password;
mod sessions;
mod signup;
mod startup;
