//! The contract between services on the bus: every topic's name and payload type, in one
//! place. A publisher serialises these types and a consumer deserialises them, so the two
//! cannot drift apart; a payload that does not parse is refused as a whole, naming the field.
//!
//! Payloads only grow: a new field is optional (`#[serde(default)]`) until every consumer in
//! production reads it, because old and new releases run side by side during a deploy.

#![warn(missing_docs, unreachable_pub)]

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A payload type and the topic it is published on.
pub trait Event: Serialize + DeserializeOwned {
    /// The topic it is published on.
    const TOPIC: &'static str;
}

/// A new or pending account needs its activation email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationRequested {
    /// The account.
    pub user_id: Uuid,
    /// The address the email goes to.
    pub email: String,
    /// The one-time activation link.
    pub activation_url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

/// Someone tried to sign up with an active account's address: its owner is told, and how to
/// log in or reset the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupExistingAccount {
    /// The account.
    pub user_id: Uuid,
    /// The address the email goes to.
    pub email: String,
    /// Where to log in.
    pub login_url: String,
    /// Where to reset the password.
    pub reset_url: String,
}

/// A password reset was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordResetRequested {
    /// The account.
    pub user_id: Uuid,
    /// The address the email goes to.
    pub email: String,
    /// Where to reset the password.
    pub reset_url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

/// A password was changed or reset: its owner is told, with a way back in if it was not them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChanged {
    /// The account.
    pub user_id: Uuid,
    /// The address the email goes to.
    pub email: String,
    /// Where to reset the password.
    pub reset_url: String,
}

impl Event for ActivationRequested {
    const TOPIC: &'static str = "auth.activation_requested";
}
impl Event for SignupExistingAccount {
    const TOPIC: &'static str = "auth.signup_existing_account";
}
impl Event for PasswordResetRequested {
    const TOPIC: &'static str = "auth.password_reset_requested";
}
impl Event for PasswordChanged {
    const TOPIC: &'static str = "auth.password_changed";
}

/// The events that become an email to an account's owner, as the mailer reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEmail {
    /// See [`ActivationRequested`].
    ActivationRequested(ActivationRequested),
    /// See [`SignupExistingAccount`].
    SignupExistingAccount(SignupExistingAccount),
    /// See [`PasswordResetRequested`].
    PasswordResetRequested(PasswordResetRequested),
    /// See [`PasswordChanged`].
    PasswordChanged(PasswordChanged),
}

impl AccountEmail {
    /// Every topic that becomes an email.
    pub const TOPICS: [&'static str; 4] = [
        ActivationRequested::TOPIC,
        SignupExistingAccount::TOPIC,
        PasswordResetRequested::TOPIC,
        PasswordChanged::TOPIC,
    ];

    /// The event of `topic`: `Ok(None)` for a topic that is not an email, an error naming the
    /// problem for a payload that does not fit its topic's type.
    pub fn parse(topic: &str, payload: &Value) -> Result<Option<Self>, serde_json::Error> {
        fn typed<E: Event>(payload: &Value) -> Result<E, serde_json::Error> {
            E::deserialize(payload)
        }
        Ok(Some(match topic {
            ActivationRequested::TOPIC => Self::ActivationRequested(typed(payload)?),
            SignupExistingAccount::TOPIC => Self::SignupExistingAccount(typed(payload)?),
            PasswordResetRequested::TOPIC => Self::PasswordResetRequested(typed(payload)?),
            PasswordChanged::TOPIC => Self::PasswordChanged(typed(payload)?),
            _ => return Ok(None),
        }))
    }

    /// The address the email goes to.
    pub fn email(&self) -> &str {
        match self {
            Self::ActivationRequested(e) => &e.email,
            Self::SignupExistingAccount(e) => &e.email,
            Self::PasswordResetRequested(e) => &e.email,
            Self::PasswordChanged(e) => &e.email,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_event_parses_back_into_the_same_value_under_its_topic() {
        let sent = ActivationRequested {
            user_id: Uuid::new_v4(),
            email: "ada@example.com".into(),
            activation_url: "https://example.com/activate?token=abc".into(),
            expires_at: DateTime::from_timestamp(1_900_000_000, 0).expect("time"),
        };
        let payload = serde_json::to_value(&sent).expect("serialises");
        assert_eq!(payload["expires_at"], "2030-03-17T17:46:40Z", "RFC 3339 on the wire");
        let read = AccountEmail::parse(ActivationRequested::TOPIC, &payload).expect("parses");
        assert_eq!(read, Some(AccountEmail::ActivationRequested(sent)));
    }

    #[test]
    fn an_unknown_topic_is_none_and_a_payload_missing_a_field_is_an_error_naming_it() {
        let payload = serde_json::json!({ "user_id": Uuid::new_v4(), "email": "a@b.co" });
        assert_eq!(AccountEmail::parse("auth.nope", &payload).expect("not an error"), None);
        let e = AccountEmail::parse(PasswordChanged::TOPIC, &payload).expect_err("no reset_url");
        assert!(e.to_string().contains("reset_url"), "{e}");
    }
}
