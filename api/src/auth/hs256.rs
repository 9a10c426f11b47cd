//! A first-seen token of the usual shape, checked without jsonwebtoken's general decoder.
//!
//! In an opening nearly every request carries a token this process has not seen yet (each
//! caller's first press, and each press that another api process took before). jsonwebtoken's
//! `decode` reads the header twice, keys a new HMAC for each token (two SHA-256 blocks), decodes
//! every part into a new buffer, and reads the claims twice: once for its own checks, once for
//! ours. [`Hs256`] takes tokens of the one shape nearly all of them have: a header among
//! [`HEADERS`], and claims of `sub`, `roles` and `exp` and nothing else. It checks the signature
//! with an HMAC keyed once per process, decodes the claims into a buffer on the stack, and reads
//! them once, borrowing their texts.
//!
//! Whatever it accepts, jsonwebtoken's `decode` under [`super::Jwt`]'s validation accepts too,
//! with the same caller and expiry. What it refuses, jsonwebtoken refuses: a bad signature under a
//! known header, or an expired token. Any other token is left to jsonwebtoken. The test
//! `every_token_reads_as_jsonwebtoken_reads_it` holds the two together.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, de};
use sha2::Sha256;

use super::caller::{Caller, ROLE_ADMIN};

/// The headers of HS256 tokens as they are written: jsonwebtoken's own order (this process's
/// [`super::Jwt::mint`]) and the order most other libraries write.
pub(super) const HEADERS: [&str; 2] = [r#"{"typ":"JWT","alg":"HS256"}"#, r#"{"alg":"HS256","typ":"JWT"}"#];

/// The longest claims read here, decoded; longer ones are left to jsonwebtoken.
const CLAIMS_MAX: usize = 512;

/// What [`Hs256::check`] made of a token.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Plain {
    /// Signed with the secret, unexpired, of the usual shape.
    Valid { caller: Caller, exp: u64 },
    /// Of a known header, and badly signed or expired: jsonwebtoken would refuse it too.
    Refused,
    /// Not of the usual shape: for jsonwebtoken to decide.
    Other,
}

/// The HS256 key, keyed once, and the known headers as they stand in a token.
pub(super) struct Hs256 {
    mac: Hmac<Sha256>,
    headers: [String; 2],
    /// Seconds of clock skew tolerated on `exp`.
    leeway_secs: u64,
}

/// The claims of the usual shape, their texts borrowed from the decoded buffer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims<'a> {
    sub: &'a str,
    #[serde(default)]
    roles: Admin,
    exp: u64,
}

/// Whether a token's `roles` hold the admin role, read without keeping the roles.
#[derive(Default)]
struct Admin(bool);

impl<'de> Deserialize<'de> for Admin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Roles;
        impl<'de> de::Visitor<'de> for Roles {
            type Value = Admin;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of roles")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Admin, A::Error> {
                let mut admin = false;
                while let Some(role) = seq.next_element::<&'de str>()? {
                    admin |= role == ROLE_ADMIN;
                }
                Ok(Admin(admin))
            }
        }
        deserializer.deserialize_seq(Roles)
    }
}

impl Hs256 {
    pub(super) fn new(secret: &[u8], leeway_secs: u64) -> Self {
        Self {
            mac: Hmac::new_from_slice(secret).expect("HMAC takes a key of any length"),
            headers: HEADERS.map(|h| URL_SAFE_NO_PAD.encode(h)),
            leeway_secs,
        }
    }

    /// `token` checked at `now` (epoch seconds), when it is of the usual shape.
    pub(super) fn check(&self, token: &[u8], now: u64) -> Plain {
        let (Some(first), Some(last)) = (
            token.iter().position(|&b| b == b'.'),
            token.iter().rposition(|&b| b == b'.'),
        ) else {
            return Plain::Other;
        };
        if first == last {
            return Plain::Other;
        }
        let (header, claims, signature) = (&token[..first], &token[first + 1..last], &token[last + 1..]);
        if !self.headers.iter().any(|h| h.as_bytes() == header) {
            return Plain::Other;
        }
        let mut decoded = [0u8; 33];
        if URL_SAFE_NO_PAD.decode_slice(signature, &mut decoded) != Ok(32) {
            return Plain::Other;
        }
        let mut mac = self.mac.clone();
        mac.update(&token[..last]);
        if mac.verify_slice(&decoded[..32]).is_err() {
            return Plain::Refused;
        }
        let mut buf = [0u8; CLAIMS_MAX];
        let Ok(n) = URL_SAFE_NO_PAD.decode_slice(claims, &mut buf) else {
            return Plain::Other;
        };
        let Ok(read) = serde_json::from_slice::<Claims>(&buf[..n]) else {
            return Plain::Other;
        };
        let Some(user_id) = read.sub.parse().ok().filter(|id: &i64| *id > 0) else {
            return Plain::Other;
        };
        if now > read.exp.saturating_add(self.leeway_secs) {
            return Plain::Refused;
        }
        Plain::Valid {
            caller: Caller {
                user_id,
                admin: read.roles.0,
            },
            exp: read.exp,
        }
    }
}
