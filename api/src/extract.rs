//! Extractors whose rejections are [`ApiError`]s, so every malformed request gets the one body.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{HeaderMap, header, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::{auth::Caller, error::ApiError, state::AppState};

/// A JSON object body; syntax errors, wrong types, missing fields, a missing content type, a
/// body that is not an object and text holding a NUL character (which no stored text may hold)
/// are all `400 INVALID_REQUEST`.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_json_type(req.headers())?;
        let bytes = Bytes::from_request(req, state).await?;
        Self::parse(&bytes)
    }
}

/// The content type's check of a JSON body, made before the body is read.
pub(crate) fn check_json_type(headers: &HeaderMap) -> Result<(), ApiError> {
    if json_content_type(headers) {
        Ok(())
    } else {
        Err(ApiError::InvalidRequest(
            "expected a body with `Content-Type: application/json`".into(),
        ))
    }
}

impl<T: DeserializeOwned> AppJson<T> {
    /// The body read.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        // serde reads a JSON array as a struct's fields in order; every body here is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::InvalidRequest("the body must be a JSON object".into()));
        }
        if has_escaped_nul(bytes) {
            return Err(nul_rejection());
        }
        // Parsed once without the path tracking of axum's `Json` (a thousand instructions of an
        // issue request); only a body that fails is parsed again by it, for its message.
        if let Ok(value) = serde_json::from_slice::<T>(bytes) {
            return Ok(AppJson(value));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(bytes)?;
        Ok(AppJson(value))
    }
}

/// A body that names only its user, `{"userId": n}`: what both issue routes read.
pub(crate) trait UserBody: DeserializeOwned {
    /// The body of `user_id`.
    fn of_user(user_id: i64) -> Self;

    /// The body read, as [`AppJson::parse`] reads it. The compact spelling every client sends,
    /// `{"userId":<digits>}`, is read without serde (about 600 instructions of an issue
    /// request); any other spelling, valid or not, is read by serde, which reads this one alike
    /// (the test `a_plain_user_body_reads_as_serde_reads_it`).
    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        match plain_user_id(bytes) {
            Some(user_id) => Ok(Self::of_user(user_id)),
            None => AppJson::parse(bytes).map(|AppJson(body)| body),
        }
    }
}

/// The user of a body spelled exactly `{"userId":<digits>}`, a number JSON allows (no leading
/// zero) that fits an `i64` (up to 18 digits); `None` for any other spelling.
fn plain_user_id(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"{\"userId\":")?.strip_suffix(b"}")?;
    let plain = (1..=18).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1);
    plain.then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

/// axum's default bound on a body read whole (`Bytes` and the extractors made of it).
const BODY_LIMIT: usize = 2_097_152;

/// A body read whole as axum's `Bytes` extractor reads it, with its bound ([`BODY_LIMIT`],
/// `413`) and its rejections (a body that did not arrive in time, `408`; any other error of
/// the connection, `400` with axum's words), without the two layers and the buffer list it
/// wraps around the body (about a thousand instructions of an issue request). A body of one
/// frame, as an issue request's is, is not copied.
pub(crate) async fn read_body<B>(mut body: B) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    let mut first = Bytes::new();
    let mut more: Option<bytes::BytesMut> = None;
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| {
            let e: axum::BoxError = e.into();
            if crate::error::is_body_timeout(&*e) {
                ApiError::BodyTimeout
            } else {
                ApiError::InvalidRequest(format!("Failed to buffer the request body: {e}"))
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let read = first.len() + more.as_ref().map_or(0, |m| m.len());
        if read + data.len() > BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge);
        }
        match &mut more {
            Some(more) => more.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut joined = bytes::BytesMut::with_capacity(read + data.len());
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&data);
                more = Some(joined);
            }
        }
    }
    Ok(more.map_or(first, bytes::BytesMut::freeze))
}

fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    // What every client of the issue routes sends, at the cost of one comparison.
    if value.as_bytes() == b"application/json" {
        return true;
    }
    let Ok(value) = value.to_str() else {
        return false;
    };
    // Without allocating: this runs on every issue request.
    let essence = value.split(';').next().unwrap_or("").trim();
    let tail = essence.len().saturating_sub(5);
    essence.eq_ignore_ascii_case("application/json")
        || (essence
            .get(..12)
            .is_some_and(|t| t.eq_ignore_ascii_case("application/"))
            && essence
                .get(tail..)
                .is_some_and(|t| t.eq_ignore_ascii_case("+json")))
}

/// Whether JSON text holds `\u0000` as an escape (not as an escaped backslash before `u0000`).
fn has_escaped_nul(json: &[u8]) -> bool {
    // Most bodies hold no escape at all: one scan for a backslash answers them.
    if !json.contains(&b'\\') {
        return false;
    }
    json.windows(6)
        .enumerate()
        .any(|(i, w)| w == b"\\u0000" && json[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0)
}

fn nul_rejection() -> ApiError {
    ApiError::InvalidRequest("text may not contain NUL characters".into())
}

/// Path parameters, with the same rejection.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AppPath<T>(pub T);

/// Query parameters, with the same rejection (unknown enum values, non-numbers, NUL → 400).
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(nul_rejection());
        }
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(AppQuery(value))
    }
}

/// An admin's token: `401` without a valid token, `403` without `ROLE_ADMIN`.
pub struct Admin(pub Caller);

impl Admin {
    /// Who acts, as `createdBy`/`updatedBy` record it: the token's `sub`.
    pub fn actor(&self) -> String {
        self.0.user_id.to_string()
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let AuthUser(caller) = AuthUser::from_request_parts(parts, state).await?;
        if caller.admin {
            Ok(Admin(caller))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// Middleware for routes that are all admin-only: `401`/`403` before anything else of the
/// request is parsed, so a non-admin learns nothing from validation errors.
pub async fn require_admin(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    Admin::from_request_parts(&mut parts, &state).await?;
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// The `Bearer` token of an `Authorization` value; the scheme is case-insensitive (RFC 9110
/// §11.1), the token is trimmed. Read as bytes: a header value holds no whitespace beyond
/// ASCII's, and the token needs no `str` until it is verified for the first time.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii_start();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, token) = value.split_at(space);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| token.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// The caller of a valid bearer token; `401 UNAUTHORIZED` otherwise.
pub struct AuthUser(pub Caller);

/// The waiting room's pass (`X-Admission-Pass`), when the request carries one; copied only then.
pub struct AdmissionPass(pub Option<String>);

/// The pass's header, named once: looked up by a `&str`, a name is parsed on every request.
static PASS_HEADER: header::HeaderName =
    header::HeaderName::from_static(issuance_core::admission::PASS_HEADER);

impl<S: Sync> FromRequestParts<S> for AdmissionPass {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(AdmissionPass::from_headers(&parts.headers))
    }
}

impl AdmissionPass {
    /// The pass among `headers`.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        AdmissionPass(
            headers
                .get(&PASS_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        )
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        AuthUser::from_headers(&parts.headers, state)
    }
}

impl AuthUser {
    /// The caller of the bearer token among `headers`; `401 UNAUTHORIZED` without a valid one.
    pub(crate) fn from_headers(headers: &HeaderMap, state: &AppState) -> Result<Self, ApiError> {
        // Not checked for ASCII first: a byte from 0x80 is no base64url digit and matches no
        // remembered token, so [`crate::auth::Jwt::verify`] refuses such a token as it is.
        let token = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .and_then(bearer)
            .ok_or(ApiError::Unauthorized)?;
        state
            .jwt
            .verify(token)
            .map(AuthUser)
            .ok_or(ApiError::Unauthorized)
    }

    /// `403` unless the caller may act for `user_id`.
    pub fn act_for(&self, user_id: i64) -> Result<(), ApiError> {
        if self.0.may_act_for(user_id) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// `403` unless the caller is an admin.
    pub fn admin(&self) -> Result<(), ApiError> {
        if self.0.admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn typed(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn json_media_types_are_recognised_in_any_case() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
        ] {
            assert!(json_content_type(&typed(yes)), "{yes}");
        }
        for no in ["text/plain", "application/jsonx", "text/+json", "+json", ""] {
            assert!(!json_content_type(&typed(no)), "{no}");
        }
        assert!(!json_content_type(&HeaderMap::new()));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for v in ["Bearer abc", "bearer abc", "BEARER  abc ", " Bearer abc"] {
            assert_eq!(bearer(v.as_bytes()), Some(&b"abc"[..]), "{v:?}");
        }
        for v in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", ""] {
            assert_eq!(bearer(v.as_bytes()), None, "{v:?}");
        }
    }

    #[test]
    fn a_plain_user_body_reads_as_serde_reads_it() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Body {
            user_id: i64,
        }
        impl UserBody for Body {
            fn of_user(user_id: i64) -> Self {
                Body { user_id }
            }
        }
        let plain = [
            "{\"userId\":7}",
            "{\"userId\":0}",
            "{\"userId\":123456789012345678}",
        ];
        for body in plain {
            assert!(plain_user_id(body.as_bytes()).is_some(), "{body}");
            let serde: Body = serde_json::from_str(body).unwrap();
            assert_eq!(Body::parse(body.as_bytes()).unwrap(), serde, "{body}");
        }
        // Left to serde: it reads these, or refuses them with its own words.
        let others = [
            "{\"userId\":007}",
            "{\"userId\":-7}",
            "{\"userId\":1234567890123456789}",
            "{\"userId\":99999999999999999999}",
            "{\"userId\":7.0}",
            "{\"userId\":}",
            "{\"userId\":\"7\"}",
            "{ \"userId\": 7 }",
            "{\"userId\":7,\"x\":1}",
            "{\"userId\":7}}",
            "{\"userid\":7}",
            "[7]",
        ];
        for body in others {
            assert_eq!(plain_user_id(body.as_bytes()), None, "{body}");
            let serde = AppJson::<Body>::parse(body.as_bytes()).map(|AppJson(b)| b);
            let ours = Body::parse(body.as_bytes());
            match (ours, serde) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{body}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{body}"),
                (a, b) => panic!("{body}: {:?} against {:?}", a.is_ok(), b.is_ok()),
            }
        }
    }

    #[test]
    fn only_an_escape_of_nul_counts_as_nul() {
        assert!(has_escaped_nul(br#"{"name":"a\u0000b"}"#));
        assert!(has_escaped_nul(br#"{"name":"a\\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"name":"a\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"name":"u0000"}"#));
    }
}
