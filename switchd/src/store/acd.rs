//! The ACD's tables (migration 5): agent state changes and the queue event log.

use super::db::Db;
use super::StoreResult;
use chrono::NaiveDateTime;
use rusqlite::params;

/// One agent state change as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentStateRow {
    pub user_id: i64,
    pub at: NaiveDateTime,
    pub from_state: String,
    pub to_state: String,
    pub reason: Option<String>,
    pub cause: String,
}

/// One queue event as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueEventRow {
    pub at: NaiveDateTime,
    /// The call record, when the call has one.
    pub call_id: Option<i64>,
    pub queue: String,
    /// `entered`, `offered`, `missed`, `answered`, `abandoned`, `overflowed`,
    /// `callback_requested`, `callback_failed`, `ended`, `wrap_up`.
    pub kind: String,
    pub agent_id: Option<i64>,
    /// The wait (entered → answered / abandoned / overflowed), talk (ended) or wrap-up time.
    pub wait_ms: Option<i64>,
    pub detail: String,
}

impl Db<'_> {
    pub fn insert_agent_state(&self, row: &AgentStateRow) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO agent_states (user_id, at, from_state, to_state, reason, cause) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![row.user_id, row.at, row.from_state, row.to_state, row.reason, row.cause],
        )?;
        Ok(())
    }

    pub fn insert_queue_event(&self, row: &QueueEventRow) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO queue_events (at, call_id, queue, kind, agent_id, wait_ms, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![row.at, row.call_id, row.queue, row.kind, row.agent_id, row.wait_ms, row.detail],
        )?;
        Ok(())
    }

    /// The latest `limit` state changes, newest first (of one user when given).
    pub fn agent_states(&self, user_id: Option<i64>, limit: u32) -> StoreResult<Vec<AgentStateRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT user_id, at, from_state, to_state, reason, cause FROM agent_states
             WHERE ?1 IS NULL OR user_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![user_id, limit], |r| {
            Ok(AgentStateRow { user_id: r.get(0)?, at: r.get(1)?, from_state: r.get(2)?, to_state: r.get(3)?, reason: r.get(4)?, cause: r.get(5)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest `limit` queue events, newest first.
    pub fn queue_events(&self, limit: u32) -> StoreResult<Vec<QueueEventRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT at, call_id, queue, kind, agent_id, wait_ms, detail FROM queue_events ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = st.query_map([limit], |r| {
            Ok(QueueEventRow { at: r.get(0)?, call_id: r.get(1)?, queue: r.get(2)?, kind: r.get(3)?, agent_id: r.get(4)?, wait_ms: r.get(5)?, detail: r.get(6)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
