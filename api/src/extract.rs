//! Axum's extractors with their rejections turned into this API's JSON errors, and every
//! query and path parameter bounded (no NUL, a sane length) before a handler sees it.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::input::{self, MAX_PATH_PARAM};
use crate::Error;

/// Query values are compared with or stored as text: NUL is refused, naming the parameter.
fn check_query(parts: &Parts) -> Result<(), Error> {
    let Ok(axum::extract::Query(pairs)) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
    else {
        return Ok(()); // the typed extraction reports it
    };
    match pairs.into_iter().find(|(_, v)| v.contains('\0')) {
        Some((name, _)) => Err(Error::invalid(
            input::field_name(name),
            "query parameters must not contain NUL characters",
        )),
        None => Ok(()),
    }
}

/// A JSON request body.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let axum::Json(value) = axum::Json::<Value>::from_request(request, state).await?;
        input::no_nul(&value)?;
        serde_json::from_value(value)
            .map(Body)
            .map_err(|e| Error::Rejected {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("Failed to deserialize the JSON body into the target type: {e}"),
            })
    }
}

/// Query-string parameters.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        check_query(parts)?;
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Params(value))
    }
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let raw = axum::extract::RawPathParams::from_request_parts(parts, state).await?;
        for (name, value) in &raw {
            if value.contains('\0') || value.len() > MAX_PATH_PARAM {
                return Err(Error::invalid(
                    input::field_name(name.to_owned()),
                    format!("`{name}` must be at most {MAX_PATH_PARAM} bytes, without NUL"),
                ));
            }
        }
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}
