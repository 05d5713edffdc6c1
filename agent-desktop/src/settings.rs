//! The agent's own settings, kept per OS user in the `directories` config path
//! (`~/.config/rexian/agent-desktop.json` on Linux, beside `known_servers.json`, the pinned
//! server certificates).

use crate::i18n::Lang;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The last server logged in to (`host:port`).
    pub server: String,
    /// The last user name logged in with.
    pub username: String,
    pub lang: Lang,
    /// Chosen microphone and headset by name; `None` is the system default.
    pub input_device: Option<String>,
    pub output_device: Option<String>,
}

/// The per-user config directory: `$XDG_CONFIG_HOME/rexian` (Linux), the platform's
/// equivalent elsewhere; the current directory if the OS names no home.
pub fn config_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "rexian")
        .map(|d| d.config_dir().to_owned())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where printed forms and exported lists go: the user's documents folder (`~/Documents`,
/// `~/文档` on a Chinese desktop), else the config directory.
pub fn documents_dir() -> PathBuf {
    directories::UserDirs::new().and_then(|d| d.document_dir().map(Path::to_owned)).unwrap_or_else(config_dir)
}

impl Settings {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("agent-desktop.json")
    }

    /// The saved settings; defaults when there are none or the file is unreadable.
    pub fn load(dir: &Path) -> Settings {
        std::fs::read(Self::path(dir)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(Self::path(dir), json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_default_to_chinese() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(Settings::load(dir.path()).lang, Lang::Zh);
        let s = Settings { server: "10.0.0.5:7443".into(), username: "agent1".into(), lang: Lang::En, input_device: Some("mic".into()), output_device: None };
        s.save(dir.path()).expect("save");
        assert_eq!(Settings::load(dir.path()), s);
    }
}
