//! Parallel forking (issue 3): a forward route with several targets rings them all at once.
//! Real SIPp processes are the targets (`tests/sipp/fork_*.xml`) and the caller; each target's
//! scenario requires what it must receive (a CANCEL, an ACK and BYE), so a missing message
//! fails the test. The call record is read through the CLI.

use rexian_tests::{free_udp_port, sipp_caller, sipp_command, sipp_uas_command, tail, CallerStep, Daemon};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// A SIPp target on a free port running `scenario` with `extra` arguments.
struct Target {
    port: u16,
    child: Child,
    _scratch: tempfile::TempDir,
    scenario: &'static str,
}

impl Target {
    fn start(scenario: &'static str, extra: &[&str]) -> Target {
        let port = free_udp_port();
        let (mut cmd, scratch) = sipp_uas_command(scenario, port);
        let child = cmd.args(extra).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start sipp");
        Target { port, child, _scratch: scratch, scenario }
    }

    fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.port)
    }

    /// Waits (at most 30 s) for the scenario's end; panics unless SIPp completed it.
    fn passed(mut self, daemon: &Daemon) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let out: Output = self.child.wait_with_output().expect("sipp output");
        assert!(
            out.status.success(),
            "target {} ({}) exited with {}\nstdout:\n{}\nstderr:\n{}\nswitchd:\n{}",
            self.port,
            self.scenario,
            out.status,
            tail(&out.stdout),
            tail(&out.stderr),
            tail(daemon.log().as_bytes())
        );
    }
}

/// switchd with the caller's trunk and 9198 forwarded to `targets` at once.
fn daemon_forking_to(dir: &std::path::Path, targets: &[String]) -> Daemon {
    daemon_forking_for(dir, targets, 20)
}

/// [`daemon_forking_to`] ringing for `ring_secs`.
fn daemon_forking_for(dir: &std::path::Path, targets: &[String], ring_secs: u32) -> Daemon {
    let to = targets.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ");
    let config = format!(
        "[telephony]\n[[telephony.trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.1\"]\n\n\
         [[telephony.routes]]\nnumber = \"9198\"\napp = \"forward\"\nto = [{to}]\nring_secs = {ring_secs}\n"
    );
    Daemon::start_with_config(dir, &config, &[])
}

/// Runs a caller scenario of `tests/sipp/` dialling 9198; panics unless it completes.
fn caller(scenario: &str, daemon: &Daemon) {
    let (mut cmd, _dir) = sipp_command(scenario, daemon.sip_addr, "9198", 1);
    let out = cmd.output().expect("run sipp");
    assert!(out.status.success(), "caller {scenario} exited with {}\n{}\n{}\nswitchd:\n{}", out.status, tail(&out.stdout), tail(&out.stderr), tail(daemon.log().as_bytes()));
}

/// The caller speaks for 3 s then hangs up.
fn talking_caller(daemon: &Daemon) {
    sipp_caller(daemon.sip_addr, "9198", "13800138000", &[CallerStep::Speak, CallerStep::Pause(3000)], false);
}

#[test]
fn the_first_target_to_answer_takes_the_call_and_the_other_is_cancelled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let answering = Target::start("fork_answer.xml", &["-rtp_echo"]);
    let ringing = Target::start("fork_ring_cancel.xml", &[]);
    let (a, b) = (answering.uri("a"), ringing.uri("b"));
    let daemon = daemon_forking_to(dir.path(), &[b.clone(), a.clone()]);
    talking_caller(&daemon);
    ringing.passed(&daemon);
    answering.passed(&daemon);

    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["route"].as_str(), cdr["cause"].as_str()), (Some("forward"), Some("caller_hangup")), "{cdr:#}");
    assert_eq!(cdr["callee"].as_str(), Some(a.as_str()), "the answering target is the callee: {cdr:#}");
    assert!(cdr["answered_at"].is_string(), "{cdr:#}");
    let from_caller = cdr["quality"]["packets_received"].as_u64().unwrap_or(0);
    assert!(from_caller >= 100, "switchd took only {from_caller} RTP packets from the caller: {cdr:#}");
    // The target echoes what it gets: the caller's speech went out through the bridge and
    // came back to the caller.
    let to_caller = daemon.metric("rexian_rtp_packets_out_total");
    assert!(to_caller >= 100, "only {to_caller} RTP packets reached the caller from the answering target");
    assert_eq!((daemon.metric("rexian_fork_legs_total"), daemon.metric("rexian_fork_legs_dropped_total")), (2, 1));
}

#[test]
fn the_caller_cancelling_cancels_every_ringing_target() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Target::start("fork_ring_cancel.xml", &[]);
    let second = Target::start("fork_ring_cancel.xml", &[]);
    let daemon = daemon_forking_to(dir.path(), &[first.uri("a"), second.uri("b")]);
    caller("fork_caller_cancel.xml", &daemon);
    first.passed(&daemon);
    second.passed(&daemon);

    let cdr = daemon.ended_calls().remove(0);
    assert_eq!(cdr["cause"].as_str(), Some("cancelled"), "{cdr:#}");
    assert!(cdr["answered_at"].is_null(), "{cdr:#}");
    assert_eq!(cdr["callee"].as_str(), Some("9198"), "nobody answered: the dialled number stays: {cdr:#}");
    assert_eq!(daemon.metric("rexian_fork_legs_dropped_total"), 2);
}

#[test]
fn when_every_target_refuses_the_caller_gets_the_best_response() {
    let dir = tempfile::tempdir().expect("temp dir");
    let busy = Target::start("fork_reject_486.xml", &[]);
    let unavailable = Target::start("fork_reject_503.xml", &[]);
    let daemon = daemon_forking_to(dir.path(), &[unavailable.uri("a"), busy.uri("b")]);
    // fork_caller_busy.xml requires 486: a 4xx beats a 5xx, whichever came first.
    caller("fork_caller_busy.xml", &daemon);
    busy.passed(&daemon);
    unavailable.passed(&daemon);

    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["cause"].as_str(), cdr["sip_status"].as_u64()), (Some("rejected"), Some(486)), "{cdr:#}");
    assert!(cdr["answered_at"].is_null(), "{cdr:#}");
}

#[test]
fn the_ring_time_running_out_cancels_every_target_and_gives_480() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Target::start("fork_ring_cancel.xml", &[]);
    let second = Target::start("fork_ring_cancel.xml", &[]);
    let daemon = daemon_forking_for(dir.path(), &[first.uri("a"), second.uri("b")], 2);
    let started = Instant::now();
    caller("fork_caller_480.xml", &daemon);
    let rang = started.elapsed();
    assert!(rang >= Duration::from_millis(1900) && rang < Duration::from_secs(6), "480 after {rang:?}, ring_secs = 2");
    first.passed(&daemon);
    second.passed(&daemon);

    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["cause"].as_str(), cdr["sip_status"].as_u64()), (Some("no_answer"), Some(480)), "{cdr:#}");
}

#[test]
fn a_2xx_crossing_the_cancel_is_acked_and_ended_with_bye() {
    let dir = tempfile::tempdir().expect("temp dir");
    let answering = Target::start("fork_answer.xml", &["-rtp_echo"]);
    // Answers 200 after taking the CANCEL: its scenario needs the ACK and a BYE.
    let late = Target::start("fork_answer_after_cancel.xml", &[]);
    let a = answering.uri("a");
    let daemon = daemon_forking_to(dir.path(), &[a.clone(), late.uri("b")]);
    talking_caller(&daemon);
    late.passed(&daemon);
    answering.passed(&daemon);

    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["callee"].as_str(), cdr["cause"].as_str()), (Some(a.as_str()), Some("caller_hangup")), "{cdr:#}");
}
