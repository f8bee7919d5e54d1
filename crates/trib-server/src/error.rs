//! One error type for every handler, mapped to a status code and a JSON body. Internal
//! causes are logged, not sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("no product `{0}` takes events here")]
    UnknownProduct(String),
    #[error("{0}")]
    NotIngestible(String),
    #[error("unsupported content type `{0}`")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the ingest queue of `{0}` is full")]
    Busy(String),
    /// Storage failed; nothing of the request is durable. Retrying is safe.
    #[error("the commit failed; nothing was stored")]
    Unavailable,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: String,
    hint: &'a str,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownProduct(_) | ApiError::NotIngestible(_) => StatusCode::NOT_FOUND,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::UnknownProduct(_) => "unknown_product",
            ApiError::NotIngestible(_) => "not_ingestible",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Busy(_) => "busy",
            ApiError::Unavailable => "unavailable",
        }
    }

    fn hint(&self) -> &'static str {
        match self {
            ApiError::UnknownProduct(_) => "GET /v1/products lists the products; events go to bronze products",
            ApiError::NotIngestible(_) => "send events to the bronze product this one is computed from",
            ApiError::UnsupportedMediaType(_) => "send application/x-ndjson, application/json (an array) or text/csv",
            ApiError::BadRequest(_) => "fix the body and send it again",
            ApiError::Busy(_) | ApiError::Unavailable => {
                "retry after the time in Retry-After, with the same Idempotency-Key"
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: self.code(),
            message: self.to_string(),
            hint: self.hint(),
        };
        let mut resp = (self.status(), axum::Json(body)).into_response();
        if matches!(self, ApiError::Busy(_) | ApiError::Unavailable) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
