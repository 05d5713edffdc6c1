//! Desk-to-desk calls (SUP-3, 内部呼叫): a supervisor calls an agent, an agent calls a
//! supervisor for help. No SIP leg: one task relays the Opus frames between the two desks as
//! they come (no transcoding, no mixing — there are only two parties). Each desk knows the
//! call by its own id (two registry entries, as a B2BUA has two legs), so every existing check
//! on answering, hanging up and sending audio applies unchanged.

use std::sync::Arc;
use std::time::Duration;

use rexian_shared::audio::AudioFrame;
use rexian_shared::Event;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::desk_leg::{DeskOut, DeskSignal, INTERNAL};
use super::{EngineEvent, Shared};

/// The `trunk` of a desk-to-desk call's offer.
pub const DESK_TRUNK: &str = "desk";

/// Starts a call from desk user `from` (on connection `conn_id`, connected from the start) to
/// desk user `to`, whose desks ring for `desk_ring_secs`; returns the caller's call id.
pub fn start(shared: &Arc<Shared>, from: i64, from_name: &str, conn_id: u64, to: i64, to_name: &str) -> u64 {
    let (a, b) = (super::outbound::next_leg(shared).0, super::outbound::next_leg(shared).0);
    let a_rx = shared.desks.insert(a, from, Some(conn_id), from_name, to_name);
    let b_rx = shared.desks.insert(b, to, None, from_name, INTERNAL);
    shared.desks.mark_desk_to_desk(a);
    shared.desks.mark_desk_to_desk(b);
    let ends = Ends { shared: shared.clone(), a: Side { call: a, user_id: from, conn_id: Some(conn_id) }, b: Side { call: b, user_id: to, conn_id: None } };
    for side in [&ends.a, &ends.b] {
        let _ = shared.events.send(EngineEvent::DeskBusy { user_id: side.user_id, call: side.call });
    }
    let offer = Event::CallOffered { call: b, caller: from_name.to_owned(), callee: INTERNAL.to_owned(), trunk: DESK_TRUNK.to_owned(), record: None };
    ends.tell(&ends.b, offer);
    ends.tell(&ends.a, Event::CallRinging { call: a });
    tracing::info!(from = from_name, to = to_name, call = a, callee_call = b, "desk-to-desk call");
    let ring = Duration::from_secs(u64::from(shared.config.desk_ring_secs));
    tokio::spawn(run(ends, a_rx, b_rx, ring));
    a
}

/// One desk of the call.
struct Side {
    call: u64,
    user_id: i64,
    /// The connection talking; the callee's once it answered.
    conn_id: Option<u64>,
}

struct Ends {
    shared: Arc<Shared>,
    /// The calling desk and the called one.
    a: Side,
    b: Side,
}

impl Ends {
    fn tell(&self, side: &Side, event: Event) {
        let _ = self.shared.desk_out.send(DeskOut::Event { user_id: side.user_id, event });
    }

    /// A frame from one desk goes to the other, renumbered to the other's call id.
    fn relay(&self, to: &Side, frame: AudioFrame) {
        if let Some(conn_id) = to.conn_id {
            let frame = AudioFrame { call: to.call, ..frame };
            let _ = self.shared.desk_out.send(DeskOut::Audio { conn_id, frame });
        }
    }
}

/// How a desk-to-desk call ended: the cause each side is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Causes {
    caller: &'static str,
    callee: &'static str,
}

/// The causes when `by_caller` (or else the callee) hung up, `answered` or not yet. The
/// one who hangs up hears `switch_hangup` as after hanging up on a caller; the other
/// `caller_hangup` (对方挂机); before an answer the callee sees the offer withdrawn or the
/// caller a refusal.
fn hung_up(by_caller: bool, answered: bool) -> Causes {
    match (by_caller, answered) {
        (true, true) => Causes { caller: "switch_hangup", callee: "caller_hangup" },
        (false, true) => Causes { caller: "caller_hangup", callee: "switch_hangup" },
        (true, false) => Causes { caller: "cancelled", callee: "cancelled" },
        (false, false) => Causes { caller: "rejected", callee: "rejected" },
    }
}

/// Nobody answered in time.
const RANG_OUT: Causes = Causes { caller: "no_answer", callee: "not_answered" };

async fn run(mut ends: Ends, mut a_rx: mpsc::UnboundedReceiver<DeskSignal>, mut b_rx: mpsc::UnboundedReceiver<DeskSignal>, ring: Duration) {
    let ring_until = Instant::now() + ring;
    let causes = loop {
        let answered = ends.b.conn_id.is_some();
        tokio::select! {
            () = tokio::time::sleep_until(ring_until), if !answered => break RANG_OUT,
            signal = a_rx.recv() => match signal {
                Some(DeskSignal::Audio(frame)) => ends.relay(&ends.b, frame),
                Some(DeskSignal::Hangup | DeskSignal::Lost) | None => break hung_up(true, answered),
                Some(_) => {}
            },
            signal = b_rx.recv() => match signal {
                Some(DeskSignal::Answered { conn_id }) => {
                    ends.b.conn_id = Some(conn_id);
                    ends.tell(&ends.a, Event::CallConnected { call: ends.a.call });
                    ends.tell(&ends.b, Event::CallConnected { call: ends.b.call });
                    tracing::info!(call = ends.a.call, "desk-to-desk call answered");
                }
                Some(DeskSignal::Audio(frame)) => ends.relay(&ends.a, frame),
                Some(DeskSignal::Hangup | DeskSignal::Lost) | None => break hung_up(false, answered),
                Some(_) => {}
            },
        }
    };
    tracing::info!(call = ends.a.call, ?causes, "desk-to-desk call over");
    for (side, cause) in [(&ends.a, causes.caller), (&ends.b, causes.callee)] {
        ends.shared.desks.remove(side.call);
        ends.tell(side, Event::CallEnded { call: side.call, cause: cause.to_owned() });
        let _ = ends.shared.events.send(EngineEvent::DeskFree { user_id: side.user_id, call: side.call });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_hears_why_the_call_ended() {
        assert_eq!(hung_up(true, true), Causes { caller: "switch_hangup", callee: "caller_hangup" });
        assert_eq!(hung_up(false, true), Causes { caller: "caller_hangup", callee: "switch_hangup" });
        assert_eq!(hung_up(true, false).callee, "cancelled", "the caller gave up before an answer");
        assert_eq!(hung_up(false, false).caller, "rejected", "the callee declined");
        assert_eq!(RANG_OUT.callee, "not_answered", "as any withdrawn offer");
    }
}
