//! The case system: tickets, their workflow and statutory deadlines (TKT-*), the knowledge base
//! (KB-1) and caller profiles (CRM-1) as services over the store.

pub mod deadline;
pub mod service;
pub mod workflow;

pub use service::{Actor, CaseError, Cases, Limits};
