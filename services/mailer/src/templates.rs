//! Email templates: an HTML and a plain-text version of each, rendered with minijinja (HTML
//! auto-escaped), embedded in the binary.

use events::AccountEmail;
use minijinja::{AutoEscape, Environment, context};
use serde_json::Value;

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no email is sent for topic {0:?}")]
    UnknownTopic(String),
    #[error("the event does not fit its topic: {0}")]
    Payload(String),
    #[error("template error: {0}")]
    Template(#[from] minijinja::Error),
}

/// What each email needs: its template and subject.
struct Kind {
    template: &'static str,
    subject: &'static str,
}

fn kind(email: &AccountEmail) -> Kind {
    let (template, subject) = match email {
        AccountEmail::ActivationRequested(_) => ("activation", "Activate your {site} account"),
        AccountEmail::SignupExistingAccount(_) => {
            ("signup_existing", "Someone tried to sign up with your address")
        }
        AccountEmail::PasswordResetRequested(_) => ("password_reset", "Reset your {site} password"),
        AccountEmail::PasswordChanged(_) => ("password_changed", "Your {site} password was changed"),
    };
    Kind { template, subject }
}

/// The event's fields for its templates, with times made readable.
fn fields(email: &AccountEmail) -> Result<serde_json::Map<String, Value>, serde_json::Error> {
    let value = match email {
        AccountEmail::ActivationRequested(e) => serde_json::to_value(e),
        AccountEmail::SignupExistingAccount(e) => serde_json::to_value(e),
        AccountEmail::PasswordResetRequested(e) => serde_json::to_value(e),
        AccountEmail::PasswordChanged(e) => serde_json::to_value(e),
    }?;
    let mut fields = match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if let Some(Value::String(at)) = fields.get("expires_at") {
        let readable = readable_time(at);
        fields.insert("expires_at".into(), Value::String(readable));
    }
    Ok(fields)
}

#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    site_name: String,
    public_url: String,
}

macro_rules! embed {
    ($env:ident, $($name:literal),* $(,)?) => {$(
        $env.add_template($name, include_str!(concat!("../templates/", $name))).expect(concat!("template ", $name, " parses"));
    )*};
}

impl Templates {
    pub fn new(site_name: &str, public_url: &str) -> Self {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        embed!(
            env,
            "layout.html",
            "button.html",
            "activation.html",
            "activation.txt",
            "signup_existing.html",
            "signup_existing.txt",
            "password_reset.html",
            "password_reset.txt",
            "password_changed.html",
            "password_changed.txt",
        );
        Self { env, site_name: site_name.to_string(), public_url: public_url.to_string() }
    }

    /// The recipient and the rendered email for an event.
    pub fn render(&self, topic: &str, event: &Value) -> Result<(String, Rendered), RenderError> {
        let payload = |e: serde_json::Error| RenderError::Payload(e.to_string());
        let email = AccountEmail::parse(topic, event)
            .map_err(payload)?
            .ok_or_else(|| RenderError::UnknownTopic(topic.to_string()))?;
        let kind = kind(&email);
        let subject = kind.subject.replace("{site}", &self.site_name);
        let event = minijinja::Value::from_serialize(fields(&email).map_err(payload)?);
        let ctx = context! { site_name => &self.site_name, public_url => &self.public_url, subject => &subject, ..event };
        let text = self.env.get_template(&format!("{}.txt", kind.template))?.render(&ctx)?;
        let html = self.env.get_template(&format!("{}.html", kind.template))?.render(&ctx)?;
        Ok((email.email().to_string(), Rendered { subject, text, html }))
    }
}

/// `2026-11-29T07:00:00Z` as `on 2026-11-29 at 07:00 UTC`.
fn readable_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&chrono::Utc).format("on %Y-%m-%d at %H:%M UTC").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn templates() -> Templates {
        Templates::new("Acme", "https://acme.test")
    }

    #[test]
    fn every_topic_renders_both_versions_with_its_link() {
        let event = json!({
            "user_id": uuid::Uuid::new_v4(),
            "email": "ada@example.com", "activation_url": "https://acme.test/activate?token=abc",
            "reset_url": "https://acme.test/reset-password?token=def", "login_url": "https://acme.test/login",
            "expires_at": "2026-11-29T07:00:00Z",
        });
        for topic in AccountEmail::TOPICS {
            let (to, email) = templates().render(topic, &event).expect("renders");
            assert_eq!(to, "ada@example.com");
            assert!(email.subject.contains("Acme") || topic.contains("signup_existing"), "{}", email.subject);
            assert!(email.html.starts_with("<!doctype html>"), "{topic}");
            assert!(!email.text.contains('<'), "{topic}: plain text has no markup");
        }
        let (_, activation) = templates().render("auth.activation_requested", &event).expect("renders");
        assert!(activation.text.contains("https://acme.test/activate?token=abc"));
        let html = activation.html.replace("&#x2f;", "/");
        assert!(html.contains("href=\"https://acme.test/activate?token=abc\""), "{html}");
        assert!(activation.text.contains("on 2026-11-29 at 07:00 UTC"));
    }

    #[test]
    fn html_is_escaped_and_bad_events_are_refused() {
        let event = json!({ "user_id": uuid::Uuid::new_v4(), "email": "a@b.co", "reset_url": "https://x.test/?a=1&b=<script>" });
        let (_, email) = templates().render("auth.password_changed", &event).expect("renders");
        assert!(email.html.contains("&lt;script&gt;") && !email.html.contains("<script>"));
        assert!(email.text.contains("<script>"), "plain text is not HTML-escaped");
        assert!(matches!(templates().render("auth.nope", &event), Err(RenderError::UnknownTopic(_))));
        let missing = json!({ "user_id": uuid::Uuid::new_v4(), "email": "a@b.co" });
        let refused = templates().render("auth.activation_requested", &missing).expect_err("refused");
        assert!(
            matches!(refused, RenderError::Payload(_)) && refused.to_string().contains("activation_url"),
            "{refused}"
        );
    }
}
