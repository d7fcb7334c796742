//! Request extractors: the authenticated session (bearer or cookie, with the CSRF
//! check for cookie writes), JSON bodies with spec-shaped errors, the client address.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::domain::Error;
use crate::domain::auth::Session;

pub const COOKIE: &str = "hubbub_session";

/// Where the session token came from; only cookies need the CSRF check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenSource {
    Bearer,
    Cookie,
    Query,
}

pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// True when the request has no `Origin` or comes from this server's own origin
/// (the request's `Host`, or the configured public URL).
pub fn same_origin(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if public_url.is_some_and(|p| p.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!(rest, Some(r) if !host.is_empty() && r.eq_ignore_ascii_case(host))
}

/// The authenticated caller. Rejects with `unauthorized`, or `forbidden` for a
/// cookie-authenticated write from a foreign origin (CSRF).
pub struct Auth(pub Session);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (token, source) = match bearer_token(&parts.headers) {
            Some(t) => (t, TokenSource::Bearer),
            None => match cookie_token(&parts.headers) {
                Some(t) => (t, TokenSource::Cookie),
                None => return Err(Error::Unauthorized("not signed in".into()).into()),
            },
        };
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if source == TokenSource::Cookie
            && !safe
            && !same_origin(&parts.headers, state.chat.settings.public_url.as_deref())
        {
            return Err(Error::forbidden("cross-origin request refused").into());
        }
        Ok(Auth(state.chat.authenticate(&token).await?))
    }
}

/// The client's IP address, for per-IP limits.
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ClientIp(ip))
    }
}

/// A JSON body. Not a JSON object → `invalid` (400, field null); a bad or missing
/// field → `invalid` (422) naming the field; too large → `too_large`.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Error::TooLarge("request body is too large".into())
                } else {
                    Error::Invalid {
                        field: None,
                        message: "cannot read request body".into(),
                    }
                }
            })?;
        parse_json(&bytes).map(Json).map_err(ApiError)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Error::Invalid {
        field: None,
        message: format!("body is not valid JSON: {e}"),
    })?;
    if !value.is_object() {
        return Err(Error::Invalid {
            field: None,
            message: "body must be a JSON object".into(),
        });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = if path != "." {
            Some(path)
        } else {
            inner
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next())
                .map(str::to_string)
        };
        Error::Invalid {
            field: Some(field.unwrap_or_else(|| "body".into()).into()),
            message: inner,
        }
    })
}

/// Query-string parameters with spec-shaped errors.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(q));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let field = e.path().to_string();
                ApiError(Error::Invalid {
                    field: Some(if field == "." {
                        "query".into()
                    } else {
                        field.into()
                    }),
                    message: format!("invalid query string: {}", e.into_inner()),
                })
            })
    }
}

fn form_urlencoded_parse(q: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(q.as_bytes())
}
