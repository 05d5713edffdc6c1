//! Where a desktop keeps its per-user files (pinned server certificates, settings).

use std::path::PathBuf;

/// `$XDG_CONFIG_HOME/rexian` or `~/.config/rexian`.
pub fn config_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("rexian")
}

/// The pinned server fingerprints of this user.
pub fn known_servers_path() -> PathBuf {
    config_dir().join("known_servers.json")
}
