//! `Json<T>` whose rejections are problem+json: malformed JSON → 400,
//! missing or mistyped fields → 422 naming the field, wrong content type → 415.

use axum::{
    extract::{FromRequest, Request, rejection::JsonRejection},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{ApiError, FieldError};

pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(JsonRejection::JsonDataError(e)) => {
                // serde's message names the field ("missing field `email`", or
                // "email: invalid type ..."); pull the path out for `field`.
                let message = e.body_text();
                let detail = message.rsplit_once(": ").map_or(message.as_str(), |(_, m)| m).to_owned();
                let field = detail
                    .split('`')
                    .nth(1)
                    .map(str::to_owned)
                    .or_else(|| message.split(':').nth(1).map(|s| s.trim().to_owned()))
                    .unwrap_or_else(|| "body".into());
                Err(ApiError::Validation(vec![FieldError::new(field, detail)]))
            }
            Err(JsonRejection::JsonSyntaxError(_)) => {
                Err(ApiError::BadRequest("malformed_json", "The request body is not valid JSON.".into()))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::BytesRejection(e)) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge)
            }
            Err(e) => Err(ApiError::BadRequest("bad_request", e.body_text())),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
