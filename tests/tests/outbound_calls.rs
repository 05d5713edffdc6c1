//! An agent calls out: the headless desk client dials an external number, switchd places the
//! call through the outbound trunk, and SIPp plays the carrier — challenging with digest auth,
//! ringing, answering with G.711 A-law and playing Debian's capture. The desk hears it, hangs
//! up, and the call detail record says what happened. With a wrong password the carrier
//! refuses and the desk is told the call was rejected.

use rexian_shared::audio::OpusDecoderVoip;
use rexian_shared::{Event, PhoneNumber};
use rexian_tests::{next_call_event, free_udp_port, sipp_uas_command, tail, Daemon};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn daemon_with_carrier(dir: &std::path::Path, carrier_port: u16, password: &str) -> Daemon {
    let config = format!(
        "[telephony]\noutbound_caller_id = \"12365\"\n\n[[telephony.trunks]]\nname = \"carrier\"\n\
         addresses = [\"127.0.0.1\"]\nproxy = \"127.0.0.1:{carrier_port}\"\nusername = \"rexian\"\npassword = \"{password}\"\n"
    );
    Daemon::start_with_config(dir, &config, &["--demo"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_dials_out_through_a_carrier_that_challenges() {
    let dir = tempfile::tempdir().expect("temp dir");
    let carrier_port = free_udp_port();
    let (mut cmd, _scratch) = sipp_uas_command("carrier_auth.xml", carrier_port);
    let carrier = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("start sipp");
    let daemon = daemon_with_carrier(dir.path(), carrier_port, "secret");
    let desk = Arc::new(daemon.login_demo("agent1").await);

    let number = PhoneNumber::parse("138 0013 8000").expect("number");
    let call = desk.dial(&number).await.expect("dial");
    assert_eq!(next_call_event(&desk).await, Event::CallRinging { call });
    assert_eq!(next_call_event(&desk).await, Event::CallConnected { call });
    // Listen for 3 s: the carrier plays speech.
    let heard = Arc::new(Mutex::new(Vec::<i16>::new()));
    let listener = {
        let (desk, heard) = (desk.clone(), heard.clone());
        tokio::spawn(async move {
            let mut decoder = OpusDecoderVoip::new(8000).expect("decoder");
            while let Ok(frame) = desk.recv_audio().await {
                if frame.call == call {
                    heard.lock().expect("lock").extend(decoder.decode(&frame.payload).expect("decode"));
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    listener.abort();
    desk.hangup_call(call).await.expect("hang up");
    let Event::CallEnded { cause, .. } = next_call_event(&desk).await else { panic!("expected the end") };
    assert_eq!(cause, "switch_hangup");

    let heard = heard.lock().expect("lock").clone();
    let loud = heard
        .chunks(160)
        .filter(|f| (f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 160.0).sqrt() > 200.0)
        .count();
    assert!(loud >= 50, "the desk heard only {loud} voiced 20 ms frames of the carrier's speech");
    let out = tokio::task::spawn_blocking(move || carrier.wait_with_output()).await.expect("join").expect("sipp");
    assert!(out.status.success(), "the carrier (SIPp) saw the call through to BYE:\n{}\n{}", tail(&out.stdout), tail(&out.stderr));

    let cdr = daemon.ended_calls().remove(0);
    assert_eq!(cdr["direction"], "outbound");
    assert_eq!(cdr["trunk"], "carrier");
    assert_eq!(cdr["callee"], "13800138000");
    assert_eq!(cdr["caller"], "12365");
    assert_eq!(cdr["cause"], "switch_hangup");
    assert!(cdr["answered_at"].is_string(), "{cdr:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_trunk_credentials_are_refused_and_the_desk_is_told() {
    let dir = tempfile::tempdir().expect("temp dir");
    let carrier_port = free_udp_port();
    let (mut cmd, _scratch) = sipp_uas_command("carrier_auth.xml", carrier_port);
    let carrier = cmd.stdout(std::process::Stdio::null()).spawn().expect("start sipp");
    let daemon = daemon_with_carrier(dir.path(), carrier_port, "not-the-password");
    let desk = daemon.login_demo("agent1").await;
    let call = desk.dial(&PhoneNumber::parse("13800138000").expect("number")).await.expect("dial");
    let Event::CallEnded { call: ended, cause } = next_call_event(&desk).await else { panic!("expected the end") };
    assert_eq!((ended, cause.as_str()), (call, "rejected"));
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["cause"].as_str(), cdr["sip_status"].as_u64()), (Some("rejected"), Some(403)), "{cdr:#}");
    let mut carrier = carrier;
    let _ = carrier.kill();
    let _ = carrier.wait();
}
