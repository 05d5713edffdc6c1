//! RFC 4733 telephone-events: the 4-byte payload, and a receiver that reports each key press once.
//!
//! A sender repeats an event in many packets (every 50 ms or so while the key is held, with a
//! growing duration), all with the event's start timestamp, and sends the final "end" packet three
//! times. Losing any of them must neither drop nor double a digit, so the receiver keys events by
//! timestamp, not by packet.

use super::event_digit;

/// Why a telephone-event payload cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The payload is shorter than the 4 bytes of one event.
    #[error("telephone-event payload of {0} bytes, 4 needed")]
    TooShort(usize),
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0–9, 10 `*`, 11 `#`, 12–15 `A`–`D`, 16 flash, others per the registry.
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in −dBm0, 0–63 (higher is quieter).
    pub volume: u8,
    /// Duration so far in timestamp units (samples at 8 kHz) from the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first 4 bytes; trailing bytes are ignored, as some gateways pad payloads.
    pub fn parse(payload: &[u8]) -> Result<Self, EventError> {
        let [event, flags, d0, d1] = match payload.get(..4) {
            Some(&[a, b, c, d]) => [a, b, c, d],
            _ => return Err(EventError::TooShort(payload.len())),
        };
        Ok(TelephoneEvent { event, end: flags & 0x80 != 0, volume: flags & 0x3F, duration: u16::from_be_bytes([d0, d1]) })
    }

    /// The 4 payload bytes; the reserved bit is zero and a volume above 63 is clamped to 63.
    pub fn to_bytes(&self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        [self.event, if self.end { 0x80 } else { 0 } | self.volume.min(63), d0, d1]
    }

    /// The DTMF digit this event stands for, if it is one.
    pub fn digit(&self) -> Option<char> {
        event_digit(self.event)
    }
}

/// The event being received: what distinguishes its repeats from the next event.
#[derive(Debug, Clone, Copy)]
struct Current {
    timestamp: u32,
    event: u8,
    duration: u16,
    ended: bool,
}

/// Turns the telephone-event packets of one RTP stream into digits, each exactly once.
///
/// Feed every packet of the negotiated telephone-event payload type, in arrival order, to
/// [`EventReceiver::handle_packet`]; it returns the digit on the first packet of a new event
/// (so the IVR reacts at key-down, not 3 packets after key-up) and `None` for repeats, end
/// retransmissions, late packets of earlier events, non-digit events and malformed payloads.
/// A long press split into segments (RFC 4733 §2.5.1.3, when the duration would overflow) is
/// recognised by its segment starting where the previous one ended, and stays one digit.
#[derive(Debug, Clone, Default)]
pub struct EventReceiver {
    current: Option<Current>,
}

impl EventReceiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one packet's RTP timestamp and payload; returns a digit when a new key press starts.
    pub fn handle_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = TelephoneEvent::parse(payload).ok()?;
        let next = Current { timestamp, event: ev.event, duration: ev.duration, ended: ev.end };
        let Some(cur) = self.current else {
            self.current = Some(next);
            return ev.digit();
        };
        if timestamp == cur.timestamp {
            self.update(cur, ev);
            return None;
        }
        // Wrapping comparison: a timestamp behind the current event belongs to an earlier one.
        if (timestamp.wrapping_sub(cur.timestamp) as i32) < 0 {
            return None;
        }
        let continues = !cur.ended
            && ev.event == cur.event
            && timestamp == cur.timestamp.wrapping_add(u32::from(cur.duration));
        self.current = Some(next);
        if continues {
            None
        } else {
            ev.digit()
        }
    }

    /// Records a repeat of the current event: its duration grows and the end may arrive.
    fn update(&mut self, cur: Current, ev: TelephoneEvent) {
        let duration = cur.duration.max(ev.duration);
        self.current = Some(Current { duration, ended: cur.ended || ev.end, ..cur });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent { event, end, volume: 10, duration }.to_bytes()
    }

    /// A key press as a sender emits it: packets every 400 samples, then the end packet 3 times.
    fn press(rx: &mut EventReceiver, ts: u32, event: u8, packets: u16) -> Vec<char> {
        let mut out = Vec::new();
        for i in 1..=packets {
            out.extend(rx.handle_packet(ts, &payload(event, false, i * 400)));
        }
        for _ in 0..3 {
            out.extend(rx.handle_packet(ts, &payload(event, true, (packets + 1) * 400)));
        }
        out
    }

    #[test]
    fn payload_round_trips() {
        let ev = TelephoneEvent { event: 11, end: true, volume: 10, duration: 1600 };
        assert_eq!(ev.to_bytes(), [11, 0x8A, 0x06, 0x40]);
        assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Ok(ev));
        assert_eq!(ev.digit(), Some('#'));
        // The reserved bit is ignored on reading.
        assert_eq!(TelephoneEvent::parse(&[11, 0xCA, 0x06, 0x40]), Ok(ev));
        assert_eq!(TelephoneEvent { volume: 200, ..ev }.to_bytes()[1], 0xBF);
    }

    #[test]
    fn short_payloads_are_errors() {
        for len in 0..4 {
            assert_eq!(TelephoneEvent::parse(&[0; 3][..len]), Err(EventError::TooShort(len)));
        }
        let mut rx = EventReceiver::new();
        assert_eq!(rx.handle_packet(0, &[1, 2]), None);
    }

    #[test]
    fn each_press_is_reported_once_at_its_start() {
        let mut rx = EventReceiver::new();
        assert_eq!(rx.handle_packet(1000, &payload(1, false, 400)), Some('1'));
        assert_eq!(press(&mut rx, 1000, 1, 5), Vec::<char>::new());
        assert_eq!(press(&mut rx, 9000, 1, 5), vec!['1'], "same digit again, new timestamp");
        assert_eq!(press(&mut rx, 17000, 12, 2), vec!['A']);
    }

    #[test]
    fn a_lost_start_still_gives_the_digit_from_the_end_packets() {
        let mut rx = EventReceiver::new();
        assert_eq!(rx.handle_packet(500, &payload(5, true, 800)), Some('5'));
        assert_eq!(rx.handle_packet(500, &payload(5, true, 800)), None);
        assert_eq!(rx.handle_packet(500, &payload(5, true, 800)), None);
    }

    #[test]
    fn late_packets_of_an_earlier_event_are_ignored() {
        let mut rx = EventReceiver::new();
        assert_eq!(press(&mut rx, 4000, 3, 2), vec!['3']);
        assert_eq!(rx.handle_packet(8000, &payload(4, false, 400)), Some('4'));
        assert_eq!(rx.handle_packet(4000, &payload(3, true, 1200)), None);
    }

    #[test]
    fn timestamps_wrap() {
        let mut rx = EventReceiver::new();
        assert_eq!(press(&mut rx, u32::MAX - 100, 7, 2), vec!['7']);
        assert_eq!(press(&mut rx, 3000, 8, 2), vec!['8']);
    }

    #[test]
    fn a_long_press_split_into_segments_is_one_digit() {
        let mut rx = EventReceiver::new();
        assert_eq!(rx.handle_packet(0, &payload(0, false, 65535)), Some('0'));
        assert_eq!(rx.handle_packet(65535, &payload(0, false, 400)), None);
        assert_eq!(rx.handle_packet(65535, &payload(0, true, 800)), None);
        assert_eq!(rx.handle_packet(66335, &payload(0, false, 400)), Some('0'), "after the end");
    }

    #[test]
    fn non_digit_events_give_nothing() {
        let mut rx = EventReceiver::new();
        assert_eq!(press(&mut rx, 100, 16, 3), Vec::<char>::new());
        assert_eq!(press(&mut rx, 9000, 9, 3), vec!['9']);
    }
}
