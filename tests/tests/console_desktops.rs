//! The supervisor desktop's console form, run as a user runs it: log in over the real desk
//! protocol, pin the server's certificate in the user's settings, refuse a changed one. (The
//! agent desktop is a window now: tests/tests/agent_desktop.rs drives it.)

use rexian_tests::{workspace_bin, Daemon, DEMO_PASSWORD};
use std::process::{Command, Output};

fn run(app: &str, home: &std::path::Path, server: &str, user: &str) -> Output {
    Command::new(workspace_bin(app))
        .args([server, user])
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env("REXIAN_PASSWORD", DEMO_PASSWORD)
        .output()
        .expect("run desktop")
}

#[test]
fn the_supervisor_logs_in_and_pins_the_certificate() {
    let daemon = Daemon::start_demo();
    let home = tempfile::tempdir().expect("home");
    let server = daemon.desk_addr.to_string();

    let out = run("supervisor-desktop", home.path(), &server, "supervisor");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("张班长") && text.contains("超期 / overdue"), "{text}");
    let pins = std::fs::read_to_string(home.path().join(".config/rexian/known_servers.json")).expect("pins saved");
    assert!(pins.contains(&daemon.fingerprint));

    // Another server behind the pinned address: the desktop refuses and says why.
    let pins = pins.replace(&daemon.fingerprint, "00:11");
    std::fs::write(home.path().join(".config/rexian/known_servers.json"), pins).expect("tamper");
    let out = run("supervisor-desktop", home.path(), &server, "supervisor");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("证书已变更"), "{}", String::from_utf8_lossy(&out.stderr));
}
