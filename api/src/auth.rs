//! Bearer tokens: HS256 JWTs with `sub` (user id), `roles` and `exp`.
//!
//! A token that verified once is remembered until its `exp` (plus the leeway): during an opening
//! the same people press again and again, and decoding a JWT (two base64 parts, two JSON
//! documents, an HMAC) was a seventh of the CPU of an answered request. Only tokens that passed
//! full verification with this process's key are remembered, the map is bounded (it is emptied
//! when full), and expiry is still enforced on every use.
//!
//! The map holds a 128-bit SipHash-1-3 of each token under a key drawn at start, not the token:
//! 48 bytes an entry instead of some 230, so it holds a million (a waiting room's crowd, each
//! polling with their token) in about 50 MB. Forging a token that collides with a remembered
//! one without the key takes on the order of 2^64 tries against a running process. Only tokens
//! signed with the secret are ever inserted, so nobody can fill it with colliding keys; the map
//! itself hashes the (already uniform) 128 bits with foldhash.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{SystemTime, UNIX_EPOCH},
};

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

/// Seconds of clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 5;
/// Most verified tokens remembered at once.
const VERIFIED_MAX: usize = 1_000_000;

/// The keys, built once per process, and the tokens already verified.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    verified: RwLock<HashMap<u128, Verified, foldhash::fast::RandomState>>,
    /// The key of the tokens' hashes in `verified`.
    hash_key: (u64, u64),
}

#[derive(Clone, Copy)]
struct Verified {
    caller: Caller,
    exp: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
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
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            verified: RwLock::default(),
            hash_key: uuid::Uuid::new_v4().as_u64_pair(),
        }
    }

    /// The token's name in `verified`.
    fn fingerprint(&self, token: &[u8]) -> u128 {
        use siphasher::sip128::Hasher128;
        let mut h = siphasher::sip128::SipHasher13::new_with_keys(self.hash_key.0, self.hash_key.1);
        std::hash::Hasher::write(&mut h, token);
        h.finish128().as_u128()
    }

    /// The caller of a valid token, or `None` for a malformed, badly signed or expired one.
    pub fn verify(&self, token: impl AsRef<[u8]>) -> Option<Caller> {
        self.verify_at(token.as_ref(), now_secs())
    }

    fn verify_at(&self, token: &[u8], now: u64) -> Option<Caller> {
        let fingerprint = self.fingerprint(token);
        let remembered = self
            .verified
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fingerprint)
            .copied();
        if let Some(v) = remembered {
            return (now <= v.exp + LEEWAY_SECS).then_some(v.caller);
        }
        let token = std::str::from_utf8(token).ok()?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let user_id: i64 = data.claims.sub.parse().ok().filter(|id| *id > 0)?;
        let admin = data.claims.roles.iter().any(|r| r == ROLE_ADMIN);
        let caller = Caller { user_id, admin };
        let mut verified = self.verified.write().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(
            fingerprint,
            Verified {
                caller,
                exp: data.claims.exp,
            },
        );
        Some(caller)
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

    #[test]
    fn a_remembered_token_still_expires() {
        let jwt = Jwt::new("s1");
        let token = jwt.mint(7, false, 60);
        let exp = now_secs() + 60;
        assert_eq!(
            jwt.verify(&token),
            Some(Caller {
                user_id: 7,
                admin: false
            })
        );
        assert!(
            jwt.verify_at(token.as_bytes(), exp).is_some(),
            "remembered and valid"
        );
        assert!(
            jwt.verify_at(token.as_bytes(), exp + LEEWAY_SECS + 1).is_none(),
            "expired"
        );
    }

    #[test]
    fn a_remembered_token_is_not_taken_for_a_forged_one() {
        let jwt = Jwt::new("s1");
        let token = jwt.mint(7, false, 60);
        assert!(jwt.verify(&token).is_some());
        // The same claims under another signature, and the token cut short: both are decoded,
        // and refused, although their claims are the remembered token's.
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        let forged = format!("{signed}.{flipped}{}", &signature[1..]);
        assert_eq!(jwt.verify(&forged), None);
        assert_eq!(jwt.verify(signed), None);
        assert_ne!(
            jwt.fingerprint(token.as_bytes()),
            jwt.fingerprint(forged.as_bytes())
        );
    }
}
