//! SDP (RFC 4566) and the offer/answer model (RFC 3264), audio only.
//!
//! What trunks and SIP phones send: one `m=audio … RTP/AVP` stream with G.711 and RFC 4733
//! `telephone-event`. Other streams (video, a second audio stream, SRTP) are parsed and kept so
//! that [`answer`] can refuse them with port 0, as RFC 3264 §6 asks.
//!
//! Usage contract:
//! * [`SessionDescription::parse`] a body from an INVITE, re-INVITE, UPDATE or 200 OK. It never
//!   panics; every refusal is an [`SdpError`] that names the offending line.
//! * [`answer`] an offer with our [`LocalMedia`]. On [`SdpError::NoCommonCodec`] or
//!   [`SdpError::NoAudioStream`] the caller answers `488 Not Acceptable Here`. On success,
//!   [`Answer::sdp`] is rendered into the response body with [`SessionDescription::render`] and
//!   the remaining fields tell the media layer where to send what. Bump
//!   [`LocalMedia::session_version`] before answering a re-offer whose answer differs.
//! * [`offer`] builds our offer for an outbound call.
//!
//! Sans-IO: no sockets, no clock.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest SDP body we parse; trunks send a few hundred bytes.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// Payload type we offer for `telephone-event/8000`.
pub const DTMF_PAYLOAD_TYPE: u8 = 101;
/// The RFC 4733 events we accept and offer (digits, `*`, `#`, A–D).
pub const DTMF_EVENTS: &str = "0-15";
/// Packetisation time we send, in milliseconds (DESIGN.md decision 5: 20 ms frames).
pub const PTIME_MS: u32 = 20;

/// Why an SDP body was refused, or why an offer cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is empty or only blank lines.
    #[error("empty SDP body")]
    Empty,
    /// The body is longer than [`MAX_SDP_LEN`].
    #[error("SDP body of {0} bytes is longer than the limit")]
    TooLarge(usize),
    /// The first line is not `v=` (RFC 4566 §5: it must be).
    #[error("SDP must start with v= (line {line}: {text:?})")]
    MissingVersion {
        /// 1-based line number of the first non-blank line.
        line: usize,
        /// That line, cut to 80 characters.
        text: String,
    },
    /// There is no `o=` line before the first `m=`.
    #[error("SDP has no o= line")]
    MissingOrigin,
    /// There is no `m=` line at all.
    #[error("SDP has no m= line")]
    MissingMedia,
    /// An `m=` line with a non-zero port has no `c=` line at media or session level.
    #[error("m= line {line} has no c= at media or session level")]
    MissingConnection {
        /// 1-based line number of the `m=` line.
        line: usize,
    },
    /// A line is malformed or out of place.
    #[error("SDP line {line} ({text:?}): {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// The line, cut to 80 characters.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The offer has no usable `m=audio` stream (none, all disabled with port 0, or not
    /// `RTP/AVP`). Answer `488 Not Acceptable Here`.
    #[error("offer has no usable RTP/AVP audio stream")]
    NoAudioStream,
    /// The offer's audio stream has none of our codecs. Answer `488 Not Acceptable Here`.
    #[error("offer has no codec in common with ours")]
    NoCommonCodec,
}

/// Media direction attribute (RFC 3264 §5.1); `sendrecv` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv`.
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name, as written after `a=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        match s {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The direction an answerer mirrors this offered one with (RFC 3264 §6.1).
    pub fn reversed(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether the side holding this direction sends RTP.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side holding this direction expects to receive RTP.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// Audio codecs switchd can negotiate on a SIP leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8 (what Chinese carriers send).
    Pcma,
}

impl Codec {
    /// RTP/AVP static payload type (RFC 3551).
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// Encoding name as in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// RTP clock rate in Hz.
    pub fn clock_rate(self) -> u32 {
        8000
    }
}

/// The `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `username`, `-` when none.
    pub username: String,
    /// `sess-id`, kept as text: only its identity matters.
    pub session_id: String,
    /// `sess-version`; a re-offer with the same version repeats the previous offer.
    pub session_version: u64,
    /// `nettype`, normally `IN`.
    pub net_type: String,
    /// `addrtype`, `IP4` or `IP6`.
    pub addr_type: String,
    /// `unicast-address`, kept as text (some phones put a host name here).
    pub address: String,
}

/// One `a=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attribute {
    /// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
    RtpMap {
        /// Payload type.
        payload_type: u8,
        /// Encoding name as written (compare case-insensitively).
        encoding: String,
        /// Clock rate in Hz.
        clock_rate: u32,
        /// Channel count when given.
        channels: Option<u16>,
    },
    /// `a=fmtp:<pt> <parameters>`.
    Fmtp {
        /// Payload type.
        payload_type: u8,
        /// Everything after the payload type, trimmed.
        params: String,
    },
    /// `a=ptime:<ms>`.
    Ptime(u32),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly` or `a=inactive`.
    Direction(Direction),
    /// `a=rtcp-mux` (RFC 5761).
    RtcpMux,
    /// `a=rtcp:<port>[ IN IP4|IP6 <addr>]` (RFC 3605).
    Rtcp {
        /// RTCP port.
        port: u16,
        /// RTCP address when given.
        addr: Option<IpAddr>,
    },
    /// Any other attribute, the text after `a=` kept verbatim (trimmed).
    Other(String),
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type: `audio`, `video`, `image` (T.38), …
    pub media: String,
    /// Transport port; 0 means the stream is disabled or rejected.
    pub port: u16,
    /// `/<number of ports>` when given.
    pub port_count: Option<u16>,
    /// Transport protocol, e.g. `RTP/AVP`.
    pub proto: String,
    /// Format list: payload type numbers for RTP, tokens otherwise.
    pub formats: Vec<String>,
    /// Media-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Media-level `i=`, `b=`, `k=` and unknown lines, as (letter, value), in order.
    pub extra: Vec<(char, String)>,
    /// Media-level attributes, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// Media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// Payload types of the format list that are numbers, in offer order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt < 128)
    }

    /// The `a=rtpmap` for `pt`, as (encoding, clock rate).
    pub fn rtpmap(&self, pt: u8) -> Option<(&str, u32)> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::RtpMap {
                payload_type,
                encoding,
                clock_rate,
                ..
            } if *payload_type == pt => Some((encoding.as_str(), *clock_rate)),
            _ => None,
        })
    }

    /// The `a=fmtp` parameters for `pt`.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp {
                payload_type,
                params,
            } if *payload_type == pt => Some(params.as_str()),
            _ => None,
        })
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Ptime(p) => Some(*p),
            _ => None,
        })
    }

    /// Whether `a=rtcp-mux` is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes
            .iter()
            .any(|a| matches!(a, Attribute::RtcpMux))
    }

    /// The codec payload type `pt` carries here: its rtpmap, else the static table (0, 8).
    pub fn codec_of(&self, pt: u8) -> Option<Codec> {
        match self.rtpmap(pt) {
            Some((enc, 8000)) if enc.eq_ignore_ascii_case("PCMU") => Some(Codec::Pcmu),
            Some((enc, 8000)) if enc.eq_ignore_ascii_case("PCMA") => Some(Codec::Pcma),
            Some(_) => None,
            None => match pt {
                0 => Some(Codec::Pcmu),
                8 => Some(Codec::Pcma),
                _ => None,
            },
        }
    }

    /// The first offered payload type mapped to `telephone-event/8000`.
    pub fn telephone_event(&self) -> Option<u8> {
        self.payload_types().find(|pt| {
            matches!(self.rtpmap(*pt), Some((enc, 8000)) if enc.eq_ignore_ascii_case("telephone-event"))
        })
    }
}

/// A parsed SDP body. [`render`](Self::render) writes it back; parsing that gives an equal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=`; `-` when the body had none.
    pub session_name: String,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// `t=` lines as (start, stop); `(0, 0)` when the body had none.
    pub timing: Vec<(u64, u64)>,
    /// Session-level `i=`, `u=`, `e=`, `p=`, `b=`, `r=`, `z=`, `k=` and unknown lines, in order.
    /// Rendered between `c=` and `t=`.
    pub extra: Vec<(char, String)>,
    /// Session-level attributes, in order.
    pub attributes: Vec<Attribute>,
    /// The `m=` sections, in order.
    pub media: Vec<MediaDescription>,
}

fn direction_of(attrs: &[Attribute]) -> Option<Direction> {
    attrs.iter().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

struct LineErr(&'static str);

type LineResult<T> = Result<T, LineErr>;

/// Attach the line number and text to a line-level error.
fn at<T>(no: usize, line: &str, r: LineResult<T>) -> Result<T, SdpError> {
    r.map_err(|LineErr(reason)| SdpError::Malformed {
        line: no,
        text: clip(line),
        reason,
    })
}

fn parse_num<T: std::str::FromStr>(s: &str, reason: &'static str) -> LineResult<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LineErr(reason));
    }
    s.parse().map_err(|_| LineErr(reason))
}

fn parse_connection(v: &str) -> LineResult<IpAddr> {
    let mut it = v.split_ascii_whitespace();
    let (Some(net), Some(ty), Some(addr), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(LineErr("c= needs <nettype> <addrtype> <address>"));
    };
    if net != "IN" {
        return Err(LineErr("c= nettype is not IN"));
    }
    // Drop a multicast /ttl[/count] suffix.
    let addr = addr.split('/').next().unwrap_or(addr);
    match ty {
        "IP4" => addr
            .parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| LineErr("c= IP4 address is not an IPv4 literal")),
        "IP6" => addr
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| LineErr("c= IP6 address is not an IPv6 literal")),
        _ => Err(LineErr("c= addrtype is neither IP4 nor IP6")),
    }
}

fn parse_origin(v: &str) -> LineResult<Origin> {
    let t: Vec<&str> = v.split_ascii_whitespace().collect();
    let [username, session_id, version, net, ty, addr] = t.as_slice() else {
        return Err(LineErr("o= needs six fields"));
    };
    Ok(Origin {
        username: (*username).to_owned(),
        session_id: (*session_id).to_owned(),
        session_version: parse_num(version, "o= sess-version is not a number")?,
        net_type: (*net).to_owned(),
        addr_type: (*ty).to_owned(),
        address: (*addr).to_owned(),
    })
}

fn parse_media(v: &str) -> LineResult<MediaDescription> {
    let mut it = v.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
        return Err(LineErr("m= needs <media> <port> <proto> <fmt>…"));
    };
    let formats: Vec<String> = it.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(LineErr("m= has no formats"));
    }
    let (port, port_count) = match port.split_once('/') {
        Some((p, n)) => (
            p,
            Some(parse_num::<u16>(n, "m= port count is not a number")?),
        ),
        None => (port, None),
    };
    Ok(MediaDescription {
        media: media.to_owned(),
        port: parse_num(port, "m= port is not a number 0-65535")?,
        port_count,
        proto: proto.to_owned(),
        formats,
        connection: None,
        extra: Vec::new(),
        attributes: Vec::new(),
    })
}

fn parse_pt(s: &str) -> LineResult<u8> {
    let pt: u8 = parse_num(s, "payload type is not a number 0-127")?;
    if pt > 127 {
        return Err(LineErr("payload type is not a number 0-127"));
    }
    Ok(pt)
}

fn parse_attribute(v: &str) -> LineResult<Attribute> {
    let (name, value) = match v.split_once(':') {
        Some((n, val)) => (n, Some(val.trim())),
        None => (v, None),
    };
    if let (None, Some(d)) = (value, Direction::from_name(name)) {
        return Ok(Attribute::Direction(d));
    }
    match (name, value) {
        ("rtcp-mux", None) => Ok(Attribute::RtcpMux),
        ("ptime", Some(val)) => Ok(Attribute::Ptime(parse_num(val, "a=ptime is not a number")?)),
        ("rtpmap", Some(val)) => {
            let Some((pt, enc)) = val.split_once(|c: char| c.is_ascii_whitespace()) else {
                return Err(LineErr("a=rtpmap needs <pt> <encoding>/<clock>"));
            };
            let mut parts = enc.trim().split('/');
            let (Some(encoding), Some(clock)) = (parts.next(), parts.next()) else {
                return Err(LineErr("a=rtpmap needs <pt> <encoding>/<clock>"));
            };
            let channels = match parts.next() {
                Some(c) => Some(parse_num(c, "a=rtpmap channels is not a number")?),
                None => None,
            };
            if parts.next().is_some() || encoding.is_empty() {
                return Err(LineErr("a=rtpmap needs <pt> <encoding>/<clock>"));
            }
            Ok(Attribute::RtpMap {
                payload_type: parse_pt(pt)?,
                encoding: encoding.to_owned(),
                clock_rate: parse_num(clock, "a=rtpmap clock rate is not a number")?,
                channels,
            })
        }
        ("fmtp", Some(val)) => {
            let (pt, params) = match val.split_once(|c: char| c.is_ascii_whitespace()) {
                Some((pt, p)) => (pt, p.trim()),
                None => (val, ""),
            };
            Ok(Attribute::Fmtp {
                payload_type: parse_pt(pt)?,
                params: params.to_owned(),
            })
        }
        ("rtcp", Some(val)) => {
            let (port, rest) = match val.split_once(|c: char| c.is_ascii_whitespace()) {
                Some((p, r)) => (p, Some(r)),
                None => (val, None),
            };
            let addr = match rest {
                Some(r) => Some(parse_connection(r)?),
                None => None,
            };
            Ok(Attribute::Rtcp {
                port: parse_num(port, "a=rtcp port is not a number")?,
                addr,
            })
        }
        _ if v.is_empty() => Err(LineErr("empty a= line")),
        _ => Ok(Attribute::Other(v.to_owned())),
    }
}

impl SessionDescription {
    /// Parse an SDP body. Accepts CRLF or bare LF line ends, ignores blank lines and keeps
    /// unknown attributes and line types. Never panics.
    pub fn parse(body: &str) -> Result<Self, SdpError> {
        if body.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge(body.len()));
        }
        let mut lines = body
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
            .filter(|(_, l)| !l.trim().is_empty());

        let Some((first_no, first)) = lines.next() else {
            return Err(SdpError::Empty);
        };
        let bad = |line: usize, text: &str, reason: &'static str| SdpError::Malformed {
            line,
            text: clip(text),
            reason,
        };
        match first.split_once('=').map(|(k, v)| (k, v.trim())) {
            Some(("v", "0")) => {}
            Some(("v", _)) => return Err(bad(first_no, first, "only SDP version 0 is supported")),
            _ => {
                return Err(SdpError::MissingVersion {
                    line: first_no,
                    text: clip(first),
                })
            }
        }

        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut timing = Vec::new();
        let mut extra = Vec::new();
        let mut attributes = Vec::new();
        let mut media: Vec<(usize, MediaDescription)> = Vec::new();

        for (no, line) in lines {
            let Some((kind, value)) = line.split_once('=') else {
                return Err(bad(no, line, "not a <type>=<value> line"));
            };
            let mut kc = kind.chars();
            let (Some(k), None) = (kc.next(), kc.next()) else {
                return Err(bad(no, line, "line type is not a single letter"));
            };
            if !k.is_ascii_lowercase() {
                return Err(bad(no, line, "line type is not a lower-case letter"));
            }
            let value = value.trim();
            if let Some((_, m)) = media.last_mut() {
                match k {
                    'm' => media.push((no, at(no, line, parse_media(value))?)),
                    'c' if m.connection.is_some() => {
                        return Err(bad(no, line, "second c= in one media section"))
                    }
                    'c' => m.connection = Some(at(no, line, parse_connection(value))?),
                    'a' => m.attributes.push(at(no, line, parse_attribute(value))?),
                    'v' | 'o' | 's' | 't' => {
                        return Err(bad(no, line, "session-level line after the first m="))
                    }
                    _ => m.extra.push((k, value.to_owned())),
                }
                continue;
            }
            match k {
                'v' => return Err(bad(no, line, "second v= line")),
                'o' if origin.is_some() => return Err(bad(no, line, "second o= line")),
                'o' => origin = Some(at(no, line, parse_origin(value))?),
                's' if session_name.is_some() => return Err(bad(no, line, "second s= line")),
                's' => session_name = Some(value.to_owned()),
                'c' if connection.is_some() => return Err(bad(no, line, "second session c= line")),
                'c' => connection = Some(at(no, line, parse_connection(value))?),
                't' => {
                    let mut it = value.split_ascii_whitespace();
                    let (Some(a), Some(b), None) = (it.next(), it.next(), it.next()) else {
                        return Err(bad(no, line, "t= needs <start> <stop>"));
                    };
                    let a = at(no, line, parse_num(a, "t= start is not a number"))?;
                    let b = at(no, line, parse_num(b, "t= stop is not a number"))?;
                    timing.push((a, b));
                }
                'a' => attributes.push(at(no, line, parse_attribute(value))?),
                'm' => {
                    if origin.is_none() {
                        return Err(SdpError::MissingOrigin);
                    }
                    media.push((no, at(no, line, parse_media(value))?));
                }
                _ => extra.push((k, value.to_owned())),
            }
        }

        let origin = origin.ok_or(SdpError::MissingOrigin)?;
        if media.is_empty() {
            return Err(SdpError::MissingMedia);
        }
        if let Some((line, _)) = media
            .iter()
            .find(|(_, m)| m.port != 0 && m.connection.is_none() && connection.is_none())
        {
            return Err(SdpError::MissingConnection { line: *line });
        }
        if timing.is_empty() {
            timing.push((0, 0));
        }
        Ok(SessionDescription {
            origin,
            session_name: session_name
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".to_owned()),
            connection,
            timing,
            extra,
            attributes,
            media: media.into_iter().map(|(_, m)| m).collect(),
        })
    }

    /// Write the body with CRLF line ends.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(256);
        let o = &self.origin;
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "v=0\r\no={} {} {} {} {} {}\r\ns={}\r\n",
            o.username,
            o.session_id,
            o.session_version,
            o.net_type,
            o.addr_type,
            o.address,
            self.session_name
        );
        if let Some(c) = self.connection {
            render_connection(&mut out, c);
        }
        render_extra(&mut out, &self.extra);
        for (a, b) in &self.timing {
            let _ = write!(out, "t={a} {b}\r\n");
        }
        render_attributes(&mut out, &self.attributes);
        for m in &self.media {
            let _ = write!(out, "m={} {}", m.media, m.port);
            if let Some(n) = m.port_count {
                let _ = write!(out, "/{n}");
            }
            let _ = write!(out, " {}", m.proto);
            for f in &m.formats {
                let _ = write!(out, " {f}");
            }
            out.push_str("\r\n");
            if let Some(c) = m.connection {
                render_connection(&mut out, c);
            }
            render_extra(&mut out, &m.extra);
            render_attributes(&mut out, &m.attributes);
        }
        out
    }

    /// Session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// Effective direction of `m`: its own attribute, else the session's, else `sendrecv`.
    pub fn media_direction(&self, m: &MediaDescription) -> Direction {
        m.direction().or(self.direction()).unwrap_or_default()
    }

    /// Effective connection address of `m`: its own `c=`, else the session's.
    pub fn media_connection(&self, m: &MediaDescription) -> Option<IpAddr> {
        m.connection.or(self.connection)
    }
}

fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn render_connection(out: &mut String, ip: IpAddr) {
    let _ = write!(out, "c=IN {} {ip}\r\n", addr_type(ip));
}

fn render_extra(out: &mut String, extra: &[(char, String)]) {
    for (k, v) in extra {
        let _ = write!(out, "{k}={v}\r\n");
    }
}

fn render_attributes(out: &mut String, attrs: &[Attribute]) {
    for a in attrs {
        let _ = match a {
            Attribute::RtpMap {
                payload_type,
                encoding,
                clock_rate,
                channels,
            } => {
                let _ = write!(out, "a=rtpmap:{payload_type} {encoding}/{clock_rate}");
                if let Some(c) = channels {
                    let _ = write!(out, "/{c}");
                }
                out.push_str("\r\n");
                Ok(())
            }
            Attribute::Fmtp {
                payload_type,
                params,
            } => write!(out, "a=fmtp:{payload_type} {params}\r\n"),
            Attribute::Ptime(p) => write!(out, "a=ptime:{p}\r\n"),
            Attribute::Direction(d) => write!(out, "a={}\r\n", d.as_str()),
            Attribute::RtcpMux => write!(out, "a=rtcp-mux\r\n"),
            Attribute::Rtcp { port, addr: None } => write!(out, "a=rtcp:{port}\r\n"),
            Attribute::Rtcp {
                port,
                addr: Some(ip),
            } => {
                write!(out, "a=rtcp:{port} IN {} {ip}\r\n", addr_type(*ip))
            }
            Attribute::Other(v) => write!(out, "a={v}\r\n"),
        };
    }
}

/// Our side of the media negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address we receive RTP on (goes in `c=` and `o=`).
    pub addr: IpAddr,
    /// Port we receive RTP on.
    pub audio_port: u16,
    /// Codecs in our order of preference; the first one the offer has wins.
    pub codecs: Vec<Codec>,
    /// Whether we accept / offer RFC 4733 `telephone-event`.
    pub dtmf: bool,
    /// `o=` session id, fixed for the dialog.
    pub session_id: u64,
    /// `o=` session version; bump it for each changed answer or offer in the dialog.
    pub session_version: u64,
}

impl LocalMedia {
    /// Defaults for a trunk leg: PCMA then PCMU, DTMF on, version = id.
    pub fn new(addr: IpAddr, audio_port: u16, session_id: u64) -> Self {
        LocalMedia {
            addr,
            audio_port,
            codecs: vec![Codec::Pcma, Codec::Pcmu],
            dtmf: true,
            session_id,
            session_version: session_id,
        }
    }

    fn skeleton(&self) -> SessionDescription {
        SessionDescription {
            origin: Origin {
                username: "rexian".to_owned(),
                session_id: self.session_id.to_string(),
                session_version: self.session_version,
                net_type: "IN".to_owned(),
                addr_type: addr_type(self.addr).to_owned(),
                address: self.addr.to_string(),
            },
            session_name: "rexian".to_owned(),
            connection: Some(self.addr),
            timing: vec![(0, 0)],
            extra: Vec::new(),
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }
}

/// The result of answering an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer body; [`SessionDescription::render`] it into the response.
    pub sdp: SessionDescription,
    /// Where to send RTP: the chosen stream's address and port. With a `c=0.0.0.0` hold
    /// this is `0.0.0.0:<port>`: send nothing.
    pub remote: SocketAddr,
    /// Payload type for audio, the offer's number for [`Answer::codec`].
    pub payload_type: u8,
    /// The chosen codec.
    pub codec: Codec,
    /// Payload type for RFC 4733 events, when both sides do them.
    pub dtmf_payload_type: Option<u8>,
    /// Our direction as written in the answer: [`Direction::sends`] says whether we send RTP.
    pub direction: Direction,
    /// The peer put us on hold: the offer is `sendonly` or `inactive`, or its address is
    /// `0.0.0.0` / `::` (RFC 2543 style).
    pub hold: bool,
    /// Index of the chosen stream among the offer's `m=` lines.
    pub media_index: usize,
    /// Both sides multiplex RTCP on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// Where the peer takes RTCP when its `a=rtcp` says (RFC 3605: baresip, for one, binds
    /// RTCP elsewhere than RTP port + 1 and says so); `None` for the default.
    pub rtcp: Option<SocketAddr>,
}

/// Answer `offer` with `local` (RFC 3264 §6). The first usable `RTP/AVP` audio stream with a
/// codec in common is accepted; every other `m=` line is refused with port 0.
pub fn answer(offer: &SessionDescription, local: &LocalMedia) -> Result<Answer, SdpError> {
    let mut chosen: Option<(usize, u8, Codec)> = None;
    let mut saw_audio = false;
    for (i, m) in offer.media.iter().enumerate() {
        if m.media != "audio" || m.port == 0 || m.proto != "RTP/AVP" {
            continue;
        }
        saw_audio = true;
        let pick = local.codecs.iter().find_map(|c| {
            m.payload_types()
                .find(|pt| m.codec_of(*pt) == Some(*c))
                .map(|pt| (pt, *c))
        });
        if let Some((pt, codec)) = pick {
            chosen = Some((i, pt, codec));
            break;
        }
    }
    let Some((index, payload_type, codec)) = chosen else {
        return Err(if saw_audio {
            SdpError::NoCommonCodec
        } else {
            SdpError::NoAudioStream
        });
    };
    let om = &offer.media[index];
    let ip = offer.media_connection(om).ok_or(SdpError::NoAudioStream)?;
    let offered_dir = offer.media_direction(om);
    let direction = offered_dir.reversed();
    let dtmf_payload_type = if local.dtmf {
        om.telephone_event()
    } else {
        None
    };
    let rtcp_mux = om.rtcp_mux();
    let rtcp = om.attributes.iter().find_map(|a| match a {
        Attribute::Rtcp { port, addr } => Some(SocketAddr::new(addr.unwrap_or(ip), *port)),
        _ => None,
    });

    let mut sdp = local.skeleton();
    for (i, m) in offer.media.iter().enumerate() {
        if i != index {
            sdp.media.push(MediaDescription {
                media: m.media.clone(),
                port: 0,
                port_count: None,
                proto: m.proto.clone(),
                formats: m.formats.clone(),
                connection: None,
                extra: Vec::new(),
                attributes: Vec::new(),
            });
            continue;
        }
        let mut formats = Vec::new();
        let mut attributes = Vec::new();
        push_codec(&mut formats, &mut attributes, payload_type, codec);
        if let Some(dpt) = dtmf_payload_type {
            push_dtmf(&mut formats, &mut attributes, dpt);
        }
        sdp.media.push(audio_media(local.audio_port, formats, attributes, direction, rtcp_mux));
    }

    Ok(Answer {
        sdp,
        remote: SocketAddr::new(ip, om.port),
        payload_type,
        codec,
        dtmf_payload_type,
        direction,
        hold: matches!(offered_dir, Direction::SendOnly | Direction::Inactive)
            || ip.is_unspecified(),
        media_index: index,
        rtcp_mux,
        rtcp,
    })
}

fn push_codec(formats: &mut Vec<String>, attributes: &mut Vec<Attribute>, payload_type: u8, codec: Codec) {
    formats.push(payload_type.to_string());
    attributes.push(Attribute::RtpMap {
        payload_type,
        encoding: codec.encoding_name().to_owned(),
        clock_rate: codec.clock_rate(),
        channels: None,
    });
}

fn push_dtmf(formats: &mut Vec<String>, attributes: &mut Vec<Attribute>, payload_type: u8) {
    formats.push(payload_type.to_string());
    attributes.push(Attribute::RtpMap {
        payload_type,
        encoding: "telephone-event".to_owned(),
        clock_rate: 8000,
        channels: None,
    });
    attributes.push(Attribute::Fmtp { payload_type, params: DTMF_EVENTS.to_owned() });
}

/// Our audio `m=` line: the formats and their attributes, then ptime, direction and rtcp-mux.
fn audio_media(
    port: u16,
    formats: Vec<String>,
    mut attributes: Vec<Attribute>,
    direction: Direction,
    rtcp_mux: bool,
) -> MediaDescription {
    attributes.push(Attribute::Ptime(PTIME_MS));
    attributes.push(Attribute::Direction(direction));
    if rtcp_mux {
        attributes.push(Attribute::RtcpMux);
    }
    MediaDescription {
        media: "audio".to_owned(),
        port,
        port_count: None,
        proto: "RTP/AVP".to_owned(),
        formats,
        connection: None,
        extra: Vec::new(),
        attributes,
    }
}

/// Our offer for an outbound call: one `sendrecv` audio stream with `local.codecs` in order
/// (static payload types) and `telephone-event` on [`DTMF_PAYLOAD_TYPE`] when `local.dtmf`.
/// `local.codecs` must not be empty unless `local.dtmf` is set: an `m=` line needs a format.
pub fn offer(local: &LocalMedia) -> SessionDescription {
    let mut formats = Vec::new();
    let mut attributes = Vec::new();
    for c in &local.codecs {
        let pt = c.static_payload_type();
        if !formats.contains(&pt.to_string()) {
            push_codec(&mut formats, &mut attributes, pt, *c);
        }
    }
    if local.dtmf {
        push_dtmf(&mut formats, &mut attributes, DTMF_PAYLOAD_TYPE);
    }
    let mut sdp = local.skeleton();
    sdp.media.push(audio_media(local.audio_port, formats, attributes, Direction::SendRecv, false));
    sdp
}

#[cfg(test)]
#[path = "sdp_tests.rs"]
mod tests;
