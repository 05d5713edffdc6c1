//! Prometheus metrics in the text exposition format on a small local HTTP endpoint.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
pub struct Metrics {
    pub desk_connections: AtomicI64,
    pub desk_requests: AtomicU64,
    pub desk_request_errors: AtomicU64,
    pub desk_logins_failed: AtomicU64,
    pub tickets_created: AtomicU64,
    pub ticket_actions: AtomicU64,
    pub reminders_fired: AtomicU64,
    /// Sum of request handling times in microseconds (with `desk_requests`, the mean).
    pub desk_request_micros: AtomicU64,
    pub sip_messages: AtomicU64,
    pub sip_malformed: AtomicU64,
    pub sip_rate_limited: AtomicU64,
    pub calls_active: AtomicI64,
    /// Trunks with a destination that are not marked down by their OPTIONS keep-alives.
    pub trunks_up: AtomicI64,
    /// Trunks whose registration with the carrier currently stands.
    pub trunks_registered: AtomicI64,
    pub calls_total: AtomicU64,
    /// RTP packets of finished calls: received (of the negotiated types), sent, ignored.
    pub rtp_packets_in: AtomicU64,
    pub rtp_packets_out: AtomicU64,
    pub rtp_packets_ignored: AtomicU64,
    /// Audio frames from logged-in desks handed to the call engine.
    pub desk_audio_frames: AtomicU64,
    /// Desk datagrams dropped: not logged in, malformed, or no engine (or a full one) to take them.
    pub desk_audio_dropped: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauges = [
            ("rexian_desk_connections", "Open desk (QUIC) connections", self.desk_connections.load(Ordering::Relaxed)),
            ("rexian_calls_active", "Calls in progress in the engine", self.calls_active.load(Ordering::Relaxed)),
            ("rexian_trunks_up", "Trunks not marked down by their OPTIONS keep-alives", self.trunks_up.load(Ordering::Relaxed)),
            ("rexian_trunks_registered", "Trunks registered with their carrier", self.trunks_registered.load(Ordering::Relaxed)),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let counters = [
            ("rexian_desk_requests_total", "Desk requests handled", &self.desk_requests),
            ("rexian_desk_request_errors_total", "Desk requests answered with an error", &self.desk_request_errors),
            ("rexian_desk_logins_failed_total", "Failed desk logins", &self.desk_logins_failed),
            ("rexian_tickets_created_total", "Tickets registered", &self.tickets_created),
            ("rexian_ticket_actions_total", "Workflow actions applied to tickets", &self.ticket_actions),
            ("rexian_reminders_fired_total", "Reminders (催办) delivered", &self.reminders_fired),
            ("rexian_desk_request_micros_total", "Time spent handling desk requests, microseconds", &self.desk_request_micros),
            ("rexian_sip_messages_total", "SIP datagrams accepted for processing", &self.sip_messages),
            ("rexian_sip_malformed_total", "SIP messages that could not be parsed or keyed", &self.sip_malformed),
            ("rexian_sip_rate_limited_total", "SIP datagrams dropped by the per-source rate limit", &self.sip_rate_limited),
            ("rexian_calls_total", "Calls the engine ran an application for", &self.calls_total),
            ("rexian_rtp_packets_in_total", "RTP packets received on finished calls", &self.rtp_packets_in),
            ("rexian_rtp_packets_out_total", "RTP packets sent on finished calls", &self.rtp_packets_out),
            ("rexian_rtp_packets_ignored_total", "Datagrams on RTP ports that were not the call's media", &self.rtp_packets_ignored),
            ("rexian_desk_audio_frames_total", "Audio frames from logged-in desks handed to the call engine", &self.desk_audio_frames),
            ("rexian_desk_audio_dropped_total", "Desk datagrams dropped (not logged in, malformed, or no engine to take them)", &self.desk_audio_dropped),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
        }
        out
    }
}

/// Serves `GET /metrics` until the listener is dropped with the task.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = match tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if request.starts_with("GET /metrics") {
                ("200 OK", metrics.render())
            } else {
                ("404 Not Found", "not found\n".to_owned())
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(reply.as_bytes()).await;
        });
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
