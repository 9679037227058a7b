//! A new service's name: a DNS label and a Rust identifier at once, and free to take.

use std::fmt;

/// Names a service may not take: the platform's own parts, its crates, and Rust's keywords
/// and standard crates.
const RESERVED: &[&str] = &[
    "auth",
    "mailer",
    "web",
    "gateway",
    "slipway",
    "migrate",
    "postgres",
    "backup",
    "bus",
    "cli",
    "kit",
    "project",
    "token",
    "events",
    "devdb",
    "testkit",
    "xtask",
    "e2e",
    "std",
    "core",
    "alloc",
    "test",
    "proc_macro",
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "yield",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
];

/// A valid, unreserved service name: lower-case letters and digits, starting with a letter,
/// at most 30 characters (so `slipway_<name>`, its database role, stays short).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceName(String);

impl ServiceName {
    /// Checks `name`, saying what is wrong and what would do.
    pub(crate) fn parse(name: &str) -> Result<Self, String> {
        let valid_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if name.is_empty() || name.len() > 30 || !valid_chars || !name.as_bytes()[0].is_ascii_lowercase() {
            return Err(format!(
                "{name:?} is not a service name: use 1 to 30 lower-case letters and digits, starting with a \
                 letter (it names a DNS host, a Rust crate, a Postgres schema and role: `billing`, `notes2`)"
            ));
        }
        if RESERVED.contains(&name) {
            return Err(format!("{name:?} is taken by Slipway itself or by Rust: choose another name"));
        }
        Ok(Self(name.to_string()))
    }

    /// The name as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Its settings' scope: `BILLING` in `SLIPWAY_BILLING_PORT`.
    pub(crate) fn scope(&self) -> String {
        self.0.to_ascii_uppercase()
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ServiceName;

    #[test]
    fn a_service_name_is_a_dns_label_and_a_rust_identifier_not_taken_by_slipway_or_rust() {
        assert_eq!(ServiceName::parse("notes").map(|n| n.scope()), Ok("NOTES".to_string()));
        assert!(ServiceName::parse("notes2").is_ok());
        for bad in ["", "Notes", "2notes", "my-notes", "my_notes", "nötes", &"n".repeat(31)] {
            let err = ServiceName::parse(bad).expect_err(bad);
            assert!(err.contains("lower-case letters and digits"), "{bad}: {err}");
        }
        for taken in ["auth", "gateway", "bus", "type", "std"] {
            assert!(ServiceName::parse(taken).expect_err(taken).contains("taken"), "{taken}");
        }
    }
}
