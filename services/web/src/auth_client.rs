//! The auth API, called server-side. Its problem+json answers become messages people read.

use kit::problem::Slug;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

/// Who a call to auth is made for: the request id to carry on, and the visitor's address
/// (found through web's own trusted proxies), sent as `X-Forwarded-For` so that auth limits
/// and audits each visitor rather than web itself.
#[derive(Debug, Clone)]
pub struct Caller {
    pub request_id: String,
    pub client: std::net::IpAddr,
}

/// Tokens auth issued for a session.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    pub email: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A refusal from auth, with its slug (`None`: one the catalogue does not know) and the
/// words to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub slug: Option<Slug>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("auth refused: {}", .0.slug.map_or("an unknown problem", Slug::as_str))]
    Refused(Refusal),
    #[error("auth is unreachable or failed")]
    Unavailable(#[from] anyhow::Error),
}

#[derive(Debug, Clone)]
pub struct AuthClient {
    http: reqwest::Client,
    base: String,
}

impl AuthClient {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?;
        Ok(Self { http, base: base.to_string() })
    }

    async fn call(
        &self,
        path: &str,
        body: Value,
        bearer: Option<&str>,
        caller: &Caller,
    ) -> Result<Value, AuthError> {
        let mut req = self.http.post(format!("{}{path}", self.base)).headers(caller.headers()).json(&body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.map_err(|e| AuthError::Unavailable(e.into()))?;
        Self::answer(res).await
    }

    async fn answer(res: reqwest::Response) -> Result<Value, AuthError> {
        let status = res.status();
        let body: Value = if status == StatusCode::NO_CONTENT {
            Value::Null
        } else {
            res.json().await.unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok(body);
        }
        if status.is_server_error() || body.get("type").is_none() {
            return Err(AuthError::Unavailable(anyhow::anyhow!("auth answered {status}")));
        }
        Err(AuthError::Refused(refusal(&body)))
    }

    pub async fn signup(&self, email: &str, password: &str, caller: &Caller) -> Result<(), AuthError> {
        self.call("/signup", json!({ "email": email, "password": password }), None, caller).await.map(drop)
    }

    /// Activates an account; returns the address it was activated for.
    pub async fn activate(&self, token: &str, caller: &Caller) -> Result<String, AuthError> {
        let body = self.call("/activation", json!({ "token": token }), None, caller).await?;
        Ok(body["email"].as_str().unwrap_or_default().to_string())
    }

    pub async fn resend(&self, email: &str, caller: &Caller) -> Result<(), AuthError> {
        self.call("/activation/resend", json!({ "email": email }), None, caller).await.map(drop)
    }

    pub async fn login(&self, email: &str, password: &str, caller: &Caller) -> Result<Tokens, AuthError> {
        let body = self.call("/login", json!({ "email": email, "password": password }), None, caller).await?;
        serde_json::from_value(body).map_err(|e| AuthError::Unavailable(e.into()))
    }

    pub async fn refresh(&self, refresh_token: &str, caller: &Caller) -> Result<Tokens, AuthError> {
        let body =
            self.call("/token/refresh", json!({ "refresh_token": refresh_token }), None, caller).await?;
        serde_json::from_value(body).map_err(|e| AuthError::Unavailable(e.into()))
    }

    pub async fn logout(&self, refresh_token: &str, caller: &Caller) -> Result<(), AuthError> {
        self.call("/logout", json!({ "refresh_token": refresh_token }), None, caller).await.map(drop)
    }

    pub async fn logout_all(&self, access: &str, caller: &Caller) -> Result<(), AuthError> {
        self.call("/logout/all", json!({}), Some(access), caller).await.map(drop)
    }

    pub async fn request_reset(&self, email: &str, caller: &Caller) -> Result<(), AuthError> {
        self.call("/password/reset", json!({ "email": email }), None, caller).await.map(drop)
    }

    pub async fn confirm_reset(&self, token: &str, password: &str, caller: &Caller) -> Result<(), AuthError> {
        self.call(
            "/password/reset/confirm",
            json!({ "token": token, "new_password": password }),
            None,
            caller,
        )
        .await
        .map(drop)
    }

    pub async fn change_password(
        &self,
        access: &str,
        current: &str,
        new: &str,
        caller: &Caller,
    ) -> Result<(), AuthError> {
        let body = json!({ "current_password": current, "new_password": new });
        self.call("/password/change", body, Some(access), caller).await.map(drop)
    }

    pub async fn me(&self, access: &str, caller: &Caller) -> Result<Me, AuthError> {
        let res = self
            .http
            .get(format!("{}/me", self.base))
            .headers(caller.headers())
            .bearer_auth(access)
            .send()
            .await
            .map_err(|e| AuthError::Unavailable(e.into()))?;
        let body = Self::answer(res).await?;
        serde_json::from_value(body).map_err(|e| AuthError::Unavailable(e.into()))
    }
}

impl Caller {
    fn headers(&self) -> reqwest::header::HeaderMap {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(id) = self.request_id.parse() {
            headers.insert("x-request-id", id);
        }
        if let Ok(ip) = self.client.to_string().parse() {
            headers.insert("x-forwarded-for", ip);
        }
        headers
    }
}

/// The words a person reads for each of auth's refusals.
fn refusal(problem: &Value) -> Refusal {
    let slug = problem["type"].as_str().and_then(Slug::of);
    let retry = problem["detail"].as_str().unwrap_or_default();
    let message = match slug.unwrap_or(Slug::INTERNAL) {
        Slug::INVALID_CREDENTIALS => "Wrong email or password.".to_string(),
        Slug::ACCOUNT_NOT_ACTIVATED => {
            "This account is not activated yet. Open the link we emailed you, or ask for a new one below."
                .to_string()
        }
        Slug::ACCOUNT_LOCKED => format!("Too many failed sign-ins on this account. {retry}"),
        Slug::RATE_LIMITED => format!("Too many attempts. {retry}"),
        Slug::TOKEN_USED => "This link was already used.".to_string(),
        Slug::TOKEN_EXPIRED => "This link has expired. Ask for a new one.".to_string(),
        Slug::TOKEN_INVALID => "This link is not valid. Check that you copied all of it.".to_string(),
        Slug::VALIDATION => problem["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            label(e["field"].as_str().unwrap_or("")),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| "Please check what you entered.".to_string()),
        Slug::UNAUTHORIZED | Slug::INVALID_REFRESH_TOKEN => {
            "Your session has expired. Please log in again.".to_string()
        }
        _ => problem["title"].as_str().unwrap_or("Something went wrong.").to_string(),
    };
    Refusal { slug, message }
}

fn label(field: &str) -> &str {
    match field {
        "email" => "Email",
        "password" | "new_password" => "Password",
        "current_password" => "Current password",
        other => other,
    }
}
