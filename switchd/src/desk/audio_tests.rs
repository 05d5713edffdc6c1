//! The desk audio plumbing over real QUIC: a desk server and `DeskClient`s in one process, on
//! loopback, exchanging audio frames as datagrams.

use super::*;
use crate::auth::{Auth, AuthConfig};
use crate::calendar::Calendar;
use crate::cases::deadline::DeadlineRules;
use crate::cases::{Cases, Limits};
use crate::desk::{self, Hub};
use crate::store::Store;
use rexian_shared::audio::{OpusDecoderVoip, OpusEncoderVoip, TIMESTAMP_TICKS_PER_FRAME};
use rexian_shared::client::DeskClient;
use rexian_shared::{NewUser, Request, Role};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const PASSWORD: &str = "rexian-audio-test";
const WAIT: Duration = Duration::from_secs(10);

struct Server {
    ctx: Arc<DeskContext>,
    addr: SocketAddr,
    endpoint: quinn::Endpoint,
    _dir: tempfile::TempDir,
}

/// A desk server on loopback with one agent, `agent1`.
async fn start(audio_in: Option<AudioSink>) -> Server {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&dir.path().join("t.db")).expect("store");
    let cases = Cases::new(
        store.clone(),
        Calendar::new(Vec::new()),
        DeadlineRules::default(),
        Limits::default(),
        dir.path().to_owned(),
    );
    let auth = Auth::new(store, AuthConfig::default()).expect("auth");
    let ctx = Arc::new(DeskContext {
        auth,
        cases,
        hub: Hub::default(),
        metrics: Arc::default(),
        utc_offset_hours: 8,
        audio_in,
        calls: None,
        prompts: None,
        acd: None,
    });
    let agent = NewUser {
        username: "agent1".into(),
        display_name: "话务员一".into(),
        role: Role::Agent,
        password: PASSWORD.into(),
        agent_no: Some("1001".into()),
        department_id: None,
    };
    ctx.auth.create_user(agent, "test", ctx.now()).await.expect("user");
    let identity = crate::certs::load_or_create(dir.path()).expect("certificate");
    let config = desk::server_config(identity).expect("server config");
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().expect("addr")).expect("listen");
    let addr = endpoint.local_addr().expect("local addr");
    tokio::spawn(desk::serve(endpoint.clone(), ctx.clone()));
    Server { ctx, addr, endpoint, _dir: dir }
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn count(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Twenty 20 ms frames of a 440 Hz tone at 8 kHz, Opus-encoded, as call `call`'s frames.
fn tone_frames(call: u64) -> Vec<AudioFrame> {
    let mut enc = OpusEncoderVoip::new(8000).expect("encoder");
    (0..20u16)
        .map(|seq| {
            let pcm: Vec<i16> = (0..160)
                .map(|i| {
                    let t = f64::from(u32::from(seq) * 160 + i) / 8000.0;
                    (6000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                })
                .collect();
            AudioFrame {
                call,
                seq,
                timestamp: u32::from(seq) * TIMESTAMP_TICKS_PER_FRAME,
                payload: enc.encode(&pcm).expect("encode"),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_crosses_real_quic_datagrams_both_ways_only_for_logged_in_desks() {
    let (sink, mut engine) = mpsc::channel(256);
    let server = start(Some(sink)).await;
    let metrics = server.ctx.metrics.clone();
    let client = DeskClient::connect_expecting(server.addr, None, "audio-test").await.expect("connect");
    let frames = tone_frames(7);

    // Before login: dropped unparsed, nothing reaches the engine.
    client.send_audio(&frames[0]).expect("send before login");
    wait_until("the unauthenticated frame to be dropped", || count(&metrics.desk_audio_dropped) == 1).await;
    assert!(engine.try_recv().is_err(), "audio from a desk that has not logged in must not reach the engine");

    // Desk → switchd.
    let session = client.login("agent1", PASSWORD).await.expect("login");
    for f in &frames {
        client.send_audio(f).expect("send");
    }
    let mut got = Vec::new();
    while got.len() < frames.len() {
        let incoming = tokio::time::timeout(WAIT, engine.recv()).await.expect("frame in time").expect("sink open");
        got.push(incoming);
    }
    let conn_id = got[0].conn_id;
    assert!(got.iter().all(|i| i.conn_id == conn_id && i.user_id == session.user.id));
    got.sort_by_key(|i| i.frame.seq);
    assert_eq!(got.iter().map(|i| i.frame.clone()).collect::<Vec<_>>(), frames, "frames arrive intact");
    // Counted just after the hand-over, so the count may trail the engine by a moment.
    wait_until("the frames to be counted", || count(&metrics.desk_audio_frames) == frames.len() as u64).await;
    assert_eq!(server.ctx.hub.connections_of(session.user.id), vec![conn_id]);

    // switchd → desk, and the desk can decode what it got.
    let back = tone_frames(8);
    for f in &back {
        server.ctx.hub.send_audio(conn_id, f).expect("send to desk");
    }
    let mut received = Vec::new();
    while received.len() < back.len() {
        received.push(tokio::time::timeout(WAIT, client.recv_audio()).await.expect("frame in time").expect("recv"));
    }
    received.sort_by_key(|f| f.seq);
    assert_eq!(received, back);
    let mut dec = OpusDecoderVoip::new(8000).expect("decoder");
    for f in &received {
        assert_eq!(dec.decode(&f.payload).expect("decode").len(), 160);
    }

    // After logout: the desk is no longer reachable, and its audio is dropped again.
    client.request(Request::Logout).await.expect("logout");
    assert!(matches!(server.ctx.hub.send_audio(conn_id, &back[0]), Err(AudioSendError::NotLoggedIn(id)) if id == conn_id));
    client.send_audio(&frames[0]).expect("send after logout");
    wait_until("the logged-out frame to be dropped", || count(&metrics.desk_audio_dropped) == 2).await;
    assert!(engine.try_recv().is_err());
    assert_eq!(count(&metrics.desk_audio_frames), frames.len() as u64);

    client.close().await;
    server.endpoint.close(0u32.into(), b"test over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_engine_desk_audio_is_counted_and_dropped() {
    let server = start(None).await;
    let client = DeskClient::connect_expecting(server.addr, None, "audio-test").await.expect("connect");
    client.login("agent1", PASSWORD).await.expect("login");
    let frames = tone_frames(1);
    for f in &frames[..3] {
        client.send_audio(f).expect("send");
    }
    let metrics = server.ctx.metrics.clone();
    wait_until("three dropped frames", || count(&metrics.desk_audio_dropped) == 3).await;
    assert_eq!(count(&metrics.desk_audio_frames), 0);
    assert!(matches!(server.ctx.hub.send_audio(999, &frames[0]), Err(AudioSendError::NotLoggedIn(999))));
    client.close().await;
    server.endpoint.close(0u32.into(), b"test over");
}
