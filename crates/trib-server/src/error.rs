//! One error type for every handler, mapped to a status code and a JSON body. Internal
//! causes are logged, not sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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
    /// No token, or one that is not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid caller without the right.
    #[error("{0}")]
    Forbidden(String),
    /// A refused or failed read, with the read path's own message and hint.
    #[error("{message}")]
    Read {
        status: StatusCode,
        code: &'static str,
        message: String,
        hint: String,
    },
}

impl From<trib_access::Error> for ApiError {
    fn from(e: trib_access::Error) -> Self {
        use trib_access::Error as E;
        let (status, code) = match &e {
            E::InvalidToken | E::RevokedToken { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            E::Forbidden { .. } | E::NotPermitted { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            E::UnknownProduct { .. } => (StatusCode::NOT_FOUND, "unknown_product"),
            E::NoData { .. } => (StatusCode::NOT_FOUND, "no_data"),
            E::Retired { .. } => (StatusCode::GONE, "retired"),
            E::NoSystemTable { .. } => (StatusCode::NOT_FOUND, "no_data"),
            E::Timeout { .. } => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            E::MemoryLimit { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "memory_limit"),
            E::Execution { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "query_failed"),
            E::NotReadOnly { .. } | E::Refused { .. } => (StatusCode::BAD_REQUEST, "refused"),
            E::Syntax { .. } | E::Plan { .. } | E::TimeTravel { .. } => (StatusCode::BAD_REQUEST, "bad_query"),
            E::Token { .. } | E::Io { .. } | E::Lake(_) | E::EngineOption { .. } | E::Internal(_) => {
                tracing::error!(error = %e, "read failed");
                return ApiError::Read {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "internal",
                    message: "the read failed on the server".into(),
                    hint: "the server log has the cause; retry later".into(),
                };
            }
        };
        let text = e.to_string();
        let (message, hint) = match text.split_once("\nhint: ") {
            Some((m, h)) => (m.to_string(), h.to_string()),
            None => (text, String::new()),
        };
        ApiError::Read {
            status,
            code,
            message,
            hint,
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownProduct(_) | ApiError::NotIngestible(_) => StatusCode::NOT_FOUND,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Read { status, .. } => *status,
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
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Read { code, .. } => code,
        }
    }

    fn hint(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(match self {
            ApiError::Read { hint, .. } => return std::borrow::Cow::Borrowed(hint.as_str()),
            ApiError::Unauthorized(_) => "send `Authorization: Bearer <token>`; `trib token create` makes one",
            ApiError::Forbidden(_) => "ask the product's owner for a grant (the contract's `access` list)",
            ApiError::UnknownProduct(_) => "GET /v1/products lists the products; events go to bronze products",
            ApiError::NotIngestible(_) => "send events to the bronze product this one is computed from",
            ApiError::UnsupportedMediaType(_) => "send application/x-ndjson, application/json (an array) or text/csv",
            ApiError::BadRequest(_) => "fix the body and send it again",
            ApiError::Busy(_) | ApiError::Unavailable => {
                "retry after the time in Retry-After, with the same Idempotency-Key"
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = crate::openapi::ErrorBody {
            error: self.code().to_string(),
            message: self.to_string(),
            hint: self.hint().into_owned(),
        };
        let mut resp = (self.status(), axum::Json(body)).into_response();
        if self.status() == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, ApiError::Busy(_) | ApiError::Unavailable) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
