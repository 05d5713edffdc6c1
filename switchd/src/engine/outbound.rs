//! Outbound calls: a desk dials an external number through the outbound trunk. The engine
//! picks the leg id ([`LegId::engine`]), offers G.711 on a fresh RTP port, and the SIP side
//! places the call ([`CallCommand::Originate`], digest-authenticated when the carrier
//! challenges). The desk is connected from the start: it hears of ringing, then talks.
//! A `sip:user@ip[:port]` target (a forward route's `to`) goes straight to that address
//! instead ([`CallCommand::OriginateUri`]).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::call::{Call, CallInfo};
use super::desk_leg::DeskCallError;
use super::rtp_leg::{self, RtpLeg};
use super::{finish, local_ip_towards, Shared};
use crate::cdr::{CallDirection, CallStart};
use crate::sip::sdp::{self, LocalMedia};
use crate::sip::ua::{CallCommand, LegId};

/// How long an outbound call may ring before the desk's attempt is given up.
const RING_LIMIT: Duration = Duration::from_secs(60);

/// An outbound leg being placed: its id, media and signals. The `Originate` is sent by
/// [`place`] already; the answer's SDP goes to [`OutboundLeg::local`] to renegotiate `rtp`.
pub struct OutboundLeg {
    pub leg: LegId,
    pub trunk: String,
    pub rtp: RtpLeg,
    pub local: LocalMedia,
    pub signals: tokio::sync::mpsc::UnboundedReceiver<super::call::LegSignal>,
}

/// Places a call to `number` through the outbound trunk: picks the leg id, binds its RTP
/// port, offers G.711 and registers the leg for its SIP events.
pub fn place(shared: &Shared, number: &str) -> Result<OutboundLeg, DeskCallError> {
    place_as(shared, next_leg(shared), number)
}

/// A fresh outbound leg id.
pub fn next_leg(shared: &Shared) -> LegId {
    LegId::engine(shared.next_outbound.fetch_add(1, Ordering::Relaxed) + 1)
}

/// [`place`] with a leg id chosen already (the desk knew the call by it before it was placed).
pub fn place_as(shared: &Shared, leg: LegId, number: &str) -> Result<OutboundLeg, DeskCallError> {
    let cfg = &shared.config;
    // A SIP URI names its own destination; a number goes through the outbound trunk.
    let (trunk, destination) = if number.starts_with("sip:") {
        let Some((_, destination)) = crate::sip::ua::direct_target(number) else {
            // Nowhere to send it: like a missing trunk, the call cannot be placed.
            tracing::warn!(%leg, target = number, "not a sip: URI with an IP address; the call cannot be placed");
            return Err(DeskCallError::NoTrunk);
        };
        (None, destination)
    } else {
        let trunk = cfg.outbound().ok_or(DeskCallError::NoTrunk)?.clone();
        let destination = trunk
            .proxy
            .or_else(|| trunk.addresses.first().map(|ip| SocketAddr::new(*ip, 5060)))
            .ok_or(DeskCallError::NoTrunk)?;
        (Some(trunk), destination)
    };
    let socket = rtp_leg::bind_rtp(cfg.rtp_ip, cfg.rtp_port_min, cfg.rtp_port_max).map_err(|_| DeskCallError::NoMedia)?;
    let port = socket.port().map_err(|_| DeskCallError::NoMedia)?;
    let ip = cfg.advertise_ip.unwrap_or_else(|| local_ip_towards(destination, cfg.rtp_ip));
    let local = LocalMedia::new(ip, port, u64::from(port) << 32 | (leg.0 & 0xffff_ffff));
    let offer = sdp::offer(&local);
    // Until the answer says where to send, the leg sends nothing.
    let placeholder = sdp::answer(&offer, &local).map_err(|_| DeskCallError::NoMedia)?;
    let rtp = RtpLeg::new(socket, &sdp::Answer { remote: SocketAddr::from(([0, 0, 0, 0], 0)), ..placeholder });
    let (tx, signals) = tokio::sync::mpsc::unbounded_channel();
    if let Ok(mut legs) = shared.legs.lock() {
        legs.insert(leg, tx);
    }
    let (command, trunk) = match trunk {
        Some(trunk) => {
            let command = CallCommand::Originate {
                leg,
                trunk: trunk.name.clone(),
                to_number: number.to_owned(),
                from_number: cfg.outbound_caller_id.clone(),
                sdp: offer.render().into_bytes(),
            };
            (command, trunk.name)
        }
        None => {
            let command = CallCommand::OriginateUri {
                leg,
                uri: number.to_owned(),
                from_number: cfg.outbound_caller_id.clone(),
                sdp: offer.render().into_bytes(),
            };
            // What the CDR and logs show where a trunk's name would be.
            (command, destination.to_string())
        }
    };
    let _ = shared.commands.send(command);
    Ok(OutboundLeg { leg, trunk, rtp, local, signals })
}

/// Places a call from desk user `user_id` (on connection `conn_id`) to `number`; returns the
/// call's id for the desk's events and audio.
pub async fn dial_from_desk(shared: &Arc<Shared>, user_id: i64, conn_id: u64, number: &str) -> Result<u64, DeskCallError> {
    let cfg = &shared.config;
    let OutboundLeg { leg, trunk, rtp, local, signals } = place(shared, number)?;
    let cdr = shared
        .store
        .call_offered(CallStart {
            sip_call_id: String::new(),
            direction: CallDirection::Outbound,
            trunk: Some(trunk.clone()),
            caller: cfg.outbound_caller_id.clone(),
            callee: number.to_owned(),
            route: "desk_dial".into(),
            offered_at: chrono::Utc::now(),
        })
        .await
        .map_err(|e| tracing::warn!(%leg, error = %e, "CDR: cannot record the outbound call"))
        .ok();
    let info = CallInfo { leg, cdr, trunk, caller: cfg.outbound_caller_id.clone(), callee: number.to_owned(), sip_call_id: String::new() };
    let mut call = Call::new(info, shared.clone(), rtp, local, Vec::new(), signals);
    call.attach_desk(user_id, shared.desks.insert(leg.0, user_id, Some(conn_id), &cfg.outbound_caller_id, number));
    tracing::info!(%leg, number, "outbound call placed for a desk");
    let span = tracing::info_span!("call", %leg, callee = number);
    tokio::spawn(tracing::Instrument::instrument(talk(shared.clone(), call, conn_id), span));
    Ok(leg.0)
}

async fn talk(shared: Arc<Shared>, mut call: Call, conn_id: u64) {
    shared.metrics.calls_total.fetch_add(1, Ordering::Relaxed);
    shared.metrics.calls_active.fetch_add(1, Ordering::Relaxed);
    let result = async {
        if call.await_remote_answer(RING_LIMIT).await? {
            call.record_if_configured().await;
            let transfer = call.talk_with_desk(conn_id).await?;
            super::apps::transfer_if_asked(&mut call, transfer).await?;
        }
        Ok::<(), super::call::CallError>(())
    }
    .await;
    call.stop_call_recording().await;
    if let Err(e) = result {
        tracing::debug!(leg = %call.info.leg, error = %e, "outbound call over");
    }
    finish(&shared, call).await;
}
