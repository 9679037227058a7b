//! The web's tests: handler tests over HTTP, and a real browser (headless Chromium through
//! WebDriver) driving the whole journey against real auth, mailer and Postgres.

mod browser;
mod handlers;
mod helpers;
