//! HTTP Digest, the server side (RFC 3261 §22.2, RFC 2617): trunk peers without a fixed
//! address (a PBX behind a dynamic IP, a softphone trunk) prove who they are with a trunk's
//! inbound user name and password.
//!
//! Nonces are stateless: `<issued>.<mac>`, where `issued` is the second (on the owner's
//! clock) the nonce was made and `mac` binds it to a secret drawn at start, so any nonce we
//! made is recognised without a table, forged ones are not, and old ones expire after
//! [`NONCE_LIFETIME`] (answered with `stale=true`, so the peer retries without asking its
//! user). MD5 with `qop=auth`, the one every SIP stack speaks.
//!
//! # Usage contract
//!
//! * [`Verifier::challenge`] gives the `WWW-Authenticate` value for a 401.
//! * [`Verifier::verify`] checks an `Authorization` value for a request's method; on
//!   success it names the user, whose credentials the caller looked up.
//!
//! Pure: the time comes in as seconds on the caller's clock, nothing is logged here.

use md5::{Digest as _, Md5};

use super::digest::{params, response_digest, Algorithm, Challenge, Credentials};

/// How long a nonce we issued is good for.
pub const NONCE_LIFETIME: u64 = 300;

/// The realm we challenge in.
pub const REALM: &str = "rexian";

/// Why an `Authorization` header was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Not a Digest header we can read, or a parameter is missing.
    #[error("malformed Authorization")]
    Malformed,
    /// No trunk has this inbound user name.
    #[error("unknown user {0}")]
    UnknownUser(String),
    /// The nonce is not one of ours.
    #[error("nonce not issued by us")]
    ForeignNonce,
    /// Our nonce, but too old: challenge again with `stale=true`.
    #[error("nonce expired")]
    Stale,
    /// The response does not match: a wrong password (or a mangled request).
    #[error("wrong credentials for {0}")]
    Mismatch(String),
}

/// Issues nonces and checks answers (see the module docs).
#[derive(Clone)]
pub struct Verifier {
    secret: [u8; 16],
}

impl Verifier {
    /// A verifier with its own secret.
    pub fn new(secret: [u8; 16]) -> Self {
        Self { secret }
    }

    /// The `WWW-Authenticate` value for a 401 sent at `now_secs`.
    pub fn challenge(&self, now_secs: u64, stale: bool) -> String {
        let stale = if stale { ", stale=true" } else { "" };
        format!("Digest realm=\"{REALM}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"{stale}", self.nonce(now_secs))
    }

    fn nonce(&self, issued: u64) -> String {
        format!("{issued:x}.{}", self.mac(issued))
    }

    fn mac(&self, issued: u64) -> String {
        let mut h = Md5::new();
        h.update(self.secret);
        h.update(issued.to_be_bytes());
        hex::encode(&h.finalize()[..8])
    }

    /// Checks `authorization` (the header's value) for a request with `method` at
    /// `now_secs`; the accepted user name. `credentials_of` finds a user's credentials.
    pub fn verify(&self, authorization: &str, method: &str, now_secs: u64, credentials_of: impl Fn(&str) -> Option<Credentials>) -> Result<String, AuthError> {
        let value = authorization.trim();
        let (scheme, rest) = value.split_once(|c: char| c.is_ascii_whitespace()).ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::Malformed);
        }
        let fields = params(rest).map_err(|_| AuthError::Malformed)?;
        let get = |name: &str| fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        let (Some(username), Some(nonce), Some(uri), Some(response)) = (get("username"), get("nonce"), get("uri"), get("response")) else {
            return Err(AuthError::Malformed);
        };
        if get("realm") != Some(REALM) || get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("MD5")) {
            return Err(AuthError::Malformed);
        }
        let issued = self.issued(nonce)?;
        let credentials = credentials_of(username).ok_or_else(|| AuthError::UnknownUser(username.to_owned()))?;
        let qop_auth = match get("qop") {
            None => false,
            Some(q) if q.eq_ignore_ascii_case("auth") => true,
            Some(_) => return Err(AuthError::Malformed),
        };
        let (cnonce, nc) = match qop_auth {
            true => {
                let nc = get("nc").and_then(|n| u32::from_str_radix(n, 16).ok()).ok_or(AuthError::Malformed)?;
                (get("cnonce").ok_or(AuthError::Malformed)?, nc)
            }
            false => ("", 0),
        };
        let challenge = Challenge {
            realm: REALM.into(),
            nonce: nonce.into(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop_auth,
            stale: false,
            proxy: false,
        };
        let expected = response_digest(&challenge, &credentials, method, uri, cnonce, nc);
        if !constant_time_eq(expected.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
            return Err(AuthError::Mismatch(username.to_owned()));
        }
        // A right answer to an old nonce: the peer knows the password, it only needs a fresh
        // nonce (checked last so a wrong password is never told "stale").
        if now_secs.saturating_sub(issued) > NONCE_LIFETIME || issued > now_secs {
            return Err(AuthError::Stale);
        }
        Ok(username.to_owned())
    }

    /// When our `nonce` was issued, or why it is not ours.
    fn issued(&self, nonce: &str) -> Result<u64, AuthError> {
        let (issued, mac) = nonce.split_once('.').ok_or(AuthError::ForeignNonce)?;
        let issued = u64::from_str_radix(issued, 16).map_err(|_| AuthError::ForeignNonce)?;
        if !constant_time_eq(self.mac(issued).as_bytes(), mac.as_bytes()) {
            return Err(AuthError::ForeignNonce);
        }
        Ok(issued)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::super::digest::authorization_value;
    use super::*;

    fn answer(verifier: &Verifier, at: u64, user: &str, password: &str) -> String {
        let challenge = Challenge::parse(&verifier.challenge(at, false), false).expect("our challenge parses");
        authorization_value(&challenge, &Credentials::new(user, password), "INVITE", "sip:12365@192.0.2.1", "0a4f113b", 1)
    }

    fn lookup(user: &str) -> Option<Credentials> {
        (user == "pbx").then(|| Credentials::new("pbx", "s3cret"))
    }

    #[test]
    fn the_client_side_answer_to_our_challenge_is_accepted() {
        let v = Verifier::new([7; 16]);
        let auth = answer(&v, 100, "pbx", "s3cret");
        assert_eq!(v.verify(&auth, "INVITE", 130, lookup), Ok("pbx".into()));
        assert_eq!(v.verify(&auth, "BYE", 130, lookup), Err(AuthError::Mismatch("pbx".into())), "bound to the method");
    }

    #[test]
    fn wrong_passwords_users_forged_and_old_nonces_are_refused() {
        let v = Verifier::new([7; 16]);
        assert_eq!(v.verify(&answer(&v, 100, "pbx", "guess"), "INVITE", 130, lookup), Err(AuthError::Mismatch("pbx".into())));
        assert_eq!(v.verify(&answer(&v, 100, "intruder", "x"), "INVITE", 130, lookup), Err(AuthError::UnknownUser("intruder".into())));
        let other = Verifier::new([8; 16]);
        assert_eq!(v.verify(&answer(&other, 100, "pbx", "s3cret"), "INVITE", 130, lookup), Err(AuthError::ForeignNonce));
        let late = 100 + NONCE_LIFETIME + 1;
        assert_eq!(v.verify(&answer(&v, 100, "pbx", "s3cret"), "INVITE", late, lookup), Err(AuthError::Stale));
        for junk in ["", "Basic cGJ4OnMzY3JldA==", "Digest username=\"pbx\"", "Digest ,,,="] {
            assert_eq!(v.verify(junk, "INVITE", 130, lookup), Err(AuthError::Malformed), "{junk}");
        }
        assert!(v.challenge(5, true).ends_with("stale=true"));
    }
}
