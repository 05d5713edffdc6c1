//! The INVITE server transaction (RFC 3261 §17.2.1, figure 7):
//! Proceeding → Completed → Confirmed → Terminated, timers G, H and I.

use std::time::{Duration, Instant};

use rsip::{Method, Request, Response, SipMessage, StatusCode};

use super::{
    due, earliest, status_class, Outbox, State, Transaction, TransactionError, TransactionEvent,
    TransactionKey, Transmit,
};
use crate::sip::message::response_for;
use crate::sip::Timers;

/// An INVITE server transaction.
///
/// [`ServerInvite::new`] queues [`TransactionEvent::Request`] for the TU; the TU answers with
/// [`Transaction::send_response`]. If it has not answered within [`Timers::trying`] (200 ms)
/// the transaction sends `100 Trying` itself. A retransmitted INVITE re-sends the last
/// response. A 2xx terminates the transaction (the TU retransmits 2xx); a 300–699 is
/// retransmitted by timer G until the ACK (→ Confirmed, timer I) or timer H
/// ([`TransactionEvent::Timeout`]). Follow the contract in the [module docs](super).
#[derive(Debug)]
pub struct ServerInvite {
    key: TransactionKey,
    request: Request,
    timers: Timers,
    reliable: bool,
    state: State,
    last_response: Option<Response>,
    timer_trying: Option<Instant>,
    timer_g: Option<Instant>,
    interval_g: Duration,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    out: Outbox,
}

impl ServerInvite {
    /// Start the transaction for a received INVITE at `now`.
    pub fn new(
        now: Instant,
        request: Request,
        timers: Timers,
        reliable: bool,
    ) -> Result<Self, TransactionError> {
        if request.method != Method::Invite {
            return Err(TransactionError::WrongMethod(request.method.to_string()));
        }
        let key = TransactionKey::server(&request)?;
        let mut out = Outbox::default();
        out.event(TransactionEvent::Request(request.clone()));
        Ok(Self {
            key,
            request,
            timers,
            reliable,
            state: State::Proceeding,
            last_response: None,
            timer_trying: Some(now + timers.trying),
            timer_g: None,
            interval_g: timers.t1,
            timer_h: None,
            timer_i: None,
            out,
        })
    }

    fn terminate(&mut self) {
        if self.state != State::Terminated {
            self.state = State::Terminated;
            self.timer_trying = None;
            self.timer_g = None;
            self.timer_h = None;
            self.timer_i = None;
            self.out.event(TransactionEvent::Terminated);
        }
    }

    fn resend_last(&mut self) {
        if let Some(r) = &self.last_response {
            self.out.send(r.clone());
        }
    }
}

impl Transaction for ServerInvite {
    fn key(&self) -> &TransactionKey {
        &self.key
    }

    fn state(&self) -> State {
        self.state
    }

    fn handle_message(&mut self, now: Instant, msg: SipMessage) {
        let SipMessage::Request(request) = msg else {
            return;
        };
        match (self.state, request.method) {
            (State::Proceeding | State::Completed, Method::Invite) => self.resend_last(),
            (State::Completed, Method::Ack) => {
                self.timer_g = None;
                self.timer_h = None;
                if self.reliable {
                    self.terminate();
                } else {
                    self.state = State::Confirmed;
                    self.timer_i = Some(now + self.timers.t4);
                }
            }
            _ => {} // Confirmed: ACKs and INVITEs absorbed.
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if due(self.timer_h, now) {
            self.out.event(TransactionEvent::Timeout);
            self.terminate();
            return;
        }
        if due(self.timer_i, now) {
            self.terminate();
            return;
        }
        if due(self.timer_trying, now) {
            self.timer_trying = None;
            let trying = response_for(&self.request, StatusCode::Trying);
            self.out.send(trying.clone());
            self.last_response = Some(trying);
        }
        if let Some(deadline) = self.timer_g.filter(|d| *d <= now) {
            self.resend_last();
            self.interval_g = self.interval_g.saturating_mul(2).min(self.timers.t2);
            self.timer_g = Some(deadline + self.interval_g);
        }
    }

    fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != State::Terminated {
            self.out.event(TransactionEvent::TransportError);
            self.terminate();
        }
    }

    fn send_response(&mut self, now: Instant, response: Response) -> Result<(), TransactionError> {
        let code = response.status_code.code();
        let class = status_class(&response).ok_or(TransactionError::BadStatus(code))?;
        if self.state != State::Proceeding {
            return Err(TransactionError::InvalidState(self.state));
        }
        self.timer_trying = None;
        self.out.send(response.clone());
        match class {
            1 => self.last_response = Some(response),
            2 => self.terminate(),
            _ => {
                self.last_response = Some(response);
                self.state = State::Completed;
                self.timer_g = (!self.reliable).then(|| now + self.timers.t1);
                self.timer_h = Some(now + self.timers.t1_x64());
            }
        }
        Ok(())
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.out.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_trying, self.timer_g, self.timer_h, self.timer_i])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sip::message::ack_for;
    use crate::sip::transaction::sim::{drain, invite, response};

    fn started(t0: Instant, reliable: bool) -> ServerInvite {
        let mut tx = ServerInvite::new(t0, invite(), Timers::default(), reliable).unwrap();
        let (_, events) = drain(&mut tx);
        assert!(matches!(&events[..], [TransactionEvent::Request(_)]));
        tx
    }

    #[test]
    fn sends_100_trying_after_200ms() {
        let t0 = Instant::now();
        let mut tx = started(t0, false);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_millis(200)));
        tx.handle_timeout(t0 + Duration::from_millis(200));
        let (sent, _) = drain(&mut tx);
        assert!(matches!(&sent[..], [SipMessage::Response(r)] if r.status_code.code() == 100));
        // A retransmitted INVITE gets the 100 again.
        tx.handle_message(t0 + Duration::from_millis(500), invite().into());
        assert_eq!(drain(&mut tx).0.len(), 1);
    }

    #[test]
    fn quick_answer_suppresses_trying() {
        let t0 = Instant::now();
        let mut tx = started(t0, false);
        tx.send_response(t0 + Duration::from_millis(50), response(180))
            .unwrap();
        assert_eq!(drain(&mut tx).0.len(), 1);
        assert_eq!(tx.poll_timeout(), None);
        tx.handle_message(t0 + Duration::from_millis(500), invite().into());
        let (sent, _) = drain(&mut tx);
        assert!(matches!(&sent[..], [SipMessage::Response(r)] if r.status_code.code() == 180));
        tx.send_response(t0, response(200)).unwrap();
        assert_eq!(drain(&mut tx).1, vec![TransactionEvent::Terminated]);
        assert!(tx.send_response(t0, response(200)).is_err());
    }

    #[test]
    fn timer_g_until_ack_then_i() {
        let t0 = Instant::now();
        let mut tx = started(t0, false);
        tx.send_response(t0, response(486)).unwrap();
        drain(&mut tx);
        let mut at = Vec::new();
        for _ in 0..5 {
            let t = tx.poll_timeout().unwrap();
            tx.handle_timeout(t);
            assert_eq!(drain(&mut tx).0.len(), 1);
            at.push((t - t0).as_millis());
        }
        assert_eq!(at, vec![500, 1500, 3500, 7500, 11500]);
        let ack = ack_for(&invite(), &response(486)).unwrap();
        let t = t0 + Duration::from_secs(12);
        tx.handle_message(t, ack.clone().into());
        assert_eq!(tx.state(), State::Confirmed);
        assert_eq!(tx.poll_timeout(), Some(t + Duration::from_secs(5)));
        tx.handle_message(t, ack.into());
        assert!(drain(&mut tx).0.is_empty(), "ACK retransmission absorbed");
        tx.handle_timeout(t + Duration::from_secs(5));
        assert_eq!(drain(&mut tx).1, vec![TransactionEvent::Terminated]);
    }

    #[test]
    fn timer_h_without_ack() {
        let t0 = Instant::now();
        let mut tx = started(t0, false);
        tx.send_response(t0, response(603)).unwrap();
        drain(&mut tx);
        let mut last = t0;
        while let Some(t) = tx.poll_timeout() {
            tx.handle_timeout(t);
            let (_, events) = drain(&mut tx);
            last = t;
            if !events.is_empty() {
                assert_eq!(
                    events,
                    vec![TransactionEvent::Timeout, TransactionEvent::Terminated]
                );
            }
        }
        assert_eq!(last - t0, Duration::from_secs(32));
    }

    #[test]
    fn reliable_no_g_and_ack_terminates() {
        let t0 = Instant::now();
        let mut tx = started(t0, true);
        tx.send_response(t0, response(486)).unwrap();
        drain(&mut tx);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.handle_message(t0, ack_for(&invite(), &response(486)).unwrap().into());
        assert_eq!(drain(&mut tx).1, vec![TransactionEvent::Terminated]);
    }

    #[test]
    fn bad_status_is_an_error_not_a_panic() {
        let t0 = Instant::now();
        let mut tx = started(t0, false);
        let mut r = response(200);
        r.status_code = StatusCode::from(999);
        assert_eq!(
            tx.send_response(t0, r),
            Err(TransactionError::BadStatus(999))
        );
    }
}
