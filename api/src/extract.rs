//! Extractors whose rejections are [`ApiError`]s, so every malformed request gets the one body.

use axum::{
    extract::{FromRequest, FromRequestParts},
    http::{header, request::Parts},
};

use crate::{auth::Caller, error::ApiError, state::AppState};

/// A JSON body; syntax errors, wrong types, missing fields and a missing content type are all
/// `400 INVALID_REQUEST`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct AppJson<T>(pub T);

/// Path parameters, with the same rejection.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AppPath<T>(pub T);

/// Query parameters, with the same rejection (unknown enum values, non-numbers → 400).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct AppQuery<T>(pub T);

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

/// The caller of a valid bearer token; `401 UNAUTHORIZED` otherwise.
pub struct AuthUser(pub Caller);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        state
            .jwt
            .verify(token.trim())
            .map(AuthUser)
            .ok_or(ApiError::Unauthorized)
    }
}

impl AuthUser {
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
