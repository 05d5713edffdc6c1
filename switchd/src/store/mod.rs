//! The store: SQLite (bundled, WAL) behind one interface, [`Db`]; no SQL lives outside this module.
//!
//! Threads: one writer thread and a few reader threads, each owning its connection; the async
//! runtime never touches SQLite. Writes are group-committed: the writer takes every write job
//! that is waiting, runs each inside its own savepoint of one transaction, commits once (with
//! `synchronous = FULL`, so a commit is on disk), and only then answers each job. So a reply to a
//! desktop always follows the fsync that made its ticket durable, and many concurrent creations
//! share one fsync.

mod db;
mod acd;
mod filters;
mod ivr;
mod reminders;
pub mod text;
mod schema;

pub use acd::{AgentStateRow, QueueEventRow};
pub use ivr::TrailRow;
pub use reminders::DueReminder;
pub use db::*;

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file under the data directory could not be read or written.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// The store's threads have stopped.
    #[error("the store has shut down")]
    Closed,
    /// A stored value could not be understood.
    #[error("corrupt value in the store: {0}")]
    Corrupt(String),
    /// A record the write refers to does not exist (message in Chinese and English).
    #[error("{0}")]
    NotFound(String),
    /// The database was written by a newer switchd.
    #[error("database schema version {found} is newer than this switchd supports ({supported})")]
    TooNew { found: i64, supported: i64 },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A write job runs in the batch transaction and returns whether it failed (so its savepoint is
/// rolled back) and what to do once the batch is committed or failed.
type WriteJob = Box<dyn FnOnce(&Db) -> (bool, Completion) + Send>;
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type ReadJob = Box<dyn FnOnce(&Db) + Send>;

/// Cheap to clone; every clone talks to the same threads.
#[derive(Clone)]
pub struct Store {
    writes: mpsc::Sender<WriteJob>,
    reads: mpsc::Sender<ReadJob>,
    path: Arc<PathBuf>,
}

const READERS: usize = 3;
/// The most write jobs one transaction takes; bounds the latency a batch adds.
const MAX_BATCH: usize = 512;

impl Store {
    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let writer = open_connection(path, false)?;
        migrate(&writer)?;
        let (wtx, wrx) = mpsc::channel::<WriteJob>();
        std::thread::Builder::new().name("store-writer".into()).spawn(move || write_loop(writer, wrx))?;
        let (rtx, rrx) = mpsc::channel::<ReadJob>();
        let rrx = Arc::new(Mutex::new(rrx));
        for i in 0..READERS {
            let conn = open_connection(path, true)?;
            let rrx = rrx.clone();
            std::thread::Builder::new().name(format!("store-reader-{i}")).spawn(move || read_loop(conn, rrx))?;
        }
        Ok(Self { writes: wtx, reads: rtx, path: Arc::new(path.to_owned()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in the write transaction; resolves after the commit reached the disk.
    /// An `Err` from `f` rolls back everything `f` wrote; other jobs in the batch are unaffected.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: WriteJob = Box::new(move |db| {
            let result = f(db);
            let failed = result.is_err();
            let done: Completion = Box::new(move |commit_err: Option<&StoreError>| {
                let result = match (result, commit_err) {
                    (Ok(_), Some(e)) => Err(StoreError::Corrupt(format!("commit failed: {e}")).into()),
                    (r, _) => r,
                };
                let _ = tx.send(result);
            });
            (failed, done)
        });
        self.writes.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Runs `f` on a reader connection (a consistent snapshot).
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |db| {
            let _ = tx.send(f(db));
        });
        self.reads.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Writes a consistent copy of the live database to `dest` (SQLite's online backup API).
    pub async fn backup_to(&self, dest: PathBuf) -> StoreResult<()> {
        self.read(move |db| db.backup_to(&dest)).await
    }
}

fn open_connection(path: &Path, read_only: bool) -> StoreResult<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    // FULL: every commit is fsynced, so an acknowledged ticket survives a power cut too.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(128);
    // 64 MiB of page cache per connection keeps the hot index pages in memory.
    conn.pragma_update(None, "cache_size", -65536)?;
    // Without the planner stability guarantee SQLite re-prepares statements whose plan could
    // depend on a bound value (STAT4), every time they run.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = schema::MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StoreError::TooNew { found: version, supported });
    }
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database migrated");
    }
    Ok(())
}

fn write_loop(conn: Connection, jobs: mpsc::Receiver<WriteJob>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, batch);
    }
}

/// One transaction for the whole batch; a failing job rolls back only its own savepoint.
fn run_batch(conn: &Connection, batch: Vec<WriteJob>) {
    let begin = conn.execute_batch("BEGIN IMMEDIATE");
    let db = Db::new(conn);
    let mut completions = Vec::with_capacity(batch.len());
    for job in batch {
        if let Err(e) = exec_cached(conn, "SAVEPOINT job") {
            tracing::error!(error = %e, "savepoint failed");
        }
        let mark = db.fts_mark();
        let (failed, done) = job(&db);
        if failed {
            db.fts_rollback_to(mark);
            if let Err(e) = exec_cached(conn, "ROLLBACK TO job") {
                tracing::error!(error = %e, "savepoint rollback failed");
            }
        }
        if let Err(e) = exec_cached(conn, "RELEASE job") {
            tracing::error!(error = %e, "savepoint release failed");
        }
        completions.push(done);
    }
    let commit = begin
        .map_err(StoreError::from)
        .and_then(|_| db.fts_flush())
        .and_then(|_| conn.execute_batch("COMMIT").map_err(StoreError::from));
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for done in completions {
        done(commit.as_ref().err());
    }
}

fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

fn read_loop(conn: Connection, jobs: Arc<Mutex<mpsc::Receiver<ReadJob>>>) {
    let db = Db::new(&conn);
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(&db),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use rexian_shared::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).expect("date")
    }

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("refused on purpose")]
        Refused,
        #[error(transparent)]
        Store(#[from] StoreError),
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_rolls_back_only_itself_within_a_batch() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let mut jobs = Vec::new();
        for i in 0..200i64 {
            let store = store.clone();
            jobs.push(tokio::spawn(async move {
                store
                    .write(move |db| {
                        db.insert_department(&format!("部门{i}"), None, None)?;
                        if i % 3 == 0 {
                            return Err(TestError::Refused);
                        }
                        Ok(())
                    })
                    .await
            }));
        }
        let mut ok = 0;
        for j in jobs {
            match j.await.expect("join") {
                Ok(()) => ok += 1,
                Err(TestError::Refused) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let depts = store.read(|db| db.departments()).await.expect("read");
        assert_eq!(depts.len(), ok);
        assert!(depts.iter().all(|d| d.name.trim_start_matches("部门").parse::<i64>().expect("n") % 3 != 0));
    }

    #[tokio::test]
    async fn migrations_run_once_and_history_is_append_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("t.db");
        drop(Store::open(&path).expect("first open"));
        let store = Store::open(&path).expect("second open runs nothing twice");
        let conn = rusqlite::Connection::open(&path).expect("conn");
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        assert_eq!(version, schema::MIGRATIONS.len() as i64);
        let now = day(2).and_hms_opt(9, 0, 0).expect("t");
        store
            .write(move |db| {
                db.audit(now, "t", "x", "y")?;
                Ok::<_, StoreError>(())
            })
            .await
            .expect("audit");
        let err = conn.execute("UPDATE audit SET detail = 'changed'", []).expect_err("append-only");
        assert!(err.to_string().contains("append-only"), "{err}");
        assert!(conn.execute("DELETE FROM audit", []).is_err(), "rows cannot be deleted either");
    }

    #[tokio::test]
    async fn overdue_tickets_and_reminders_are_taken_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let created = day(2).and_hms_opt(9, 0, 0).expect("t");
        let mut ticket = Ticket::from_intake(NewTicket::phone(TicketKind::Complaint, None, "s", ""), TicketNo::from_parts(day(2), 1), created, "t");
        ticket.verification_code = Some("123456".into());
        ticket.stage = Some(DeadlineStage::Acceptance);
        ticket.due_date = Some(day(10));
        store
            .write(move |db| {
                let id = db.insert_ticket(&ticket, created)?;
                db.insert_reminder(id, day(5).and_hms_opt(9, 0, 0).expect("t"), "催办", "t")?;
                Ok::<_, StoreError>(())
            })
            .await
            .expect("insert");
        let take = |today: NaiveDate| {
            let store = store.clone();
            async move { store.write(move |db| db.take_new_overdue(today)).await.expect("overdue") }
        };
        assert!(take(day(10)).await.is_empty(), "due today is not overdue");
        assert_eq!(take(day(11)).await.len(), 1);
        assert!(take(day(12)).await.is_empty(), "told once");
        let remind = |d: u32| {
            let store = store.clone();
            async move { store.write(move |db| db.take_due_reminders(day(d).and_hms_opt(9, 0, 0).expect("t"))).await.expect("rem") }
        };
        assert!(remind(4).await.is_empty());
        let fired = remind(5).await;
        assert_eq!((fired.len(), fired[0].note.as_str()), (1, "催办"));
        assert!(remind(6).await.is_empty(), "fired once");
    }

    #[tokio::test]
    async fn reminder_due_lists_open_tickets_whose_reminder_time_has_come() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let created = day(2).and_hms_opt(9, 0, 0).expect("t");
        // (summary, state, reminder at day 5 + hours)
        let tickets = [("到期", TicketState::Dispatched, Some(9)), ("未到", TicketState::Dispatched, Some(15)), ("已办结", TicketState::Closed, Some(8)), ("无催办", TicketState::Dispatched, None)];
        store
            .write(move |db| {
                for (i, (summary, state, hour)) in tickets.into_iter().enumerate() {
                    let mut t = Ticket::from_intake(NewTicket::phone(TicketKind::Complaint, None, summary, ""), TicketNo::from_parts(day(2), i as u32 + 1), created, "t");
                    t.state = state;
                    let id = db.insert_ticket(&t, created)?;
                    if let Some(h) = hour {
                        db.insert_reminder(id, day(5).and_hms_opt(h, 0, 0).expect("t"), "催办", "t")?;
                    }
                }
                Ok::<_, StoreError>(())
            })
            .await
            .expect("insert");
        let due_at = |h: u32| {
            let store = store.clone();
            async move {
                let q = TicketQuery { reminder_due_only: true, ..TicketQuery::default() };
                let page = store.read(move |db| db.search_tickets(&q, Visibility(None), day(5).and_hms_opt(h, 0, 0).expect("t"))).await.expect("search");
                page.items.into_iter().map(|t| t.summary).collect::<Vec<_>>()
            }
        };
        assert!(due_at(8).await.is_empty(), "nothing due before 9:00 (the closed ticket's reminder does not count)");
        assert_eq!(due_at(9).await, ["到期"]);
        assert_eq!(due_at(16).await, ["未到", "到期"], "newest first");
    }
}
