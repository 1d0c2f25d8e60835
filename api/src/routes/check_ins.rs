//! Check-in at the door: a scan admits a ticket once; every other outcome
//! has its own problem code, so a door app can say why without parsing
//! text. Owners, admins and the event's door staff scan; only owners and
//! admins undo.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use boxoffice_core::{
    models::{Admission, DoorScan, Event, Refusal, ScanBy, Staff, check_in},
    tickets::{self, ScanError},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, Bearer, INVALID_TOKEN, Json, Query},
    pagination,
    routes::events::{load_managed, parse_id},
    state::AppState,
};

const DEVICE_MAX: usize = 100;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// The QR payload as scanned (`BOX1.…`), or the ticket code typed in.
    #[schema(min_length = 1)]
    pub code: String,
    /// The scanner's label (a gate, a phone): one line, up to 100 characters.
    #[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{0,100}$")]
    pub device: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdmissionView {
    pub check_in_id: Uuid,
    pub ticket_id: Uuid,
    pub tier_id: Uuid,
    pub tier_name: String,
    pub attendee_name: String,
    pub checked_in_at: DateTime<Utc>,
}

impl From<Admission> for AdmissionView {
    fn from(a: Admission) -> Self {
        Self {
            check_in_id: a.id,
            ticket_id: a.ticket_id,
            tier_id: a.tier_id,
            tier_name: a.tier_name,
            attendee_name: a.attendee_name,
            checked_in_at: a.created_at,
        }
    }
}

/// The event, if `user` may scan its tickets: its owner, an admin, or
/// its door staff (anyone else: 404, so ids leak nothing).
async fn load_scannable(
    conn: &mut diesel_async::AsyncPgConnection,
    user: &AuthUser,
    raw_id: &str,
) -> ApiResult<Event> {
    let event = Event::find(conn, parse_id(raw_id)?).await?;
    if user.can_manage(event.organizer_id) || Staff::is_staff(conn, event.id, user.id()).await? {
        Ok(event)
    } else {
        Err(ApiError::NotFound)
    }
}

/// A scanner's label: trimmed, one line, at most 100 characters.
fn device_label<'a>(raw: Option<&'a str>, field: &str) -> ApiResult<Option<&'a str>> {
    let device = raw.map(str::trim).filter(|d| !d.is_empty());
    if device.is_some_and(|d| d.chars().count() > DEVICE_MAX || d.chars().any(char::is_control)) {
        return Err(ApiError::Validation(vec![FieldError::new(
            field,
            format!("must be one line of at most {DEVICE_MAX} characters"),
        )]));
    }
    Ok(device)
}

/// The problem a scan that names no ticket answers with.
fn unreadable(e: ScanError) -> ApiError {
    match e {
        ScanError::Forged => ApiError::Unprocessable(
            "ticket_signature_invalid",
            "The QR code's signature is not Boxoffice's: forged or altered.".into(),
        ),
        ScanError::Unreadable => ApiError::Unprocessable(
            "ticket_unreadable",
            "Neither a ticket's QR code nor its code.".into(),
        ),
    }
}

/// The problem a refused scan answers with.
fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::Unknown => {
            ApiError::Unprocessable("ticket_unknown", "No ticket has this code.".into())
        }
        Refusal::OtherEvent => ApiError::Unprocessable(
            "ticket_other_event",
            "This ticket is for another event.".into(),
        ),
        Refusal::Refunded => ApiError::Unprocessable(
            "ticket_refunded",
            "This ticket was refunded; it no longer admits anyone.".into(),
        ),
        Refusal::Void => ApiError::Unprocessable(
            "ticket_void",
            "This ticket is void; it no longer admits anyone.".into(),
        ),
        Refusal::SignedOut => INVALID_TOKEN,
        Refusal::NotScanner => ApiError::NotFound,
        Refusal::AlreadyIn { at, by, device } => ApiError::Conflict(
            "already_checked_in",
            format!(
                "Already checked in at {}{}{}.",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                by.map(|b| format!(" by {b}")).unwrap_or_default(),
                device.map(|d| format!(" on {d}")).unwrap_or_default(),
            ),
        ),
    }
}

/// `POST /v1/events/{id}/check-ins`
#[utoipa::path(
    post,
    path = "/v1/events/{id}/check-ins",
    operation_id = "check_ins_scan",
    tag = "check-in",
    summary = "Scan a ticket at the door",
    description = "Admits a valid ticket once. Refusals: `already_checked_in` (409, with when, by whom and on which device), `ticket_signature_invalid`, `ticket_unreadable`, `ticket_unknown`, `ticket_other_event`, `ticket_refunded`, `ticket_void` (422). Two scanners scanning one ticket at once: exactly one is admitted.",
    params(("id" = String, Path, description = "Event id")),
    request_body = ScanRequest,
    responses((status = 201, description = "Admitted", body = AdmissionView), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn scan(
    State(state): State<AppState>,
    // The scan's statement checks the session and the permission: the
    // door's hottest request saves two queries.
    Bearer(session): Bearer,
    Path(event_id): Path<String>,
    Json(req): Json<ScanRequest>,
) -> ApiResult<(StatusCode, Json<AdmissionView>)> {
    let event_id = parse_id(&event_id)?;
    let device = device_label(req.device.as_deref(), "device")?;
    let scanned = tickets::read_scan(state.services.jwt_secret(), &req.code).map_err(unreadable)?;
    let scan = DoorScan {
        event_id,
        scanned,
        session,
        device: device.map(str::to_owned),
    };
    match state.scans.admit(scan).await? {
        Ok(admission) => {
            tracing::info!(event.id = %event_id, ticket.id = %admission.ticket_id, "checked in");
            Ok((StatusCode::CREATED, Json(admission.into())))
        }
        Err(r) => Err(refusal(r)),
    }
}

/// `DELETE /v1/events/{id}/check-ins/{ticket_id}`
#[utoipa::path(
    delete,
    path = "/v1/events/{id}/check-ins/{ticket_id}",
    operation_id = "check_ins_undo",
    tag = "check-in",
    summary = "Undo a mistaken check-in: the ticket can be scanned again",
    params(("id" = String, Path, description = "Event id"), ("ticket_id" = String, Path, description = "Ticket id")),
    responses((status = 204, description = "Undone"), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn undo(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    let ticket_id = parse_id(&ticket_id)?;
    if check_in::undo(&mut conn, event.id, ticket_id, user.id()).await? {
        tracing::info!(event.id = %event.id, ticket.id = %ticket_id, "check-in undone");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckInsView {
    /// Per tier: tickets that admit (not void) and how many are in.
    pub tiers: Vec<TierCountView>,
    /// Standing check-ins, newest first.
    pub items: Vec<CheckInView>,
    /// Pass as `cursor` for the next page of `items`.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TierCountView {
    pub tier_id: Uuid,
    pub name: String,
    pub tickets: i64,
    pub checked_in: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckInView {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub tier_id: Uuid,
    pub attendee_name: String,
    pub device: Option<String>,
    /// The operator's email.
    pub scanned_by: Option<String>,
    pub checked_in_at: DateTime<Utc>,
}

/// `GET /v1/events/{id}/check-ins`
#[utoipa::path(
    get,
    path = "/v1/events/{id}/check-ins",
    operation_id = "check_ins_list",
    tag = "check-in",
    summary = "Who is in: counts per tier and the check-ins, newest first",
    params(("id" = String, Path, description = "Event id"), ListParams),
    responses((status = 200, description = "Check-ins", body = CheckInsView), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::BadRequest, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<CheckInsView>> {
    let limit = pagination::limit_only(params.limit)?;
    let after = pagination::created_after(params.cursor.as_deref())?;
    let mut conn = state.db().await?;
    let event = load_scannable(&mut conn, &user, &event_id).await?;
    let tiers = check_in::counts(&mut conn, event.id).await?;
    let rows = check_in::list(&mut conn, event.id, after, limit + 1).await?;
    let (rows, next_cursor) = pagination::created_page(rows, limit, |r| (r.created_at, r.id));
    Ok(Json(CheckInsView {
        tiers: tiers
            .into_iter()
            .map(|t| TierCountView {
                tier_id: t.tier_id,
                name: t.name,
                tickets: t.tickets,
                checked_in: t.checked_in,
            })
            .collect(),
        items: rows
            .into_iter()
            .map(|r| CheckInView {
                id: r.id,
                ticket_id: r.ticket_id,
                tier_id: r.tier_id,
                attendee_name: r.attendee_name,
                device: r.device,
                scanned_by: r.scanned_by,
                checked_in_at: r.created_at,
            })
            .collect(),
        next_cursor,
    }))
}

/// Changes younger than this are left for the next sync: a transaction
/// still committing may carry an older `updated_at`.
const SYNC_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);
const DOOR_LIST_MAX: i64 = 1000;
const BATCH_MAX: usize = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DoorListParams {
    /// The `next_cursor` of the last sync; absent: from the start.
    pub since: Option<String>,
    /// 1–1000, default 1000.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DoorListView {
    pub items: Vec<DoorTicketView>,
    /// Pass as `since` next time (also when `more` is false: later changes
    /// follow it).
    pub next_cursor: Option<String>,
    /// Another page is ready now.
    pub more: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DoorTicketView {
    pub ticket_id: Uuid,
    /// Hex SHA-256 of the ticket code: a door app compares the hash of
    /// what it scans, and a lost phone leaks no usable code.
    pub code_sha256: String,
    pub tier_id: Uuid,
    /// `valid`, `checked_in` or `void`.
    pub status: String,
    pub updated_at: DateTime<Utc>,
}

/// `GET /v1/events/{id}/check-in-list`
#[utoipa::path(
    get,
    path = "/v1/events/{id}/check-in-list",
    operation_id = "check_ins_door_list",
    tag = "check-in",
    summary = "The event's tickets for offline door apps, changed since the last sync",
    params(("id" = String, Path, description = "Event id"), DoorListParams),
    responses((status = 200, description = "Tickets changed since `since`, oldest change first", body = DoorListView), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::BadRequest, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn door_list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
    Query(params): Query<DoorListParams>,
) -> ApiResult<Json<DoorListView>> {
    let limit = match params.limit {
        None => DOOR_LIST_MAX,
        Some(n) if (1..=DOOR_LIST_MAX).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "limit",
                format!("must be between 1 and {DOOR_LIST_MAX}"),
            )]));
        }
    };
    let since: Option<(DateTime<Utc>, Uuid)> = params
        .since
        .as_deref()
        .map(pagination::decode)
        .transpose()?;
    let mut conn = state.db().await?;
    let event = load_scannable(&mut conn, &user, &event_id).await?;
    let rows = check_in::door_list(&mut conn, event.id, since, SYNC_SETTLE, limit + 1).await?;
    let (rows, more) = pagination::split(rows, limit);
    let next_cursor = rows
        .last()
        .map(|t| pagination::encode(&(t.updated_at, t.id)))
        .or(params.since);
    Ok(Json(DoorListView {
        items: rows
            .into_iter()
            .map(|t| DoorTicketView {
                ticket_id: t.id,
                code_sha256: hex_sha256(&t.code),
                tier_id: t.tier_id,
                status: t.status,
                updated_at: t.updated_at,
            })
            .collect(),
        next_cursor,
        more,
    }))
}

fn hex_sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Scans made offline, up to 500, in the order they were made.
    #[schema(min_items = 1, max_items = 500)]
    pub scans: Vec<OfflineScan>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineScan {
    /// The door app's id for this scan (1–100 characters): uploading it
    /// again is harmless.
    #[schema(min_length = 1, max_length = 100)]
    pub nonce: String,
    #[schema(min_length = 1)]
    pub code: String,
    /// When it was scanned (not later than now).
    pub scanned_at: DateTime<Utc>,
    /// As a single scan's.
    #[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{0,100}$")]
    pub device: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchOutcome {
    pub nonce: String,
    /// `admitted`, `duplicate` (this nonce was uploaded before),
    /// `conflict` (the ticket was already in: see `detail`), or a refusal
    /// code of the single scan (`ticket_unknown`, `ticket_refunded`, …).
    pub outcome: String,
    pub ticket_id: Option<Uuid>,
    pub detail: Option<String>,
}

/// `POST /v1/events/{id}/check-ins:batch`
#[utoipa::path(
    post,
    path = "/v1/events/{id}/check-ins:batch",
    operation_id = "check_ins_batch",
    tag = "check-in",
    summary = "Upload scans a door app made offline",
    description = "Each scan is applied as a single scan would be, at its own time; the first to reach the server admits the ticket and later ones come back as `conflict`. A nonce uploaded again is a `duplicate` and changes nothing.",
    params(("id" = String, Path, description = "Event id")),
    request_body = BatchRequest,
    responses((status = 200, description = "One outcome per scan, in order", body = Vec<BatchOutcome>), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn batch(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
    Json(req): Json<BatchRequest>,
) -> ApiResult<Json<Vec<BatchOutcome>>> {
    let mut errors = Vec::new();
    if req.scans.is_empty() || req.scans.len() > BATCH_MAX {
        errors.push(FieldError::new(
            "scans",
            format!("must hold 1–{BATCH_MAX} scans"),
        ));
    }
    let latest = Utc::now() + chrono::Duration::minutes(5);
    for (i, scan) in req.scans.iter().enumerate() {
        let nonce = scan.nonce.trim();
        if nonce.is_empty() || nonce.chars().count() > 100 {
            errors.push(FieldError::new(
                format!("scans[{i}].nonce"),
                "must be 1–100 characters",
            ));
        }
        // A few minutes of clock skew on the door app are forgiven.
        if scan.scanned_at > latest {
            errors.push(FieldError::new(
                format!("scans[{i}].scanned_at"),
                "must not be in the future",
            ));
        }
        if let Err(ApiError::Validation(e)) =
            device_label(scan.device.as_deref(), &format!("scans[{i}].device"))
        {
            errors.extend(e);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut conn = state.db().await?;
    let event = load_scannable(&mut conn, &user, &event_id).await?;
    let mut outcomes = Vec::with_capacity(req.scans.len());
    for scan in &req.scans {
        let nonce = scan.nonce.trim();
        let outcome =
            |outcome: &str, ticket_id: Option<Uuid>, detail: Option<String>| BatchOutcome {
                nonce: nonce.to_owned(),
                outcome: outcome.to_owned(),
                ticket_id,
                detail,
            };
        if let Some(ticket_id) = check_in::by_nonce(&mut conn, event.id, nonce).await? {
            outcomes.push(outcome("duplicate", Some(ticket_id), None));
            continue;
        }
        let scanned = match tickets::read_scan(state.services.jwt_secret(), &scan.code) {
            Ok(scanned) => scanned,
            Err(e) => {
                let (code, detail) = problem_parts(unreadable(e));
                outcomes.push(outcome(code, None, Some(detail)));
                continue;
            }
        };
        let by = ScanBy {
            session: user.session(),
            device: device_label(scan.device.as_deref(), "device")?,
            at: Some(scan.scanned_at),
            nonce: Some(nonce),
        };
        outcomes.push(
            match check_in::admit(&mut conn, event.id, &scanned, by).await? {
                Ok(a) => outcome("admitted", Some(a.ticket_id), None),
                // Signed out or demoted mid-upload: the rest is not theirs
                // to scan either.
                Err(r @ (Refusal::SignedOut | Refusal::NotScanner)) => return Err(refusal(r)),
                Err(r @ Refusal::AlreadyIn { .. }) => {
                    let (_, detail) = problem_parts(refusal(r));
                    outcome("conflict", scanned.ticket_id, Some(detail))
                }
                Err(r) => {
                    let (code, detail) = problem_parts(refusal(r));
                    outcome(code, scanned.ticket_id, Some(detail))
                }
            },
        );
    }
    let admitted = outcomes.iter().filter(|o| o.outcome == "admitted").count();
    tracing::info!(event.id = %event.id, scans = outcomes.len(), admitted, "offline scans uploaded");
    Ok(Json(outcomes))
}

/// A refusal's stable code and text, for a batch outcome.
fn problem_parts(e: ApiError) -> (&'static str, String) {
    match e {
        ApiError::Unprocessable(code, detail) | ApiError::Conflict(code, detail) => (code, detail),
        other => ("refused", other.to_string()),
    }
}
