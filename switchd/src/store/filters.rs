//! Saved filters of the ticket list (常用筛选, migration 8): per user, by name, the query kept
//! as JSON of `TicketQuery` without its page.

use super::db::Db;
use super::{StoreError, StoreResult};
use chrono::NaiveDateTime;
use rexian_shared::{SavedFilter, TicketQuery};
use rusqlite::params;

/// The query as stored: `TicketQuery` without `page` (a saved filter starts on the first page).
fn query_json(query: &TicketQuery) -> StoreResult<String> {
    let mut v = serde_json::to_value(query).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if let Some(fields) = v.as_object_mut() {
        fields.remove("page");
    }
    Ok(v.to_string())
}

impl Db<'_> {
    /// `user_id`'s saved filters, by name.
    pub fn saved_filters(&self, user_id: i64) -> StoreResult<Vec<SavedFilter>> {
        let mut st = self.conn.prepare_cached("SELECT name, query, saved_at FROM saved_filters WHERE user_id = ?1 ORDER BY name")?;
        let rows = st.query_map([user_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))?;
        rows.map(|row| {
            let (name, json, saved_at) = row?;
            let query = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("saved filter {name:?}: {e}")))?;
            Ok(SavedFilter { name, query, saved_at })
        })
        .collect()
    }

    /// Saves `user_id`'s filter `name`, replacing one of the same name.
    pub fn save_filter(&self, user_id: i64, name: &str, query: &TicketQuery, at: NaiveDateTime) -> StoreResult<()> {
        self.conn.prepare_cached(
            "INSERT INTO saved_filters (user_id, name, query, saved_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, name) DO UPDATE SET query = excluded.query, saved_at = excluded.saved_at",
        )?
        .execute(params![user_id, name, query_json(query)?, at])?;
        Ok(())
    }

    /// Whether `user_id` has a filter called `name`.
    pub fn has_saved_filter(&self, user_id: i64, name: &str) -> StoreResult<bool> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM saved_filters WHERE user_id = ?1 AND name = ?2", params![user_id, name], |r| r.get(0))?;
        Ok(n > 0)
    }

    pub fn saved_filter_count(&self, user_id: i64) -> StoreResult<u64> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM saved_filters WHERE user_id = ?1", [user_id], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Deletes `user_id`'s filter `name`; false when they have none of that name.
    pub fn delete_saved_filter(&self, user_id: i64, name: &str) -> StoreResult<bool> {
        let n = self.conn.prepare_cached("DELETE FROM saved_filters WHERE user_id = ?1 AND name = ?2")?.execute(params![user_id, name])?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{NewUserRecord, Store, StoreError};
    use chrono::NaiveDate;
    use rexian_shared::*;

    fn at(d: u32) -> chrono::NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, d).and_then(|d| d.and_hms_opt(9, 0, 0)).expect("time")
    }

    /// A store with two agents; returns their ids.
    async fn store_with_two_users(dir: &std::path::Path) -> (Store, i64, i64) {
        let store = Store::open(&dir.join("t.db")).expect("open");
        let ids = store
            .write(|db| {
                let mut ids = Vec::new();
                for name in ["agent1", "agent2"] {
                    let user = NewUserRecord {
                        username: Username::parse(name).expect("name"),
                        display_name: name.into(),
                        role: Role::Agent,
                        agent_no: None,
                        department_id: None,
                        password_hash: "x".into(),
                        created_at: at(1),
                    };
                    ids.push(db.insert_user(&user)?.id);
                }
                Ok::<_, StoreError>(ids)
            })
            .await
            .expect("users");
        (store, ids[0], ids[1])
    }

    #[tokio::test]
    async fn saved_filters_are_per_user_replaced_by_name_and_kept_without_their_page() {
        let dir = tempfile::tempdir().expect("tmp");
        let (store, a, b) = store_with_two_users(dir.path()).await;
        let elevators = TicketQuery { category_code: Some("04.01".into()), channel: Some(Channel::Letter), page: 3, page_size: 50, ..TicketQuery::default() };
        let q = elevators.clone();
        store
            .write(move |db| {
                db.save_filter(a, "电梯来信", &q, at(2))?;
                db.save_filter(a, "超期", &TicketQuery { overdue_only: true, ..TicketQuery::default() }, at(2))?;
                db.save_filter(b, "电梯来信", &TicketQuery::default(), at(2))
            })
            .await
            .expect("save");
        let mine = store.read(move |db| db.saved_filters(a)).await.expect("list");
        assert_eq!(mine.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["电梯来信", "超期"]);
        assert_eq!(mine[0].query, TicketQuery { page: 0, ..elevators }, "the page is not kept");
        let raw: String = rusqlite::Connection::open(dir.path().join("t.db"))
            .and_then(|c| c.query_row("SELECT query FROM saved_filters WHERE name = '超期' AND user_id = ?1", [a], |r| r.get(0)))
            .expect("raw");
        assert!(raw.contains("\"overdue_only\":true") && !raw.contains("\"page\""), "{raw}");

        // The same name again replaces; the other user's filter of that name is untouched.
        store.write(move |db| db.save_filter(a, "电梯来信", &TicketQuery { text: Some("困人".into()), ..TicketQuery::default() }, at(3))).await.expect("replace");
        let mine = store.read(move |db| db.saved_filters(a)).await.expect("list");
        assert_eq!((mine.len(), mine[0].query.text.as_deref(), mine[0].saved_at), (2, Some("困人"), at(3)));
        let theirs = store.read(move |db| db.saved_filters(b)).await.expect("list");
        assert_eq!((theirs.len(), theirs[0].query.text.clone()), (1, None));

        // Deleting touches only the user's own.
        assert!(store.write(move |db| db.delete_saved_filter(a, "电梯来信")).await.expect("delete"));
        assert!(!store.write(move |db| db.delete_saved_filter(a, "电梯来信")).await.expect("again"), "gone already");
        assert_eq!(store.read(move |db| db.saved_filter_count(a)).await.expect("count"), 1);
        assert!(store.read(move |db| db.has_saved_filter(b, "电梯来信")).await.expect("theirs"));
    }
}
