//! switchd registers with its carrier at start: SIPp plays the carrier's registrar, challenges
//! the REGISTER with digest auth, checks the credentials (`<verifyauth>`) and grants the
//! binding. The daemon reports the registration in its log and metrics, and never logs the
//! password.

use rexian_tests::{free_udp_port, sipp_uas_command, tail, Daemon};
use std::time::{Duration, Instant};

#[test]
fn switchd_registers_with_a_registrar_that_challenges() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registrar_port = free_udp_port();
    let (mut cmd, _scratch) = sipp_uas_command("registrar_auth.xml", registrar_port);
    let registrar = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sipp (Debian package sip-tester)");
    // No keep-alives: SIPp's scenario expects REGISTERs only.
    let config = format!(
        "[telephony]\nkeepalive_secs = 0\n\n[[telephony.trunks]]\nname = \"carrier\"\n\
         addresses = [\"127.0.0.1\"]\nproxy = \"127.0.0.1:{registrar_port}\"\nusername = \"rexian\"\n\
         password = \"secret\"\nregister = true\nregister_expires_secs = 600\n"
    );
    let daemon = Daemon::start_with_config(dir.path(), &config, &[]);

    let out = registrar.wait_with_output().expect("sipp");
    assert!(
        out.status.success(),
        "the registrar (SIPp) saw a REGISTER with valid credentials:\n{}\n{}",
        tail(&out.stdout),
        tail(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = daemon.metrics_page();
        if body.contains("rexian_trunks_registered 1\n") {
            break;
        }
        assert!(Instant::now() < deadline, "no registration in the metrics:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = daemon.log();
    assert!(log.contains("trunk registered"), "{log}");
    assert!(!log.contains("secret"), "the password stays out of the log");
}
