//! `acd-bench`: how fast the sans-IO ACD core routes, with no I/O around it.
//!
//! 500 agents serve one queue with 1,000 callers waiting (all agents busy). Each round frees
//! one random agent by ending its call and measures the wall time of that `handle_command`
//! plus draining `poll_output` — the time from "agent free" to the new offer (wrap-up is 0 s
//! so the agent is free at once). Offers are answered and callers topped up to 1,000 outside
//! the measured part. The ACD's own clock is virtual (10 ms per round), so skill stages widen
//! and timers fire as they would. Also timed: the seat-board snapshot (SUP-1).
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
    Ok(())
}
