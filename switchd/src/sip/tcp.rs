//! The tokio side of SIP over TCP and TLS (RFC 3261 §18, §26.2): listeners, one task per
//! connection, and the [`StreamHub`] through which the single owner of the [`UdpCore`] (the
//! task in [`super::udp::serve_all`]) hears from and writes to them.
//!
//! A connection task reads, cuts messages with the sans-IO [`StreamFramer`], answers
//! keep-alive pings itself and sends whole messages to the core's task over a bounded channel
//! (a slow core slows the readers, it never buffers without end). The core's transmits for the
//! connection come back on a small per-connection channel; a connection that does not keep up
//! with them is dropped rather than let its queue grow.
//!
//! The hub also opens connections, to trunks reached over TCP or TLS, when the core asks
//! ([`super::udp::Output::Connect`]): such a connection runs the same task as an accepted one
//! once open (TLS: after the carrier's certificate checked against the system roots or the
//! trunk's CA file), and is not counted against the listeners' limits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::stream::{ConnId, ConnectionLimiter, FrameError, Framed, FramerLimits, StreamFramer, Transport, PONG};
use super::udp::UdpCore;

/// Connection limits of the TCP and TLS listeners (shared by both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Open connections at most, over both listeners; more are closed on accept.
    pub max_connections: usize,
    /// Open connections from one IP address at most.
    pub max_per_ip: usize,
    /// Per-connection message size and idle limits.
    pub framer: FramerLimits,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            max_per_ip: 16,
            framer: FramerLimits::default(),
        }
    }
}

/// The stream listeners to serve: plain TCP and/or TLS (with its server configuration).
#[derive(Default)]
pub struct Listeners {
    pub tcp: Option<TcpListener>,
    pub tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
    pub limits: StreamLimits,
}

/// What a connection task tells the core's task.
#[derive(Debug)]
pub enum StreamInput {
    Opened {
        conn: ConnId,
        peer: SocketAddr,
        transport: Transport,
        writer: mpsc::Sender<Write>,
    },
    /// A connection the core asked for could not be opened (or its TLS handshake failed).
    ConnectFailed { conn: ConnId },
    Message { conn: ConnId, bytes: Vec<u8> },
    Invalid { conn: ConnId, headers: Vec<u8>, error: FrameError },
    Closed { conn: ConnId },
}

/// What the core's task tells a connection task.
#[derive(Debug)]
pub enum Write {
    Bytes(Vec<u8>),
    /// Close once what came before is written.
    Close,
}

/// How many of the core's transmits may wait for one connection's socket.
const WRITE_QUEUE: usize = 64;
/// How many messages from all connections may wait for the core.
const INPUT_QUEUE: usize = 1024;
/// A TLS handshake not done by then is abandoned (a stalled handshake holds a slot).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A trunk that does not accept our connection by then is unreachable: well inside Timer B
/// (32 s), so that the call still fails over in time (an unanswered SYN would otherwise wait
/// for the kernel's two minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 16 * 1024;

/// How to reach a trunk over TLS: the client configuration (trusted roots) and the name its
/// certificate must carry.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

/// Why a trunk's TLS client could not be set up (at start, from its configuration).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsClientError {
    /// The CA file cannot be read.
    #[error("cannot read the CA file {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CA file is no PEM.
    #[error("the CA file {path} is no PEM certificate list: {source}")]
    CaPem {
        path: std::path::PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The CA file (or the system's store) holds no usable certificate.
    #[error("no trusted certificate in {0}")]
    NoRoots(String),
    /// `tls_server_name` is no DNS name or IP address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsClient {
    /// A client trusting the certificates of the PEM file `ca` (else the system's roots),
    /// expecting `server_name` in the peer's certificate (else `peer`'s IP address, which a
    /// carrier's certificate rarely carries: hence the setting).
    pub fn new(ca: Option<&std::path::Path>, server_name: Option<&str>, peer: SocketAddr) -> Result<Self, TlsClientError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| TlsClientError::CaFile { path: path.to_owned(), source })?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<CertificateDer<'static>>, _>>()
                    .map_err(|source| TlsClientError::CaPem { path: path.to_owned(), source })?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(TlsClientError::NoRoots(path.display().to_string()));
                }
            }
            None => {
                // Unreadable entries of the system store are skipped, as every TLS client does.
                let native = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(native.certs);
                if added == 0 {
                    return Err(TlsClientError::NoRoots("the system's certificate store".into()));
                }
            }
        }
        let name = match server_name {
            Some(n) => ServerName::try_from(n.to_owned()).map_err(|_| TlsClientError::ServerName(n.to_owned()))?,
            None => ServerName::IpAddress(peer.ip().into()),
        };
        let config = rustls::ClientConfig::builder_with_provider(rexian_shared::tls::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { config: Arc::new(config), name })
    }
}

/// The core task's end of every stream connection.
#[derive(Debug)]
pub struct StreamHub {
    inputs: mpsc::Receiver<StreamInput>,
    writers: HashMap<ConnId, mpsc::Sender<Write>>,
    /// What accepted and opened connections share (the input channel above all).
    shared: Arc<Shared>,
    /// TLS settings of the trunks we connect to over TLS, by destination.
    tls_clients: HashMap<SocketAddr, TlsClient>,
}

impl StreamHub {
    /// Spawns the accept loops of `listeners` (on the current tokio runtime).
    pub fn spawn(listeners: Listeners) -> Self {
        let (tx, inputs) = mpsc::channel(INPUT_QUEUE);
        let shared = Arc::new(Shared {
            limiter: Mutex::new(ConnectionLimiter::new(
                listeners.limits.max_connections,
                listeners.limits.max_per_ip,
            )),
            next: AtomicU64::new(1),
            framer: listeners.limits.framer,
            inputs: tx,
        });
        if let Some(tcp) = listeners.tcp {
            tokio::spawn(accept_loop(tcp, None, shared.clone()));
        }
        if let Some((tls, config)) = listeners.tls {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            tokio::spawn(accept_loop(tls, Some(acceptor), shared.clone()));
        }
        Self {
            inputs,
            writers: HashMap::new(),
            shared,
            tls_clients: HashMap::new(),
        }
    }

    /// Connections to these trunks over TLS use these settings (by destination).
    pub fn with_tls_clients(mut self, clients: HashMap<SocketAddr, TlsClient>) -> Self {
        self.tls_clients = clients;
        self
    }

    /// Opens `conn` to `peer` as the core asked ([`super::udp::Output::Connect`]). What the
    /// core queues for it meanwhile waits in its channel; a failure comes back as
    /// [`StreamInput::ConnectFailed`] (at once, to `core`, for a TLS trunk without settings).
    pub fn connect(&mut self, core: &mut UdpCore, now: Instant, conn: ConnId, peer: SocketAddr, transport: Transport) {
        let tls = match transport {
            Transport::Tls => match self.tls_clients.get(&peer) {
                Some(client) => Some(client.clone()),
                None => {
                    tracing::warn!(%conn, %peer, "SIP: no TLS settings for this trunk, cannot connect");
                    return core.handle_connect_failed(now, conn);
                }
            },
            Transport::Tcp | Transport::Udp => None,
        };
        let (writer, writes) = mpsc::channel(WRITE_QUEUE);
        self.writers.insert(conn, writer);
        tokio::spawn(dial(self.shared.clone(), conn, peer, transport, tls, writes));
    }

    /// The next input from a connection (never ends while a listener runs).
    pub async fn recv(&mut self) -> Option<StreamInput> {
        self.inputs.recv().await
    }

    /// Hands `input` to `core`.
    pub fn apply(&mut self, core: &mut UdpCore, now: Instant, input: StreamInput) {
        match input {
            StreamInput::Opened {
                conn,
                peer,
                transport,
                writer,
            } => {
                self.writers.insert(conn, writer);
                core.handle_stream_opened(conn, peer, transport);
            }
            StreamInput::ConnectFailed { conn } => {
                self.writers.remove(&conn);
                core.handle_connect_failed(now, conn);
            }
            StreamInput::Message { conn, bytes } => core.handle_stream_message(now, conn, &bytes),
            StreamInput::Invalid {
                conn,
                headers,
                error,
            } => core.handle_stream_invalid(conn, &headers, &error),
            StreamInput::Closed { conn } => {
                self.writers.remove(&conn);
                core.handle_stream_closed(conn);
            }
        }
    }

    /// Queues `bytes` for `conn`. A connection that cannot take them (its queue full: the peer
    /// does not read) is dropped — its task sees the channel end and closes — and `core` told.
    pub fn send(&mut self, core: &mut UdpCore, conn: ConnId, bytes: Vec<u8>) {
        let Some(writer) = self.writers.get(&conn) else {
            tracing::debug!(%conn, "SIP: transmit for a closed connection dropped");
            return;
        };
        if writer.try_send(Write::Bytes(bytes)).is_err() {
            tracing::info!(%conn, "SIP: connection not keeping up (or gone), closed");
            self.writers.remove(&conn);
            core.handle_stream_closed(conn);
        }
    }

    /// Closes `conn` after what is queued for it.
    pub fn close(&mut self, conn: ConnId) {
        if let Some(writer) = self.writers.remove(&conn) {
            // Full or gone: dropping the sender ends the task's loop just the same.
            let _ = writer.try_send(Write::Close);
        }
    }
}

/// What the accept loops and connection tasks share.
struct Shared {
    limiter: Mutex<ConnectionLimiter>,
    next: AtomicU64,
    framer: FramerLimits,
    inputs: mpsc::Sender<StreamInput>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("framer", &self.framer).finish_non_exhaustive()
    }
}

/// Releases a connection's slot in the limiter when its task ends, however it ends.
struct Slot {
    shared: Arc<Shared>,
    peer: SocketAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared
            .limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .close(self.peer.ip());
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, shared: Arc<Shared>) {
    let transport = if tls.is_some() { Transport::Tls } else { Transport::Tcp };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // E.g. out of file descriptors: never fatal, but do not spin.
                tracing::warn!(%transport, error = %e, "SIP: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admitted = shared
            .limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_open(peer.ip());
        if !admitted {
            tracing::info!(%peer, %transport, "SIP: connection limit reached, connection refused");
            continue; // dropping the stream closes it
        }
        let slot = Slot {
            shared: shared.clone(),
            peer,
        };
        let conn = ConnId(shared.next.fetch_add(1, Ordering::Relaxed));
        // Signalling is small and latency-bound: do not wait to coalesce writes.
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let (writer, writes) = mpsc::channel(WRITE_QUEUE);
            let opened = |transport| StreamInput::Opened { conn, peer, transport, writer };
            match tls {
                None => {
                    if shared.inputs.send(opened(Transport::Tcp)).await.is_ok() {
                        connection(stream, conn, peer, Transport::Tcp, &shared, writes).await;
                    }
                }
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            if shared.inputs.send(opened(Transport::Tls)).await.is_ok() {
                                connection(stream, conn, peer, Transport::Tls, &shared, writes).await;
                            }
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "SIP: TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "SIP: TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
}

/// Opens connection `conn` to a trunk (TCP, then the TLS handshake for a TLS trunk) and runs
/// it; a connection that cannot be opened is reported to the core.
async fn dial(
    shared: Arc<Shared>,
    conn: ConnId,
    peer: SocketAddr,
    transport: Transport,
    tls: Option<TlsClient>,
    writes: mpsc::Receiver<Write>,
) {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(%conn, %peer, %transport, error = %e, "SIP: cannot connect to the trunk");
            let _ = shared.inputs.send(StreamInput::ConnectFailed { conn }).await;
            return;
        }
        Err(_) => {
            tracing::info!(%conn, %peer, %transport, "SIP: connecting to the trunk timed out");
            let _ = shared.inputs.send(StreamInput::ConnectFailed { conn }).await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    match tls {
        None => connection(stream, conn, peer, transport, &shared, writes).await,
        Some(client) => {
            let connector = tokio_rustls::TlsConnector::from(client.config);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(client.name, stream)).await {
                Ok(Ok(stream)) => connection(stream, conn, peer, transport, &shared, writes).await,
                Ok(Err(e)) => {
                    // Most often the carrier's certificate: not trusted, or not for this name.
                    tracing::warn!(%conn, %peer, error = %e, "SIP: TLS handshake with the trunk failed");
                    let _ = shared.inputs.send(StreamInput::ConnectFailed { conn }).await;
                }
                Err(_) => {
                    tracing::warn!(%conn, %peer, "SIP: TLS handshake with the trunk timed out");
                    let _ = shared.inputs.send(StreamInput::ConnectFailed { conn }).await;
                }
            }
        }
    }
}

/// One open connection, accepted (the core told with `Opened` already) or opened by us,
/// until it closes: reads framed messages to the core, writes the core's transmits from
/// `writes`, answers pings, closes when idle or broken.
async fn connection<S>(stream: S, conn: ConnId, peer: SocketAddr, transport: Transport, shared: &Shared, mut writes: mpsc::Receiver<Write>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let inputs = shared.inputs.clone();
    tracing::debug!(%conn, %peer, %transport, "SIP: connection open");
    let (mut reader, mut write_half) = tokio::io::split(stream);
    let mut framer = StreamFramer::new(Instant::now(), shared.framer);
    let mut buf = vec![0u8; READ_CHUNK];
    let why = 'conn: loop {
        let idle = framer.poll_timeout();
        tokio::select! {
            read = reader.read(&mut buf), if !framer.is_failed() => {
                let n = match read {
                    Ok(0) => break 'conn "closed by the peer",
                    Ok(n) => n,
                    Err(_) => break 'conn "read failed",
                };
                framer.handle_data(Instant::now(), &buf[..n]);
                while let Some(framed) = framer.poll_message() {
                    let input = match framed {
                        Framed::Message(bytes) => StreamInput::Message { conn, bytes },
                        Framed::Ping => {
                            if write_half.write_all(PONG).await.is_err() {
                                break 'conn "write failed";
                            }
                            framer.handle_sent(Instant::now());
                            continue;
                        }
                        Framed::Invalid { headers, error } => {
                            tracing::debug!(%conn, %peer, %error, "SIP: stream cannot be framed");
                            StreamInput::Invalid { conn, headers, error }
                        }
                    };
                    if inputs.send(input).await.is_err() {
                        break 'conn "core gone";
                    }
                }
            }
            write = writes.recv() => match write {
                Some(Write::Bytes(bytes)) => {
                    if write_half.write_all(&bytes).await.is_err() {
                        break 'conn "write failed";
                    }
                    framer.handle_sent(Instant::now());
                }
                Some(Write::Close) | None => break 'conn "closed by us",
            },
            () = tokio::time::sleep_until(idle.into()) => {
                if framer.is_idle(Instant::now()) {
                    break 'conn "idle";
                }
            }
        }
    };
    tracing::debug!(%conn, %peer, %transport, why, "SIP: connection closed");
    let _ = write_half.shutdown().await;
    let _ = inputs.send(StreamInput::Closed { conn }).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tls_client_settings_are_checked_at_start() {
        let peer: SocketAddr = "192.0.2.7:5061".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        assert!(matches!(TlsClient::new(Some(&missing), None, peer), Err(TlsClientError::CaFile { .. })));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        assert!(matches!(TlsClient::new(Some(&empty), None, peer), Err(TlsClientError::NoRoots(_))));
        let ca = dir.path().join("ca.pem");
        let ck = rcgen::generate_simple_self_signed(vec!["sbc.carrier.test".into()]).unwrap();
        std::fs::write(&ca, ck.cert.pem()).unwrap();
        assert!(matches!(TlsClient::new(Some(&ca), Some("not a name!"), peer), Err(TlsClientError::ServerName(_))));
        let named = TlsClient::new(Some(&ca), Some("sbc.carrier.test"), peer).unwrap();
        assert_eq!(named.name, ServerName::try_from("sbc.carrier.test").unwrap());
        // Without a name the proxy's IP address is what the certificate must carry.
        let by_ip = TlsClient::new(Some(&ca), None, peer).unwrap();
        assert_eq!(by_ip.name, ServerName::IpAddress(peer.ip().into()));
    }
}
