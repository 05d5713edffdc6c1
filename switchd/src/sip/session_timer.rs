//! Session timers (RFC 4028), sans-IO: reading `Session-Expires`, `Min-SE` and the option
//! tags of a request or response, the UAS's choice of interval and refresher, and the timer
//! that says when the refresher must refresh (half the interval) and when the other side
//! gives the session up (the interval less `min(32 s, interval/3)`, §10).
//!
//! Dialogs ([`super::dialog::UasDialog`], [`super::uac::UacCall`]) own a [`SessionTimer`]
//! and act on what [`SessionTimer::handle_timeout`] returns; the TU ([`super::ua::Calls`])
//! sends the refresh (a re-INVITE with the same SDP) or the BYE.
//!
//! The `refresher` parameter names the UAC or the UAS *of the transaction it appears in* (a
//! request and its response), not of the dialog-creating INVITE: when the callee refreshes,
//! its re-INVITE says `refresher=uac`. A [`SessionTimer`] therefore keeps only whether we
//! refresh, and [`Refresher::is_us`] / [`SessionTimer::header`] translate per transaction.

use std::time::{Duration, Instant};

use rsip::{Header, Headers};

/// Our session-timer settings (`[telephony] session_expires_secs`, `session_min_se_secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// The interval we ask for (outbound INVITEs) or grant when the caller asks for none:
    /// 1800 s by default (RFC 4028 §4 recommends it).
    pub expires: u32,
    /// The shortest interval we accept: shorter requests get `422` with this as `Min-SE`.
    /// 90 s by default (the RFC's floor; tests lower it).
    pub min_se: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { expires: 1800, min_se: 90 }
    }
}

/// Which side refreshes the session (the `refresher` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The UAC of the dialog-creating INVITE.
    Uac,
    /// Its UAS.
    Uas,
}

impl Refresher {
    /// Whether this value names us, in a transaction where we are the UAC (our request, or
    /// the response to it) or the UAS (the peer's request, or our response to it).
    pub fn is_us(self, we_are_uac: bool) -> bool {
        (self == Refresher::Uac) == we_are_uac
    }

    /// The value naming us (`us`) or the peer, in a transaction where we are the UAC or UAS.
    pub fn naming(us: bool, we_are_uac: bool) -> Self {
        if us == we_are_uac {
            Refresher::Uac
        } else {
            Refresher::Uas
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// A `Session-Expires` header value: `delta-seconds [;refresher=uac|uas]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    /// The interval in seconds.
    pub delta: u32,
    /// The refresher, when the sender named one.
    pub refresher: Option<Refresher>,
}

/// The values of the headers called `name` (or its compact form `compact`), in order;
/// typed and untyped headers alike (rsip knows some of these names and not others).
fn values<'a>(headers: &'a Headers, name: &'a str, compact: Option<&'a str>) -> impl Iterator<Item = String> + 'a {
    headers.iter().filter_map(move |h| {
        let text = h.to_string();
        let (n, v) = text.split_once(':')?;
        let n = n.trim();
        (n.eq_ignore_ascii_case(name) || compact.is_some_and(|c| n.eq_ignore_ascii_case(c))).then(|| v.trim().to_owned())
    })
}

/// Whether a `Supported` (`k`) or `Require` header lists `tag`.
pub fn has_option_tag(headers: &Headers, header: &str, tag: &str) -> bool {
    let compact = header.eq_ignore_ascii_case("supported").then_some("k");
    values(headers, header, compact).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(tag)))
}

/// The `Session-Expires` (`x`) header, if present and well-formed.
pub fn session_expires(headers: &Headers) -> Option<SessionExpires> {
    let value = values(headers, "Session-Expires", Some("x")).next()?;
    let mut parts = value.split(';');
    let delta = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("refresher") {
            return None;
        }
        match v.trim().to_ascii_lowercase().as_str() {
            "uac" => Some(Refresher::Uac),
            "uas" => Some(Refresher::Uas),
            _ => None,
        }
    });
    Some(SessionExpires { delta, refresher })
}

/// The `Min-SE` header's seconds, if present and well-formed.
pub fn min_se(headers: &Headers) -> Option<u32> {
    values(headers, "Min-SE", None).next()?.split(';').next()?.trim().parse().ok()
}

/// A `Session-Expires: N;refresher=…` header.
pub fn session_expires_header(delta: u32, refresher: Refresher) -> Header {
    Header::Other("Session-Expires".into(), format!("{delta};refresher={}", refresher.as_str()))
}

/// A `Session-Expires: N` header without a refresher: a UAC's INVITE lets the UAS choose
/// (RFC 4028 §7.1).
pub fn session_expires_header_bare(delta: u32) -> Header {
    Header::Other("Session-Expires".into(), delta.to_string())
}

/// A `Min-SE: N` header.
pub fn min_se_header(secs: u32) -> Header {
    Header::Other("Min-SE".into(), secs.to_string())
}

/// What a UAS makes of a session-timer request (RFC 4028 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasChoice {
    /// No session timer: the caller neither asked for one nor supports them.
    None,
    /// The interval asked for is below our minimum: answer `422` with `Min-SE: min_se`.
    TooSmall {
        /// Our minimum.
        min_se: u32,
    },
    /// Run a timer of `delta` seconds refreshed by `refresher`; the 2xx carries
    /// `Session-Expires` and, when `require`, `Require: timer` (the caller supports timers).
    Timer {
        /// The interval.
        delta: u32,
        /// Who refreshes.
        refresher: Refresher,
        /// Whether the 2xx must say `Require: timer`.
        require: bool,
    },
}

/// The UAS's choice for an INVITE (or a refresh re-INVITE/UPDATE) with `headers`.
///
/// * `Session-Expires` below our `min_se` → `TooSmall`.
/// * `Session-Expires` present → that interval (lowered to our `expires` when larger, but
///   never below the caller's `Min-SE` or our minimum); the caller's refresher, else the
///   caller when it supports timers, else us (§9).
/// * absent, but the caller supports timers → our `expires` (at least its `Min-SE`),
///   refreshed by the caller.
/// * neither → `None`.
pub fn uas_choice(headers: &Headers, config: SessionConfig) -> UasChoice {
    let supported = has_option_tag(headers, "Supported", "timer") || has_option_tag(headers, "Require", "timer");
    let floor = min_se(headers).unwrap_or(0).max(config.min_se);
    match session_expires(headers) {
        Some(se) if se.delta < config.min_se => UasChoice::TooSmall { min_se: config.min_se },
        Some(se) => {
            let refresher = match (se.refresher, supported) {
                // A caller that does not support timers cannot refresh (§9).
                (_, false) => Refresher::Uas,
                (Some(r), true) => r,
                (None, true) => Refresher::Uac,
            };
            UasChoice::Timer { delta: se.delta.min(config.expires.max(floor)), refresher, require: supported }
        }
        None if supported => UasChoice::Timer { delta: config.expires.max(floor), refresher: Refresher::Uac, require: true },
        None => UasChoice::None,
    }
}

/// What a running timer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    /// We are the refresher and half the interval has passed: send a refresh.
    Refresh,
    /// The other side is the refresher and no refresh came in time: end the session (BYE).
    Expired,
}

/// One session's timer. Restart it with [`Self::restart`] whenever a refresh succeeds
/// (our 2xx to the peer's refresh, or the 2xx to ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTimer {
    delta: u32,
    we_refresh: bool,
    deadline: Instant,
    /// Our refresh is out and unanswered: the next deadline is the session's end.
    refreshing: bool,
}

impl SessionTimer {
    /// A timer of `delta` seconds refreshed by us or the peer, started at `now`. An interval
    /// of 0 (a peer's nonsense) counts as 1 s so the timer never fires in a loop.
    pub fn new(now: Instant, delta: u32, we_refresh: bool) -> Self {
        let mut t = Self { delta: delta.max(1), we_refresh, deadline: now, refreshing: false };
        t.restart(now);
        t
    }

    /// The interval in seconds.
    pub fn delta(&self) -> u32 {
        self.delta
    }

    /// Whether we are the refresher.
    pub fn we_refresh(&self) -> bool {
        self.we_refresh
    }

    /// The `Session-Expires` header describing this timer, for a message of a transaction
    /// in which we are the UAC (`we_are_uac`) or the UAS.
    pub fn header(&self, we_are_uac: bool) -> Header {
        session_expires_header(self.delta, Refresher::naming(self.we_refresh, we_are_uac))
    }

    /// A refresh succeeded at `now`, possibly with a new interval or refresher.
    pub fn renegotiate(&mut self, now: Instant, delta: u32, we_refresh: bool) {
        self.delta = delta.max(1);
        self.we_refresh = we_refresh;
        self.restart(now);
    }

    /// A refresh succeeded at `now`: count the interval from here.
    pub fn restart(&mut self, now: Instant) {
        self.refreshing = false;
        let interval = Duration::from_secs(u64::from(self.delta));
        self.deadline = if self.we_refresh {
            now + interval / 2
        } else {
            // §10: the BYE goes min(32, SE/3) seconds before the session would expire.
            let margin = Duration::from_secs(u64::from((self.delta / 3).min(32)));
            now + interval.saturating_sub(margin)
        };
    }

    /// When the timer fires.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline
    }

    /// What to do at `now`, if the timer is due. A due refresh is reported once: the timer
    /// then waits for the refresh's outcome (or the session's end, [`Self::restart`] on success)
    /// until the session would expire.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<TimerAction> {
        if now < self.deadline {
            return None;
        }
        if self.we_refresh && !self.refreshing {
            // Until the refresh is answered, the session ends when a passive side would end
            // it (half the interval later, less the §10 margin).
            let half = Duration::from_secs(u64::from(self.delta)) / 2;
            let margin = Duration::from_secs(u64::from((self.delta / 3).min(32)));
            self.deadline = now + half.saturating_sub(margin).max(Duration::from_secs(1));
            self.refreshing = true;
            return Some(TimerAction::Refresh);
        }
        Some(TimerAction::Expired)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (n, v) in lines {
            h.push(Header::Other((*n).into(), (*v).into()));
        }
        h
    }

    #[test]
    fn headers_are_read_in_long_and_compact_forms() {
        let h = headers(&[("x", "600;refresher=uas"), ("k", "100rel, timer"), ("Min-SE", "120")]);
        assert_eq!(session_expires(&h), Some(SessionExpires { delta: 600, refresher: Some(Refresher::Uas) }));
        assert!(has_option_tag(&h, "Supported", "timer"));
        assert!(!has_option_tag(&h, "Require", "timer"));
        assert_eq!(min_se(&h), Some(120));
        let typed = rsip::Request::try_from(
            "INVITE sip:a@b SIP/2.0\r\nSupported: timer\r\nSession-Expires: 1800\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert!(has_option_tag(&typed.headers, "Supported", "timer"));
        assert_eq!(session_expires(&typed.headers), Some(SessionExpires { delta: 1800, refresher: None }));
        assert_eq!(session_expires(&headers(&[("Session-Expires", "soon")])), None);
    }

    #[test]
    fn the_uas_refuses_short_intervals_and_picks_the_refresher() {
        let cfg = SessionConfig::default();
        assert_eq!(uas_choice(&headers(&[("Session-Expires", "60"), ("Supported", "timer")]), cfg), UasChoice::TooSmall { min_se: 90 });
        assert_eq!(
            uas_choice(&headers(&[("Session-Expires", "90;refresher=uas"), ("Supported", "timer")]), cfg),
            UasChoice::Timer { delta: 90, refresher: Refresher::Uas, require: true }
        );
        // No refresher named: the caller refreshes when it can, else we do (and no Require).
        assert_eq!(
            uas_choice(&headers(&[("Session-Expires", "300"), ("Supported", "timer")]), cfg),
            UasChoice::Timer { delta: 300, refresher: Refresher::Uac, require: true }
        );
        assert_eq!(
            uas_choice(&headers(&[("Session-Expires", "300;refresher=uac")]), cfg),
            UasChoice::Timer { delta: 300, refresher: Refresher::Uas, require: false }
        );
        // Too long an interval is lowered to ours, never below the caller's Min-SE.
        assert_eq!(
            uas_choice(&headers(&[("Session-Expires", "7200"), ("Min-SE", "3600"), ("Supported", "timer")]), cfg),
            UasChoice::Timer { delta: 3600, refresher: Refresher::Uac, require: true }
        );
        assert_eq!(
            uas_choice(&headers(&[("Supported", "timer")]), cfg),
            UasChoice::Timer { delta: 1800, refresher: Refresher::Uac, require: true }
        );
        assert_eq!(uas_choice(&headers(&[]), cfg), UasChoice::None);
        let low = SessionConfig { expires: 1800, min_se: 2 };
        assert!(matches!(uas_choice(&headers(&[("Session-Expires", "6")]), low), UasChoice::Timer { delta: 6, .. }));
    }

    #[test]
    fn the_refresher_refreshes_at_half_and_the_other_side_expires_before_the_end() {
        let t0 = Instant::now();
        let mut ours = SessionTimer::new(t0, 90, true);
        // Our re-INVITE says we (its UAC) refresh; our 2xx to the peer's says its UAS does.
        assert_eq!(ours.header(true).to_string(), "Session-Expires: 90;refresher=uac");
        assert_eq!(ours.header(false).to_string(), "Session-Expires: 90;refresher=uas");
        assert!(Refresher::Uas.is_us(false) && Refresher::Uac.is_us(true) && !Refresher::Uac.is_us(false));
        assert_eq!(ours.poll_timeout(), t0 + Duration::from_secs(45));
        assert_eq!(ours.handle_timeout(t0 + Duration::from_secs(44)), None);
        assert_eq!(ours.handle_timeout(t0 + Duration::from_secs(45)), Some(TimerAction::Refresh));
        // Unanswered, the session is given up like a passive side would: 45 - 30 s later.
        assert_eq!(ours.poll_timeout(), t0 + Duration::from_secs(60));
        assert_eq!(ours.handle_timeout(t0 + Duration::from_secs(60)), Some(TimerAction::Expired));
        // Answered, the timer counts again from the answer, as the refresher.
        let mut ours = SessionTimer::new(t0, 90, true);
        ours.handle_timeout(t0 + Duration::from_secs(45));
        ours.renegotiate(t0 + Duration::from_secs(46), 90, true);
        assert_eq!(ours.poll_timeout(), t0 + Duration::from_secs(91));

        let mut theirs = SessionTimer::new(t0, 1800, false);
        assert!(!theirs.we_refresh());
        // min(32, 1800/3) = 32 s before the end.
        assert_eq!(theirs.poll_timeout(), t0 + Duration::from_secs(1768));
        theirs.restart(t0 + Duration::from_secs(900));
        assert_eq!(theirs.handle_timeout(t0 + Duration::from_secs(1768)), None);
        assert_eq!(theirs.handle_timeout(t0 + Duration::from_secs(2668)), Some(TimerAction::Expired));
        // A short interval: SE/3 before the end.
        let short = SessionTimer::new(t0, 6, false);
        assert_eq!(short.poll_timeout(), t0 + Duration::from_secs(4));
        let ours = SessionTimer::new(t0, 6, true);
        assert_eq!(ours.poll_timeout(), t0 + Duration::from_secs(3));
        // A zero interval never makes the timer spin.
        assert_eq!(SessionTimer::new(t0, 0, true).delta(), 1);
    }
}
