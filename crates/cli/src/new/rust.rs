//! A Rust service's crate, from the templates in `crates/cli/templates/rust/`.

use std::path::PathBuf;

use super::Plan;

/// Each template and where it goes in the crate (`first` becomes the first migration's
/// timestamped name).
const TEMPLATES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml.tmpl")),
    ("src/main.rs", include_str!("../../templates/rust/src/main.rs.tmpl")),
    ("src/lib.rs", include_str!("../../templates/rust/src/lib.rs.tmpl")),
    ("src/config.rs", include_str!("../../templates/rust/src/config.rs.tmpl")),
    ("src/api.rs", include_str!("../../templates/rust/src/api.rs.tmpl")),
    ("src/events.rs", include_str!("../../templates/rust/src/events.rs.tmpl")),
    ("src/startup.rs", include_str!("../../templates/rust/src/startup.rs.tmpl")),
    ("migrations/first.up.sql", include_str!("../../templates/rust/migrations/first.up.sql.tmpl")),
    ("migrations/first.down.sql", include_str!("../../templates/rust/migrations/first.down.sql.tmpl")),
    ("tests/api/main.rs", include_str!("../../templates/rust/tests/api/main.rs.tmpl")),
    ("tests/api/helpers.rs", include_str!("../../templates/rust/tests/api/helpers.rs.tmpl")),
    ("tests/api/items.rs", include_str!("../../templates/rust/tests/api/items.rs.tmpl")),
];

/// The crate's files, rendered for `plan`'s name and port.
pub(super) fn files(plan: &Plan) -> Vec<(PathBuf, String)> {
    let first = format!("{}_items", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    TEMPLATES
        .iter()
        .map(|(path, template)| {
            let path = path.replace("first.", &format!("{first}."));
            (PathBuf::from("services").join(plan.name.as_str()).join(path), plan.render(template))
        })
        .collect()
}
