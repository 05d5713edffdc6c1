//! The IVR (DESIGN.md decision 3): the 12365 automatic service as an application on the
//! engine's call primitives. Flows are data ([`flow`]), walked by a sans-IO interpreter
//! ([`interp`], with the data-driven consultation and survey menus in [`consult`]); the
//! [`runner`] drives the interpreter on a live [`crate::engine::call::Call`] and carries its
//! commands out against the case system; [`records`] keeps flows, surveys, callback requests
//! and each call's IVR trail in the store.

pub mod consult;
pub mod flow;
pub mod interp;

#[cfg(test)]
mod interp_tests;
pub mod records;
pub mod runner;
pub mod speech;
pub mod waiting;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

/// The `[ivr]` section of the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IvrConfig {
    /// The flow calls to the hotline number start in.
    pub entry_flow: String,
    /// Rehearsal only: business hours and holidays are judged as if every call came at this
    /// local time (`"2026-12-01T22:00:00"`), to try the night flow by day. Unset in production.
    pub simulate_time: Option<NaiveDateTime>,
}

impl Default for IvrConfig {
    fn default() -> Self {
        Self { entry_flow: records::ENTRY_FLOW.into(), simulate_time: None }
    }
}
