//! Simulation tests of the jitter buffer on a virtual clock, through a tiny seeded network model
//! (delay with jitter, reordering, loss, duplication), in the spirit of str0m's netem.

use super::*;

use crate::test_rng::Rng;

const FRAME: Duration = Duration::from_millis(20);

/// One packet as the sender emits it; `index` is carried in the payload to check the order.
#[derive(Debug, Clone)]
struct Sent {
    at: Duration,
    index: u32,
    seq: u16,
    ts: u32,
    marker: bool,
}

/// A 20 ms PCMA-like stream of `n` packets from `seq0`/`ts0`, one every 20 ms.
fn stream(n: u32, seq0: u16, ts0: u32) -> Vec<Sent> {
    (0..n)
        .map(|i| Sent {
            at: FRAME * i,
            index: i,
            seq: seq0.wrapping_add(i as u16),
            ts: ts0.wrapping_add(i * 160),
            marker: i == 0,
        })
        .collect()
}

/// The network: a base delay, uniform jitter on top, and seeded loss, duplication, reordering.
#[derive(Debug, Clone, Default)]
struct Net {
    base: Duration,
    jitter: Duration,
    loss: f64,
    dup: f64,
    /// Chance a packet is held back by `reorder_by` (it then arrives after later ones).
    reorder: f64,
    reorder_by: Duration,
}

#[derive(Debug, Clone)]
struct Arrival {
    at: Duration,
    sent: Sent,
}

/// Arrivals in time order (ties in send order), and the indices the network dropped.
fn deliver(sent: &[Sent], net: &Net, rng: &mut Rng) -> (Vec<Arrival>, BTreeSet<u32>) {
    let mut out = Vec::new();
    let mut dropped = BTreeSet::new();
    for s in sent {
        if rng.chance(net.loss) {
            dropped.insert(s.index);
            continue;
        }
        let copies = if rng.chance(net.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let jitter = net.jitter.mul_f64(rng.unit());
            let held = if rng.chance(net.reorder) {
                net.reorder_by
            } else {
                Duration::ZERO
            };
            out.push(Arrival {
                at: s.at + net.base + jitter + held,
                sent: s.clone(),
            });
        }
    }
    out.sort_by_key(|a| a.at);
    (out, dropped)
}

/// One play-out tick: when, and what came out (the frame's index for a frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    Frame(u32),
    Lost,
    Silence,
}

/// Drives the buffer on a virtual clock until `end`, honouring the usage contract: packets are
/// handed over as they arrive, and `poll_frame` is drained whenever `poll_timeout` is due.
fn run(
    jb: &mut JitterBuffer,
    t0: Instant,
    arrivals: &[Arrival],
    end: Duration,
) -> Vec<(Duration, Out)> {
    let mut out = Vec::new();
    let mut k = 0;
    loop {
        let next_arrival = arrivals.get(k).map(|a| t0 + a.at);
        let now = match (next_arrival, jb.poll_timeout()) {
            (Some(a), Some(t)) => a.min(t),
            (Some(a), None) => a,
            (None, Some(t)) => t,
            (None, None) => break,
        };
        if now > t0 + end {
            break;
        }
        while let Some(a) = arrivals.get(k).filter(|a| t0 + a.at <= now) {
            let s = &a.sent;
            jb.handle_packet_marked(now, s.seq, s.ts, s.marker, s.index.to_le_bytes().to_vec());
            assert!(jb.len() <= jb.cfg.max_packets, "memory bound");
            k += 1;
        }
        loop {
            let tick = jb.poll_timeout();
            let Some(p) = jb.poll_frame(now) else { break };
            let tick = tick.expect("a tick was due").duration_since(t0);
            let o = match p {
                Playout::Frame(b) => {
                    Out::Frame(u32::from_le_bytes(b[..4].try_into().expect("index")))
                }
                Playout::Lost => Out::Lost,
                Playout::Silence => Out::Silence,
            };
            out.push((tick, o));
        }
        assert!(jb.poll_frame(now).is_none());
    }
    out
}

fn frames(out: &[(Duration, Out)]) -> Vec<u32> {
    out.iter()
        .filter_map(|(_, o)| {
            if let Out::Frame(i) = o {
                Some(*i)
            } else {
                None
            }
        })
        .collect()
}

/// Frame indices strictly increase: nothing played twice or out of order.
fn assert_in_order(out: &[(Duration, Out)]) {
    let f = frames(out);
    assert!(f.windows(2).all(|w| w[0] < w[1]), "out of order: {f:?}");
}

#[test]
fn steady_stream_plays_every_frame_in_order_with_constant_delay() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    assert_eq!(jb.poll_timeout(), None);
    assert_eq!(jb.poll_frame(t0), None, "nothing before the first packet");
    let net = Net {
        base: Duration::from_millis(30),
        ..Net::default()
    };
    let (arrivals, _) = deliver(&stream(500, 1000, 0), &net, &mut Rng::new(1));
    let out = run(
        &mut jb,
        t0,
        &arrivals,
        Duration::from_secs(10) + Duration::from_millis(69),
    );
    assert_eq!(frames(&out), (0..500).collect::<Vec<_>>());
    // Two silent ticks while the first 40 ms fill, then frame i at its send time + 30 + 40 ms.
    assert_eq!(
        out[..2].iter().map(|o| o.1).collect::<Vec<_>>(),
        [Out::Silence, Out::Silence]
    );
    for (tick, o) in &out {
        if let Out::Frame(i) = o {
            assert_eq!(*tick, FRAME * *i + Duration::from_millis(70), "frame {i}");
        }
    }
    let s = jb.stats();
    assert_eq!(
        (
            s.received,
            s.late,
            s.lost,
            s.duplicate,
            s.skipped,
            s.stretched
        ),
        (500, 0, 0, 0, 0, 0)
    );
    assert_eq!(s.current_delay, Duration::from_millis(40));
    assert_eq!(s.jitter, Duration::ZERO);
}

#[test]
fn reordering_within_the_delay_window_is_put_back_in_order() {
    for seed in 0..20 {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let net = Net {
            base: Duration::from_millis(30),
            jitter: Duration::from_millis(10),
            reorder: 0.2,
            reorder_by: Duration::from_millis(25),
            ..Net::default()
        };
        let (arrivals, _) = deliver(&stream(500, 7, 99), &net, &mut Rng::new(seed));
        let swapped = arrivals
            .windows(2)
            .filter(|w| w[0].sent.index > w[1].sent.index)
            .count();
        assert!(swapped > 50, "the network did reorder ({swapped})");
        let out = run(&mut jb, t0, &arrivals, Duration::from_secs(11));
        assert_eq!(frames(&out), (0..500).collect::<Vec<_>>(), "seed {seed}");
        let s = jb.stats();
        assert_eq!(
            (s.late, s.lost, s.stretched, s.skipped),
            (0, 0, 0, 0),
            "seed {seed}"
        );
        assert!(s.jitter > Duration::ZERO);
    }
}

#[test]
fn five_percent_loss_comes_out_as_exactly_the_lost_frames() {
    for seed in 0..20 {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let net = Net {
            base: Duration::from_millis(25),
            loss: 0.05,
            ..Net::default()
        };
        let mut sent = stream(1000, 60_000, 5);
        let last = sent.pop().expect("non-empty");
        let first = sent.remove(0);
        let (mut arrivals, dropped) = deliver(&sent, &net, &mut Rng::new(seed));
        // Keep the first and last packets so the stream's ends are known.
        arrivals.insert(
            0,
            Arrival {
                at: net.base,
                sent: first,
            },
        );
        arrivals.push(Arrival {
            at: last.at + net.base,
            sent: last,
        });
        assert!(
            (25..=80).contains(&dropped.len()),
            "about 5% ({})",
            dropped.len()
        );
        let out = run(&mut jb, t0, &arrivals, Duration::from_secs(21));
        let played: Vec<Out> = out
            .iter()
            .map(|o| o.1)
            .skip_while(|o| *o == Out::Silence)
            .take(1000)
            .collect();
        let expected: Vec<Out> = (0..1000)
            .map(|i| {
                if dropped.contains(&i) {
                    Out::Lost
                } else {
                    Out::Frame(i)
                }
            })
            .collect();
        assert_eq!(played, expected, "seed {seed}");
        assert_eq!(jb.stats().lost, dropped.len() as u64);
        assert_eq!(jb.stats().late, 0);
    }
}

#[test]
fn a_delay_spike_makes_packets_late_then_the_delay_grows_and_later_none_are_late() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let net = Net {
        base: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        ..Net::default()
    };
    let (mut arrivals, _) = deliver(&stream(2000, 0, 0), &net, &mut Rng::new(3));
    // A 120 ms stall at 2 s: everything sent meanwhile arrives in one burst after it.
    let stall_end = Duration::from_millis(2140);
    for a in arrivals
        .iter_mut()
        .filter(|a| (100..106).contains(&a.sent.index))
    {
        a.at = stall_end;
    }
    arrivals.sort_by_key(|a| a.at);
    let out = run(&mut jb, t0, &arrivals, Duration::from_secs(3));
    let s = jb.stats();
    assert!(s.late > 0, "the stall made packets late: {s:?}");
    let grown = s.target_delay;
    assert!(grown > Duration::from_millis(40), "the delay grew: {s:?}");
    assert!(grown <= Duration::from_millis(200));
    assert_in_order(&out);
    let late_after_spike = s.late;
    let rest = run(
        &mut jb,
        t0,
        &arrivals[arrivals
            .iter()
            .position(|a| a.at > Duration::from_secs(3))
            .expect("more")..],
        Duration::from_secs(32),
    );
    assert_in_order(&rest);
    let s = jb.stats();
    assert_eq!(
        s.late, late_after_spike,
        "no more late packets after the growth: {s:?}"
    );
    // With low jitter the delay creeps back down, a frame per shrink interval.
    assert_eq!(s.target_delay, Duration::from_millis(40), "{s:?}");
    assert_eq!(s.current_delay, Duration::from_millis(40), "{s:?}");
    assert!(s.skipped > 0);
}

#[test]
fn sequence_numbers_and_timestamps_wrap() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let net = Net {
        base: Duration::from_millis(30),
        jitter: Duration::from_millis(15),
        reorder: 0.1,
        reorder_by: Duration::from_millis(21),
        ..Net::default()
    };
    let sent = stream(400, 65_400, u32::MAX - 160 * 150);
    let (arrivals, _) = deliver(&sent, &net, &mut Rng::new(9));
    let out = run(&mut jb, t0, &arrivals, Duration::from_secs(9));
    assert_eq!(frames(&out), (0..400).collect::<Vec<_>>());
    let s = jb.stats();
    assert_eq!((s.late, s.lost, s.stretched), (0, 0, 0));
}

#[test]
fn duplicates_are_dropped_whether_held_or_already_played() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let net = Net {
        base: Duration::from_millis(30),
        jitter: Duration::from_millis(10),
        dup: 1.0,
        ..Net::default()
    };
    let (mut arrivals, _) = deliver(&stream(300, 500, 0), &net, &mut Rng::new(4));
    // And a third copy of every tenth packet long after it was played.
    let replays: Vec<Arrival> = arrivals
        .iter()
        .filter(|a| a.sent.index % 10 == 0)
        .map(|a| Arrival {
            at: a.at + Duration::from_millis(300),
            sent: a.sent.clone(),
        })
        .collect();
    let replayed = replays.len() / 2;
    arrivals.extend(replays);
    arrivals.sort_by_key(|a| a.at);
    let out = run(&mut jb, t0, &arrivals, Duration::from_secs(7));
    assert_eq!(frames(&out), (0..300).collect::<Vec<_>>());
    let s = jb.stats();
    assert_eq!(s.duplicate, 300 + 2 * replayed as u64, "{s:?}");
    assert_eq!((s.late, s.lost), (0, 0));
}

#[test]
fn a_flood_of_future_packets_stays_within_the_memory_bound() {
    let t0 = Instant::now();
    let cfg = JitterConfig {
        max_packets: 20,
        ..JitterConfig::default()
    };
    let mut jb = JitterBuffer::new(cfg);
    let mut rng = Rng::new(77);
    let mut now = t0;
    for i in 0..20_000u32 {
        now += Duration::from_micros(100);
        if i % 200 == 0 {
            // The genuine stream, one packet per 20 ms.
            let n = i / 200;
            jb.handle_packet(now, n as u16, n * 160, vec![1; 160]);
        } else {
            let seq = 1000 + rng.below(30_000) as u16;
            jb.handle_packet(now, seq, rng.next() as u32, vec![0; 160]);
        }
        assert!(jb.len() <= 20);
        while jb.poll_frame(now).is_some() {}
    }
    let s = jb.stats();
    assert_eq!(s.received, 20_000);
    assert!(
        s.overflow > 0 && s.target_delay <= Duration::from_millis(200),
        "{s:?}"
    );
}

#[test]
fn silence_suppression_starts_a_new_talkspurt_without_counting_losses() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    // 1 s of speech, 1 s of nothing (sequence numbers continue, timestamps jump), 1 s of speech.
    let mut sent = stream(50, 10, 1000);
    sent.extend(stream(50, 60, 1000 + 100 * 160).into_iter().map(|mut s| {
        s.at += Duration::from_secs(2);
        s.index += 50;
        s.marker = false; // found by the timestamp jump alone
        s
    }));
    let net = Net {
        base: Duration::from_millis(30),
        jitter: Duration::from_millis(5),
        ..Net::default()
    };
    let (arrivals, _) = deliver(&sent, &net, &mut Rng::new(5));
    let out = run(&mut jb, t0, &arrivals, Duration::from_secs(4));
    assert_eq!(frames(&out), (0..100).collect::<Vec<_>>());
    let s = jb.stats();
    assert_eq!((s.late, s.lost), (0, 0), "{s:?}");
    // The gap is concealed for three ticks, then silent; the second talkspurt starts 40 ms after
    // its first packet arrived.
    let gap: Vec<Out> = out
        .iter()
        .map(|o| o.1)
        .skip_while(|o| *o != Out::Frame(49))
        .skip(1)
        .take(4)
        .collect();
    assert_eq!(gap, [Out::Lost, Out::Lost, Out::Lost, Out::Silence]);
    let first = arrivals
        .iter()
        .find(|a| a.sent.index == 50)
        .expect("sent")
        .at;
    let played = out
        .iter()
        .find(|o| o.1 == Out::Frame(50))
        .expect("played")
        .0;
    assert!(
        played >= first + Duration::from_millis(40) && played < first + Duration::from_millis(60)
    );
}

#[test]
fn nothing_panics_for_a_thousand_random_networks() {
    for seed in 0..1000u64 {
        let mut rng = Rng::new(seed);
        let cfg = JitterConfig {
            clock_rate: [8000, 16000, 48000][rng.below(3) as usize],
            frame_duration: Duration::from_millis([10, 20, 30][rng.below(3) as usize]),
            initial_delay: Duration::from_millis(rng.below(120)),
            min_delay: Duration::from_millis(rng.below(80)),
            max_delay: Duration::from_millis(rng.below(400)),
            max_packets: 1 + rng.below(60) as usize,
            shrink_interval: Duration::from_millis(rng.below(3000)),
            conceal_limit: rng.below(6) as u32,
        };
        let fd = cfg.frame_duration;
        let per = cfg.clock_rate / 1000 * fd.as_millis() as u32;
        let mut jb = JitterBuffer::new(cfg);
        let net = Net {
            base: Duration::from_millis(rng.below(200)),
            jitter: Duration::from_millis(rng.below(300)),
            loss: rng.unit() * 0.3,
            dup: rng.unit() * 0.2,
            reorder: rng.unit() * 0.3,
            reorder_by: Duration::from_millis(rng.below(500)),
        };
        let seq0 = rng.next() as u16;
        let ts0 = rng.next() as u32;
        let mut sent: Vec<Sent> = (0..300u32)
            .map(|i| Sent {
                at: fd * i,
                index: i,
                seq: seq0.wrapping_add(i as u16),
                ts: ts0.wrapping_add(i * per),
                marker: false,
            })
            .collect();
        // Talkspurts, wild timestamps and wild sequence numbers now and then.
        for s in sent.iter_mut() {
            match rng.below(100) {
                0 => s.marker = true,
                1 => s.ts = rng.next() as u32,
                2 => s.seq = rng.next() as u16,
                3 => s.at += Duration::from_secs(1),
                _ => {}
            }
        }
        let (arrivals, _) = deliver(&sent, &net, &mut rng);
        let t0 = Instant::now();
        let out = run(&mut jb, t0, &arrivals, Duration::from_secs(12));
        let s = jb.stats();
        assert!(
            s.target_delay <= Duration::from_secs(1),
            "seed {seed}: {s:?}"
        );
        // Without wild sequence numbers, frames never repeat or go backwards.
        if !sent
            .iter()
            .enumerate()
            .any(|(i, s)| s.seq != seq0.wrapping_add(i as u16))
        {
            assert_in_order(&out);
        }
        assert!(!out.is_empty(), "seed {seed}");
        // One output per tick, ticks exactly a frame apart.
        assert!(out.windows(2).all(|w| w[1].0 - w[0].0 == fd), "seed {seed}");
    }
}

#[test]
fn sustained_jitter_above_the_initial_delay_grows_the_delay_until_nothing_is_late() {
    for seed in 0..10 {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let net = Net {
            base: Duration::from_millis(40),
            jitter: Duration::from_millis(90),
            ..Net::default()
        };
        let (mut arrivals, _) = deliver(&stream(3000, 3, 3), &net, &mut Rng::new(seed));
        // The first packet comes through fastest, so the schedule it sets is too tight.
        let first = arrivals
            .iter()
            .position(|a| a.sent.index == 0)
            .expect("sent");
        arrivals[first].at = net.base;
        arrivals.sort_by_key(|a| a.at);
        let half = arrivals
            .iter()
            .position(|a| a.at > Duration::from_secs(30))
            .expect("more");
        let out = run(&mut jb, t0, &arrivals[..half], Duration::from_secs(30));
        assert_in_order(&out);
        let s = jb.stats();
        assert!(s.late > 0, "seed {seed}: {s:?}");
        assert!(
            s.target_delay >= Duration::from_millis(100),
            "seed {seed}: {s:?}"
        );
        // Uniform jitter of width 90 ms: mean |D| is 30 ms, the estimate sits near it.
        assert!(
            s.jitter > Duration::from_millis(15) && s.jitter < Duration::from_millis(45),
            "seed {seed}: {s:?}"
        );
        let rest = run(&mut jb, t0, &arrivals[half..], Duration::from_secs(60));
        assert_in_order(&rest);
        let late_in_second_half = jb.stats().late - s.late;
        assert_eq!(late_in_second_half, 0, "seed {seed}: {:?}", jb.stats());
        assert!(jb.stats().target_delay <= Duration::from_millis(200));
    }
}

#[test]
fn a_lone_packet_after_a_stall_still_plays() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut sent = stream(10, 0, 0);
    // Packets 10-12 are lost (and concealed); 13 reaches us alone, half a second late, and
    // nothing follows: it is played after waiting the target delay.
    sent.push(Sent {
        at: FRAME * 13 + Duration::from_millis(500),
        index: 13,
        seq: 13,
        ts: 13 * 160,
        marker: false,
    });
    let (arrivals, _) = deliver(
        &sent,
        &Net {
            base: Duration::from_millis(30),
            ..Net::default()
        },
        &mut Rng::new(1),
    );
    let out = run(&mut jb, t0, &arrivals, Duration::from_secs(3));
    assert_eq!(frames(&out), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13]);
    let arrived = Duration::from_millis(260 + 500 + 30);
    let played = out
        .iter()
        .find(|o| o.1 == Out::Frame(13))
        .expect("played")
        .0;
    assert!(
        played >= arrived + Duration::from_millis(40)
            && played < arrived + Duration::from_millis(60),
        "{played:?}"
    );
    assert_eq!(jb.stats().lost, 3);
}
