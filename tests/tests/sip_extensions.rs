//! SIP extensions against a real peer (SIPp, Debian's `sip-tester`): session timers (RFC 4028)
//! with switchd refreshing and with a caller that forgets to, reliable provisionals and PRACK
//! (RFC 3262), and hold by UPDATE (RFC 3311) on inbound calls; PRACK and refreshes on an agent's
//! outbound call through a carrier that uses both. The scenarios are in `tests/sipp/`; the session
//! tests lower `session_min_se_secs` so that intervals of a few seconds are accepted.

use rexian_shared::{Event, PhoneNumber};
use rexian_tests::{free_udp_port, next_call_event, sipp, sipp_uas_command, tail, Daemon};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A demo daemon that accepts session intervals down to 2 s.
fn short_sessions() -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start_with_config(dir.path(), "[telephony]\nsession_min_se_secs = 2\n", &["--demo"]);
    (daemon, dir)
}

#[test]
fn switchd_refreshes_the_session_when_the_caller_asks_it_to() {
    let (daemon, _dir) = short_sessions();
    // The scenario fails unless two refresh re-INVITEs arrive, 2 s apart.
    sipp("session_refresh_uas.xml", daemon.sip_addr, "9196", 1);
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["route"].as_str(), cdr["cause"].as_str()), (Some("echo"), Some("caller_hangup")), "{cdr:#}");
}

#[test]
fn a_session_the_caller_never_refreshes_is_hung_up_and_recorded_so() {
    let (daemon, _dir) = short_sessions();
    let started = Instant::now();
    sipp("session_expiry_uac.xml", daemon.sip_addr, "9196", 1);
    // 6 s less min(32, 6/3): switchd's BYE comes 4 s after the answer.
    assert!(started.elapsed() >= Duration::from_secs(4), "BYE after {:?}", started.elapsed());
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["route"].as_str(), cdr["cause"].as_str()), (Some("echo"), Some("session_expired")), "{cdr:#}");
    assert!(cdr["answered_at"].is_string(), "{cdr:#}");
}

#[test]
fn a_session_interval_below_the_minimum_is_refused_422() {
    // The default minimum is 90 s: 4 s is refused, the scenario's 200 never comes.
    let daemon = Daemon::start_demo();
    let (mut cmd, _dir) = rexian_tests::sipp_command("session_refresh_uas.xml", daemon.sip_addr, "9196", 1);
    let output = cmd.args(["-timeout", "10s"]).output().expect("run sipp");
    assert!(!output.status.success());
    assert!(daemon.log().contains("below our minimum, 422"), "{}", daemon.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_requiring_100rel_gets_a_reliable_180_pracks_it_and_is_connected() {
    let daemon = Daemon::start_demo();
    let desk = Arc::new(daemon.login_demo("agent1").await);
    let target = daemon.sip_addr;
    let caller = tokio::task::spawn_blocking(move || sipp("prack_100rel.xml", target, "8001", 1));
    let Event::CallOffered { call, caller: from, .. } = next_call_event(&desk).await else { panic!("expected the call to be offered") };
    assert_eq!(from, "13800138000");
    desk.answer_call(call).await.expect("answer");
    assert_eq!(next_call_event(&desk).await, Event::CallConnected { call });
    caller.await.expect("the scenario (180 with RSeq, PRACK, 200s, ACK, BYE) completed");
    let Event::CallEnded { cause, .. } = next_call_event(&desk).await else { panic!("expected the end of the call") };
    assert_eq!(cause, "caller_hangup");
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["route"].as_str(), cdr["cause"].as_str()), (Some("desk"), Some("caller_hangup")), "{cdr:#}");
    assert!(cdr["answered_at"].is_string(), "{cdr:#}");
}

#[test]
fn update_with_sendonly_puts_the_call_on_hold_and_another_resumes_it() {
    let daemon = Daemon::start_demo();
    // The scenario checks the answers: a=recvonly to the hold, SDP to the resume, 200 to the
    // bodiless refresh.
    sipp("update_hold.xml", daemon.sip_addr, "9196", 1);
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["route"].as_str(), cdr["cause"].as_str()), (Some("echo"), Some("caller_hangup")), "{cdr:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_call_pracks_the_carriers_reliable_180_and_refreshes_as_the_200_asks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let carrier_port = free_udp_port();
    let (mut cmd, _scratch) = sipp_uas_command("carrier_100rel_timer.xml", carrier_port);
    let carrier = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("start sipp");
    let config = format!(
        "[telephony]\n[[telephony.trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.1\"]\nproxy = \"127.0.0.1:{carrier_port}\"\n"
    );
    let daemon = Daemon::start_with_config(dir.path(), &config, &["--demo"]);
    let desk = daemon.login_demo("agent1").await;
    let call = desk.dial(&PhoneNumber::parse("13800138000").expect("number")).await.expect("dial");
    assert_eq!(next_call_event(&desk).await, Event::CallRinging { call });
    assert_eq!(next_call_event(&desk).await, Event::CallConnected { call });
    // The carrier's interval is 4 s: our refresh goes at 2 s; stay past it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    desk.hangup_call(call).await.expect("hang up");
    let Event::CallEnded { cause, .. } = next_call_event(&desk).await else { panic!("expected the end") };
    assert_eq!(cause, "switch_hangup");
    let out = tokio::task::spawn_blocking(move || carrier.wait_with_output()).await.expect("join").expect("sipp");
    assert!(out.status.success(), "the carrier saw the PRACK, the refresh and the BYE:\n{}\n{}", tail(&out.stdout), tail(&out.stderr));
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["direction"].as_str(), cdr["cause"].as_str()), (Some("outbound"), Some("switch_hangup")), "{cdr:#}");
}
