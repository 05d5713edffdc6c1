//! RFC 3261 §17 timer values (Table 4 of §A), kept in a config struct so tests can vary them.

use std::time::Duration;

/// Base timer values for the transaction layer.
///
/// Every transaction timer is derived from these: timer A/E/G start at `t1` and double
/// (E and G cap at `t2`), timers B/F/H/J are `64 * t1`, D is 32 s, I and K are `t4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, 5 s.
    pub t4: Duration,
    /// How long a server INVITE transaction waits for the TU before sending
    /// `100 Trying` on its own (§17.2.1: "200 ms").
    pub trying: Duration,
    /// Timer D on unreliable transports ("at least 32 s").
    pub d: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            trying: Duration::from_millis(200),
            d: Duration::from_secs(32),
        }
    }
}

impl Timers {
    /// `64 * T1`: timers B, F, H and J.
    pub fn t1_x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_rfc3261() {
        let t = Timers::default();
        assert_eq!(t.t1, Duration::from_millis(500));
        assert_eq!(t.t2, Duration::from_secs(4));
        assert_eq!(t.t4, Duration::from_secs(5));
        assert_eq!(t.t1_x64(), Duration::from_secs(32));
    }
}
