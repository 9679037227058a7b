//! Sending one email over SMTP so that it is sent exactly once, whatever crashes.
//!
//! The classic order — send, then record — sends twice if the process dies between the
//! server's "250 queued" and the commit. Here the record is committed in the middle of the
//! DATA phase: after the last byte of the message and before the `.` that ends it.
//! - Dying before the commit: the server never saw the end of the message and discards it;
//!   the event is redelivered and sent then.
//! - Dying after the commit: the server gets (or has got) the `.`; the redelivery finds the
//!   record and does not send again. The one gap is the microseconds between the commit and
//!   writing the `.` — an email lost, never doubled.
//! - Another instance already recorded it (a redelivery raced a slow attempt): this attempt
//!   abandons the connection before the `.`, so the server discards its copy.
//!
//! lettre's blocking connection does the protocol (EHLO, STARTTLS or TLS, AUTH); the record is
//! committed from the iterator that feeds it the message, when it asks for the next part.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use secrecy::ExposeSecret;

use crate::config::{SmtpConfig, SmtpTls};

/// What became of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The server accepted it, and the record is committed.
    Delivered,
    /// Another attempt recorded it first; this one abandoned its copy.
    ByAnotherAttempt,
}

/// Why a send failed, and whether the record had been committed (then the caller removes it).
#[derive(Debug)]
pub struct Failure {
    pub permanent: bool,
    pub reason: String,
    pub committed: bool,
}

/// The record the caller commits before the end of DATA: `Ok(true)` if this attempt recorded
/// the email, `Ok(false)` if another already had.
pub type Commit<'a> = &'a mut (dyn FnMut() -> Result<bool, String> + Send);

enum Abandon {
    RecordedElsewhere,
    CommitFailed(String),
}

/// Feeds lettre the message, then commits before lettre writes the final `.`.
struct CommitBeforeEnd<'a> {
    body: Option<Vec<u8>>,
    commit: Commit<'a>,
    committed: &'a mut bool,
}

impl Iterator for CommitBeforeEnd<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if let Some(body) = self.body.take() {
            return Some(body);
        }
        match (self.commit)() {
            Ok(true) => {
                *self.committed = true;
                None
            }
            // Unwind out of lettre's DATA loop before it writes the `.`; the connection is
            // then dropped mid-message, which the server discards.
            Ok(false) => resume_unwind(Box::new(Abandon::RecordedElsewhere)),
            Err(e) => resume_unwind(Box::new(Abandon::CommitFailed(e))),
        }
    }
}

fn failure(
    stage: &str,
    e: &lettre::transport::smtp::Error,
    permanent_here: bool,
    committed: bool,
) -> Failure {
    Failure { permanent: permanent_here && e.is_permanent(), reason: format!("{stage}: {e}"), committed }
}

/// Sends `message` (blocking: run it on the blocking pool).
pub fn send(config: &SmtpConfig, message: &Message, commit: Commit<'_>) -> Result<Sent, Failure> {
    let hello = ClientId::Domain(config.hello.clone());
    let tls = || {
        TlsParameters::new(config.host.clone()).map_err(|e| Failure {
            permanent: false,
            reason: format!("TLS setup: {e}"),
            committed: false,
        })
    };
    let wrapper = match config.tls {
        SmtpTls::Tls => Some(tls()?),
        _ => None,
    };
    let server = (config.host.as_str(), config.port);
    let mut conn = SmtpConnection::connect(server, Some(config.timeout), &hello, wrapper.as_ref(), None)
        .map_err(|e| failure("connect", &e, false, false))?;
    if config.tls == SmtpTls::Starttls {
        if !conn.can_starttls() {
            return Err(Failure {
                permanent: false,
                reason: format!(
                    "{}:{} does not offer STARTTLS (set SLIPWAY_MAILER_SMTP_TLS)",
                    config.host, config.port
                ),
                committed: false,
            });
        }
        conn.starttls(&tls()?, &hello).map_err(|e| failure("STARTTLS", &e, false, false))?;
    }
    if let Some(user) = &config.username {
        let credentials = Credentials::new(user.clone(), config.password.expose_secret().to_string());
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
            .map_err(|e| failure("AUTH", &e, false, false))?;
    }
    let envelope = message.envelope();
    conn.command(Mail::new(envelope.from().cloned(), vec![]))
        .map_err(|e| failure("MAIL FROM", &e, false, false))?;
    for to in envelope.to() {
        // A 5xx here is about this recipient: permanent.
        conn.command(Rcpt::new(to.clone(), vec![])).map_err(|e| failure("RCPT TO", &e, true, false))?;
    }
    conn.command(Data).map_err(|e| failure("DATA", &e, false, false))?;

    let mut committed = false;
    let body = message.formatted();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        conn.message_iter(CommitBeforeEnd { body: Some(body), commit, committed: &mut committed })
    }));
    match outcome {
        Ok(Ok(_)) => {
            let _ = conn.quit();
            Ok(Sent::Delivered)
        }
        Ok(Err(e)) => Err(failure("end of DATA", &e, true, committed)),
        Err(payload) => match payload.downcast::<Abandon>() {
            Ok(abandon) => match *abandon {
                Abandon::RecordedElsewhere => Ok(Sent::ByAnotherAttempt),
                Abandon::CommitFailed(e) => Err(Failure {
                    permanent: false,
                    reason: format!("recording the email failed: {e}"),
                    committed: false,
                }),
            },
            Err(other) => resume_unwind(other),
        },
    }
}
