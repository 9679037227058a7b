//! A new password: 8 to 256 characters, no composition rules, not one of the most common.

use std::collections::HashSet;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 256;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
});

/// A password that passed the rules. Its Debug output is redacted.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("use at least {MIN_CHARS} characters")]
    TooShort,
    #[error("use at most {MAX_CHARS} characters")]
    TooLong,
    #[error("this is one of the most common passwords; choose one that is harder to guess")]
    Common,
}

impl Password {
    pub fn parse(raw: SecretString) -> Result<Self, PasswordError> {
        let text = raw.expose_secret();
        let chars = text.chars().count();
        if chars < MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        if COMMON.contains(text.to_lowercase().as_str()) {
            return Err(PasswordError::Common);
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Password, PasswordError> {
        Password::parse(SecretString::from(s.to_string()))
    }

    #[test]
    fn length_is_the_only_composition_rule() {
        assert_eq!(parse("short").err(), Some(PasswordError::TooShort));
        assert!(parse("all lowercase words are fine").is_ok());
        assert!(parse(&"é".repeat(MAX_CHARS)).is_ok(), "counted in characters, not bytes");
        assert_eq!(parse(&"x".repeat(MAX_CHARS + 1)).err(), Some(PasswordError::TooLong));
    }

    #[test]
    fn the_most_common_passwords_are_refused_in_any_case() {
        for common in ["password", "12345678", "Baseball", "QWERTYUIOP", "iloveyou"] {
            assert_eq!(parse(common).err(), Some(PasswordError::Common), "{common}");
        }
        assert!(COMMON.len() >= 9_000, "the shipped list is loaded");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let p = parse("correct horse battery").expect("valid");
        assert!(!format!("{p:?}").contains("horse"));
    }
}
