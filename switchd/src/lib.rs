//! switchd: the Rexian switch daemon. Layers, bottom to top (lower never imports higher):
//! `sip` (sans-IO transactions) and `media` (G.711, RTP, DTMF) — not yet driven by a socket
//! layer; `store` · `calendar` → `cases` (tickets, workflow, deadlines, knowledge base, callers)
//! → `auth` → `desk` (the QUIC server) → `daemon` (wiring, background tasks, metrics) and the
//! admin `cli`. `cdr` holds the call detail record types (which the store reads and writes) and
//! the store methods the telephony engine records calls with. `acd` is the sans-IO automatic call
//! distributor (queues, agent states, routing), not yet driven by an actor task.

pub mod acd;
pub mod auth;
pub mod calendar;
pub mod cases;
pub mod cdr;
pub mod certs;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod desk;
pub mod engine;
pub mod ivr;
pub mod media;
pub mod metrics;
pub mod sip;
pub mod store;
#[cfg(test)]
mod test_rng;
