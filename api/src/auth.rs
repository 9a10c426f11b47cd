//! Bearer tokens: HS256 JWTs with `sub` (user id), `roles` and `exp`.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The admin role.
pub const ROLE_ADMIN: &str = "ROLE_ADMIN";
/// The user role.
pub const ROLE_USER: &str = "ROLE_USER";

/// The claims a token carries.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id, decimal.
    pub sub: String,
    /// Roles, e.g. `ROLE_USER`, `ROLE_ADMIN`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Expiry, epoch seconds.
    pub exp: u64,
}

/// The keys, built once per process.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// Who is calling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's user id.
    pub user_id: i64,
    /// Whether the token carries `ROLE_ADMIN`.
    pub admin: bool,
}

impl Caller {
    /// A user may act for themself; an admin for anyone.
    pub fn may_act_for(&self, user_id: i64) -> bool {
        self.admin || self.user_id == user_id
    }
}

impl Jwt {
    /// Keys for this secret.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// The caller of a valid token, or `None` for a malformed, badly signed or expired one.
    pub fn verify(&self, token: &str) -> Option<Caller> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let user_id: i64 = data.claims.sub.parse().ok().filter(|id| *id > 0)?;
        let admin = data.claims.roles.iter().any(|r| r == ROLE_ADMIN);
        Some(Caller { user_id, admin })
    }

    /// A token for `user_id`, valid for `ttl_secs`.
    pub fn mint(&self, user_id: i64, admin: bool, ttl_secs: u64) -> String {
        let mut roles = vec![ROLE_USER.to_owned()];
        if admin {
            roles.push(ROLE_ADMIN.to_owned());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let claims = Claims {
            sub: user_id.to_string(),
            roles,
            exp: now + ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_token_verifies_and_other_secret_does_not() {
        let jwt = Jwt::new("s1");
        let token = jwt.mint(42, true, 60);
        assert_eq!(
            jwt.verify(&token),
            Some(Caller {
                user_id: 42,
                admin: true
            })
        );
        assert_eq!(Jwt::new("s2").verify(&token), None);
        assert_eq!(jwt.verify("not-a-token"), None);
    }
}
