//! The one mapping from domain errors to HTTP responses (SPEC §7 error shape).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::Error;
use crate::domain::limits::retry_after_secs;

/// A domain error on its way out over HTTP.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::RoomClosed | Error::RoomNotOpen | Error::RoomFull => {
            StatusCode::FORBIDDEN
        }
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        // A body that is not a JSON object at all is a 400; a bad value is a 422.
        Error::Invalid { field: None, .. } => StatusCode::BAD_REQUEST,
        Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self.0 {
            Error::Internal(e) => tracing::error!(error = ?e, "request failed"),
            Error::Unavailable(why) => tracing::warn!(%why, "database unavailable"),
            _ => {}
        }
        let status = status_of(&self.0);
        let body = serde_json::json!({ "error": crate::wire::error_body(&self.0) });
        let mut resp = (status, axum::Json(body)).into_response();
        if let Error::RateLimited { retry_after_ms } = self.0
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs(retry_after_ms).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
