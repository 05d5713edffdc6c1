//! The telephony engine (DESIGN.md decision 3): calls and legs, the primitives applications
//! use ([`call::Call`]), and the events they produce.
//!
//! The SIP side ([`crate::sip::udp`]) reports [`CallEvent`]s; [`run`] routes each new call by
//! the dialled number ([`config::TelephonyConfig::route`]), negotiates its media, writes its
//! call detail record and runs its application in a task of its own. Applications never see
//! SIP or RTP: they call `answer`, `play_text`, `collect`, `record`, `echo`, `hangup`.
//!
//! Here now: inbound calls from trunks over UDP, G.711 with RFC 4733 / INFO / in-band DTMF,
//! the echo test, prompt-then-record and the hotline hook. Not yet: outbound legs, bridging,
//! desk (Opus) legs, conference and snoop — see `docs/FEATURES.md`.

pub mod apps;
pub mod call;
pub mod callback;
pub mod config;
pub mod desk_leg;
pub mod fork;
pub mod hold;
pub mod intercom;
pub mod outbound;
pub mod rtp_leg;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use crate::cdr::{CallDirection, CallEnd, CallStart, EndCause, MediaQuality};
use crate::media::prompt::Prompts;
use crate::sip::sdp::{self, LocalMedia, SessionDescription};
use crate::sip::ua::{CallCommand, CallEvent, EndReason, Incoming, LegId};
use crate::store::Store;
use call::{Call, CallInfo, LegSignal};
use config::{RouteApp, TelephonyConfig};
use rtp_leg::RtpLeg;

/// What the engine reports to whoever listens (the ACD and supervisors later; tests now).
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    LegCreated { leg: LegId, caller: String, callee: String, trunk: String },
    Answered { leg: LegId },
    Dtmf { leg: LegId, digit: char },
    PlaybackFinished { leg: LegId },
    RecordingFinished { leg: LegId, path: String, seconds: f64 },
    Ended { leg: LegId, reason: EndReason },
    /// Desk user `user_id` is taken up by a desk-to-desk part of call `call` outside the ACD's
    /// routing (an intercom, being consulted, taking a call over): the ACD keeps them on call.
    DeskBusy { user_id: i64, call: u64 },
    /// That is over for the user; also said of the last desk party of every desk call's end.
    DeskFree { user_id: i64, call: u64 },
    /// The desk party of call `call` is now `to` (an attended transfer to a desk completed, or
    /// a supervisor took the call over): the ACD moves the queue call to them.
    DeskHandedOver { call: u64, to: i64 },
}

/// What every call task shares.
pub struct Shared {
    pub config: TelephonyConfig,
    pub store: Store,
    pub prompts: Prompts,
    pub data_dir: PathBuf,
    pub utc_offset_hours: i32,
    pub commands: mpsc::UnboundedSender<CallCommand>,
    pub events: broadcast::Sender<EngineEvent>,
    pub hotline: HotlineHook,
    /// Runs a named IVR flow on a call a desk hands over (人工转自动).
    pub flows: FlowHook,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Desk legs ringing or connected, and the way to the desk server.
    pub desks: Arc<desk_leg::DeskRegistry>,
    pub desk_out: mpsc::UnboundedSender<desk_leg::DeskOut>,
    /// Every live leg's signal channel, by leg (inbound legs are added by [`run`], outbound
    /// ones by whoever places them).
    pub legs: std::sync::Mutex<HashMap<LegId, mpsc::UnboundedSender<LegSignal>>>,
    /// Numbers outbound legs ([`LegId::engine`]).
    pub next_outbound: std::sync::atomic::AtomicU64,
    /// What a caller on hold hears (`hold_music`, or the built-in melody).
    pub hold_music: Arc<[i16]>,
}

impl Shared {
    fn forward(&self, leg: LegId, signal: LegSignal, last: bool) {
        let Ok(mut legs) = self.legs.lock() else { return };
        let tx = if last { legs.remove(&leg) } else { legs.get(&leg).cloned() };
        match tx {
            Some(tx) => {
                if tx.send(signal).is_err() {
                    // The task is gone without the leg's end reaching us: forget it now.
                    legs.remove(&leg);
                    tracing::debug!(%leg, "signal for a leg whose task has ended");
                }
            }
            None => tracing::debug!(%leg, ?signal, "signal for an unknown leg"),
        }
    }
}

/// The hotline number's application: the IVR issue installs its own; until then the
/// placeholder in [`apps::hotline_placeholder`] answers.
pub type HotlineHook =
    Arc<dyn Fn(Call) -> std::pin::Pin<Box<dyn std::future::Future<Output = Call> + Send>> + Send + Sync>;

/// Runs IVR flow `name` on a call (the IVR installs it; see [`HotlineHook`]).
pub type FlowHook = Arc<
    dyn for<'a> Fn(&'a mut Call, String) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> + Send + Sync,
>;

/// Runs the engine until the SIP side goes away.
pub async fn run(shared: Arc<Shared>, mut sip_events: mpsc::UnboundedReceiver<CallEvent>) {
    while let Some(event) = sip_events.recv().await {
        match event {
            CallEvent::Incoming(incoming) => {
                if let Some((leg, tx)) = start_call(&shared, *incoming) {
                    if let Ok(mut legs) = shared.legs.lock() {
                        legs.insert(leg, tx);
                    }
                }
            }
            CallEvent::Confirmed { leg, sdp } => shared.forward(leg, LegSignal::Confirmed(sdp), false),
            CallEvent::Dtmf { leg, digit } => shared.forward(leg, LegSignal::Dtmf(digit), false),
            CallEvent::ReInvite { leg, sdp } => shared.forward(leg, LegSignal::ReInvite(sdp), false),
            CallEvent::Ringing { leg, .. } => shared.forward(leg, LegSignal::Ringing, false),
            // The CDR keeps the trunk the engine chose; the SIP side logs where failover took
            // the call (`trunk`).
            CallEvent::Answered { leg, sdp, .. } => shared.forward(leg, LegSignal::Answered(sdp), false),
            CallEvent::Failed { leg, status } => shared.forward(leg, LegSignal::Failed(status), true),
            CallEvent::Ended { leg, reason } => shared.forward(leg, LegSignal::Ended(reason), true),
            // Logged and counted by the SIP side; outbound calls already avoid down trunks.
            CallEvent::TrunkUp { .. } | CallEvent::TrunkDown { .. } => {}
        }
    }
}

/// Routes, negotiates and spawns one inbound call; `None` when it was refused.
/// Routes, negotiates and spawns one inbound call; `None` when it was refused. Nothing here
/// waits: the call detail record is written by the call's own task, so a slow disk delays that
/// call only and never the calls queued behind it (under 1,000 running calls an fsync per new
/// call in this loop held later INVITEs for seconds).
fn start_call(shared: &Arc<Shared>, mut incoming: Incoming) -> Option<(LegId, mpsc::UnboundedSender<LegSignal>)> {
    let leg = incoming.leg;
    incoming.caller = national_number(&incoming.caller);
    let route = shared.config.route(&incoming.callee).cloned();
    let start = CallStart {
        sip_call_id: incoming.call_id.clone(),
        direction: CallDirection::Inbound,
        trunk: Some(incoming.trunk.clone()),
        caller: incoming.caller.clone(),
        callee: incoming.callee.clone(),
        route: route.as_ref().map(|r| route_name(r.app)).unwrap_or("none").to_owned(),
        offered_at: chrono::Utc::now(),
    };
    let refused = |status: u16, cause: EndCause| {
        let _ = shared.commands.send(CallCommand::Reject { leg, status });
        tokio::spawn(record_refusal(shared.store.clone(), leg, start.clone(), status, cause));
    };
    let Some(route) = route else {
        tracing::info!(%leg, callee = %incoming.callee, "no route for the dialled number, 404");
        refused(404, EndCause::Rejected);
        return None;
    };
    let media = match negotiate(shared, &incoming) {
        Ok(m) => m,
        Err(status) => {
            refused(status, EndCause::Failed);
            return None;
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let info = CallInfo {
        leg,
        cdr: None,
        trunk: incoming.trunk,
        caller: incoming.caller,
        callee: incoming.callee,
        sip_call_id: incoming.call_id,
    };
    let _ = shared.events.send(EngineEvent::LegCreated {
        leg,
        caller: info.caller.clone(),
        callee: info.callee.clone(),
        trunk: info.trunk.clone(),
    });
    let mut call = Call::new(info, shared.clone(), media.rtp, media.local, media.sdp, rx);
    let span = tracing::info_span!("call", %leg, caller = %call.info.caller, callee = %call.info.callee);
    let task_shared = shared.clone();
    let task = async move {
        call.info.cdr = task_shared
            .store
            .call_offered(start)
            .await
            .map_err(|e| tracing::warn!(%leg, error = %e, "CDR: cannot record the offer"))
            .ok();
        run_app(task_shared, route, call).await;
    };
    tokio::spawn(tracing::Instrument::instrument(task, span));
    Some((leg, tx))
}

/// The record of a call refused before any application ran.
async fn record_refusal(store: Store, leg: LegId, start: CallStart, status: u16, cause: EndCause) {
    let result = async {
        let id = store.call_offered(start).await?;
        let end = CallEnd { ended_at: chrono::Utc::now(), cause, sip_status: Some(status), digits: String::new(), quality: None };
        store.call_ended(id, end).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(%leg, error = %e, "CDR: cannot record the refused call");
    }
}

struct Media {
    rtp: RtpLeg,
    local: LocalMedia,
    sdp: Vec<u8>,
}

/// A caller number as the case system keys callers: `+86` / `0086` dropped, spaces and dashes
/// removed (`+86 138-0013-8000` → `13800138000`); anything that is no phone number (a SIP user
/// name, `anonymous`) is kept as it came.
fn national_number(raw: &str) -> String {
    rexian_shared::PhoneNumber::parse(raw).map(|p| p.as_ref().to_owned()).unwrap_or_else(|_| raw.to_owned())
}

/// Binds the leg's RTP port and answers its offer (or makes ours for a late offer). The
/// error is the SIP status to refuse the call with.
fn negotiate(shared: &Shared, incoming: &Incoming) -> Result<Media, u16> {
    let cfg = &shared.config;
    let socket = rtp_leg::bind_rtp(cfg.rtp_ip, cfg.rtp_port_min, cfg.rtp_port_max).map_err(|e| {
        tracing::warn!(leg = %incoming.leg, error = %e, "RTP: no port, 503");
        503u16
    })?;
    let port = socket.port().map_err(|_| 503u16)?;
    let ip = cfg.advertise_ip.unwrap_or_else(|| local_ip_towards(incoming.source, cfg.rtp_ip));
    let session = u64::from(port) << 32 | (incoming.leg.0 & 0xffff_ffff);
    let local = LocalMedia::new(ip, port, session);
    if incoming.sdp.is_empty() {
        // Late offer: we offer in the 200; the ACK's answer is applied when it arrives.
        let offer = sdp::offer(&local);
        let placeholder = sdp::answer(&offer, &local).map_err(|_| 500u16)?;
        let mut rtp = RtpLeg::new(socket, &placeholder);
        rtp.renegotiate(&sdp::Answer { remote: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0), ..placeholder });
        return Ok(Media { rtp, sdp: offer.render().into_bytes(), local });
    }
    let offer = std::str::from_utf8(&incoming.sdp)
        .ok()
        .and_then(|t| SessionDescription::parse(t).ok())
        .ok_or_else(|| {
            tracing::info!(leg = %incoming.leg, "SDP offer unreadable, 488");
            488u16
        })?;
    let answer = sdp::answer(&offer, &local).map_err(|e| {
        tracing::info!(leg = %incoming.leg, error = %e, "no common codec, 488");
        488u16
    })?;
    let rtp = RtpLeg::new(socket, &answer);
    Ok(Media { rtp, sdp: answer.sdp.render().into_bytes(), local })
}

/// The local address the kernel would use to reach `peer` (what goes into our SDP when no
/// address is configured and RTP binds to the unspecified address).
pub(super) fn local_ip_towards(peer: SocketAddr, bound: IpAddr) -> IpAddr {
    if !bound.is_unspecified() {
        return bound;
    }
    let probe = std::net::UdpSocket::bind(SocketAddr::new(
        if peer.is_ipv4() { IpAddr::from([0, 0, 0, 0]) } else { IpAddr::from([0u16; 8]) },
        0,
    ));
    probe
        .and_then(|s| {
            s.connect(peer)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(peer.ip())
}

fn route_name(app: RouteApp) -> &'static str {
    match app {
        RouteApp::Echo => "echo",
        RouteApp::PromptRecord => "prompt_record",
        RouteApp::Hotline => "hotline",
        RouteApp::Desk => "desk",
        RouteApp::Forward => "forward",
    }
}

/// Runs the application, then hangs up if it did not and writes the end of the CDR.
async fn run_app(shared: Arc<Shared>, route: config::RouteConfig, call: Call) {
    shared.metrics.calls_total.fetch_add(1, Ordering::Relaxed);
    shared.metrics.calls_active.fetch_add(1, Ordering::Relaxed);
    let call = match route.app {
        RouteApp::Echo => apps::echo_test(call).await,
        RouteApp::PromptRecord => apps::prompt_then_record(call).await,
        RouteApp::Hotline => (shared.hotline)(call).await,
        RouteApp::Desk => apps::desk_user(call, route.user.unwrap_or_default()).await,
        RouteApp::Forward => {
            let ring = route.ring_secs.unwrap_or(shared.config.desk_ring_secs);
            let targets = route.to.map(|to| to.targets()).unwrap_or_default();
            apps::forward_route(call, targets, std::time::Duration::from_secs(u64::from(ring))).await
        }
    };
    finish(&shared, call).await;
}

/// Ends a call whose application is done: hangs up if it still runs, counts its media,
/// closes its record, then tells the engine's listeners and the desk it was offered to.
pub(super) async fn finish(shared: &Shared, mut call: Call) {
    let leg = call.info.leg;
    call.hangup();
    let stats = call.media_stats();
    let quality = call.media_quality();
    let desk_user = call.desk_user();
    let snoopers = call.snoopers();
    let metrics = &shared.metrics;
    metrics.calls_active.fetch_sub(1, Ordering::Relaxed);
    metrics.rtp_packets_in.fetch_add(stats.packets_in, Ordering::Relaxed);
    metrics.rtp_packets_out.fetch_add(stats.packets_out, Ordering::Relaxed);
    metrics.rtp_packets_ignored.fetch_add(stats.ignored_in, Ordering::Relaxed);
    metrics.rtp_packets_lost.fetch_add(u64::try_from(quality.packets_lost).unwrap_or(0), Ordering::Relaxed);
    metrics.rtcp_packets_in.fetch_add(quality.rtcp_received, Ordering::Relaxed);
    let outcome = call.into_outcome();
    let reason = outcome.ended.unwrap_or(EndReason::Local);
    let cause = match (outcome.sip_status, reason) {
        _ if outcome.forced => EndCause::ForcedHangup,
        (Some(486 | 600 | 603 | 403), _) => EndCause::Rejected,
        (Some(408 | 480 | 487), _) => EndCause::NoAnswer,
        (Some(_), _) => EndCause::Failed,
        (None, EndReason::RemoteBye) => EndCause::CallerHangup,
        (None, EndReason::Cancelled) => EndCause::Cancelled,
        (None, EndReason::AckTimeout) => EndCause::Failed,
        (None, EndReason::SessionExpired) => EndCause::SessionExpired,
        (None, EndReason::Local) if outcome.answered => EndCause::SwitchHangup,
        (None, EndReason::Local) => EndCause::NoAnswer,
    };
    tracing::info!(%leg, ?reason, status = outcome.sip_status, digits = outcome.digits, "call ended");
    // The record first: whoever hears of the end (a desk, a supervisor) can then read it.
    if let Some(id) = outcome.info.cdr {
        let quality = outcome.answered.then_some(MediaQuality {
            packets_received: quality.packets_received,
            packets_lost: quality.packets_lost,
            jitter_max_ms: quality.jitter_max_ms,
            rtt_mean_ms: quality.rtt_mean_ms,
            rtcp_received: quality.rtcp_received,
        });
        let end = CallEnd { ended_at: chrono::Utc::now(), cause, sip_status: outcome.sip_status, digits: outcome.digits, quality };
        if let Err(e) = shared.store.call_ended(id, end).await {
            tracing::warn!(%leg, error = %e, "CDR: cannot record the end");
        }
    }
    let _ = shared.events.send(EngineEvent::Ended { leg, reason });
    if desk_user.is_some() {
        shared.desks.remove(leg.0);
    }
    if let Some(user_id) = desk_user {
        let _ = shared.events.send(EngineEvent::DeskFree { user_id, call: leg.0 });
    }
    for user_id in desk_user.into_iter().chain(snoopers) {
        let event = rexian_shared::Event::CallEnded { call: leg.0, cause: cause.code().to_owned() };
        let _ = shared.desk_out.send(desk_leg::DeskOut::Event { user_id, event });
    }
}

#[cfg(test)]
mod tests {
    use super::national_number;

    #[test]
    fn caller_numbers_are_keyed_nationally_and_names_kept() {
        assert_eq!(national_number("+8613800138000"), "13800138000");
        assert_eq!(national_number("0086 10 6512 3456"), "01065123456", "a Beijing line gets its trunk prefix back");
        assert_eq!(national_number("013800138000"), "13800138000", "a long-distance 0 before a mobile is dropped");
        assert_eq!(national_number("4008123123"), "4008123123");
        assert_eq!(national_number("anonymous"), "anonymous");
        assert_eq!(national_number("sipp"), "sipp");
    }
}
