//! The signed-in user's profile.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ProblemDoc;
use crate::context::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::users;

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/me", tag = "accounts", security(("bearer" = [])), responses(
    (status = 200, body = Me),
    (status = 401, body = ProblemDoc)))]
pub async fn me(State(app): State<AppState>, auth: Authenticated) -> Result<Json<Me>, ApiError> {
    let user = users::by_id(&app.pool, auth.user).await?.ok_or(ApiError::Unauthorized)?;
    Ok(Json(Me {
        id: user.id,
        email: user.email,
        created_at: user.created_at,
        activated_at: user.activated_at,
    }))
}
