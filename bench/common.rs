//! Helpers the benchmark binaries share: settings from the environment, a process's CPU and
//! memory from /proc, switchd's Prometheus metrics, SIPp's final statistics.

// Each benchmark binary compiles this module and uses a part of it.
#![allow(dead_code)]

use anyhow::{Context, Result};
use rexian_tests::Daemon;

pub fn env_u32(name: &str, default: u32) -> Result<u32> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name} must be a number")),
        Err(_) => Ok(default),
    }
}

/// (user + system CPU seconds, resident bytes) of a process, from /proc.
pub fn cpu_and_rss(pid: u32) -> Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((ticks / 100.0, rss_kb * 1024))
}

/// One metric's value from switchd's Prometheus endpoint.
pub fn metric(daemon: &Daemon, name: &str) -> Result<f64> {
    metric_in(&metrics_text(daemon)?, name).with_context(|| format!("metric {name} missing"))
}

/// switchd's Prometheus page (`GET /metrics`).
pub fn metrics_text(daemon: &Daemon) -> Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(daemon.metrics_addr)?;
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

/// The value of the sample `name` (with its labels, e.g. `x_bucket{le="0.02"}`) in `text`.
pub fn metric_in(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

/// The cumulative column of a SIPp final-statistics row such as `Successful call`.
pub fn stat_count(screen: &str, row: &str) -> u32 {
    screen
        .lines()
        .rfind(|l| l.trim_start().starts_with(row))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}


/// Waits on `sip` for the 200 to our INVITE and returns `;tag=…` of its To header, for the
/// ACK and BYE; a 4xx or 5xx is an error.
pub fn await_invite_ok(sip: &std::net::UdpSocket) -> Result<String> {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = sip.recv(&mut buf).context("waiting for the 200 to our INVITE")?;
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.starts_with("SIP/2.0 200") {
            let tag = text
                .lines()
                .find(|l| l.starts_with("To:"))
                .and_then(|l| l.split(";tag=").nth(1))
                .context("To tag in the 200")?
                .trim()
                .to_owned();
            return Ok(format!(";tag={tag}"));
        }
        if text.starts_with("SIP/2.0 4") || text.starts_with("SIP/2.0 5") {
            anyhow::bail!("INVITE refused: {}", text.lines().next().unwrap_or_default());
        }
    }
}
