//! The non-INVITE server transaction (RFC 3261 §17.2.2, figure 8):
//! Trying → Proceeding → Completed → Terminated, timer J.

use std::time::{Duration, Instant};

use rsip::{Method, Request, Response, SipMessage};

use super::{
    due, earliest, status_class, Outbox, State, Transaction, TransactionError, TransactionEvent,
    TransactionKey, Transmit,
};
use crate::sip::Timers;

/// A non-INVITE server transaction.
///
/// [`ServerNonInvite::new`] queues [`TransactionEvent::Request`]; the TU answers with
/// [`Transaction::send_response`]. Retransmitted requests get the last response (none while
/// Trying). After a final response timer J (64·T1, zero on reliable transports) absorbs
/// retransmissions. Follow the contract in the [module docs](super).
#[derive(Debug)]
pub struct ServerNonInvite {
    key: TransactionKey,
    j: Duration,
    state: State,
    last_response: Option<Response>,
    timer_j: Option<Instant>,
    out: Outbox,
}

impl ServerNonInvite {
    /// Start the transaction for a received request (not INVITE, not ACK) at `now`.
    pub fn new(
        _now: Instant,
        request: Request,
        timers: Timers,
        reliable: bool,
    ) -> Result<Self, TransactionError> {
        if matches!(request.method, Method::Invite | Method::Ack) {
            return Err(TransactionError::WrongMethod(request.method.to_string()));
        }
        let key = TransactionKey::server(&request)?;
        let mut out = Outbox::default();
        out.event(TransactionEvent::Request(request));
        Ok(Self {
            key,
            j: if reliable {
                Duration::ZERO
            } else {
                timers.t1_x64()
            },
            state: State::Trying,
            last_response: None,
            timer_j: None,
            out,
        })
    }

    fn terminate(&mut self) {
        if self.state != State::Terminated {
            self.state = State::Terminated;
            self.timer_j = None;
            self.out.event(TransactionEvent::Terminated);
        }
    }
}

impl Transaction for ServerNonInvite {
    fn key(&self) -> &TransactionKey {
        &self.key
    }

    fn state(&self) -> State {
        self.state
    }

    fn handle_message(&mut self, _now: Instant, msg: SipMessage) {
        if let (SipMessage::Request(_), State::Proceeding | State::Completed) = (msg, self.state) {
            if let Some(r) = &self.last_response {
                self.out.send(r.clone());
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if due(self.timer_j, now) {
            self.terminate();
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
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return Err(TransactionError::InvalidState(self.state));
        }
        self.out.send(response.clone());
        self.last_response = Some(response);
        if class == 1 {
            self.state = State::Proceeding;
        } else if self.j.is_zero() {
            self.terminate();
        } else {
            self.state = State::Completed;
            self.timer_j = Some(now + self.j);
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
        earliest(&[self.timer_j])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sip::transaction::sim::{drain, options, response_to};

    #[test]
    fn retransmits_get_last_response_and_j_is_64_t1() {
        let t0 = Instant::now();
        let req = options();
        let mut tx = ServerNonInvite::new(t0, req.clone(), Timers::default(), false).unwrap();
        assert!(matches!(
            &drain(&mut tx).1[..],
            [TransactionEvent::Request(_)]
        ));
        tx.handle_message(t0, req.clone().into());
        assert!(
            drain(&mut tx).0.is_empty(),
            "nothing to resend while Trying"
        );
        tx.send_response(t0, response_to(&req, 100)).unwrap();
        tx.handle_message(t0, req.clone().into());
        assert_eq!(drain(&mut tx).0.len(), 2);
        tx.send_response(t0, response_to(&req, 200)).unwrap();
        drain(&mut tx);
        tx.handle_message(t0 + Duration::from_secs(1), req.into());
        let (sent, _) = drain(&mut tx);
        assert!(matches!(&sent[..], [SipMessage::Response(r)] if r.status_code.code() == 200));
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert!(tx.send_response(t0, response_to(&options(), 200)).is_err());
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(drain(&mut tx).1, vec![TransactionEvent::Terminated]);
    }

    #[test]
    fn reliable_j_is_zero() {
        let t0 = Instant::now();
        let req = options();
        let mut tx = ServerNonInvite::new(t0, req.clone(), Timers::default(), true).unwrap();
        drain(&mut tx);
        tx.send_response(t0, response_to(&req, 200)).unwrap();
        assert_eq!(drain(&mut tx).1, vec![TransactionEvent::Terminated]);
    }
}
