//! switchd: the Rexian switch daemon. Layers, bottom to top (lower never imports higher):
//! `store` · `calendar` → `cases` (tickets, workflow, deadlines), `kb`, `crm` → `auth` → `desk`
//! (the QUIC server) → `daemon` (wiring, background tasks, metrics) and the admin `cli`.

pub mod auth;
pub mod calendar;
pub mod cases;
pub mod certs;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod desk;
pub mod metrics;
pub mod store;
