//! A Python service's files, from the templates in `crates/cli/templates/python/` (its
//! migrations are the Rust template's: SQL is SQL).

use std::path::PathBuf;

use super::Plan;

const TEMPLATES: &[(&str, &str)] = &[
    ("app.py", include_str!("../../templates/python/app.py.tmpl")),
    ("requirements.txt", include_str!("../../templates/python/requirements.txt.tmpl")),
    ("migrations/first.up.sql", include_str!("../../templates/rust/migrations/first.up.sql.tmpl")),
    ("migrations/first.down.sql", include_str!("../../templates/rust/migrations/first.down.sql.tmpl")),
];

/// Python's own `__name__`, which the name placeholder must leave alone.
const MAIN_GUARD: &str = "if __name__ == \"__main__\":";

/// The service's files, rendered for `plan`'s name, scope and port.
pub(super) fn files(plan: &Plan) -> Vec<(PathBuf, String)> {
    let first = format!("{}_items", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    TEMPLATES
        .iter()
        .map(|(path, template)| {
            let path = path.replace("first.", &format!("{first}."));
            let text = plan
                .render(&template.replace(MAIN_GUARD, "\u{0}guard\u{0}"))
                .replace("\u{0}guard\u{0}", MAIN_GUARD);
            (PathBuf::from("services").join(plan.name.as_str()).join(path), text)
        })
        .collect()
}
