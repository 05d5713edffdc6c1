//! Types shared by `switchd` and the Rexian desktops: validated domain values, the desk protocol
//! spoken over QUIC, desk audio (Opus frames in QUIC datagrams), certificate pinning, and the
//! headless desk client used by the desktops, the tests and the benchmarks.

pub mod audio;
pub mod client;
pub mod codec;
pub mod domain;
pub mod proto;
pub mod settings;
pub mod tls;

pub use domain::*;
pub use proto::*;
