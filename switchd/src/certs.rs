//! The desk server's TLS certificate: created on first start (self-signed, kept in
//! `<data>/tls/`), or installed by an administrator (`switchd cert install`).

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Reading or writing the files failed.
    #[error("certificate file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The files are not a PEM certificate and key.
    #[error("certificate files in {0} are not valid PEM (certificate chain and PKCS#8/RSA/EC private key)")]
    BadPem(PathBuf),
    /// Generating a certificate failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    pub fn fingerprint(&self) -> String {
        self.chain.first().map(|c| rexian_shared::tls::fingerprint(c.as_ref())).unwrap_or_default()
    }
}

fn paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io { path: path.to_owned(), source }
}

/// Loads the certificate, creating a self-signed one if there is none.
pub fn load_or_create(data_dir: &Path) -> Result<Identity, CertError> {
    let (cert_path, key_path) = paths(data_dir);
    if !cert_path.exists() {
        let names = vec!["rexian-switchd".to_owned(), "localhost".to_owned()];
        let ck = rcgen::generate_simple_self_signed(names).map_err(|e| CertError::Generate(e.to_string()))?;
        let dir = cert_path.parent().unwrap_or(data_dir);
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        write_private(&key_path, ck.signing_key.serialize_pem().as_bytes())?;
        std::fs::write(&cert_path, ck.cert.pem()).map_err(io_err(&cert_path))?;
        tracing::info!(path = %cert_path.display(), "created a self-signed desk certificate");
    }
    load(&cert_path, &key_path)
}

fn load(cert_path: &Path, key_path: &Path) -> Result<Identity, CertError> {
    let cert_pem = std::fs::read(cert_path).map_err(io_err(cert_path))?;
    let key_pem = std::fs::read(key_path).map_err(io_err(key_path))?;
    parse(&cert_pem, &key_pem).ok_or_else(|| CertError::BadPem(cert_path.to_owned()))
}

fn parse(cert_pem: &[u8], key_pem: &[u8]) -> Option<Identity> {
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>().ok()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .ok()
        .or_else(|| PrivatePkcs8KeyDer::from_pem_slice(key_pem).ok().map(PrivateKeyDer::Pkcs8))?;
    (!chain.is_empty()).then_some(Identity { chain, key })
}

/// Installs an administrator's certificate and key (validated first) in place of the current one.
pub fn install(data_dir: &Path, cert_file: &Path, key_file: &Path) -> Result<Identity, CertError> {
    let cert_pem = std::fs::read(cert_file).map_err(io_err(cert_file))?;
    let key_pem = std::fs::read(key_file).map_err(io_err(key_file))?;
    let identity = parse(&cert_pem, &key_pem).ok_or_else(|| CertError::BadPem(cert_file.to_owned()))?;
    let (cert_path, key_path) = paths(data_dir);
    let dir = cert_path.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    write_private(&key_path, &key_pem)?;
    std::fs::write(&cert_path, cert_pem).map_err(io_err(&cert_path))?;
    Ok(identity)
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path).map_err(io_err(path))?;
    std::io::Write::write_all(&mut f, bytes).map_err(io_err(path))
}
