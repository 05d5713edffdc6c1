//! [`Db`]: every query of the daemon, on one connection. Methods are grouped by table.

use super::text;
use super::{StoreError, StoreResult};
use crate::cdr::{CallDirection, CallEnd, CallRecord, CallStart, EndCause, MediaQuality, Recording};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rexian_shared::*;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::cell::RefCell;
use std::path::Path;

pub struct Db<'c> {
    pub(super) conn: &'c Connection,
    /// Full-text index writes of the current batch, applied once before its commit: FTS5 would
    /// otherwise flush its pending index at every job's savepoint (see `store::run_batch`).
    pending_fts: RefCell<Vec<FtsWrite>>,
}

enum FtsWrite {
    /// A new ticket (its indexed text never changes, so there is nothing to delete first).
    Ticket { id: i64, bi: String, uni: String },
    Article { id: i64, title: (String, String), body: (String, String) },
}

/// A user row with what login needs.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub info: UserInfo,
    pub password_hash: String,
    pub failed_logins: u32,
    pub locked_until: Option<NaiveDateTime>,
}

/// Who may see what: `None` sees every ticket, `Some(dept)` only tickets dispatched to `dept`.
#[derive(Debug, Clone, Copy)]
pub struct Visibility(pub Option<i64>);

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value:?}"))
}

pub(super) fn code<T>(parse: fn(&str) -> Option<T>, what: &str, s: String) -> StoreResult<T> {
    parse(&s).ok_or_else(|| corrupt(what, &s))
}

fn opt_code<T>(parse: fn(&str) -> Option<T>, what: &str, s: Option<String>) -> StoreResult<Option<T>> {
    s.map(|s| code(parse, what, s)).transpose()
}

fn stage_code(s: DeadlineStage) -> &'static str {
    match s {
        DeadlineStage::Acceptance => "acceptance",
        DeadlineStage::Handling => "handling",
        DeadlineStage::Callback => "callback",
        DeadlineStage::LaterReply => "later_reply",
    }
}

fn stage_from(s: &str) -> Option<DeadlineStage> {
    Some(match s {
        "acceptance" => DeadlineStage::Acceptance,
        "handling" => DeadlineStage::Handling,
        "callback" => DeadlineStage::Callback,
        "later_reply" => DeadlineStage::LaterReply,
        _ => return None,
    })
}

const TICKET_COLS: &str = "t.id, t.no, t.verification_code, t.kind, t.channel, t.state, t.caller_name, t.caller_phone, \
    t.caller_enterprise, t.caller_address, t.caller_id_number, t.caller_email, t.subject_name, \
    t.subject_credit_code, t.subject_address, t.category_code, t.summary, t.content, t.anonymous, \
    t.confidential, t.consent, t.created_at, t.created_by, t.lead_department, t.stage, t.due_date, \
    t.deadline_warning, t.paused_since, t.supervised, t.extension_requested, t.extended_days, t.reply, \
    t.answer, t.satisfaction, t.reject_reason, t.reopen_count, t.merged_into";

const SUMMARY_COLS: &str =
    "t.no, t.kind, t.channel, t.state, t.summary, t.caller_phone, t.lead_department, t.created_at, t.due_date, t.supervised, t.paused_since";

impl<'c> Db<'c> {
    pub(super) fn new(conn: &'c Connection) -> Self {
        Self { conn, pending_fts: RefCell::new(Vec::new()) }
    }

    /// Every statement is prepared once per connection and reused.
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T> {
        self.conn.prepare_cached(sql)?.query_row(params, f)
    }

    pub(super) fn fts_mark(&self) -> usize {
        self.pending_fts.borrow().len()
    }

    /// Forgets the index writes of a job that failed.
    pub(super) fn fts_rollback_to(&self, mark: usize) {
        self.pending_fts.borrow_mut().truncate(mark);
    }

    /// Applies the batch's index writes (inside the batch transaction).
    pub(super) fn fts_flush(&self) -> StoreResult<()> {
        for w in self.pending_fts.borrow_mut().drain(..) {
            match w {
                FtsWrite::Ticket { id, bi, uni } => {
                    self.exec("INSERT INTO ticket_fts (rowid, bi, uni) VALUES (?1, ?2, ?3)", params![id, bi, uni])?;
                }
                FtsWrite::Article { id, title, body } => {
                    self.exec("DELETE FROM article_fts WHERE rowid = ?1", [id])?;
                    self.exec(
                        "INSERT INTO article_fts (rowid, title_bi, body_bi, title_uni, body_uni) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![id, title.0, body.0, title.1, body.1],
                    )?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn backup_to(&self, dest: &Path) -> StoreResult<()> {
        let mut target = Connection::open(dest)?;
        let backup = rusqlite::backup::Backup::new(self.conn, &mut target)?;
        backup.run_to_completion(256, std::time::Duration::from_millis(5), None)?;
        Ok(())
    }

    // ---------------------------------------------------------------- departments, categories

    pub fn insert_department(&self, name: &str, parent_id: Option<i64>, phone: Option<&str>) -> StoreResult<Department> {
        self.exec(
            "INSERT INTO departments (name, parent_id, phone) VALUES (?1, ?2, ?3)",
            params![name, parent_id, phone],
        )?;
        let id = self.conn.last_insert_rowid();
        Ok(Department { id, name: name.into(), parent_id, phone: phone.map(Into::into) })
    }

    pub fn departments(&self) -> StoreResult<Vec<Department>> {
        let mut st = self.conn.prepare_cached("SELECT id, name, parent_id, phone FROM departments ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok(Department { id: r.get(0)?, name: r.get(1)?, parent_id: r.get(2)?, phone: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn department_exists(&self, id: i64) -> StoreResult<bool> {
        Ok(self.row("SELECT 1 FROM departments WHERE id = ?1", [id], |_| Ok(())).optional()?.is_some())
    }

    pub fn insert_category(&self, c: &Category) -> StoreResult<()> {
        self.exec(
            "INSERT INTO categories (code, name, parent_code) VALUES (?1, ?2, ?3)",
            params![c.code, c.name, c.parent_code],
        )?;
        Ok(())
    }

    pub fn categories(&self) -> StoreResult<Vec<Category>> {
        let mut st = self.conn.prepare_cached("SELECT code, name, parent_code FROM categories ORDER BY code")?;
        let rows = st.query_map([], |r| Ok(Category { code: r.get(0)?, name: r.get(1)?, parent_code: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn category_exists(&self, code: &str) -> StoreResult<bool> {
        Ok(self.row("SELECT 1 FROM categories WHERE code = ?1", [code], |_| Ok(())).optional()?.is_some())
    }

    // ---------------------------------------------------------------- calendar

    pub fn calendar_days(&self) -> StoreResult<Vec<CalendarDay>> {
        let mut st = self.conn.prepare_cached("SELECT date, kind, name FROM calendar_days ORDER BY date")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, NaiveDate>(0)?, r.get::<_, String>(1)?, r.get(2)?)))?;
        rows.map(|row| {
            let (date, kind, name) = row?;
            let kind = match kind.as_str() {
                "holiday" => DayKind::Holiday,
                "workday" => DayKind::Workday,
                _ => return Err(corrupt("calendar kind", &kind)),
            };
            Ok(CalendarDay { date, kind, name })
        })
        .collect()
    }

    pub fn upsert_calendar_day(&self, day: &CalendarDay) -> StoreResult<()> {
        let kind = match day.kind {
            DayKind::Holiday => "holiday",
            DayKind::Workday => "workday",
        };
        self.exec(
            "INSERT INTO calendar_days (date, kind, name) VALUES (?1, ?2, ?3)
             ON CONFLICT (date) DO UPDATE SET kind = excluded.kind, name = excluded.name",
            params![day.date, kind, day.name],
        )?;
        Ok(())
    }

    /// Removes every entry of `year` (before an import replaces the year).
    pub fn clear_calendar_year(&self, year: i32) -> StoreResult<()> {
        let (from, to) = (format!("{year:04}-01-01"), format!("{year:04}-12-31"));
        self.exec("DELETE FROM calendar_days WHERE date BETWEEN ?1 AND ?2", params![from, to])?;
        Ok(())
    }

    // ---------------------------------------------------------------- users and sessions

    pub fn insert_user(&self, u: &NewUserRecord) -> StoreResult<UserInfo> {
        self.exec(
            "INSERT INTO users (username, display_name, role, agent_no, department_id, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                u.username.as_ref(),
                u.display_name,
                u.role.code(),
                u.agent_no.as_ref().map(AsRef::as_ref),
                u.department_id,
                u.password_hash,
                u.created_at
            ],
        )?;
        self.user_by_id(self.conn.last_insert_rowid())?.map(|r| r.info).ok_or(StoreError::Corrupt("user vanished".into()))
    }

    fn user_from_row(r: &Row<'_>) -> rusqlite::Result<RawUser> {
        Ok(RawUser {
            id: r.get(0)?,
            username: r.get(1)?,
            display_name: r.get(2)?,
            role: r.get(3)?,
            agent_no: r.get(4)?,
            department_id: r.get(5)?,
            password_hash: r.get(6)?,
            active: r.get(7)?,
            failed_logins: r.get(8)?,
            locked_until: r.get(9)?,
        })
    }

    /// `now` decides whether a lock is still in force; without it any lock counts.
    fn finish_user(raw: RawUser, now: Option<NaiveDateTime>) -> StoreResult<UserRecord> {
        let locked = match (raw.locked_until, now) {
            (Some(until), Some(now)) => until > now,
            (Some(_), None) => true,
            _ => false,
        };
        let info = UserInfo {
            id: raw.id,
            username: Username::parse(&raw.username).map_err(|_| corrupt("username", &raw.username))?,
            display_name: raw.display_name,
            role: code(Role::from_code, "role", raw.role)?,
            agent_no: raw.agent_no.map(|a| AgentNo::parse(&a).map_err(|_| corrupt("agent_no", &a))).transpose()?,
            department_id: raw.department_id,
            active: raw.active,
            locked,
        };
        Ok(UserRecord { info, password_hash: raw.password_hash, failed_logins: raw.failed_logins, locked_until: raw.locked_until })
    }

    const USER_COLS: &'static str = "id, username, display_name, role, agent_no, department_id, password_hash, active, failed_logins, locked_until";

    pub fn user_by_username(&self, username: &str, now: NaiveDateTime) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {} FROM users WHERE username = ?1", Self::USER_COLS);
        let parts = self.conn.prepare_cached(&sql)?.query_row([username], Self::user_from_row).optional()?;
        parts.map(|p| Self::finish_user(p, Some(now))).transpose()
    }

    pub fn user_by_id(&self, id: i64) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {} FROM users WHERE id = ?1", Self::USER_COLS);
        let parts = self.conn.prepare_cached(&sql)?.query_row([id], Self::user_from_row).optional()?;
        parts.map(|p| Self::finish_user(p, None)).transpose()
    }

    pub fn users(&self, now: NaiveDateTime) -> StoreResult<Vec<UserInfo>> {
        let sql = format!("SELECT {} FROM users ORDER BY id", Self::USER_COLS);
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map([], Self::user_from_row)?;
        rows.map(|p| Ok(Self::finish_user(p?, Some(now))?.info)).collect()
    }

    pub fn username_taken(&self, username: &str) -> StoreResult<bool> {
        Ok(self.row("SELECT 1 FROM users WHERE username = ?1", [username], |_| Ok(())).optional()?.is_some())
    }

    pub fn agent_no_taken(&self, agent_no: &str) -> StoreResult<bool> {
        Ok(self.row("SELECT 1 FROM users WHERE agent_no = ?1", [agent_no], |_| Ok(())).optional()?.is_some())
    }

    pub fn set_password_hash(&self, user_id: i64, hash: &str) -> StoreResult<()> {
        self.exec(
            "UPDATE users SET password_hash = ?2, failed_logins = 0, locked_until = NULL WHERE id = ?1",
            params![user_id, hash],
        )?;
        self.exec("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
        Ok(())
    }

    pub fn set_user_active(&self, user_id: i64, active: bool) -> StoreResult<()> {
        self.exec("UPDATE users SET active = ?2 WHERE id = ?1", params![user_id, active])?;
        if !active {
            self.exec("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
        }
        Ok(())
    }

    /// Counts a failed login; locks the account until `lock_until` once `max` is reached.
    pub fn record_failed_login(&self, user_id: i64, max: u32, lock_until: NaiveDateTime) -> StoreResult<bool> {
        self.exec("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ?1", [user_id])?;
        let failed: u32 = self.row("SELECT failed_logins FROM users WHERE id = ?1", [user_id], |r| r.get(0))?;
        if failed >= max {
            self.exec(
                "UPDATE users SET failed_logins = 0, locked_until = ?2 WHERE id = ?1",
                params![user_id, lock_until],
            )?;
            return Ok(true);
        }
        Ok(false)
    }

    pub fn clear_failed_logins(&self, user_id: i64) -> StoreResult<()> {
        self.exec("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1", [user_id])?;
        Ok(())
    }

    pub fn insert_session(&self, token_hash: &str, user_id: i64, now: NaiveDateTime, expires: NaiveDateTime) -> StoreResult<()> {
        self.exec(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, user_id, now, expires],
        )?;
        Ok(())
    }

    /// The session's user and expiry, if the session exists and has not expired.
    pub fn session(&self, token_hash: &str, now: NaiveDateTime) -> StoreResult<Option<(UserRecord, NaiveDateTime)>> {
        let row = self
            .conn
            .query_row(
                "SELECT user_id, expires_at FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
                params![token_hash, now],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, NaiveDateTime>(1)?)),
            )
            .optional()?;
        let Some((user_id, expires)) = row else { return Ok(None) };
        Ok(self.user_by_id(user_id)?.filter(|u| u.info.active).map(|u| (u, expires)))
    }

    pub fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.exec("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
        Ok(())
    }

    pub fn audit(&self, at: NaiveDateTime, actor: &str, action: &str, detail: &str) -> StoreResult<()> {
        self.exec(
            "INSERT INTO audit (at, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
            params![at, actor, action, detail],
        )?;
        Ok(())
    }

    // ---------------------------------------------------------------- tickets

    /// The next number for a ticket registered on `day` (sequence per day, from 1).
    pub fn next_ticket_no(&self, day: NaiveDate) -> StoreResult<TicketNo> {
        let seq: u32 = self.row(
            "INSERT INTO ticket_seq (day, last) VALUES (?1, 1)
             ON CONFLICT (day) DO UPDATE SET last = last + 1 RETURNING last",
            [day],
            |r| r.get(0),
        )?;
        Ok(TicketNo::from_parts(day, seq))
    }

    /// Inserts a new ticket (with its first history entry) and returns its row id.
    pub fn insert_ticket(&self, t: &Ticket, now: NaiveDateTime) -> StoreResult<i64> {
        self.exec(
            "INSERT INTO tickets (no, verification_code, kind, channel, state, summary, content, anonymous,
                confidential, consent, created_at, created_by, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?11)",
            params![
                t.no.as_ref(),
                t.verification_code.as_deref().unwrap_or_default(),
                t.kind.code(),
                t.channel.code(),
                t.state.code(),
                t.summary,
                t.content,
                t.anonymous,
                t.confidential,
                t.consent_to_contact,
                t.created_at,
                t.created_by
            ],
        )?;
        let id = self.conn.last_insert_rowid();
        self.update_ticket(id, t, now)?;
        for call in &t.call_ids {
            self.exec("INSERT INTO ticket_calls (ticket_id, call_id) VALUES (?1, ?2)", params![id, call])?;
        }
        self.index_ticket(id, t)?;
        self.touch_parties(t)?;
        Ok(id)
    }

    /// Writes every mutable column of `t` (the workflow changed it in memory).
    pub fn update_ticket(&self, id: i64, t: &Ticket, now: NaiveDateTime) -> StoreResult<()> {
        let c = &t.caller;
        let s = t.subject.as_ref();
        self.exec(
            "UPDATE tickets SET state = ?2, caller_name = ?3, caller_phone = ?4, caller_enterprise = ?5,
                caller_address = ?6, caller_id_number = ?7, caller_email = ?8, subject_name = ?9,
                subject_credit_code = ?10, subject_address = ?11, category_code = ?12, lead_department = ?13,
                stage = ?14, due_date = ?15, deadline_warning = ?16, paused_since = ?17, supervised = ?18,
                extension_requested = ?19, extended_days = ?20, reply = ?21, answer = ?22, satisfaction = ?23,
                reject_reason = ?24, reopen_count = ?25, merged_into = ?26, kind = ?27, updated_at = ?28,
                overdue_notified = CASE WHEN due_date IS ?15 THEN overdue_notified ELSE 0 END
             WHERE id = ?1",
            params![
                id,
                t.state.code(),
                c.name,
                c.phone.as_ref().map(AsRef::as_ref),
                c.enterprise,
                c.address,
                c.id_number,
                c.email,
                s.map(|s| &s.name),
                s.and_then(|s| s.credit_code.as_ref().map(AsRef::as_ref)),
                s.and_then(|s| s.address.as_ref()),
                t.category_code,
                t.lead_department,
                t.stage.map(stage_code),
                t.due_date,
                t.deadline_warning,
                t.paused_since,
                t.supervised,
                t.extension_requested,
                t.extended_days,
                t.reply,
                t.answer,
                t.satisfaction.map(|s| s.code()),
                t.reject_reason.map(|r| r.code()),
                t.reopen_count,
                t.merged_into.as_ref().map(AsRef::as_ref),
                t.kind.code(),
                now
            ],
        )?;
        self.exec("DELETE FROM ticket_departments WHERE ticket_id = ?1", [id])?;
        if let Some(lead) = t.lead_department {
            self.exec(
                "INSERT INTO ticket_departments (ticket_id, department_id, lead) VALUES (?1, ?2, 1)",
                params![id, lead],
            )?;
        }
        for d in t.assisting_departments.iter().filter(|d| Some(**d) != t.lead_department) {
            self.exec(
                "INSERT OR IGNORE INTO ticket_departments (ticket_id, department_id, lead) VALUES (?1, ?2, 0)",
                params![id, d],
            )?;
        }
        Ok(())
    }

    fn index_ticket(&self, id: i64, t: &Ticket) -> StoreResult<()> {
        let mut text = format!("{} {}", t.summary, t.content);
        for part in [&t.caller.name, &t.caller.enterprise, &t.caller.address].into_iter().flatten() {
            text.push(' ');
            text.push_str(part);
        }
        if let Some(s) = &t.subject {
            text.push(' ');
            text.push_str(&s.name);
        }
        let (bi, uni) = text::index_forms(&text);
        self.pending_fts.borrow_mut().push(FtsWrite::Ticket { id, bi, uni });
        Ok(())
    }

    /// Keeps the caller and enterprise registers (CRM-1) up to date.
    fn touch_parties(&self, t: &Ticket) -> StoreResult<()> {
        if let Some(phone) = &t.caller.phone {
            self.exec(
                "INSERT INTO callers (phone, name) VALUES (?1, ?2)
                 ON CONFLICT (phone) DO UPDATE SET name = COALESCE(excluded.name, name)",
                params![phone.as_ref(), if t.anonymous { None } else { t.caller.name.as_ref() }],
            )?;
        }
        if let Some(s) = &t.subject {
            if let Some(code) = &s.credit_code {
                self.exec(
                    "INSERT INTO enterprises (credit_code, name, address) VALUES (?1, ?2, ?3)
                     ON CONFLICT (credit_code) DO UPDATE SET name = excluded.name,
                        address = COALESCE(excluded.address, address)",
                    params![code.as_ref(), s.name, s.address],
                )?;
            }
        }
        Ok(())
    }

    pub fn append_history(&self, ticket_id: i64, e: &HistoryEntry) -> StoreResult<()> {
        self.exec(
            "INSERT INTO ticket_events (ticket_id, at, actor, action, from_state, to_state, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![ticket_id, e.at, e.actor, e.action, e.from_state.map(|s| s.code()), e.to_state.code(), e.note],
        )?;
        Ok(())
    }

    pub fn add_link(&self, ticket_id: i64, other: &TicketNo, relation: &str) -> StoreResult<()> {
        self.exec(
            "INSERT INTO ticket_links (ticket_id, other_no, relation) VALUES (?1, ?2, ?3)",
            params![ticket_id, other.as_ref(), relation],
        )?;
        Ok(())
    }

    /// Records that the ticket's answer cites an article; false if there is no such article.
    pub fn cite_article(&self, ticket_id: i64, article_id: i64) -> StoreResult<bool> {
        if self.row("SELECT 1 FROM articles WHERE id = ?1", [article_id], |_| Ok(())).optional()?.is_none() {
            return Ok(false);
        }
        self.exec(
            "INSERT OR IGNORE INTO ticket_articles (ticket_id, article_id) VALUES (?1, ?2)",
            params![ticket_id, article_id],
        )?;
        Ok(true)
    }

    /// Loads a whole ticket with its history, links and attachments, as seen by `vis`.
    pub fn ticket(&self, no: &TicketNo, vis: Visibility) -> StoreResult<Option<(i64, Ticket)>> {
        let sql = format!(
            "SELECT {TICKET_COLS} FROM tickets t WHERE t.no = ?1 AND (?2 IS NULL OR EXISTS
               (SELECT 1 FROM ticket_departments d WHERE d.ticket_id = t.id AND d.department_id = ?2))"
        );
        let row = self.conn.prepare_cached(&sql)?.query_row(params![no.as_ref(), vis.0], ticket_row).optional()?;
        let Some((id, mut t)) = row else { return Ok(None) };
        t.assisting_departments = self.list_i64(
            "SELECT department_id FROM ticket_departments WHERE ticket_id = ?1 AND lead = 0 ORDER BY department_id",
            id,
        )?;
        t.history = self.history(id)?;
        t.links = self.links(id)?;
        t.cited_articles = self.list_i64("SELECT article_id FROM ticket_articles WHERE ticket_id = ?1 ORDER BY article_id", id)?;
        t.attachments = self.attachments(id)?;
        t.call_ids = self.list_strings("SELECT call_id FROM ticket_calls WHERE ticket_id = ?1", id)?;
        Ok(Some((id, t)))
    }

    /// True when the ticket exists at all (to tell "not yours" from "no such ticket").
    pub fn ticket_exists(&self, no: &TicketNo) -> StoreResult<bool> {
        Ok(self.row("SELECT 1 FROM tickets WHERE no = ?1", [no.as_ref()], |_| Ok(())).optional()?.is_some())
    }

    fn list_i64(&self, sql: &str, id: i64) -> StoreResult<Vec<i64>> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn list_strings(&self, sql: &str, id: i64) -> StoreResult<Vec<String>> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn history(&self, id: i64) -> StoreResult<Vec<HistoryEntry>> {
        let mut st = self.conn.prepare_cached(
            "SELECT at, actor, action, from_state, to_state, note FROM ticket_events WHERE ticket_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, Option<String>>(3)?, r.get::<_, String>(4)?, r.get(5)?))
        })?;
        rows.map(|row| {
            let (at, actor, action, from, to, note) = row?;
            Ok(HistoryEntry {
                at,
                actor,
                action,
                from_state: opt_code(TicketState::from_code, "state", from)?,
                to_state: code(TicketState::from_code, "state", to)?,
                note,
            })
        })
        .collect()
    }

    fn links(&self, id: i64) -> StoreResult<Vec<TicketLink>> {
        let mut st = self.conn.prepare_cached("SELECT other_no, relation FROM ticket_links WHERE ticket_id = ?1 ORDER BY rowid")?;
        let rows = st.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        rows.map(|row| {
            let (no, relation) = row?;
            Ok(TicketLink { no: TicketNo::parse(&no).map_err(|_| corrupt("ticket no", &no))?, relation })
        })
        .collect()
    }

    // ---------------------------------------------------------------- attachments

    pub fn insert_attachment(&self, ticket_id: i64, a: &AttachmentInfo, path: &str, now: NaiveDateTime, by: &str) -> StoreResult<i64> {
        self.exec(
            "INSERT INTO attachments (ticket_id, name, mime, size, sha256, path, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![ticket_id, a.name, a.mime, a.size as i64, a.sha256, path, now, by],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn attachments(&self, id: i64) -> StoreResult<Vec<AttachmentInfo>> {
        let mut st = self.conn.prepare_cached("SELECT id, name, mime, size, sha256 FROM attachments WHERE ticket_id = ?1 ORDER BY id")?;
        let rows = st.query_map([id], |r| {
            Ok(AttachmentInfo { id: r.get(0)?, name: r.get(1)?, mime: r.get(2)?, size: r.get::<_, i64>(3)? as u64, sha256: r.get(4)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// An attachment's info, its file path and its ticket's number.
    pub fn attachment(&self, id: i64) -> StoreResult<Option<(AttachmentInfo, String, TicketNo)>> {
        let row = self
            .conn
            .query_row(
                "SELECT a.id, a.name, a.mime, a.size, a.sha256, a.path, t.no FROM attachments a
                 JOIN tickets t ON t.id = a.ticket_id WHERE a.id = ?1",
                [id],
                |r| {
                    let info = AttachmentInfo { id: r.get(0)?, name: r.get(1)?, mime: r.get(2)?, size: r.get::<_, i64>(3)? as u64, sha256: r.get(4)? };
                    Ok((info, r.get::<_, String>(5)?, r.get::<_, String>(6)?))
                },
            )
            .optional()?;
        row.map(|(info, path, no)| Ok((info, path, TicketNo::parse(&no).map_err(|_| corrupt("ticket no", &no))?)))
            .transpose()
    }

    // ---------------------------------------------------------------- search and lists

    /// One page of tickets matching `q`, newest first. `now` decides what is overdue and which
    /// reminders are due.
    pub fn search_tickets(&self, q: &TicketQuery, vis: Visibility, now: NaiveDateTime) -> StoreResult<TicketPage> {
        let today = now.date();
        let mut wh: Vec<String> = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut arg = |v: rusqlite::types::Value| {
            args.push(v);
            format!("?{}", args.len())
        };
        use rusqlite::types::Value as V;
        if let Some(dept) = vis.0 {
            let p = arg(V::Integer(dept));
            wh.push(format!("EXISTS (SELECT 1 FROM ticket_departments d WHERE d.ticket_id = t.id AND d.department_id = {p})"));
        }
        let in_list = |codes: Vec<&str>, col: &str, arg: &mut dyn FnMut(V) -> String| -> Option<String> {
            (!codes.is_empty()).then(|| {
                let ps: Vec<String> = codes.into_iter().map(|c| arg(V::Text(c.into()))).collect();
                format!("{col} IN ({})", ps.join(", "))
            })
        };
        wh.extend(in_list(q.kinds.iter().map(|k| k.code()).collect(), "t.kind", &mut arg));
        wh.extend(in_list(q.states.iter().map(|k| k.code()).collect(), "t.state", &mut arg));
        if let Some(ch) = q.channel {
            wh.push(format!("t.channel = {}", arg(V::Text(ch.code().into()))));
        }
        if let Some(cat) = &q.category_code {
            let (a, b) = (arg(V::Text(cat.clone())), arg(V::Text(format!("{cat}.%"))));
            wh.push(format!("(t.category_code = {a} OR t.category_code LIKE {b})"));
        }
        if let Some(dept) = q.department_id {
            let p = arg(V::Integer(dept));
            wh.push(format!("EXISTS (SELECT 1 FROM ticket_departments d2 WHERE d2.ticket_id = t.id AND d2.department_id = {p})"));
        }
        if let Some(from) = q.created_from {
            wh.push(format!("t.created_at >= {}", arg(V::Text(from.format("%Y-%m-%d").to_string()))));
        }
        if let Some(to) = q.created_to {
            let next = to.succ_opt().unwrap_or(to);
            wh.push(format!("t.created_at < {}", arg(V::Text(next.format("%Y-%m-%d").to_string()))));
        }
        if q.overdue_only {
            wh.push(format!("{} AND t.due_date < {}", OPEN_UNPAUSED, arg(V::Text(today.format("%Y-%m-%d").to_string()))));
        }
        if q.supervised_only {
            wh.push("t.supervised = 1".into());
        }
        if q.reminder_due_only {
            let p = arg(V::Text(now.format("%Y-%m-%d %H:%M:%S%.f").to_string()));
            wh.push(format!("{FINAL_EXCLUDED} AND EXISTS (SELECT 1 FROM reminders r WHERE r.ticket_id = t.id AND r.due_at <= {p})"));
        }
        if let Some(phone) = &q.caller_phone {
            wh.push(format!("t.caller_phone = {}", arg(V::Text(phone.to_string()))));
        }
        if let Some(text) = q.text.as_deref().filter(|t| !t.trim().is_empty()) {
            // A ticket number typed into the search box finds that ticket, not texts quoting it.
            if let Ok(no) = TicketNo::parse(text.trim()) {
                wh.push(format!("t.no = {}", arg(V::Text(no.to_string()))));
            } else {
                let expr = text::match_expr(text, &[""]).unwrap_or_else(|| "\"\"".into());
                wh.push(format!("t.id IN (SELECT rowid FROM ticket_fts WHERE ticket_fts MATCH {})", arg(V::Text(expr))));
            }
        }
        let where_sql = if wh.is_empty() { String::new() } else { format!("WHERE {}", wh.join(" AND ")) };
        let total: i64 = self.conn.prepare_cached(&format!("SELECT COUNT(*) FROM tickets t {where_sql}"))?.query_row(
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let page_size = match q.page_size {
            0 => 50,
            n => n.min(200),
        };
        let sql = format!(
            "SELECT {SUMMARY_COLS} FROM tickets t {where_sql} ORDER BY t.created_at DESC, t.id DESC LIMIT {page_size} OFFSET {}",
            q.page as u64 * page_size as u64
        );
        let items = self.summaries(&sql, &args, today)?;
        Ok(TicketPage { items, total: total as u64, page: q.page, page_size })
    }

    fn summaries(&self, sql: &str, args: &[rusqlite::types::Value], today: NaiveDate) -> StoreResult<Vec<TicketSummary>> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, NaiveDateTime>(7)?,
                r.get::<_, Option<NaiveDate>>(8)?,
                r.get::<_, bool>(9)?,
                r.get::<_, Option<NaiveDate>>(10)?,
            ))
        })?;
        rows.map(|row| {
            let (no, kind, channel, state, summary, caller_phone, lead, created_at, due, supervised, paused) = row?;
            let state = code(TicketState::from_code, "state", state)?;
            Ok(TicketSummary {
                no: TicketNo::parse(&no).map_err(|_| corrupt("ticket no", &no))?,
                kind: code(TicketKind::from_code, "kind", kind)?,
                channel: code(Channel::from_code, "channel", channel)?,
                state,
                summary,
                caller_phone,
                lead_department: lead,
                created_at,
                due_date: due,
                overdue: is_overdue(state, due, paused, today),
                supervised,
            })
        })
        .collect()
    }

    /// Open tickets whose deadline falls on or before `until`, soonest first.
    pub fn due_tickets(&self, until: NaiveDate, vis: Visibility, today: NaiveDate) -> StoreResult<Vec<TicketSummary>> {
        let sql = format!(
            "SELECT {SUMMARY_COLS} FROM tickets t WHERE {OPEN_UNPAUSED} AND t.due_date <= ?1 AND (?2 IS NULL OR EXISTS
               (SELECT 1 FROM ticket_departments d WHERE d.ticket_id = t.id AND d.department_id = ?2))
             ORDER BY t.due_date, t.id LIMIT 1000"
        );
        let args = [
            rusqlite::types::Value::Text(until.format("%Y-%m-%d").to_string()),
            vis.0.map_or(rusqlite::types::Value::Null, rusqlite::types::Value::Integer),
        ];
        self.summaries(&sql, &args, today)
    }

    /// Overdue tickets nobody was told about yet; marks them told.
    pub fn take_new_overdue(&self, today: NaiveDate) -> StoreResult<Vec<NewlyOverdue>> {
        // The condition matches the partial index tickets_open_due term for term.
        let sql = "UPDATE tickets SET overdue_notified = 1
             WHERE overdue_notified = 0 AND paused_since IS NULL AND due_date IS NOT NULL
               AND state NOT IN ('closed', 'merged', 'not_accepted') AND due_date < ?1
             RETURNING id, no, due_date";
        let mut st = self.conn.prepare_cached(sql)?;
        let rows: Vec<(i64, String, NaiveDate)> =
            st.query_map([today], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(id, no, due)| {
                let departments = self.list_i64("SELECT department_id FROM ticket_departments WHERE ticket_id = ?1", id)?;
                let no = TicketNo::parse(&no).map_err(|_| corrupt("ticket no", &no))?;
                Ok(NewlyOverdue { no, due_date: due, departments })
            })
            .collect()
    }

    // ---------------------------------------------------------------- knowledge base

    pub fn save_article(&self, a: &ArticleInput, now: NaiveDateTime, by: &str) -> StoreResult<Option<i64>> {
        let id = match a.id {
            Some(id) => {
                let n = self.exec(
                    "UPDATE articles SET kind = ?2, title = ?3, body = ?4, published = ?5, for_ivr = ?6,
                        updated_at = ?7, updated_by = ?8 WHERE id = ?1",
                    params![id, a.kind.code(), a.title, a.body, a.published, a.for_ivr, now, by],
                )?;
                if n == 0 {
                    return Ok(None);
                }
                id
            }
            None => {
                self.exec(
                    "INSERT INTO articles (kind, title, body, published, for_ivr, updated_at, updated_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![a.kind.code(), a.title, a.body, a.published, a.for_ivr, now, by],
                )?;
                self.conn.last_insert_rowid()
            }
        };
        let (title, body) = (text::index_forms(&a.title), text::index_forms(&a.body));
        self.pending_fts.borrow_mut().push(FtsWrite::Article { id, title, body });
        Ok(Some(id))
    }

    pub fn article(&self, id: i64) -> StoreResult<Option<Article>> {
        let row = self
            .conn
            .prepare_cached("SELECT id, kind, title, body, published, for_ivr, updated_at FROM articles WHERE id = ?1")?
            .query_row([id], |r| {
                Ok((r.get(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })
            .optional()?;
        row.map(|(id, kind, title, body, published, for_ivr, updated_at)| {
            Ok(Article { id, kind: code(ArticleKind::from_code, "article kind", kind)?, title, body, published, for_ivr, updated_at })
        })
        .transpose()
    }

    /// Full-text search; the title weighs ten times the body.
    pub fn search_articles(&self, query: &str, limit: u32, include_drafts: bool) -> StoreResult<Vec<ArticleHit>> {
        let Some(expr) = text::match_expr(query, &["title_", "body_"]) else { return Ok(Vec::new()) };
        self.articles_matching(&expr, query, limit, include_drafts)
    }

    /// Published articles sharing the most bigrams with `text` (what an agent is typing).
    pub fn suggest_articles(&self, text: &str, limit: u32) -> StoreResult<Vec<ArticleHit>> {
        let Some(expr) = text::any_expr(text, &["title_", "body_"]) else { return Ok(Vec::new()) };
        self.articles_matching(&expr, text, limit, false)
    }

    fn articles_matching(&self, expr: &str, query: &str, limit: u32, include_drafts: bool) -> StoreResult<Vec<ArticleHit>> {
        let mut st = self.conn.prepare_cached(
            "SELECT a.id, a.kind, a.title, a.body, a.published, bm25(article_fts, 10.0, 1.0, 10.0, 1.0) AS rank
             FROM article_fts JOIN articles a ON a.id = article_fts.rowid
             WHERE article_fts MATCH ?1 AND (?2 OR a.published = 1)
             ORDER BY rank LIMIT ?3",
        )?;
        let rows = st.query_map(params![expr, include_drafts, limit.clamp(1, 100)], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get(4)?, r.get::<_, f64>(5)?))
        })?;
        rows.map(|row| {
            let (id, kind, title, body, published, rank) = row?;
            Ok(ArticleHit {
                id,
                kind: code(ArticleKind::from_code, "article kind", kind)?,
                snippet: text::snippet(&body, query, 60),
                title,
                published,
                score: -rank,
            })
        })
        .collect()
    }

    /// Answered consultations sharing the most bigrams with `text`, as reference answers
    /// (TKT-3). Confidential callers' tickets are never offered.
    pub fn suggest_answers(&self, text: &str, limit: u32) -> StoreResult<Vec<EarlierAnswer>> {
        let Some(expr) = text::any_expr(text, &[""]) else { return Ok(Vec::new()) };
        let mut st = self.conn.prepare_cached(
            "SELECT t.no, t.summary, t.answer
             FROM (SELECT rowid, rank FROM ticket_fts WHERE ticket_fts MATCH ?1 ORDER BY rank LIMIT 500) f
             JOIN tickets t ON t.id = f.rowid
             WHERE t.kind = 'consultation' AND t.confidential = 0 AND COALESCE(t.answer, '') <> ''
             ORDER BY f.rank LIMIT ?2",
        )?;
        let rows = st.query_map(params![expr, limit.clamp(1, 20)], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
        rows.map(|row| {
            let (no, summary, answer) = row?;
            Ok(EarlierAnswer { no: TicketNo::parse(&no).map_err(|_| corrupt("ticket no", &no))?, summary, answer })
        })
        .collect()
    }

    // ---------------------------------------------------------------- callers (CRM-1)

    pub fn set_caller_flags(&self, phone: &PhoneNumber, vip: bool, blocked: bool) -> StoreResult<()> {
        self.exec(
            "INSERT INTO callers (phone, vip, blocked) VALUES (?1, ?2, ?3)
             ON CONFLICT (phone) DO UPDATE SET vip = excluded.vip, blocked = excluded.blocked",
            params![phone.as_ref(), vip, blocked],
        )?;
        Ok(())
    }

    pub fn caller_profile(&self, phone: &PhoneNumber, vis: Visibility, today: NaiveDate) -> StoreResult<CallerProfile> {
        let reg: Option<(Option<String>, bool, bool)> = self
            .conn
            .query_row("SELECT name, vip, blocked FROM callers WHERE phone = ?1", [phone.as_ref()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let (name, vip, blocked) = reg.unwrap_or((None, false, false));
        let (count, complaints, first, last, recent): (i64, i64, Option<NaiveDateTime>, Option<NaiveDateTime>, i64) =
            self.row(
                "SELECT COUNT(*), SUM(kind IN ('complaint', 'report')), MIN(created_at), MAX(created_at),
                        SUM(created_at >= ?2)
                 FROM tickets WHERE caller_phone = ?1",
                params![phone.as_ref(), today - chrono::Duration::days(30)],
                |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0), r.get(2)?, r.get(3)?, r.get::<_, Option<i64>>(4)?.unwrap_or(0))),
            )?;
        let q = TicketQuery { caller_phone: Some(phone.clone()), page_size: 50, ..TicketQuery::default() };
        let history = self.search_tickets(&q, vis, today.into())?.items;
        // Departments see tickets, not the hotline's telephony.
        let calls = if vis.0.is_none() { self.calls_with(phone, 10)? } else { Vec::new() };
        Ok(CallerProfile {
            phone: phone.clone(),
            name,
            first_seen: first,
            last_seen: last,
            ticket_count: count as u64,
            complaint_count: complaints as u64,
            repeat_caller: recent >= 2,
            repeat_complainant: complaints >= 2,
            vip,
            blocked,
            history,
            calls,
        })
    }

    /// The latest `limit` calls from or to `phone`, newest first.
    fn calls_with(&self, phone: &PhoneNumber, limit: u32) -> StoreResult<Vec<CallSummary>> {
        let sql = format!("SELECT {CALL_SUMMARY_COLS} FROM calls c WHERE caller = ?1 OR callee = ?1 ORDER BY offered_at DESC, id DESC LIMIT ?2");
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params![phone.as_ref(), limit], call_summary)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The calls ticket `ticket_id` is linked to, oldest first, with their recordings' length.
    /// Looked up by the calls' primary key (links are text: only all-digit ones are CDR ids).
    pub fn ticket_call_summaries(&self, ticket_id: i64) -> StoreResult<Vec<CallSummary>> {
        let sql = format!(
            "SELECT {CALL_SUMMARY_COLS} FROM calls c
             WHERE c.id IN (SELECT CAST(call_id AS INTEGER) FROM ticket_calls
                            WHERE ticket_id = ?1 AND call_id <> '' AND call_id NOT GLOB '*[^0-9]*')
             ORDER BY offered_at, id"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map([ticket_id], call_summary)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn enterprise_profile(&self, code_: &CreditCode, vis: Visibility, today: NaiveDate) -> StoreResult<EnterpriseProfile> {
        let reg: Option<(Option<String>, Option<String>)> = self
            .conn
            .query_row("SELECT name, address FROM enterprises WHERE credit_code = ?1", [code_.as_ref()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (name, address) = reg.unwrap_or((None, None));
        let sql = format!(
            "SELECT {SUMMARY_COLS} FROM tickets t WHERE t.subject_credit_code = ?1 AND (?2 IS NULL OR EXISTS
               (SELECT 1 FROM ticket_departments d WHERE d.ticket_id = t.id AND d.department_id = ?2))
             ORDER BY t.created_at DESC LIMIT 100"
        );
        let args = [
            rusqlite::types::Value::Text(code_.to_string()),
            vis.0.map_or(rusqlite::types::Value::Null, rusqlite::types::Value::Integer),
        ];
        let history = self.summaries(&sql, &args, today)?;
        let complaints_against = history.iter().filter(|t| matches!(t.kind, TicketKind::Complaint | TicketKind::Report)).count() as u64;
        Ok(EnterpriseProfile { credit_code: code_.clone(), name, address, complaints_against, history })
    }

    /// Number of tickets (for demo seeding and benchmarks).
    pub fn ticket_count(&self) -> StoreResult<u64> {
        Ok(self.row("SELECT COUNT(*) FROM tickets", [], |r| r.get::<_, i64>(0))? as u64)
    }

    pub fn user_count(&self) -> StoreResult<u64> {
        Ok(self.row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))? as u64)
    }

    // ---------------------------------------------------------------- calls (CDR)

    pub fn insert_call(&self, c: &CallStart) -> StoreResult<i64> {
        self.exec(
            "INSERT INTO calls (sip_call_id, direction, trunk, caller, callee, route, offered_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![c.sip_call_id, c.direction.code(), c.trunk, c.caller, c.callee, c.route, c.offered_at],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn call_exists(&self, id: i64) -> StoreResult<bool> {
        Ok(self.row("SELECT 1 FROM calls WHERE id = ?1", [id], |_| Ok(())).optional()?.is_some())
    }

    /// `n` rows changed, or else the call must exist (the change was a no-op by rule).
    fn changed_call(&self, n: usize, id: i64) -> StoreResult<()> {
        if n == 0 && !self.call_exists(id)? {
            return Err(no_call(id));
        }
        Ok(())
    }

    /// Sets the answer time of a call not yet answered or ended.
    pub fn set_call_answered(&self, id: i64, at: DateTime<Utc>) -> StoreResult<()> {
        let n = self.exec(
            "UPDATE calls SET answered_at = ?2 WHERE id = ?1 AND answered_at IS NULL AND ended_at IS NULL",
            params![id, at],
        )?;
        self.changed_call(n, id)
    }

    /// Sets the answer time and the party that answered (a forked call's answering target,
    /// which replaces the dialled number as callee). A call already answered or ended keeps
    /// what it has.
    pub fn set_call_answered_by(&self, id: i64, at: DateTime<Utc>, callee: &str) -> StoreResult<()> {
        let n = self.exec(
            "UPDATE calls SET answered_at = ?2, callee = ?3 WHERE id = ?1 AND answered_at IS NULL AND ended_at IS NULL",
            params![id, at, callee],
        )?;
        self.changed_call(n, id)
    }

    /// Ends a call not yet ended (the first end is kept).
    pub fn set_call_ended(&self, id: i64, e: &CallEnd) -> StoreResult<()> {
        let n = self.exec(
            "UPDATE calls SET ended_at = ?2, cause = ?3, sip_status = ?4, digits = ?5, rtp_received = ?6, rtp_lost = ?7,
                jitter_max_ms = ?8, rtt_mean_ms = ?9, rtcp_received = ?10 WHERE id = ?1 AND ended_at IS NULL",
            params![
                id,
                e.ended_at,
                e.cause.code(),
                e.sip_status,
                e.digits,
                e.quality.map(|q| q.packets_received as i64),
                e.quality.map(|q| q.packets_lost),
                e.quality.map(|q| q.jitter_max_ms),
                e.quality.and_then(|q| q.rtt_mean_ms),
                e.quality.map(|q| q.rtcp_received as i64)
            ],
        )?;
        self.changed_call(n, id)
    }

    pub fn insert_call_recording(&self, call_id: i64, path: &str, kind: &str, at: DateTime<Utc>) -> StoreResult<()> {
        if !self.call_exists(call_id)? {
            return Err(no_call(call_id));
        }
        self.exec(
            "INSERT INTO call_recordings (call_id, path, kind, started_at) VALUES (?1, ?2, ?3, ?4)",
            params![call_id, path, kind, at],
        )?;
        Ok(())
    }

    pub fn finish_call_recording(&self, call_id: i64, path: &str, seconds: f64) -> StoreResult<()> {
        let n = self.exec("UPDATE call_recordings SET seconds = ?3 WHERE call_id = ?1 AND path = ?2", params![call_id, path, seconds])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("通话{call_id}没有录音{path} / call {call_id} has no recording {path}")));
        }
        Ok(())
    }

    /// Newest first by offer time.
    pub fn calls(&self, limit: u32) -> StoreResult<Vec<CallRecord>> {
        let sql = format!("SELECT {CALL_COLS} FROM calls ORDER BY offered_at DESC, id DESC LIMIT ?1");
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map([limit], call_row)?.collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(|raw| self.finish_call(raw)).collect()
    }

    pub fn call(&self, id: i64) -> StoreResult<Option<CallRecord>> {
        let sql = format!("SELECT {CALL_COLS} FROM calls WHERE id = ?1");
        self.row(&sql, [id], call_row).optional()?.map(|raw| self.finish_call(raw)).transpose()
    }

    fn finish_call(&self, raw: RawCall) -> StoreResult<CallRecord> {
        let mut st = self
            .conn
            .prepare_cached("SELECT path, kind, started_at, seconds FROM call_recordings WHERE call_id = ?1 ORDER BY id")?;
        let recordings = st
            .query_map([raw.id], |r| Ok(Recording { path: r.get(0)?, kind: r.get(1)?, started_at: r.get(2)?, seconds: r.get(3)? }))?
            .collect::<Result<_, _>>()?;
        Ok(CallRecord {
            id: raw.id,
            sip_call_id: raw.sip_call_id,
            direction: code(CallDirection::from_code, "call direction", raw.direction)?,
            trunk: raw.trunk,
            caller: raw.caller,
            callee: raw.callee,
            route: raw.route,
            offered_at: raw.offered_at,
            answered_at: raw.answered_at,
            ended_at: raw.ended_at,
            cause: opt_code(EndCause::from_code, "call end cause", raw.cause)?,
            sip_status: raw.sip_status,
            digits: raw.digits,
            satisfaction: opt_code(Satisfaction::from_code, "satisfaction", raw.satisfaction)?,
            recordings,
            quality: raw.quality,
        })
    }

    /// The caller's rating of the call (from the satisfaction flow); false when there is no
    /// such call.
    pub fn set_call_satisfaction(&self, id: i64, satisfaction: Satisfaction) -> StoreResult<bool> {
        Ok(self.conn.execute("UPDATE calls SET satisfaction = ?2 WHERE id = ?1", params![id, satisfaction.code()])? == 1)
    }

    /// The numbers of the tickets taken on call record `call` (their `call_id`).
    pub fn tickets_of_call(&self, call: &str) -> StoreResult<Vec<(i64, TicketNo, TicketState)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT t.id, t.no, t.state FROM tickets t JOIN ticket_calls c ON c.ticket_id = t.id WHERE c.call_id = ?1 ORDER BY t.id",
        )?;
        let rows = st.query_map([call], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
        rows.map(|row| {
            let (id, no, state) = row?;
            let no = TicketNo::parse(&no).map_err(|_| corrupt("ticket number", &no))?;
            Ok((id, no, code(TicketState::from_code, "ticket state", state)?))
        })
        .collect()
    }

    /// Ends every open call at `at` (cause `switch_restart`) and returns `(call id, path)` of every
    /// recording not marked finished, in call and start order.
    pub fn close_dangling_calls(&self, at: DateTime<Utc>) -> StoreResult<Vec<(i64, String)>> {
        let mut st = self.conn.prepare_cached("SELECT call_id, path FROM call_recordings WHERE seconds IS NULL ORDER BY call_id, id")?;
        let unfinished = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        self.exec(
            "UPDATE calls SET ended_at = ?1, cause = ?2 WHERE ended_at IS NULL",
            params![at, EndCause::SwitchRestart.code()],
        )?;
        Ok(unfinished)
    }
}

fn no_call(id: i64) -> StoreError {
    StoreError::NotFound(format!("通话{id}不存在 / no call {id}"))
}

const CALL_COLS: &str =
    "id, sip_call_id, direction, trunk, caller, callee, route, offered_at, answered_at, ended_at, cause, sip_status, digits, satisfaction,
     rtp_received, rtp_lost, jitter_max_ms, rtt_mean_ms, rtcp_received";

/// A `calls` row before its codes are checked and its recordings are read.
struct RawCall {
    id: i64,
    sip_call_id: String,
    direction: String,
    trunk: Option<String>,
    caller: String,
    callee: String,
    route: String,
    offered_at: DateTime<Utc>,
    answered_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    cause: Option<String>,
    sip_status: Option<u16>,
    digits: String,
    satisfaction: Option<String>,
    quality: Option<MediaQuality>,
}

fn call_row(r: &Row<'_>) -> rusqlite::Result<RawCall> {
    Ok(RawCall {
        id: r.get(0)?,
        sip_call_id: r.get(1)?,
        direction: r.get(2)?,
        trunk: r.get(3)?,
        caller: r.get(4)?,
        callee: r.get(5)?,
        route: r.get(6)?,
        offered_at: r.get(7)?,
        answered_at: r.get(8)?,
        ended_at: r.get(9)?,
        cause: r.get(10)?,
        sip_status: r.get(11)?,
        digits: r.get(12)?,
        satisfaction: r.get(13)?,
        // Written together at the end: a received count means the rest is there too.
        quality: match r.get::<_, Option<i64>>(14)? {
            Some(received) => Some(MediaQuality {
                packets_received: u64::try_from(received).unwrap_or_default(),
                packets_lost: r.get::<_, Option<i64>>(15)?.unwrap_or_default(),
                jitter_max_ms: r.get::<_, Option<f64>>(16)?.unwrap_or_default(),
                rtt_mean_ms: r.get(17)?,
                rtcp_received: u64::try_from(r.get::<_, Option<i64>>(18)?.unwrap_or_default()).unwrap_or_default(),
            }),
            None => None,
        },
    })
}

/// Columns [`call_summary`] reads, from `calls c`: the recording is the whole-call one if any.
const CALL_SUMMARY_COLS: &str = "c.id, c.direction, c.offered_at, c.answered_at, c.ended_at, c.cause,
    (SELECT r.seconds FROM call_recordings r WHERE r.call_id = c.id ORDER BY r.kind <> 'call', r.id LIMIT 1)";

fn call_summary(r: &Row) -> rusqlite::Result<CallSummary> {
    let (answered, ended): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (r.get(3)?, r.get(4)?);
    Ok(CallSummary {
        id: r.get(0)?,
        inbound: r.get::<_, String>(1)? == "inbound",
        offered_at: r.get(2)?,
        answered: answered.is_some(),
        talk_secs: answered.zip(ended).map(|(a, e)| (e - a).num_seconds().max(0) as u32),
        cause: r.get(5)?,
        recording_secs: r.get::<_, Option<f64>>(6)?.map(|s| s.round() as u32),
    })
}
/// SQL condition: the ticket is open (not closed, merged or not accepted).
const FINAL_EXCLUDED: &str = "t.state NOT IN ('closed', 'merged', 'not_accepted')";

/// SQL condition: the ticket is open and its deadline is running.
const OPEN_UNPAUSED: &str =
    "t.state NOT IN ('closed', 'merged', 'not_accepted') AND t.due_date IS NOT NULL AND t.paused_since IS NULL";

/// A deadline is missed once its whole day has passed.
pub fn is_overdue(state: TicketState, due: Option<NaiveDate>, paused: Option<NaiveDate>, today: NaiveDate) -> bool {
    !state.is_final() && paused.is_none() && due.is_some_and(|d| d < today)
}

/// A ticket whose deadline has just been missed, with the departments to tell.
pub struct NewlyOverdue {
    pub no: TicketNo,
    pub due_date: NaiveDate,
    pub departments: Vec<i64>,
}

/// A new user as stored: the password already hashed.
pub struct NewUserRecord {
    pub username: Username,
    pub display_name: String,
    pub role: Role,
    pub agent_no: Option<AgentNo>,
    pub department_id: Option<i64>,
    pub password_hash: String,
    pub created_at: NaiveDateTime,
}

struct RawUser {
    id: i64,
    username: String,
    display_name: String,
    role: String,
    agent_no: Option<String>,
    department_id: Option<i64>,
    password_hash: String,
    active: bool,
    failed_logins: u32,
    locked_until: Option<NaiveDateTime>,
}

/// Reads column `idx` as text and converts it, reporting a stored value that does not parse as a
/// conversion error of that column.
fn col<T>(r: &Row<'_>, idx: usize, parse: impl FnOnce(&str) -> Option<T>) -> rusqlite::Result<T> {
    let s: String = r.get(idx)?;
    parse(&s).ok_or_else(|| bad_column(idx, &s))
}

fn opt_col<T>(r: &Row<'_>, idx: usize, parse: impl FnOnce(&str) -> Option<T>) -> rusqlite::Result<Option<T>> {
    let s: Option<String> = r.get(idx)?;
    s.map(|s| parse(&s).ok_or_else(|| bad_column(idx, &s))).transpose()
}

fn bad_column(idx: usize, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, format!("unexpected stored value {value:?}").into())
}

fn ticket_row(r: &Row<'_>) -> rusqlite::Result<(i64, Ticket)> {
    let phone = opt_col(r, 7, |p| PhoneNumber::parse(p).ok())?;
    let subject = match r.get::<_, Option<String>>(12)? {
        Some(name) => Some(SubjectInfo {
            name,
            credit_code: opt_col(r, 13, |c| CreditCode::parse(c).ok())?,
            address: r.get(14)?,
        }),
        None => None,
    };
    let ticket = Ticket {
        no: col(r, 1, |n| TicketNo::parse(n).ok())?,
        verification_code: r.get(2)?,
        kind: col(r, 3, TicketKind::from_code)?,
        channel: col(r, 4, Channel::from_code)?,
        state: col(r, 5, TicketState::from_code)?,
        caller_phone_display: phone.as_ref().map(ToString::to_string),
        caller: CallerInfo {
            name: r.get(6)?,
            phone,
            enterprise: r.get(8)?,
            address: r.get(9)?,
            id_number: r.get(10)?,
            email: r.get(11)?,
        },
        subject,
        category_code: r.get(15)?,
        summary: r.get(16)?,
        content: r.get(17)?,
        anonymous: r.get(18)?,
        confidential: r.get(19)?,
        consent_to_contact: r.get(20)?,
        created_at: r.get(21)?,
        created_by: r.get(22)?,
        lead_department: r.get(23)?,
        assisting_departments: Vec::new(),
        stage: opt_col(r, 24, stage_from)?,
        due_date: r.get(25)?,
        deadline_warning: r.get(26)?,
        overdue: false,
        paused_since: r.get(27)?,
        supervised: r.get(28)?,
        extension_requested: r.get(29)?,
        extended_days: r.get(30)?,
        working_days_left: None,
        reply: r.get(31)?,
        answer: r.get(32)?,
        satisfaction: opt_col(r, 33, Satisfaction::from_code)?,
        reject_reason: opt_col(r, 34, RejectReason::from_code)?,
        reopen_count: r.get(35)?,
        merged_into: opt_col(r, 36, |n| TicketNo::parse(n).ok())?,
        links: Vec::new(),
        cited_articles: Vec::new(),
        attachments: Vec::new(),
        call_ids: Vec::new(),
        history: Vec::new(),
    };
    Ok((r.get(0)?, ticket))
}
