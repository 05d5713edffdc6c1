//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 8760 for SHA-256), the
//! client side only: parse a `WWW-Authenticate` / `Proxy-Authenticate` challenge from a
//! 401/407 and compute the `Authorization` / `Proxy-Authorization` header that answers it.
//!
//! Supported: algorithms `MD5`, `MD5-sess`, `SHA-256`, `SHA-256-sess`; `qop=auth` (with
//! `cnonce` and `nc`) and the RFC 2069 form without qop. Not supported: `auth-int` alone
//! (a challenge offering only it is refused), `SHA-512-256`.
//!
//! # Usage contract
//!
//! * [`Challenge::from_response`] picks the strongest challenge we support from a 401 or 407
//!   (RFC 8760 §2.4 lets a server offer several, one per algorithm).
//! * [`authorization`] turns it, the [`Credentials`], the request's method and Request-URI
//!   and a fresh client nonce into the header to add to the re-sent request. `nc` counts the
//!   requests made with one nonce, starting at 1.
//! * Passwords never leave [`Credentials`] except into a hash: its `Debug` prints
//!   `<redacted>`, and nothing here logs.
//!
//! Pure functions: no clock, no IO, no panics on hostile challenges.

use md5::{Digest as _, Md5};
use rsip::headers::{Authorization, ProxyAuthorization, UntypedHeader};
use rsip::{Header, Response};

/// Why a challenge could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The response carries no `WWW-Authenticate` / `Proxy-Authenticate` header.
    #[error("no authentication challenge in the response")]
    NoChallenge,
    /// The challenge uses another scheme than `Digest` (e.g. `Basic`, forbidden in SIP).
    #[error("authentication scheme {0:?} is not Digest")]
    NotDigest(String),
    /// A parameter the challenge must carry (`realm`, `nonce`) is absent.
    #[error("challenge without {0}")]
    Missing(&'static str),
    /// The challenge asks for an algorithm we do not implement.
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The challenge offers qop values but not `auth`.
    #[error("unsupported qop {0:?}")]
    UnsupportedQop(String),
    /// The header value could not be parsed as `Digest name=value, ...`.
    #[error("malformed challenge")]
    Malformed,
}

/// A digest hash algorithm (RFC 2617 §3.2.1, RFC 8760 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    /// `MD5` (the default when the challenge names none).
    Md5,
    /// `MD5-sess`: HA1 also covers the nonce and cnonce.
    Md5Sess,
    /// `SHA-256` (RFC 8760).
    Sha256,
    /// `SHA-256-sess` (RFC 8760).
    Sha256Sess,
}

impl Algorithm {
    /// The token as it appears in the headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn parse(token: &str) -> Result<Self, DigestError> {
        // Algorithm tokens are case-insensitive (RFC 7616 §3.3 and common practice).
        match token.to_ascii_uppercase().as_str() {
            "MD5" => Ok(Algorithm::Md5),
            "MD5-SESS" => Ok(Algorithm::Md5Sess),
            "SHA-256" => Ok(Algorithm::Sha256),
            "SHA-256-SESS" => Ok(Algorithm::Sha256Sess),
            _ => Err(DigestError::UnsupportedAlgorithm(token.to_owned())),
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Lower-case hex of the hash of `data`.
    fn hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => {
                hex::encode(ring::digest::digest(&ring::digest::SHA256, data.as_bytes()))
            }
        }
    }
}

/// One parsed `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space, echoed back.
    pub realm: String,
    /// The server's nonce, echoed back.
    pub nonce: String,
    /// Opaque data, echoed back unchanged when present.
    pub opaque: Option<String>,
    /// The hash algorithm.
    pub algorithm: Algorithm,
    /// True when the server offered `qop=auth` (we then send qop, cnonce and nc); false for
    /// an RFC 2069 challenge without qop.
    pub qop_auth: bool,
    /// `stale=true`: the nonce expired but the credentials were right.
    pub stale: bool,
    /// True for a `Proxy-Authenticate` challenge (answered by `Proxy-Authorization`), false
    /// for `WWW-Authenticate` (answered by `Authorization`).
    pub proxy: bool,
}

impl Challenge {
    /// Parse one header value such as `Digest realm="x", nonce="y", qop="auth"`.
    /// `proxy` tells which header it came from.
    pub fn parse(value: &str, proxy: bool) -> Result<Self, DigestError> {
        let value = value.trim();
        let (scheme, rest) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(DigestError::NotDigest(scheme.to_owned()));
        }
        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut algorithm = Algorithm::Md5;
        let mut qop = None;
        let mut stale = false;
        for (name, value) in params(rest)? {
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "nonce" => nonce = Some(value),
                "opaque" => opaque = Some(value),
                "algorithm" => algorithm = Algorithm::parse(&value)?,
                "qop" => qop = Some(value),
                "stale" => stale = value.eq_ignore_ascii_case("true"),
                _ => {} // domain and extensions: not needed to answer
            }
        }
        let qop_auth = match qop {
            None => false,
            Some(list) => {
                if list.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")) {
                    true
                } else {
                    return Err(DigestError::UnsupportedQop(list));
                }
            }
        };
        Ok(Self {
            realm: realm.ok_or(DigestError::Missing("realm"))?,
            nonce: nonce.ok_or(DigestError::Missing("nonce"))?,
            opaque,
            algorithm,
            qop_auth,
            stale,
            proxy,
        })
    }

    /// The strongest usable challenge in a 401 (`WWW-Authenticate`) or 407
    /// (`Proxy-Authenticate`). Unusable challenges are skipped; when none is usable the error
    /// of the last one is returned ([`DigestError::NoChallenge`] when there was none).
    pub fn from_response(response: &Response) -> Result<Self, DigestError> {
        let mut best: Option<Challenge> = None;
        let mut error = DigestError::NoChallenge;
        for header in response.headers.iter() {
            let parsed = match header {
                Header::WwwAuthenticate(h) => Challenge::parse(h.value(), false),
                Header::ProxyAuthenticate(h) => Challenge::parse(h.value(), true),
                _ => continue,
            };
            match parsed {
                Ok(c) if best.as_ref().is_none_or(|b| c.algorithm > b.algorithm) => {
                    best = Some(c)
                }
                Ok(_) => {}
                Err(e) => error = e,
            }
        }
        best.ok_or(error)
    }
}

/// A username and password for digest authentication. The password is only readable by
/// this module, and `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name sent in the clear.
    pub username: String,
    password: String,
}

impl Credentials {
    /// Credentials for `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The `response` parameter: the hex digest proving knowledge of the password (RFC 2617
/// §3.2.2.1, RFC 8760). `cnonce` and `nc` are used only with `qop=auth` and the `-sess`
/// algorithms.
pub fn response_digest(
    challenge: &Challenge,
    credentials: &Credentials,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let alg = challenge.algorithm;
    let mut ha1 = alg.hex(&format!(
        "{}:{}:{}",
        credentials.username, challenge.realm, credentials.password
    ));
    if alg.is_sess() {
        ha1 = alg.hex(&format!("{ha1}:{}:{cnonce}", challenge.nonce));
    }
    let ha2 = alg.hex(&format!("{method}:{uri}"));
    if challenge.qop_auth {
        alg.hex(&format!(
            "{ha1}:{}:{nc:08x}:{cnonce}:auth:{ha2}",
            challenge.nonce
        ))
    } else {
        alg.hex(&format!("{ha1}:{}:{ha2}", challenge.nonce))
    }
}

/// The header answering `challenge` for a request with `method` and Request-URI `uri`:
/// `Proxy-Authorization` for a proxy challenge, `Authorization` otherwise.
pub fn authorization(
    challenge: &Challenge,
    credentials: &Credentials,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> Header {
    let value = authorization_value(challenge, credentials, method, uri, cnonce, nc);
    if challenge.proxy {
        Header::ProxyAuthorization(ProxyAuthorization::new(value))
    } else {
        Header::Authorization(Authorization::new(value))
    }
}

/// The value of the header [`authorization`] builds.
pub fn authorization_value(
    challenge: &Challenge,
    credentials: &Credentials,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let response = response_digest(challenge, credentials, method, uri, cnonce, nc);
    let mut value = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(&credentials.username),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(uri),
        challenge.algorithm.as_str(),
    );
    if challenge.qop_auth || challenge.algorithm.is_sess() {
        value.push_str(&format!(", cnonce={}", quote(cnonce)));
    }
    if challenge.qop_auth {
        value.push_str(&format!(", qop=auth, nc={nc:08x}"));
    }
    if let Some(opaque) = &challenge.opaque {
        value.push_str(&format!(", opaque={}", quote(opaque)));
    }
    value
}

/// A fresh client nonce: 16 random hex characters.
pub fn new_cnonce() -> String {
    super::ua::new_tag()
}

/// A quoted-string (RFC 3261 §25.1): backslash-escape `"` and `\`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `name=value` pairs separated by commas; values are tokens or quoted strings (commas inside
/// quotes, as in `qop="auth,auth-int"`, do not split).
pub(super) fn params(s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_ascii_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || name.is_empty() {
            return Err(DigestError::Malformed);
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.push(chars.next().ok_or(DigestError::Malformed)?),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err(DigestError::Malformed),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_ascii_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name, value));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5 (the worked example, with the errata'd response value).
    #[test]
    fn rfc2617_example_vector() {
        let c = Challenge::parse(
            r#"Digest
                 realm="testrealm@host.com",
                 qop="auth,auth-int",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
            false,
        )
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(c.qop_auth && !c.proxy && !c.stale);
        let creds = Credentials::new("Mufasa", "Circle Of Life");
        assert_eq!(
            response_digest(&c, &creds, "GET", "/dir/index.html", "0a4f113b", 1),
            "6629fae49393a05397450978507c4ef1"
        );
        let value = authorization_value(&c, &creds, "GET", "/dir/index.html", "0a4f113b", 1);
        assert_eq!(
            value,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, \
             cnonce=\"0a4f113b\", qop=auth, nc=00000001, \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
    }

    /// RFC 7616 §3.9.1 (the SHA-256 and MD5 responses to the same challenge; RFC 8760 uses
    /// the same computation for SIP).
    #[test]
    fn rfc7616_sha256_and_md5_vectors() {
        let text = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let mut c = Challenge::parse(text, false).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        let creds = Credentials::new("Mufasa", "Circle of Life");
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        assert_eq!(
            response_digest(&c, &creds, "GET", "/dir/index.html", cnonce, 1),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        c.algorithm = Algorithm::Md5;
        assert_eq!(
            response_digest(&c, &creds, "GET", "/dir/index.html", cnonce, 1),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    /// A 407 as a carrier proxy sends it, offering MD5 and SHA-256 (RFC 8760 §2.4): we take
    /// SHA-256 and answer with Proxy-Authorization. The expected MD5 values were computed
    /// independently (Python hashlib) from the RFC 2617 formulas.
    #[test]
    fn sip_407_picks_the_strongest_and_answers_in_proxy_authorization() {
        let text = "SIP/2.0 407 Proxy Authentication Required\r\n\
            Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKabc;rport=5060\r\n\
            From: <sip:4008123456@198.51.100.1>;tag=f1\r\n\
            To: <sip:13800138000@203.0.113.5:5060>;tag=t9\r\n\
            Call-ID: c1@198.51.100.1\r\n\
            CSeq: 1 INVITE\r\n\
            Proxy-Authenticate: Digest realm=\"sip.carrier.example\", nonce=\"5f2a9c\", algorithm=MD5, qop=\"auth\"\r\n\
            Proxy-Authenticate: Digest realm=\"sip.carrier.example\", nonce=\"5f2a9c\", algorithm=SHA-256, qop=\"auth\"\r\n\
            Content-Length: 0\r\n\r\n";
        let r = Response::try_from(text).unwrap();
        let c = Challenge::from_response(&r).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert!(c.proxy);
        let creds = Credentials::new("rexian", "s3cret");
        let h = authorization(&c, &creds, "INVITE", "sip:13800138000@203.0.113.5:5060", "0a4f113b", 1);
        assert!(matches!(h, Header::ProxyAuthorization(_)));
        assert!(h.to_string().starts_with("Proxy-Authorization: Digest username=\"rexian\""));

        // The RFC 2069 form (no qop) with MD5, as older SBCs send it in a 401.
        let c = Challenge::parse(
            "Digest realm=\"asterisk\", nonce=\"4c7b1e2d\", opaque=\"o\"",
            false,
        )
        .unwrap();
        assert!(!c.qop_auth);
        let v = authorization_value(&c, &creds, "INVITE", "sip:100@192.0.2.7", "x", 1);
        // md5("rexian:asterisk:s3cret") = HA1, md5("INVITE:sip:100@192.0.2.7") = HA2,
        // md5(HA1:4c7b1e2d:HA2):
        assert!(v.contains("response=\"1ca21eaafacca27a717bbe66988ac03e\""), "{v}");
        assert!(!v.contains("qop") && !v.contains("cnonce") && v.ends_with("opaque=\"o\""));
    }

    #[test]
    fn md5_sess_hashes_nonce_and_cnonce_into_ha1() {
        let c = Challenge::parse(
            "Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess, qop=auth",
            true,
        )
        .unwrap();
        let creds = Credentials::new("u", "p");
        let ha1 = hex::encode(Md5::digest(
            format!("{}:n:c", hex::encode(Md5::digest(b"u:r:p"))).as_bytes(),
        ));
        let ha2 = hex::encode(Md5::digest(b"INVITE:sip:x@y"));
        let want = hex::encode(Md5::digest(
            format!("{ha1}:n:00000002:c:auth:{ha2}").as_bytes(),
        ));
        assert_eq!(response_digest(&c, &creds, "INVITE", "sip:x@y", "c", 2), want);
    }

    #[test]
    fn refusals_and_hostile_input() {
        assert_eq!(
            Challenge::parse("Basic realm=\"x\"", false),
            Err(DigestError::NotDigest("Basic".into()))
        );
        assert_eq!(
            Challenge::parse("Digest nonce=\"n\"", false),
            Err(DigestError::Missing("realm"))
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256", false),
            Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into()))
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"", false),
            Err(DigestError::UnsupportedQop("auth-int".into()))
        );
        for junk in ["Digest realm=\"unterminated", "Digest =x", "Digest realm", "Digest a=\"\\"] {
            assert!(Challenge::parse(junk, false).is_err(), "{junk}");
        }
        // Escapes in quoted strings round-trip; stale is read.
        let c = Challenge::parse(r#"DIGEST realm="a\"b", nonce=n, stale=TRUE"#, false).unwrap();
        assert_eq!(c.realm, "a\"b");
        assert!(c.stale);
        let v = authorization_value(&c, &Credentials::new("u", "p"), "BYE", "sip:a", "c", 1);
        assert!(v.contains(r#"realm="a\"b""#), "{v}");
    }

    #[test]
    fn debug_hides_the_password() {
        let text = format!("{:?}", Credentials::new("alice", "hunter2"));
        assert!(text.contains("alice") && !text.contains("hunter2"), "{text}");
    }
}
