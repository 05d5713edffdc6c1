//! Spawns the real `switchd` binary on free ports with a fresh data directory, and connects to it
//! through the headless desk client over real QUIC. Used by the end-to-end tests and benchmarks.

use rexian_shared::client::DeskClient;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DEMO_PASSWORD: &str = "rexian-demo";

/// The switchd binary of the same build profile. `SWITCHD_BIN` overrides it (not `REXIAN_*`:
/// switchd reads those as configuration).
pub fn switchd_bin() -> PathBuf {
    match std::env::var("SWITCHD_BIN") {
        Ok(p) => PathBuf::from(p),
        Err(_) => workspace_bin("switchd"),
    }
}

/// A binary of the workspace (the package and the binary share the name), of the same build
/// profile as the running executable: target/<profile>/NAME, beside a bench binary or one level
/// above a test binary in deps/. Built when it is missing.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let exe_dir = exe.parent().expect("target/<profile>");
    let profile_dir = if exe_dir.ends_with("deps") { exe_dir.parent().expect("target/<profile>") } else { exe_dir };
    let bin = profile_dir.join(name);
    if !bin.exists() {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-p", name, "--bin", name]);
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building {name} failed");
    }
    bin
}

/// A running switchd; killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub desk_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub sip_addr: SocketAddr,
    pub fingerprint: String,
    _tmp: Option<tempfile::TempDir>,
}

impl Daemon {
    /// A new daemon with demo data in a fresh temporary data directory.
    pub fn start_demo() -> Daemon {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut d = Daemon::start_in(tmp.path(), &["--demo"]);
        d._tmp = Some(tmp);
        d
    }

    /// Starts switchd on `data_dir` (kept by the caller) with extra `run` arguments.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Daemon {
        let _ = std::fs::create_dir_all(data_dir);
        let _ = std::fs::remove_file(data_dir.join("switchd.ready"));
        let log = std::fs::File::options().create(true).append(true).open(data_dir.join("switchd.log")).ok();
        let mut cmd = Command::new(switchd_bin());
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["run", "--desk-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--sip-addr", "127.0.0.1:0"])
            .args(extra)
            .env("REXIAN_REMINDER_INTERVAL_SECS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match log {
            Some(f) => cmd.stderr(f),
            None => cmd.stderr(Stdio::null()),
        };
        let mut child = cmd.spawn().expect("spawn switchd");
        let ready = wait_ready(data_dir, &mut child);
        Daemon {
            child: Some(child),
            data_dir: data_dir.to_owned(),
            desk_addr: ready["desk_addr"].as_str().and_then(|a| a.parse().ok()).expect("desk_addr"),
            metrics_addr: ready["metrics_addr"].as_str().and_then(|a| a.parse().ok()).expect("metrics_addr"),
            sip_addr: ready["sip_addr"].as_str().and_then(|a| a.parse().ok()).expect("sip_addr"),
            fingerprint: ready["fingerprint"].as_str().unwrap_or_default().to_owned(),
            _tmp: None,
        }
    }

    /// Connects a desk client that requires this daemon's certificate.
    pub async fn connect(&self) -> DeskClient {
        DeskClient::connect_expecting(self.desk_addr, Some(self.fingerprint.clone()), "rexian-tests")
            .await
            .expect("connect to switchd")
    }

    /// Connects and logs in.
    pub async fn login(&self, user: &str, password: &str) -> DeskClient {
        let c = self.connect().await;
        c.login(user, password).await.unwrap_or_else(|e| panic!("login {user}: {e}"));
        c
    }

    pub async fn login_demo(&self, user: &str) -> DeskClient {
        self.login(user, DEMO_PASSWORD).await
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return false };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        false
    }

    /// Runs a `switchd` admin command on this daemon's data directory.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        run_cli(&self.data_dir, args)
    }

    /// The log the daemon wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("switchd.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn run_cli(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(switchd_bin()).arg("--data-dir").arg(data_dir).args(args).output().expect("run switchd cli")
}

fn wait_ready(data_dir: &Path, child: &mut Child) -> serde_json::Value {
    let path = data_dir.join("switchd.ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(data_dir.join("switchd.log")).unwrap_or_default();
            panic!("switchd exited with {status} before it was ready; its log:\n{log}");
        }
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(v) = serde_json::from_slice(&bytes) {
                return v;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(data_dir.join("switchd.log")).unwrap_or_default();
    panic!("switchd did not become ready within 60 s; its log:\n{log}");
}

/// Local date on the daemon's clock (UTC+8).
pub fn today_cst() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}
