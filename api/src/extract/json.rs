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
                Err(ApiError::Validation(vec![field_error(&e.body_text())]))
            }
            Err(JsonRejection::JsonSyntaxError(_)) => Err(ApiError::BadRequest(
                "malformed_json",
                "The request body is not valid JSON.".into(),
            )),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::UnsupportedMediaType(crate::error::SEND_JSON))
            }
            Err(JsonRejection::BytesRejection(e))
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
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

/// Turns axum's "Failed to deserialize ...: {path}: {serde message} at line L
/// column C" into a field error naming the path.
fn field_error(text: &str) -> FieldError {
    let rest = text.split_once("target type: ").map_or(text, |(_, r)| r);
    let rest = rest.rsplit_once(" at line ").map_or(rest, |(m, _)| m);
    for (marker, message) in [
        ("missing field `", "is required"),
        ("unknown field `", "is not a known field"),
    ] {
        if let Some(field) = rest
            .split_once(marker)
            .and_then(|(_, r)| r.split('`').next())
        {
            return FieldError::new(field, message);
        }
    }
    match rest.split_once(": ") {
        Some((path, message)) if !path.contains(' ') && path != "." => {
            FieldError::new(path, message)
        }
        _ => FieldError::new("body", rest),
    }
}

#[cfg(test)]
mod tests {
    use super::field_error;

    #[test]
    fn names_the_field() {
        let e = field_error(
            "Failed to deserialize the JSON body into the target type: missing field `display_name` at line 1 column 30",
        );
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("display_name", "is required")
        );
        let e = field_error(
            "Failed to deserialize the JSON body into the target type: email: invalid type: integer `42`, expected a string at line 1 column 11",
        );
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("email", "invalid type: integer `42`, expected a string")
        );
        let e = field_error(
            "Failed to deserialize the JSON body into the target type: invalid type: integer `1`, expected struct X at line 1 column 1",
        );
        assert_eq!(e.field, "body");
    }
}
