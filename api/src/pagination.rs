//! Cursor pagination: `?limit=&cursor=` in, `{items, next_cursor}` out. The
//! cursor is opaque to clients (base64url JSON of the last row's sort key).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{ApiError, ApiResult, FieldError};

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub fn limit(value: Option<i64>, errors: &mut Vec<FieldError>) -> i64 {
    match value {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
            DEFAULT_LIMIT
        }
    }
}

pub fn encode<T: Serialize>(key: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).expect("cursor keys serialize"))
}

pub fn decode<T: DeserializeOwned>(cursor: &str) -> ApiResult<T> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(invalid_cursor)
}

pub fn invalid_cursor() -> ApiError {
    ApiError::BadRequest(
        "invalid_cursor",
        "The cursor is not one this endpoint returned for these parameters.".into(),
    )
}

/// Splits a page fetched with `limit + 1` rows into the page and whether
/// another one follows.
pub fn split<T>(mut rows: Vec<T>, limit: i64) -> (Vec<T>, bool) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    (rows, more)
}

/// The cursor of "newest first" lists: keyset on (created_at, id).
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct CreatedCursor {
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub id: uuid::Uuid,
}

/// `(created_at, id)` to start after, from the request's cursor.
pub fn created_after(
    cursor: Option<&str>,
) -> ApiResult<Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>> {
    Ok(cursor
        .map(decode::<CreatedCursor>)
        .transpose()?
        .map(|c| (c.created_at, c.id)))
}

/// Splits rows fetched with `limit + 1` into the page and the cursor of the
/// next one, for a newest-first list.
pub fn created_page<T>(
    rows: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> (chrono::DateTime<chrono::Utc>, uuid::Uuid),
) -> (Vec<T>, Option<String>) {
    let (rows, more) = split(rows, limit);
    let next = more.then(|| {
        let (created_at, id) = key(rows.last().expect("a full page has a last row"));
        encode(&CreatedCursor { created_at, id })
    });
    (rows, next)
}

/// A `limit` alone, as a 422 if out of range.
pub fn limit_only(value: Option<i64>) -> ApiResult<i64> {
    let mut errors = Vec::new();
    let n = limit(value, &mut errors);
    if errors.is_empty() {
        Ok(n)
    } else {
        Err(ApiError::Validation(errors))
    }
}
