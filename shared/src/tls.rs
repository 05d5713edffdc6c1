//! Certificate pinning for the desk connection (trust on first use).
//!
//! switchd makes a self-signed certificate on first start, or uses one an administrator
//! installed. A desktop records the certificate's SHA-256 fingerprint the first time it logs in to
//! a server and refuses the connection when the server later presents a different certificate.
//! The TLS 1.3 handshake signature is still verified against the presented certificate, so a
//! pinned fingerprint is as strong as a CA-issued chain for this one server.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Hex SHA-256 of a certificate's DER bytes, as shown to administrators (`switchd cert show`).
pub fn fingerprint(cert_der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert_der);
    let hex = hex::encode(digest.as_ref());
    // Grouped in pairs for reading aloud over the phone to an administrator.
    hex.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

/// Verifies the handshake and checks the certificate's fingerprint against a pin, if any.
#[derive(Debug)]
pub struct PinVerifier {
    expected: Option<String>,
    seen: Mutex<Option<String>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinVerifier {
    /// `expected`: the pinned fingerprint, or `None` on first use.
    pub fn new(expected: Option<String>) -> Arc<Self> {
        let provider = rustls::crypto::ring::default_provider();
        Arc::new(Self { expected, seen: Mutex::new(None), algorithms: provider.signature_verification_algorithms })
    }

    /// The fingerprint the server presented, once the handshake has started.
    pub fn seen(&self) -> Option<String> {
        self.seen.lock().ok().and_then(|s| s.clone())
    }

    pub fn expected(&self) -> Option<&str> {
        self.expected.as_deref()
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = fingerprint(end_entity.as_ref());
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(actual.clone());
        }
        match &self.expected {
            Some(expected) if *expected != actual => {
                Err(rustls::Error::General("server certificate does not match the pinned fingerprint".into()))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The crypto provider every Rexian component uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Pinned server fingerprints, kept in a small JSON file in the user's settings directory.
#[derive(Debug, Default)]
pub struct KnownServers {
    path: Option<PathBuf>,
    pins: BTreeMap<String, String>,
}

impl KnownServers {
    /// Pins kept in memory only (tests, benchmarks).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Loads the pins from `path`; a missing file means no pins yet.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let pins = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Self { path: Some(path.to_owned()), pins })
    }

    pub fn get(&self, server: &str) -> Option<&str> {
        self.pins.get(server).map(String::as_str)
    }

    /// Records a pin and saves the file.
    pub fn pin(&mut self, server: &str, fingerprint: &str) -> std::io::Result<()> {
        self.pins.insert(server.to_owned(), fingerprint.to_owned());
        self.save()
    }

    /// Forgets a server's pin, after the user confirmed a certificate change.
    pub fn forget(&mut self, server: &str) -> std::io::Result<()> {
        self.pins.remove(server);
        self.save()
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_vec_pretty(&self.pins).map_err(std::io::Error::other)?;
        std::fs::write(path, json)
    }
}
