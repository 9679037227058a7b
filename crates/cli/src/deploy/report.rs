//! What a deploy says as it goes: each step as a line with the time since the deploy began,
//! or with `--json` one JSON object per line (`event`, `elapsed_s`, the step's fields and a
//! `message`) for CI to read. Errors still go to standard error as text.

use std::fmt::Display;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

static JSON: AtomicBool = AtomicBool::new(false);
static STARTED: OnceLock<Instant> = OnceLock::new();

/// Starts the clock; with `json`, events are printed as JSON lines.
pub fn begin(json: bool) {
    JSON.store(json, Ordering::Relaxed);
    let _ = STARTED.set(Instant::now());
}

fn elapsed() -> f64 {
    STARTED.get().map_or(0.0, |s| s.elapsed().as_secs_f64())
}

/// One step: `event` names it, `fields` are its data, `message` what a person reads.
pub fn step(event: &str, fields: Value, message: impl Display) {
    if JSON.load(Ordering::Relaxed) {
        let mut line = json!({ "event": event, "elapsed_s": (elapsed() * 10.0).round() / 10.0 });
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
            line.insert("message".into(), json!(message.to_string()));
        }
        println!("{line}");
    } else {
        println!("[{:>6.1}s] {message}", elapsed());
    }
}

/// A warning: standard error as text, or a `warning` event.
pub fn warn(message: impl Display) {
    if JSON.load(Ordering::Relaxed) {
        step("warning", json!({}), message);
    } else {
        eprintln!("slipway: warning: {message}");
    }
}
