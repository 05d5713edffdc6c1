//! The transaction layer: owns many transactions, routes incoming messages to them (§17.1.3,
//! §17.2.3) and merges their transmits, events and deadlines.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rsip::{Method, Request, Response, SipMessage};

use super::{
    ClientInvite, ClientNonInvite, Role, ServerInvite, ServerNonInvite, Transaction,
    TransactionError, TransactionEvent, TransactionKey,
};
use crate::sip::stream::Transport;
use crate::sip::Timers;

/// A message to send and where to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerTransmit {
    /// The peer: the client transaction's destination, or the source of the server
    /// transaction's request (Via `received`/`rport`/`maddr` handling of §18.2.2 is the
    /// driver's job for now).
    pub destination: SocketAddr,
    /// What to send.
    pub message: SipMessage,
}

/// What the layer tells the TU.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerEvent {
    /// A request created a new server transaction; answer it with
    /// [`TransactionLayer::send_response`] and `key`.
    NewServerTransaction {
        /// The new transaction.
        key: TransactionKey,
        /// The request.
        request: Request,
        /// Where it came from.
        source: SocketAddr,
    },
    /// An event of an existing transaction.
    Transaction {
        /// Which transaction.
        key: TransactionKey,
        /// What happened.
        event: TransactionEvent,
    },
    /// A response matching no client transaction (e.g. a retransmitted 2xx after the
    /// INVITE client transaction ended): for the TU / dialog layer (§17.1.1.2).
    StrayResponse {
        /// The response.
        response: Response,
        /// Where it came from.
        source: SocketAddr,
    },
    /// An ACK matching no INVITE server transaction: the ACK of a 2xx, for the dialog layer.
    StrayAck {
        /// The ACK.
        request: Request,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A message that could not be parsed or keyed; dropped.
    Malformed {
        /// Where it came from.
        source: SocketAddr,
        /// Why.
        error: TransactionError,
    },
}

struct Entry {
    tx: Box<dyn Transaction + Send>,
    remote: SocketAddr,
}

/// Many transactions keyed by [`TransactionKey`].
///
/// Same contract as a single transaction (see the [module docs](super)): after every
/// `handle_*`, `send_request` or `send_response`, drain [`Self::poll_transmit`] and
/// [`Self::poll_event`], then arm a timer for [`Self::poll_timeout`] (the earliest deadline of
/// all transactions) and call [`Self::handle_timeout`] when it is reached. Terminated
/// transactions are removed once their last event has been queued.
pub struct TransactionLayer {
    timers: Timers,
    transactions: HashMap<TransactionKey, Entry>,
    transmits: VecDeque<LayerTransmit>,
    events: VecDeque<LayerEvent>,
    /// Peers we have a live stream connection with, and its transport: what goes to them
    /// travels on it, reliably (the driver maps the address back to the connection).
    stream_peers: HashMap<SocketAddr, Transport>,
}

impl TransactionLayer {
    /// An empty layer using `timers` for every transaction.
    pub fn new(timers: Timers) -> Self {
        Self {
            timers,
            transactions: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stream_peers: HashMap::new(),
        }
    }

    /// `peer` is now reached over a stream connection of `transport` (`None`: the connection
    /// closed, back to UDP). Client transactions to it then run without retransmissions
    /// (§17.1.1.2, §17.1.2.2) and the TU builds Via and Contact for that transport.
    pub fn set_peer_transport(&mut self, peer: SocketAddr, transport: Option<Transport>) {
        match transport {
            Some(t) if t.is_reliable() => {
                self.stream_peers.insert(peer, t);
            }
            _ => {
                self.stream_peers.remove(&peer);
            }
        }
    }

    /// How `peer` is reached: over its live stream connection, else UDP.
    pub fn transport_to(&self, peer: SocketAddr) -> Transport {
        self.stream_peers.get(&peer).copied().unwrap_or_default()
    }

    /// How many transactions are alive.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// True when no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// Start a client transaction sending `request` to `destination`; `reliable` is forced on
    /// when `destination` is a stream peer ([`Self::set_peer_transport`]).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        destination: SocketAddr,
        reliable: bool,
    ) -> Result<TransactionKey, TransactionError> {
        let key = TransactionKey::client(&request)?;
        let reliable = reliable || self.transport_to(destination).is_reliable();
        if self.transactions.contains_key(&key) {
            return Err(TransactionError::DuplicateTransaction);
        }
        let tx: Box<dyn Transaction + Send> = if request.method == Method::Invite {
            Box::new(ClientInvite::new(now, request, self.timers, reliable)?)
        } else {
            Box::new(ClientNonInvite::new(now, request, self.timers, reliable)?)
        };
        self.insert(key.clone(), tx, destination);
        Ok(key)
    }

    /// The TU's response for the server transaction `key`.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: Response,
    ) -> Result<(), TransactionError> {
        let entry = self
            .transactions
            .get_mut(key)
            .ok_or(TransactionError::UnknownTransaction)?;
        let result = entry.tx.send_response(now, response);
        self.drain(key);
        result
    }

    /// Bytes received from `source`; parse errors become [`LayerEvent::Malformed`].
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        reliable: bool,
        bytes: &[u8],
    ) {
        match SipMessage::try_from(bytes) {
            Ok(msg) => self.handle_message(now, source, reliable, msg),
            Err(e) => self.events.push_back(LayerEvent::Malformed {
                source,
                error: TransactionError::Parse(e.to_string()),
            }),
        }
    }

    /// A parsed message received from `source` over a transport that is `reliable` or not.
    pub fn handle_message(
        &mut self,
        now: Instant,
        source: SocketAddr,
        reliable: bool,
        msg: SipMessage,
    ) {
        let key = match TransactionKey::for_message(&msg) {
            Ok(key) => key,
            Err(error) => {
                self.events
                    .push_back(LayerEvent::Malformed { source, error });
                return;
            }
        };
        if let Some(entry) = self.transactions.get_mut(&key) {
            entry.tx.handle_message(now, msg);
            self.drain(&key);
            return;
        }
        match msg {
            SipMessage::Response(response) => self
                .events
                .push_back(LayerEvent::StrayResponse { response, source }),
            SipMessage::Request(request) if request.method == Method::Ack => self
                .events
                .push_back(LayerEvent::StrayAck { request, source }),
            SipMessage::Request(request) => {
                let created: Result<Box<dyn Transaction + Send>, _> = if request.method
                    == Method::Invite
                {
                    ServerInvite::new(now, request, self.timers, reliable).map(|t| Box::new(t) as _)
                } else {
                    ServerNonInvite::new(now, request, self.timers, reliable)
                        .map(|t| Box::new(t) as _)
                };
                match created {
                    Ok(tx) => self.insert(key, tx, source),
                    Err(error) => self
                        .events
                        .push_back(LayerEvent::Malformed { source, error }),
                }
            }
        }
    }

    /// Fire every transaction timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<TransactionKey> = self
            .transactions
            .iter()
            .filter(|(_, e)| e.tx.poll_timeout().is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(entry) = self.transactions.get_mut(&key) {
                entry.tx.handle_timeout(now);
            }
            self.drain(&key);
        }
    }

    /// The driver could not send a message of transaction `key`.
    pub fn handle_transport_error(&mut self, now: Instant, key: &TransactionKey) {
        if let Some(entry) = self.transactions.get_mut(key) {
            entry.tx.handle_transport_error(now);
            self.drain(key);
        }
    }

    /// A connection to `peer` could not be opened (or broke before what was queued on it
    /// was written): every client transaction to `peer` fails with a transport error, which
    /// the TU treats as a 503 (§8.1.3.1) — a trunk's call fails over, a REGISTER retries.
    pub fn handle_transport_error_to(&mut self, now: Instant, peer: SocketAddr) {
        let failed: Vec<TransactionKey> = self
            .transactions
            .iter()
            .filter(|(k, e)| k.role == Role::Client && e.remote == peer)
            .map(|(k, _)| k.clone())
            .collect();
        for key in failed {
            self.handle_transport_error(now, &key);
        }
    }

    /// Drop transaction `key` without further events: for the TU that gave up on it. An
    /// INVITE client transaction in Proceeding runs no timer (§17.1.1.2), so one whose CANCEL
    /// never brought a final response would otherwise live for ever (§9.1 lets the UAC
    /// destroy it after 64·T1). Unknown keys are ignored.
    pub fn abandon(&mut self, key: &TransactionKey) {
        self.transactions.remove(key);
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<LayerTransmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<LayerEvent> {
        self.events.pop_front()
    }

    /// Queue `message` to `destination` outside any transaction: the TU's 2xx retransmissions
    /// and 2xx ACKs (§13.3.1.4, §13.2.2.4), which RFC 3261 keeps out of the transaction layer.
    pub fn send_outside(&mut self, destination: SocketAddr, message: SipMessage) {
        self.transmits.push_back(LayerTransmit {
            destination,
            message,
        });
    }

    /// The earliest deadline of all transactions.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.transactions
            .values()
            .filter_map(|e| e.tx.poll_timeout())
            .min()
    }

    fn insert(&mut self, key: TransactionKey, tx: Box<dyn Transaction + Send>, remote: SocketAddr) {
        self.transactions.insert(key.clone(), Entry { tx, remote });
        self.drain(&key);
    }

    /// Move a transaction's outputs into the layer's queues; drop it once terminated.
    fn drain(&mut self, key: &TransactionKey) {
        let Some(entry) = self.transactions.get_mut(key) else {
            return;
        };
        while let Some(t) = entry.tx.poll_transmit() {
            self.transmits.push_back(LayerTransmit {
                destination: entry.remote,
                message: t.message,
            });
        }
        let mut terminated = false;
        while let Some(event) = entry.tx.poll_event() {
            terminated |= event == TransactionEvent::Terminated;
            self.events.push_back(match event {
                TransactionEvent::Request(request) if key.role == Role::Server => {
                    LayerEvent::NewServerTransaction {
                        key: key.clone(),
                        request,
                        source: entry.remote,
                    }
                }
                event => LayerEvent::Transaction {
                    key: key.clone(),
                    event,
                },
            });
        }
        if terminated {
            self.transactions.remove(key);
        }
    }
}

impl std::fmt::Debug for TransactionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionLayer")
            .field("transactions", &self.transactions.len())
            .field("transmits", &self.transmits.len())
            .field("events", &self.events.len())
            .finish()
    }
}
