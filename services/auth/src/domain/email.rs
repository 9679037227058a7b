//! An email address, trimmed, in Unicode NFC and lowercased, with a shape a mail server would
//! accept: `Zoë` typed with a combining diaeresis and with a precomposed `ë` is one address.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses an address: one `@`, a local part of at most 64 bytes, a domain with a dot and
    /// no empty labels, at most 254 bytes in all, no spaces or control characters.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim().nfc().collect::<String>().to_lowercase();
        if s.is_empty() || s.len() > 254 {
            return Err("an email address of at most 254 characters");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err("an email address such as ada@example.com");
        };
        let bad_char = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
        let local_ok = !local.is_empty() && local.len() <= 64 && !local.chars().any(bad_char);
        let domain_ok = domain.contains('.')
            && domain
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'))
            && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if local_ok && domain_ok { Ok(Self(s)) } else { Err("an email address such as ada@example.com") }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn valid_addresses_are_normalised() {
        assert_eq!(
            Email::parse("  Ada.Lovelace+x@Example.COM ").map(|e| e.0),
            Ok("ada.lovelace+x@example.com".into())
        );
        assert!(Email::parse("a@b.co").is_ok());
        assert!(Email::parse("üser@exämple.de").is_ok());
    }

    #[test]
    fn composed_and_decomposed_spellings_are_one_address() {
        let composed = Email::parse("zo\u{eb}@example.com").expect("valid");
        let decomposed = Email::parse("zoe\u{308}@example.com").expect("valid");
        assert_eq!(composed, decomposed);
        assert_eq!(composed.as_str(), "zo\u{eb}@example.com");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a b@example.com",
            "a@exa mple.com",
            "a@-x.com",
            "a@x..com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }
}
