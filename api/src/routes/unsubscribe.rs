//! One-click unsubscribe (RFC 8058): the link in every reminder and
//! organizer's message stops further such email to its address. It needs no
//! login: the signed token is the proof. Mail apps POST to it with the form
//! body `List-Unsubscribe=One-Click`, which is not read (the token says
//! everything). Transactional email (tickets, refunds, password resets) is
//! never suppressed.

use axum::extract::State;
use boxoffice_core::{
    auth::tokens::{UnsubscribeError, verify_unsubscribe},
    models::Suppression,
};
use serde::{Deserialize, Serialize};

use crate::{
    error::{ApiError, ApiResult},
    extract::{Json, Query},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnsubscribeParams {
    /// The token of the emailed link.
    #[param(min_length = 1)]
    pub token: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnsubscribeView {
    /// The address that will get no more reminders or organizers' messages.
    pub address: String,
    /// `false`: it had unsubscribed already.
    pub newly_unsubscribed: bool,
}

/// `POST /v1/unsubscribe?token=`
#[utoipa::path(
    post,
    path = "/v1/unsubscribe",
    operation_id = "unsubscribe",
    tag = "emails",
    summary = "Stop reminders and organizers' messages to an address (one-click link)",
    params(UnsubscribeParams),
    responses((status = 200, description = "Unsubscribed", body = UnsubscribeView), crate::openapi::problems::BadRequest, crate::openapi::problems::RateLimited)
)]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Query(params): Query<UnsubscribeParams>,
) -> ApiResult<Json<UnsubscribeView>> {
    let now = chrono::Utc::now().timestamp();
    let address =
        verify_unsubscribe(state.services.jwt_secret(), &params.token, now).map_err(|e| {
            let code = match e {
                UnsubscribeError::Forged => "unsubscribe_link_invalid",
                UnsubscribeError::Expired => "unsubscribe_link_expired",
            };
            ApiError::BadRequest(code, e.to_string())
        })?;
    let mut conn = state.db().await?;
    let newly_unsubscribed = Suppression::add(&mut conn, &address).await?;
    tracing::info!(newly_unsubscribed, "address unsubscribed");
    Ok(Json(UnsubscribeView {
        address,
        newly_unsubscribed,
    }))
}
