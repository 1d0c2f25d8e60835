//! `Query<T>` whose rejection is a problem+json 400 instead of axum's text,
//! and where a parameter given empty (`?cursor=&q=`, as an HTML form sends
//! its blank fields) counts as not given.

use axum::{
    extract::{FromRequestParts, rejection::QueryRejection},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let given = parts.uri.query().map(|query| {
            query
                .split('&')
                .filter(|pair| pair.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
                .collect::<Vec<_>>()
                .join("&")
        });
        let uri = match given {
            Some(query) if !query.is_empty() => format!("/?{query}"),
            _ => "/".to_owned(),
        };
        let uri: axum::http::Uri = uri.parse().map_err(|_| {
            ApiError::BadRequest("invalid_query", "The query string does not parse.".into())
        })?;
        match axum::extract::Query::<T>::try_from_uri(&uri) {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::BadRequest(
                "invalid_query",
                e.body_text()
                    .trim_start_matches("Failed to deserialize query string: ")
                    .to_owned(),
            )),
            Err(e) => Err(ApiError::BadRequest("invalid_query", e.body_text())),
        }
    }
}
