//! An event's ticket holders for its organizer: a searchable page, or all
//! of them as CSV, streamed page by page so an export of any size holds
//! one page in memory.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use boxoffice_core::models::{Attendee, AttendeeFilter, attendee};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, Json, Query},
    pagination,
    routes::events::load_managed,
    state::AppState,
};

/// Rows per statement of a CSV export.
const EXPORT_PAGE: i64 = 1000;
const Q_MAX: usize = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttendeeParams {
    /// A part of the holder's name or email (case-insensitive).
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Only this tier's holders.
    pub tier: Option<Uuid>,
    /// Only those checked in (`true`) or not yet (`false`).
    pub checked_in: Option<bool>,
    /// `csv`: every holder as CSV (as `Accept: text/csv` does).
    #[param(pattern = "^(csv|json)$")]
    pub format: Option<String>,
    /// 1–100, default 20 (JSON pages only).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttendeeView {
    pub ticket_id: Uuid,
    pub attendee_name: String,
    pub attendee_email: String,
    pub tier_id: Uuid,
    pub tier_name: String,
    pub order_id: Uuid,
    /// `valid` or `checked_in`.
    pub status: String,
    pub checked_in_at: Option<DateTime<Utc>>,
}

impl From<Attendee> for AttendeeView {
    fn from(a: Attendee) -> Self {
        Self {
            ticket_id: a.ticket_id,
            attendee_name: a.attendee_name,
            attendee_email: a.attendee_email,
            tier_id: a.tier_id,
            tier_name: a.tier_name,
            order_id: a.order_id,
            status: a.status,
            checked_in_at: a.checked_in_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttendeePage {
    pub items: Vec<AttendeeView>,
    pub next_cursor: Option<String>,
}

/// `GET /v1/events/{id}/attendees`
#[utoipa::path(
    get,
    path = "/v1/events/{id}/attendees",
    operation_id = "attendees_list",
    tag = "check-in",
    summary = "The event's ticket holders, by name; or all of them as CSV",
    params(("id" = String, Path, description = "Event id"), AttendeeParams),
    responses(
        (status = 200, description = "A page of holders, or with `format=csv` / `Accept: text/csv` all of them as CSV", content(
            (AttendeePage = "application/json"),
            (String = "text/csv"),
        )),
        crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::BadRequest, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<AttendeeParams>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let q = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > Q_MAX) {
        errors.push(FieldError::new(
            "q",
            format!("must be at most {Q_MAX} characters"),
        ));
    }
    let csv = match params.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => {
            errors.push(FieldError::new("format", "must be `csv` or `json`"));
            false
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
    };
    let limit = pagination::limit(params.limit, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let after: Option<(String, Uuid)> = params
        .cursor
        .as_deref()
        .map(pagination::decode)
        .transpose()?;
    let filter = AttendeeFilter {
        q: q.map(str::to_owned),
        tier_id: params.tier,
        checked_in: params.checked_in,
    };
    let event = {
        let mut conn = state.db().await?;
        load_managed(&mut conn, &user, &event_id).await?
    };
    if csv {
        tracing::info!(event.id = %event.id, "attendee export");
        return Ok(export(state, event.id, filter));
    }
    let mut conn = state.db().await?;
    let rows = attendee::page(&mut conn, event.id, &filter, after, limit + 1).await?;
    let (rows, more) = pagination::split(rows, limit);
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|a| pagination::encode(&(&a.name_key, a.ticket_id)))
        })
        .flatten();
    Ok(Json(AttendeePage {
        items: rows.into_iter().map(AttendeeView::from).collect(),
        next_cursor,
    })
    .into_response())
}

/// Every holder as CSV, one statement per page as the client reads. A
/// failure midway ends the body early (the status is already sent): the
/// client sees a truncated download, and the log says why.
fn export(state: AppState, event_id: Uuid, filter: AttendeeFilter) -> Response {
    let header_row = csv_row(&[
        "ticket_id",
        "attendee_name",
        "attendee_email",
        "tier",
        "order_id",
        "status",
        "checked_in_at",
    ]);
    let pages = futures::stream::unfold(Some(None), move |after| {
        let state = state.clone();
        let filter = filter.clone();
        async move {
            let after: Option<(String, Uuid)> = after?;
            let rows = async {
                let mut conn = state.db().await?;
                Ok::<_, ApiError>(
                    attendee::page(&mut conn, event_id, &filter, after, EXPORT_PAGE).await?,
                )
            }
            .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(event.id = %event_id, error = %e, "attendee export failed");
                    return Some((Err(std::io::Error::other("export failed")), None));
                }
            };
            let next = (rows.len() as i64 == EXPORT_PAGE)
                .then(|| rows.last().map(|a| (a.name_key.clone(), a.ticket_id)));
            let mut chunk = String::new();
            for a in &rows {
                chunk.push_str(&csv_row(&[
                    &a.ticket_id.to_string(),
                    &a.attendee_name,
                    &a.attendee_email,
                    &a.tier_name,
                    &a.order_id.to_string(),
                    &a.status,
                    &a.checked_in_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                ]));
            }
            // An empty last page ends the body.
            if rows.is_empty() {
                return None;
            }
            Some((Ok(bytes::Bytes::from(chunk)), next))
        }
    });
    let body = futures::stream::once(async move { Ok(bytes::Bytes::from(header_row)) });
    let mut response = Body::from_stream(futures::StreamExt::chain(body, pages)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!(
            "attachment; filename=\"attendees-{event_id}.csv\""
        ))
        .expect("ASCII"),
    );
    response
}

/// One CSV line (RFC 4180). A field a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is
/// prefixed with `'`, so a holder's name cannot run code on the
/// organizer's machine.
fn csv_row(fields: &[&str]) -> String {
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let field = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{field}")
        } else {
            (*field).to_owned()
        };
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&field);
        }
    }
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::csv_row;

    #[test]
    fn csv_quotes_what_it_must_and_defuses_formulas() {
        assert_eq!(csv_row(&["a", "b c"]), "a,b c\r\n");
        assert_eq!(
            csv_row(&["x,y", "say \"hi\""]),
            "\"x,y\",\"say \"\"hi\"\"\"\r\n"
        );
        assert_eq!(csv_row(&["two\nlines"]), "\"two\nlines\"\r\n");
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx"] {
            assert_eq!(csv_row(&[formula]), format!("'{formula}\r\n"));
        }
        assert_eq!(
            csv_row(&["=HYPERLINK(\"x\",\"y\")"]),
            "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"\r\n"
        );
    }
}
