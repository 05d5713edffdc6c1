//! Reminders (催办, TKT-5): set on a ticket for a time, fired once by the background check to
//! the people concerned, and kept on each one's due list until they dismiss it (migration 9).

use super::db::Db;
use super::{StoreError, StoreResult};
use chrono::NaiveDateTime;
use rexian_shared::{Reminder, TicketNo};
use rusqlite::{params, OptionalExtension};

/// A reminder (催办) that has come due, with the people to tell: the user who set it and the
/// ticket's departments.
pub struct DueReminder {
    pub id: i64,
    pub no: TicketNo,
    pub note: String,
    pub at: NaiveDateTime,
    pub departments: Vec<i64>,
    /// The user who set it, if still on file.
    pub set_by: Option<i64>,
}

fn ticket_no(s: String) -> StoreResult<TicketNo> {
    TicketNo::parse(&s).map_err(|_| StoreError::Corrupt(format!("ticket no {s:?}")))
}

/// Reminders one user is concerned by: those they set, and for a handler those on tickets of
/// their department.
const CONCERNED: &str = "(r.created_by = ?1 OR r.ticket_id IN (SELECT ticket_id FROM ticket_departments WHERE department_id = ?2))";

impl Db<'_> {
    pub fn insert_reminder(&self, ticket_id: i64, at: NaiveDateTime, note: &str, by: &str) -> StoreResult<()> {
        self.conn.execute(
            "INSERT INTO reminders (ticket_id, due_at, note, created_by) VALUES (?1, ?2, ?3, ?4)",
            params![ticket_id, at, note, by],
        )?;
        Ok(())
    }

    /// Reminders due by `now` that have not fired; marks them fired.
    pub fn take_due_reminders(&self, now: NaiveDateTime) -> StoreResult<Vec<DueReminder>> {
        let mut st = self.conn.prepare_cached(
            "UPDATE reminders SET fired = 1 WHERE fired = 0 AND due_at <= ?1
             RETURNING id, ticket_id, note, due_at, created_by",
        )?;
        let rows: Vec<(i64, i64, String, NaiveDateTime, String)> =
            st.query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?.collect::<Result<_, _>>()?;
        rows.into_iter().map(|(id, ticket, note, at, by)| self.due_reminder(id, ticket, note, at, &by)).collect()
    }

    fn due_reminder(&self, id: i64, ticket: i64, note: String, at: NaiveDateTime, by: &str) -> StoreResult<DueReminder> {
        let no: String = self.conn.query_row("SELECT no FROM tickets WHERE id = ?1", [ticket], |r| r.get(0))?;
        let mut st = self.conn.prepare_cached("SELECT department_id FROM ticket_departments WHERE ticket_id = ?1")?;
        let departments = st.query_map([ticket], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let set_by = self.conn.query_row("SELECT id FROM users WHERE username = ?1", [by], |r| r.get(0)).optional()?;
        Ok(DueReminder { id, no: ticket_no(no)?, note, at, departments, set_by })
    }

    /// The reminders `username` (of `department`, for handlers) has not dismissed, fired or
    /// still to come, earliest first.
    pub fn open_reminders(&self, username: &str, department: Option<i64>) -> StoreResult<Vec<Reminder>> {
        let sql = format!(
            "SELECT r.id, t.no, r.due_at, r.note, r.created_by, r.fired FROM reminders r JOIN tickets t ON t.id = r.ticket_id
             WHERE {CONCERNED} AND NOT EXISTS
                 (SELECT 1 FROM reminder_dismissals d WHERE d.reminder_id = r.id AND d.username = ?1)
             ORDER BY r.due_at, r.id LIMIT 500"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows: Vec<(i64, String, NaiveDateTime, String, String, bool)> = st
            .query_map(params![username, department], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(id, no, at, note, created_by, fired)| Ok(Reminder { id, no: ticket_no(no)?, at, note, created_by, fired }))
            .collect()
    }

    /// Takes a fired reminder off `username`'s due list (others concerned keep it); false when
    /// it is not one they are concerned by, has not fired or was dismissed already.
    pub fn dismiss_reminder(&self, id: i64, username: &str, department: Option<i64>, at: NaiveDateTime) -> StoreResult<bool> {
        let sql = format!(
            "INSERT OR IGNORE INTO reminder_dismissals (reminder_id, username, at)
             SELECT r.id, ?1, ?4 FROM reminders r WHERE r.id = ?3 AND r.fired = 1 AND {CONCERNED}"
        );
        Ok(self.conn.execute(&sql, params![username, department, id, at])? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NewUserRecord, Store};
    use super::*;
    use chrono::NaiveDate;
    use rexian_shared::*;

    fn at(d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, d).and_then(|d| d.and_hms_opt(h, 0, 0)).expect("time")
    }

    fn user(name: &str, role: Role, department_id: Option<i64>) -> NewUserRecord {
        let username = Username::parse(name).expect("name");
        NewUserRecord { username, display_name: name.into(), role, agent_no: None, department_id, password_hash: "x".into(), created_at: at(1, 9) }
    }

    /// A ticket handled by a department, a reminder on it set by agent1 and one set by agent2.
    async fn store_with_reminders(dir: &std::path::Path) -> (Store, i64, i64) {
        let store = Store::open(&dir.join("t.db")).expect("open");
        let ids = store
            .write(|db| {
                let dept = db.insert_department("质量科", None, Some("01088886666"))?.id;
                let agent1 = db.insert_user(&user("agent1", Role::Agent, None))?.id;
                db.insert_user(&user("quality", Role::Handler, Some(dept)))?;
                let mut t = Ticket::from_intake(NewTicket::phone(TicketKind::Complaint, None, "s", ""), TicketNo::from_parts(at(2, 9).date(), 1), at(2, 9), "agent1");
                t.lead_department = Some(dept);
                let id = db.insert_ticket(&t, at(2, 9))?;
                db.update_ticket(id, &t, at(2, 9))?;
                db.insert_reminder(id, at(5, 9), "请今日内答复", "agent1")?;
                db.insert_reminder(id, at(6, 9), "再次催办", "agent2")?;
                Ok::<_, StoreError>((dept, agent1))
            })
            .await
            .expect("insert");
        (store, ids.0, ids.1)
    }

    #[tokio::test]
    async fn a_reminder_concerns_who_set_it_and_the_handling_department_until_each_dismisses_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let (store, dept, agent1) = store_with_reminders(dir.path()).await;
        let fired = store.write(|db| db.take_due_reminders(at(5, 10))).await.expect("take");
        assert_eq!(fired.len(), 1);
        assert_eq!((fired[0].set_by, fired[0].departments.clone()), (Some(agent1), vec![dept]), "who is told");
        let open = |user: &'static str, d: Option<i64>| {
            let store = store.clone();
            async move { store.read(move |db| db.open_reminders(user, d)).await.expect("list") }
        };
        let mine = open("agent1", None).await;
        assert_eq!(mine.iter().map(|r| (r.note.as_str(), r.fired)).collect::<Vec<_>>(), [("请今日内答复", true)]);
        assert_eq!(open("quality", Some(dept)).await.len(), 2, "the department sees both, earliest first");
        assert!(open("agent3", None).await.is_empty(), "nobody else's list");

        let dismiss = |id: i64, user: &'static str, d: Option<i64>| {
            let store = store.clone();
            async move { store.write(move |db| db.dismiss_reminder(id, user, d, at(5, 11))).await.expect("dismiss") }
        };
        let second = open("quality", Some(dept)).await[1].id;
        assert!(!dismiss(second, "quality", Some(dept)).await, "not due yet");
        assert!(!dismiss(mine[0].id, "agent3", None).await, "not theirs");
        assert!(dismiss(mine[0].id, "agent1", None).await);
        assert!(!dismiss(mine[0].id, "agent1", None).await, "once");
        assert!(open("agent1", None).await.is_empty());
        assert_eq!(open("quality", Some(dept)).await.len(), 2, "the department still has it");
    }
}
