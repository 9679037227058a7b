//! A Rust service's crate, from the templates in `crates/cli/templates/rust/`.

use std::path::PathBuf;

use super::Plan;

/// Each template, where it goes in the crate (`first` becomes the first migration's
/// timestamped name), and what it needs: the database, the bus, or nothing.
const TEMPLATES: &[(&str, Needs, &str)] = &[
    ("Cargo.toml", Needs::Nothing, include_str!("../../templates/rust/Cargo.toml.tmpl")),
    ("src/main.rs", Needs::Nothing, include_str!("../../templates/rust/src/main.rs.tmpl")),
    ("src/lib.rs", Needs::Nothing, include_str!("../../templates/rust/src/lib.rs.tmpl")),
    ("src/config.rs", Needs::Nothing, include_str!("../../templates/rust/src/config.rs.tmpl")),
    ("src/api.rs", Needs::Nothing, include_str!("../../templates/rust/src/api.rs.tmpl")),
    ("src/events.rs", Needs::Bus, include_str!("../../templates/rust/src/events.rs.tmpl")),
    ("src/startup.rs", Needs::Nothing, include_str!("../../templates/rust/src/startup.rs.tmpl")),
    ("migrations/first.up.sql", Needs::Db, include_str!("../../templates/rust/migrations/first.up.sql.tmpl")),
    (
        "migrations/first.down.sql",
        Needs::Db,
        include_str!("../../templates/rust/migrations/first.down.sql.tmpl"),
    ),
    ("tests/api/main.rs", Needs::Nothing, include_str!("../../templates/rust/tests/api/main.rs.tmpl")),
    ("tests/api/helpers.rs", Needs::Nothing, include_str!("../../templates/rust/tests/api/helpers.rs.tmpl")),
    ("tests/api/whoami.rs", Needs::Nothing, include_str!("../../templates/rust/tests/api/whoami.rs.tmpl")),
    ("tests/api/items.rs", Needs::Db, include_str!("../../templates/rust/tests/api/items.rs.tmpl")),
];

/// What a template needs to be part of the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    Db,
    Bus,
}

/// The crate's files, rendered for `plan`'s name, port and parts.
pub(super) fn files(plan: &Plan) -> Vec<(PathBuf, String)> {
    let first = format!("{}_items", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    TEMPLATES
        .iter()
        .filter(|(_, needs, _)| match needs {
            Needs::Nothing => true,
            Needs::Db => plan.db,
            Needs::Bus => plan.bus,
        })
        .map(|(path, _, template)| {
            let path = path.replace("first.", &format!("{first}."));
            let text = plan.render(&select_lines(template, plan.db, plan.bus));
            (PathBuf::from("services").join(plan.name.as_str()).join(path), text)
        })
        .collect()
}

/// Keeps the lines whose marker (`//@tag` or `#@tag` at the end) the service's parts allow,
/// without the marker: `db` and `nodb` with and without a database, `bus` with the bus, and
/// `nobus` with a database but no bus. Unmarked lines are always kept.
fn select_lines(template: &str, db: bool, bus: bool) -> String {
    let mut out = String::new();
    for line in template.lines() {
        let marked = line.rfind("//@").or_else(|| line.rfind("#@")).filter(|&at| {
            let tag = line[at..].trim_start_matches(['/', '#', '@']);
            matches!(tag, "db" | "nodb" | "bus" | "nobus")
        });
        let Some(at) = marked else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let keep = match line[at..].trim_start_matches(['/', '#', '@']) {
            "db" => db,
            "nodb" => !db,
            "bus" => bus,
            _ => db && !bus,
        };
        if keep {
            out.push_str(line[..at].trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::select_lines;

    #[test]
    fn marked_lines_are_kept_for_the_parts_the_service_has_and_lose_their_marker() {
        let template = "always\nwith db //@db\nwithout db //@nodb\nwith bus #@bus\nno bus //@nobus\n//@db\n";
        assert_eq!(select_lines(template, true, true), "always\nwith db\nwith bus\n\n");
        assert_eq!(select_lines(template, true, false), "always\nwith db\nno bus\n\n");
        assert_eq!(select_lines(template, false, false), "always\nwithout db\n");
    }
}
