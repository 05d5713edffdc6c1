//! `acd-bench`: how fast the sans-IO ACD core routes, with no I/O around it.
//!
//! 500 agents serve one queue with 1,000 callers waiting (all agents busy). Each round frees
//! one random agent by ending its call and measures the wall time of that `handle_command`
//! plus draining `poll_output` — the time from "agent free" to the new offer (wrap-up is 0 s
//! so the agent is free at once). Offers are answered and callers topped up to 1,000 outside
//! the measured part. The ACD's own clock is virtual (10 ms per round), so skill stages widen
//! and timers fire as they would. Also timed: the seat-board snapshot (SUP-1).
//!
//! Then the same through the ACD's owner task as switchd runs it (`acd::actor`): commands on
//! its channel, offers to the waiting calls' channels, every state change and queue event
//! written to a real SQLite store, the call-waiting figure pushed to every logged-in agent and
//! the seat board to supervisors. Timed: agent free (`CallEnded` sent) → the next caller's task
//! holds the offer; counted: the desk events it produced, and the cost of one seat-board push.
//!
//! ```text
//! cargo run --release -p rexian-bench --bin acd-bench
//! ```
//!
//! Environment: `BENCH_AGENTS` (500), `BENCH_WAITING` (1000), `BENCH_ROUNDS` (20000).

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use switchd::acd::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*, so runs are repeatable without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
    }
}

struct Driver {
    acd: Acd,
    /// The ACD's virtual clock.
    now: Instant,
    offers: Vec<(CallRef, AgentId)>,
    on_call: Vec<(AgentId, CallRef)>,
    next_call: u64,
    rng: Rng,
}

impl Driver {
    fn new(strategy: Strategy, agents: usize) -> Result<Self> {
        let queue = QueueConfig { wrap_up_secs: 0, ..QueueConfig::new("q", strategy) };
        let acd = Acd::new(AcdConfig { queues: vec![queue] })?;
        let mut d = Driver { acd, now: Instant::now(), offers: vec![], on_call: vec![], next_call: 1, rng: Rng(0x5EED) };
        for id in 0..agents as i64 {
            let queues = vec![Membership { queue: QueueId::new("q"), order: 0 }];
            let skills = vec![("s".to_string(), 1 + (id % 5) as u8)];
            d.acd.handle_command(d.now, Command::Login { agent: AgentId(id), queues, skills, not_ready: None })?;
            d.pump();
        }
        Ok(d)
    }

    /// Drains outputs; returns how many offers they held.
    fn pump(&mut self) -> usize {
        let mut offered = 0;
        while let Some(out) = self.acd.poll_output() {
            match out {
                Output::Offer { call, agent, .. } => self.offers.push((call, agent)),
                Output::OfferRingAll { call, agents, .. } => self.offers.push((call, agents[0])),
                _ => continue,
            }
            offered += 1;
        }
        offered
    }

    /// Answers every outstanding offer, fires due timers, and tops callers up to `waiting`.
    fn settle(&mut self, waiting: usize) -> Result<()> {
        if self.acd.poll_timeout().is_some_and(|t| t <= self.now) {
            self.acd.handle_timeout(self.now);
            self.pump();
        }
        while let Some((call, agent)) = self.offers.pop() {
            self.acd.handle_command(self.now, Command::OfferAnswered { call, agent })?;
            self.on_call.push((agent, call));
            self.pump();
        }
        let on_call = self.on_call.len();
        while self.acd.call_count() < waiting + on_call {
            let call = CallRef(self.next_call);
            self.next_call += 1;
            let enter = Command::Enter { call, queue: QueueId::new("q"), priority: 0, caller: "12365".into(), open: true };
            self.acd.handle_command(self.now, enter)?;
            self.pump();
            // Newly offered calls are answered at once, so keep the waiting count exact.
            while let Some((call, agent)) = self.offers.pop() {
                self.acd.handle_command(self.now, Command::OfferAnswered { call, agent })?;
                self.on_call.push((agent, call));
                self.pump();
            }
        }
        Ok(())
    }

    /// Frees one random agent; returns the measured time and whether it produced an offer.
    fn free_one(&mut self) -> Result<Option<(Duration, usize)>> {
        if self.on_call.is_empty() {
            return Ok(None);
        }
        let i = self.rng.below(self.on_call.len());
        let (_, call) = self.on_call.swap_remove(i);
        let started = Instant::now();
        self.acd.handle_command(self.now, Command::CallEnded { call })?;
        let offered = self.pump();
        Ok(Some((started.elapsed(), offered)))
    }
}

struct Figures {
    decisions: usize,
    busy: Duration,
    samples: Vec<Duration>,
}

fn run(strategy: Strategy, agents: usize, waiting: usize, rounds: usize) -> Result<Figures> {
    let mut d = Driver::new(strategy, agents)?;
    d.settle(waiting)?;
    let mut f = Figures { decisions: 0, busy: Duration::ZERO, samples: Vec::with_capacity(rounds) };
    for _ in 0..rounds {
        d.now += Duration::from_millis(10);
        d.settle(waiting)?;
        let Some((took, offered)) = d.free_one()? else { return Err(anyhow!("no agent on a call")) };
        f.busy += took;
        f.decisions += offered;
        if offered > 0 {
            f.samples.push(took);
        }
    }
    Ok(f)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn snapshot_cost(agents: usize, waiting: usize) -> Result<Duration> {
    let mut d = Driver::new(Strategy::LongestIdle, agents)?;
    d.settle(waiting)?;
    let n = 2_000;
    let started = Instant::now();
    let mut total = 0;
    for _ in 0..n {
        total += d.acd.snapshot(d.now).agents.len();
    }
    std::hint::black_box(total);
    Ok(started.elapsed() / n)
}

fn main() -> Result<()> {
    let (agents, waiting, rounds) = (env("BENCH_AGENTS", 500), env("BENCH_WAITING", 1000), env("BENCH_ROUNDS", 20_000));
    println!("acd-bench: {agents} agents, {waiting} callers waiting, {rounds} agents freed per strategy");
    println!("{:<16} {:>14} {:>12} {:>12} {:>12}", "strategy", "decisions/s", "p50 µs", "p99 µs", "max µs");
    let skills = Strategy::Skills {
        skill: "s".into(),
        stages: vec![SkillStage { after_secs: 0, min_level: 4 }, SkillStage { after_secs: 30, min_level: 1 }],
    };
    let strategies = [
        ("longest_idle", Strategy::LongestIdle),
        ("round_robin", Strategy::RoundRobin),
        ("ring_all", Strategy::RingAll),
        ("fewest_calls", Strategy::FewestCalls),
        ("least_talk_time", Strategy::LeastTalkTime),
        ("skills", skills),
    ];
    for (name, strategy) in strategies {
        let mut f = run(strategy, agents, waiting, rounds)?;
        f.samples.sort_unstable();
        let per_sec = f.decisions as f64 / f.busy.as_secs_f64().max(1e-9);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let (p50, p99) = (percentile(&f.samples, 0.50), percentile(&f.samples, 0.99));
        let max = f.samples.last().copied().unwrap_or_default();
        println!("{name:<16} {per_sec:>14.0} {:>12.1} {:>12.1} {:>12.1}", us(p50), us(p99), us(max));
    }
    let snap = snapshot_cost(agents, waiting)?;
    println!("seat-board snapshot ({agents} agents, {waiting} waiting): {:.1} µs each", snap.as_secs_f64() * 1e6);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(through_the_actor(agents, waiting, env("BENCH_ACTOR_ROUNDS", 5_000)))
}

/// The actor phase (see the module docs).
async fn through_the_actor(agents: usize, waiting: usize, rounds: usize) -> Result<()> {
    use std::collections::VecDeque;
    use switchd::acd::actor::{self, AcdSettings, QueueSettings, QueueSignal};
    use switchd::engine::desk_leg::DeskOut;
    let dir = tempfile::tempdir()?;
    let store = switchd::store::Store::open(&dir.path().join("rexian.db"))?;
    let queue = QueueSettings { name: "q".into(), wrap_up_secs: 0, offer_secs: 600, ..QueueSettings::default() };
    let settings = AcdSettings { queues: vec![queue], position_every_secs: 0, ..AcdSettings::default() };
    let (desk_out, mut pushed) = tokio::sync::mpsc::unbounded_channel();
    let acd = actor::spawn(&settings, desk_out, store, 8).map_err(|e| anyhow!("{e}"))?;
    // What the desk server would be sent: counted, and seat boards encoded as it would.
    let counts = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0usize, Duration::ZERO)));
    let seen = counts.clone();
    tokio::spawn(async move {
        while let Some(out) = pushed.recv().await {
            let mut c = seen.lock().unwrap_or_else(|p| p.into_inner());
            match out {
                DeskOut::Supervisors { event } => {
                    let started = Instant::now();
                    let bytes = serde_json::to_vec(&event).map(|b| b.len()).unwrap_or(0);
                    std::hint::black_box(bytes);
                    c.1 += 1;
                    c.2 += started.elapsed();
                }
                _ => c.0 += 1,
            }
        }
    });
    for id in 0..agents as i64 {
        let queues = vec![Membership { queue: QueueId::new("q"), order: 0 }];
        acd.command(Command::Login { agent: AgentId(id), queues, skills: vec![], not_ready: None }).await?;
    }
    let mut queued: VecDeque<(CallRef, tokio::sync::mpsc::UnboundedReceiver<QueueSignal>)> = VecDeque::new();
    let mut on_call: Vec<CallRef> = Vec::new();
    let mut next = 1u64;
    let mut rng = Rng(0xAC7);
    // Fill every agent, then leave `waiting` callers in line.
    while on_call.len() < agents || queued.len() < waiting {
        let call = CallRef(next);
        next += 1;
        let rx = acd.enter(call, None, QueueId::new("q"), format!("1380000{next:04}"), true, 0).await?;
        queued.push_back((call, rx));
        if on_call.len() < agents {
            let (call, mut rx) = queued.pop_front().ok_or_else(|| anyhow!("no caller"))?;
            let Some(QueueSignal::Offer { agents, .. }) = rx.recv().await else { return Err(anyhow!("no offer while filling")) };
            acd.command(Command::OfferAnswered { call, agent: AgentId(agents[0]) }).await?;
            on_call.push(call);
        }
    }
    let before = *counts.lock().unwrap_or_else(|p| p.into_inner());
    let mut samples = Vec::with_capacity(rounds);
    let cpu_before = process_cpu();
    let started = Instant::now();
    for _ in 0..rounds {
        let ended = on_call.swap_remove(rng.below(on_call.len()));
        let (call, mut rx) = queued.pop_front().ok_or_else(|| anyhow!("no caller"))?;
        let t = Instant::now();
        acd.tell(Command::CallEnded { call: ended });
        let Some(QueueSignal::Offer { agents, .. }) = rx.recv().await else { return Err(anyhow!("the head of the line was not offered")) };
        samples.push(t.elapsed());
        acd.tell(Command::OfferAnswered { call, agent: AgentId(agents[0]) });
        on_call.push(call);
        let call = CallRef(next);
        next += 1;
        queued.push_back((call, acd.enter(call, None, QueueId::new("q"), "13800000000".into(), true, 0).await?));
    }
    let wall = started.elapsed();
    let cpu = process_cpu() - cpu_before;
    samples.sort_unstable();
    let after = *counts.lock().unwrap_or_else(|p| p.into_inner());
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("through the actor ({rounds} agents freed, store writing every change):");
    println!(
        "  free → offer at the caller's task: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs; {:.0} rounds/s; CPU {:.0} µs/round",
        us(percentile(&samples, 0.5)),
        us(percentile(&samples, 0.99)),
        us(samples.last().copied().unwrap_or_default()),
        rounds as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / rounds as f64
    );
    let (events, boards, encode) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
    println!("  desk events pushed: {:.1} per round (call-waiting figure to {agents} agents, states)", events as f64 / rounds as f64);
    let per_board = encode.checked_div(boards.max(1) as u32).unwrap_or_default();
    println!("  seat boards pushed: {boards} in {:.1} s (at most one a second), JSON encoding {:.0} µs each", wall.as_secs_f64(), us(per_board));
    // One seat-board push costs the actor a snapshot and the conversion, and the desk server
    // the encoding; it happens at most once a second.
    let snapshot = acd.snapshot().await.ok_or_else(|| anyhow!("the ACD stopped"))?;
    let n = 200;
    let t = Instant::now();
    for _ in 0..n {
        let event = rexian_shared::Event::SeatBoardChanged { board: actor::seat_board(&snapshot) };
        std::hint::black_box(serde_json::to_vec(&event)?);
    }
    let board = t.elapsed() / n;
    println!("  one seat-board push ({agents} agents): {:.0} µs to convert and encode after the snapshot, so {:.2} % of a core at one a second", us(board), (board + snap_cost(&acd).await).as_secs_f64() * 100.0);
    Ok(())
}

/// The wall time of one snapshot through the actor's channel.
async fn snap_cost(acd: &switchd::acd::actor::AcdHandle) -> Duration {
    let t = Instant::now();
    for _ in 0..50 {
        std::hint::black_box(acd.snapshot().await);
    }
    t.elapsed() / 50
}

/// CPU time (user + system) of this process so far.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
