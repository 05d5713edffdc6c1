//! Hold and mute of a desk call (AGT-1) and the consultation of an attended transfer (AGT-2),
//! as plain logic over 20 ms frames: who hears whom while the agent holds, mutes or consults.
//! The call task feeds [`Controls::mix`] each tick; nothing here reads a clock or a socket.

use std::sync::Arc;

use super::rtp_leg::FRAME_SAMPLES;

/// The hold and mute state of one desk conversation and the music's place in its loop.
///
/// Set with [`Controls::set_held`] / [`Controls::set_muted`] (each says whether it changed, so
/// the desk is told only of changes); every media tick call [`Controls::mix`] once with what
/// each party said, and send each party its frame. [`Controls::reset`] when the desk leaves.
pub struct Controls {
    held: bool,
    muted: bool,
    music: Arc<[i16]>,
    at: usize,
}

/// What each party hears in one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mixed {
    pub to_caller: Vec<i16>,
    pub to_agent: Vec<i16>,
    /// For a third party (a conference, or the party being consulted).
    pub to_third: Vec<i16>,
}

impl Controls {
    /// Not held, not muted; `music` is what the caller hears on hold (silence when empty).
    pub fn new(music: Arc<[i16]>) -> Self {
        Self { held: false, muted: false, music, at: 0 }
    }

    /// Holds or resumes; true when that changed something.
    pub fn set_held(&mut self, held: bool) -> bool {
        let changed = self.held != held;
        self.held = held;
        changed
    }

    /// Mutes or unmutes the agent; true when that changed something.
    pub fn set_muted(&mut self, muted: bool) -> bool {
        let changed = self.muted != muted;
        self.muted = muted;
        changed
    }

    pub fn held(&self) -> bool {
        self.held
    }

    pub fn muted(&self) -> bool {
        self.muted
    }

    /// Back to talking (the desk left the call).
    pub fn reset(&mut self) {
        self.held = false;
        self.muted = false;
    }

    /// One tick: `caller`, `agent` and `third` are what each said. The agent's voice reaches
    /// nobody while muted. Held, the caller hears the music and nobody hears the caller; the
    /// agent and a third party (the one consulted) still hear each other. Otherwise everyone
    /// hears everyone else.
    pub fn mix(&mut self, caller: &[i16], agent: &[i16], third: Option<&[i16]>) -> Mixed {
        let silence = [0i16; FRAME_SAMPLES];
        let agent: &[i16] = if self.muted { &silence } else { agent };
        let third = third.unwrap_or(&silence);
        if self.held {
            return Mixed { to_caller: self.music_frame(), to_agent: frame(third, &silence), to_third: frame(agent, &silence) };
        }
        Mixed { to_caller: frame(agent, third), to_agent: frame(caller, third), to_third: frame(caller, agent) }
    }

    /// The next 20 ms of the music, looping.
    fn music_frame(&mut self) -> Vec<i16> {
        if self.music.is_empty() {
            return vec![0; FRAME_SAMPLES];
        }
        let mut out = Vec::with_capacity(FRAME_SAMPLES);
        while out.len() < FRAME_SAMPLES {
            let take = (FRAME_SAMPLES - out.len()).min(self.music.len() - self.at);
            out.extend_from_slice(&self.music[self.at..self.at + take]);
            self.at = (self.at + take) % self.music.len();
        }
        out
    }
}

/// `a` and `b` mixed (saturating) into one 20 ms frame.
fn frame(a: &[i16], b: &[i16]) -> Vec<i16> {
    (0..FRAME_SAMPLES)
        .map(|i| a.get(i).copied().unwrap_or(0).saturating_add(b.get(i).copied().unwrap_or(0)))
        .collect()
}

/// The notes of the built-in music on hold (Hz): a slow tune on the C major pentatonic
/// scale, none of them near the 1 kHz and 440 Hz test tones.
pub const MELODY_NOTES: [f64; 5] = [523.25, 587.33, 659.26, 783.99, 880.0];

/// The built-in music on hold, rendered at 8 kHz: a soft, slow pentatonic tune of about
/// ten seconds that loops without a click (each note fades in and out; a rest closes the
/// loop). Quiet enough (peak about −12 dBFS) not to startle a caller.
pub fn melody() -> Vec<i16> {
    // Indexes into MELODY_NOTES and lengths in eighths of a second.
    const TUNE: [(usize, u32); 16] = [
        (2, 4), (1, 2), (0, 2), (1, 4), (2, 4),
        (3, 4), (2, 2), (1, 2), (0, 8),
        (1, 4), (2, 2), (3, 2), (4, 4), (3, 4),
        (2, 4), (0, 8),
    ];
    let mut out = Vec::new();
    for (note, eighths) in TUNE {
        let freq = MELODY_NOTES[note];
        let len = (1000 * eighths) as usize; // 8,000 samples a second, an eighth is 1,000
        let step = std::f64::consts::TAU * freq / 8000.0;
        for n in 0..len {
            let t = n as f64 / len as f64;
            // A soft attack, then a gentle decay, silent at both ends.
            let envelope = (t * 20.0).min(1.0) * (1.0 - t).powf(0.8);
            let phase = step * n as f64;
            let v = 7000.0 * envelope * (phase.sin() + 0.15 * (2.0 * phase).sin()) / 1.15;
            out.push(v.round() as i16);
        }
    }
    out.resize(out.len() + 4000, 0);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tone(freq: f64) -> Vec<i16> {
        (0..FRAME_SAMPLES).map(|i| (8000.0 * (std::f64::consts::TAU * freq * i as f64 / 8000.0).sin()) as i16).collect()
    }

    fn energy(frame: &[i16]) -> f64 {
        frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
    }

    #[test]
    fn talking_everyone_hears_the_others_and_muted_the_agent_reaches_nobody() {
        let (caller, agent, third) = (tone(440.0), tone(1000.0), tone(2000.0));
        let mut c = Controls::new(melody().into());
        let m = c.mix(&caller, &agent, None);
        assert_eq!((m.to_caller, m.to_agent), (agent.clone(), caller.clone()));
        let m = c.mix(&caller, &agent, Some(&third));
        assert_eq!(m.to_third, frame(&caller, &agent));
        assert!(c.set_muted(true));
        assert!(!c.set_muted(true), "no change the second time");
        let m = c.mix(&caller, &agent, Some(&third));
        assert_eq!((m.to_caller, m.to_third), (third.clone(), caller.clone()));
        assert_eq!(m.to_agent, frame(&caller, &third), "muted, the agent still hears");
    }

    #[test]
    fn held_the_caller_hears_the_music_and_is_not_heard_and_the_consulted_party_talks_with_the_agent() {
        let (caller, agent, third) = (tone(440.0), tone(1000.0), tone(2000.0));
        let music = melody();
        let mut c = Controls::new(music.clone().into());
        assert!(c.set_held(true));
        let first = c.mix(&caller, &agent, None);
        assert_eq!(first.to_caller, music[..FRAME_SAMPLES].to_vec());
        assert_eq!(energy(&first.to_agent), 0.0, "the agent hears nothing of the caller");
        let m = c.mix(&caller, &agent, Some(&third));
        assert_eq!(m.to_caller, music[FRAME_SAMPLES..2 * FRAME_SAMPLES].to_vec(), "the music goes on");
        assert_eq!((m.to_agent, m.to_third), (third, agent.clone()));
        c.reset();
        assert!(!c.held() && !c.muted());
        assert_eq!(c.mix(&caller, &agent, None).to_caller, agent);
    }

    #[test]
    fn the_music_loops_and_is_soft() {
        let music = melody();
        let seconds = music.len() as f64 / 8000.0;
        assert!((8.0..14.0).contains(&seconds), "{seconds} s");
        let peak = music.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((4000..9000).contains(&peak), "peak {peak}");
        assert_eq!((music[0], music[music.len() - 1]), (0, 0), "no click where it loops");
        let mut c = Controls::new(music.clone().into());
        c.set_held(true);
        let frames = music.len().div_ceil(FRAME_SAMPLES) + 1;
        let played: Vec<i16> = (0..frames).flat_map(|_| c.mix(&[], &[], None).to_caller).collect();
        assert_eq!(&played[music.len()..music.len() + 100], &music[..100], "it starts again");
    }
}
