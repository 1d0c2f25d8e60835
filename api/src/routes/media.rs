//! `GET /media/{*key}`: serves uploaded images from the media store, for
//! deployments whose `MEDIA_PUBLIC_URL` points back at the API (the default).
//! Production usually points it at a CDN or the bucket instead.

use axum::{
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

use crate::{
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Only keys we write are served: `events/{uuid}/{uuid}.{ext}`. Anything else
/// (other prefixes, `..`, odd extensions) is simply not found.
fn content_type(key: &str) -> Option<&'static str> {
    let mut parts = key.split('/');
    let (Some("events"), Some(event), Some(file), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    event.parse::<uuid::Uuid>().ok()?;
    let (stem, ext) = file.split_once('.')?;
    stem.parse::<uuid::Uuid>().ok()?;
    match ext {
        "jpg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        "webp" => Some("image/webp"),
        "gif" => Some("image/gif"),
        _ => None,
    }
}

#[utoipa::path(
    get,
    path = "/media/{key}",
    operation_id = "media_get",
    tag = "events",
    summary = "An uploaded image",
    params(("key" = String, Path, description = "events/{event id}/{image id}.{ext}")),
    responses((status = 200, description = "The image"), crate::openapi::problems::NotFound)
)]
pub async fn get(State(state): State<AppState>, Path(key): Path<String>) -> ApiResult<Response> {
    let content_type = content_type(&key).ok_or(ApiError::NotFound)?;
    let bytes = state
        .services
        .media
        .get(&key)
        .await
        .map_err(|e| ApiError::Unavailable(format!("media store: {e}")))?
        .ok_or(ApiError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Keys are never reused: a new upload gets a new key.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn serves_only_our_keys() {
        let id = uuid::Uuid::nil();
        assert_eq!(
            super::content_type(&format!("events/{id}/{id}.png")),
            Some("image/png")
        );
        for bad in [
            format!("events/{id}/../{id}.png"),
            format!("events/{id}/{id}.svg"),
            format!("other/{id}/{id}.png"),
            format!("events/{id}/{id}.png/x"),
            "events/x/y.png".to_owned(),
        ] {
            assert_eq!(super::content_type(&bad), None, "{bad}");
        }
    }
}
