//! Desk audio on the desk server: the QUIC datagrams of each connection (design decision 7).
//!
//! The hook, for the call engine to attach to (nothing here knows about calls):
//! - In: every connection's datagram reader hands each [`AudioFrame`] from a logged-in session
//!   to [`DeskContext::audio_in`] as an [`IncomingAudio`], tagged with the connection and user.
//!   Datagrams from a connection without a live session are dropped unparsed: audio is only
//!   taken from authenticated desks. With no sink attached (`None`), or a sink that is full or
//!   closed, frames are dropped too: live audio is never queued behind a slow consumer.
//! - Out: [`super::Hub::send_audio`] sends a frame to one logged-in connection, found by
//!   connection id (from an [`IncomingAudio`], or [`super::Hub::connections_of`] a user).
//!
//! Drops are counted in `rexian_desk_audio_dropped_total`, accepted frames in
//! `rexian_desk_audio_frames_total`.

use super::{Connection, DeskContext};
use crate::metrics::Metrics;
use rexian_shared::audio::AudioFrame;
use std::sync::Arc;
use tokio::sync::mpsc;

pub use crate::engine::desk_leg::IncomingAudio;

/// Where desk audio goes. The engine creates the channel; a capacity of a few hundred frames
/// (seconds of audio for a handful of calls) absorbs scheduling hiccups without building latency.
pub type AudioSink = mpsc::Sender<IncomingAudio>;

/// Why a frame could not be sent to a desk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioSendError {
    /// No logged-in session on that connection (never was, logged out, or disconnected).
    #[error("desk connection {0} has no logged-in session")]
    NotLoggedIn(u64),
    /// quinn refused the datagram: too large for the path, unsupported by the peer, or the
    /// connection is closing.
    #[error("audio datagram not sent: {0}")]
    Datagram(#[from] quinn::SendDatagramError),
}

/// Why an incoming datagram was dropped (for the trace log).
#[derive(Debug, thiserror::Error)]
enum Dropped {
    #[error("connection not logged in")]
    NotLoggedIn,
    #[error("not an audio frame: {0}")]
    Malformed(rexian_shared::audio::AudioFrameError),
    #[error("no call engine attached")]
    NoSink,
    #[error("call engine behind")]
    SinkFull,
    #[error("call engine gone")]
    SinkClosed,
}

/// Reads `quic`'s datagrams until the connection ends, handing audio from a logged-in session
/// to the context's sink. Runs as one task per connection beside the control stream.
pub(super) async fn receive(ctx: Arc<DeskContext>, quic: quinn::Connection, conn: Arc<Connection>) {
    while let Ok(datagram) = quic.read_datagram().await {
        match accept(&ctx, &conn, &datagram) {
            Ok(()) => Metrics::inc(&ctx.metrics.desk_audio_frames),
            Err(reason) => {
                Metrics::inc(&ctx.metrics.desk_audio_dropped);
                // Trace, not debug: an unauthenticated peer could otherwise fill the log.
                tracing::trace!(%reason, len = datagram.len(), "desk datagram dropped");
            }
        }
    }
}

fn accept(ctx: &DeskContext, conn: &Connection, datagram: &[u8]) -> Result<(), Dropped> {
    // The session is checked before parsing, so an unauthenticated peer costs a lock and a
    // comparison per datagram and nothing more.
    let user_id = super::handlers::current_session(conn, ctx.now()).map_err(|_| Dropped::NotLoggedIn)?.user.id;
    let frame = AudioFrame::parse(datagram).map_err(Dropped::Malformed)?;
    let sink = ctx.audio_in.as_ref().ok_or(Dropped::NoSink)?;
    sink.try_send(IncomingAudio { conn_id: conn.id, user_id, frame }).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => Dropped::SinkFull,
        mpsc::error::TrySendError::Closed(_) => Dropped::SinkClosed,
    })
}

#[cfg(test)]
#[path = "audio_tests.rs"]
mod tests;
