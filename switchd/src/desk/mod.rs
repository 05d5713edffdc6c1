//! The desk server: QUIC (quinn, TLS 1.3) connections from the desktops, the desk protocol's
//! requests with their role checks, pushed events, and call audio in QUIC datagrams ([`audio`]).

pub mod audio;
mod acd_handlers;
mod call_handlers;
mod desk_call_handlers;
mod filter_handlers;
mod handlers;
mod ivr_handlers;
mod hub;

pub use audio::{AudioSendError, AudioSink, IncomingAudio};
pub use hub::{Audience, Hub};

use crate::auth::Auth;
use crate::cases::Cases;
use crate::certs::Identity;
use crate::metrics::Metrics;
use chrono::NaiveDateTime;
use rexian_shared::{codec, ClientMsg, DeskError, ErrorCode, ServerMsg, Session, ALPN, PROTOCOL_VERSION};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tracing::Instrument;

/// Requests one connection may have in flight; more wait (back-pressure on a misbehaving client).
const MAX_IN_FLIGHT: usize = 64;

/// What every connection's handlers share.
pub struct DeskContext {
    pub auth: Auth,
    pub cases: Cases,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    pub utc_offset_hours: i32,
    /// Receives the audio frames of logged-in desks; `None` while no call engine is attached,
    /// and their audio is dropped. See [`audio`].
    pub audio_in: Option<AudioSink>,
    /// Where AnswerCall / HangupCall go: the call engine; `None` without one.
    pub calls: Option<mpsc::UnboundedSender<crate::engine::desk_leg::DeskControl>>,
    /// The prompts the IVR plays (for checking flows and installing recordings); `None` in
    /// tests without telephony.
    pub prompts: Option<crate::media::prompt::Prompts>,
    /// The ACD (agent states, queues); `None` in tests without telephony.
    pub acd: Option<crate::acd::actor::AcdHandle>,
}

/// Carries what the engine sends desks — call events to a user's desktops, audio frames to one
/// connection — until the engine goes away.
pub async fn deliver(ctx: Arc<DeskContext>, mut from_engine: mpsc::UnboundedReceiver<crate::engine::desk_leg::DeskOut>) {
    use crate::engine::desk_leg::DeskOut;
    while let Some(out) = from_engine.recv().await {
        match out {
            DeskOut::Event { user_id, event } => ctx.hub.send_to_user(user_id, &event),
            DeskOut::Supervisors { event } => ctx.hub.send_to_roles(&[rexian_shared::Role::Supervisor, rexian_shared::Role::Admin], &event),
            DeskOut::Audio { conn_id, frame } => {
                if let Err(e) = ctx.hub.send_audio(conn_id, &frame) {
                    Metrics::inc(&ctx.metrics.desk_audio_dropped);
                    tracing::trace!(conn_id, error = %e, "audio to desk dropped");
                }
            }
        }
    }
}

impl DeskContext {
    /// Local wall-clock time (China Standard Time by default), whatever the server's time zone.
    pub fn now(&self) -> NaiveDateTime {
        (chrono::Utc::now() + chrono::Duration::hours(self.utc_offset_hours.into())).naive_utc()
    }
}

/// The state of one desktop's connection.
pub struct Connection {
    pub id: u64,
    pub session: Mutex<Option<Session>>,
    pub outgoing: mpsc::UnboundedSender<ServerMsg>,
    pub remote: SocketAddr,
    /// The QUIC connection itself, for audio datagrams to this desk ([`Hub::send_audio`]).
    pub quic: quinn::Connection,
}

pub fn server_config(identity: Identity) -> anyhow::Result<quinn::ServerConfig> {
    let mut crypto = rustls::ServerConfig::builder_with_provider(rexian_shared::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)?;
    crypto.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(crypto)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(Duration::from_secs(30).try_into()?));
    transport.max_concurrent_bidi_streams(4u32.into());
    // Call audio arrives as datagrams (see `audio`); the client sizes its buffers alike.
    transport.datagram_receive_buffer_size(Some(rexian_shared::audio::DATAGRAM_BUFFER_BYTES));
    transport.datagram_send_buffer_size(rexian_shared::audio::DATAGRAM_BUFFER_BYTES);
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Accepts connections until the endpoint is closed.
pub async fn serve(endpoint: quinn::Endpoint, ctx: Arc<DeskContext>) {
    let next_id = AtomicU64::new(1);
    while let Some(incoming) = endpoint.accept().await {
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let ctx = ctx.clone();
        let remote = incoming.remote_address();
        let span = tracing::info_span!("desk_conn", conn = id, %remote);
        tokio::spawn(
            async move {
                match incoming.await {
                    Ok(conn) => run_connection(ctx, conn, id).await,
                    Err(e) => tracing::debug!(error = %e, "handshake failed"),
                }
            }
            .instrument(span),
        );
    }
}

async fn run_connection(ctx: Arc<DeskContext>, conn: quinn::Connection, id: u64) {
    ctx.metrics.desk_connections.fetch_add(1, Ordering::Relaxed);
    tracing::info!("desk connected");
    let result = converse(&ctx, &conn, id).await;
    let user = ctx.hub.user_of(id);
    ctx.hub.remove(id);
    // The agent's last desk is gone: the ACD takes back an offer and logs the agent out.
    if let (Some(user), Some(acd)) = (user, &ctx.acd) {
        if ctx.hub.connections_of(user).is_empty() {
            acd.tell(crate::acd::Command::Disconnected { agent: crate::acd::AgentId(user) });
        }
    }
    // A call it talked on loses its desk (after the ACD heard of the agent, so the agent is
    // logged out once that call's wrap-up ends).
    if let Some(engine) = &ctx.calls {
        let _ = engine.send(crate::engine::desk_leg::DeskControl::ConnectionLost { conn_id: id });
    }
    ctx.metrics.desk_connections.fetch_sub(1, Ordering::Relaxed);
    match result {
        Ok(()) => tracing::info!("desk disconnected"),
        Err(e) => tracing::info!(error = %e, "desk connection ended"),
    }
}

/// The control stream: hello, then requests answered concurrently, events interleaved.
async fn converse(ctx: &Arc<DeskContext>, conn: &quinn::Connection, id: u64) -> anyhow::Result<()> {
    let (mut send, mut recv) = tokio::time::timeout(Duration::from_secs(10), conn.accept_bi()).await??;
    let Some(hello) = codec::read::<_, ClientMsg>(&mut recv).await? else { return Ok(()) };
    if !hello_ok(&hello) {
        let error = DeskError::new(
            ErrorCode::IncompatibleVersion,
            format!("客户端协议版本不兼容，服务器需要版本{PROTOCOL_VERSION} / incompatible protocol version, server speaks {PROTOCOL_VERSION}"),
        );
        codec::write(&mut send, &ServerMsg::Refused { error }).await?;
        send.finish()?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        return Ok(());
    }
    let welcome = ServerMsg::Welcome { version: PROTOCOL_VERSION, server: format!("switchd {}", env!("CARGO_PKG_VERSION")) };
    codec::write(&mut send, &welcome).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<ServerMsg>();
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let Ok(frame) = codec::encode(&msg) else { continue };
            if send.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    let state = Arc::new(Connection {
        id,
        session: Mutex::new(None),
        outgoing: tx,
        remote: conn.remote_address(),
        quic: conn.clone(),
    });
    let audio = tokio::spawn(audio::receive(ctx.clone(), conn.clone(), state.clone()));
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let result = loop {
        let msg = match codec::read::<_, ClientMsg>(&mut recv).await {
            Ok(Some(msg)) => msg,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e.into()),
        };
        let ClientMsg::Request { id: req_id, body } = msg else { continue };
        let permit = limit.clone().acquire_owned().await?;
        let (ctx, state) = (ctx.clone(), state.clone());
        tokio::spawn(async move {
            let result = handlers::handle(&ctx, &state, *body).await;
            let _ = state.outgoing.send(ServerMsg::Reply { id: req_id, result });
            drop(permit);
        });
    };
    drop(state);
    writer.abort();
    audio.abort();
    result
}

fn hello_ok(msg: &ClientMsg) -> bool {
    matches!(msg, ClientMsg::Hello { version, .. } if *version == PROTOCOL_VERSION)
}
