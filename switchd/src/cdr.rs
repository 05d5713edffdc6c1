//! Call detail records: one row per call the switch is offered or places, with its answer and end
//! times, how it ended, the DTMF digits the caller pressed, the recordings made of it and the
//! quality of the caller's media as RTCP measured it.
//!
//! The telephony engine writes them through the [`Store`] methods below, each durable once it
//! returns (the store's group commit fsyncs); the admin CLI (`switchd call list|show`) reads them.
//! Times are UTC here and in the database; the CLI shows them in the configured local time.

use crate::store::{Store, StoreResult};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    Inbound,
    Outbound,
}

impl CallDirection {
    pub const ALL: &'static [CallDirection] = &[CallDirection::Inbound, CallDirection::Outbound];

    /// Stable code used in the store, the CLI and JSON.
    pub fn code(self) -> &'static str {
        match self {
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            CallDirection::Inbound => "呼入",
            CallDirection::Outbound => "呼出",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|d| d.code() == s)
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// The far end hung up (BYE from the caller or callee).
    CallerHangup,
    /// The switch hung up (IVR finished, agent hung up, timeout).
    SwitchHangup,
    /// The switch refused the call (e.g. a blocked number).
    Rejected,
    /// The caller cancelled before it was answered.
    Cancelled,
    NoAnswer,
    Failed,
    /// The call was still open when switchd (re)started: it was cut off by a crash or stop.
    SwitchRestart,
    /// A supervisor ended the call (强拆, SUP-2).
    ForcedHangup,
    /// The SIP session timer ran out (RFC 4028): the far end stopped refreshing the session,
    /// or did not answer our refresh, so the switch hung up.
    SessionExpired,
}

impl EndCause {
    pub const ALL: &'static [EndCause] = &[
        EndCause::CallerHangup,
        EndCause::SwitchHangup,
        EndCause::Rejected,
        EndCause::Cancelled,
        EndCause::NoAnswer,
        EndCause::Failed,
        EndCause::SwitchRestart,
        EndCause::ForcedHangup,
        EndCause::SessionExpired,
    ];

    /// Stable code used in the store, the CLI and JSON (the same as the serde name).
    pub fn code(self) -> &'static str {
        match self {
            EndCause::CallerHangup => "caller_hangup",
            EndCause::SwitchHangup => "switch_hangup",
            EndCause::Rejected => "rejected",
            EndCause::Cancelled => "cancelled",
            EndCause::NoAnswer => "no_answer",
            EndCause::Failed => "failed",
            EndCause::SwitchRestart => "switch_restart",
            EndCause::ForcedHangup => "forced_hangup",
            EndCause::SessionExpired => "session_expired",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            EndCause::CallerHangup => "对方挂机",
            EndCause::SwitchHangup => "系统挂机",
            EndCause::Rejected => "拒接",
            EndCause::Cancelled => "主叫取消",
            EndCause::NoAnswer => "无人接听",
            EndCause::Failed => "呼叫失败",
            EndCause::SwitchRestart => "系统重启中断",
            EndCause::ForcedHangup => "班长强拆",
            EndCause::SessionExpired => "会话超时",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.code() == s)
    }
}

/// What is known when a call is offered (or placed).
#[derive(Debug, Clone, PartialEq)]
pub struct CallStart {
    pub sip_call_id: String,
    pub direction: CallDirection,
    pub trunk: Option<String>,
    pub caller: String,
    pub callee: String,
    pub route: String,
    pub offered_at: DateTime<Utc>,
}

/// What is known when a call ends.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEnd {
    pub ended_at: DateTime<Utc>,
    pub cause: EndCause,
    pub sip_status: Option<u16>,
    /// DTMF digits pressed during the call, in order.
    pub digits: String,
    /// The caller leg's media quality; `None` when no media flowed (not answered).
    pub quality: Option<MediaQuality>,
}

/// The caller leg's media quality (RFC 3550 reception statistics and round-trip time).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct MediaQuality {
    /// RTP packets received from the caller.
    pub packets_received: u64,
    /// Packets the caller sent that never arrived (by sequence numbers).
    pub packets_lost: i64,
    /// The highest interarrival jitter measured, in milliseconds.
    pub jitter_max_ms: f64,
    /// Mean round-trip time from the caller's RTCP reports on our stream; `None` when it sent
    /// none that answered our sender reports.
    pub rtt_mean_ms: Option<f64>,
    /// RTCP packets received from the caller.
    pub rtcp_received: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CallRecord {
    pub id: i64,
    pub sip_call_id: String,
    pub direction: CallDirection,
    pub trunk: Option<String>,
    pub caller: String,
    pub callee: String,
    pub route: String,
    pub offered_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub cause: Option<EndCause>,
    pub sip_status: Option<u16>,
    pub digits: String,
    /// The caller's rating after the call (the satisfaction flow), if they gave one.
    pub satisfaction: Option<rexian_shared::Satisfaction>,
    /// In the order they were started.
    pub recordings: Vec<Recording>,
    /// The caller leg's media quality, once the call ended after media flowed.
    #[serde(default)]
    pub quality: Option<MediaQuality>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Recording {
    /// Relative to the data directory, e.g. `recordings/2026/11/29/<id>-voicemail.wav`.
    pub path: String,
    /// `call` (stereo, caller left and agent right) or `leg` (mono).
    pub kind: String,
    pub started_at: DateTime<Utc>,
    /// The length once the recording is finished; `None` while it is being written.
    pub seconds: Option<f64>,
}

impl Store {
    /// Records a new call; returns its id, which the other methods take.
    pub async fn call_offered(&self, start: CallStart) -> StoreResult<i64> {
        self.write(move |db| db.insert_call(&start)).await
    }

    /// Sets the answer time. A call already answered or ended keeps what it has.
    pub async fn call_answered(&self, id: i64, at: DateTime<Utc>) -> StoreResult<()> {
        self.write(move |db| db.set_call_answered(id, at)).await
    }

    /// Sets the answer time and names the party that answered as the callee (a forked call:
    /// the target that answered first). A call already answered or ended keeps what it has.
    pub async fn call_answered_by(&self, id: i64, at: DateTime<Utc>, callee: String) -> StoreResult<()> {
        self.write(move |db| db.set_call_answered_by(id, at, &callee)).await
    }

    /// Adds a recording of the call (not finished yet). `path` is relative to the data directory
    /// and unique within the call.
    pub async fn call_recording_started(&self, id: i64, path: String, kind: String, at: DateTime<Utc>) -> StoreResult<()> {
        self.write(move |db| db.insert_call_recording(id, &path, &kind, at)).await
    }

    /// Marks the call's recording at `path` finished, `seconds` long.
    pub async fn call_recording_finished(&self, id: i64, path: String, seconds: f64) -> StoreResult<()> {
        self.write(move |db| db.finish_call_recording(id, &path, seconds)).await
    }

    /// Records how the call ended. The first end is kept: a call already ended (for instance by
    /// [`Store::close_dangling_calls`]) is left unchanged.
    pub async fn call_ended(&self, id: i64, end: CallEnd) -> StoreResult<()> {
        self.write(move |db| db.set_call_ended(id, &end)).await
    }

    /// The latest `limit` calls, newest (by offer time) first.
    pub async fn calls(&self, limit: u32) -> StoreResult<Vec<CallRecord>> {
        self.read(move |db| db.calls(limit)).await
    }

    pub async fn call(&self, id: i64) -> StoreResult<Option<CallRecord>> {
        self.read(move |db| db.call(id)).await
    }

    /// At daemon start: every call without `ended_at` gets `ended_at = at`, cause
    /// [`EndCause::SwitchRestart`]. Returns `(call id, path)` of every recording whose `seconds` is
    /// `None` — those of the calls just closed, and also those of calls that had ended but whose
    /// recording was never marked finished (a crash between the two writes) — so the daemon can
    /// repair the WAV files and then record their length with [`Store::call_recording_finished`].
    pub async fn close_dangling_calls(&self, at: DateTime<Utc>) -> StoreResult<Vec<(i64, String)>> {
        self.write(move |db| db.close_dangling_calls(at)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, h, m, s).single().expect("time")
    }

    fn start(sip_call_id: &str, at: DateTime<Utc>) -> CallStart {
        CallStart {
            sip_call_id: sip_call_id.into(),
            direction: CallDirection::Inbound,
            trunk: Some("carrier-a".into()),
            caller: "13800138000".into(),
            callee: "12345".into(),
            route: "ivr-main".into(),
            offered_at: at,
        }
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        (dir, store)
    }

    #[test]
    fn end_cause_and_direction_codes_round_trip() {
        for c in EndCause::ALL {
            assert_eq!(EndCause::from_code(c.code()), Some(*c));
            assert_eq!(serde_json::to_value(c).expect("json"), serde_json::json!(c.code()), "code is the serde name");
            assert!(!c.zh().is_empty());
        }
        for d in CallDirection::ALL {
            assert_eq!(CallDirection::from_code(d.code()), Some(*d));
            assert_eq!(serde_json::to_value(d).expect("json"), serde_json::json!(d.code()));
        }
        assert_eq!(EndCause::SwitchRestart.zh(), "系统重启中断");
        assert_eq!(EndCause::from_code("hangup"), None);
        assert_eq!(CallDirection::from_code("Inbound"), None);
    }

    #[tokio::test]
    async fn a_forked_call_names_the_target_that_answered() {
        let (_dir, store) = open();
        let id = store.call_offered(start("fork@10.0.0.1", t(9, 0, 0))).await.expect("offered");
        store.call_answered_by(id, t(9, 0, 3), "sip:b@127.0.0.1:5072".into()).await.expect("answered");
        store.call_answered_by(id, t(9, 0, 4), "sip:a@127.0.0.1:5071".into()).await.expect("a second answer is ignored");
        let call = store.call(id).await.expect("read").expect("exists");
        assert_eq!((call.callee.as_str(), call.answered_at), ("sip:b@127.0.0.1:5072", Some(t(9, 0, 3))));
    }

    #[tokio::test]
    async fn offered_answered_recorded_ended_round_trip() {
        let (_dir, store) = open();
        let offered = t(9, 0, 0) + chrono::Duration::nanoseconds(123_456_789);
        let id = store.call_offered(start("abc@10.0.0.1", offered)).await.expect("offered");
        let fresh = store.call(id).await.expect("read").expect("exists");
        assert_eq!((fresh.answered_at, fresh.ended_at, fresh.cause), (None, None, None));
        assert!(fresh.recordings.is_empty() && fresh.digits.is_empty());

        store.call_answered(id, t(9, 0, 5)).await.expect("answered");
        let quality = MediaQuality { packets_received: 2990, packets_lost: 10, jitter_max_ms: 12.5, rtt_mean_ms: Some(41.25), rtcp_received: 11 };
        store.call_answered(id, t(9, 0, 7)).await.expect("a second answer is ignored");
        let path = format!("recordings/2026/11/29/{id}-call.wav");
        store.call_recording_started(id, path.clone(), "call".into(), t(9, 0, 5)).await.expect("rec");
        store.call_recording_finished(id, path.clone(), 55.5).await.expect("rec done");
        let end = CallEnd { ended_at: t(9, 1, 1), cause: EndCause::CallerHangup, sip_status: Some(200), digits: "12#".into(), quality: Some(quality) };
        store.call_ended(id, end).await.expect("ended");
        let late = CallEnd { ended_at: t(9, 2, 0), cause: EndCause::Failed, sip_status: Some(500), digits: String::new(), quality: None };
        store.call_ended(id, late).await.expect("a second end is ignored");
        let rated = store.write(move |db| db.set_call_satisfaction(id, rexian_shared::Satisfaction::Neutral)).await;
        assert!(rated.expect("rating"));

        let got = store.call(id).await.expect("read").expect("exists");
        let want = CallRecord {
            id,
            sip_call_id: "abc@10.0.0.1".into(),
            direction: CallDirection::Inbound,
            trunk: Some("carrier-a".into()),
            caller: "13800138000".into(),
            callee: "12345".into(),
            route: "ivr-main".into(),
            offered_at: offered,
            answered_at: Some(t(9, 0, 5)),
            ended_at: Some(t(9, 1, 1)),
            cause: Some(EndCause::CallerHangup),
            sip_status: Some(200),
            digits: "12#".into(),
            satisfaction: Some(rexian_shared::Satisfaction::Neutral),
            recordings: vec![Recording { path, kind: "call".into(), started_at: t(9, 0, 5), seconds: Some(55.5) }],
            quality: Some(quality),
        };
        assert_eq!(got, want);
        let json = serde_json::to_string(&got).expect("json");
        assert_eq!(serde_json::from_str::<CallRecord>(&json).expect("back"), want);
    }

    #[tokio::test]
    async fn calls_are_listed_newest_first_and_unknown_ids_are_errors() {
        let (_dir, store) = open();
        let a = store.call_offered(start("a", t(9, 0, 0))).await.expect("a");
        let b = store.call_offered(start("b", t(11, 0, 0))).await.expect("b");
        let c = store.call_offered(start("c", t(10, 0, 0))).await.expect("c");
        let ids: Vec<i64> = store.calls(10).await.expect("list").iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![b, c, a]);
        assert_eq!(store.calls(2).await.expect("list").len(), 2);
        assert_eq!(store.call(999).await.expect("read"), None);

        let missing = |e: StoreError| matches!(e, StoreError::NotFound(_));
        assert!(missing(store.call_answered(999, t(9, 0, 0)).await.expect_err("no call")));
        assert!(missing(store.call_recording_started(999, "r.wav".into(), "leg".into(), t(9, 0, 0)).await.expect_err("no call")));
        assert!(missing(store.call_recording_finished(a, "r.wav".into(), 1.0).await.expect_err("no recording")));
        let end = CallEnd { ended_at: t(9, 0, 0), cause: EndCause::Failed, sip_status: None, digits: String::new(), quality: None };
        assert!(missing(store.call_ended(999, end).await.expect_err("no call")));
    }

    #[tokio::test]
    async fn close_dangling_calls_ends_open_calls_and_returns_unfinished_recordings() {
        let (_dir, store) = open();
        // Ended normally, recording finished: untouched, not returned.
        let done = store.call_offered(start("done", t(8, 0, 0))).await.expect("offered");
        store.call_recording_started(done, "recordings/done.wav".into(), "call".into(), t(8, 0, 1)).await.expect("rec");
        store.call_recording_finished(done, "recordings/done.wav".into(), 9.0).await.expect("fin");
        let end = CallEnd { ended_at: t(8, 0, 10), cause: EndCause::SwitchHangup, sip_status: None, digits: "1".into(), quality: None };
        store.call_ended(done, end.clone()).await.expect("ended");
        // Ended, but the crash came before its recording was marked finished: returned, not re-ended.
        let ended = store.call_offered(start("ended", t(8, 30, 0))).await.expect("offered");
        store.call_recording_started(ended, "recordings/ended.wav".into(), "call".into(), t(8, 30, 1)).await.expect("rec");
        store.call_ended(ended, CallEnd { ended_at: t(8, 31, 0), ..end.clone() }).await.expect("ended");
        // In progress at the crash, with a finished leg and an unfinished call recording.
        let live = store.call_offered(start("live", t(9, 0, 0))).await.expect("offered");
        store.call_answered(live, t(9, 0, 2)).await.expect("answered");
        store.call_recording_started(live, "recordings/live-leg.wav".into(), "leg".into(), t(9, 0, 2)).await.expect("rec");
        store.call_recording_finished(live, "recordings/live-leg.wav".into(), 3.0).await.expect("fin");
        store.call_recording_started(live, "recordings/live.wav".into(), "call".into(), t(9, 0, 5)).await.expect("rec");
        // Ringing at the crash, never answered, no recording.
        let ringing = store.call_offered(start("ringing", t(9, 5, 0))).await.expect("offered");

        let restart = t(9, 10, 0);
        let unfinished = store.close_dangling_calls(restart).await.expect("close");
        assert_eq!(unfinished, vec![(ended, "recordings/ended.wav".to_owned()), (live, "recordings/live.wav".to_owned())]);

        for id in [live, ringing] {
            let r = store.call(id).await.expect("read").expect("exists");
            assert_eq!((r.ended_at, r.cause), (Some(restart), Some(EndCause::SwitchRestart)), "call {id}");
        }
        let r = store.call(ended).await.expect("read").expect("exists");
        assert_eq!((r.ended_at, r.cause), (Some(t(8, 31, 0)), Some(EndCause::SwitchHangup)), "an ended call keeps its end");
        assert_eq!(store.call(done).await.expect("read").expect("exists").cause, Some(EndCause::SwitchHangup));

        // The daemon repairs the files and records their lengths; then nothing is left.
        for (id, path) in unfinished {
            store.call_recording_finished(id, path, 4.25).await.expect("fin");
        }
        assert!(store.close_dangling_calls(t(9, 20, 0)).await.expect("close").is_empty());
        let r = store.call(live).await.expect("read").expect("exists");
        assert_eq!(r.ended_at, Some(restart), "a second start changes nothing");
        assert_eq!(r.recordings.iter().map(|x| x.seconds).collect::<Vec<_>>(), vec![Some(3.0), Some(4.25)]);
    }
}
