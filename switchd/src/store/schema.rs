//! Versioned migrations. `PRAGMA user_version` holds the number of migrations applied; each
//! entry below runs once, in order, inside one transaction with the version bump.

pub const MIGRATIONS: &[&str] = &[
    // 1: people, tickets, knowledge base, callers.
    r#"
CREATE TABLE departments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    parent_id INTEGER REFERENCES departments(id),
    phone TEXT,
    UNIQUE (parent_id, name)
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    agent_no TEXT UNIQUE,
    department_id INTEGER REFERENCES departments(id),
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE categories (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent_code TEXT REFERENCES categories(code)
);
CREATE TABLE calendar_days (
    date TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('holiday', 'workday')),
    name TEXT NOT NULL
);
CREATE TABLE ticket_seq (day TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    no TEXT NOT NULL UNIQUE,
    verification_code TEXT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    caller_name TEXT, caller_phone TEXT, caller_enterprise TEXT, caller_address TEXT,
    caller_id_number TEXT, caller_email TEXT,
    subject_name TEXT, subject_credit_code TEXT, subject_address TEXT,
    category_code TEXT REFERENCES categories(code),
    summary TEXT NOT NULL,
    content TEXT NOT NULL,
    anonymous INTEGER NOT NULL, confidential INTEGER NOT NULL, consent INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    lead_department INTEGER REFERENCES departments(id),
    stage TEXT, due_date TEXT, deadline_warning TEXT, paused_since TEXT,
    supervised INTEGER NOT NULL DEFAULT 0,
    extension_requested INTEGER,
    extended_days INTEGER NOT NULL DEFAULT 0,
    reply TEXT, answer TEXT, satisfaction TEXT, reject_reason TEXT,
    reopen_count INTEGER NOT NULL DEFAULT 0,
    merged_into TEXT,
    overdue_notified INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE INDEX tickets_state ON tickets(state, due_date);
CREATE INDEX tickets_caller ON tickets(caller_phone);
CREATE INDEX tickets_subject ON tickets(subject_credit_code);
CREATE INDEX tickets_created ON tickets(created_at);
CREATE INDEX tickets_lead ON tickets(lead_department);
-- Open tickets with a running deadline nobody has been told is missed: the overdue check reads
-- only these (its WHERE repeats this one's, so SQLite uses it).
CREATE INDEX tickets_open_due ON tickets(due_date)
    WHERE overdue_notified = 0 AND paused_since IS NULL AND due_date IS NOT NULL
      AND state NOT IN ('closed', 'merged', 'not_accepted');
CREATE TABLE ticket_departments (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    department_id INTEGER NOT NULL REFERENCES departments(id),
    lead INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, department_id)
);
CREATE INDEX ticket_departments_dept ON ticket_departments(department_id);
-- The ticket history is the audit trail: rows are only ever added.
CREATE TABLE ticket_events (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events(ticket_id);
CREATE TRIGGER ticket_events_append_only_u BEFORE UPDATE ON ticket_events
BEGIN SELECT RAISE(ABORT, 'ticket history is append-only'); END;
CREATE TRIGGER ticket_events_append_only_d BEFORE DELETE ON ticket_events
BEGIN SELECT RAISE(ABORT, 'ticket history is append-only'); END;
CREATE TABLE ticket_links (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    other_no TEXT NOT NULL,
    relation TEXT NOT NULL
);
CREATE INDEX ticket_links_ticket ON ticket_links(ticket_id);
CREATE TABLE ticket_articles (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    article_id INTEGER NOT NULL REFERENCES articles(id),
    PRIMARY KEY (ticket_id, article_id)
);
CREATE TABLE ticket_calls (ticket_id INTEGER NOT NULL REFERENCES tickets(id), call_id TEXT NOT NULL);
CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    name TEXT NOT NULL, mime TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at TEXT NOT NULL, created_by TEXT NOT NULL
);
CREATE TABLE reminders (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    due_at TEXT NOT NULL,
    note TEXT NOT NULL,
    created_by TEXT NOT NULL,
    fired INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reminders_due ON reminders(fired, due_at);
-- Contentless: the indexed forms are not stored twice; rows are deleted by rowid.
CREATE VIRTUAL TABLE ticket_fts USING fts5(bi, uni, content='', contentless_delete=1);
-- Merge index segments in larger, rarer steps: each commit adds a small segment, and the default
-- crisis merge (16 segments) stalls the writer's commits noticeably.
INSERT INTO ticket_fts (ticket_fts, rank) VALUES ('automerge', 8);
INSERT INTO ticket_fts (ticket_fts, rank) VALUES ('crisismerge', 64);
CREATE TABLE callers (
    phone TEXT PRIMARY KEY,
    name TEXT,
    vip INTEGER NOT NULL DEFAULT 0,
    blocked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE enterprises (credit_code TEXT PRIMARY KEY, name TEXT, address TEXT);
CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    published INTEGER NOT NULL,
    for_ivr INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE VIRTUAL TABLE article_fts USING fts5(title_bi, body_bi, title_uni, body_uni, content='', contentless_delete=1);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TRIGGER audit_append_only_u BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_append_only_d BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"#,
    // 2: call detail records. Times are UTC ('YYYY-MM-DD HH:MM:SS[.f]+00:00'), unlike the local
    // wall-clock times above. Records are never deleted, so the foreign key has no ON DELETE.
    r#"
CREATE TABLE calls (
    id INTEGER PRIMARY KEY,
    sip_call_id TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    trunk TEXT,
    caller TEXT NOT NULL,
    callee TEXT NOT NULL,
    route TEXT NOT NULL,
    offered_at TEXT NOT NULL,
    answered_at TEXT,
    ended_at TEXT,
    cause TEXT,
    sip_status INTEGER,
    digits TEXT NOT NULL DEFAULT ''
);
-- Newest first: the CLI and the desktops list calls by offer time.
CREATE INDEX calls_offered ON calls(offered_at DESC, id DESC);
CREATE INDEX calls_sip_call_id ON calls(sip_call_id);
-- Calls still in progress (or cut off by a crash): the start-up check reads only these.
CREATE INDEX calls_dangling ON calls(id) WHERE ended_at IS NULL;
CREATE TABLE call_recordings (
    id INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL REFERENCES calls(id),
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    seconds REAL,
    UNIQUE (call_id, path)
);
-- Recordings not marked finished: at start-up these are repaired and measured.
CREATE INDEX call_recordings_unfinished ON call_recordings(call_id) WHERE seconds IS NULL;
"#,
    // 3: the IVR — flow versions, surveys and their answers, the callback list (after-hours
    // callers, fax-back and e-mail-back requests) and each call's path through the flows.
    // Times are local wall-clock times like the tickets'.
    r#"
CREATE TABLE ivr_flows (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    description TEXT NOT NULL,
    yaml TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    saved_by TEXT NOT NULL,
    UNIQUE (name, version)
);
CREATE TABLE surveys (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    questions TEXT NOT NULL,
    saved_at TEXT NOT NULL
);
CREATE TABLE survey_answers (
    id INTEGER PRIMARY KEY,
    survey_id INTEGER NOT NULL REFERENCES surveys(id),
    question INTEGER NOT NULL,
    answer INTEGER NOT NULL,
    call_id INTEGER REFERENCES calls(id),
    at TEXT NOT NULL
);
CREATE INDEX survey_answers_by_survey ON survey_answers(survey_id, question);
CREATE TABLE callback_requests (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    phone TEXT NOT NULL,
    reason TEXT NOT NULL,
    address TEXT,
    article_id INTEGER,
    call_id INTEGER REFERENCES calls(id),
    done_at TEXT,
    done_by TEXT
);
CREATE INDEX callback_requests_open ON callback_requests(at) WHERE done_at IS NULL;
CREATE TABLE ivr_trail (
    id INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL REFERENCES calls(id),
    seq INTEGER NOT NULL,
    after_ms INTEGER NOT NULL,
    flow TEXT NOT NULL,
    node TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX ivr_trail_by_call ON ivr_trail(call_id, seq);
"#,
    // 4: the caller's rating after an agent handed them to the satisfaction flow (人工转自动).
    r#"
ALTER TABLE calls ADD COLUMN satisfaction TEXT;
"#,
    // 5: the ACD's records (ACD-2, RPT-4): every agent state change, and the queue event log
    // from which service level, ASA, abandonment and handling times are computed. Local times.
    r#"
CREATE TABLE agent_states (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    at TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    reason TEXT,
    cause TEXT NOT NULL
);
CREATE INDEX agent_states_by_user ON agent_states(user_id, at);
CREATE TABLE queue_events (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    call_id INTEGER REFERENCES calls(id),
    queue TEXT NOT NULL,
    kind TEXT NOT NULL,
    agent_id INTEGER,
    wait_ms INTEGER,
    detail TEXT NOT NULL
);
CREATE INDEX queue_events_by_queue ON queue_events(queue, at);
"#,
    // 6: the caller leg's media quality (RTCP, RFC 3550), set with the call's end; NULL for
    // calls without media and for those recorded before it.
    r#"
ALTER TABLE calls ADD COLUMN rtp_received INTEGER;
ALTER TABLE calls ADD COLUMN rtp_lost INTEGER;
ALTER TABLE calls ADD COLUMN jitter_max_ms REAL;
ALTER TABLE calls ADD COLUMN rtt_mean_ms REAL;
ALTER TABLE calls ADD COLUMN rtcp_received INTEGER;
"#,
    // 7: a caller's earlier calls for the screen pop (they called: caller; we called: callee).
    r#"
CREATE INDEX calls_by_caller ON calls(caller, offered_at);
CREATE INDEX calls_by_callee ON calls(callee, offered_at);
"#,
    // 8: each user's saved filters of the ticket list (常用筛选), the query as JSON of
    // `TicketQuery` without its page; and a ticket's reminders for the "reminder due" filter.
    r#"
CREATE TABLE saved_filters (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    UNIQUE (user_id, name)
);
CREATE INDEX reminders_by_ticket ON reminders(ticket_id, due_at);
"#,
    // 9: the due list (待办): what came of calling a callback request back, and the reminders
    // each user took off their own list (知道了).
    r#"
ALTER TABLE callback_requests ADD COLUMN outcome TEXT;
CREATE TABLE reminder_dismissals (
    reminder_id INTEGER NOT NULL REFERENCES reminders(id),
    username TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (reminder_id, username)
);
CREATE INDEX reminders_by_creator ON reminders(created_by);
"#,
];
