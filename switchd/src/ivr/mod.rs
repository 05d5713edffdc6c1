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
