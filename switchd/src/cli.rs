//! The command line: `switchd [run]` starts the daemon; the other commands administer a data
//! directory directly (safe while the daemon runs, thanks to SQLite's WAL), for administrators
//! and scripts (`--json`).

use crate::auth::Auth;
use crate::config::Config;
use crate::daemon::{self, db_path};
use crate::store::{Store, Visibility};
use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};

mod acd;
mod ivr;
use rexian_shared::*;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(name = "switchd", version, about = "Rexian 热线 switch daemon: SIP, IVR, ACD, recording, tickets, desk server")]
pub struct Cli {
    /// Config file (TOML); see assets/switchd.example.toml.
    #[arg(long, global = true, env = "REXIAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (database, certificates, attachments).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon (the default).
    Run(RunArgs),
    /// Users and passwords.
    #[command(subcommand)]
    User(UserCmd),
    /// Departments.
    #[command(subcommand)]
    Dept(DeptCmd),
    /// Ticket categories.
    #[command(subcommand)]
    Category(CategoryCmd),
    /// The working-day calendar (statutory holidays and 调休).
    #[command(subcommand)]
    Calendar(CalendarCmd),
    /// Tickets, read-only.
    #[command(subcommand)]
    Ticket(TicketCmd),
    /// Call detail records, read-only.
    #[command(subcommand)]
    Call(CallCmd),
    /// The ACD's records: agent state changes and the queue event log.
    #[command(subcommand)]
    Acd(acd::AcdCmd),
    /// IVR flows (export, edit, import), the callback list and call trails.
    #[command(subcommand)]
    Ivr(ivr::IvrCmd),
    /// The desk server's TLS certificate.
    #[command(subcommand)]
    Cert(CertCmd),
    /// Online, consistent backup of the database and attachments into a new directory.
    Backup { dest: PathBuf },
    /// Restore a backup into the data directory (switchd must be stopped).
    Restore {
        src: PathBuf,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// QUIC address for the desktops (default 0.0.0.0:7443).
    #[arg(long)]
    pub desk_addr: Option<std::net::SocketAddr>,
    /// SIP address (default 0.0.0.0:5060).
    #[arg(long)]
    pub sip_addr: Option<std::net::SocketAddr>,
    /// Prometheus metrics address (default 127.0.0.1:9365).
    #[arg(long)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Seed demonstration data into an empty data directory.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user; the password comes from --password or REXIAN_NEW_PASSWORD.
    Add {
        username: String,
        #[arg(long)]
        name: String,
        /// admin | agent | supervisor | handler | leader
        #[arg(long)]
        role: String,
        #[arg(long)]
        agent_no: Option<String>,
        #[arg(long)]
        department: Option<i64>,
        #[arg(long, env = "REXIAN_NEW_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Set a user's password (also unlocks the account and ends its sessions).
    Passwd {
        username: String,
        #[arg(long, env = "REXIAN_NEW_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Unlock an account locked after failed logins.
    Unlock { username: String },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeptCmd {
    Add {
        name: String,
        #[arg(long)]
        parent: Option<i64>,
        #[arg(long)]
        phone: Option<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CategoryCmd {
    /// Add a category, e.g. `04.06 起重机械` under 04.
    Add { code: String, name: String },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CalendarCmd {
    /// Import `YYYY-MM-DD,holiday|workday,name` lines; the years in the file are replaced.
    Import { file: PathBuf },
    /// Print a year in the import format.
    Export { year: i32 },
}

#[derive(Subcommand, Debug)]
pub enum TicketCmd {
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        overdue: bool,
        /// Chinese full-text search.
        #[arg(long)]
        text: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    Show {
        no: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CallCmd {
    /// The latest calls, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One call with its recordings.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CertCmd {
    /// Print the fingerprint desktops pin.
    Show,
    /// Install an administrator's certificate (PEM chain) and private key; restart switchd after.
    Install { cert: PathBuf, key: PathBuf },
}

pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref(), std::env::vars().filter(|(k, _)| k != "REXIAN_CONFIG" && k != "REXIAN_NEW_PASSWORD"))?;
    if let Some(d) = &cli.data_dir {
        config.data_dir = d.clone();
    }
    Ok(config)
}

pub fn apply_run_args(config: &mut Config, args: &RunArgs) {
    if let Some(a) = args.desk_addr {
        config.desk_addr = a;
    }
    if let Some(a) = args.sip_addr {
        config.sip_addr = a;
    }
    if let Some(a) = args.metrics_addr {
        config.metrics_addr = a;
    }
    if args.demo {
        config.demo_data = true;
        config.telephony.add_demo();
    }
}

fn local_now(config: &Config) -> chrono::NaiveDateTime {
    (chrono::Utc::now() + chrono::Duration::hours(config.utc_offset_hours.into())).naive_utc()
}

fn open_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir)?;
    let store = Store::open(&db_path(&config.data_dir))?;
    Ok(store)
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Runs an administrative command.
pub async fn admin(config: Config, command: Command) -> anyhow::Result<()> {
    let now = local_now(&config);
    match command {
        Command::Run(_) => bail!("run is handled by main"),
        Command::User(cmd) => user(&config, cmd, now).await,
        Command::Dept(cmd) => dept(&config, cmd).await,
        Command::Category(cmd) => category(&config, cmd).await,
        Command::Calendar(cmd) => calendar(&config, cmd).await,
        Command::Ticket(cmd) => ticket(&config, cmd, now).await,
        Command::Call(cmd) => call(&config, cmd).await,
        Command::Ivr(cmd) => ivr::run(&config, open_store(&config)?, cmd, now).await,
        Command::Acd(cmd) => acd::run(open_store(&config)?, cmd, now).await,
        Command::Cert(CertCmd::Show) => {
            println!("{}", crate::certs::load_or_create(&config.data_dir)?.fingerprint());
            Ok(())
        }
        Command::Cert(CertCmd::Install { cert, key }) => {
            let id = crate::certs::install(&config.data_dir, &cert, &key)?;
            println!("已安装证书 / installed; fingerprint {}. 请重启switchd / restart switchd", id.fingerprint());
            Ok(())
        }
        Command::Backup { dest } => backup(&config, &dest).await,
        Command::Restore { src, force } => restore(&config, &src, force),
    }
}

async fn user(config: &Config, cmd: UserCmd, now: chrono::NaiveDateTime) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let auth = Auth::new(store.clone(), config.auth.clone())?;
    match cmd {
        UserCmd::Add { username, name, role, agent_no, department, password } => {
            let role = Role::from_code(&role).with_context(|| format!("unknown role {role}: admin, agent, supervisor, handler or leader"))?;
            let new = NewUser { username, display_name: name, role, password, agent_no, department_id: department };
            let user = auth.create_user(new, "cli", now).await?;
            println!("已创建用户 / created user {} ({})", user.username, user.role.zh());
        }
        UserCmd::Passwd { username, password } => {
            auth.set_password(&username, &password, "cli", now).await?;
            println!("已修改密码 / password set for {username}");
        }
        UserCmd::Unlock { username } => {
            auth.unlock(&username, "cli", now).await?;
            println!("已解锁 / unlocked {username}");
        }
        UserCmd::List { json } => {
            let users = store.read(move |db| db.users(now)).await?;
            if json {
                return print_json(&users);
            }
            for u in users {
                let agent = u.agent_no.as_ref().map(ToString::to_string).unwrap_or_default();
                let flags = if u.locked { " 已锁定/locked" } else if !u.active { " 停用/inactive" } else { "" };
                println!("{:<14} {:<10} {:<6} {}{}", u.username, u.role.zh(), agent, u.display_name, flags);
            }
        }
    }
    Ok(())
}

async fn dept(config: &Config, cmd: DeptCmd) -> anyhow::Result<()> {
    let store = open_store(config)?;
    match cmd {
        DeptCmd::Add { name, parent, phone } => {
            let d = store.write(move |db| db.insert_department(&name, parent, phone.as_deref())).await?;
            println!("已创建部门 / created department {} {}", d.id, d.name);
        }
        DeptCmd::List { json } => {
            let ds = store.read(|db| db.departments()).await?;
            if json {
                return print_json(&ds);
            }
            for d in ds {
                println!("{:>4} {:<24} parent={:<4} {}", d.id, d.name, d.parent_id.map(|p| p.to_string()).unwrap_or_default(), d.phone.unwrap_or_default());
            }
        }
    }
    Ok(())
}

async fn category(config: &Config, cmd: CategoryCmd) -> anyhow::Result<()> {
    let store = open_store(config)?;
    match cmd {
        CategoryCmd::Add { code, name } => {
            let parent = code.rsplit_once('.').map(|(p, _)| p.to_owned());
            let c = crate::demo::category(&code, &name, parent.as_deref())?;
            store.write(move |db| db.insert_category(&c)).await?;
            println!("已添加分类 / added category {code} {name}");
        }
        CategoryCmd::List { json } => {
            let cs = store.read(|db| db.categories()).await?;
            if json {
                return print_json(&cs);
            }
            for c in cs {
                let indent = "  ".repeat(c.code.matches('.').count());
                println!("{indent}{} {}", c.code, c.name);
            }
        }
    }
    Ok(())
}

async fn calendar(config: &Config, cmd: CalendarCmd) -> anyhow::Result<()> {
    let store = open_store(config)?;
    match cmd {
        CalendarCmd::Import { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let entries = crate::calendar::parse_import(&text).with_context(|| format!("{}", file.display()))?;
            let mut years: Vec<i32> = entries.iter().map(|e| chrono::Datelike::year(&e.date)).collect();
            years.dedup();
            let n = entries.len();
            let replaced = years.clone();
            store
                .write(move |db| {
                    for y in &years {
                        db.clear_calendar_year(*y)?;
                    }
                    for e in &entries {
                        db.upsert_calendar_day(e)?;
                    }
                    Ok::<_, crate::store::StoreError>(())
                })
                .await?;
            println!("已导入{n}条，替换年份 / imported {n} entries, replaced years {replaced:?}");
            if daemon::is_running(&config.data_dir) {
                println!("switchd正在运行：请重启以使用新日历 / switchd is running: restart it to use the new calendar");
            }
        }
        CalendarCmd::Export { year } => {
            let days = store.read(|db| db.calendar_days()).await?;
            let year_days: Vec<_> = days.into_iter().filter(|d| chrono::Datelike::year(&d.date) == year).collect();
            print!("{}", crate::calendar::render_export(&year_days));
        }
    }
    Ok(())
}

async fn ticket(config: &Config, cmd: TicketCmd, now: chrono::NaiveDateTime) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let today = now.date();
    match cmd {
        TicketCmd::List { state, kind, overdue, text, limit, json } => {
            let mut q = TicketQuery { overdue_only: overdue, text, page_size: limit, ..TicketQuery::default() };
            if let Some(s) = state {
                q.states.push(TicketState::from_code(&s).with_context(|| format!("unknown state {s}"))?);
            }
            if let Some(k) = kind {
                q.kinds.push(TicketKind::from_code(&k).with_context(|| format!("unknown kind {k}"))?);
            }
            let page = store.read(move |db| db.search_tickets(&q, Visibility(None), now)).await?;
            if json {
                return print_json(&page);
            }
            println!("共{}张 / {} tickets", page.total, page.total);
            for t in page.items {
                let due = t.due_date.map(|d| d.to_string()).unwrap_or_default();
                let flag = if t.overdue { " 超期/overdue" } else { "" };
                println!("{} {:<6} {:<6} {:<10} {}{}", t.no, t.kind.zh(), t.state.zh(), due, t.summary, flag);
            }
        }
        TicketCmd::Show { no, json } => {
            let no = TicketNo::parse(&no)?;
            let no2 = no.clone();
            let found = store.read(move |db| db.ticket(&no2, Visibility(None))).await?;
            let Some((_, mut t)) = found else { bail!("工单{no}不存在 / no ticket {no}") };
            t.overdue = crate::store::is_overdue(t.state, t.due_date, t.paused_since, today);
            if json {
                return print_json(&t);
            }
            print_ticket(&t);
        }
    }
    Ok(())
}

fn print_ticket(t: &Ticket) {
    println!("工单 {}  {}  {}  渠道 {}", t.no, t.kind.zh(), t.state.zh(), t.channel.zh());
    println!("摘要 {}", t.summary);
    println!("来电 {} {}", t.caller.name.as_deref().unwrap_or("-"), t.caller_phone_display.as_deref().unwrap_or("-"));
    if let Some(d) = t.due_date {
        println!("期限 {d}{}", if t.overdue { "（已超期）" } else { "" });
    }
    for h in &t.history {
        println!("  {} {:<10} {:<18} → {} {}", h.at, h.actor, h.action, h.to_state.zh(), h.note);
    }
}

async fn call(config: &Config, cmd: CallCmd) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let offset = chrono::FixedOffset::east_opt(config.utc_offset_hours * 3600).context("utc_offset_hours out of range")?;
    match cmd {
        CallCmd::List { limit, json } => {
            let calls = store.calls(limit).await?;
            if json {
                return print_json(&calls);
            }
            if calls.is_empty() {
                println!("没有通话记录 / no calls");
                return Ok(());
            }
            let header = ["编号 ID", "方向 Dir", "主叫 Caller", "被叫 Callee", "路由 Route", "开始 Offered", "应答 Answered", "结束 Ended", "原因 Cause", "按键 Digits", "录音 Recordings"];
            let mut rows = vec![header.map(String::from)];
            for c in &calls {
                let day = c.offered_at.with_timezone(&offset).date_naive();
                rows.push([
                        c.id.to_string(),
                        c.direction.zh().into(),
                        c.caller.clone(),
                        c.callee.clone(),
                        c.route.clone(),
                        local_time(c.offered_at, offset, None),
                        c.answered_at.map(|t| local_time(t, offset, Some(day))).unwrap_or_else(|| "-".into()),
                        c.ended_at.map(|t| local_time(t, offset, Some(day))).unwrap_or_else(|| "-".into()),
                        c.cause.map(|x| x.zh().to_owned()).unwrap_or_else(|| "通话中".into()),
                        if c.digits.is_empty() { "-".into() } else { c.digits.clone() },
                        c.recordings.len().to_string(),
                ]);
            }
            print_table(&rows);
        }
        CallCmd::Show { id, json } => {
            let Some(c) = store.call(id).await? else { bail!("通话{id}不存在 / no call {id}") };
            if json {
                return print_json(&c);
            }
            print_call(&c, offset);
        }
    }
    Ok(())
}

/// `t` in local time; only the time of day when it falls on `same_day`.
fn local_time(t: chrono::DateTime<chrono::Utc>, offset: chrono::FixedOffset, same_day: Option<chrono::NaiveDate>) -> String {
    let local = t.with_timezone(&offset);
    if same_day == Some(local.date_naive()) {
        local.format("%H:%M:%S").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

/// Terminal columns of `s`: CJK and other wide characters take two.
fn display_width(s: &str) -> usize {
    s.chars().map(|c| if ('\u{2E80}'..='\u{FFEF}').contains(&c) { 2 } else { 1 }).sum()
}

/// Rows (the first is the header) in columns as wide as their widest cell, two spaces apart.
pub(crate) fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(display_width(cell));
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                line.push_str(&" ".repeat(w - display_width(cell) + 2));
            }
        }
        println!("{line}");
    }
}

fn print_call(c: &crate::cdr::CallRecord, offset: chrono::FixedOffset) {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| local_time(t, offset, None)).unwrap_or_else(|| "-".into());
    println!("编号 ID          {}", c.id);
    println!("方向 Direction   {} {}", c.direction.zh(), c.direction.code());
    println!("主叫 Caller      {}", c.caller);
    println!("被叫 Callee      {}", c.callee);
    println!("中继 Trunk       {}", c.trunk.as_deref().unwrap_or("-"));
    println!("路由 Route       {}", c.route);
    println!("开始 Offered     {}", time(Some(c.offered_at)));
    println!("应答 Answered    {}", time(c.answered_at));
    println!("结束 Ended       {}", time(c.ended_at));
    match c.cause {
        Some(cause) => println!("原因 Cause       {} {}", cause.zh(), cause.code()),
        None => println!("原因 Cause       通话中 in progress"),
    }
    println!("SIP状态 Status   {}", c.sip_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()));
    println!("按键 Digits      {}", if c.digits.is_empty() { "-" } else { &c.digits });
    println!("SIP Call-ID      {}", c.sip_call_id);
    match c.quality {
        Some(q) => {
            let rtt = q.rtt_mean_ms.map(|ms| format!("{ms:.1} ms")).unwrap_or_else(|| "-".into());
            println!(
                "语音质量 Media   收到 received {}, 丢失 lost {}, 最大抖动 max jitter {:.1} ms, 往返时延 RTT {rtt}",
                q.packets_received, q.packets_lost, q.jitter_max_ms
            );
        }
        None => println!("语音质量 Media   -"),
    }
    if c.recordings.is_empty() {
        println!("录音 Recordings  -");
    } else {
        println!("录音 Recordings");
        for r in &c.recordings {
            let len = r.seconds.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "未完成 unfinished".into());
            println!("  {}  {}  {}  {}", local_time(r.started_at, offset, None), r.kind, len, r.path);
        }
    }
}

async fn backup(config: &Config, dest: &Path) -> anyhow::Result<()> {
    if dest.exists() && std::fs::read_dir(dest)?.next().is_some() {
        bail!("备份目录非空 / backup directory {} is not empty", dest.display());
    }
    std::fs::create_dir_all(dest)?;
    let store = Store::open(&db_path(&config.data_dir))?;
    store.backup_to(dest.join(daemon::DB_FILE)).await?;
    let attachments = config.data_dir.join("attachments");
    let copied = if attachments.exists() { copy_tree(&attachments, &dest.join("attachments"))? } else { 0 };
    println!("已备份到 / backed up to {} (database + {copied} attachment files)", dest.display());
    Ok(())
}

fn restore(config: &Config, src: &Path, force: bool) -> anyhow::Result<()> {
    let db = src.join(daemon::DB_FILE);
    if !db.exists() {
        bail!("{} 不是备份目录 / is not a backup (no {})", src.display(), daemon::DB_FILE);
    }
    let _lock = daemon::lock_data_dir(&config.data_dir).context("请先停止switchd / stop switchd first")?;
    let target = db_path(&config.data_dir);
    if target.exists() && !force {
        bail!("数据目录已有数据库，使用--force覆盖 / {} exists; use --force to replace it", target.display());
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    std::fs::copy(&db, &target)?;
    let attachments = src.join("attachments");
    if attachments.exists() {
        copy_tree(&attachments, &config.data_dir.join("attachments"))?;
    }
    println!("已恢复 / restored {} into {}", src.display(), config.data_dir.display());
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(to)?;
    let mut n = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            n += copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
            n += 1;
        }
    }
    Ok(n)
}
