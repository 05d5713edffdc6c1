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
    /// Callers' RTP packets that never arrived, and RTCP packets received, on finished calls
    /// (a rising loss rate points at a carrier's line before callers complain).
    pub rtp_packets_lost: AtomicU64,
    pub rtcp_packets_in: AtomicU64,
    /// Outbound legs placed by forking forward routes, and those of them ended by switchd
    /// (another leg answered, the caller hung up, or the ring time ran out).
    pub fork_legs: AtomicU64,
    pub fork_legs_dropped: AtomicU64,
    /// Audio frames from logged-in desks handed to the call engine.
    pub desk_audio_frames: AtomicU64,
    /// Desk datagrams dropped: not logged in, malformed, or no engine (or a full one) to take them.
    pub desk_audio_dropped: AtomicU64,
    /// How late each call's 20 ms media tick fired after its scheduled instant.
    pub media_ticks: TickLateness,
}

/// Upper bounds (microseconds) of the [`TickLateness`] buckets; a tick 20 ms late or more has
/// missed its frame's slot entirely.
const LATENESS_BOUNDS_MICROS: [u64; 6] = [1_000, 5_000, 20_000, 60_000, 200_000, 1_000_000];

/// A histogram of media-tick lateness: a tick that fires late sends its frame late (the caller
/// hears a gap, then the catch-up burst), whether the runtime was busy or the application was
/// not waiting on the tick (a store write between two prompts).
#[derive(Default)]
pub struct TickLateness {
    /// Per bucket, not cumulative; the last one is everything above the largest bound.
    buckets: [AtomicU64; LATENESS_BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
    max_micros: AtomicU64,
}

impl TickLateness {
    pub fn observe(&self, late: std::time::Duration) {
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENESS_BOUNDS_MICROS.iter().position(|b| micros <= *b).unwrap_or(LATENESS_BOUNDS_MICROS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        if micros > 0 {
            self.sum_micros.fetch_add(micros, Ordering::Relaxed);
            if micros > self.max_micros.load(Ordering::Relaxed) {
                self.max_micros.fetch_max(micros, Ordering::Relaxed);
            }
        }
    }

    fn render(&self, out: &mut String) {
        let name = "rexian_media_tick_lateness_seconds";
        let _ = writeln!(out, "# HELP {name} How late calls' 20 ms media ticks fired after their scheduled instant\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            match LATENESS_BOUNDS_MICROS.get(i) {
                Some(bound) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {cumulative}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let max = "rexian_media_tick_lateness_max_seconds";
        let _ = writeln!(
            out,
            "# HELP {max} The latest any media tick fired since start\n# TYPE {max} gauge\n{max} {}",
            self.max_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
    }
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
            ("rexian_rtp_packets_ignored_total", "Datagrams on RTP and RTCP ports that were not the call's media", &self.rtp_packets_ignored),
            ("rexian_rtp_packets_lost_total", "Callers' RTP packets lost (RTCP sequence accounting) on finished calls", &self.rtp_packets_lost),
            ("rexian_rtcp_packets_in_total", "RTCP packets received from callers on finished calls", &self.rtcp_packets_in),
            ("rexian_fork_legs_total", "Outbound legs placed by forking forward routes", &self.fork_legs),
            ("rexian_fork_legs_dropped_total", "Forked legs ended by switchd (another answered, caller gone, ring time up)", &self.fork_legs_dropped),
            ("rexian_desk_audio_frames_total", "Audio frames from logged-in desks handed to the call engine", &self.desk_audio_frames),
            ("rexian_desk_audio_dropped_total", "Desk datagrams dropped (not logged in, malformed, or no engine to take them)", &self.desk_audio_dropped),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
        }
        self.media_ticks.render(&mut out);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tick_lateness_renders_cumulative_buckets_and_the_max() {
        let m = Metrics::default();
        for ms in [0, 0, 3, 25, 70, 2_000] {
            m.media_ticks.observe(Duration::from_millis(ms));
        }
        let text = m.render();
        for line in [
            "rexian_media_tick_lateness_seconds_bucket{le=\"0.001\"} 2",
            "rexian_media_tick_lateness_seconds_bucket{le=\"0.005\"} 3",
            "rexian_media_tick_lateness_seconds_bucket{le=\"0.02\"} 3",
            "rexian_media_tick_lateness_seconds_bucket{le=\"0.06\"} 4",
            "rexian_media_tick_lateness_seconds_bucket{le=\"0.2\"} 5",
            "rexian_media_tick_lateness_seconds_bucket{le=\"1\"} 5",
            "rexian_media_tick_lateness_seconds_bucket{le=\"+Inf\"} 6",
            "rexian_media_tick_lateness_seconds_count 6",
            "rexian_media_tick_lateness_seconds_sum 2.098",
            "rexian_media_tick_lateness_max_seconds 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
    }
}
