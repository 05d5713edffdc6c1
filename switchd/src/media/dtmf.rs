//! DTMF, both ways callers send it: RFC 4733 telephone-events in RTP ([`event`]) and tones in
//! the audio itself ([`inband`]), for carriers and old PBXs that do not negotiate events.
//! Both produce the same digits: `0`–`9`, `*`, `#`, `A`–`D`.

pub mod event;
pub mod inband;

pub use event::{EventReceiver, TelephoneEvent};
pub use inband::InbandDetector;

/// The sixteen DTMF digits in RFC 4733 event-code order (codes 0–15).
const DIGITS: [char; 16] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D'];

/// The digit for an RFC 4733 event code; `None` for flash (16) and the other non-digit events.
pub fn event_digit(code: u8) -> Option<char> {
    DIGITS.get(usize::from(code)).copied()
}

/// The RFC 4733 event code for a digit (lower-case `a`–`d` accepted).
pub fn digit_event(digit: char) -> Option<u8> {
    let d = digit.to_ascii_uppercase();
    DIGITS.iter().position(|&c| c == d).and_then(|i| u8::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_digits_map_both_ways() {
        for code in 0..16u8 {
            let d = event_digit(code).expect("a digit");
            assert_eq!(digit_event(d), Some(code));
        }
        assert_eq!(event_digit(10), Some('*'));
        assert_eq!(event_digit(11), Some('#'));
        assert_eq!(event_digit(16), None);
        assert_eq!(digit_event('b'), Some(13));
        assert_eq!(digit_event('x'), None);
    }
}
