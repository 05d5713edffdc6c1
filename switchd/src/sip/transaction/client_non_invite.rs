//! The non-INVITE client transaction (RFC 3261 §17.1.2, figure 6):
//! Trying → Proceeding → Completed → Terminated, timers E, F and K.

use std::time::{Duration, Instant};

use rsip::{Request, Response, SipMessage};

use super::{
    due, earliest, status_class, Outbox, State, Transaction, TransactionError, TransactionEvent,
    TransactionKey, Transmit,
};
use crate::sip::Timers;

/// A non-INVITE client transaction (OPTIONS, BYE, REGISTER, CANCEL, …).
///
/// Create it with [`ClientNonInvite::new`] (which queues the request), then follow the
/// contract in the [module docs](super). Timer E retransmits at T1, doubling up to T2 (at T2
/// once a provisional arrived); timer F (64·T1) reports [`TransactionEvent::Timeout`]; after a
/// final response, timer K (T4, zero on reliable transports) absorbs retransmissions.
#[derive(Debug)]
pub struct ClientNonInvite {
    key: TransactionKey,
    request: Request,
    timers: Timers,
    k: Duration,
    state: State,
    timer_e: Option<Instant>,
    interval_e: Duration,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
    out: Outbox,
}

impl ClientNonInvite {
    /// Start the transaction for `request` (not INVITE, not ACK) at `now`.
    pub fn new(
        now: Instant,
        request: Request,
        timers: Timers,
        reliable: bool,
    ) -> Result<Self, TransactionError> {
        if matches!(request.method, rsip::Method::Invite | rsip::Method::Ack) {
            return Err(TransactionError::WrongMethod(request.method.to_string()));
        }
        let key = TransactionKey::client(&request)?;
        let mut out = Outbox::default();
        out.send(request.clone());
        Ok(Self {
            key,
            request,
            timers,
            k: if reliable { Duration::ZERO } else { timers.t4 },
            state: State::Trying,
            timer_e: (!reliable).then(|| now + timers.t1),
            interval_e: timers.t1,
            timer_f: Some(now + timers.t1_x64()),
            timer_k: None,
            out,
        })
    }

    fn terminate(&mut self) {
        if self.state != State::Terminated {
            self.state = State::Terminated;
            self.timer_e = None;
            self.timer_f = None;
            self.timer_k = None;
            self.out.event(TransactionEvent::Terminated);
        }
    }
}

impl Transaction for ClientNonInvite {
    fn key(&self) -> &TransactionKey {
        &self.key
    }

    fn state(&self) -> State {
        self.state
    }

    fn handle_message(&mut self, now: Instant, msg: SipMessage) {
        let SipMessage::Response(response) = msg else {
            return;
        };
        let Some(class) = status_class(&response) else {
            return;
        };
        match (self.state, class) {
            (State::Trying | State::Proceeding, 1) => {
                self.state = State::Proceeding;
                self.out.event(TransactionEvent::Provisional(response));
            }
            (State::Trying | State::Proceeding, _) => {
                self.out.event(TransactionEvent::Final(response));
                self.timer_e = None;
                self.timer_f = None;
                if self.k.is_zero() {
                    self.terminate();
                } else {
                    self.state = State::Completed;
                    self.timer_k = Some(now + self.k);
                }
            }
            _ => {} // Completed: retransmissions absorbed.
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if due(self.timer_f, now) {
            self.out.event(TransactionEvent::Timeout);
            self.terminate();
            return;
        }
        if due(self.timer_k, now) {
            self.terminate();
            return;
        }
        if let Some(deadline) = self.timer_e.filter(|d| *d <= now) {
            self.out.send(self.request.clone());
            self.interval_e = if self.state == State::Proceeding {
                self.timers.t2
            } else {
                self.interval_e.saturating_mul(2).min(self.timers.t2)
            };
            self.timer_e = Some(deadline + self.interval_e);
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
        earliest(&[self.timer_e, self.timer_f, self.timer_k])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sip::transaction::sim::{drain, options, response_to};

    fn retransmit_times(tx: &mut ClientNonInvite, t0: Instant) -> (Vec<u128>, Option<u128>) {
        let mut at = Vec::new();
        let mut timeout = None;
        while let Some(t) = tx.poll_timeout() {
            tx.handle_timeout(t);
            let (sent, events) = drain(tx);
            if !sent.is_empty() {
                at.push((t - t0).as_millis());
            }
            if events.contains(&TransactionEvent::Timeout) {
                timeout = Some((t - t0).as_millis());
            }
        }
        (at, timeout)
    }

    #[test]
    fn timer_e_caps_at_t2_and_f_fires_at_32s() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(t0, options(), Timers::default(), false).unwrap();
        drain(&mut tx);
        let (at, timeout) = retransmit_times(&mut tx, t0);
        // 0.5, 1.5, 3.5, 7.5, then every 4 s.
        assert_eq!(&at[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
        assert!(at.windows(2).skip(3).all(|w| w[1] - w[0] == 4000));
        assert_eq!(timeout, Some(32_000));
        assert_eq!(tx.state(), State::Terminated);
    }

    #[test]
    fn proceeding_retransmits_every_t2_and_k_is_t4() {
        let t0 = Instant::now();
        let req = options();
        let mut tx = ClientNonInvite::new(t0, req.clone(), Timers::default(), false).unwrap();
        drain(&mut tx);
        tx.handle_message(
            t0 + Duration::from_millis(100),
            response_to(&req, 100).into(),
        );
        tx.handle_timeout(t0 + Duration::from_millis(500));
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_millis(4500)));
        let t = t0 + Duration::from_secs(3);
        tx.handle_message(t, response_to(&req, 200).into());
        let (_, events) = drain(&mut tx);
        assert!(matches!(
            &events[..],
            [TransactionEvent::Provisional(_), TransactionEvent::Final(_)]
        ));
        assert_eq!(tx.poll_timeout(), Some(t + Duration::from_secs(5)));
        tx.handle_message(t + Duration::from_secs(1), response_to(&req, 200).into());
        assert!(drain(&mut tx).1.is_empty(), "retransmitted final absorbed");
        tx.handle_timeout(t + Duration::from_secs(5));
        assert_eq!(drain(&mut tx).1, vec![TransactionEvent::Terminated]);
    }

    #[test]
    fn reliable_no_retransmits_zero_k() {
        let t0 = Instant::now();
        let req = options();
        let mut tx = ClientNonInvite::new(t0, req.clone(), Timers::default(), true).unwrap();
        drain(&mut tx);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.handle_message(t0, response_to(&req, 200).into());
        assert_eq!(drain(&mut tx).1.last(), Some(&TransactionEvent::Terminated));
    }

    #[test]
    fn reliable_timeout_at_f() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(t0, options(), Timers::default(), true).unwrap();
        drain(&mut tx);
        let (at, timeout) = retransmit_times(&mut tx, t0);
        assert!(at.is_empty());
        assert_eq!(timeout, Some(32_000));
    }
}
