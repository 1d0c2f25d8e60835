//! `Json<T>` whose rejections are problem+json: malformed JSON → 400,
//! missing, unknown or mistyped fields → 422 naming the field (its path from
//! `serde_path_to_error`, e.g. `items[0].quantity`), a NUL character in any
//! string → 422 naming it, wrong content type → 415, too large → 413.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::error::Category;

use crate::error::{ApiError, FieldError};

pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(&req) {
            return Err(ApiError::UnsupportedMediaType(crate::error::SEND_JSON));
        }
        let body = body(req, state).await?;
        parse(&body).map(Json)
    }
}

/// `Json<T>`, or `T::default()` for a request without a body or with a
/// JSON `null` one (an action whose every field is optional, like a refund
/// of the whole order; the document says `null` for such bodies).
pub struct JsonOrEmpty<T>(pub T);

impl<S, T> FromRequest<S> for JsonOrEmpty<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(&req);
        let body = body(req, state).await?;
        if body.is_empty() {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType(crate::error::SEND_JSON));
        }
        match parse::<Option<T>>(&body)? {
            Some(value) => Ok(Self(value)),
            None => Ok(Self(T::default())),
        }
    }
}

/// The request's body, within the size limit.
async fn body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("bad_request", e.body_text())
        }
    })
}

/// `application/json` or `application/<something>+json`.
fn is_json(req: &Request) -> bool {
    let Some(Ok(mime)) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().map(str::to_ascii_lowercase))
    else {
        return false;
    };
    let essence = mime.split(';').next().unwrap_or_default().trim();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let malformed = || {
        ApiError::BadRequest(
            "malformed_json",
            "The request body is not valid JSON.".into(),
        )
    };
    // PostgreSQL cannot store NUL in text: refused here, for every field of
    // every body, instead of failing the write (or a whole batch of them).
    // JSON can only carry it escaped, so bodies without `\u0000` (all but
    // the odd one) are not walked at all.
    if body.windows(6).any(|w| w == br"\u0000") {
        let tree: serde_json::Value = serde_json::from_slice(body).map_err(|_| malformed())?;
        if let Some(field) = nul_field(&tree, String::new()) {
            return Err(ApiError::Validation(vec![FieldError::new(
                field,
                "must not contain a NUL character (U+0000)",
            )]));
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => value,
        Err(e) => {
            let path = e.path().to_string();
            let error = e.into_inner();
            return match error.classify() {
                Category::Data => integral_floats(body)
                    .ok_or_else(|| ApiError::Validation(vec![field_error(&path, &error)])),
                Category::Syntax | Category::Eof | Category::Io => Err(malformed()),
            };
        }
    };
    // Trailing characters after the value.
    deserializer.end().map_err(|_| malformed())?;
    Ok(value)
}

/// The body read again with every whole float (`3.0`, `1e3`) as the integer
/// it is: JSON has one number type, and JSON Schema's `integer` is any
/// number without a fraction, so a client may write a quantity as `3.0`.
/// Tried only once a body failed, so bodies of integers pay nothing.
fn integral_floats<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    fn whole(value: &mut serde_json::Value) -> bool {
        use serde_json::Value;
        match value {
            Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                // Within ±2^53 every whole float is exactly its integer.
                if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
                    *value = Value::from(f as i64);
                    true
                } else {
                    false
                }
            }
            // Every one is rewritten: no stopping at the first.
            Value::Array(items) => items.iter_mut().map(whole).fold(false, |a, b| a | b),
            Value::Object(fields) => fields.values_mut().map(whole).fold(false, |a, b| a | b),
            _ => false,
        }
    }
    let mut tree: serde_json::Value = serde_json::from_slice(body).ok()?;
    if !whole(&mut tree) {
        return None;
    }
    serde_json::from_value(tree).ok()
}

/// The path (`items[0].attendees[1].name`, `body` for the root) of the
/// first string, or object key, holding a NUL character.
fn nul_field(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    let at = |path: String| if path.is_empty() { "body".into() } else { path };
    match value {
        Value::String(s) => s.contains('\0').then(|| at(path)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_field(v, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(k, v)| {
            let inner = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(at(path.clone()))
            } else {
                nul_field(v, inner)
            }
        }),
        _ => None,
    }
}

/// The field a data error is about: its path, or, for a missing field, that
/// field under the path.
fn field_error(path: &str, error: &serde_json::Error) -> FieldError {
    let message = error.to_string();
    // serde_json appends the position; the field says where.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m);
    // A missing field is reported on the object that lacks it; an unknown
    // one's path already ends with it.
    let under = |field: &str| match path {
        "." => field.to_owned(),
        path if path == field || path.ends_with(&format!(".{field}")) => path.to_owned(),
        path => format!("{path}.{field}"),
    };
    for (marker, says) in [
        ("missing field `", "is required"),
        ("unknown field `", "is not a known field"),
    ] {
        if let Some(field) = message
            .strip_prefix(marker)
            .and_then(|rest| rest.split('`').next())
        {
            return FieldError::new(under(field), says);
        }
    }
    match path {
        "." => FieldError::new("body", message),
        path => FieldError::new(path, message),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        tier_id: String,
        quantity: i32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        items: Vec<Item>,
    }

    fn blamed(body: &str) -> (String, String) {
        match parse::<Body>(body.as_bytes()) {
            Err(ApiError::Validation(errors)) => {
                (errors[0].field.clone(), errors[0].message.clone())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_the_field() {
        assert_eq!(
            blamed(r#"{"items": []}"#),
            ("email".into(), "is required".into())
        );
        assert_eq!(
            blamed(r#"{"email": 42, "items": []}"#).0,
            "email",
            "mistyped"
        );
        assert_eq!(
            blamed(r#"{"email": "a@b.c", "items": [{"tier_id": "t", "quantity": "two"}]}"#).0,
            "items[0].quantity"
        );
        assert_eq!(
            blamed(r#"{"email": "a@b.c", "items": [{"tier_id": "t"}]}"#),
            ("items[0].quantity".into(), "is required".into())
        );
        assert_eq!(
            blamed(r#"{"email": "a@b.c", "items": [], "extra": 1}"#),
            ("extra".into(), "is not a known field".into())
        );
        assert_eq!(blamed("42").0, "body", "not an object at all");
    }

    #[test]
    fn a_whole_float_is_the_integer_it_is() {
        let body: Body =
            parse(br#"{"email": "a@b.c", "items": [{"tier_id": "t", "quantity": 2.0}]}"#)
                .expect("2.0 is a quantity");
        assert_eq!(body.items[0].quantity, 2);
        let body: Body =
            parse(br#"{"email": "a@b.c", "items": [{"tier_id": "t", "quantity": 3e0}]}"#)
                .expect("3e0 too");
        assert_eq!(body.items[0].quantity, 3);
        assert_eq!(
            blamed(r#"{"email": "a@b.c", "items": [{"tier_id": "t", "quantity": 2.5}]}"#).0,
            "items[0].quantity",
            "a fraction is not"
        );
    }

    #[test]
    fn a_nul_character_is_refused_where_it_is() {
        assert_eq!(
            blamed(r#"{"email": "a@b.c", "items": [{"tier_id": "t\u0000", "quantity": 1}]}"#),
            (
                "items[0].tier_id".into(),
                "must not contain a NUL character (U+0000)".into()
            )
        );
        assert_eq!(blamed(r#"{"email\u0000": "a"}"#).0, "body", "in a key");
        // An escaped backslash before `u0000` is text, not NUL.
        assert!(matches!(
            parse::<Body>(br#"{"email": "\\u0000", "items": []}"#),
            Ok(Body { .. })
        ));
    }

    #[test]
    fn broken_json_is_malformed() {
        for body in [r#"{"email": "#, "{]", r#"{"email": "a", "items": []} x"#] {
            assert!(
                matches!(
                    parse::<Body>(body.as_bytes()),
                    Err(ApiError::BadRequest("malformed_json", _))
                ),
                "{body}"
            );
        }
    }
}
