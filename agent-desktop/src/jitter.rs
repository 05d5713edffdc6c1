//! The receive side's jitter buffer for desk audio (design decision 7), sans-IO: frames go in
//! as they arrive ([`JitterBuffer::push`]), one comes out per 20 ms playout tick
//! ([`JitterBuffer::pop`]), in sequence order, with gaps reported so the decoder conceals them
//! (or rebuilds them from the next packet's FEC).
//!
//! Usage: `push` every datagram of the call; call `pop` exactly once per [`FRAME_MS`] tick of
//! the playout clock. Playout starts once [`JitterBuffer::TARGET_FRAMES`] frames are held, and
//! restarts (refilling) after the stream has dried up for [`JitterBuffer::MAX_CONCEALED`] ticks.
//!
//! [`FRAME_MS`]: rexian_shared::audio::FRAME_MS

use std::collections::BTreeMap;

/// What to play for one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Decode this packet.
    Frame(Vec<u8>),
    /// This frame was lost: conceal it, or rebuild it from `next`'s FEC when present.
    Lost { next: Option<Vec<u8>> },
    /// Nothing to play (not started, or the stream stopped): play silence.
    Silence,
}

#[derive(Debug, Default)]
pub struct JitterBuffer {
    frames: BTreeMap<u64, Vec<u8>>,
    /// Extended sequence number to play next, once playing.
    next: Option<u64>,
    /// The highest extended sequence number seen (to unwrap 16-bit numbers).
    highest: Option<u64>,
    concealed: u32,
}

impl JitterBuffer {
    /// Frames held before playout starts: 40 ms against network jitter.
    pub const TARGET_FRAMES: usize = 2;
    /// Frames held at most; older ones are dropped to bound latency.
    pub const MAX_FRAMES: usize = 15;
    /// Consecutive lost ticks after which playout stops and refills.
    pub const MAX_CONCEALED: u32 = 5;

    pub fn new() -> Self {
        Self::default()
    }

    fn extend(&mut self, seq: u16) -> u64 {
        let Some(high) = self.highest else { return u64::from(seq) + (1 << 16) };
        let base = high & !0xFFFF;
        let candidates = [base.wrapping_sub(1 << 16), base, base + (1 << 16)];
        candidates.into_iter().map(|b| b | u64::from(seq)).min_by_key(|c| c.abs_diff(high)).unwrap_or(high)
    }

    /// Takes one arrived frame. Frames older than the playout point are dropped.
    pub fn push(&mut self, seq: u16, payload: Vec<u8>) {
        let ext = self.extend(seq);
        if self.next.is_some_and(|n| ext < n) {
            return;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.frames.insert(ext, payload);
        while self.frames.len() > Self::MAX_FRAMES {
            if let Some((&first, _)) = self.frames.iter().next() {
                self.frames.remove(&first);
                if let Some(n) = self.next.as_mut() {
                    *n = (*n).max(first + 1);
                }
            }
        }
    }

    /// What to play for this tick.
    pub fn pop(&mut self) -> Playout {
        let next = match self.next {
            Some(n) => n,
            None if self.frames.len() >= Self::TARGET_FRAMES => match self.frames.keys().next() {
                Some(&first) => first,
                None => return Playout::Silence,
            },
            None => return Playout::Silence,
        };
        if let Some(payload) = self.frames.remove(&next) {
            self.next = Some(next + 1);
            self.concealed = 0;
            return Playout::Frame(payload);
        }
        self.concealed += 1;
        if self.concealed > Self::MAX_CONCEALED || self.frames.is_empty() && self.concealed > 1 {
            // The stream paused (or stopped): refill before playing again.
            self.next = None;
            self.concealed = 0;
            return Playout::Silence;
        }
        self.next = Some(next + 1);
        Playout::Lost { next: self.frames.get(&(next + 1)).cloned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8) -> Vec<u8> {
        vec![n]
    }

    #[test]
    fn reorders_waits_for_the_target_and_reports_a_gap_with_the_next_packet() {
        let mut jb = JitterBuffer::new();
        jb.push(10, p(10));
        assert_eq!(jb.pop(), Playout::Silence, "one frame is not enough to start");
        jb.push(12, p(12));
        jb.push(11, p(11));
        jb.push(14, p(14));
        assert_eq!(jb.pop(), Playout::Frame(p(10)));
        assert_eq!(jb.pop(), Playout::Frame(p(11)));
        assert_eq!(jb.pop(), Playout::Frame(p(12)));
        assert_eq!(jb.pop(), Playout::Lost { next: Some(p(14)) });
        assert_eq!(jb.pop(), Playout::Frame(p(14)));
        jb.push(12, p(12));
        assert_eq!(jb.pop(), Playout::Lost { next: None }, "a late frame is dropped; one missing tick is concealed");
        assert_eq!(jb.pop(), Playout::Silence, "then the dry stream refills");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut jb = JitterBuffer::new();
        for s in [65534u16, 65535, 0, 1] {
            jb.push(s, s.to_be_bytes().to_vec());
        }
        let played: Vec<Playout> = (0..4).map(|_| jb.pop()).collect();
        let want: Vec<Playout> = [65534u16, 65535, 0, 1].iter().map(|s| Playout::Frame(s.to_be_bytes().to_vec())).collect();
        assert_eq!(played, want);
    }

    #[test]
    fn latency_is_bounded() {
        let mut jb = JitterBuffer::new();
        for s in 0..100u16 {
            jb.push(s, p(s as u8));
        }
        assert_eq!(jb.pop(), Playout::Frame(p(85)), "only the newest {} frames are kept", JitterBuffer::MAX_FRAMES);
    }
}
