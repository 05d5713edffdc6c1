//! The tokio side of SIP over TCP and TLS (RFC 3261 §18, §26.2): listeners, one task per
//! connection, and the [`StreamHub`] through which the single owner of the [`UdpCore`] (the
//! task in [`super::udp::serve_all`]) hears from and writes to them.
//!
//! A connection task reads, cuts messages with the sans-IO [`StreamFramer`], answers
//! keep-alive pings itself and sends whole messages to the core's task over a bounded channel
//! (a slow core slows the readers, it never buffers without end). The core's transmits for the
//! connection come back on a small per-connection channel; a connection that does not keep up
//! with them is dropped rather than let its queue grow.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

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
const READ_CHUNK: usize = 16 * 1024;

/// The core task's end of every stream connection.
#[derive(Debug)]
pub struct StreamHub {
    inputs: mpsc::Receiver<StreamInput>,
    writers: HashMap<ConnId, mpsc::Sender<Write>>,
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
            tokio::spawn(accept_loop(tls, Some(acceptor), shared));
        }
        Self {
            inputs,
            writers: HashMap::new(),
        }
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
        tokio::spawn(async move {
            match tls {
                None => connection(stream, conn, peer, Transport::Tcp, slot).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection(stream, conn, peer, Transport::Tls, slot).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "SIP: TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "SIP: TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// One connection until it closes: reads framed messages to the core, writes the core's
/// transmits, answers pings, closes when idle or broken. The slot is released on return.
async fn connection<S>(stream: S, conn: ConnId, peer: SocketAddr, transport: Transport, slot: Slot)
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let inputs = slot.shared.inputs.clone();
    let (writer, mut writes) = mpsc::channel(WRITE_QUEUE);
    let opened = StreamInput::Opened {
        conn,
        peer,
        transport,
        writer,
    };
    if inputs.send(opened).await.is_err() {
        return; // the core is gone
    }
    tracing::debug!(%conn, %peer, %transport, "SIP: connection open");
    let (mut reader, mut write_half) = tokio::io::split(stream);
    let mut framer = StreamFramer::new(Instant::now(), slot.shared.framer);
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
