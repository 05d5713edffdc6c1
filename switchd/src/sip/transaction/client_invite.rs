//! The INVITE client transaction (RFC 3261 §17.1.1, figure 5):
//! Calling → Proceeding → Completed → Terminated, timers A, B and D.

use std::time::{Duration, Instant};

use rsip::{Request, Response, SipMessage};

use super::{
    due, earliest, status_class, Outbox, State, Transaction, TransactionError, TransactionEvent,
    TransactionKey, Transmit,
};
use crate::sip::message::ack_for;
use crate::sip::Timers;

/// An INVITE client transaction.
///
/// Create it with [`ClientInvite::new`] (which queues the INVITE), then follow the contract
/// in the [module docs](super): drain `poll_transmit` / `poll_event` after every call and call
/// `handle_timeout` at `poll_timeout`. A 2xx is passed up as [`TransactionEvent::Final`] and
/// terminates the transaction at once (its ACK is the TU's job); a 300–699 final makes the
/// transaction send the ACK itself, and it re-sends that ACK for every retransmitted final
/// until timer D.
#[derive(Debug)]
pub struct ClientInvite {
    key: TransactionKey,
    request: Request,
    timers: Timers,
    state: State,
    ack: Option<Request>,
    timer_a: Option<Instant>,
    interval_a: Duration,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    out: Outbox,
}

impl ClientInvite {
    /// Start the transaction for `request` (an INVITE) at `now`.
    pub fn new(
        now: Instant,
        request: Request,
        timers: Timers,
        reliable: bool,
    ) -> Result<Self, TransactionError> {
        if request.method != rsip::Method::Invite {
            return Err(TransactionError::WrongMethod(request.method.to_string()));
        }
        let key = TransactionKey::client(&request)?;
        let mut out = Outbox::default();
        out.send(request.clone());
        Ok(Self {
            key,
            timer_a: (!reliable).then(|| now + timers.t1),
            interval_a: timers.t1,
            timer_b: Some(now + timers.t1_x64()),
            timer_d: None,
            ack: None,
            state: State::Calling,
            request,
            timers: Timers {
                // Timer D is zero on reliable transports.
                d: if reliable { Duration::ZERO } else { timers.d },
                ..timers
            },
            out,
        })
    }

    fn terminate(&mut self) {
        if self.state != State::Terminated {
            self.state = State::Terminated;
            self.timer_a = None;
            self.timer_b = None;
            self.timer_d = None;
            self.out.event(TransactionEvent::Terminated);
        }
    }

    fn on_response(&mut self, now: Instant, response: Response) {
        let Some(class) = status_class(&response) else {
            return;
        };
        match (self.state, class) {
            (State::Calling | State::Proceeding, 1) => {
                self.state = State::Proceeding;
                self.timer_a = None;
                self.timer_b = None;
                self.out.event(TransactionEvent::Provisional(response));
            }
            (State::Calling | State::Proceeding, 2) => {
                self.out.event(TransactionEvent::Final(response));
                self.terminate();
            }
            (State::Calling | State::Proceeding, _) => {
                match ack_for(&self.request, &response) {
                    Ok(ack) => {
                        self.out.send(ack.clone());
                        self.ack = Some(ack);
                    }
                    // Cannot happen for a request we built a key for; keep going without ACK.
                    Err(_) => self.ack = None,
                }
                self.out.event(TransactionEvent::Final(response));
                self.timer_a = None;
                self.timer_b = None;
                if self.timers.d.is_zero() {
                    self.terminate();
                } else {
                    self.state = State::Completed;
                    self.timer_d = Some(now + self.timers.d);
                }
            }
            (State::Completed, 3..) => {
                if let Some(ack) = &self.ack {
                    self.out.send(ack.clone());
                }
            }
            _ => {}
        }
    }
}

impl Transaction for ClientInvite {
    fn key(&self) -> &TransactionKey {
        &self.key
    }

    fn state(&self) -> State {
        self.state
    }

    fn handle_message(&mut self, now: Instant, msg: SipMessage) {
        if let SipMessage::Response(response) = msg {
            self.on_response(now, response);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if due(self.timer_b, now) {
            self.out.event(TransactionEvent::Timeout);
            self.terminate();
            return;
        }
        if due(self.timer_d, now) {
            self.terminate();
            return;
        }
        if let Some(deadline) = self.timer_a.filter(|d| *d <= now) {
            self.out.send(self.request.clone());
            self.interval_a = self.interval_a.saturating_mul(2);
            self.timer_a = Some(deadline + self.interval_a);
        }
    }

    fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != State::Terminated {
            self.out.event(TransactionEvent::TransportError);
            self.terminate();
        }
    }

    fn send_response(&mut self, _: Instant, _: Response) -> Result<(), TransactionError> {
        Err(TransactionError::InvalidState(self.state))
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.out.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_a, self.timer_b, self.timer_d])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sip::transaction::sim::{drain, invite, response};
    use rsip::Method;

    #[test]
    fn timer_a_doubles_until_b() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, invite(), Timers::default(), false).unwrap();
        let (sent, _) = drain(&mut tx);
        assert_eq!(sent.len(), 1);
        let mut at = Vec::new();
        while let Some(t) = tx.poll_timeout() {
            tx.handle_timeout(t);
            let (sent, events) = drain(&mut tx);
            if !sent.is_empty() {
                at.push((t - t0).as_millis());
            }
            if events.contains(&TransactionEvent::Timeout) {
                assert_eq!(t - t0, Duration::from_secs(32));
                assert_eq!(events.last(), Some(&TransactionEvent::Terminated));
            }
        }
        // 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s: doubling with no cap (§17.1.1.2).
        assert_eq!(at, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(tx.state(), State::Terminated);
    }

    #[test]
    fn busy_is_acked_and_retransmissions_absorbed_until_d() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, invite(), Timers::default(), false).unwrap();
        drain(&mut tx);
        let busy = response(486);
        tx.handle_message(t0 + Duration::from_millis(100), busy.clone().into());
        let (sent, events) = drain(&mut tx);
        assert!(matches!(&sent[..], [SipMessage::Request(r)] if r.method == Method::Ack));
        assert!(matches!(&events[..], [TransactionEvent::Final(r)] if r.status_code.code() == 486));
        assert_eq!(tx.state(), State::Completed);
        tx.handle_message(t0 + Duration::from_secs(2), busy.into());
        let (sent, events) = drain(&mut tx);
        assert_eq!(sent.len(), 1, "ACK re-sent");
        assert!(events.is_empty(), "retransmitted 486 absorbed");
        assert_eq!(
            tx.poll_timeout(),
            Some(t0 + Duration::from_millis(100) + Duration::from_secs(32))
        );
        tx.handle_timeout(t0 + Duration::from_millis(32_100));
        assert_eq!(drain(&mut tx).1, vec![TransactionEvent::Terminated]);
    }

    #[test]
    fn ringing_then_ok_terminates() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, invite(), Timers::default(), false).unwrap();
        drain(&mut tx);
        tx.handle_message(t0, response(180).into());
        assert_eq!(tx.state(), State::Proceeding);
        assert_eq!(tx.poll_timeout(), None, "A and B stop in Proceeding");
        tx.handle_message(t0, response(200).into());
        let (sent, events) = drain(&mut tx);
        assert!(sent.is_empty(), "2xx ACK is the TU's");
        assert!(matches!(
            &events[..],
            [
                TransactionEvent::Provisional(_),
                TransactionEvent::Final(_),
                TransactionEvent::Terminated
            ]
        ));
    }

    #[test]
    fn reliable_has_no_a_and_zero_d() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, invite(), Timers::default(), true).unwrap();
        drain(&mut tx);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.handle_message(t0, response(486).into());
        let (sent, events) = drain(&mut tx);
        assert_eq!(sent.len(), 1);
        assert_eq!(events.last(), Some(&TransactionEvent::Terminated));
    }

    #[test]
    fn transport_error_terminates() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(t0, invite(), Timers::default(), false).unwrap();
        tx.handle_transport_error(t0);
        let (_, events) = drain(&mut tx);
        assert_eq!(
            events,
            vec![
                TransactionEvent::TransportError,
                TransactionEvent::Terminated
            ]
        );
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn rejects_non_invite() {
        let mut r = invite();
        r.method = Method::Options;
        assert!(ClientInvite::new(Instant::now(), r, Timers::default(), false).is_err());
    }
}
