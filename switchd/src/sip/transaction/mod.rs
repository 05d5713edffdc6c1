//! RFC 3261 §17 transactions, sans-IO.
//!
//! Four state machines — [`ClientInvite`], [`ClientNonInvite`], [`ServerInvite`],
//! [`ServerNonInvite`] — share the [`Transaction`] trait, and a [`TransactionLayer`] owns many
//! of them keyed by [`TransactionKey`].
//!
//! # Usage contract (all transactions and the layer)
//!
//! * Inputs are `handle_*` calls, each given `now`. Nothing here reads a clock.
//! * After **every** `handle_*` call (and after creating a transaction or sending a response
//!   through it) the caller drains `poll_transmit()` until `None`, then `poll_event()` until
//!   `None`, then asks `poll_timeout()` for the next deadline and calls `handle_timeout(t)`
//!   once the clock reaches it. Calling `handle_timeout` early is harmless; late only delays.
//! * A transaction reports [`TransactionEvent::Terminated`] exactly once, last; after that it
//!   ignores all input and `poll_timeout()` is `None`.
//! * No input, however malformed, makes these types panic.
//!
//! Timers follow §17 for unreliable transports; with `reliable = true` timers A, E and G are
//! off and D, I, J and K are zero (the transaction terminates at once instead of waiting).

mod client_invite;
mod client_non_invite;
mod key;
mod layer;
mod server_invite;
mod server_non_invite;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod sim;

pub use client_invite::ClientInvite;
pub use client_non_invite::ClientNonInvite;
pub use key::{Role, TransactionKey};
pub use layer::{LayerEvent, LayerTransmit, TransactionLayer};
pub use server_invite::ServerInvite;
pub use server_non_invite::ServerNonInvite;

use std::time::Instant;

use rsip::{Request, Response, SipMessage};

/// One message a transaction wants sent. Where to is known to whoever owns the transaction
/// (the [`TransactionLayer`] adds the address in [`LayerTransmit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The message to serialise and send.
    pub message: SipMessage,
}

/// What a transaction tells its transaction user (TU).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionEvent {
    /// A 1xx response reached a client transaction.
    Provisional(Response),
    /// A final (2xx–6xx) response reached a client transaction; retransmissions are absorbed.
    Final(Response),
    /// A new request for a server transaction (reported once, on creation).
    Request(Request),
    /// Timer B, F or H fired: no final response (client) or no ACK (server INVITE).
    Timeout,
    /// The driver reported that a message of this transaction could not be sent.
    TransportError,
    /// The transaction is over; this is always the last event.
    Terminated,
}

/// The states of §17 (not every machine uses every state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Client INVITE, request sent, nothing heard.
    Calling,
    /// Non-INVITE, request sent (client) or received (server), no provisional yet.
    Trying,
    /// A provisional response was received (client) or sent (server).
    Proceeding,
    /// A final response was received (client) or sent (server); absorbing retransmissions.
    Completed,
    /// Server INVITE, the ACK for a non-2xx final arrived.
    Confirmed,
    /// Over.
    Terminated,
}

/// Why a transaction could not be built or driven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// A header the transaction layer needs is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header is present but rsip could not parse it.
    #[error("malformed header: {0}")]
    BadHeader(String),
    /// The top Via branch lacks the `z9hG4bK` magic cookie (an RFC 2543 peer); the §17.2.3
    /// backwards-compatible matching is not implemented.
    #[error("Via branch without the z9hG4bK magic cookie")]
    NoMagicCookie,
    /// The message's method does not fit this transaction type (e.g. ACK as a client request).
    #[error("method {0} cannot start this kind of transaction")]
    WrongMethod(String),
    /// The TU tried something the current state does not allow (e.g. a second final response).
    #[error("not allowed in state {0:?}")]
    InvalidState(State),
    /// A response status outside 100–699.
    #[error("status code {0} out of range")]
    BadStatus(u16),
    /// No transaction with this key exists (in the layer).
    #[error("no such transaction")]
    UnknownTransaction,
    /// A transaction with this key already exists (in the layer).
    #[error("transaction already exists")]
    DuplicateTransaction,
    /// The bytes could not be parsed as a SIP message.
    #[error("unparseable SIP message: {0}")]
    Parse(String),
}

/// The common sans-IO surface of the four transaction machines (see the module docs for the
/// calling contract).
pub trait Transaction {
    /// The key this transaction is filed under.
    fn key(&self) -> &TransactionKey;
    /// The current §17 state.
    fn state(&self) -> State;
    /// A message the layer matched to this transaction (responses for client transactions,
    /// retransmitted requests and ACKs for server ones). Anything else is ignored.
    fn handle_message(&mut self, now: Instant, msg: SipMessage);
    /// Fire every timer whose deadline is `<= now`.
    fn handle_timeout(&mut self, now: Instant);
    /// The driver failed to send one of this transaction's messages (§17.1.4, §17.2.4).
    fn handle_transport_error(&mut self, now: Instant);
    /// Server transactions: the TU's response. Client transactions return
    /// [`TransactionError::InvalidState`].
    fn send_response(&mut self, now: Instant, response: Response) -> Result<(), TransactionError>;
    /// The next message to send, if any.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// The next event for the TU, if any.
    fn poll_event(&mut self) -> Option<TransactionEvent>;
    /// The earliest pending timer, or `None` when no timer runs.
    fn poll_timeout(&self) -> Option<Instant>;
}

/// Earliest of a set of optional deadlines.
fn earliest(deadlines: &[Option<Instant>]) -> Option<Instant> {
    deadlines.iter().flatten().min().copied()
}

/// True when `deadline` is set and reached.
fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}

/// A response's status class check; `None` when outside 100–699.
fn status_class(response: &Response) -> Option<u16> {
    let code = response.status_code.code();
    (100..700).contains(&code).then_some(code / 100)
}

/// Shared output queues of every transaction.
#[derive(Debug, Default)]
struct Outbox {
    transmits: std::collections::VecDeque<Transmit>,
    events: std::collections::VecDeque<TransactionEvent>,
}

impl Outbox {
    fn send(&mut self, message: impl Into<SipMessage>) {
        self.transmits.push_back(Transmit {
            message: message.into(),
        });
    }
    fn event(&mut self, event: TransactionEvent) {
        self.events.push_back(event);
    }
}
