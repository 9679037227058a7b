//! Browser sessions: an opaque random id in an HttpOnly cookie, the auth tokens kept
//! server-side in the `web` schema — sealed under a key only the cookie gives (`seal`) — and
//! refreshed transparently before they expire.

mod seal;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::auth_client::{AuthError, Caller, Tokens};
use crate::state::AppState;

/// Cookie names: `__Host-` prefixed (HTTPS only, this exact host, path /) outside dev.
pub fn session_cookie(app: &AppState) -> &'static str {
    if app.config.secure_cookies() { "__Host-slipway_session" } else { "slipway_session" }
}

pub fn csrf_cookie(app: &AppState) -> &'static str {
    if app.config.secure_cookies() { "__Host-slipway_csrf" } else { "slipway_csrf" }
}

/// A `Set-Cookie` value: HttpOnly, Path=/, SameSite, Secure outside dev; `max_age` 0 deletes.
/// Carries the address just activated to the login page (ten minutes, base64url), so the
/// person only types their password.
pub fn login_email_cookie(app: &AppState, email: &str) -> String {
    set_cookie(app, login_email_name(app), &URL_SAFE_NO_PAD.encode(email), 600, "Lax")
}

fn login_email_name(app: &AppState) -> &'static str {
    if app.config.secure_cookies() { "__Host-slipway_login_email" } else { "slipway_login_email" }
}

/// The address [`login_email_cookie`] carried, if any, and the cookie that clears it.
pub fn take_login_email(app: &AppState, headers: &HeaderMap) -> Option<(String, String)> {
    let raw = cookie(headers, login_email_name(app))?;
    let email = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    Some((email, set_cookie(app, login_email_name(app), "", 0, "Lax")))
}

pub fn set_cookie(app: &AppState, name: &str, value: &str, max_age: i64, same_site: &str) -> String {
    let secure = if app.config.secure_cookies() { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}")
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub id_hash: Vec<u8>,
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
}

/// Why a request has no usable session.
#[derive(Debug)]
pub enum NoSession {
    /// No cookie, or it names nothing.
    Anonymous,
    /// It named a session that ended (refresh refused): the login page says so.
    Expired,
    Failed(anyhow::Error),
}

/// Stores a new session for tokens; returns the cookie value and its max age in seconds.
pub async fn create(app: &AppState, tokens: &Tokens) -> anyhow::Result<(String, i64)> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let id = URL_SAFE_NO_PAD.encode(bytes);
    sqlx::query(
        "INSERT INTO sessions (id_hash, access_token, access_expires_at, refresh_token, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash(&id))
    .bind(seal::seal(&id, &tokens.access_token)?)
    .bind(Utc::now() + Duration::seconds(tokens.expires_in))
    .bind(seal::seal(&id, &tokens.refresh_token)?)
    .bind(Utc::now() + Duration::seconds(tokens.refresh_expires_in))
    .execute(&app.pool)
    .await?;
    Ok((id, tokens.refresh_expires_in))
}

/// The request's session, its access token refreshed if it is about to expire.
pub async fn load(app: &AppState, headers: &HeaderMap, caller: &Caller) -> Result<Session, NoSession> {
    let Some(id) = cookie(headers, session_cookie(app)) else { return Err(NoSession::Anonymous) };
    let row: Option<(Session, bool)> = sqlx::query_as::<_, (Vec<u8>, String, DateTime<Utc>, String, bool)>(
        "SELECT id_hash, access_token, access_expires_at, refresh_token, expires_at <= now() FROM sessions WHERE id_hash = $1",
    )
    .bind(hash(id))
    .fetch_optional(&app.pool)
    .await
    .map_err(|e| NoSession::Failed(e.into()))?
    .map(|(id_hash, access, access_expires_at, refresh, over)| {
        // A row that does not open (sealed for another cookie, or from before sealing) is
        // treated as over.
        let opened = seal::open(id, &access).zip(seal::open(id, &refresh));
        let (access_token, refresh_token) = opened.clone().unwrap_or_default();
        (Session { id_hash, access_token, access_expires_at, refresh_token }, over || opened.is_none())
    });
    let Some((session, over)) = row else { return Err(NoSession::Expired) };
    if over {
        destroy(app, &session).await;
        return Err(NoSession::Expired);
    }
    if session.access_expires_at - Utc::now() > Duration::seconds(30) {
        return Ok(session);
    }
    match app.auth.refresh(&session.refresh_token, caller).await {
        Ok(tokens) => {
            let access_expires_at = Utc::now() + Duration::seconds(tokens.expires_in);
            sqlx::query("UPDATE sessions SET access_token = $2, access_expires_at = $3, refresh_token = $4 WHERE id_hash = $1")
                .bind(&session.id_hash)
                .bind(seal::seal(id, &tokens.access_token).map_err(NoSession::Failed)?)
                .bind(access_expires_at)
                .bind(seal::seal(id, &tokens.refresh_token).map_err(NoSession::Failed)?)
                .execute(&app.pool)
                .await
                .map_err(|e| NoSession::Failed(e.into()))?;
            Ok(Session {
                access_token: tokens.access_token,
                access_expires_at,
                refresh_token: tokens.refresh_token,
                ..session
            })
        }
        Err(AuthError::Refused(_)) => {
            destroy(app, &session).await;
            Err(NoSession::Expired)
        }
        Err(AuthError::Unavailable(e)) => Err(NoSession::Failed(e)),
    }
}

/// Forgets the request's session here, by its cookie, without asking auth anything.
pub async fn forget(app: &AppState, headers: &HeaderMap) {
    if let Some(id) = cookie(headers, session_cookie(app)) {
        delete(app, &hash(id)).await;
    }
}

/// Forgets a session here (auth is told separately).
pub async fn destroy(app: &AppState, session: &Session) {
    delete(app, &session.id_hash).await;
}

async fn delete(app: &AppState, id_hash: &[u8]) {
    if let Err(error) =
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&app.pool).await
    {
        tracing::warn!(%error, "deleting a session failed");
    }
}
