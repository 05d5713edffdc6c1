//! An adaptive jitter buffer for 20 ms audio frames, sans-IO (design decisions 2, 5 and 7).
//!
//! It sits wherever audio is consumed (IVR, recording, mixing, transcoding, desk audio): RTP
//! packets go in as they arrive, and one [`Playout`] comes out per frame tick, in sequence order.
//!
//! How it plays out:
//! - Frames are ordered by extended sequence number ([`SequenceExtender`]), so wrap-around at
//!   65535 is invisible. A missing sequence number at its tick is a [`Playout::Lost`] (the caller
//!   conceals it); a packet arriving after its tick is counted late and dropped.
//! - A talkspurt (the first packet, a marker bit, or a timestamp that jumps by a frame or more
//!   against its sequence number, as after silence suppression) is played at the first tick at
//!   least the target delay after its arrival; before that the ticks are [`Playout::Silence`].
//! - The target delay starts at `initial_delay`. A late packet raises it at once by how late the
//!   packet was (up to `max_delay`); the buffer stretches by emitting one `Lost` per missing frame
//!   of delay. It falls by one frame per `shrink_interval` at most, only when no packet was late
//!   in that interval and every packet arrived with at least one frame plus twice the RFC 3550
//!   A.8 jitter estimate to spare; the buffer then skips one frame.
//! - When the buffer runs dry mid-talkspurt the first `conceal_limit` ticks are `Lost`; after
//!   that the talkspurt is taken as ended and the ticks are `Silence` until audio returns. Audio
//!   that returns without a talkspurt start (a stalled network) is rebuffered: it plays once
//!   the target delay's worth is held or its first packet has waited the target delay, and
//!   anything beyond the target is dropped (counted as skipped) to keep the latency down.
//!   Concealed frames count as lost only once later audio shows they were a gap.
//! - At most `max_packets` packets are held; past that the oldest is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::rtp::SequenceExtender;

/// Played sequence numbers remembered to tell duplicates of played packets from late ones.
const HISTORY: u64 = 1024;

/// Tuning of a [`JitterBuffer`]; delays are rounded up to whole frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate in Hz (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
    /// Audio per packet and per play-out tick (20 ms).
    pub frame_duration: Duration,
    /// Target delay at the start (40 ms).
    pub initial_delay: Duration,
    /// The target delay never shrinks below this (40 ms).
    pub min_delay: Duration,
    /// The target delay never grows above this (200 ms).
    pub max_delay: Duration,
    /// Packets held at most (50, one second of 20 ms frames); the oldest goes first.
    pub max_packets: usize,
    /// The target delay falls by at most one frame per interval (2 s).
    pub shrink_interval: Duration,
    /// Ticks of `Lost` on an empty buffer before the talkspurt is taken as ended (3).
    pub conceal_limit: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            clock_rate: 8000,
            frame_duration: Duration::from_millis(20),
            initial_delay: Duration::from_millis(40),
            min_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(200),
            max_packets: 50,
            shrink_interval: Duration::from_secs(2),
            conceal_limit: 3,
        }
    }
}

/// What to play at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The payload of the next packet in sequence.
    Frame(Vec<u8>),
    /// A frame is missing here (lost, late, or stretching the delay): conceal it (PLC).
    Lost,
    /// Nothing to play: not started, between talkspurts, or the buffer ran dry.
    Silence,
}

/// Counters since creation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets handed to `handle_packet`.
    pub received: u64,
    /// Packets that arrived after their tick and were dropped.
    pub late: u64,
    /// Sequence numbers played out as `Lost` because they were missing.
    pub lost: u64,
    /// Packets already held or played.
    pub duplicate: u64,
    /// Packets dropped because `max_packets` were held.
    pub overflow: u64,
    /// Frames skipped to shrink the delay.
    pub skipped: u64,
    /// `Lost` ticks inserted to grow the delay.
    pub stretched: u64,
    /// The delay being played now.
    pub current_delay: Duration,
    /// The delay being aimed at.
    pub target_delay: Duration,
    /// RFC 3550 A.8 interarrival jitter estimate.
    pub jitter: Duration,
}

#[derive(Debug)]
struct Slot {
    payload: Vec<u8>,
    arrival: Instant,
    /// Arrival time when this packet starts a talkspurt.
    talkspurt: Option<Instant>,
}

#[derive(Debug)]
struct Play {
    next_tick: Instant,
    next_seq: u64,
    /// The delay in frames being played.
    delay: u32,
    /// Inside a talkspurt (frames are flowing), as opposed to waiting for one.
    active: bool,
    /// Consecutive ticks on an empty buffer.
    dry: u32,
    /// `Lost` ticks for sequence numbers not yet received, emitted while dry.
    dry_lost: u64,
    /// A frame or a loss has been played out.
    started: bool,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    late: bool,
    /// Least spare time of a packet before its tick, in microseconds.
    min_slack: Option<i128>,
}

/// An adaptive jitter buffer for one RTP source (one SSRC; make a new one when it changes).
///
/// Usage contract:
/// 1. Call [`handle_packet`](Self::handle_packet) (or
///    [`handle_packet_marked`](Self::handle_packet_marked) when the RTP marker bit is known) for
///    each packet as it arrives, with the arrival time.
/// 2. Whenever `now >= poll_timeout()`, call [`poll_frame`](Self::poll_frame) repeatedly until
///    it returns `None`; each `Some` is one frame tick, in order. After a `handle_packet` the
///    timeout may have changed (it appears after the first packet).
///
/// `poll_timeout` is `None` until the first packet; from then on ticks come every
/// `frame_duration` for as long as the buffer lives (silence included), so a mixer can be
/// clocked by it. The buffer never reads a clock: all time comes from the `now` arguments,
/// which must not go backwards.
#[derive(Debug)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    frame_ts: i64,
    frame_us: i128,
    min_frames: u32,
    max_frames: u32,
    target: u32,
    ext: SequenceExtender,
    /// Highest extended sequence number and its extended timestamp.
    highest: Option<(u64, i64)>,
    epoch: Option<Instant>,
    last_transit: Option<f64>,
    /// Jitter in timestamp units.
    jitter: f64,
    buf: BTreeMap<u64, Slot>,
    played: BTreeSet<u64>,
    /// Sequence numbers played out as `Lost`: the tick and the delay then, to size growth.
    passed: BTreeMap<u64, (Instant, u32)>,
    play: Option<Play>,
    window: Option<Window>,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer with `cfg`; out-of-range values are clamped (frames to 0.1 ms–1 s, delays to
    /// whole frames with `min <= initial <= max`, at least one packet held).
    pub fn new(mut cfg: JitterConfig) -> Self {
        cfg.clock_rate = cfg.clock_rate.max(1);
        cfg.frame_duration = cfg
            .frame_duration
            .clamp(Duration::from_micros(100), Duration::from_secs(1));
        cfg.max_packets = cfg.max_packets.max(1);
        let frame_us = cfg.frame_duration.as_micros() as i128;
        let frames = |d: Duration| {
            (d.as_micros() as i128 + frame_us - 1)
                .div_euclid(frame_us)
                .clamp(0, 10_000) as u32
        };
        let max_frames = frames(cfg.max_delay).max(1);
        let min_frames = frames(cfg.min_delay).min(max_frames);
        let target = frames(cfg.initial_delay).clamp(min_frames, max_frames);
        let frame_ts = ((u128::from(cfg.clock_rate) * cfg.frame_duration.as_nanos())
            / 1_000_000_000)
            .max(1) as i64;
        Self {
            cfg,
            frame_ts,
            frame_us,
            min_frames,
            max_frames,
            target,
            ext: SequenceExtender::new(),
            highest: None,
            epoch: None,
            last_transit: None,
            jitter: 0.0,
            buf: BTreeMap::new(),
            played: BTreeSet::new(),
            passed: BTreeMap::new(),
            play: None,
            window: None,
            stats: JitterStats::default(),
        }
    }

    /// A packet arrived at `now` (marker bit unknown: talkspurts are found by timestamp jumps).
    pub fn handle_packet(&mut self, now: Instant, seq: u16, timestamp: u32, payload: Vec<u8>) {
        self.handle_packet_marked(now, seq, timestamp, false, payload);
    }

    /// A packet arrived at `now`; `marker` is the RTP marker bit (start of a talkspurt).
    pub fn handle_packet_marked(
        &mut self,
        now: Instant,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: Vec<u8>,
    ) {
        self.stats.received += 1;
        let Some(s) = self.ext.extend(seq) else {
            self.stats.late += 1;
            return;
        };
        if self.buf.contains_key(&s) || self.played.contains(&s) {
            self.stats.duplicate += 1;
            return;
        }
        let ext_ts = match self.highest {
            None => i64::from(timestamp),
            Some((_, hts)) => hts + i64::from(timestamp.wrapping_sub(hts as u32) as i32),
        };
        self.update_jitter(now, ext_ts);
        let newest = self.highest.is_none_or(|(hs, _)| s > hs);
        let talkspurt = match self.highest {
            None => true,
            Some((hs, hts)) if s > hs => {
                let expected = hts + (s - hs) as i64 * self.frame_ts;
                marker || (ext_ts - expected).abs() >= self.frame_ts
            }
            Some(_) => false,
        };
        if newest {
            self.highest = Some((s, ext_ts));
        }
        let Some(play) = self.play.as_mut() else {
            self.play = Some(Play {
                next_tick: now,
                next_seq: s,
                delay: self.target,
                active: false,
                dry: 0,
                dry_lost: 0,
                started: false,
            });
            self.window = Some(Window {
                start: now,
                late: false,
                min_slack: None,
            });
            self.insert(
                s,
                Slot {
                    payload,
                    arrival: now,
                    talkspurt: Some(now),
                },
            );
            return;
        };
        if s < play.next_seq {
            let phantom = play.next_seq - s;
            let early = !play.started || (talkspurt && phantom <= play.dry_lost);
            if !play.active && early {
                // Reordered before the first frame played, or the sender went quiet and we
                // concealed frames it never sent: start the talkspurt here instead, on the
                // earliest arrival's schedule.
                play.dry_lost = 0;
                play.next_seq = s;
                let held = self
                    .buf
                    .values_mut()
                    .next()
                    .and_then(|slot| slot.talkspurt.take());
                let start = held.map_or(now, |h| h.min(now));
                self.insert(
                    s,
                    Slot {
                        payload,
                        arrival: now,
                        talkspurt: Some(start),
                    },
                );
            } else {
                self.stats.late += 1;
                self.played.insert(s);
                // The delay that would have caught it: the delay at its tick plus how late it is.
                let needed = match self.passed.get(&s) {
                    Some(&(due, delay)) => {
                        let late_us = signed_us(now, due).max(0) + 1;
                        let late = (late_us + self.frame_us - 1) / self.frame_us;
                        u64::from(delay) + late as u64
                    }
                    None => u64::from(play.delay) + (play.next_seq - s),
                };
                if needed <= 2 * u64::from(self.max_frames) {
                    let needed = u32::try_from(needed).unwrap_or(u32::MAX);
                    self.target = self.target.max(needed).min(self.max_frames);
                }
                if let Some(w) = self.window.as_mut() {
                    w.late = true;
                }
            }
            return;
        }
        if !talkspurt && play.active {
            let due = play.next_tick
                + self.cfg.frame_duration
                    * u32::try_from(s - play.next_seq)
                        .unwrap_or(u32::MAX / 2)
                        .min(1_000_000);
            let slack = signed_us(due, now);
            if let Some(w) = self.window.as_mut() {
                w.min_slack = Some(w.min_slack.map_or(slack, |m| m.min(slack)));
            }
        }
        self.insert(
            s,
            Slot {
                payload,
                arrival: now,
                talkspurt: talkspurt.then_some(now),
            },
        );
    }

    fn insert(&mut self, s: u64, slot: Slot) {
        self.buf.insert(s, slot);
        while self.buf.len() > self.cfg.max_packets {
            self.buf.pop_first();
            self.stats.overflow += 1;
        }
    }

    /// RFC 3550 A.8: J += (|D| - J) / 16, D the change in transit time, in timestamp units.
    fn update_jitter(&mut self, now: Instant, ext_ts: i64) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival =
            now.saturating_duration_since(epoch).as_secs_f64() * f64::from(self.cfg.clock_rate);
        let transit = arrival - ext_ts as f64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            // A talkspurt restart or a wild packet must not poison the estimate.
            if d.is_finite() && d < f64::from(self.cfg.clock_rate) * 10.0 {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
    }

    /// The next play-out tick, or `None` before the first packet.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.play.as_ref().map(|p| p.next_tick)
    }

    /// The output for the next tick if it is due at `now`; call until `None`.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Playout> {
        let tick = self.play.as_ref()?.next_tick;
        if now < tick {
            return None;
        }
        self.adapt(tick);
        let out = self.tick(tick);
        if let Some(play) = self.play.as_mut() {
            play.next_tick = tick + self.cfg.frame_duration;
            let keep = |s: &u64| s + HISTORY >= play.next_seq;
            while self.played.first().is_some_and(|s| !keep(s)) {
                self.played.pop_first();
            }
            while self.passed.first_key_value().is_some_and(|(s, _)| !keep(s)) {
                self.passed.pop_first();
            }
            self.stats.current_delay = self.cfg.frame_duration * play.delay;
        }
        self.stats.target_delay = self.cfg.frame_duration * self.target;
        Some(out)
    }

    /// Lowers the target once per shrink interval when every packet had a frame to spare.
    fn adapt(&mut self, tick: Instant) {
        let Some(w) = self.window.as_mut() else {
            return;
        };
        if tick.saturating_duration_since(w.start) < self.cfg.shrink_interval {
            return;
        }
        let margin =
            self.frame_us + (2.0 * self.jitter / f64::from(self.cfg.clock_rate) * 1e6) as i128;
        if !w.late && w.min_slack.is_some_and(|m| m >= margin) && self.target > self.min_frames {
            self.target -= 1;
        }
        *w = Window {
            start: tick,
            late: false,
            min_slack: None,
        };
    }

    fn tick(&mut self, tick: Instant) -> Playout {
        let target = self.target;
        let frame = self.cfg.frame_duration;
        let max_gap = self.cfg.max_packets as u64;
        let Some(play) = self.play.as_mut() else {
            return Playout::Silence;
        };
        // Drop anything that slipped below the play-out point.
        while self
            .buf
            .first_key_value()
            .is_some_and(|(&s, _)| s < play.next_seq)
        {
            self.buf.pop_first();
        }
        let first = self.buf.iter_mut().next();
        // A jump far ahead (sender restart, or a flood that pushed out the real audio): resync.
        if let Some((&s, slot)) = first {
            if s > play.next_seq.saturating_add(max_gap) {
                play.next_seq = s;
                play.active = false;
                slot.talkspurt.get_or_insert(tick);
            }
        }
        if !play.active {
            let Some((&s, slot)) = self.buf.iter().next() else {
                return Playout::Silence;
            };
            if let Some(start) = slot.talkspurt {
                // A new talkspurt plays the target delay after its first packet arrived.
                if tick < start + frame * target {
                    play.delay = target;
                    return Playout::Silence;
                }
                self.stats.lost += s - play.next_seq;
                play.next_seq = s;
            } else {
                // Audio resumed after a stall without a talkspurt start: rebuffer until the
                // target delay's worth is held (a frame more, as the newest is part-way through
                // its first tick) or the oldest has waited the target delay, and drop what is
                // beyond it.
                let span = |buf: &BTreeMap<u64, Slot>, next: u64| {
                    buf.last_key_value().map_or(0, |(&l, _)| l + 1 - next)
                };
                let want = u64::from(target) + 1;
                if span(&self.buf, play.next_seq) < want && tick < slot.arrival + frame * target {
                    return Playout::Silence;
                }
                while span(&self.buf, play.next_seq) > want {
                    let Some((s, _)) = self.buf.pop_first() else {
                        break;
                    };
                    self.played.insert(s);
                    self.stats.skipped += 1;
                    self.stats.lost += s - play.next_seq;
                    play.next_seq = s + 1;
                }
            }
            play.delay = target;
            play.active = true;
        }
        play.started = true;
        if play.delay < target {
            play.delay += 1;
            self.stats.stretched += 1;
            return Playout::Lost;
        }
        if play.delay > target && self.buf.contains_key(&(play.next_seq + 1)) {
            if self.buf.remove(&play.next_seq).is_some() {
                self.played.insert(play.next_seq);
            }
            self.stats.skipped += 1;
            play.next_seq += 1;
            play.delay -= 1;
        }
        if !self.buf.is_empty() {
            // What was concealed on an empty buffer turned out to be real losses.
            self.stats.lost += play.dry_lost;
            play.dry_lost = 0;
            play.dry = 0;
        }
        if let Some(slot) = self.buf.remove(&play.next_seq) {
            self.played.insert(play.next_seq);
            play.next_seq += 1;
            return Playout::Frame(slot.payload);
        }
        if self.buf.is_empty() {
            play.dry += 1;
            if play.dry > self.cfg.conceal_limit {
                // Dry for longer than concealment covers: the talkspurt ended or the network
                // stalled; silence until audio returns (see the rebuffering above).
                play.active = false;
                return Playout::Silence;
            }
            // Counted in `lost` only once later audio shows these were gaps, not the end.
            play.dry_lost += 1;
        } else {
            self.stats.lost += 1;
        }
        self.passed.insert(play.next_seq, (tick, play.delay));
        play.next_seq += 1;
        Playout::Lost
    }

    /// Counters and the current delays.
    pub fn stats(&self) -> JitterStats {
        let mut s = self.stats.clone();
        s.target_delay = self.cfg.frame_duration * self.target;
        s.jitter =
            Duration::from_secs_f64((self.jitter / f64::from(self.cfg.clock_rate)).clamp(0.0, 1e6));
        s
    }

    /// Packets held now.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no packet is held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// `a - b` in microseconds, negative when `a` is earlier.
fn signed_us(a: Instant, b: Instant) -> i128 {
    if a >= b {
        a.duration_since(b).as_micros() as i128
    } else {
        -(b.duration_since(a).as_micros() as i128)
    }
}

#[cfg(test)]
#[path = "jitter_tests.rs"]
mod tests;
