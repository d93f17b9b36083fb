//! The one place errors become HTTP responses.

use std::borrow::Cow;
use std::panic::Location;

use axum::extract::rejection::{
    JsonRejection, PathRejection, QueryRejection, RawPathParamsRejection,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use thiserror::Error;

use crate::trace::ErrorCause;

#[derive(Debug, Error)]
pub enum Error {
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("this needs the {0} role")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    Invalid {
        field: Option<Cow<'static, str>>,
        message: String,
    },
    /// A request the framework could not read: bad JSON, wrong content type, too large.
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// A statement ran over the time its request class allows (PostgreSQL's
    /// `statement_timeout`): the caller asked for too much at once.
    #[error("the query ran over its time limit; narrow the time range or the filters")]
    QueryTimeout,
    /// `at` is where the failing statement ran (the `?` in its `store` function), so the
    /// logged cause names the statement without the client learning anything.
    #[error("database, at {at}: {source}")]
    Database {
        source: sqlx::Error,
        at: &'static Location<'static>,
    },
    #[error("{0}")]
    Schema(#[from] flagstream_migrations::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Error {
        Error::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for Error {
    #[track_caller]
    fn from(e: sqlx::Error) -> Self {
        // 57014: query_canceled, which is what statement_timeout raises.
        match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("57014") => {
                Error::QueryTimeout
            }
            _ => Error::Database {
                source: e,
                at: Location::caller(),
            },
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Error::Invalid {
            field: None,
            message: rejection.body_text(),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        Error::Invalid {
            field: None,
            message: rejection.body_text(),
        }
    }
}

impl From<RawPathParamsRejection> for Error {
    fn from(rejection: RawPathParamsRejection) -> Self {
        Error::Invalid {
            field: None,
            message: rejection.body_text(),
        }
    }
}

impl From<JsonRejection> for Error {
    fn from(rejection: JsonRejection) -> Self {
        let status = match rejection.status() {
            // A body of the right shape with a wrong value is the caller's data error.
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::UNPROCESSABLE_ENTITY,
            other => other,
        };
        Error::Rejected {
            status,
            message: rejection.body_text(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Error::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            Error::Rejected { status, .. } => (*status, "bad_request"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::QueryTimeout => (StatusCode::SERVICE_UNAVAILABLE, "query_timeout"),
            Error::Database { .. } | Error::Schema(_) | Error::Config(_) | Error::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut error = json!({ "code": code, "message": self.to_string() });
        // The cause goes to the log, once, from the request's span (see `trace`); the
        // client learns nothing about internals.
        let cause = status
            .is_server_error()
            .then(|| ErrorCause(self.to_string()));
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            error["message"] = "internal error".into();
        }
        if let Error::Invalid {
            field: Some(field), ..
        } = &self
        {
            error["field"] = field.as_ref().into();
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if let Some(cause) = cause {
            response.extensions_mut().insert(cause);
        }
        let headers = response.headers_mut();
        match self {
            Error::Unauthorized => {
                headers.insert("www-authenticate", HeaderValue::from_static("Bearer"));
            }
            Error::TooManyRequests { retry_after } => {
                headers.insert("retry-after", HeaderValue::from(retry_after));
            }
            _ => {}
        }
        response
    }
}
