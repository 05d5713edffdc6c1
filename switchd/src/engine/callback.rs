//! Callbacks that kept the caller's place (ACD-4, virtual hold), engine side. When the ACD
//! reaches a callback it reserves an agent and hands the engine a [`CallbackJob`]: the agent's
//! desk is offered the callback first (agent first, so nobody picks up a phone to hear
//! silence); once the agent takes it, switchd dials the caller through the outbound trunk while
//! the agent hears of ringing; when the caller answers they hear a short greeting and talk with
//! the agent. Each step is reported back on the job's channel, which the ACD turns into its
//! commands.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::call::{Call, CallError, CallInfo};
use super::desk_leg::{DeskOut, DeskSignal};
use super::outbound::{next_leg, place_as, OutboundLeg};
use super::{finish, Shared};
use crate::cdr::{CallDirection, CallStart};

/// The `callee` a desk sees on a callback's `CallOffered`: the callback is to `caller`.
pub const CALLBACK_CALLEE: &str = "callback";

/// What the caller hears once reached, before the agent speaks.
const GREETING: &str = "您好，这里是12365热线，您预约的回电已接通，请讲。";

/// A callback for the engine to carry out.
#[derive(Debug)]
pub struct CallbackJob {
    /// The reserved agent (desk user id).
    pub agent: i64,
    /// The caller's number to dial.
    pub number: String,
    /// The queue the callback waited in (for the logs).
    pub queue: String,
    /// The whole attempt (desk answer and caller answer) must end by then: the ACD takes the
    /// callback back at this deadline.
    pub until: Instant,
    /// The call record of the original call, shown to the desk for linking tickets.
    pub record: Option<i64>,
    pub reports: mpsc::UnboundedSender<CallbackReport>,
    /// Dropped or fired: the ACD withdrew the callback (the agent left); stop before dialling.
    pub cancel: oneshot::Receiver<()>,
}

/// How a callback went, in order: `Declined`, or `Reached` then `Ended`, or `NotReached`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackReport {
    /// The agent's desk declined or did not answer in time; the callback keeps its place.
    Declined,
    /// The caller answered: agent and caller talk.
    Reached,
    /// The caller could not be reached (busy, no answer, failure) or the agent gave up.
    NotReached,
    /// The conversation is over.
    Ended,
}

/// Runs `job` in a task of its own.
pub fn spawn(shared: Arc<Shared>, job: CallbackJob) {
    let span = tracing::info_span!("callback", agent = job.agent, number = %job.number, queue = %job.queue);
    tokio::spawn(tracing::Instrument::instrument(run(shared, job), span));
}

async fn run(shared: Arc<Shared>, mut job: CallbackJob) {
    let reports = job.reports.clone();
    let report = |r| {
        let _ = reports.send(r);
    };
    let leg = next_leg(&shared);
    let Some((conn_id, desk)) = offer_to_agent(&shared, leg.0, &mut job).await else {
        report(CallbackReport::Declined);
        return;
    };
    let placed = match place_as(&shared, leg, &job.number) {
        Ok(placed) => placed,
        Err(e) => {
            tracing::warn!(error = %e, "callback: cannot place the call");
            end_for_desk(&shared, leg.0, job.agent, "failed");
            report(CallbackReport::NotReached);
            return;
        }
    };
    let mut call = callback_call(&shared, placed, &job, desk).await;
    tracing::info!(leg = %call.info.leg, "callback: the agent took it; dialling the caller");
    let reach = job.until.saturating_duration_since(Instant::now()).saturating_sub(Duration::from_millis(300));
    let reached = tokio::select! {
        r = call.await_remote_answer(reach) => r,
        _ = &mut job.cancel => Ok(false),
    };
    match reached {
        Ok(true) => {
            report(CallbackReport::Reached);
            if let Err(e) = talk(&mut call, conn_id).await {
                tracing::debug!(leg = %call.info.leg, error = %e, "callback over");
            }
            report(CallbackReport::Ended);
        }
        Ok(false) | Err(_) => {
            tracing::info!(leg = %call.info.leg, "callback: the caller was not reached");
            report(CallbackReport::NotReached);
        }
    }
    call.stop_call_recording().await;
    finish(&shared, call).await;
}

/// Rings the agent's desk with the callback until it answers (its connection, and the desk's
/// signals from then on), declines, the deadline nears or the ACD withdraws it.
async fn offer_to_agent(shared: &Shared, call: u64, job: &mut CallbackJob) -> Option<(u64, mpsc::UnboundedReceiver<DeskSignal>)> {
    let mut signals = shared.desks.insert(call, job.agent, None, &job.number, CALLBACK_CALLEE);
    let event = rexian_shared::Event::CallOffered {
        call,
        caller: job.number.clone(),
        callee: CALLBACK_CALLEE.into(),
        trunk: String::new(),
        record: job.record,
    };
    let _ = shared.desk_out.send(DeskOut::Event { user_id: job.agent, event });
    // Leave time to dial: the desk may ring for at most half of the attempt.
    let ring = job.until.saturating_duration_since(Instant::now()) / 2;
    let answered = tokio::select! {
        conn = answer_of(&mut signals) => conn,
        () = tokio::time::sleep(ring) => None,
        _ = &mut job.cancel => None,
    };
    match answered {
        Some(conn_id) => Some((conn_id, signals)),
        None => {
            end_for_desk(shared, call, job.agent, "not_answered");
            None
        }
    }
}

async fn answer_of(signals: &mut mpsc::UnboundedReceiver<DeskSignal>) -> Option<u64> {
    loop {
        match signals.recv().await? {
            DeskSignal::Answered { conn_id } => return Some(conn_id),
            DeskSignal::Hangup => return None,
            _ => {}
        }
    }
}

/// The desk no longer has the callback.
fn end_for_desk(shared: &Shared, call: u64, agent: i64, cause: &str) {
    shared.desks.remove(call);
    let event = rexian_shared::Event::CallEnded { call, cause: cause.into() };
    let _ = shared.desk_out.send(DeskOut::Event { user_id: agent, event });
}

/// The placed leg as a call of the agent's desk, with its call record.
async fn callback_call(shared: &Arc<Shared>, placed: OutboundLeg, job: &CallbackJob, desk: mpsc::UnboundedReceiver<DeskSignal>) -> Call {
    let OutboundLeg { leg, trunk, rtp, local, signals } = placed;
    let caller_id = shared.config.outbound_caller_id.clone();
    let start = CallStart {
        sip_call_id: String::new(),
        direction: CallDirection::Outbound,
        trunk: Some(trunk.clone()),
        caller: caller_id.clone(),
        callee: job.number.clone(),
        route: "callback".into(),
        offered_at: chrono::Utc::now(),
    };
    let cdr = shared.store.call_offered(start).await.map_err(|e| tracing::warn!(%leg, error = %e, "CDR: cannot record the callback")).ok();
    let info = CallInfo { leg, cdr, trunk, caller: caller_id, callee: job.number.clone(), sip_call_id: String::new() };
    let mut call = Call::new(info, shared.clone(), rtp, local, Vec::new(), signals);
    call.attach_desk(job.agent, desk);
    shared.metrics.calls_total.fetch_add(1, Ordering::Relaxed);
    shared.metrics.calls_active.fetch_add(1, Ordering::Relaxed);
    call
}

/// The caller hears the greeting, then caller and agent talk until either hangs up or the
/// agent hands the caller on.
async fn talk(call: &mut Call, conn_id: u64) -> Result<(), CallError> {
    let prompts = call.prompts().clone();
    match tokio::task::spawn_blocking(move || prompts.tts(GREETING)).await {
        Ok(Ok(greeting)) => call.announce_on_connect(&greeting),
        Ok(Err(e)) => tracing::warn!(error = %e, "callback: cannot render the greeting"),
        Err(e) => tracing::warn!(error = %e, "callback: cannot render the greeting"),
    }
    call.record_if_configured().await;
    let transfer = call.talk_with_desk(conn_id).await?;
    super::apps::transfer_if_asked(call, transfer).await
}
