//! The headless desk client: one QUIC connection to switchd, requests with replies, and pushed
//! events. The desktops, the end-to-end tests and the benchmarks all use it.
//!
//! Usage: [`DeskClient::connect`], then [`DeskClient::login`], then any request. Requests may be
//! issued concurrently from many tasks; replies are matched by id. Events arrive on
//! [`DeskClient::next_event`] after [`DeskClient::subscribe`]. Call audio travels beside the
//! control stream as QUIC datagrams: [`DeskClient::send_audio`] and [`DeskClient::recv_audio`]
//! (switchd drops audio from a connection that has not logged in).

use crate::audio::{AudioFrame, DATAGRAM_BUFFER_BYTES};
use crate::codec;
use crate::domain::*;
use crate::proto::*;
use crate::tls::{KnownServers, PinVerifier};
use chrono::NaiveDateTime;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached or the handshake failed.
    #[error("无法连接服务器 / cannot connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    /// The server presented a certificate other than the pinned one.
    #[error(
        "服务器证书已变更，可能存在冒充，已拒绝连接。如管理员确认更换了证书，请删除旧的指纹后重试 / \
         the server certificate changed (pinned {expected}, presented {actual}); connection refused"
    )]
    CertificateChanged { expected: String, actual: String },
    /// The server refused the connection (e.g. incompatible protocol version).
    #[error("服务器拒绝连接 / refused: {0}")]
    Refused(DeskError),
    /// The request failed with a desk error.
    #[error("{}（{}）", .0.message, .0.code.zh())]
    Desk(DeskError),
    /// The connection is gone.
    #[error("连接已断开 / connection closed")]
    Closed,
    /// A message could not be encoded or decoded.
    #[error("protocol error: {0}")]
    Codec(#[from] codec::CodecError),
    /// The server answered with a reply of the wrong type.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    /// An audio datagram could not be sent: too large for the path, datagrams unsupported by
    /// the server, or the connection is gone.
    #[error("语音数据发送失败 / audio datagram not sent: {0}")]
    Audio(#[from] quinn::SendDatagramError),
}

impl ClientError {
    /// The desk error code, when the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Desk(e) | ClientError::Refused(e) => Some(e.code),
            _ => None,
        }
    }
}

/// Unwraps the expected reply variant or reports what came instead.
#[macro_export]
macro_rules! expect_reply {
    ($resp:expr, $pat:pat => $out:expr) => {
        match $resp {
            $pat => Ok($out),
            other => Err($crate::client::ClientError::Unexpected(format!("{other:?}"))),
        }
    };
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Response, DeskError>>>>>;

pub struct DeskClient {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU64,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    fingerprint: String,
}

impl DeskClient {
    /// Connects with trust on first use: pins the server's fingerprint in `known` on first
    /// contact and refuses a changed certificate afterwards.
    pub async fn connect(addr: SocketAddr, known: &mut KnownServers, client_name: &str) -> Result<Self, ClientError> {
        let key = addr.to_string();
        let client = Self::connect_expecting(addr, known.get(&key).map(str::to_owned), client_name).await?;
        if known.get(&key).is_none() {
            known
                .pin(&key, &client.fingerprint)
                .map_err(|e| ClientError::Connect { addr, reason: format!("cannot save pin: {e}") })?;
        }
        Ok(client)
    }

    /// What a desktop does at start: connect with this user's pinned fingerprints (pinning on
    /// first use, in `settings::known_servers_path()`), then log in.
    pub async fn connect_and_login(
        addr: SocketAddr,
        username: &str,
        password: &str,
        client_name: &str,
    ) -> Result<(Self, Session), ClientError> {
        let path = crate::settings::known_servers_path();
        let mut known = KnownServers::load(&path)
            .map_err(|e| ClientError::Connect { addr, reason: format!("cannot read {}: {e}", path.display()) })?;
        let client = Self::connect(addr, &mut known, client_name).await?;
        let session = client.login(username, password).await?;
        Ok((client, session))
    }

    /// Connects, requiring the given fingerprint when `expected` is set.
    pub async fn connect_expecting(
        addr: SocketAddr,
        expected: Option<String>,
        client_name: &str,
    ) -> Result<Self, ClientError> {
        let verifier = PinVerifier::new(expected);
        let endpoint = client_endpoint(addr, verifier.clone())?;
        let connect_err = |reason: String| ClientError::Connect { addr, reason };
        let connecting = endpoint.connect(addr, "rexian-switchd").map_err(|e| connect_err(e.to_string()))?;
        let conn = match tokio::time::timeout(Duration::from_secs(10), connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(pin_error(&verifier).unwrap_or_else(|| connect_err(e.to_string()))),
            Err(_) => return Err(connect_err("timed out / 连接超时".into())),
        };
        let fingerprint = verifier.seen().unwrap_or_default();
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connect_err(e.to_string()))?;
        let hello = ClientMsg::Hello { version: PROTOCOL_VERSION, client: client_name.to_owned() };
        codec::write(&mut send, &hello).await?;
        match codec::read::<_, ServerMsg>(&mut recv).await? {
            Some(ServerMsg::Welcome { .. }) => {}
            Some(ServerMsg::Refused { error }) => return Err(ClientError::Refused(error)),
            other => return Err(ClientError::Unexpected(format!("{other:?}"))),
        }
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        tokio::spawn(write_loop(send, out_rx));
        tokio::spawn(read_loop(recv, pending.clone(), ev_tx));
        Ok(Self {
            endpoint,
            conn,
            outgoing: out_tx,
            pending,
            next_id: AtomicU64::new(1),
            events: tokio::sync::Mutex::new(ev_rx),
            fingerprint,
        })
    }

    /// Fingerprint of the certificate the server presented.
    pub fn server_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Sends one request and waits for its reply.
    pub async fn request(&self, body: Request) -> Result<Response, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = codec::encode(&ClientMsg::Request { id, body: Box::new(body) })?;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        // A request made after the connection closed would wait forever: the read loop that
        // answers waiters has already ended.
        if self.conn.close_reason().is_some() {
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&id);
            }
            return Err(ClientError::Closed);
        }
        self.outgoing.send(frame).map_err(|_| ClientError::Closed)?;
        match rx.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(ClientError::Desk(e)),
            Err(_) => Err(ClientError::Closed),
        }
    }

    /// Waits for the next pushed event; `None` once the connection is gone.
    pub async fn next_event(&self) -> Option<Event> {
        self.events.lock().await.recv().await
    }

    /// Sends one audio frame as a QUIC datagram and returns at once. Datagrams are unreliable:
    /// a frame may be lost or reordered, and when the send buffer is full quinn drops the oldest
    /// queued one rather than delay live audio. Fails when the frame does not fit in a datagram
    /// on this path (payloads from `OpusEncoderVoip` always do) or the connection is gone.
    pub fn send_audio(&self, frame: &AudioFrame) -> Result<(), ClientError> {
        Ok(self.conn.send_datagram(frame.to_bytes().into())?)
    }

    /// Waits for the next audio frame from the server. Datagrams that are not audio frames are
    /// skipped (logged at debug level), so a newer server's other datagram kinds do no harm.
    /// Fails with [`ClientError::Closed`] once the connection is gone. Frames come in arrival
    /// order: put them through a jitter buffer before playing them.
    pub async fn recv_audio(&self) -> Result<AudioFrame, ClientError> {
        loop {
            let datagram = self.conn.read_datagram().await.map_err(|_| ClientError::Closed)?;
            match AudioFrame::parse(&datagram) {
                Ok(frame) => return Ok(frame),
                Err(e) => tracing::debug!(error = %e, len = datagram.len(), "skipped a datagram"),
            }
        }
    }

    /// Closes the connection at once, without waiting: for a client shared between tasks
    /// (the desktops' backend), where [`DeskClient::close`] cannot take it by value. Every
    /// waiting request then fails with [`ClientError::Closed`] and `next_event` returns `None`.
    pub fn disconnect(&self) {
        self.conn.close(0u32.into(), b"bye");
    }

    /// Closes the connection and waits until the server was told.
    pub async fn close(self) {
        self.conn.close(0u32.into(), b"bye");
        self.endpoint.wait_idle().await;
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<Session, ClientError> {
        let req = Request::Login { username: username.into(), password: password.into() };
        expect_reply!(self.request(req).await?, Response::Session { session } => session)
    }

    pub async fn resume(&self, token: &str) -> Result<Session, ClientError> {
        expect_reply!(self.request(Request::Resume { token: token.into() }).await?, Response::Session { session } => session)
    }

    pub async fn subscribe(&self) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::Subscribe).await?, Response::Ok => ())
    }

    pub async fn create_ticket(&self, ticket: NewTicket) -> Result<Ticket, ClientError> {
        expect_reply!(self.request(Request::CreateTicket { ticket }).await?, Response::Ticket { ticket } => *ticket)
    }

    pub async fn get_ticket(&self, no: &TicketNo) -> Result<Ticket, ClientError> {
        expect_reply!(self.request(Request::GetTicket { no: no.clone() }).await?, Response::Ticket { ticket } => *ticket)
    }

    /// The ticket as `action` would leave it, nothing changed.
    pub async fn preview_action(&self, no: &TicketNo, action: TicketAction) -> Result<Ticket, ClientError> {
        let req = Request::PreviewAction { no: no.clone(), action };
        expect_reply!(self.request(req).await?, Response::Ticket { ticket } => *ticket)
    }

    pub async fn act(&self, no: &TicketNo, action: TicketAction) -> Result<Ticket, ClientError> {
        let req = Request::Act { no: no.clone(), action };
        expect_reply!(self.request(req).await?, Response::Ticket { ticket } => *ticket)
    }

    pub async fn search_tickets(&self, query: TicketQuery) -> Result<TicketPage, ClientError> {
        expect_reply!(self.request(Request::SearchTickets { query }).await?, Response::Tickets { page } => page)
    }

    /// This user's saved filters of the ticket list (常用筛选), by name.
    pub async fn saved_filters(&self) -> Result<Vec<SavedFilter>, ClientError> {
        expect_reply!(self.request(Request::ListSavedFilters).await?, Response::SavedFilters { filters } => filters)
    }

    /// Saves (or replaces) this user's filter `name`; returns their filters.
    pub async fn save_filter(&self, name: &str, query: TicketQuery) -> Result<Vec<SavedFilter>, ClientError> {
        let req = Request::SaveFilter { name: name.into(), query };
        expect_reply!(self.request(req).await?, Response::SavedFilters { filters } => filters)
    }

    /// Deletes this user's filter `name`; returns their filters.
    pub async fn delete_saved_filter(&self, name: &str) -> Result<Vec<SavedFilter>, ClientError> {
        let req = Request::DeleteSavedFilter { name: name.into() };
        expect_reply!(self.request(req).await?, Response::SavedFilters { filters } => filters)
    }

    pub async fn search_articles(&self, query: &str, limit: u32) -> Result<Vec<ArticleHit>, ClientError> {
        let req = Request::SearchArticles { query: query.into(), limit, include_drafts: false };
        expect_reply!(self.request(req).await?, Response::ArticleHits { hits } => hits)
    }

    /// Reference answers for `text` (articles, earlier answered consultations).
    pub async fn suggest_answers(&self, text: &str) -> Result<(Vec<ArticleHit>, Vec<EarlierAnswer>), ClientError> {
        expect_reply!(self.request(Request::SuggestAnswers { text: text.into() }).await?, Response::Suggestions { articles, answers } => (articles, answers))
    }

    /// Hotline staff: the calls a ticket is linked to.
    pub async fn ticket_calls(&self, no: &TicketNo) -> Result<Vec<CallSummary>, ClientError> {
        expect_reply!(self.request(Request::TicketCalls { no: no.clone() }).await?, Response::TicketCalls { calls } => calls)
    }

    /// Hotline staff: a linked call's recording, a base64-encoded WAV.
    pub async fn call_recording(&self, no: &TicketNo, call: i64) -> Result<String, ClientError> {
        expect_reply!(self.request(Request::GetCallRecording { no: no.clone(), call }).await?, Response::CallRecording { wav_base64, .. } => wav_base64)
    }

    pub async fn departments(&self) -> Result<Vec<Department>, ClientError> {
        expect_reply!(self.request(Request::ListDepartments).await?, Response::Departments { departments } => departments)
    }

    /// Takes a call offered by `Event::CallOffered`; audio frames for it flow from now.
    pub async fn answer_call(&self, call: u64) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::AnswerCall { call }).await?, Response::Ok => ())
    }

    /// Calls `number` through the outbound trunk; the call's events and audio use the id
    /// returned.
    pub async fn dial(&self, number: &PhoneNumber) -> Result<u64, ClientError> {
        expect_reply!(self.request(Request::Dial { number: number.clone() }).await?, Response::CallStarted { call } => call)
    }

    /// Transfers the caller of a connected call to `number` (blind transfer).
    pub async fn transfer(&self, call: u64, number: &PhoneNumber) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::Transfer { call, number: number.clone() }).await?, Response::Ok => ())
    }

    /// Adds `number` to a connected call (three-way conference).
    pub async fn conference(&self, call: u64, number: &PhoneNumber) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::Conference { call, number: number.clone() }).await?, Response::Ok => ())
    }

    /// Keys `digits` towards the other party of a connected call.
    pub async fn send_dtmf(&self, call: u64, digits: &str) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::SendDtmf { call, digits: digits.into() }).await?, Response::Ok => ())
    }

    /// Supervisors: the calls at desks now.
    pub async fn list_calls(&self) -> Result<Vec<ActiveCall>, ClientError> {
        expect_reply!(self.request(Request::ListCalls).await?, Response::Calls { calls } => calls)
    }

    /// Supervisors: listen to, whisper into or barge into a desk call.
    pub async fn snoop(&self, call: u64, mode: SnoopMode) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::Snoop { call, mode }).await?, Response::Ok => ())
    }

    /// Hands the caller of a connected call to an IVR flow (e.g. `satisfaction`).
    pub async fn transfer_to_flow(&self, call: u64, flow: &str) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::TransferToFlow { call, flow: flow.into() }).await?, Response::Ok => ())
    }

    /// Puts a connected call on hold (`true`) or takes it back (`false`).
    pub async fn hold_call(&self, call: u64, hold: bool) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::HoldCall { call, hold }).await?, Response::Ok => ())
    }

    /// Mutes (`true`) or unmutes this desk towards the caller.
    pub async fn mute_call(&self, call: u64, mute: bool) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::MuteCall { call, mute }).await?, Response::Ok => ())
    }

    /// Hands the caller of a queue call to another desk user (user name or agent number).
    pub async fn transfer_to_agent(&self, call: u64, agent: &str) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::TransferToAgent { call, agent: agent.into() }).await?, Response::Ok => ())
    }

    /// Hands the caller of a queue call to ACD queue `queue`.
    pub async fn transfer_to_queue(&self, call: u64, queue: &str) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::TransferToQueue { call, queue: queue.into() }).await?, Response::Ok => ())
    }

    /// Hands the caller of a queue call to a free supervisor (呼叫班长).
    pub async fn transfer_to_supervisor(&self, call: u64) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::TransferToSupervisor { call }).await?, Response::Ok => ())
    }

    /// Attended transfer: holds the caller and calls `number` to consult.
    pub async fn consult(&self, call: u64, number: &PhoneNumber) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::Consult { call, number: number.clone() }).await?, Response::Ok => ())
    }

    /// Attended transfer: the consulted party takes over the caller.
    pub async fn complete_transfer(&self, call: u64) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::CompleteTransfer { call }).await?, Response::Ok => ())
    }

    /// Attended transfer: drops the consulted party and returns to the caller.
    pub async fn cancel_consult(&self, call: u64) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::CancelConsult { call }).await?, Response::Ok => ())
    }

    /// Supervisors: ends a desk call (强拆).
    /// Consults desk user `agent` (user name or 工号) during `call`, the caller held (AGT-2).
    pub async fn consult_agent(&self, call: u64, agent: &str) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::ConsultAgent { call, agent: agent.to_owned() }).await?, Response::Ok => ())
    }

    /// Asks a free supervisor for help during `call` (求助), the caller held.
    pub async fn consult_supervisor(&self, call: u64) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::ConsultSupervisor { call }).await?, Response::Ok => ())
    }

    /// Calls desk user `user` (user name or 工号) desk to desk (SUP-3); returns this desk's
    /// call id.
    pub async fn call_desk(&self, user: &str) -> Result<u64, ClientError> {
        expect_reply!(self.request(Request::CallDesk { user: user.to_owned() }).await?, Response::CallStarted { call } => call)
    }

    /// Calls a free supervisor desk to desk (呼叫班长求助); returns this desk's call id.
    pub async fn call_supervisor(&self) -> Result<u64, ClientError> {
        expect_reply!(self.request(Request::CallSupervisor).await?, Response::CallStarted { call } => call)
    }

    /// Supervisors: takes over `call`, which this desk listens to (接管, SUP-2).
    pub async fn take_over(&self, call: u64) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::TakeOver { call }).await?, Response::Ok => ())
    }

    pub async fn force_hangup(&self, call: u64) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::ForceHangup { call }).await?, Response::Ok => ())
    }

    /// Logs in to the ACD's queues.
    pub async fn agent_login(&self, ready: bool) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::AgentLogin { ready }).await?, Response::Ok => ())
    }

    pub async fn agent_ready(&self) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::AgentReady).await?, Response::Ok => ())
    }

    pub async fn agent_not_ready(&self, reason: &str) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::AgentNotReady { reason: reason.into() }).await?, Response::Ok => ())
    }

    pub async fn agent_logout(&self) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::AgentLogout).await?, Response::Ok => ())
    }

    /// Supervisors: force an agent's state (`ready`, `not_ready` with a reason, `logged_out`).
    pub async fn force_agent_state(&self, user_id: i64, state: &str, reason: Option<&str>) -> Result<(), ClientError> {
        let req = Request::ForceAgentState { user_id, state: state.into(), reason: reason.map(Into::into) };
        expect_reply!(self.request(req).await?, Response::Ok => ())
    }

    /// Supervisors: the seat board.
    pub async fn seat_board(&self) -> Result<SeatBoard, ClientError> {
        expect_reply!(self.request(Request::GetSeatBoard).await?, Response::SeatBoard { board } => board)
    }

    /// Administrators: the IVR's flows (latest versions).
    pub async fn list_flows(&self) -> Result<Vec<FlowInfo>, ClientError> {
        expect_reply!(self.request(Request::ListFlows).await?, Response::Flows { flows } => flows)
    }

    /// Administrators: a flow's YAML and version.
    pub async fn get_flow(&self, name: &str, version: Option<i64>) -> Result<(i64, String), ClientError> {
        expect_reply!(self.request(Request::GetFlow { name: name.into(), version }).await?, Response::Flow { version, yaml, .. } => (version, yaml))
    }

    /// Administrators: validate and save a flow.
    pub async fn save_flow(&self, yaml: &str) -> Result<FlowInfo, ClientError> {
        expect_reply!(self.request(Request::SaveFlow { yaml: yaml.into() }).await?, Response::FlowSaved { flow } => flow)
    }

    /// Administrators: replace a prompt with a recording (a WAV file, base64-encoded).
    pub async fn set_prompt_audio(&self, name: &str, wav_base64: String) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::SetPromptAudio { name: name.into(), wav_base64 }).await?, Response::Ok => ())
    }

    pub async fn list_surveys(&self) -> Result<Vec<Survey>, ClientError> {
        expect_reply!(self.request(Request::ListSurveys).await?, Response::Surveys { surveys } => surveys)
    }

    pub async fn save_survey(&self, survey: Survey) -> Result<Survey, ClientError> {
        expect_reply!(self.request(Request::SaveSurvey { survey }).await?, Response::Survey { survey } => survey)
    }

    pub async fn survey_results(&self, id: i64) -> Result<SurveyResults, ClientError> {
        expect_reply!(self.request(Request::GetSurveyResults { id }).await?, Response::SurveyResults { results } => results)
    }

    pub async fn callback_requests(&self, include_done: bool) -> Result<Vec<CallbackRequest>, ClientError> {
        expect_reply!(self.request(Request::ListCallbackRequests { include_done }).await?, Response::CallbackRequests { requests } => requests)
    }

    pub async fn finish_callback_request(&self, id: i64) -> Result<(), ClientError> {
        self.finish_callback_with(id, "").await
    }

    /// Marks a callback request done with what came of it (回拨结果).
    pub async fn finish_callback_with(&self, id: i64, outcome: &str) -> Result<(), ClientError> {
        let outcome = outcome.to_owned();
        expect_reply!(self.request(Request::FinishCallbackRequest { id, outcome }).await?, Response::Ok => ())
    }

    /// Sets a reminder (催办) on a ticket at `at`, Beijing time.
    pub async fn set_reminder(&self, no: &TicketNo, at: NaiveDateTime, note: &str) -> Result<(), ClientError> {
        let (no, note) = (no.clone(), note.to_owned());
        expect_reply!(self.request(Request::SetReminder { no, at, note }).await?, Response::Ok => ())
    }

    /// This user's reminders not dismissed yet, earliest first.
    pub async fn reminders(&self) -> Result<Vec<Reminder>, ClientError> {
        expect_reply!(self.request(Request::ListReminders).await?, Response::Reminders { reminders } => reminders)
    }

    pub async fn dismiss_reminder(&self, id: i64) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::DismissReminder { id }).await?, Response::Ok => ())
    }

    /// Hangs up (or declines) a call of this user.
    pub async fn hangup_call(&self, call: u64) -> Result<(), ClientError> {
        expect_reply!(self.request(Request::HangupCall { call }).await?, Response::Ok => ())
    }

    pub async fn caller_profile(&self, phone: &PhoneNumber) -> Result<CallerProfile, ClientError> {
        let req = Request::GetCallerProfile { phone: phone.clone() };
        expect_reply!(self.request(req).await?, Response::CallerProfile { profile } => profile)
    }
}


fn pin_error(verifier: &PinVerifier) -> Option<ClientError> {
    let (expected, actual) = (verifier.expected()?, verifier.seen()?);
    (expected != actual).then(|| ClientError::CertificateChanged { expected: expected.into(), actual })
}

fn client_endpoint(addr: SocketAddr, verifier: Arc<PinVerifier>) -> Result<quinn::Endpoint, ClientError> {
    let connect_err = |reason: String| ClientError::Connect { addr, reason };
    let mut crypto = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| connect_err(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    crypto.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).map_err(|e| connect_err(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(5)));
    // A desk notices a silent loss (a crashed switchd, a cut cable) within about 10 s and can
    // reconnect, instead of after quinn's default 30 s.
    if let Ok(idle) = quinn::IdleTimeout::try_from(Duration::from_secs(10)) {
        transport.max_idle_timeout(Some(idle));
    }
    transport.datagram_receive_buffer_size(Some(DATAGRAM_BUFFER_BYTES));
    transport.datagram_send_buffer_size(DATAGRAM_BUFFER_BYTES);
    config.transport_config(Arc::new(transport));
    let bind: SocketAddr = if addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }
        .parse()
        .map_err(|_| connect_err("bad bind address".into()))?;
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| connect_err(e.to_string()))?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}

async fn write_loop(mut send: quinn::SendStream, mut frames: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(frame) = frames.recv().await {
        if send.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = send.finish();
}

async fn read_loop(mut recv: quinn::RecvStream, pending: Pending, events: mpsc::UnboundedSender<Event>) {
    loop {
        match codec::read::<_, ServerMsg>(&mut recv).await {
            Ok(Some(ServerMsg::Reply { id, result })) => {
                let waiter = pending.lock().ok().and_then(|mut p| p.remove(&id));
                if let Some(tx) = waiter {
                    let _ = tx.send(result);
                }
            }
            Ok(Some(ServerMsg::Event { event })) => {
                let _ = events.send(event);
            }
            Ok(Some(other)) => tracing::warn!(?other, "unexpected message on the control stream"),
            Ok(None) | Err(_) => break,
        }
    }
    // Dropping the waiters tells every open request that the connection is gone.
    if let Ok(mut p) = pending.lock() {
        p.clear();
    }
}
