//! What this project is made of: the names of its deployables, which scope their settings.
//!
//! The kit is the same in every project and knows no service by name; this crate is the
//! project's own. Every binary gets one shared environment (compose's `.env`, the deploy's
//! secrets), so each must know which `SLIPWAY_<SCOPE>_…` variables belong to another
//! deployable rather than being a typo of its own: the binaries and the CLI pass [`SCOPES`]
//! to `kit::config::Sources`. `slipway new service` adds a line here.
#![warn(missing_docs, unreachable_pub)]

/// The scope of every deployable's settings, upper case as in `SLIPWAY_AUTH_PORT`. Besides
/// the services: `BUS` (the bus's settings, read by every service that uses it), `CLI` (the
/// `slipway` command) and `BACKUP` (the backup service of docker-compose.backup.yml, a
/// script that reads its own).
pub const SCOPES: &[&str] = &["AUTH", "MAILER", "WEB", "GATEWAY", "BUS", "CLI", "BACKUP"];

/// The namespace of the project's images, as the compose files name them (`slipway/auth`,
/// `slipway/slipway` — the CLI's, which runs the migrations and the deploy lock). `slipway
/// init` names it after the product, so two products' images never share a name.
pub const IMAGES: &str = "slipway";

#[cfg(test)]
mod tests {
    use super::SCOPES;

    #[test]
    fn scopes_are_upper_case_words_named_once() {
        for (i, scope) in SCOPES.iter().enumerate() {
            assert!(scope.chars().all(|c| c.is_ascii_uppercase()), "{scope} is not an upper-case word");
            assert!(!SCOPES[..i].contains(scope), "{scope} is listed twice");
        }
    }
}
