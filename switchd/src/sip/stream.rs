//! SIP over streams (RFC 3261 §18): what TCP and TLS share, sans-IO.
//!
//! * [`Transport`] and [`ConnId`] — which transport a message came on and, for streams, which
//!   connection (responses go back on it, §18.2.2).
//! * [`StreamFramer`] — cuts a byte stream into messages by the end of the headers and the
//!   Content-Length (mandatory on streams, §18.3), answers RFC 5626 CRLFCRLF pings, bounds the
//!   buffer and tells when the connection has been idle too long.
//! * [`ConnectionLimiter`] — how many connections in total and per source IP address.
//!
//! The tokio side (listeners and one task per connection) is in [`super::tcp`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The transport a SIP message travels on (and, in a trunk's configuration, the one switchd
/// reaches the trunk by: `udp`, `tcp`, `tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Streams deliver in order or fail: §17 turns the retransmission timers off for them.
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The Via transport token (§20.42): `UDP`, `TCP`, `TLS`.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The URI `transport` parameter for a Contact (§19.1.1); `None` for UDP, the default.
    pub fn uri_param(self) -> Option<&'static str> {
        match self {
            Transport::Udp => None,
            Transport::Tcp => Some("tcp"),
            Transport::Tls => Some("tls"),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.via_token())
    }
}

/// One stream connection, numbered by the driver (never reused while the driver runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    /// Connections switchd opens itself are numbered by the core from here up, accepted ones
    /// by the listeners from 1: two counters in two places that must never hand out the same
    /// id, without sharing state across the sans-IO boundary.
    pub const DIALED_BASE: u64 = 1 << 62;
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn{}", self.0)
    }
}

/// Bounds of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerLimits {
    /// Longest message, headers and body (the datagram limit, 64 KiB, by default): a longer
    /// one closes the connection, so a peer cannot make us buffer without end.
    pub max_message: usize,
    /// A connection silent this long (neither side sent anything) is closed.
    pub idle: Duration,
}

impl Default for FramerLimits {
    fn default() -> Self {
        Self {
            max_message: super::udp::MAX_DATAGRAM,
            idle: Duration::from_secs(600),
        }
    }
}

/// Why a stream cannot be read on. Each is fatal for the connection: without a trustworthy
/// length there is no finding where the next message starts (§18.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// §18.3: Content-Length is mandatory on a stream.
    #[error("no Content-Length on a stream")]
    MissingContentLength,
    /// Not a number, or two different ones.
    #[error("bad Content-Length: {0}")]
    BadContentLength(String),
    /// The message (or its headers so far) exceeds [`FramerLimits::max_message`].
    #[error("message of {0} bytes or more exceeds the limit")]
    TooLarge(usize),
}

/// What the framer found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// One complete message, headers and exactly Content-Length bytes of body.
    Message(Vec<u8>),
    /// An RFC 5626 keep-alive ping (CRLFCRLF): answer with [`PONG`].
    Ping,
    /// The stream is broken; `headers` is what was read of the offending message's header
    /// section (for a `400` when enough is there). The framer yields nothing more; close the
    /// connection once the answer is written.
    Invalid { headers: Vec<u8>, error: FrameError },
}

/// The RFC 5626 §3.5.1 pong.
pub const PONG: &[u8] = b"\r\n";

/// Cuts one connection's bytes into SIP messages (sans-IO).
///
/// Contract: feed every read with [`Self::handle_data`], then take [`Self::poll_message`]
/// until `None`; note every write with [`Self::handle_sent`]; close the connection when
/// [`Self::poll_timeout`] has passed ([`Self::is_idle`]) or after a [`Framed::Invalid`].
#[derive(Debug)]
pub struct StreamFramer {
    limits: FramerLimits,
    buf: Vec<u8>,
    last_activity: Instant,
    failed: bool,
}

impl StreamFramer {
    /// A framer for a connection opened at `now`.
    pub fn new(now: Instant, limits: FramerLimits) -> Self {
        Self {
            limits,
            buf: Vec::new(),
            last_activity: now,
            failed: false,
        }
    }

    /// Bytes read from the connection at `now`. After a failure they are discarded.
    pub fn handle_data(&mut self, now: Instant, bytes: &[u8]) {
        self.last_activity = now;
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Something was written to the connection at `now` (it is not idle).
    pub fn handle_sent(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// When the connection becomes idle.
    pub fn poll_timeout(&self) -> Instant {
        self.last_activity + self.limits.idle
    }

    /// True once nothing has moved for the idle limit.
    pub fn is_idle(&self, now: Instant) -> bool {
        now >= self.poll_timeout()
    }

    /// True after a [`Framed::Invalid`].
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Bytes buffered, not yet a complete message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, ping or failure.
    pub fn poll_message(&mut self) -> Option<Framed> {
        if self.failed {
            return None;
        }
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Some(Framed::Ping);
        }
        // §7.5: CRLFs before a start line are ignored. A lone CRLF may be half a ping: wait.
        let blank = self.buf.iter().take_while(|&&b| matches!(b, b'\r' | b'\n')).count();
        if blank == self.buf.len() {
            if blank > 4 {
                self.buf.clear();
            }
            return None;
        }
        if blank > 0 {
            self.buf.drain(..blank);
        }
        let Some(body_at) = header_end(&self.buf) else {
            if self.buf.len() > self.limits.max_message {
                return Some(self.fail(FrameError::TooLarge(self.buf.len()), self.limits.max_message));
            }
            return None;
        };
        let length = match content_length(&self.buf[..body_at]) {
            Ok(Some(length)) => length,
            Ok(None) => return Some(self.fail(FrameError::MissingContentLength, body_at)),
            Err(error) => return Some(self.fail(error, body_at)),
        };
        let total = body_at.saturating_add(length);
        if total > self.limits.max_message {
            return Some(self.fail(FrameError::TooLarge(total), body_at));
        }
        if self.buf.len() < total {
            return None;
        }
        let rest = self.buf.split_off(total);
        Some(Framed::Message(std::mem::replace(&mut self.buf, rest)))
    }

    fn fail(&mut self, error: FrameError, headers: usize) -> Framed {
        self.failed = true;
        let mut buf = std::mem::take(&mut self.buf);
        buf.truncate(headers);
        Framed::Invalid {
            headers: buf,
            error,
        }
    }
}

/// Where the body starts: just after the first empty line (CRLFCRLF, or bare LFs, which the
/// UDP path tolerates too).
fn header_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b'\n').map(|i| from + i) {
        match buf.get(i + 1..) {
            Some([b'\n', ..]) => return Some(i + 2),
            Some([b'\r', b'\n', ..]) => return Some(i + 3),
            _ => from = i + 1,
        }
    }
    None
}

/// The Content-Length of a header section (full or compact name `l`); several must agree.
fn content_length(headers: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut found: Option<usize> = None;
    for line in headers.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        let text = String::from_utf8_lossy(value);
        let length = std::str::from_utf8(value)
            .ok()
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| FrameError::BadContentLength(text.to_string()))?;
        if found.is_some_and(|f| f != length) {
            return Err(FrameError::BadContentLength(text.to_string()));
        }
        found = Some(length);
    }
    Ok(found)
}

/// How many stream connections are open, in total and per source IP address, against limits.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl ConnectionLimiter {
    /// At most `max_total` connections, `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            max_total,
            max_per_ip,
            total: 0,
            per_ip: HashMap::new(),
        }
    }

    /// Counts a new connection from `ip`; false (and not counted) when over a limit.
    pub fn try_open(&mut self, ip: IpAddr) -> bool {
        let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        if self.total >= self.max_total || from_ip >= self.max_per_ip {
            return false;
        }
        self.total += 1;
        self.per_ip.insert(ip, from_ip + 1);
        true
    }

    /// A connection [`Self::try_open`] admitted has closed.
    pub fn close(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
            self.total = self.total.saturating_sub(1);
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message(body: &str) -> String {
        format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn framer() -> (StreamFramer, Instant) {
        let now = Instant::now();
        (StreamFramer::new(now, FramerLimits::default()), now)
    }

    fn all(f: &mut StreamFramer) -> Vec<Framed> {
        std::iter::from_fn(|| f.poll_message()).collect()
    }

    #[test]
    fn split_messages_are_reassembled() {
        let (mut f, now) = framer();
        let m = message("v=0\r\n");
        for chunk in m.as_bytes().chunks(7) {
            assert!(all(&mut f).is_empty());
            f.handle_data(now, chunk);
        }
        assert_eq!(all(&mut f), vec![Framed::Message(m.clone().into_bytes())]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn coalesced_messages_and_pings_come_apart() {
        let (mut f, now) = framer();
        let (a, b) = (message("first"), message(""));
        let stream = format!("\r\n\r\n{a}\r\n\r\n{b}\r\n{}", &a[..10]);
        f.handle_data(now, stream.as_bytes());
        assert_eq!(
            all(&mut f),
            vec![
                Framed::Ping,
                Framed::Message(a.clone().into_bytes()),
                Framed::Ping,
                Framed::Message(b.into_bytes())
            ]
        );
        // The lone CRLF before the next start line is skipped; the partial message waits.
        f.handle_data(now, &a.as_bytes()[10..]);
        assert_eq!(all(&mut f), vec![Framed::Message(a.into_bytes())]);
    }

    #[test]
    fn a_ping_split_in_two_is_one_ping() {
        let (mut f, now) = framer();
        f.handle_data(now, b"\r\n");
        assert!(all(&mut f).is_empty());
        f.handle_data(now, b"\r\n");
        assert_eq!(all(&mut f), vec![Framed::Ping]);
    }

    #[test]
    fn compact_content_length_and_bare_lf_are_understood() {
        let (mut f, now) = framer();
        let m = "OPTIONS sip:a@b SIP/2.0\nl : 3\n\nabcNEXT";
        f.handle_data(now, m.as_bytes());
        assert_eq!(all(&mut f), vec![Framed::Message(b"OPTIONS sip:a@b SIP/2.0\nl : 3\n\nabc".to_vec())]);
        assert_eq!(f.buffered(), 4);
    }

    #[test]
    fn missing_or_bad_content_length_fails_the_stream() {
        for (text, error) in [
            ("OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\n", FrameError::MissingContentLength),
            ("OPTIONS sip:a SIP/2.0\r\nContent-Length: ten\r\n\r\n", FrameError::BadContentLength("ten".into())),
            ("OPTIONS sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n", FrameError::BadContentLength("-1".into())),
            ("OPTIONS sip:a SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab", FrameError::BadContentLength("2".into())),
        ] {
            let (mut f, now) = framer();
            f.handle_data(now, text.as_bytes());
            f.handle_data(now, message("").as_bytes());
            let headers = text.split_inclusive("\r\n\r\n").next().unwrap().as_bytes().to_vec();
            assert_eq!(all(&mut f), vec![Framed::Invalid { headers, error }], "{text}");
            assert!(f.is_failed());
            f.handle_data(now, message("").as_bytes());
            assert!(all(&mut f).is_empty(), "nothing after a failure");
        }
    }

    #[test]
    fn oversize_messages_fail_the_stream_without_buffering_them() {
        let limits = FramerLimits {
            max_message: 100,
            ..FramerLimits::default()
        };
        let now = Instant::now();
        // A Content-Length beyond the limit fails as soon as the headers are in.
        let mut f = StreamFramer::new(now, limits);
        f.handle_data(now, b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n");
        assert!(matches!(all(&mut f)[..], [Framed::Invalid { error: FrameError::TooLarge(_), .. }]));
        // Headers that never end fail once past the limit.
        let mut f = StreamFramer::new(now, limits);
        f.handle_data(now, b"OPTIONS sip:a SIP/2.0\r\n");
        for _ in 0..10 {
            f.handle_data(now, b"X-Filler: 0123456789\r\n");
        }
        assert!(matches!(all(&mut f)[..], [Framed::Invalid { error: FrameError::TooLarge(_), .. }]));
        assert_eq!(f.buffered(), 0);
        f.handle_data(now, &[b'x'; 1000]);
        assert_eq!(f.buffered(), 0, "a failed stream buffers nothing");
        // Exactly at the limit is fine.
        let mut f = StreamFramer::new(now, limits);
        let head = "OPTIONS sip:a SIP/2.0\r\nContent-Length: 55\r\n\r\n";
        assert_eq!(head.len(), 45);
        let m = format!("{head}{}", "b".repeat(55));
        f.handle_data(now, m.as_bytes());
        assert_eq!(all(&mut f), vec![Framed::Message(m.into_bytes())]);
    }

    #[test]
    fn idle_counts_from_the_last_read_or_write() {
        let (mut f, t0) = framer();
        assert_eq!(f.poll_timeout(), t0 + Duration::from_secs(600));
        f.handle_data(t0 + Duration::from_secs(100), b"\r\n");
        f.handle_sent(t0 + Duration::from_secs(200));
        assert!(!f.is_idle(t0 + Duration::from_secs(799)));
        assert!(f.is_idle(t0 + Duration::from_secs(800)));
    }

    #[test]
    fn connections_are_limited_in_total_and_per_address() {
        let mut l = ConnectionLimiter::new(3, 2);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap(), "192.0.2.3".parse().unwrap());
        assert!(l.try_open(a) && l.try_open(a));
        assert!(!l.try_open(a), "per address");
        assert!(l.try_open(b));
        assert!(!l.try_open(c), "in total");
        l.close(a);
        assert!(l.try_open(c));
        l.close(c);
        l.close(c); // closing more than opened changes nothing
        assert_eq!(l.open(), 2);
    }
}
