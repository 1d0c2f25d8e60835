//! The OpenAPI 3.1 document at `/openapi.json`: what is not a route (info,
//! security, tags, shared schemas and problem responses) is here; the paths
//! come from the router (`router::document`), each from its handler's
//! annotation. Swagger UI (vendored into the binary) at `/docs`.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::error::FieldError;

/// An RFC 9457 problem: every error answer has this shape.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `https://boxoffice.dev/problems/<code>`
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable and machine-readable, e.g. `validation_failed`, `sold_out`, `rate_limited`.
    pub code: String,
    pub detail: String,
    /// Per-field errors (422 `validation_failed` only; absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// The error answers operations share, one type per status, so every
/// operation lists them by name instead of repeating them.
pub mod problems {
    use utoipa::IntoResponses;

    use super::Problem;

    macro_rules! problem {
        ($name:ident, $status:literal, $description:literal) => {
            #[derive(IntoResponses)]
            #[response(
                                                    status = $status,
                                                    description = $description,
                                                    content_type = "application/problem+json"
                                                )]
            #[allow(dead_code)]
            pub struct $name(Problem);
        };
    }

    problem!(
        BadRequest,
        400,
        "Malformed request (`malformed_json`, a missing header …)"
    );
    problem!(Unauthorized, 401, "Not signed in or bad token");
    problem!(Forbidden, 403, "Role not allowed");
    problem!(NotFound, 404, "Not found");
    problem!(Conflict, 409, "Conflicts with the current state");
    problem!(PayloadTooLarge, 413, "Body too large");
    problem!(
        UnsupportedMediaType,
        415,
        "Unsupported media type (send `application/json`)"
    );
    problem!(
        Unprocessable,
        422,
        "Invalid fields (`validation_failed` with `errors`) or refused with its own code"
    );
    problem!(
        RateLimited,
        429,
        "Rate limited (`Retry-After` says when to retry)"
    );
    problem!(
        Unavailable,
        503,
        "A backing service is unavailable; retry shortly"
    );
}

/// Multipart body of an image upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImageUpload {
    /// JPEG, PNG, WebP or GIF.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// For a body that POST and PATCH share (PATCH may leave out any field, so
/// the struct's own schema requires none): the schema of POST's body, with
/// `fields` required and not `null` (which stands for "absent").
pub fn required_on_create<T: ToSchema>(
    fields: &[&str],
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use serde_json::Value;
    let mut schema = serde_json::to_value(T::schema()).expect("a schema serializes");
    let properties = schema["properties"]
        .as_object_mut()
        .expect("a body is an object");
    for field in fields {
        let property = properties
            .get_mut(*field)
            .unwrap_or_else(|| panic!("{} has no field `{field}`", T::name()));
        if let Some(Value::Array(types)) = property.get_mut("type") {
            types.retain(|t| t != "null");
            if let [only] = types.as_slice() {
                property["type"] = only.clone();
            }
        }
    }
    schema["required"] = Value::from(fields.to_vec());
    let named: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
    schema["description"] = Value::from(format!(
        "`{}` as it creates one: {} required.",
        T::name(),
        named.join(", ")
    ));
    serde_json::from_value(schema).expect("a schema deserializes")
}

/// `category`: one of the catalog's.
pub fn categories() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(boxoffice_core::catalog::CATEGORIES.iter().copied()))
        .build()
}

/// Outgoing webhooks' event types: one or more of them.
pub fn webhook_event_types() -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(boxoffice_core::webhooks::EVENT_TYPES.iter().copied())),
        )
        .min_items(Some(1))
        .build()
}

/// A day (`2026-12-31`) or an RFC 3339 time.
pub fn day_or_time() -> utoipa::openapi::Schema {
    use utoipa::openapi::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    let string = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    OneOfBuilder::new()
        .item(string(KnownFormat::Date))
        .item(string(KnownFormat::DateTime))
        .build()
        .into()
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Access token from /v1/auth/login (15 min)"))
                    .build(),
            ),
        );
    }
}

/// What every operation can answer, whatever it declares: 400 for a
/// request that cannot be read (a NUL character anywhere in it, a path or
/// query string that does not parse), refused before its handler runs.
/// Found missing by fuzzing against this document.
struct EveryOperation;

impl Modify for EveryOperation {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let bad_request = ResponseBuilder::new()
            .description(
                "The request cannot be read: a NUL character (`nul_character`), a query string \
                 that does not parse (`invalid_query`), a malformed path or body",
            )
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                operation
                    .responses
                    .responses
                    .entry("400".to_owned())
                    .or_insert_with(|| RefOr::T(bad_request.clone()));
            }
        }
    }
}

/// Every free-text string of the document refuses NUL, as every request
/// does (Postgres cannot store it; `extract::json` and the hygiene
/// middleware refuse it): a string schema without a format, enum or pattern
/// of its own gets `^[^\u0000]*$` (one with a `minLength` must not be
/// blank either, as handlers trim first), and so do the property names of
/// every object open to more than its own properties: the document is no
/// looser than the API. Written on the JSON because it concerns every
/// schema, wherever utoipa put it.
fn no_nul(value: &mut serde_json::Value) {
    use serde_json::Value;
    const PATTERN: &str = "^[^\\u0000]*$";
    // Handlers trim text before its minimum length is checked: a required
    // text is not blank either.
    const NOT_BLANK: &str = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$";
    match value {
        Value::Object(fields) => {
            let is = |kind: &str| match fields.get("type") {
                Some(Value::String(t)) => t == kind,
                Some(Value::Array(ts)) => ts.iter().any(|t| t == kind),
                _ => false,
            };
            let free = !["format", "enum", "pattern", "const"]
                .iter()
                .any(|k| fields.contains_key(*k));
            let (string, object) = (is("string"), is("object"));
            if string && free {
                let required = fields.get("minLength").and_then(Value::as_u64) >= Some(1);
                let pattern = if required { NOT_BLANK } else { PATTERN };
                fields.insert("pattern".into(), pattern.into());
            }
            let closed = fields.get("additionalProperties") == Some(&Value::Bool(false));
            if object && !closed && !fields.contains_key("propertyNames") {
                fields.insert(
                    "propertyNames".into(),
                    serde_json::json!({ "pattern": PATTERN }),
                );
            }
            fields.values_mut().for_each(no_nul);
        }
        Value::Array(items) => items.iter_mut().for_each(no_nul),
        _ => {}
    }
}

/// An optional query parameter given blank (`?cursor=&q=`, as a form
/// sends its empty fields) is one not given (`extract::Query`); the
/// document says so with `allowEmptyValue`.
fn blank_is_absent(document: &mut serde_json::Value) {
    use serde_json::Value;
    let Some(Value::Object(paths)) = document.get_mut("paths") else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let Some(Value::Array(parameters)) = operation.get_mut("parameters") else {
            continue;
        };
        for parameter in parameters.iter_mut().filter_map(Value::as_object_mut) {
            let optional_query = parameter.get("in") == Some(&Value::from("query"))
                && parameter.get("required") != Some(&Value::Bool(true));
            if optional_query {
                parameter.insert("allowEmptyValue".into(), Value::Bool(true));
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Boxoffice API",
        description = "Event ticketing built around job queues. Errors are RFC 9457 problem+json with a stable `code`.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    components(schemas(Problem, FieldError, ImageUpload)),
    modifiers(&Bearer),
    tags(
        (name = "auth", description = "Accounts, sign-in, sessions"),
        (name = "events", description = "Events, images and search"),
        (name = "tiers", description = "Ticket tiers"),
        (name = "discounts", description = "Discount codes"),
        (name = "messages", description = "Organizers' messages to ticket holders"),
        (name = "orders", description = "Placing and following orders, refunds"),
        (name = "payouts", description = "Organizers' balances and payouts"),
        (name = "check-in", description = "Door staff, scans and who is in"),
        (name = "tickets", description = "Tickets and QR codes"),
        (name = "emails", description = "Email preferences"),
        (name = "live", description = "Server-sent event streams"),
        (name = "webhooks", description = "Inbound payment provider events"),
        (name = "webhook-endpoints", description = "Organizers' outgoing webhooks: endpoints, deliveries, redelivery"),
        (name = "ops", description = "Queues, metrics, board (admin)"),
        (name = "admin", description = "Users and emails (admin)"),
        (name = "health", description = "Liveness and readiness"),
    ),
)]
pub struct ApiDoc;

/// The document as served: written once, when the router is built.
#[derive(Clone)]
pub struct Document(std::sync::Arc<str>);

impl Document {
    /// The document of the routes served (merged in after `ApiDoc`'s own
    /// modifiers ran, so what concerns every operation is added here).
    pub fn new(mut openapi: utoipa::openapi::OpenApi) -> Self {
        EveryOperation.modify(&mut openapi);
        let mut json = serde_json::to_value(&openapi).expect("an OpenAPI document serializes");
        no_nul(&mut json);
        blank_is_absent(&mut json);
        Self(json.to_string().into())
    }

    pub fn json(&self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.0.to_string(),
        )
            .into_response()
    }
}

const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Boxoffice API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>"#;
const DOCS_INIT: &str =
    "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });";
const BUNDLE: &str = include_str!("../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &str = include_str!("../assets/swagger-ui/swagger-ui.css");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
        ],
        body,
    )
        .into_response()
}

pub async fn docs() -> Response {
    asset(DOCS_HTML, "text/html; charset=utf-8")
}

pub async fn docs_init() -> Response {
    asset(DOCS_INIT, "text/javascript; charset=utf-8")
}

pub async fn docs_bundle() -> Response {
    asset(BUNDLE, "text/javascript; charset=utf-8")
}

pub async fn docs_css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}
