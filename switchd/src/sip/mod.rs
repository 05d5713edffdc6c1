//! SIP for switchd: messages come from [`rsip`]; the RFC 3261 §17 transaction layer is ours.
//!
//! Everything here is *sans-IO* (DESIGN.md decision 2): state machines take `(now, input)`
//! and hand back transmits, events and their next deadline. They read no clock and own no
//! socket; the thin tokio driver in [`udp`] feeds them datagrams and timeouts.
//!
//! * [`timers`] — T1/T2/T4 as a config struct.
//! * [`message`] — small helpers rsip lacks (building `100 Trying`, the non-2xx `ACK`).
//! * [`sdp`] — SDP parsing and rendering, RFC 3264 offer/answer for G.711 audio + DTMF.
//! * [`transaction`] — the four §17 transaction state machines and the
//!   [`transaction::TransactionLayer`] that owns and routes them.
//! * [`session_timer`] — session timers (RFC 4028): negotiation and the refresh/expiry timer.
//! * [`dialog`] — the UAS side of a dialog (§12–15): our responses, 2xx retransmission until
//!   ACK, in-dialog BYE/re-INVITE/INFO/CANCEL from the peer, our BYE/INFO/re-INVITE.
//! * [`digest`] — HTTP Digest (RFC 2617, RFC 8760) answers to a trunk's 401/407.
//! * [`uac`] — the UAC side of an outbound call: INVITE, CANCEL, 2xx ACK, BYE, auth retry.
//! * [`trunks`] — trunk registration (REGISTER with digest) and OPTIONS keep-alives.
//! * [`ua`] — the transaction user [`ua::Calls`]: inbound and outbound call legs.
//! * [`udp`] — the transport-aware core ([`udp::UdpCore`]) and the UDP listener on `sip_addr`:
//!   answers OPTIONS, answers malformed requests 400, rate limits each source IP address.
//! * [`stream`] — SIP over streams, sans-IO: message framing by Content-Length, keep-alive
//!   pings, idle and size bounds, connection limits.
//! * [`tcp`] — the TCP listener (same port as UDP) and the optional TLS one, one task per
//!   connection, feeding the same core; and the connections the core asks for to trunks
//!   configured with a stream transport.
//!
//! Not here yet: redirect following, opening TCP/TLS connections to anyone but a trunk's
//! proxy (other outbound requests use a stream only when the peer has one open to us) and DNS
//! (RFC 3263).

pub mod dialog;
pub mod digest;
pub mod digest_server;
pub mod message;
pub mod sdp;
pub mod session_timer;
pub mod stream;
pub mod tcp;
pub mod timers;
pub mod trunks;
pub mod transaction;
pub mod ua;
pub mod uac;
pub mod udp;

pub use timers::Timers;
