//! End-to-end tests of the whole platform as users run it; the tests are in `tests/`.
//!
//! `tests/compose` brings the compose stack up on a real Docker engine from images built with
//! the project's own Dockerfile, and drives it through the gateway at 127.0.0.1:8080.
