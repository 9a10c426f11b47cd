//! Bearer tokens: HS256 JWTs with `sub` (user id), `roles` and `exp`.
//!
//! A token that verified once is remembered until its `exp` (plus the leeway): during an opening
//! the same people press again and again, and decoding a JWT (two base64 parts, two JSON
//! documents, an HMAC) was a seventh of the CPU of an answered request. Only tokens that passed
//! full verification with this process's key are remembered, the map is bounded (each of its
//! shards is emptied when full), and expiry is still enforced on every use.
//!
//! The map is keyed by 120 bits of the token's signature, its HMAC-SHA256 under the secret, read
//! from the signature's base64 text, rather than by a keyed SipHash of the whole token (some 230
//! bytes, on every request). Those bits are the token's only secret part: guessing them for one
//! of a million remembered tokens takes on the order of 2^100 tries. Each entry also holds a
//! 64-bit hash of the whole token, so a token whose header or claims were changed under a
//! remembered signature is not taken for the remembered one: it is decoded, and refused. An entry
//! is 48 bytes instead of some 230, so the map holds a million (a waiting room's crowd, each
//! polling with their token) in about 50 MB. Only tokens signed with the secret are ever
//! inserted, so nobody can fill it with colliding keys; the map itself hashes the (already
//! uniform) key with foldhash.
//!
//! The map is [`SHARDS`] maps, each behind a lock of its own, chosen by the key's low bits. In an
//! opening nearly every press brings a token not seen yet, so the map grows by tens of thousands
//! a second: one map under one lock doubled by rehashing everything it held while every request
//! of the process waited for the lock, up to a fifth of a second at 900,000 tokens. A shard
//! grows by a sixty-fourth of that, and blocks only the tokens that fall into it.
//!
//! A token not remembered yet is checked by [`hs256`] when it has the usual shape, and by
//! jsonwebtoken otherwise.

mod caller;
mod hs256;

pub use caller::{Caller, ROLE_ADMIN, ROLE_USER};

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

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
/// Shards of the verified tokens' map (a power of two).
const SHARDS: usize = 64;

/// One shard of the verified tokens.
type Shard = RwLock<HashMap<u128, Verified, foldhash::fast::RandomState>>;

/// The keys, built once per process, and the tokens already verified.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// The tokens already verified, by [`signature_bits`], in [`SHARDS`] shards.
    verified: Box<[Shard]>,
    /// The hash of a whole token in its entry.
    whole: foldhash::fast::RandomState,
    /// First-seen tokens of the usual shape.
    hs256: hs256::Hs256,
}

#[derive(Clone, Copy)]
struct Verified {
    caller: Caller,
    exp: u64,
    /// The hash of the token remembered, under `Jwt::whole`.
    whole: u64,
}

/// The length of an HS256 signature in unpadded base64url: 32 bytes.
const SIGNATURE_LEN: usize = 43;

/// The 6-bit value of each base64url digit, `0xFF` for any other byte.
const BASE64URL: [u8; 256] = {
    let mut t = [0xFF; 256];
    let digits = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < digits.len() {
        t[digits[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// 120 bits of an HS256 token's signature, from its first 20 base64url digits; `None` when the
/// token's last part is not a signature's length or those digits are not base64url. Two 60-bit
/// halves, each gathered in a machine word.
fn signature_bits(token: &[u8]) -> Option<u128> {
    let dot = token.len().checked_sub(SIGNATURE_LEN + 1)?;
    if token[dot] != b'.' {
        return None;
    }
    let digits = &token[dot + 1..dot + 21];
    let (mut high, mut low, mut bad) = (0u64, 0u64, 0u8);
    for i in 0..10 {
        let (h, l) = (
            BASE64URL[usize::from(digits[i])],
            BASE64URL[usize::from(digits[10 + i])],
        );
        bad |= h | l;
        high = (high << 6) | u64::from(h & 0x3F);
        low = (low << 6) | u64::from(l & 0x3F);
    }
    (bad & 0xC0 == 0).then_some((u128::from(high) << 64) | u128::from(low))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
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
            verified: (0..SHARDS).map(|_| Shard::default()).collect(),
            whole: foldhash::fast::RandomState::default(),
            hs256: hs256::Hs256::new(secret.as_bytes(), LEEWAY_SECS),
        }
    }

    /// The caller of a valid token, or `None` for a malformed, badly signed or expired one.
    pub fn verify(&self, token: impl AsRef<[u8]>) -> Option<Caller> {
        self.verify_at(token.as_ref(), now_secs())
    }

    fn verify_at(&self, token: &[u8], now: u64) -> Option<Caller> {
        // A token without a signature's shape is decoded (and refused) without being remembered.
        let signature = signature_bits(token);
        let whole = std::hash::BuildHasher::hash_one(&self.whole, token);
        let remembered = signature.and_then(|s| {
            self.shard(s)
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&s)
                .copied()
        });
        if let Some(v) = remembered.filter(|v| v.whole == whole) {
            return (now <= v.exp + LEEWAY_SECS).then_some(v.caller);
        }
        let (caller, exp) = match self.hs256.check(token, now) {
            hs256::Plain::Valid { caller, exp } => (caller, exp),
            hs256::Plain::Refused => return None,
            hs256::Plain::Other => self.decode(token)?,
        };
        // An HS256 signature always has its shape; the check only keeps the map's key honest.
        if let Some(signature) = signature {
            let mut verified = self.shard(signature).write().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= VERIFIED_MAX / SHARDS {
                verified.clear();
            }
            verified.insert(signature, Verified { caller, exp, whole });
        }
        Some(caller)
    }

    /// The shard that holds (or would hold) the token of these signature bits.
    fn shard(&self, signature: u128) -> &Shard {
        &self.verified[signature as usize & (SHARDS - 1)]
    }

    /// The caller and expiry of `token` as jsonwebtoken decodes and validates it.
    fn decode(&self, token: &[u8]) -> Option<(Caller, u64)> {
        let token = std::str::from_utf8(token).ok()?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let user_id: i64 = data.claims.sub.parse().ok().filter(|id| *id > 0)?;
        let admin = data.claims.roles.iter().any(|r| r == ROLE_ADMIN);
        Some((Caller { user_id, admin }, data.claims.exp))
    }

    /// A token for `user_id`, valid for `ttl_secs`.
    pub fn mint(&self, user_id: i64, admin: bool, ttl_secs: u64) -> String {
        let mut roles = vec![ROLE_USER.to_owned()];
        if admin {
            roles.push(ROLE_ADMIN.to_owned());
        }
        let claims = Claims {
            sub: user_id.to_string(),
            roles,
            exp: now_secs() + ttl_secs,
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
    fn tokens_are_remembered_in_their_shard_and_a_full_shard_is_emptied() {
        let jwt = Jwt::new("s1");
        let held =
            |jwt: &Jwt| -> Vec<usize> { jwt.verified.iter().map(|s| s.read().unwrap().len()).collect() };
        let tokens: Vec<String> = (1..=256).map(|user| jwt.mint(user, false, 60)).collect();
        for token in &tokens {
            assert!(jwt.verify(token).is_some());
            let bits = signature_bits(token.as_bytes()).unwrap();
            assert!(jwt.shard(bits).read().unwrap().contains_key(&bits));
        }
        let counts = held(&jwt);
        assert_eq!(counts.iter().sum::<usize>(), tokens.len());
        assert!(
            counts.iter().filter(|n| **n > 0).count() > SHARDS / 2,
            "spread over the shards: {counts:?}"
        );

        // A shard at its bound is emptied before it takes the next token; the others keep theirs.
        let token = jwt.mint(1_000, false, 60);
        let bits = signature_bits(token.as_bytes()).unwrap();
        let index = (0..SHARDS)
            .position(|i| std::ptr::eq(&jwt.verified[i], jwt.shard(bits)))
            .unwrap();
        let others: usize = counts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, n)| n)
            .sum();
        {
            let mut shard = jwt.shard(bits).write().unwrap();
            let filler = Verified {
                caller: Caller {
                    user_id: 1,
                    admin: false,
                },
                exp: 0,
                whole: 0,
            };
            for k in 0..(VERIFIED_MAX / SHARDS) as u128 {
                shard.insert((k + 1) << 64 | index as u128, filler);
            }
        }
        assert!(jwt.verify(&token).is_some());
        let counts = held(&jwt);
        assert_eq!(
            counts[index], 1,
            "the full shard was emptied and holds the new token"
        );
        assert_eq!(counts.iter().sum::<usize>(), others + 1);
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
    }

    #[test]
    fn other_claims_under_a_remembered_signature_are_refused() {
        let jwt = Jwt::new("s1");
        let token = jwt.mint(7, false, 60);
        assert!(jwt.verify(&token).is_some());
        // Another user's claims, and the same claims with another header, under the remembered
        // token's signature: the map's key is the same, the token is not.
        let other = jwt.mint(8, false, 60);
        let (other_signed, _) = other.rsplit_once('.').unwrap();
        let (_, signature) = token.rsplit_once('.').unwrap();
        let swapped = format!("{other_signed}.{signature}");
        assert_eq!(
            signature_bits(swapped.as_bytes()),
            signature_bits(token.as_bytes())
        );
        assert_eq!(jwt.verify(&swapped), None);
        let reheaded = format!("x{token}");
        assert_eq!(jwt.verify(&reheaded), None);
        assert!(
            jwt.verify(&token).is_some(),
            "the remembered token still verifies"
        );
    }

    #[test]
    fn a_remembered_token_with_bytes_beyond_ascii_is_refused() {
        let jwt = Jwt::new("s1");
        let token = jwt.mint(7, false, 60);
        assert!(jwt.verify(&token).is_some());
        let mut trailing = token.clone().into_bytes();
        trailing.push(0x80);
        assert_eq!(jwt.verify(&trailing), None);
        assert_eq!(jwt.verify(format!("{token}é")), None);
        let mut inside = token.clone().into_bytes();
        let at = inside.len() - 5;
        inside[at] = 0xC3;
        assert_eq!(jwt.verify(&inside), None);
        let mut in_signature = token.into_bytes();
        let at = in_signature.len() - 40;
        in_signature.splice(at..at + 1, "é".bytes());
        in_signature.remove(in_signature.len() - 1);
        assert_eq!(jwt.verify(&in_signature), None);
    }

    #[test]
    fn signature_bits_are_the_signatures_first_bits() {
        let jwt = Jwt::new("s1");
        let token = jwt.mint(7, false, 60);
        let (_, signature) = token.rsplit_once('.').unwrap();
        assert_eq!(signature.len(), SIGNATURE_LEN);
        // The first 120 bits of the signature's bytes, in two halves.
        let digits = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bits: String = signature.bytes().take(20).fold(String::new(), |mut acc, b| {
            let v = digits.iter().position(|&d| d == b).unwrap();
            acc.push_str(&format!("{v:06b}"));
            acc
        });
        let half = |bits: &str| u128::from_str_radix(bits, 2).unwrap();
        let expected = (half(&bits[..60]) << 64) | half(&bits[60..]);
        assert_eq!(signature_bits(token.as_bytes()), Some(expected));
        // Not a signature's shape: too short, no dot before it, a digit outside base64url.
        assert_eq!(signature_bits(b"a.b.c"), None);
        let undotted = token.replace('.', "");
        assert_eq!(signature_bits(undotted.as_bytes()), None);
        let bad = format!(
            "{}.{}={}",
            token.rsplit_once('.').unwrap().0,
            &signature[..10],
            &signature[11..]
        );
        assert_eq!(signature_bits(bad.as_bytes()), None);
    }

    /// The first-seen tokens that [`super::hs256`] checks, against jsonwebtoken.
    mod hs256 {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        use hmac::{Hmac, Mac};
        use sha2::Sha256;

        use super::super::{
            Jwt, LEEWAY_SECS,
            hs256::{HEADERS, Hs256, Plain},
            now_secs,
        };

        const SECRET: &str = "s1";

        fn b64(b: &[u8]) -> String {
            URL_SAFE_NO_PAD.encode(b)
        }

        /// `header` and `claims` (JSON texts) signed with HMAC-SHA256 under `secret`, whatever the
        /// header says.
        fn signed(header: &str, claims: &str, secret: &str) -> String {
            let signing = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(signing.as_bytes());
            format!("{signing}.{}", b64(&mac.finalize().into_bytes()))
        }

        #[test]
        fn every_token_reads_as_jsonwebtoken_reads_it() {
            let jwt = Jwt::new(SECRET);
            let now = now_secs();
            let (usual, other_order) = (HEADERS[0], HEADERS[1]);
            let user = |exp: u64| format!(r#"{{"sub":"7","roles":["ROLE_USER"],"exp":{exp}}}"#);
            let fresh = now + 600;
            let mut cases = vec![
                ("mint", jwt.mint(7, false, 600)),
                ("mint, admin", jwt.mint(8, true, 600)),
                ("usual", signed(usual, &user(fresh), SECRET)),
                ("other order", signed(other_order, &user(fresh), SECRET)),
                (
                    "no roles",
                    signed(usual, &format!(r#"{{"sub":"7","exp":{fresh}}}"#), SECRET),
                ),
                (
                    "no role",
                    signed(
                        usual,
                        &format!(r#"{{"sub":"7","roles":[],"exp":{fresh}}}"#),
                        SECRET,
                    ),
                ),
                (
                    "spaced",
                    signed(
                        usual,
                        &format!(r#" {{ "exp" : {fresh} , "sub" : "9" }} "#),
                        SECRET,
                    ),
                ),
                (
                    "within the leeway",
                    signed(usual, &user(now - LEEWAY_SECS + 1), SECRET),
                ),
                ("expired", signed(usual, &user(now - LEEWAY_SECS - 2), SECRET)),
                ("another secret", signed(usual, &user(fresh), "s2")),
                (
                    "HS384 named",
                    signed(r#"{"alg":"HS384","typ":"JWT"}"#, &user(fresh), SECRET),
                ),
                (
                    "alg none",
                    signed(r#"{"alg":"none","typ":"JWT"}"#, &user(fresh), SECRET),
                ),
                (
                    "a kid",
                    signed(r#"{"alg":"HS256","typ":"JWT","kid":"k"}"#, &user(fresh), SECRET),
                ),
                ("no typ", signed(r#"{"alg":"HS256"}"#, &user(fresh), SECRET)),
            ];
            for (name, claims) in [
                ("an audience", format!(r#"{{"sub":"7","exp":{fresh},"aud":"x"}}"#)),
                ("an issuer", format!(r#"{{"sub":"7","exp":{fresh},"iss":"x"}}"#)),
                (
                    "not before later",
                    format!(r#"{{"sub":"7","exp":{fresh},"nbf":{fresh}}}"#),
                ),
                ("issued at", format!(r#"{{"sub":"7","exp":{fresh},"iat":{now}}}"#)),
                ("exp a fraction", format!(r#"{{"sub":"7","exp":{fresh}.5}}"#)),
                ("exp a text", format!(r#"{{"sub":"7","exp":"{fresh}"}}"#)),
                (
                    "exp twice",
                    format!(r#"{{"sub":"7","exp":{fresh},"exp":{fresh}}}"#),
                ),
                ("no exp", r#"{"sub":"7"}"#.to_owned()),
                ("no sub", format!(r#"{{"exp":{fresh}}}"#)),
                ("sub a number", format!(r#"{{"sub":7,"exp":{fresh}}}"#)),
                ("sub not a user", format!(r#"{{"sub":"x","exp":{fresh}}}"#)),
                ("sub zero", format!(r#"{{"sub":"0","exp":{fresh}}}"#)),
                ("sub negative", format!(r#"{{"sub":"-5","exp":{fresh}}}"#)),
                ("sub escaped", format!(r#"{{"sub":"\u0037","exp":{fresh}}}"#)),
                (
                    "sub long",
                    format!(r#"{{"sub":"{}7","exp":{fresh}}}"#, "0".repeat(600)),
                ),
                (
                    "roles null",
                    format!(r#"{{"sub":"7","roles":null,"exp":{fresh}}}"#),
                ),
                (
                    "roles a text",
                    format!(r#"{{"sub":"7","roles":"ROLE_ADMIN","exp":{fresh}}}"#),
                ),
                (
                    "admin escaped",
                    format!(r#"{{"sub":"7","roles":["ROLE_\u0041DMIN"],"exp":{fresh}}}"#),
                ),
                (
                    "roles of numbers",
                    format!(r#"{{"sub":"7","roles":[1],"exp":{fresh}}}"#),
                ),
                ("not json", "{".to_owned()),
                ("an array", "[]".to_owned()),
            ] {
                cases.push((name, signed(usual, &claims, SECRET)));
            }
            let good = signed(usual, &user(fresh), SECRET);
            let (signing, signature) = good.rsplit_once('.').unwrap();
            let (head, claims) = signing.split_once('.').unwrap();
            // The signature's last digit carries 2 bits of padding: setting one is not canonical.
            let last = signature.as_bytes()[signature.len() - 1];
            let digits = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let at = digits.iter().position(|&d| d == last).unwrap();
            let padded = format!("{}{}", &signature[..signature.len() - 1], digits[at ^ 1] as char);
            for (name, token) in [
                ("a padding bit set", format!("{signing}.{padded}")),
                ("four parts", format!("{head}.{claims}.{claims}.{signature}")),
                (
                    "a dot in the claims",
                    format!("{head}.{}.{}.{signature}", &claims[..4], &claims[4..]),
                ),
                ("two parts", format!("{head}.{signature}")),
                ("one part", signature.to_owned()),
                ("signature cut", format!("{signing}.{}", &signature[1..])),
                ("signature long", format!("{signing}.{signature}A")),
                ("claims padded", format!("{head}.{claims}=.{signature}")),
            ] {
                cases.push((name, token));
            }

            let hs = Hs256::new(SECRET.as_bytes(), LEEWAY_SECS);
            for (name, token) in &cases {
                let reference = Jwt::new(SECRET).decode(token.as_bytes());
                let checked = hs.check(token.as_bytes(), now);
                match &checked {
                    Plain::Valid { caller, exp } => {
                        assert_eq!(reference, Some((*caller, *exp)), "{name}: valid here only")
                    }
                    Plain::Refused => assert_eq!(reference, None, "{name}: refused here only"),
                    Plain::Other => {}
                }
                assert_eq!(
                    jwt.verify_at(token.as_bytes(), now),
                    reference.map(|(caller, _)| caller),
                    "{name}: as jsonwebtoken reads it"
                );
            }
            // The usual tokens, minted here or elsewhere, take this way rather than jsonwebtoken's.
            for (name, token) in &cases[..8] {
                assert!(
                    matches!(hs.check(token.as_bytes(), now), Plain::Valid { .. }),
                    "{name}"
                );
            }
            for name in ["expired", "another secret"] {
                let (_, token) = cases.iter().find(|(n, _)| *n == name).unwrap();
                assert_eq!(hs.check(token.as_bytes(), now), Plain::Refused, "{name}");
            }
        }

        #[test]
        fn the_known_headers_are_hs256_headers() {
            for header in HEADERS {
                let token = signed(header, r#"{"sub":"7","exp":1}"#, SECRET);
                let read = jsonwebtoken::decode_header(&token).unwrap();
                assert_eq!(read.alg, jsonwebtoken::Algorithm::HS256, "{header}");
            }
            let minted = Jwt::new(SECRET).mint(7, false, 60);
            assert!(minted.starts_with(&format!("{}.", b64(HEADERS[0].as_bytes()))));
        }
    }
}
