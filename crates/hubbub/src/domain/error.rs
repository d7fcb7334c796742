//! The domain's typed errors. Each maps to one spec error code; the transport turns
//! them into HTTP statuses or gateway replies in exactly one place each.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Invalid {
        field: Option<std::borrow::Cow<'static, str>>,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("too many requests, retry in {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    #[error("this room is closed")]
    RoomClosed,
    #[error("this room is not open yet")]
    RoomNotOpen,
    #[error("this room is full")]
    RoomFull,
    #[error("the database is unavailable; nothing was stored, try again")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            field: Some(std::borrow::Cow::Borrowed(field)),
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::Forbidden(message.into())
    }

    pub fn not_found(what: &str) -> Error {
        Error::NotFound(format!("{what} not found"))
    }

    /// The spec's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::Invalid { .. } => "invalid",
            Error::Conflict(_) => "conflict",
            Error::TooLarge(_) => "too_large",
            Error::RateLimited { .. } => "rate_limited",
            Error::RoomClosed => "room_closed",
            Error::RoomNotOpen => "room_not_open",
            Error::RoomFull => "room_full",
            Error::Unavailable(_) | Error::Internal(_) => "internal",
        }
    }

    /// The message safe to show a client (internals are never leaked).
    pub fn client_message(&self) -> String {
        match self {
            Error::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Error::NotFound("not found".into()),
            StoreError::Conflict(what) => Error::Conflict(what.into()),
            StoreError::RoomFull => Error::RoomFull,
            StoreError::Unavailable(why) => Error::Unavailable(why),
            StoreError::Other(e) => Error::Internal(e),
        }
    }
}

/// Maps a store `NotFound` to a named not-found error.
pub trait OrNotFound<T> {
    fn or_not_found(self, what: &str) -> Result<T>;
}

impl<T> OrNotFound<T> for std::result::Result<T, StoreError> {
    fn or_not_found(self, what: &str) -> Result<T> {
        self.map_err(|e| match e {
            StoreError::NotFound => Error::not_found(what),
            other => other.into(),
        })
    }
}
