//! The `[telephony]` section of the configuration: media ports, trunks and the routing table
//! that maps dialled numbers to engine applications (usable before the IVR exists).

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Telephony settings; every field has a documented default (`assets/switchd.example.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelephonyConfig {
    /// The address written into SDP and Contact. Unset: the address the peer reached us on
    /// (right for a single-homed server and for loopback tests; set it behind NAT).
    pub advertise_ip: Option<IpAddr>,
    /// Address the RTP sockets bind to.
    pub rtp_ip: IpAddr,
    /// The RTP port range, inclusive; one port per call leg.
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// Calls at once; more get `503 Service Unavailable`.
    pub max_calls: usize,
    /// SIP messages per second (sustained, and burst) accepted from one source address; more
    /// are dropped. Trunk addresses have their own, larger allowance.
    pub sip_rate_per_sec: f64,
    pub sip_burst: f64,
    pub trunk_rate_per_sec: f64,
    pub trunk_burst: f64,
    /// Also accept SIP over TCP (RFC 3261 §18), on the port and address of `sip_addr`.
    pub sip_tcp: bool,
    /// SIP over TLS listens here (`sips:`, `;transport=tls`) with the desk certificate; unset:
    /// no TLS.
    pub sip_tls_addr: Option<SocketAddr>,
    /// Open TCP and TLS connections at most, in total and from one IP address; more are
    /// closed as they are accepted.
    pub tcp_max_connections: usize,
    pub tcp_max_connections_per_ip: usize,
    /// A TCP or TLS connection silent this long (seconds) is closed.
    pub tcp_idle_secs: u64,
    /// Longest message the "prompt then record" application keeps, in seconds.
    pub voicemail_max_secs: u32,
    /// How long a call offered to a desk user rings before it is given up (seconds).
    pub desk_ring_secs: u32,
    /// What a caller on hold hears: an administrator's prompt (a WAV in the prompts folder,
    /// by name), read when switchd starts; empty: the built-in soft melody.
    pub hold_music: String,
    /// Record every connected call (at a desk, or forwarded to a number) as stereo WAV:
    /// the caller left, the other side right.
    pub record_calls: bool,
    /// The text-to-speech program (espeak-ng) and its voice.
    pub tts_program: PathBuf,
    pub tts_voice: String,
    /// The trunk outbound calls (desk dialling, callbacks) go through; unset: the first trunk.
    pub outbound_trunk: Option<String>,
    /// The caller number (From user) of outbound calls.
    pub outbound_caller_id: String,
    /// Every trunk with a destination is pinged with OPTIONS this often (seconds; 0: never).
    /// Two unanswered (or 5xx) pings in a row mark it down: outbound calls then use the next
    /// trunk that is up.
    pub keepalive_secs: u32,
    /// SIP session timers (RFC 4028): the interval outbound INVITEs ask for, and inbound
    /// calls get when the caller supports timers but names none (seconds). The refresher
    /// re-INVITEs at half of it; a session nobody refreshes is hung up (CDR cause
    /// `session_expired`).
    pub session_expires_secs: u32,
    /// The shortest session interval accepted (`Min-SE`): shorter requests get 422 (seconds;
    /// 90 is the RFC's floor, lower only for tests).
    pub session_min_se_secs: u32,
    /// Carriers (or PBXs) whose calls are accepted, by source address.
    pub trunks: Vec<TrunkConfig>,
    /// Dialled number → application.
    pub routes: Vec<RouteConfig>,
}

impl Default for TelephonyConfig {
    fn default() -> Self {
        Self {
            advertise_ip: None,
            rtp_ip: IpAddr::from([0, 0, 0, 0]),
            rtp_port_min: 20000,
            rtp_port_max: 29999,
            max_calls: 2000,
            sip_rate_per_sec: 50.0,
            sip_burst: 100.0,
            trunk_rate_per_sec: 5000.0,
            trunk_burst: 10000.0,
            sip_tcp: true,
            sip_tls_addr: None,
            tcp_max_connections: 1000,
            tcp_max_connections_per_ip: 16,
            tcp_idle_secs: 600,
            voicemail_max_secs: 120,
            desk_ring_secs: 30,
            hold_music: String::new(),
            record_calls: true,
            tts_program: PathBuf::from("espeak-ng"),
            tts_voice: "cmn-latn-pinyin".into(),
            outbound_trunk: None,
            outbound_caller_id: "12365".into(),
            keepalive_secs: 30,
            session_expires_secs: 1800,
            session_min_se_secs: 90,
            trunks: Vec::new(),
            routes: default_routes(),
        }
    }
}

/// A trunk: calls from these addresses are accepted and named after it in CDRs; outbound
/// calls go to `proxy` (or the first address, port 5060) with digest credentials if set.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    pub addresses: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Register with the proxy (REGISTER, digest-authenticated with username and password).
    #[serde(default)]
    pub register: bool,
    /// The registration expiry asked for (seconds); refreshed at about 85 % of what the
    /// carrier grants.
    #[serde(default = "default_register_expires")]
    pub register_expires_secs: u32,
    /// How numbers go to this carrier: `national` (13800138000, 01065529988) or `e164`
    /// (+8613800138000, +861065529988). Numbers from it are read in either form.
    #[serde(default)]
    pub number_format: NumberFormat,
    /// A peer calling from an address not in `addresses` is this trunk when it answers our
    /// digest challenge with this user name and password (a PBX on a dynamic address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_password: Option<String>,
    /// How switchd reaches the carrier for REGISTER, OPTIONS and outbound calls: `udp`, or a
    /// `tcp`/`tls` connection it opens to the proxy and reuses.
    #[serde(default)]
    pub transport: crate::sip::stream::Transport,
    /// For `tls`: the PEM file of the CA(s) the carrier's certificate must chain to (unset:
    /// the system's trusted roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// For `tls`: the name the carrier's certificate must carry (unset: the proxy's IP
    /// address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
}

/// How a trunk writes numbers (see [`TrunkConfig::number_format`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberFormat {
    #[default]
    National,
    E164,
}

fn default_register_expires() -> u32 {
    300
}

impl std::fmt::Debug for TrunkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkConfig")
            .field("name", &self.name)
            .field("addresses", &self.addresses)
            .field("proxy", &self.proxy)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("register", &self.register)
            .field("register_expires_secs", &self.register_expires_secs)
            .field("number_format", &self.number_format)
            .field("inbound_username", &self.inbound_username)
            .field("inbound_password", &self.inbound_password.as_ref().map(|_| "<redacted>"))
            .field("transport", &self.transport)
            .field("tls_ca", &self.tls_ca)
            .field("tls_server_name", &self.tls_server_name)
            .finish()
    }
}

/// One row of the routing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The dialled number (the Request-URI's user part), after normalisation.
    pub number: String,
    pub app: RouteApp,
    /// For `app = "desk"`: the user (login name) whose desktop the call rings on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// For `app = "forward"`: the number the call is bridged to, through the outbound trunk,
    /// or a `sip:user@ip[:port]` URI called directly (by UDP, through no trunk); or a list of
    /// them, all rung at once (forking: the first to answer takes the call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<ForwardTo>,
    /// For `app = "forward"`: how long the targets ring before the caller gets 480 (seconds;
    /// unset: `desk_ring_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_secs: Option<u32>,
}

/// A forward route's `to`: one target (`to = "13900139000"`), or several rung at once
/// (`to = ["sip:a@192.0.2.7:5060", "13900139000"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ForwardTo {
    One(String),
    Several(Vec<String>),
}

impl ForwardTo {
    /// The targets, in configured order, blanks left out.
    pub fn targets(&self) -> Vec<String> {
        let all = match self {
            ForwardTo::One(target) => std::slice::from_ref(target),
            ForwardTo::Several(targets) => targets.as_slice(),
        };
        all.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).map(str::to_owned).collect()
    }
}

/// The engine applications a number can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteApp {
    /// Echo test: the caller hears themself; digits are reported.
    Echo,
    /// Play a prompt, beep, record the caller's message (voicemail / 留言).
    PromptRecord,
    /// The hotline: handed to the application hook the IVR fills.
    Hotline,
    /// Ring one desk user's desktop (the route's `user`); they answer and talk over QUIC.
    Desk,
    /// Bridge the call to another number (the route's `to`) through the outbound trunk, or
    /// to a SIP URI directly; to several at once when `to` is a list.
    Forward,
}

/// 9196 echo test, 9197 prompt-then-record, 12365 the hotline.
pub fn default_routes() -> Vec<RouteConfig> {
    [("9196", RouteApp::Echo), ("9197", RouteApp::PromptRecord), ("12365", RouteApp::Hotline)]
        .into_iter()
        .map(|(number, app)| RouteConfig { number: number.into(), app, user: None, to: None, ring_secs: None })
        .collect()
}

impl TelephonyConfig {
    /// The application for a dialled number: exact match after dropping a `+86` / `0086`
    /// prefix, so `+8612365` reaches 12365.
    pub fn route(&self, dialled: &str) -> Option<&RouteConfig> {
        let number = dialled
            .strip_prefix("+86")
            .or_else(|| dialled.strip_prefix("0086"))
            .unwrap_or(dialled);
        self.routes.iter().find(|r| r.number == number)
    }

    /// The trunk outbound calls use.
    pub fn outbound(&self) -> Option<&TrunkConfig> {
        match &self.outbound_trunk {
            Some(name) => self.trunks.iter().find(|t| &t.name == name),
            None => self.trunks.first(),
        }
    }

    /// What `--demo` adds when nothing is configured: the loopback trunk, and 8001 / 8002
    /// ringing the demo agents' desktops.
    pub fn add_demo(&mut self) {
        if self.trunks.is_empty() {
            self.trunks.push(Self::demo_trunk());
        }
        if !self.routes.iter().any(|r| r.app == RouteApp::Desk) {
            for (number, user) in [("8001", "agent1"), ("8002", "agent2")] {
                self.routes.push(RouteConfig { number: number.into(), app: RouteApp::Desk, user: Some(user.into()), to: None, ring_secs: None });
            }
        }
    }

    /// The trunk the demo adds when none is configured: calls from this machine.
    pub fn demo_trunk() -> TrunkConfig {
        TrunkConfig {
            name: "demo-loopback".into(),
            addresses: vec![IpAddr::from([127, 0, 0, 1]), "::1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))],
            proxy: None,
            username: None,
            password: None,
            register: false,
            register_expires_secs: default_register_expires(),
            number_format: NumberFormat::National,
            inbound_username: None,
            inbound_password: None,
            transport: crate::sip::stream::Transport::Udp,
            tls_ca: None,
            tls_server_name: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_after_country_code() {
        let c = TelephonyConfig::default();
        let app = |n: &str| c.route(n).map(|r| r.app);
        assert_eq!(app("9196"), Some(RouteApp::Echo));
        assert_eq!(app("+8612365"), Some(RouteApp::Hotline));
        assert_eq!(app("008612365"), Some(RouteApp::Hotline));
        assert_eq!(app("12366"), None);
    }

    #[test]
    fn forward_targets_are_one_string_or_a_list() {
        let route = |toml: &str| toml::from_str::<RouteConfig>(toml).map(|r| (r.to.map(|t| t.targets()), r.ring_secs));
        let one = route("number = \"9198\"\napp = \"forward\"\nto = \"13900139000\"\n").expect("one target");
        assert_eq!(one, (Some(vec!["13900139000".to_owned()]), None));
        let several = route("number = \"9198\"\napp = \"forward\"\nto = [\"sip:a@127.0.0.1:5071\", \" \", \"+8613900139000\"]\nring_secs = 20\n")
            .expect("a list");
        assert_eq!(several, (Some(vec!["sip:a@127.0.0.1:5071".to_owned(), "+8613900139000".to_owned()]), Some(20)));
        let err = route("number = \"9198\"\napp = \"forward\"\nto = [\"1\"]\nring = 20\n").expect_err("unknown key");
        assert!(err.to_string().contains("ring"), "{err}");
    }
}
