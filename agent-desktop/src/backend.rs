//! The network and audio side of the desktop (style #15): a thread with a tokio runtime owns
//! the [`DeskClient`], the session, reconnection and the call audio. The UI sends it
//! [`Command`]s and reads [`Update`]s; it never awaits anything itself.
//!
//! Usage: [`Backend::start`] once; [`Backend::send`] from the UI; drain [`Backend::try_recv`]
//! at the start of every frame. Dropping the `Backend` closes the connection and the thread.

use crate::audio::{self, AudioError, AudioIo};
use base64::Engine;
use crate::jitter::{JitterBuffer, Playout};
use rexian_shared::audio::{AudioFrame, OpusDecoderVoip, OpusEncoderVoip, TIMESTAMP_TICKS_PER_FRAME};
use rexian_shared::client::{ClientError, DeskClient};
use rexian_shared::tls::KnownServers;
use rexian_shared::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the UI asks for.
#[derive(Debug, Clone)]
pub enum Command {
    Login { server: String, username: String, password: String },
    /// The agent confirmed with the administrator that the server's certificate was replaced.
    TrustNewCertificate { server: String },
    SignOut,
    AgentLogin { ready: bool },
    AgentReady,
    AgentNotReady { reason: String },
    AgentLogout,
    Answer { call: u64 },
    Hangup { call: u64 },
    Dial { number: PhoneNumber },
    Transfer { call: u64, number: PhoneNumber },
    Conference { call: u64, number: PhoneNumber },
    Hold { call: u64, hold: bool },
    Mute { call: u64, mute: bool },
    /// To another agent by user name or 工号.
    TransferToAgent { call: u64, agent: String },
    TransferToSupervisor { call: u64 },
    /// Hold the caller and call this number first (attended transfer).
    Consult { call: u64, number: PhoneNumber },
    CompleteTransfer { call: u64 },
    CancelConsult { call: u64 },
    Dtmf { call: u64, digits: String },
    ToSatisfaction { call: u64 },
    CallerProfile { phone: PhoneNumber },
    LoadCategories,
    LoadDepartments,
    /// Chinese full-text search of the knowledge base (KB-1), published articles.
    SearchArticles(String),
    /// Register a ticket, then (a consultation answered or deferred at intake) act on it.
    CreateTicket(Box<NewTicket>, Option<TicketAction>),
    /// Reference answers for what the agent is typing into a consultation (TKT-3).
    SuggestAnswers(String),
    SearchTickets(TicketQuery),
    GetTicket(TicketNo),
    Act(TicketNo, TicketAction),
    /// How an action would leave the ticket (shown before a dispatch is confirmed).
    PreviewAction(TicketNo, TicketAction),
    /// The due list (待办): the callback list and the tickets due a call (hotline staff only)
    /// and this user's reminders.
    LoadDue { staff: bool },
    FinishCallback { id: i64, outcome: String },
    DismissReminder { id: i64 },
    SetReminder { no: TicketNo, at: chrono::NaiveDateTime, note: String },
    /// The user's saved filters (常用筛选).
    LoadSavedFilters,
    SaveFilter { name: String, query: TicketQuery },
    DeleteSavedFilter(String),
    /// The headset to use from the next call on.
    SetDevices { input: Option<String>, output: Option<String> },
    /// Open the microphone outside a call to show its level.
    MicTest(bool),
    /// The calls a ticket is linked to (its detail).
    LoadTicketCalls(TicketNo),
    /// Play a linked call's recording on the headset (not while a call rings or runs).
    PlayRecording { no: TicketNo, call: i64 },
    /// Play the speaker test on the chosen headset.
    TestSpeaker,
    StopPlayback,
}

/// What plays on the headset outside calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clip {
    /// A call's recording (its CDR id).
    Recording(i64),
    SpeakerTest,
}

/// Connection state, always shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Offline,
    Connecting,
    Online,
    Reconnecting { attempt: u32 },
}

/// Which kind of request failed, so the UI shows the failure where it belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    AgentState,
    Call,
    Profile,
    /// Reference answers: advisory, a failure shows nothing.
    Suggest,
    Tickets,
    Act,
    Catalogue,
    /// Loading the due list or acting on it.
    Due,
    /// Setting a reminder from a ticket.
    Remind,
    SavedFilters,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The server answered with an error code.
    Desk,
    /// The server could not be reached.
    Connect,
    /// The connection is gone.
    Closed,
    Other,
}

/// A failed request, ready to be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub code: Option<ErrorCode>,
    /// For `InvalidField`: the field the server named.
    pub field: Option<String>,
    /// The server's or the library's own words (Chinese first where the server wrote them).
    pub detail: String,
}

impl Failure {
    pub fn from_client(e: &ClientError) -> Failure {
        let (kind, code, field, detail) = match e {
            ClientError::Desk(d) | ClientError::Refused(d) => (FailureKind::Desk, Some(d.code), d.field.clone(), d.message.clone()),
            ClientError::Connect { reason, .. } => (FailureKind::Connect, None, None, reason.clone()),
            ClientError::Closed => (FailureKind::Closed, None, None, String::new()),
            other => (FailureKind::Other, None, None, other.to_string()),
        };
        Failure { kind, code, field, detail }
    }

    /// The message for the agent: the translated code first, then the server's detail.
    pub fn text(&self, lang: crate::i18n::Lang) -> String {
        use crate::i18n::{error_code_text, T};
        match (&self.kind, self.code) {
            (FailureKind::Desk, Some(ErrorCode::InvalidField)) if !self.detail.is_empty() => {
                format!("{}：{}", error_code_text(ErrorCode::InvalidField, lang), self.detail)
            }
            (FailureKind::Desk, Some(code)) => error_code_text(code, lang).to_owned(),
            (FailureKind::Connect, _) => format!("{}（{}）", T::CannotConnect.s(lang), self.detail),
            (FailureKind::Closed, _) => T::ConnectionClosed.s(lang).to_owned(),
            _ => format!("{}：{}", T::UnexpectedReply.s(lang), self.detail),
        }
    }
}

/// What the backend tells the UI.
#[derive(Debug, Clone)]
pub enum Update {
    Conn(ConnState),
    LoggedIn(Session),
    LoginFailed(Failure),
    /// The server presented another certificate than the pinned one: connection refused.
    CertificateChanged { server: String, expected: String, actual: String },
    /// Reconnection gave up (the session expired): back to the login screen.
    SessionLost(Failure),
    Event(Event),
    Failed { op: Op, failure: Failure },
    /// An agent-state or call request succeeded.
    Done(Op),
    CallStarted { call: u64, number: String },
    Profile(Box<CallerProfile>),
    Categories(Vec<Category>),
    Departments(Vec<Department>),
    Articles(Vec<ArticleHit>),
    TicketSaved(Box<Ticket>),
    /// The ticket was registered but the action after it failed (it stays registered).
    FollowUpFailed { no: TicketNo, failure: Failure },
    /// Reference answers for `text`.
    Suggestions { text: String, articles: Vec<ArticleHit>, answers: Vec<EarlierAnswer> },
    TicketRejected(Failure),
    Tickets(TicketPage),
    Ticket(Box<Ticket>),
    Acted(Box<Ticket>),
    Previewed(Box<Ticket>),
    TicketCalls { no: TicketNo, calls: Vec<CallSummary> },
    /// A clip plays on the headset: seconds played of the total.
    Playing { clip: Clip, at_secs: u32, total_secs: u32 },
    /// The clip finished or was stopped; `error` when it could not play.
    PlaybackEnded { clip: Clip, error: Option<String> },
    Due(Box<crate::screens::due::DueLists>),
    /// The user's saved filters after a load, save or delete.
    SavedFilters(Vec<SavedFilter>),
    /// The microphone's level, 0..=1, while it is open.
    MicLevel(f32),
    AudioProblem(AudioError),
    AudioOk,
}

/// Wakes the UI when an update is queued (egui's `request_repaint`).
pub type Repaint = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
struct Out {
    tx: std::sync::mpsc::Sender<Update>,
    repaint: Repaint,
}

impl Out {
    fn send(&self, u: Update) {
        let _ = self.tx.send(u);
        (self.repaint)();
    }
}

pub struct Backend {
    tx: mpsc::UnboundedSender<Command>,
    rx: std::sync::mpsc::Receiver<Update>,
}

impl Backend {
    /// Starts the backend thread; pins and settings live in `config_dir`.
    pub fn start(config_dir: PathBuf, repaint: Repaint) -> Backend {
        let (tx, cmds) = mpsc::unbounded_channel();
        let (out_tx, rx) = std::sync::mpsc::channel();
        let out = Out { tx: out_tx, repaint };
        let spawned = std::thread::Builder::new().name("desk-client".into()).spawn(move || {
            match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt.block_on(Worker::new(config_dir, out).run(cmds)),
                Err(e) => out.send(Update::LoginFailed(Failure { kind: FailureKind::Other, code: None, field: None, detail: e.to_string() })),
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the desk client thread");
        }
        Backend { tx, rx }
    }

    pub fn send(&self, cmd: Command) {
        let _ = self.tx.send(cmd);
    }

    pub fn try_recv(&self) -> Option<Update> {
        self.rx.try_recv().ok()
    }
}

enum Internal {
    Event(u64, Event),
    /// A clip fetched and decoded, to play on the headset.
    Play(Clip, Vec<i16>),
    /// The clip has played to its end: close the headset.
    PlaybackDone(Clip),
    Lost(u64),
    Reconnected(u64, Arc<DeskClient>, Session),
    ReconnectFailed(u64, Failure),
    CertificateChanged(u64, String, String),
}

struct Conn {
    client: Arc<DeskClient>,
    addr: SocketAddr,
    token: String,
    fingerprint: String,
}

struct Worker {
    config_dir: PathBuf,
    out: Out,
    conn: Option<Conn>,
    generation: u64,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: Option<mpsc::UnboundedReceiver<Internal>>,
    /// The agent's last ACD state, to restore it after a reconnect.
    agent_state: Option<String>,
    devices: (Option<String>, Option<String>),
    call_audio: Option<CallAudio>,
    ring: Option<HeadsetUse<u64>>,
    mic_test: Option<(AudioIo, JoinHandle<()>)>,
    playback: Option<HeadsetUse<Clip>>,
    reconnect: Option<JoinHandle<()>>,
}

/// The headset held outside a call — ringing for call `of` (a `u64`), or playing clip `of` —
/// by the task feeding it; dropping it stops the task and closes the headset.
struct HeadsetUse<T> {
    of: T,
    task: JoinHandle<()>,
    _io: AudioIo,
}

impl<T> Drop for HeadsetUse<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Worker {
    fn new(config_dir: PathBuf, out: Out) -> Worker {
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        Worker {
            config_dir,
            out,
            conn: None,
            generation: 0,
            internal_tx,
            internal_rx: Some(internal_rx),
            agent_state: None,
            devices: (None, None),
            call_audio: None,
            ring: None,
            mic_test: None,
            playback: None,
            reconnect: None,
        }
    }

    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Command>) {
        let Some(mut internal) = self.internal_rx.take() else { return };
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => self.command(cmd).await,
                    None => break,
                },
                Some(msg) = internal.recv() => self.internal(msg).await,
            }
        }
        self.stop_audio();
        if let Some(conn) = self.conn.take() {
            let _ = conn.client.request(Request::Logout).await;
            conn.client.disconnect();
        }
    }

    fn known_servers(&self) -> Result<KnownServers, Failure> {
        let path = self.config_dir.join("known_servers.json");
        KnownServers::load(&path).map_err(|e| Failure { kind: FailureKind::Other, code: None, field: None, detail: format!("{}: {e}", path.display()) })
    }

    async fn login(&mut self, server: String, username: String, password: String) {
        self.drop_connection();
        self.out.send(Update::Conn(ConnState::Connecting));
        let fail = |out: &Out, f: Failure| {
            out.send(Update::Conn(ConnState::Offline));
            out.send(Update::LoginFailed(f));
        };
        let addr: SocketAddr = match tokio::net::lookup_host(server.trim()).await.ok().and_then(|mut a| a.next()) {
            Some(a) => a,
            None => {
                return fail(&self.out, Failure { kind: FailureKind::Connect, code: None, field: Some("server".into()), detail: server });
            }
        };
        let mut known = match self.known_servers() {
            Ok(k) => k,
            Err(f) => return fail(&self.out, f),
        };
        let client = match DeskClient::connect(addr, &mut known, "agent-desktop").await {
            Ok(c) => Arc::new(c),
            Err(ClientError::CertificateChanged { expected, actual }) => {
                self.out.send(Update::Conn(ConnState::Offline));
                self.out.send(Update::CertificateChanged { server: addr.to_string(), expected, actual });
                return;
            }
            Err(e) => return fail(&self.out, Failure::from_client(&e)),
        };
        match client.login(&username, &password).await {
            Ok(session) => {
                let _ = client.subscribe().await;
                let fingerprint = client.server_fingerprint().to_owned();
                self.install(Conn { client, addr, token: session.token.clone(), fingerprint });
                self.agent_state = None;
                self.out.send(Update::Conn(ConnState::Online));
                self.out.send(Update::LoggedIn(session));
            }
            Err(e) => {
                client.disconnect();
                fail(&self.out, Failure::from_client(&e));
            }
        }
    }

    /// Makes `conn` the current connection and pumps its events.
    fn install(&mut self, conn: Conn) {
        self.generation += 1;
        let (gen, client, tx) = (self.generation, conn.client.clone(), self.internal_tx.clone());
        tokio::spawn(async move {
            while let Some(ev) = client.next_event().await {
                if tx.send(Internal::Event(gen, ev)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Internal::Lost(gen));
        });
        self.conn = Some(conn);
    }

    fn drop_connection(&mut self) {
        self.generation += 1;
        if let Some(r) = self.reconnect.take() {
            r.abort();
        }
        self.stop_audio();
        if let Some(conn) = self.conn.take() {
            let client = conn.client;
            tokio::spawn(async move {
                let _ = client.request(Request::Logout).await;
                client.disconnect();
            });
        }
    }

    fn stop_audio(&mut self) {
        self.playback = None;
        if let Some(a) = self.call_audio.take() {
            a.stop();
        }
        if let Some(r) = self.ring.take() {
            r.task.abort();
        }
    }

    async fn internal(&mut self, msg: Internal) {
        match msg {
            Internal::Event(gen, ev) if gen == self.generation => self.event(ev),
            Internal::Play(clip, pcm) => self.play(clip, pcm),
            Internal::PlaybackDone(clip) if self.playback.as_ref().is_some_and(|p| p.of == clip) => self.stop_playback(),
            Internal::Lost(gen) if gen == self.generation => self.start_reconnect(),
            Internal::Reconnected(gen, client, session) if gen == self.generation => {
                self.reconnect = None;
                let Some(old) = self.conn.take() else { return };
                let _ = client.subscribe().await;
                // A lost desk is logged out of the queues: put the agent back as they were.
                match self.agent_state.as_deref() {
                    Some("logged_out") | None => {}
                    Some(state) => {
                        let _ = client.agent_login(state == "ready").await;
                    }
                }
                self.install(Conn { client, addr: old.addr, token: session.token.clone(), fingerprint: old.fingerprint });
                self.out.send(Update::Conn(ConnState::Online));
            }
            Internal::ReconnectFailed(gen, failure) if gen == self.generation => {
                self.reconnect = None;
                self.conn = None;
                self.out.send(Update::Conn(ConnState::Offline));
                self.out.send(Update::SessionLost(failure));
            }
            Internal::CertificateChanged(gen, expected, actual) if gen == self.generation => {
                self.reconnect = None;
                let server = self.conn.take().map(|c| c.addr.to_string()).unwrap_or_default();
                self.out.send(Update::Conn(ConnState::Offline));
                self.out.send(Update::CertificateChanged { server, expected, actual });
            }
            _ => {}
        }
    }

    /// Reconnects with the pinned certificate and resumes the session, retrying with backoff
    /// until the session is refused.
    fn start_reconnect(&mut self) {
        self.stop_audio();
        let Some(conn) = &self.conn else { return };
        self.generation += 1;
        let (gen, addr, token, pin) = (self.generation, conn.addr, conn.token.clone(), conn.fingerprint.clone());
        let (out, tx) = (self.out.clone(), self.internal_tx.clone());
        self.reconnect = Some(tokio::spawn(async move {
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                out.send(Update::Conn(ConnState::Reconnecting { attempt }));
                match DeskClient::connect_expecting(addr, Some(pin.clone()), "agent-desktop").await {
                    Ok(client) => match client.resume(&token).await {
                        Ok(session) => {
                            let _ = tx.send(Internal::Reconnected(gen, Arc::new(client), session));
                            return;
                        }
                        Err(e @ ClientError::Desk(_)) => {
                            let _ = tx.send(Internal::ReconnectFailed(gen, Failure::from_client(&e)));
                            return;
                        }
                        Err(_) => {}
                    },
                    Err(ClientError::CertificateChanged { expected, actual }) => {
                        let _ = tx.send(Internal::CertificateChanged(gen, expected, actual));
                        return;
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt.min(10)))).await;
            }
        }));
    }

    fn event(&mut self, ev: Event) {
        match &ev {
            Event::AgentStateChanged { state, .. } => self.agent_state = Some(state.clone()),
            Event::CallOffered { call, .. } => {
                self.stop_playback();
                self.start_ring(*call);
            }
            Event::CallConnected { call } => {
                if let Some(r) = self.ring.take() {
                    r.task.abort();
                }
                self.start_call_audio(*call);
            }
            Event::CallEnded { call, .. } => {
                if self.ring.as_ref().is_some_and(|r| r.of == *call) {
                    if let Some(r) = self.ring.take() {
                        r.task.abort();
                    }
                }
                if self.call_audio.as_ref().is_some_and(|a| a.call == *call) {
                    if let Some(a) = self.call_audio.take() {
                        a.stop();
                    }
                }
            }
            _ => {}
        }
        self.out.send(Update::Event(ev));
    }

    /// Fetches and decodes a recording off the worker, then plays it (`Internal::Play`).
    fn fetch_recording(&self, no: TicketNo, call: i64) {
        let clip = Clip::Recording(call);
        let (Some(client), out, internal) = (self.client(), self.out.clone(), self.internal_tx.clone()) else { return };
        tokio::spawn(async move {
            let fetched = client.call_recording(&no, call).await.map_err(|e| Failure::from_client(&e).detail);
            let decoded = fetched.and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| e.to_string()));
            match decoded.and_then(|wav| audio::wav_for_headset(&wav)) {
                Ok(pcm) => {
                    let _ = internal.send(Internal::Play(clip, pcm));
                }
                Err(e) => out.send(Update::PlaybackEnded { clip, error: Some(e) }),
            }
        });
    }

    /// Plays `pcm` (48 kHz mono) on the headset, reporting progress each second; refused while
    /// the headset carries a call or its ring.
    fn play(&mut self, clip: Clip, pcm: Vec<i16>) {
        self.stop_playback();
        if self.call_audio.is_some() || self.ring.is_some() {
            return self.out.send(Update::PlaybackEnded { clip, error: Some("通话中不能播放 / not during a call".into()) });
        }
        let io = match AudioIo::open(None, self.devices.1.as_deref(), false, true) {
            Ok(io) => io,
            Err(e) => return self.out.send(Update::AudioProblem(e)),
        };
        let (out, shared, internal) = (self.out.clone(), io.shared.clone(), self.internal_tx.clone());
        let total_secs = (pcm.len() / audio::RATE as usize) as u32;
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let mut frames = pcm.chunks(audio::FRAME).enumerate();
            loop {
                tick.tick().await;
                if let Some(e) = shared.take_failure() {
                    out.send(Update::AudioProblem(e));
                }
                if shared.queued_to_play() >= audio::FRAME * 3 {
                    continue;
                }
                let Some((n, frame)) = frames.next() else { break };
                shared.play(frame, 5);
                if n % 50 == 0 {
                    out.send(Update::Playing { clip, at_secs: (n / 50) as u32, total_secs });
                }
            }
            while shared.queued_to_play() > 0 {
                tick.tick().await;
            }
            let _ = internal.send(Internal::PlaybackDone(clip));
        });
        self.playback = Some(HeadsetUse { of: clip, task, _io: io });
    }

    fn stop_playback(&mut self) {
        if let Some(p) = self.playback.take() {
            self.out.send(Update::PlaybackEnded { clip: p.of, error: None });
        }
    }

    fn start_ring(&mut self, call: u64) {
        if self.call_audio.is_some() {
            return;
        }
        match AudioIo::open(None, self.devices.1.as_deref(), false, true) {
            Ok(io) => {
                let (out, shared) = (self.out.clone(), io.shared.clone());
                let task = tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(20));
                    for n in 0u32.. {
                        tick.tick().await;
                        if let Some(e) = shared.take_failure() {
                            out.send(Update::AudioProblem(e));
                        }
                        if shared.queued_to_play() < audio::FRAME * 3 {
                            shared.play(&audio::ring_frame(n), 5);
                        }
                    }
                });
                self.ring = Some(HeadsetUse { of: call, task, _io: io });
            }
            Err(e) => self.out.send(Update::AudioProblem(e)),
        }
    }

    fn start_call_audio(&mut self, call: u64) {
        let Some(conn) = &self.conn else { return };
        if let Some((_, t)) = self.mic_test.take() {
            t.abort();
        }
        if let Some(a) = self.call_audio.take() {
            a.stop();
        }
        match AudioIo::open(self.devices.0.as_deref(), self.devices.1.as_deref(), true, true) {
            Ok(io) => {
                self.out.send(Update::AudioOk);
                self.call_audio = Some(CallAudio::start(conn.client.clone(), call, io, self.out.clone()));
            }
            Err(e) => self.out.send(Update::AudioProblem(e)),
        }
    }

    fn client(&self) -> Option<Arc<DeskClient>> {
        self.conn.as_ref().map(|c| c.client.clone())
    }

    /// Runs a request on its own task and reports its outcome.
    fn spawn_op<F, Fut>(&self, op: Op, f: F)
    where
        F: FnOnce(Arc<DeskClient>, Out) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), ClientError>> + Send + 'static,
    {
        let out = self.out.clone();
        let Some(client) = self.client() else {
            out.send(Update::Failed { op, failure: Failure::from_client(&ClientError::Closed) });
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = f(client, out.clone()).await {
                out.send(Update::Failed { op, failure: Failure::from_client(&e) });
            }
        });
    }

    fn spawn_done<Fut>(&self, op: Op, f: impl FnOnce(Arc<DeskClient>) -> Fut + Send + 'static)
    where
        Fut: std::future::Future<Output = Result<(), ClientError>> + Send + 'static,
    {
        self.spawn_op(op, move |c, out| async move {
            f(c).await?;
            out.send(Update::Done(op));
            Ok(())
        });
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Login { server, username, password } => self.login(server, username, password).await,
            Command::TrustNewCertificate { server } => match self.known_servers() {
                Ok(mut known) => {
                    if let Err(e) = known.forget(&server) {
                        tracing::warn!(error = %e, "cannot forget the old pin");
                    }
                }
                Err(f) => self.out.send(Update::LoginFailed(f)),
            },
            Command::SignOut => {
                self.drop_connection();
                self.out.send(Update::Conn(ConnState::Offline));
            }
            Command::AgentLogin { ready } => self.spawn_done(Op::AgentState, move |c| async move { c.agent_login(ready).await }),
            Command::AgentReady => self.spawn_done(Op::AgentState, |c| async move { c.agent_ready().await }),
            Command::AgentNotReady { reason } => self.spawn_done(Op::AgentState, move |c| async move { c.agent_not_ready(&reason).await }),
            Command::AgentLogout => self.spawn_done(Op::AgentState, |c| async move { c.agent_logout().await }),
            Command::Answer { call } => self.spawn_done(Op::Call, move |c| async move { c.answer_call(call).await }),
            Command::Hangup { call } => self.spawn_done(Op::Call, move |c| async move { c.hangup_call(call).await }),
            Command::Dial { number } => self.spawn_op(Op::Call, move |c, out| async move {
                let call = c.dial(&number).await?;
                out.send(Update::CallStarted { call, number: number.to_string() });
                Ok(())
            }),
            Command::Transfer { call, number } => self.spawn_done(Op::Call, move |c| async move { c.transfer(call, &number).await }),
            Command::Conference { call, number } => self.spawn_done(Op::Call, move |c| async move { c.conference(call, &number).await }),
            Command::Dtmf { call, digits } => self.spawn_done(Op::Call, move |c| async move { c.send_dtmf(call, &digits).await }),
            Command::Hold { call, hold } => self.spawn_done(Op::Call, move |c| async move { c.hold_call(call, hold).await }),
            Command::Mute { call, mute } => self.spawn_done(Op::Call, move |c| async move { c.mute_call(call, mute).await }),
            Command::TransferToAgent { call, agent } => self.spawn_done(Op::Call, move |c| async move { c.transfer_to_agent(call, &agent).await }),
            Command::TransferToSupervisor { call } => self.spawn_done(Op::Call, move |c| async move { c.transfer_to_supervisor(call).await }),
            Command::Consult { call, number } => self.spawn_done(Op::Call, move |c| async move { c.consult(call, &number).await }),
            Command::CompleteTransfer { call } => self.spawn_done(Op::Call, move |c| async move { c.complete_transfer(call).await }),
            Command::CancelConsult { call } => self.spawn_done(Op::Call, move |c| async move { c.cancel_consult(call).await }),
            Command::ToSatisfaction { call } => self.spawn_done(Op::Call, move |c| async move { c.transfer_to_flow(call, "satisfaction").await }),
            Command::CallerProfile { phone } => self.spawn_op(Op::Profile, move |c, out| async move {
                out.send(Update::Profile(Box::new(c.caller_profile(&phone).await?)));
                Ok(())
            }),
            Command::LoadCategories => self.spawn_op(Op::Catalogue, |c, out| async move {
                let cats = rexian_shared::expect_reply!(c.request(Request::ListCategories).await?, Response::Categories { categories } => categories)?;
                out.send(Update::Categories(cats));
                Ok(())
            }),
            Command::SearchArticles(q) => self.spawn_op(Op::Catalogue, move |c, out| async move {
                out.send(Update::Articles(c.search_articles(&q, 10).await?));
                Ok(())
            }),
            Command::LoadDepartments => self.spawn_op(Op::Catalogue, |c, out| async move {
                out.send(Update::Departments(c.departments().await?));
                Ok(())
            }),
            Command::CreateTicket(new, then) => {
                let out = self.out.clone();
                let Some(client) = self.client() else {
                    return out.send(Update::TicketRejected(Failure::from_client(&ClientError::Closed)));
                };
                tokio::spawn(async move {
                    let t = match client.create_ticket(*new).await {
                        Ok(t) => t,
                        Err(e) => return out.send(Update::TicketRejected(Failure::from_client(&e))),
                    };
                    match then {
                        None => out.send(Update::TicketSaved(Box::new(t))),
                        Some(action) => match client.act(&t.no, action).await {
                            Ok(acted) => out.send(Update::TicketSaved(Box::new(acted))),
                            Err(e) => {
                                let no = t.no.clone();
                                out.send(Update::TicketSaved(Box::new(t)));
                                out.send(Update::FollowUpFailed { no, failure: Failure::from_client(&e) });
                            }
                        },
                    }
                });
            }
            Command::SuggestAnswers(text) => self.spawn_op(Op::Suggest, move |c, out| async move {
                let (articles, answers) = c.suggest_answers(&text).await?;
                out.send(Update::Suggestions { text, articles, answers });
                Ok(())
            }),
            Command::SearchTickets(q) => self.spawn_op(Op::Tickets, move |c, out| async move {
                out.send(Update::Tickets(c.search_tickets(q).await?));
                Ok(())
            }),
            Command::GetTicket(no) => self.spawn_op(Op::Tickets, move |c, out| async move {
                out.send(Update::Ticket(Box::new(c.get_ticket(&no).await?)));
                Ok(())
            }),
            Command::PreviewAction(no, action) => self.spawn_op(Op::Act, move |c, out| async move {
                out.send(Update::Previewed(Box::new(c.preview_action(&no, action).await?)));
                Ok(())
            }),
            Command::Act(no, action) => self.spawn_op(Op::Act, move |c, out| async move {
                out.send(Update::Acted(Box::new(c.act(&no, action).await?)));
                Ok(())
            }),
            Command::LoadDue { staff } => self.spawn_op(Op::Due, move |c, out| async move {
                out.send(Update::Due(Box::new(load_due(&c, staff).await?)));
                Ok(())
            }),
            Command::FinishCallback { id, outcome } => self.spawn_done(Op::Due, move |c| async move { c.finish_callback_with(id, &outcome).await }),
            Command::DismissReminder { id } => self.spawn_done(Op::Due, move |c| async move { c.dismiss_reminder(id).await }),
            Command::SetReminder { no, at, note } => self.spawn_done(Op::Remind, move |c| async move { c.set_reminder(&no, at, &note).await }),
            Command::LoadSavedFilters => self.spawn_op(Op::SavedFilters, |c, out| async move {
                out.send(Update::SavedFilters(c.saved_filters().await?));
                Ok(())
            }),
            Command::SaveFilter { name, query } => self.spawn_op(Op::SavedFilters, move |c, out| async move {
                out.send(Update::SavedFilters(c.save_filter(&name, query).await?));
                Ok(())
            }),
            Command::DeleteSavedFilter(name) => self.spawn_op(Op::SavedFilters, move |c, out| async move {
                out.send(Update::SavedFilters(c.delete_saved_filter(&name).await?));
                Ok(())
            }),
            Command::SetDevices { input, output } => self.devices = (input, output),
            Command::LoadTicketCalls(no) => self.spawn_op(Op::Tickets, move |c, out| async move {
                let calls = c.ticket_calls(&no).await?;
                out.send(Update::TicketCalls { no, calls });
                Ok(())
            }),
            Command::PlayRecording { no, call } => self.fetch_recording(no, call),
            Command::TestSpeaker => self.play(Clip::SpeakerTest, audio::speaker_test_clip()),
            Command::StopPlayback => self.stop_playback(),
            Command::MicTest(on) => {
                if let Some((_, t)) = self.mic_test.take() {
                    t.abort();
                }
                if on {
                    match AudioIo::open(self.devices.0.as_deref(), None, true, false) {
                        Ok(io) => {
                            let (shared, out) = (io.shared.clone(), self.out.clone());
                            out.send(Update::AudioOk);
                            let task = tokio::spawn(async move {
                                loop {
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                    if let Ok(mut m) = shared.mic.lock() {
                                        m.clear();
                                    }
                                    out.send(Update::MicLevel(shared.level()));
                                }
                            });
                            self.mic_test = Some((io, task));
                        }
                        Err(e) => self.out.send(Update::AudioProblem(e)),
                    }
                }
            }
        }
    }
}

/// The three parts of the due list; department handlers get their reminders only.
async fn load_due(c: &DeskClient, staff: bool) -> Result<crate::screens::due::DueLists, ClientError> {
    let reminders = c.reminders().await?;
    if !staff {
        return Ok(crate::screens::due::DueLists { reminders, ..Default::default() });
    }
    let callbacks = c.callback_requests(false).await?;
    let query = TicketQuery { states: vec![TicketState::LaterReply, TicketState::Replied], page_size: 200, ..TicketQuery::default() };
    let tickets = c.search_tickets(query).await?.items;
    Ok(crate::screens::due::DueLists { callbacks, tickets, reminders })
}

/// One connected call's audio: microphone → Opus → datagrams, and datagrams → jitter buffer →
/// Opus → headset, each on a 20 ms clock. Dropping it stops the tasks and closes the headset.
struct CallAudio {
    call: u64,
    tasks: Vec<JoinHandle<()>>,
    _io: AudioIo,
}

impl CallAudio {
    fn start(client: Arc<DeskClient>, call: u64, io: AudioIo, out: Out) -> CallAudio {
        let shared = io.shared.clone();
        let jitter = Arc::new(std::sync::Mutex::new(JitterBuffer::new()));
        let mut tasks = Vec::new();
        // Uplink: one frame per tick when the microphone has one; the timestamp runs on.
        let (c, s, o) = (client.clone(), shared.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            let mut encoder = match OpusEncoderVoip::new(audio::RATE) {
                Ok(e) => e,
                Err(e) => return o.send(Update::AudioProblem(AudioError::Other(e.to_string()))),
            };
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let (mut seq, mut n) = (0u16, 0u32);
            loop {
                tick.tick().await;
                n = n.wrapping_add(1);
                // Each update repaints the window: the level (shown in 设置 only) once a second,
                // a device failure within 100 ms.
                if n % 50 == 0 {
                    o.send(Update::MicLevel(s.level()));
                }
                if n % 5 == 0 {
                    if let Some(e) = s.take_failure() {
                        o.send(Update::AudioProblem(e));
                    }
                }
                let Some(pcm) = s.take_mic_frame() else { continue };
                let Ok(payload) = encoder.encode(&pcm) else { continue };
                let frame = AudioFrame { call, seq, timestamp: n.wrapping_mul(TIMESTAMP_TICKS_PER_FRAME), payload };
                seq = seq.wrapping_add(1);
                if c.send_audio(&frame).is_err() {
                    tracing::debug!(call, "audio datagram not sent");
                }
            }
        }));
        // Receive: into the jitter buffer.
        let (c, j) = (client, jitter.clone());
        tasks.push(tokio::spawn(async move {
            while let Ok(frame) = c.recv_audio().await {
                if frame.call == call {
                    if let Ok(mut jb) = j.lock() {
                        jb.push(frame.seq, frame.payload);
                    }
                }
            }
        }));
        // Playout: one frame per tick to the headset.
        tasks.push(tokio::spawn(async move {
            let mut decoder = match OpusDecoderVoip::new(audio::RATE) {
                Ok(d) => d,
                Err(e) => return out.send(Update::AudioProblem(AudioError::Other(e.to_string()))),
            };
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tick.tick().await;
                let next = jitter.lock().map(|mut jb| jb.pop()).unwrap_or(Playout::Silence);
                let pcm = match next {
                    Playout::Frame(p) => decoder.decode(&p).unwrap_or_else(|_| decoder.conceal()),
                    Playout::Lost { next: Some(p) } => decoder.decode_fec(&p).unwrap_or_else(|_| decoder.conceal()),
                    Playout::Lost { next: None } => decoder.conceal(),
                    Playout::Silence => continue,
                };
                shared.play(&pcm, 4);
            }
        }));
        CallAudio { call, tasks, _io: io }
    }

    fn stop(self) {
        drop(self);
    }
}

impl Drop for CallAudio {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
