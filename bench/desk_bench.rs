//! `desk-bench`: figures for switchd over the real desk protocol.
//!
//! Starts the real `switchd` (demo data, fresh data directory), logs in over QUIC and measures
//! ticket creation, ticket lookup, ticket full-text search and knowledge-base search, then prints
//! a summary table. For figures run it in release, so the release `switchd` is used:
//!
//! ```text
//! cargo run --release -p rexian-bench --bin desk-bench
//! ```
//!
//! Counts come from the environment: `BENCH_TICKETS` (100000), `BENCH_LOOKUPS` (100000),
//! `BENCH_ARTICLES` (10000), `BENCH_KB_QUERIES` (400), `BENCH_TICKET_QUERIES` (200),
//! `BENCH_SERIAL` (500 creations and 500 lookups one at a time, for unloaded latency),
//! `BENCH_CLIENTS` (4 connections per user) and `BENCH_IN_FLIGHT` (64 requests per connection,
//! switchd's own per-connection limit). Before starting, the bench runs `cargo build -p switchd`
//! for its own profile so a stale daemon binary is never measured; `BENCH_BUILD_SWITCHD=0` skips
//! that, and `SWITCHD_BIN` names another binary. Data are generated deterministically.

use anyhow::{anyhow, ensure, Context, Result};
use rexian_shared::client::DeskClient;
use rexian_shared::*;
use rexian_tests::{Daemon, DEMO_PASSWORD};
use std::future::Future;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

// ------------------------------------------------------------------------------------ config

#[derive(Debug, Clone, Copy)]
struct Config {
    tickets: usize,
    lookups: usize,
    articles: usize,
    kb_queries: usize,
    ticket_queries: usize,
    serial: usize,
    clients: usize,
    in_flight: usize,
}

impl Config {
    fn from_env() -> Result<Self> {
        let cfg = Self {
            tickets: env_count("BENCH_TICKETS", 100_000)?,
            lookups: env_count("BENCH_LOOKUPS", 100_000)?,
            articles: env_count("BENCH_ARTICLES", 10_000)?,
            kb_queries: env_count("BENCH_KB_QUERIES", 400)?,
            ticket_queries: env_count("BENCH_TICKET_QUERIES", 200)?,
            serial: env_count("BENCH_SERIAL", 500)?,
            clients: env_count("BENCH_CLIENTS", 4)?,
            in_flight: env_count("BENCH_IN_FLIGHT", 64)?,
        };
        ensure!(cfg.clients >= 1 && cfg.in_flight >= 1, "BENCH_CLIENTS and BENCH_IN_FLIGHT must be at least 1");
        Ok(cfg)
    }
}

fn env_count(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.trim().replace('_', "").parse().with_context(|| format!("{name}={v:?} is not a count")),
        Err(_) => Ok(default),
    }
}

// ------------------------------------------------------------------------------------ random

/// xorshift64, seeded through splitmix64 so that neighbouring seeds give unrelated streams.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// 0..n; 0 when n is 0.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// `items` must not be empty (all vocabularies below are constants).
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const TICKET_SEED: u64 = 0x7469_636b_6574;
const LOOKUP_SEED: u64 = 0x6c6f_6f6b;
const ARTICLE_SEED: u64 = 0x0061_7274_6963_6c65;
const KB_QUERY_SEED: u64 = 0x6b62_7175;
const TICKET_QUERY_SEED: u64 = 0x7471_7565_7279;

// ------------------------------------------------------------------------------------ vocabulary

/// Domain terms of 2 characters with the category a ticket about them is filed under.
const SHORT_TERMS: &[(&str, &str)] = &[
    ("电梯", "04.01"),
    ("锅炉", "04.02"),
    ("气瓶", "04.04"),
    ("召回", "01.02"),
    ("抽检", "01"),
    ("标准", "03.02"),
    ("计量", "02"),
    ("认证", "05"),
    ("质量", "01"),
    ("检定", "02.01"),
    ("维保", "04.01"),
    ("年检", "04"),
    ("假冒", "01.02"),
    ("商标", "99"),
    ("标识", "01.02"),
    ("能效", "05.01"),
];

/// Domain terms of 3 characters (used in texts, not as queries).
const MID_TERMS: &[(&str, &str)] = &[
    ("加油机", "02.03"),
    ("电子秤", "02.01"),
    ("计价器", "02.01"),
    ("液化气", "04.04"),
    ("游乐园", "04.05"),
    ("合格证", "01.03"),
    ("标准化", "03"),
];

/// Domain terms of 4 or more characters.
const LONG_TERMS: &[(&str, &str)] = &[
    ("特种设备", "04"),
    ("压力容器", "04.03"),
    ("压力管道", "04"),
    ("计量器具", "02.01"),
    ("产品质量", "01"),
    ("生产许可证", "06.01"),
    ("认证认可", "05"),
    ("检验检测", "05.02"),
    ("缺斤短两", "02.02"),
    ("起重机械", "04"),
    ("大型游乐设施", "04.05"),
    ("客运索道", "04"),
    ("强制性产品认证", "05.01"),
    ("能效标识", "05.01"),
    ("定量包装商品", "02.02"),
    ("出租车计价器", "02.01"),
    ("燃气热水器", "01.02"),
    ("电动自行车", "01.03"),
    ("儿童玩具", "01.02"),
    ("安全技术规范", "04"),
    ("定期检验", "04"),
    ("使用登记", "04"),
    ("缺陷产品", "01.02"),
    ("企业标准", "03.02"),
    ("计量检定", "02.01"),
    ("检验报告", "05.02"),
    ("食品相关产品", "01.01"),
    ("质量安全事故", "07"),
];

const FILLER: &[&str] = &[
    "近日", "消费者", "市民", "反映", "来电称", "在", "购买的", "使用的", "发现", "存在", "问题", "要求",
    "相关部门", "尽快", "核实", "处理", "依法", "查处", "希望", "给予", "答复", "按照", "规定", "办理",
    "需要", "提交", "材料", "工作日内", "受理", "监督检查", "情况", "属实", "多次", "协商", "未果", "商家",
    "物业公司", "经营者", "生产企业", "安全隐患", "严重影响", "正常使用", "据了解", "根据", "有关", "条例",
    "办法", "明确", "应当", "负责", "辖区", "市场监管所", "执法人员", "现场", "检查", "责令", "整改",
    "罚款", "立案", "调查", "告知", "申请人", "窗口", "网上", "办结", "期限", "证明", "复印件",
];

const PLACES: &[&str] = &[
    "幸福里小区", "阳光花园", "城南农贸市场", "人民路", "解放大道", "华联超市", "万达广场", "东湖新村",
    "滨江路加油站", "中心医院", "实验小学", "经济开发区", "高新区", "老城区菜市场", "金桥商厦", "翠苑小区",
    "火车站", "汽车南站", "体育中心", "江湾游乐场",
];

const PROBLEMS: &[&str] = &[
    "困人", "频繁停运", "运行异响", "超期未检", "无证使用", "计量不准", "短斤少两", "质量不合格", "虚假宣传",
    "拒绝退换", "价格欺诈", "漏气", "无合格证", "标识不全", "以次充好", "维保记录造假", "未办理使用登记",
];

const TITLE_SUFFIXES: &[&str] = &[
    "办事指南", "常见问题解答", "监督管理规定", "投诉处理流程", "检验检测要求", "许可办理须知", "受理范围说明",
    "法律法规汇编", "政策解读", "注意事项",
];

const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高"];
const GIVEN: &[&str] = &["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛"];
const FIRM_CITY: &[&str] = &["江城", "华东", "新城", "东方", "锦江", "滨海", "金陵", "安和"];
const FIRM_CORE: &[&str] = &["华信", "恒达", "永安", "宏发", "鑫源", "佳美", "利民", "祥瑞", "盛世", "康泰"];
const FIRM_TRADE: &[&str] =
    &["电梯工程有限公司", "商贸有限公司", "燃气有限公司", "超市有限公司", "石化加油站", "锅炉制造有限公司", "电器有限公司"];

// ------------------------------------------------------------------------------------ generated data

/// Any domain term with its category: long terms a little more often, like real complaints.
fn domain_term(r: &mut Rng) -> (&'static str, &'static str) {
    match r.below(10) {
        0..=3 => r.pick(SHORT_TERMS),
        4 => r.pick(MID_TERMS),
        _ => r.pick(LONG_TERMS),
    }
}

/// One clause of filler words, with a domain term half of the time.
fn clause(r: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..r.range(3, 6) {
        s.push_str(r.pick(FILLER));
    }
    if r.chance(50) {
        s.insert_str(0, domain_term(r).0);
    }
    s.push(if r.chance(70) { '，' } else { '。' });
    s
}

/// `start` followed by clauses until the text has at least `chars` characters.
fn text_of_len(r: &mut Rng, start: String, chars: usize) -> String {
    let mut count = start.chars().count();
    let mut s = start;
    while count < chars {
        let c = clause(r);
        count += c.chars().count();
        s.push_str(&c);
    }
    s
}

fn caller_phone(r: &mut Rng) -> Result<Option<PhoneNumber>> {
    let raw = match r.below(20) {
        0 => return Ok(None),
        1 | 2 => format!("0571-8{:07}", r.below(10_000_000)),
        _ => format!("{}{:08}", r.pick(&["138", "139", "135", "186", "159", "177", "150"]), r.below(5_000) * 19_997),
    };
    Ok(Some(PhoneNumber::parse(&raw)?))
}

fn firm_name(r: &mut Rng) -> String {
    format!("{}{}{}", r.pick(FIRM_CITY), r.pick(FIRM_CORE), r.pick(FIRM_TRADE))
}

/// The `i`-th generated ticket: realistic enough for search (terms, places, firms, names).
fn ticket_input(i: usize) -> Result<NewTicket> {
    let r = &mut Rng::new(TICKET_SEED ^ i as u64);
    let kind = r.pick(TicketKind::ALL);
    let (term, category) = domain_term(r);
    let (place, problem) = (r.pick(PLACES), r.pick(PROBLEMS));
    let summary = format!("{place}{term}{problem}");
    let first = format!("来电人反映{place}的{term}{problem}，");
    let len = r.range(60, 300);
    let content = text_of_len(r, first, len);
    let mut t = NewTicket::phone(kind, caller_phone(r)?, &summary, &content);
    t.channel = if r.chance(80) { Channel::Phone } else { r.pick(Channel::ALL) };
    t.category_code = r.chance(70).then(|| category.to_owned());
    if r.chance(60) {
        t.caller.name = Some(format!("{}{}", r.pick(SURNAMES), r.pick(GIVEN)));
    }
    if matches!(kind, TicketKind::Complaint | TicketKind::Report) {
        t.subject = Some(SubjectInfo { name: firm_name(r), ..SubjectInfo::default() });
    }
    Ok(t)
}

/// The `i`-th generated knowledge-base article (body of 200 to 600 characters).
fn article_input(i: usize) -> ArticleInput {
    let r = &mut Rng::new(ARTICLE_SEED ^ i as u64);
    let (term, _) = domain_term(r);
    let title = format!("{term}{}", r.pick(TITLE_SUFFIXES));
    let first = format!("本条目说明{term}相关事项。");
    let len = r.range(200, 600);
    let body = text_of_len(r, first, len);
    ArticleInput { id: None, kind: r.pick(ArticleKind::ALL), title, body, published: true, for_ivr: false }
}

/// Query terms, alternating 2-character and 4+-character terms.
fn query_terms(seed: u64, n: usize) -> Vec<&'static str> {
    let r = &mut Rng::new(seed);
    (0..n).map(|i| if i % 2 == 0 { r.pick(SHORT_TERMS).0 } else { r.pick(LONG_TERMS).0 }).collect()
}

// ------------------------------------------------------------------------------------ statistics

#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    n: usize,
    p50: f64,
    p99: f64,
    mean: f64,
    max: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Stats {
    fn of(latencies: &[Duration]) -> Stats {
        if latencies.is_empty() {
            return Stats::default();
        }
        let mut v: Vec<Duration> = latencies.to_vec();
        v.sort_unstable();
        let at = |p: f64| ms(v[((v.len() - 1) as f64 * p).round() as usize]);
        let total: Duration = v.iter().sum();
        Stats { n: v.len(), p50: at(0.50), p99: at(0.99), mean: ms(total) / v.len() as f64, max: at(1.0) }
    }
}

/// One row of the summary table.
struct Row {
    label: String,
    per_sec: f64,
    stats: Stats,
    note: String,
}

impl Row {
    fn new(label: &str, count: usize, elapsed: Duration, latencies: &[Duration], note: String) -> Row {
        let per_sec = if elapsed.is_zero() { 0.0 } else { count as f64 / elapsed.as_secs_f64() };
        Row { label: label.to_owned(), per_sec, stats: Stats::of(latencies), note }
    }

    fn from_load<T>(label: &str, load: &Load<T>) -> Row {
        Row::new(label, load.latencies.len(), load.elapsed, &load.latencies, String::new())
    }

    fn print(&self) {
        let s = &self.stats;
        println!(
            "{:<32}: {:>8.1} /s   p50 {:>7.2} ms  p99 {:>7.2} ms  mean {:>7.2} ms  max {:>7.1} ms  (n={}){}",
            self.label, self.per_sec, s.p50, s.p99, s.mean, s.max, s.n, self.note
        );
    }
}

// ------------------------------------------------------------------------------------ load harness

struct Load<T> {
    out: Vec<T>,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

struct Job<F> {
    op: F,
    next: AtomicUsize,
    total: usize,
    label: String,
}

/// Runs `op(client, i)` for i in 0..total with `in_flight` workers per client, timing each call.
/// The first error stops the run (the other workers are aborted).
async fn run_load<T, F, Fut>(label: &str, clients: &[Arc<DeskClient>], in_flight: usize, total: usize, op: F) -> Result<Load<T>>
where
    T: Send + 'static,
    F: Fn(Arc<DeskClient>, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let job = Arc::new(Job { op, next: AtomicUsize::new(0), total, label: label.to_owned() });
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for client in clients {
        for _ in 0..in_flight {
            workers.spawn(worker(client.clone(), job.clone()));
        }
    }
    let mut load = Load { out: Vec::with_capacity(total), latencies: Vec::with_capacity(total), elapsed: Duration::ZERO };
    while let Some(joined) = workers.join_next().await {
        let (out, latencies) = joined.context("benchmark worker panicked")??;
        load.out.extend(out);
        load.latencies.extend(latencies);
    }
    load.elapsed = started.elapsed();
    Ok(load)
}

async fn worker<T, F, Fut>(client: Arc<DeskClient>, job: Arc<Job<F>>) -> Result<(Vec<T>, Vec<Duration>)>
where
    F: Fn(Arc<DeskClient>, usize) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let (mut out, mut latencies) = (Vec::new(), Vec::new());
    let step = (job.total / 10).max(1);
    loop {
        let i = job.next.fetch_add(1, Ordering::Relaxed);
        if i >= job.total {
            return Ok((out, latencies));
        }
        let started = Instant::now();
        let v = (job.op)(client.clone(), i).await.with_context(|| format!("{} #{i}", job.label))?;
        latencies.push(started.elapsed());
        out.push(v);
        if job.total >= 10_000 && i % step == step - 1 {
            eprintln!("  {}: {} of {} issued", job.label, i + 1, job.total);
        }
    }
}

/// Runs `queries` one at a time on one client; returns (latency, hits) per query and the elapsed time.
async fn run_sequential<F, Fut>(
    client: &Arc<DeskClient>,
    queries: &[&'static str],
    op: F,
) -> Result<(Vec<(Duration, u64)>, Duration)>
where
    F: Fn(Arc<DeskClient>, &'static str) -> Fut,
    Fut: Future<Output = Result<u64>>,
{
    let mut results = Vec::with_capacity(queries.len());
    let started = Instant::now();
    for q in queries {
        let t0 = Instant::now();
        let hits = op(client.clone(), q).await.with_context(|| format!("query {q}"))?;
        results.push((t0.elapsed(), hits));
    }
    Ok((results, started.elapsed()))
}

/// A row suffix and which query lengths (in characters) it covers.
type QueryClass = (&'static str, fn(usize) -> bool);

/// Rows for all queries, then for the 2-character and the 4+-character ones.
fn query_rows(label: &str, queries: &[&str], results: &[(Duration, u64)], elapsed: Duration, hits_word: &str) -> Vec<Row> {
    let classes: [QueryClass; 3] = [("", |_| true), ("  2-char terms", |n| n == 2), ("  4+-char terms", |n| n >= 4)];
    classes
        .iter()
        .map(|(suffix, keep)| {
            let picked: Vec<(Duration, u64)> =
                queries.iter().zip(results).filter(|(q, _)| keep(q.chars().count())).map(|(_, r)| *r).collect();
            let latencies: Vec<Duration> = picked.iter().map(|r| r.0).collect();
            let mean_hits = picked.iter().map(|r| r.1).sum::<u64>() as f64 / picked.len().max(1) as f64;
            let time: Duration = if suffix.is_empty() { elapsed } else { latencies.iter().sum() };
            let name = if suffix.is_empty() { label.to_owned() } else { suffix.to_string() };
            Row::new(&name, picked.len(), time, &latencies, format!("  mean {hits_word} {mean_hits:.1}"))
        })
        .collect()
}

// ------------------------------------------------------------------------------------ phases

async fn connect_all(daemon: &Daemon, user: &str, n: usize) -> Result<Vec<Arc<DeskClient>>> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let c = DeskClient::connect_expecting(daemon.desk_addr, Some(daemon.fingerprint.clone()), "desk-bench").await?;
        c.login(user, DEMO_PASSWORD).await.with_context(|| format!("login as {user}"))?;
        clients.push(Arc::new(c));
    }
    Ok(clients)
}

/// "what (N in flight)", or "what (1 by 1)".
fn in_flight_label(what: &str, n: usize) -> String {
    if n == 1 {
        format!("{what} (1 by 1)")
    } else {
        format!("{what} ({n} in flight)")
    }
}

/// Creates `count` generated tickets, numbered from `first`, with `in_flight` requests per client.
async fn create_tickets(clients: &[Arc<DeskClient>], in_flight: usize, first: usize, count: usize) -> Result<Load<TicketNo>> {
    run_load("create ticket", clients, in_flight, count, move |c, i| async move {
        let ticket = c.create_ticket(ticket_input(first + i)?).await?;
        Ok::<_, anyhow::Error>(ticket.no)
    })
    .await
}

/// Looks up `count` tickets picked at random (from `seed`) among `nos`, which must not be empty.
async fn get_tickets(clients: &[Arc<DeskClient>], in_flight: usize, count: usize, seed: u64, nos: Arc<Vec<TicketNo>>) -> Result<Load<()>> {
    run_load("get ticket", clients, in_flight, count, move |c, i| {
        let no = nos[Rng::new(seed ^ i as u64).below(nos.len())].clone();
        async move {
            let t = c.get_ticket(&no).await?;
            ensure!(t.no == no, "asked for ticket {no}, got {}", t.no);
            Ok::<_, anyhow::Error>(())
        }
    })
    .await
}

/// Fills the store, then measures creations and lookups under load and one at a time.
/// A moderate load on one connection (a busy hall of desktops), where latency is not queueing.
const MODERATE: usize = 16;

async fn ticket_rows(cfg: &Config, agents: &[Arc<DeskClient>]) -> Result<Vec<Row>> {
    let solo = agents.get(..1).context("no client")?;
    let par = agents.len() * cfg.in_flight;
    eprintln!("creating {} tickets ({par} in flight), then {} one by one …", cfg.tickets, cfg.serial);
    let fill = create_tickets(agents, cfg.in_flight, 0, cfg.tickets).await?;
    let serial = create_tickets(solo, 1, cfg.tickets, cfg.serial).await?;
    let moderate = create_tickets(solo, MODERATE, cfg.tickets + cfg.serial, cfg.serial * 4).await?;
    let mut rows = vec![Row::from_load(&in_flight_label("ticket creations", par), &fill)];
    rows.push(Row::from_load(&in_flight_label("ticket creations", 1), &serial));
    rows.push(Row::from_load(&in_flight_label("ticket creations", MODERATE), &moderate));
    if fill.out.is_empty() {
        return Ok(rows);
    }
    eprintln!("looking up {} tickets ({par} in flight), then {} one by one …", cfg.lookups, cfg.serial);
    let nos = Arc::new(fill.out);
    let load = get_tickets(agents, cfg.in_flight, cfg.lookups, LOOKUP_SEED, nos.clone()).await?;
    rows.push(Row::from_load(&in_flight_label("ticket lookups", par), &load));
    let load = get_tickets(solo, 1, cfg.serial, LOOKUP_SEED ^ 1, nos.clone()).await?;
    rows.push(Row::from_load(&in_flight_label("ticket lookups", 1), &load));
    let load = get_tickets(solo, MODERATE, cfg.serial * 20, LOOKUP_SEED ^ 2, nos).await?;
    rows.push(Row::from_load(&in_flight_label("ticket lookups", MODERATE), &load));
    Ok(rows)
}

async fn fill_articles(cfg: &Config, supervisors: &[Arc<DeskClient>]) -> Result<Row> {
    eprintln!("creating {} knowledge-base articles …", cfg.articles);
    let load = run_load("save article", supervisors, cfg.in_flight, cfg.articles, |c, i| async move {
        let article = article_input(i);
        match c.request(Request::SaveArticle { article }).await? {
            Response::Article { .. } => Ok::<_, anyhow::Error>(()),
            other => Err(anyhow!("unexpected reply to SaveArticle: {other:?}")),
        }
    })
    .await?;
    Ok(Row::from_load(&in_flight_label("article saves", supervisors.len() * cfg.in_flight), &load))
}

async fn ticket_search(cfg: &Config, agent: &Arc<DeskClient>) -> Result<Vec<Row>> {
    eprintln!("running {} ticket full-text searches …", cfg.ticket_queries);
    let queries = query_terms(TICKET_QUERY_SEED, cfg.ticket_queries);
    let (results, elapsed) = run_sequential(agent, &queries, |c, q| async move {
        let query = TicketQuery { text: Some(q.to_owned()), ..TicketQuery::default() };
        Ok::<_, anyhow::Error>(c.search_tickets(query).await?.total)
    })
    .await?;
    Ok(query_rows("ticket text search (1 by 1)", &queries, &results, elapsed, "matches"))
}

async fn kb_search(cfg: &Config, agents: &[Arc<DeskClient>]) -> Result<Vec<Row>> {
    eprintln!("running {} knowledge-base searches …", cfg.kb_queries);
    let queries = query_terms(KB_QUERY_SEED, cfg.kb_queries);
    let Some(first) = agents.first() else { return Ok(Vec::new()) };
    let (results, elapsed) = run_sequential(first, &queries, |c, q| async move {
        Ok::<_, anyhow::Error>(c.search_articles(q, 10).await?.len() as u64)
    })
    .await?;
    let mut rows = query_rows("kb search (1 by 1)", &queries, &results, elapsed, "hits");
    let shared = Arc::new(queries);
    let total = shared.len() * 5;
    let load = run_load("kb search", agents, cfg.in_flight, total, move |c, i| {
        let q = shared[i % shared.len()];
        async move { Ok::<_, anyhow::Error>(c.search_articles(q, 10).await?.len()) }
    })
    .await?;
    rows.push(Row::from_load(&in_flight_label("kb search", agents.len() * cfg.in_flight), &load));
    Ok(rows)
}

// ------------------------------------------------------------------------------------ daemon

/// Builds switchd for this executable's profile first when the bench runs under cargo, so a
/// stale binary is never measured (`BENCH_BUILD_SWITCHD=0` skips it).
fn build_switchd() -> Result<()> {
    let skip = std::env::var("BENCH_BUILD_SWITCHD").is_ok_and(|v| v == "0");
    let Ok(cargo) = std::env::var("CARGO") else { return Ok(()) };
    if skip {
        return Ok(());
    }
    let release = std::env::current_exe()?.parent().is_some_and(|d| d.ends_with("release"));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "switchd", "--bin", "switchd", "--manifest-path"]).arg(manifest);
    if release {
        cmd.arg("--release");
    }
    eprintln!("building switchd ({}) …", if release { "release" } else { "debug" });
    ensure!(cmd.status().context("run cargo build -p switchd")?.success(), "cargo build -p switchd failed");
    Ok(())
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("switchd.log")).unwrap_or_default()
}

/// Warnings and errors switchd logged during the run (at most `max` lines, and how many in all).
fn log_problems(dir: &Path, max: usize) -> (Vec<String>, usize) {
    let log = read_log(dir);
    let bad: Vec<&str> = log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
    (bad.iter().take(max).map(|l| l.to_string()).collect(), bad.len())
}

/// switchd's own count of requests and mean handling time, from its metrics endpoint.
fn server_side(daemon: &Daemon) -> Result<String> {
    let mut sock = std::net::TcpStream::connect(daemon.metrics_addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    sock.read_to_string(&mut body)?;
    let value = |name: &str| -> f64 {
        body.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0.0)
    };
    let (requests, micros) = (value("rexian_desk_requests_total "), value("rexian_desk_request_micros_total "));
    let errors = value("rexian_desk_request_errors_total ");
    Ok(format!(
        "switchd: {requests} requests, {errors} errors, mean handling time {:.2} ms (server side)",
        micros / 1000.0 / requests.max(1.0)
    ))
}

/// Sizes of the database and its write-ahead log, in MiB.
fn db_sizes(dir: &Path) -> String {
    let mib = |name: &str| std::fs::metadata(dir.join(name)).map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0));
    format!("database: rexian.db {:.1} MiB, rexian.db-wal {:.1} MiB", mib("rexian.db"), mib("rexian.db-wal"))
}

// ------------------------------------------------------------------------------------ main

fn main() -> Result<()> {
    let cfg = Config::from_env()?;
    build_switchd()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(cfg))
}

async fn bench(cfg: Config) -> Result<()> {
    let bin = rexian_tests::switchd_bin();
    eprintln!("starting {} …", bin.display());
    let daemon = Daemon::start_demo();
    let rows = run_all(&cfg, &daemon).await?;
    println!();
    println!(
        "desk-bench (switchd over QUIC, {} tickets, {} articles, {} connections x {} in flight)",
        cfg.tickets, cfg.articles, cfg.clients, cfg.in_flight
    );
    println!("switchd binary: {}", bin.display());
    rows.iter().for_each(Row::print);
    print_daemon_facts(&daemon);
    Ok(())
}

fn print_daemon_facts(daemon: &Daemon) {
    match server_side(daemon) {
        Ok(line) => println!("{line}"),
        Err(e) => println!("switchd metrics unavailable: {e}"),
    }
    println!("{} (in {})", db_sizes(&daemon.data_dir), daemon.data_dir.display());
    let (lines, total) = log_problems(&daemon.data_dir, 5);
    println!("switchd log: {total} WARN/ERROR lines");
    lines.iter().for_each(|l| println!("  {l}"));
}

async fn run_all(cfg: &Config, daemon: &Daemon) -> Result<Vec<Row>> {
    let agents = connect_all(daemon, "agent1", cfg.clients).await?;
    let supervisors = connect_all(daemon, "supervisor", cfg.clients).await?;
    let mut rows = ticket_rows(cfg, &agents).await?;
    if let Some(agent) = agents.first() {
        rows.extend(ticket_search(cfg, agent).await?);
    }
    rows.push(fill_articles(cfg, &supervisors).await?);
    rows.extend(kb_search(cfg, &agents).await?);
    Ok(rows)
}
