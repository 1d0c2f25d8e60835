//! Event images: uploaded as multipart, checked (type by content, size,
//! dimensions), stored in the media store, listed on the event.

use axum::{
    extract::{
        Multipart, Path, State,
        multipart::{Field, MultipartError, MultipartRejection},
    },
    http::StatusCode,
};
use boxoffice_core::models::{Event, EventImage};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json},
    routes::events::{ensure_editable, load_managed, parse_id, views::ImageView},
    state::AppState,
};

/// Larger images are refused: they would only be scaled down for display, and
/// some decoders downstream choke on them.
const MAX_DIMENSION: usize = 10_000;

const SEND_IMAGE: &str =
    "Send `multipart/form-data` with the image in a part named `file` (JPEG, PNG, WebP or GIF).";

/// The format, told by the file's own bytes, never by its name or the
/// client's declared type.
fn sniff(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    match imagesize::image_type(bytes).ok()? {
        imagesize::ImageType::Jpeg => Some(("image/jpeg", "jpg")),
        imagesize::ImageType::Png => Some(("image/png", "png")),
        imagesize::ImageType::Webp => Some(("image/webp", "webp")),
        imagesize::ImageType::Gif => Some(("image/gif", "gif")),
        _ => None,
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest("invalid_multipart", e.body_text())
    }
}

/// Reads the part, keeping nothing past `limit` bytes. The rest is read
/// and dropped (the route's body limit bounds it) so that the client gets its
/// 413 instead of a connection closed under a request still being sent.
async fn read_limited(mut field: Field<'_>, limit: usize) -> ApiResult<Bytes> {
    let mut buf = BytesMut::new();
    let mut too_large = false;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        too_large |= buf.len() + chunk.len() > limit;
        if !too_large {
            buf.extend_from_slice(&chunk);
        }
    }
    if too_large {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(buf.freeze())
}

/// `POST /v1/events/{id}/images` (multipart, part `file`).
#[utoipa::path(
    post,
    path = "/v1/events/{id}/images",
    operation_id = "event_images_upload",
    tag = "events",
    summary = "Upload an image (multipart part `file`)",
    params(("id" = String, Path, description = "Event id")),
    request_body(content = crate::openapi::ImageUpload, content_type = "multipart/form-data"),
    responses((status = 201, description = "The image", body = crate::routes::events::views::ImageView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::PayloadTooLarge, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<ImageView>)> {
    let mut multipart = multipart.map_err(|_| ApiError::UnsupportedMediaType(SEND_IMAGE))?;
    let media = &state.services.media;
    let limits = &state.config().media;
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    ensure_editable(&event)?;
    drop(conn);

    let mut bytes = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() == Some("file") {
            bytes = Some(read_limited(field, limits.max_image_bytes).await?);
            break;
        }
    }
    let bytes = bytes.ok_or_else(|| ApiError::validation("file", "is required"))?;
    let (content_type, extension) =
        sniff(&bytes).ok_or(ApiError::UnsupportedMediaType(SEND_IMAGE))?;
    let size = imagesize::blob_size(&bytes)
        .map_err(|_| ApiError::validation("file", "is not a readable image"))?;
    if size.width == 0 || size.height == 0 {
        return Err(ApiError::validation("file", "has no pixels"));
    }
    if size.width > MAX_DIMENSION || size.height > MAX_DIMENSION {
        return Err(ApiError::validation(
            "file",
            &format!("must be at most {MAX_DIMENSION}×{MAX_DIMENSION} pixels"),
        ));
    }

    // Store first, then record: a row never points at a missing object. If
    // the insert fails the object is removed again.
    let image = EventImage {
        id: Uuid::now_v7(),
        event_id: event.id,
        object_key: format!("events/{}/{}.{extension}", event.id, Uuid::now_v7()),
        content_type: content_type.into(),
        width: size.width as i32,
        height: size.height as i32,
        size_bytes: bytes.len() as i64,
        created_at: Utc::now(),
    };
    media
        .put(&image.object_key, bytes)
        .await
        .map_err(|e| ApiError::Unavailable(format!("media store: {e}")))?;
    let max_images = limits.max_images_per_event;
    let mut conn = state.db().await?;
    let inserted = conn
        .transaction::<_, ApiError, _>(async |conn| {
            // The event lock serializes uploads, so the count cannot race.
            let event = Event::lock(conn, image.event_id).await?;
            ensure_editable(&event)?;
            if EventImage::count_for_event(conn, event.id).await? >= max_images {
                return Err(ApiError::Conflict(
                    "too_many_images",
                    format!("An event has at most {max_images} images; delete one first."),
                ));
            }
            Ok(image.insert(conn).await?)
        })
        .await;
    let image = match inserted {
        Ok(image) => image,
        Err(e) => {
            if let Err(cleanup) = media.delete(&image.object_key).await {
                tracing::warn!(key = %image.object_key, error = %cleanup, "orphaned image object");
            }
            return Err(e);
        }
    };
    state.services.event_cache.invalidate_or_log(event.id).await;
    tracing::info!(event.id = %event.id, image.id = %image.id, bytes = image.size_bytes, "image uploaded");
    Ok((StatusCode::CREATED, Json(ImageView::new(&image, media))))
}

/// `DELETE /v1/events/{id}/images/{image_id}`
#[utoipa::path(
    delete,
    path = "/v1/events/{id}/images/{image_id}",
    operation_id = "event_images_delete",
    tag = "events",
    summary = "Delete an image",
    params(("id" = String, Path, description = "Event id"), ("image_id" = String, Path, description = "Image id")),
    responses((status = 204, description = "Deleted"), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, image_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let image_id = parse_id(&image_id)?;
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    let image = EventImage::delete(&mut conn, event.id, image_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // The row is gone, so nothing links to the object any more; a failed
    // delete leaves an unreachable object, not a broken page.
    if let Err(e) = state.services.media.delete(&image.object_key).await {
        tracing::warn!(key = %image.object_key, error = %e, "orphaned image object");
    }
    state.services.event_cache.invalidate_or_log(event.id).await;
    tracing::info!(event.id = %event.id, image.id = %image.id, "image deleted");
    Ok(StatusCode::NO_CONTENT)
}
