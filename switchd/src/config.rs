//! Configuration: built-in defaults, then the config file (TOML), then `REXIAN_*` environment
//! variables, then command-line flags. Unknown keys are refused with their name, wherever they
//! come from. Every key and its default is documented in `assets/switchd.example.toml`, which a
//! test keeps in step with [`Config::default`].
//!
//! Environment variables name a key in upper case, with `__` between a section and its key:
//! `REXIAN_DESK_ADDR=0.0.0.0:7443`, `REXIAN_AUTH__SESSION_HOURS=8`.

use crate::auth::AuthConfig;
use crate::cases::deadline::DeadlineRules;
use crate::cases::Limits;
use crate::engine::config::TelephonyConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Database, certificates, attachments and recordings live here.
    pub data_dir: PathBuf,
    /// The desk (QUIC) server's address.
    pub desk_addr: SocketAddr,
    /// The SIP address (used by the telephony engine).
    pub sip_addr: SocketAddr,
    /// Prometheus metrics (`/metrics`); keep it on loopback.
    pub metrics_addr: SocketAddr,
    /// Seed demonstration data (departments, users of every role, tickets, articles) into an
    /// empty data directory.
    pub demo_data: bool,
    /// Offset of local time from UTC in hours; China Standard Time is +8.
    pub utc_offset_hours: i32,
    /// `tracing` filter, e.g. `info` or `switchd=debug`.
    pub log: String,
    /// How often reminders and overdue tickets are checked, in seconds.
    pub reminder_interval_secs: u64,
    pub auth: AuthConfig,
    pub deadlines: DeadlineRules,
    pub limits: Limits,
    pub telephony: TelephonyConfig,
    pub ivr: crate::ivr::IvrConfig,
    pub acd: crate::acd::actor::AcdSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("rexian-data"),
            desk_addr: SocketAddr::from(([0, 0, 0, 0], 7443)),
            sip_addr: SocketAddr::from(([0, 0, 0, 0], 5060)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9365)),
            demo_data: false,
            utc_offset_hours: 8,
            log: "info".into(),
            reminder_interval_secs: 5,
            auth: AuthConfig::default(),
            deadlines: DeadlineRules::default(),
            limits: Limits::default(),
            telephony: TelephonyConfig::default(),
            ivr: crate::ivr::IvrConfig::default(),
            acd: crate::acd::actor::AcdSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    /// A key is unknown or a value has the wrong type (the message names the key).
    #[error("invalid configuration ({origin}): {message}")]
    Invalid { origin: String, message: String },
}

impl Config {
    /// Loads defaults, then `file` (if given), then the environment variables in `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut table = toml::Table::new();
        let mut origin = "defaults".to_owned();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
            table = text.parse::<toml::Table>().map_err(|e| ConfigError::Syntax { path: path.into(), message: e.to_string() })?;
            origin = format!("file {}", path.display());
        }
        let mut from_env = Vec::new();
        for (key, value) in env {
            let Some(name) = key.strip_prefix("REXIAN_") else { continue };
            let path: Vec<String> = name.to_ascii_lowercase().split("__").map(str::to_owned).collect();
            set_path(&mut table, &path, env_value(&value));
            from_env.push(key);
        }
        if !from_env.is_empty() {
            origin = format!("{origin} and environment {}", from_env.join(", "));
        }
        Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Invalid { origin, message: e.to_string() })
    }
}

/// Environment values are strings; take numbers and booleans for what they look like.
fn env_value(s: &str) -> toml::Value {
    if let Ok(i) = s.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match s {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(s.to_owned()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(sub) = entry {
                set_path(sub, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_example_file_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/switchd.example.toml");
        let loaded = Config::load(Some(&path), []).expect("example config loads");
        assert_eq!(loaded, Config::default());
    }

    #[test]
    fn environment_overrides_and_nests() {
        let c = Config::load(None, env(&[("REXIAN_DESK_ADDR", "127.0.0.1:9000"), ("REXIAN_AUTH__SESSION_HOURS", "3"), ("PATH", "/bin")]))
            .expect("loads");
        assert_eq!(c.desk_addr, "127.0.0.1:9000".parse().expect("addr"));
        assert_eq!(c.auth.session_hours, 3);
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = Config::load(None, env(&[("REXIAN_DESK_ADRR", "x")])).expect_err("unknown");
        let msg = err.to_string();
        assert!(msg.contains("desk_adrr") && msg.contains("REXIAN_DESK_ADRR"), "{msg}");
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[auth]\nsesion_hours = 2\n").expect("write");
        let msg = Config::load(Some(&file), []).expect_err("unknown").to_string();
        assert!(msg.contains("sesion_hours"), "{msg}");
    }
}
