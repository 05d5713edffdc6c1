//! The desk protocol between `switchd` and the desktops.
//!
//! One QUIC connection per desktop. The client opens one bidirectional stream (the control
//! stream) and sends [`ClientMsg::Hello`]; the server answers [`ServerMsg::Welcome`] or
//! [`ServerMsg::Refused`]. After that the client sends [`ClientMsg::Request`]s, each with an id
//! unique on the connection, and the server answers each with one [`ServerMsg::Reply`] carrying
//! the same id, in any order. Events the client subscribed to arrive as [`ServerMsg::Event`] on
//! the same stream. Every message is one frame of [`crate::codec`].

use crate::domain::*;
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// Bumped on every incompatible change of the messages below.
pub const PROTOCOL_VERSION: u32 = 1;
/// ALPN protocol name of the desk protocol.
pub const ALPN: &[u8] = b"rexian-desk/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientMsg {
    Hello { version: u32, client: String },
    Request { id: u64, body: Box<Request> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerMsg {
    Welcome { version: u32, server: String },
    Refused { error: DeskError },
    Reply { id: u64, result: Result<Response, DeskError> },
    Event { event: Event },
}

/// Stable error codes. The desktops translate them; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The client speaks another protocol version.
    IncompatibleVersion,
    /// The request needs a logged-in session.
    NotAuthenticated,
    /// Wrong user name or password.
    BadCredentials,
    /// Too many failed logins; the account is locked for a while.
    AccountLocked,
    /// The session token has expired or was logged out.
    SessionExpired,
    /// The user's role or department does not allow this.
    Forbidden,
    /// No such ticket, user, article, …
    NotFound,
    /// A field of the request is invalid; `field` names it.
    InvalidField,
    /// The ticket's state does not allow this action.
    InvalidTransition,
    /// The value exists already (user name, category code, …).
    Conflict,
    /// An upload or a frame is larger than allowed.
    TooLarge,
    /// A new password is too weak.
    WeakPassword,
    /// Something failed inside switchd; it has been logged.
    Internal,
    /// The person asked for (an agent, a supervisor) is busy or not at a desk now.
    Busy,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::IncompatibleVersion,
        ErrorCode::NotAuthenticated,
        ErrorCode::BadCredentials,
        ErrorCode::AccountLocked,
        ErrorCode::SessionExpired,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::InvalidField,
        ErrorCode::InvalidTransition,
        ErrorCode::Conflict,
        ErrorCode::TooLarge,
        ErrorCode::WeakPassword,
        ErrorCode::Internal,
        ErrorCode::Busy,
    ];

    /// The Chinese text a desktop shows for this code.
    pub fn zh(self) -> &'static str {
        match self {
            ErrorCode::IncompatibleVersion => "客户端版本与服务器不兼容，请升级",
            ErrorCode::NotAuthenticated => "请先登录",
            ErrorCode::BadCredentials => "用户名或密码错误",
            ErrorCode::AccountLocked => "登录失败次数过多，账户已锁定，请稍后再试",
            ErrorCode::SessionExpired => "会话已过期，请重新登录",
            ErrorCode::Forbidden => "无权执行此操作",
            ErrorCode::NotFound => "未找到",
            ErrorCode::InvalidField => "填写内容有误",
            ErrorCode::InvalidTransition => "当前状态不允许此操作",
            ErrorCode::Conflict => "已存在",
            ErrorCode::TooLarge => "内容过大",
            ErrorCode::WeakPassword => "密码强度不足（至少8位）",
            ErrorCode::Internal => "服务器内部错误",
            ErrorCode::Busy => "对方忙或不在线，请稍后再试",
        }
    }
}

/// The one error type of the desk protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct DeskError {
    pub code: ErrorCode,
    /// Chinese first, English after a slash.
    pub message: String,
    /// For `InvalidField`: the field's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl DeskError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: None }
    }
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self { code: ErrorCode::InvalidField, message: message.into(), field: Some(field.to_owned()) }
    }
}

impl From<InvalidValue> for DeskError {
    fn from(e: InvalidValue) -> Self {
        DeskError::field(e.field, e.to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    // Sessions
    Login { username: String, password: String },
    Resume { token: String },
    Logout,
    ChangePassword { old_password: String, new_password: String },
    WhoAmI,
    Subscribe,
    // Administration (ADM-1)
    ListUsers,
    CreateUser { user: NewUser },
    SetUserPassword { username: String, new_password: String },
    SetUserActive { username: String, active: bool },
    UnlockUser { username: String },
    ListDepartments,
    CreateDepartment { name: String, parent_id: Option<i64>, phone: Option<String> },
    ListCategories,
    CreateCategory { code: String, name: String, parent_code: Option<String> },
    ListCalendar { year: i32 },
    SetCalendarDays { days: Vec<CalendarDay> },
    // Tickets
    CreateTicket { ticket: NewTicket },
    GetTicket { no: TicketNo },
    SearchTickets { query: TicketQuery },
    Act { no: TicketNo, action: TicketAction },
    /// The ticket as `action` would leave it — state, stage, deadline, working days left —
    /// without changing anything: shown before a dispatch is confirmed. Checked as `Act` is.
    PreviewAction { no: TicketNo, action: TicketAction },
    SplitTicket { no: TicketNo, parts: Vec<SplitPart> },
    SetReminder { no: TicketNo, at: NaiveDateTime, note: String },
    /// This user's reminders (催办) not dismissed yet, fired or still to come, earliest first:
    /// those the user set and, for department handlers, those on their department's tickets.
    ListReminders,
    /// Take a fired reminder off this user's due list (知道了).
    DismissReminder { id: i64 },
    AddAttachment { no: TicketNo, name: String, mime: String, data_base64: String },
    GetAttachment { id: i64 },
    /// Hotline staff: the calls linked to a ticket, oldest first, with their recordings' length.
    TicketCalls { no: TicketNo },
    /// Hotline staff: the recording of call `call`, which ticket `no` is linked to, as WAV
    /// (the whole call in stereo, the caller left, when there is one).
    GetCallRecording { no: TicketNo, call: i64 },
    DueTickets { within_working_days: u32 },
    // Knowledge base (KB-1)
    SaveArticle { article: ArticleInput },
    GetArticle { id: i64 },
    SearchArticles { query: String, limit: u32, include_drafts: bool },
    /// Reference answers for what an agent is typing (TKT-3): published articles and earlier
    /// answered consultations sharing the most words with `text` (1 to 2000 characters).
    /// Department handlers get articles only: earlier answers belong to other departments.
    SuggestAnswers { text: String },
    // Callers (CRM-1)
    GetCallerProfile { phone: PhoneNumber },
    GetEnterpriseProfile { credit_code: CreditCode },
    SetCallerFlags { phone: PhoneNumber, vip: bool, blocked: bool },
    // Calls (AGT-8): the desk's softphone. Audio flows as `audio::AudioFrame` datagrams whose
    // `call` is the id from `Event::CallOffered`.
    /// Take a call offered to this user (`Event::CallOffered`).
    AnswerCall { call: u64 },
    /// Hang up (or decline, while it rings) one of this user's calls.
    HangupCall { call: u64 },
    /// Call an external number through the outbound trunk; replied with `CallStarted`.
    Dial { number: PhoneNumber },
    /// Hand the caller of a connected call on to `number` through the outbound trunk (blind
    /// transfer); the desk gets `CallEnded` with cause `transferred`.
    Transfer { call: u64, number: PhoneNumber },
    /// Add `number` to a connected call through the outbound trunk (three-way conference);
    /// `ConferenceChanged` follows when it answers and when it leaves.
    Conference { call: u64, number: PhoneNumber },
    /// Key digits (0–9, *, #, A–D; at most 32) towards the other party of a connected call,
    /// e.g. to get through an outside IVR; sent as RFC 4733 events.
    SendDtmf { call: u64, digits: String },
    /// Hand the caller of a connected call to IVR flow `flow` (人工转自动), e.g. the shipped
    /// `satisfaction` flow at the end of a call; the desk gets `CallEnded` with cause
    /// `transferred`.
    TransferToFlow { call: u64, flow: String },
    /// Put a connected call on hold (保持) or take it back: while held the caller hears music on
    /// hold, the agent hears nothing of the caller and the caller nothing of the agent; the
    /// recording goes on. `CallHeld` follows.
    HoldCall { call: u64, hold: bool },
    /// Mute (静音) the agent towards the caller, or unmute: switchd drops the desk's audio
    /// before it reaches the caller. `CallMuted` follows.
    MuteCall { call: u64, mute: bool },
    /// Hand the caller of a connected queue call to another desk user (转座席), by user name or
    /// agent number: their desk rings; unanswered, the caller waits in the queue the call came
    /// from, ahead of new callers. The desk gets `CallEnded` with cause `transferred`.
    TransferToAgent { call: u64, agent: String },
    /// Hand the caller of a connected queue call to ACD queue `queue` (转队列), ahead of the
    /// callers waiting there.
    TransferToQueue { call: u64, queue: String },
    /// Hand the caller of a connected queue call to a supervisor (呼叫班长): a supervisor at a
    /// desk and free — ready in the queues first, then one not taking queue calls — is rung
    /// as by `TransferToAgent`.
    TransferToSupervisor { call: u64 },
    /// Attended transfer (咨询转接): put the caller on hold and call `number` through the
    /// outbound trunk; the agent and that party talk while the caller hears music on hold.
    /// `ConferenceChanged { joined: true }` when it answers. Then `CompleteTransfer`,
    /// `CancelConsult`, or `HoldCall { hold: false }` to make it a three-way call.
    Consult { call: u64, number: PhoneNumber },
    /// Attended transfer: the consulted party takes over the caller; the agent leaves (`CallEnded`
    /// with cause `transferred`). Without a consultation going on it changes nothing.
    CompleteTransfer { call: u64 },
    /// Attended transfer: the consulted party is hung up and the agent is back with the caller.
    CancelConsult { call: u64 },
    /// Consult another desk user (咨询座席/班长, AGT-2) by user name or agent number (工号): the
    /// caller is held with music and that user's desk is rung (`CallOffered` with this call's
    /// id, the asking user's name as `caller` and `internal` as `callee`); once answered the two
    /// desks talk (`ConferenceChanged { joined: true }`). Then `CompleteTransfer` (the consulted
    /// user takes the caller; this desk gets `CallEnded` with cause `transferred`),
    /// `CancelConsult`, or `HoldCall { hold: false }` for a three-way call. The target must be
    /// free (`busy` otherwise).
    ConsultAgent { call: u64, agent: String },
    /// Ask for help during a call (求助): `ConsultAgent` with a free supervisor, picked as
    /// `TransferToSupervisor` picks one.
    ConsultSupervisor { call: u64 },
    /// Call another desk user (内部呼叫, SUP-3), by user name or agent number, outside any
    /// caller's call: their desk gets `CallOffered` (this user's name as `caller`, `internal`
    /// as `callee`, `desk` as `trunk`); replied with `CallStarted` (this desk's id for the call,
    /// which differs from the callee's). `CallRinging`, `CallConnected` and `CallEnded` follow;
    /// audio flows desk to desk. On a caller's call, use `ConsultAgent` instead.
    CallDesk { user: String },
    /// Call a free supervisor for help (呼叫班长求助, SUP-3) as by `CallDesk`.
    CallSupervisor,
    /// Supervisors and administrators listening to a desk call (SUP-2, 接管): take it over; the
    /// agent gets `CallEnded` with cause `taken_over` (and goes to wrap-up), this desk talks
    /// with the caller under the same call id (`CallConnected`).
    TakeOver { call: u64 },
    /// Supervisors and administrators (SUP-2, 强拆): end a desk call; the caller is told and
    /// hung up, the agent gets `CallEnded` with cause `forced_hangup`.
    ForceHangup { call: u64 },
    /// Agents (and supervisors taking calls): log in to the ACD's queues, ready or not.
    AgentLogin { ready: bool },
    /// Log out of the queues (after the current call, if any).
    AgentLogout,
    /// Ready for calls (示闲); from wrap-up, ends it.
    AgentReady,
    /// Not ready (示忙 / 临时闭席) with a reason: `break`, `meeting`, `training`, `meal`, `other`.
    AgentNotReady { reason: String },
    /// Supervisors: the seat board (SUP-1) — seat counts, each agent, each queue.
    GetSeatBoard,
    /// Supervisors: set an agent ready (强制示闲), not ready with `reason` (强制示忙) or logged
    /// out of the queues (强制签出): `state` is `ready`, `not_ready` or `logged_out`.
    ForceAgentState { user_id: i64, state: String, reason: Option<String> },
    /// Supervisors (SUP-2): the calls connected to or ringing at desks now.
    ListCalls,
    /// Supervisors (SUP-2): listen to a desk call, whisper to the agent, or barge in; audio
    /// flows as frames with the call's id. `HangupCall` stops it; asking again changes mode.
    Snoop { call: u64, mode: SnoopMode },
    // IVR (IVR-1, IVR-8, IVR-9): flows, replacement recordings, surveys, the callback list.
    /// Administrators: the latest version of every flow.
    ListFlows,
    /// Administrators: a flow's YAML (the latest version unless `version`).
    GetFlow { name: String, version: Option<i64> },
    /// Administrators: validate and save a flow as its next version; it applies from the next
    /// call. A flow that does not validate is refused naming the node (`field` = `yaml`).
    SaveFlow { yaml: String },
    /// Administrators: a recording (WAV) that replaces a prompt — `ivr-<flow>-<node>` for a
    /// node's text, `kb-<article id>` for an article read in the consultation menu.
    SetPromptAudio { name: String, wav_base64: String },
    /// Supervisors and administrators.
    ListSurveys,
    /// Supervisors and administrators: create or change a survey; an active one replaces the
    /// one active before.
    SaveSurvey { survey: Survey },
    /// Supervisors, administrators and leaders: the answers counted.
    GetSurveyResults { id: i64 },
    /// Hotline staff: the callback list (after-hours callers, fax-back and e-mail-back).
    ListCallbackRequests { include_done: bool },
    /// Hotline staff: mark a callback request done, with what came of it (回拨结果).
    FinishCallbackRequest {
        id: i64,
        #[serde(default)]
        outcome: String,
    },
    // Saved filters of the ticket list (常用筛选): any signed-in user, only ever their own.
    /// This user's saved filters, by name.
    ListSavedFilters,
    /// Save `query` (its page is not kept) as this user's filter `name` (1–30 characters);
    /// an existing filter of that name is replaced. Replied with the user's filters.
    SaveFilter { name: String, query: TicketQuery },
    /// Delete this user's filter `name` (`not_found` when they have none of that name).
    /// Replied with the user's filters.
    DeleteSavedFilter { name: String },
}

/// How a supervisor joins an agent's call (监听 / 耳语 / 强插).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnoopMode {
    /// Hear both parties; nobody hears the supervisor.
    Listen,
    /// Hear both; only the agent hears the supervisor.
    Whisper,
    /// Hear both; both hear the supervisor.
    Barge,
}

impl SnoopMode {
    pub fn zh(self) -> &'static str {
        match self {
            SnoopMode::Listen => "监听",
            SnoopMode::Whisper => "耳语",
            SnoopMode::Barge => "强插",
        }
    }
}

/// A call at a desk, as a supervisor's list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveCall {
    pub call: u64,
    /// The desk user it is offered to or connected with.
    pub user_id: i64,
    pub caller: String,
    pub callee: String,
    pub connected: bool,
    /// The agent has the caller on hold.
    #[serde(default)]
    pub held: bool,
}

impl Request {
    /// The request's name on the wire (its `op` tag), for logs and metrics.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Login { .. } => "login",
            Request::Resume { .. } => "resume",
            Request::Logout => "logout",
            Request::ChangePassword { .. } => "change_password",
            Request::WhoAmI => "who_am_i",
            Request::Subscribe => "subscribe",
            Request::ListUsers => "list_users",
            Request::CreateUser { .. } => "create_user",
            Request::SetUserPassword { .. } => "set_user_password",
            Request::SetUserActive { .. } => "set_user_active",
            Request::UnlockUser { .. } => "unlock_user",
            Request::ListDepartments => "list_departments",
            Request::CreateDepartment { .. } => "create_department",
            Request::ListCategories => "list_categories",
            Request::CreateCategory { .. } => "create_category",
            Request::ListCalendar { .. } => "list_calendar",
            Request::SetCalendarDays { .. } => "set_calendar_days",
            Request::CreateTicket { .. } => "create_ticket",
            Request::GetTicket { .. } => "get_ticket",
            Request::SearchTickets { .. } => "search_tickets",
            Request::Act { .. } => "act",
            Request::PreviewAction { .. } => "preview_action",
            Request::SplitTicket { .. } => "split_ticket",
            Request::SetReminder { .. } => "set_reminder",
            Request::ListReminders => "list_reminders",
            Request::DismissReminder { .. } => "dismiss_reminder",
            Request::AddAttachment { .. } => "add_attachment",
            Request::GetAttachment { .. } => "get_attachment",
            Request::TicketCalls { .. } => "ticket_calls",
            Request::GetCallRecording { .. } => "get_call_recording",
            Request::DueTickets { .. } => "due_tickets",
            Request::SaveArticle { .. } => "save_article",
            Request::GetArticle { .. } => "get_article",
            Request::SearchArticles { .. } => "search_articles",
            Request::SuggestAnswers { .. } => "suggest_answers",
            Request::GetCallerProfile { .. } => "get_caller_profile",
            Request::GetEnterpriseProfile { .. } => "get_enterprise_profile",
            Request::SetCallerFlags { .. } => "set_caller_flags",
            Request::AnswerCall { .. } => "answer_call",
            Request::HangupCall { .. } => "hangup_call",
            Request::Dial { .. } => "dial",
            Request::Transfer { .. } => "transfer",
            Request::Conference { .. } => "conference",
            Request::SendDtmf { .. } => "send_dtmf",
            Request::TransferToFlow { .. } => "transfer_to_flow",
            Request::HoldCall { .. } => "hold_call",
            Request::MuteCall { .. } => "mute_call",
            Request::TransferToAgent { .. } => "transfer_to_agent",
            Request::TransferToQueue { .. } => "transfer_to_queue",
            Request::TransferToSupervisor { .. } => "transfer_to_supervisor",
            Request::Consult { .. } => "consult",
            Request::CompleteTransfer { .. } => "complete_transfer",
            Request::CancelConsult { .. } => "cancel_consult",
            Request::ForceHangup { .. } => "force_hangup",
            Request::ConsultAgent { .. } => "consult_agent",
            Request::ConsultSupervisor { .. } => "consult_supervisor",
            Request::CallDesk { .. } => "call_desk",
            Request::CallSupervisor => "call_supervisor",
            Request::TakeOver { .. } => "take_over",
            Request::AgentLogin { .. } => "agent_login",
            Request::AgentLogout => "agent_logout",
            Request::AgentReady => "agent_ready",
            Request::AgentNotReady { .. } => "agent_not_ready",
            Request::GetSeatBoard => "get_seat_board",
            Request::ForceAgentState { .. } => "force_agent_state",
            Request::ListCalls => "list_calls",
            Request::Snoop { .. } => "snoop",
            Request::ListFlows => "list_flows",
            Request::GetFlow { .. } => "get_flow",
            Request::SaveFlow { .. } => "save_flow",
            Request::SetPromptAudio { .. } => "set_prompt_audio",
            Request::ListSurveys => "list_surveys",
            Request::SaveSurvey { .. } => "save_survey",
            Request::GetSurveyResults { .. } => "get_survey_results",
            Request::ListCallbackRequests { .. } => "list_callback_requests",
            Request::FinishCallbackRequest { .. } => "finish_callback_request",
            Request::ListSavedFilters => "list_saved_filters",
            Request::SaveFilter { .. } => "save_filter",
            Request::DeleteSavedFilter { .. } => "delete_saved_filter",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Response {
    Ok,
    /// A call placed by `Dial`: its id in call events and audio frames.
    CallStarted { call: u64 },
    Calls { calls: Vec<ActiveCall> },
    Session { session: Session },
    User { user: UserInfo },
    Users { users: Vec<UserInfo> },
    Departments { departments: Vec<Department> },
    Department { department: Department },
    Categories { categories: Vec<Category> },
    Calendar { days: Vec<CalendarDay> },
    Ticket { ticket: Box<Ticket> },
    Tickets { page: TicketPage },
    TicketNos { nos: Vec<TicketNo> },
    Attachment { attachment: AttachmentInfo },
    AttachmentData { attachment: AttachmentInfo, data_base64: String },
    TicketCalls { calls: Vec<CallSummary> },
    CallRecording { call: i64, wav_base64: String },
    Article { article: Article },
    ArticleHits { hits: Vec<ArticleHit> },
    Suggestions { articles: Vec<ArticleHit>, answers: Vec<EarlierAnswer> },
    CallerProfile { profile: CallerProfile },
    EnterpriseProfile { profile: EnterpriseProfile },
    Flows { flows: Vec<FlowInfo> },
    Flow { name: String, version: i64, yaml: String },
    FlowSaved { flow: FlowInfo },
    Surveys { surveys: Vec<Survey> },
    Survey { survey: Survey },
    SurveyResults { results: SurveyResults },
    CallbackRequests { requests: Vec<CallbackRequest> },
    Reminders { reminders: Vec<Reminder> },
    SeatBoard { board: SeatBoard },
    SavedFilters { filters: Vec<SavedFilter> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub enum Event {
    TicketChanged { no: TicketNo, state: TicketState, action: String, actor: String },
    /// A reminder (催办) came due; sent to the user who set it and to the handlers of the
    /// ticket's departments. `id` is the one `DismissReminder` takes.
    ReminderDue {
        no: TicketNo,
        note: String,
        at: NaiveDateTime,
        #[serde(default)]
        id: i64,
    },
    TicketOverdue { no: TicketNo, due_date: NaiveDate },
    /// A call rings for this user: answer with `Request::AnswerCall`.
    CallOffered {
        call: u64,
        caller: String,
        callee: String,
        trunk: String,
        /// The call record's id: give it as a ticket's `call_id` to link the ticket to this
        /// call (its recording, and the caller's rating after `TransferToFlow`).
        #[serde(default)]
        record: Option<i64>,
    },
    /// The far end of a call this desk placed is ringing.
    CallRinging { call: u64 },
    /// A third party joined (or left) this desk's call.
    ConferenceChanged { call: u64, joined: bool },
    /// This agent's ACD state changed: `state` is `logged_out`, `ready`, `reserved` (ringing),
    /// `on_call`, `wrap_up` or `not_ready` (with `reason`: `break`, `meeting`, `training`,
    /// `meal`, `other`, `missed_offers`). In `wrap_up`, `wrap_up_secs` is how long it lasts
    /// before the ACD makes the agent ready again (the desktop counts it down).
    AgentStateChanged {
        state: String,
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wrap_up_secs: Option<u32>,
    },
    /// Supervisors (subscribed): the seat board changed; sent at most once a second.
    SeatBoardChanged { board: SeatBoard },
    /// Callers waiting in one of my queues (ACD-5 call-waiting indication).
    QueueWaiting { queue: String, waiting: u32, longest_wait_secs: Option<u32> },
    /// The call is connected; audio frames for it flow both ways.
    CallConnected { call: u64 },
    /// The call was put on hold (`held`) or taken back.
    CallHeld { call: u64, held: bool },
    /// The agent's audio towards the caller was muted (`muted`) or unmuted.
    CallMuted { call: u64, muted: bool },
    /// The call is over; `cause` is a CDR end-cause code (`caller_hangup`, `switch_hangup`,
    /// `cancelled`, `no_answer`, `forced_hangup`, …), `transferred`, `not_answered` (an offer
    /// withdrawn) or `taken_over` (a supervisor took the call over).
    CallEnded { call: u64, cause: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub expires_at: NaiveDateTime,
    pub user: UserInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: i64,
    pub username: Username,
    pub display_name: String,
    pub role: Role,
    pub agent_no: Option<AgentNo>,
    pub department_id: Option<i64>,
    pub active: bool,
    pub locked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password: String,
    pub agent_no: Option<String>,
    pub department_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// Statutory holiday (放假).
    Holiday,
    /// Make-up working day on a weekend (调休上班).
    Workday,
}

impl DayKind {
    /// Spelling used by the store and the calendar file format.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Workday => "workday",
        }
    }

    /// Whether a date of this kind is worked.
    pub fn is_working(self) -> bool {
        self == DayKind::Workday
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarDay {
    pub date: NaiveDate,
    pub kind: DayKind,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerInfo {
    pub name: Option<String>,
    pub phone: Option<PhoneNumber>,
    pub enterprise: Option<String>,
    pub address: Option<String>,
    /// Resident ID number; masked for department handlers.
    pub id_number: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectInfo {
    pub name: String,
    pub credit_code: Option<CreditCode>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewTicket {
    pub kind: TicketKind,
    pub channel: Channel,
    pub caller: CallerInfo,
    pub subject: Option<SubjectInfo>,
    pub category_code: Option<String>,
    pub summary: String,
    pub content: String,
    pub anonymous: bool,
    pub confidential: bool,
    pub consent_to_contact: bool,
    /// The call this ticket was taken on, if any.
    pub call_id: Option<String>,
}

impl NewTicket {
    /// A minimal phone ticket; fill the rest with struct update syntax.
    pub fn phone(kind: TicketKind, phone: Option<PhoneNumber>, summary: &str, content: &str) -> Self {
        NewTicket {
            kind,
            channel: Channel::Phone,
            caller: CallerInfo { phone, ..CallerInfo::default() },
            subject: None,
            category_code: None,
            summary: summary.to_owned(),
            content: content.to_owned(),
            anonymous: false,
            confidential: false,
            consent_to_contact: true,
            call_id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitPart {
    pub kind: TicketKind,
    pub summary: String,
    pub content: String,
}

/// What a user does to a ticket. Which state and role allow which action is decided in switchd.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum TicketAction {
    Accept { note: String },
    Reject { reason: RejectReason, note: String },
    Dispatch { lead_department: i64, assisting_departments: Vec<i64>, note: String },
    Acknowledge,
    StartHandling,
    Reply { text: String },
    Return { reason: String },
    RequestExtension { working_days: u32, reason: String },
    DecideExtension { approve: bool, note: String },
    Callback { satisfaction: Satisfaction, note: String },
    Close { note: String },
    Reopen { reason: String },
    AnswerDirectly { answer: String, cited_articles: Vec<i64>, cited_tickets: Vec<TicketNo> },
    DeferAnswer { contact_note: String },
    WaitForCaller { note: String },
    ResumeFromCaller,
    Supervise { note: String },
    Instruct { note: String },
    Comment { text: String },
    MergeInto { target: TicketNo },
}

impl TicketAction {
    /// Stable name of the action, as stored in the ticket's history.
    pub fn code(&self) -> &'static str {
        match self {
            TicketAction::Accept { .. } => "accept",
            TicketAction::Reject { .. } => "reject",
            TicketAction::Dispatch { .. } => "dispatch",
            TicketAction::Acknowledge => "acknowledge",
            TicketAction::StartHandling => "start_handling",
            TicketAction::Reply { .. } => "reply",
            TicketAction::Return { .. } => "return",
            TicketAction::RequestExtension { .. } => "request_extension",
            TicketAction::DecideExtension { .. } => "decide_extension",
            TicketAction::Callback { .. } => "callback",
            TicketAction::Close { .. } => "close",
            TicketAction::Reopen { .. } => "reopen",
            TicketAction::AnswerDirectly { .. } => "answer_directly",
            TicketAction::DeferAnswer { .. } => "defer_answer",
            TicketAction::WaitForCaller { .. } => "wait_for_caller",
            TicketAction::ResumeFromCaller => "resume_from_caller",
            TicketAction::Supervise { .. } => "supervise",
            TicketAction::Instruct { .. } => "instruct",
            TicketAction::Comment { .. } => "comment",
            TicketAction::MergeInto { .. } => "merge_into",
        }
    }
}

/// Which deadline a ticket's `due_date` belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineStage {
    /// Decide on acceptance (complaints) or verify (reports).
    Acceptance,
    /// The department handles and replies.
    Handling,
    /// The hotline calls the caller back.
    Callback,
    /// A deferred consultation answer.
    LaterReply,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub no: TicketNo,
    /// Given to the caller for status queries; hidden from department handlers.
    pub verification_code: Option<String>,
    pub kind: TicketKind,
    pub channel: Channel,
    pub state: TicketState,
    /// For department handlers `phone` is withheld, `id_number` masked, and for confidential
    /// tickets name, address and e-mail are withheld too.
    pub caller: CallerInfo,
    /// The caller's number as this user may see it (138****1234 for department handlers).
    pub caller_phone_display: Option<String>,
    pub subject: Option<SubjectInfo>,
    pub category_code: Option<String>,
    pub summary: String,
    pub content: String,
    pub anonymous: bool,
    pub confidential: bool,
    pub consent_to_contact: bool,
    pub created_at: NaiveDateTime,
    pub created_by: String,
    pub lead_department: Option<i64>,
    pub assisting_departments: Vec<i64>,
    pub stage: Option<DeadlineStage>,
    pub due_date: Option<NaiveDate>,
    /// Set when the deadline was counted past the last year with calendar data.
    pub deadline_warning: Option<String>,
    pub overdue: bool,
    /// Working days until the deadline as of the day it was read (0: due today; negative:
    /// working days past it); `None` without a running deadline (none set, paused, finished).
    #[serde(default)]
    pub working_days_left: Option<i32>,
    /// Waiting for the caller: the deadline is paused since this date.
    pub paused_since: Option<NaiveDate>,
    pub supervised: bool,
    pub extension_requested: Option<u32>,
    pub extended_days: u32,
    pub reply: Option<String>,
    pub answer: Option<String>,
    pub satisfaction: Option<Satisfaction>,
    pub reject_reason: Option<RejectReason>,
    pub reopen_count: u32,
    pub merged_into: Option<TicketNo>,
    pub links: Vec<TicketLink>,
    /// Knowledge-base articles the answer cites.
    pub cited_articles: Vec<i64>,
    pub attachments: Vec<AttachmentInfo>,
    pub call_ids: Vec<String>,
    pub history: Vec<HistoryEntry>,
}

impl Ticket {
    /// A just-registered ticket made from an intake: nothing decided, no deadline, no history.
    pub fn from_intake(new: NewTicket, no: TicketNo, created_at: NaiveDateTime, created_by: &str) -> Ticket {
        Ticket {
            no,
            verification_code: None,
            kind: new.kind,
            channel: new.channel,
            state: TicketState::Registered,
            caller_phone_display: new.caller.phone.as_ref().map(ToString::to_string),
            caller: new.caller,
            subject: new.subject,
            category_code: new.category_code.filter(|c| !c.is_empty()),
            summary: new.summary.trim().to_owned(),
            content: new.content,
            anonymous: new.anonymous,
            confidential: new.confidential,
            consent_to_contact: new.consent_to_contact,
            created_at,
            created_by: created_by.to_owned(),
            lead_department: None,
            assisting_departments: Vec::new(),
            stage: None,
            due_date: None,
            deadline_warning: None,
            overdue: false,
            paused_since: None,
            supervised: false,
            extension_requested: None,
            extended_days: 0,
            working_days_left: None,
            reply: None,
            answer: None,
            satisfaction: None,
            reject_reason: None,
            reopen_count: 0,
            merged_into: None,
            links: Vec::new(),
            cited_articles: Vec::new(),
            attachments: Vec::new(),
            call_ids: new.call_id.into_iter().collect(),
            history: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLink {
    pub no: TicketNo,
    /// `split_from`, `split_into`, `merged_from`, `merged_into`, `cites`.
    pub relation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    pub id: i64,
    pub name: String,
    pub mime: String,
    pub size: u64,
    pub sha256: String,
}

/// One append-only entry of a ticket's history (and the audit trail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub from_state: Option<TicketState>,
    pub to_state: TicketState,
    pub note: String,
}

/// The ticket list's filters. Saved filters keep it as JSON in switchd's store, and older
/// desktops send it without the newer fields: every field added must be `#[serde(default)]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketQuery {
    pub kinds: Vec<TicketKind>,
    pub states: Vec<TicketState>,
    pub channel: Option<Channel>,
    /// Matches the category and everything below it.
    pub category_code: Option<String>,
    pub department_id: Option<i64>,
    pub created_from: Option<NaiveDate>,
    pub created_to: Option<NaiveDate>,
    pub overdue_only: bool,
    pub supervised_only: bool,
    pub caller_phone: Option<PhoneNumber>,
    /// Chinese full text over summary, content, caller and subject.
    pub text: Option<String>,
    /// Open tickets with a reminder (催办) whose time has come.
    #[serde(default)]
    pub reminder_due_only: bool,
    /// 0-based. Absent (a saved filter) means the first page.
    #[serde(default)]
    pub page: u32,
    /// 1..=200; 0 means 50.
    pub page_size: u32,
}

/// A user's named set of ticket-list filters (常用筛选).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFilter {
    pub name: String,
    /// The filters; `page` is always 0.
    pub query: TicketQuery,
    pub saved_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSummary {
    pub no: TicketNo,
    pub kind: TicketKind,
    pub channel: Channel,
    pub state: TicketState,
    pub summary: String,
    pub caller_phone: Option<String>,
    pub lead_department: Option<i64>,
    pub created_at: NaiveDateTime,
    pub due_date: Option<NaiveDate>,
    pub overdue: bool,
    pub supervised: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketPage {
    pub items: Vec<TicketSummary>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArticleInput {
    /// None creates a new article.
    pub id: Option<i64>,
    pub kind: ArticleKind,
    pub title: String,
    pub body: String,
    pub published: bool,
    /// Offered in the IVR's consultation menu.
    pub for_ivr: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Article {
    pub id: i64,
    pub kind: ArticleKind,
    pub title: String,
    pub body: String,
    pub published: bool,
    pub for_ivr: bool,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleHit {
    pub id: i64,
    pub kind: ArticleKind,
    pub title: String,
    pub snippet: String,
    pub published: bool,
    /// Higher is better.
    pub score: f64,
}

/// An earlier answered consultation offered as a reference answer (TKT-3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierAnswer {
    pub no: TicketNo,
    pub summary: String,
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallerProfile {
    pub phone: PhoneNumber,
    pub name: Option<String>,
    pub first_seen: Option<NaiveDateTime>,
    pub last_seen: Option<NaiveDateTime>,
    pub ticket_count: u64,
    pub complaint_count: u64,
    /// Contacted the hotline more than once within 30 days.
    pub repeat_caller: bool,
    /// Two or more complaints or reports.
    pub repeat_complainant: bool,
    pub vip: bool,
    pub blocked: bool,
    /// Newest first, across all channels.
    pub history: Vec<TicketSummary>,
    /// The latest calls with this number, newest first (hotline staff only; handlers get none).
    #[serde(default)]
    pub calls: Vec<CallSummary>,
}

/// An earlier call with a caller, as the screen pop lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSummary {
    /// The call record (CDR) id.
    pub id: i64,
    pub offered_at: chrono::DateTime<chrono::Utc>,
    /// They called the hotline (`true`) or the hotline called them.
    pub inbound: bool,
    pub answered: bool,
    /// Talk time of an answered call that ended.
    pub talk_secs: Option<u32>,
    /// The CDR end cause code (`caller_hangup`, `no_answer`, …).
    pub cause: Option<String>,
    /// Length of the call's recording once finished, in whole seconds.
    #[serde(default)]
    pub recording_secs: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnterpriseProfile {
    pub credit_code: CreditCode,
    pub name: Option<String>,
    pub address: Option<String>,
    /// Tickets in which the enterprise is the party complained about or reported.
    pub complaints_against: u64,
    pub history: Vec<TicketSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_names_match_the_wire_tags() {
        let reqs = [
            Request::Login { username: "a".into(), password: "b".into() },
            Request::WhoAmI,
            Request::DueTickets { within_working_days: 1 },
            Request::SetCallerFlags { phone: PhoneNumber::parse("123").expect("phone"), vip: false, blocked: false },
        ];
        for r in reqs {
            let v = serde_json::to_value(&r).expect("json");
            assert_eq!(v["op"], r.op());
        }
    }

    #[test]
    fn a_query_from_an_older_desktop_or_a_saved_filter_still_parses() {
        let older = r#"{"kinds":[],"states":["dispatched"],"channel":null,"category_code":"04","department_id":null,"created_from":null,"created_to":null,"overdue_only":false,"supervised_only":false,"caller_phone":null,"text":null,"page":1,"page_size":50}"#;
        let q: TicketQuery = serde_json::from_str(older).expect("an older desktop's query");
        assert!(!q.reminder_due_only && q.page == 1 && q.category_code.as_deref() == Some("04"));
        let saved = older.replace(r#""page":1,"#, "");
        assert_eq!(serde_json::from_str::<TicketQuery>(&saved).expect("without its page").page, 0);
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        // Deterministic pseudo-random byte strings and truncations of a valid message.
        let valid = serde_json::to_vec(&ClientMsg::Request { id: 7, body: Box::new(Request::WhoAmI) }).expect("json");
        let mut x: u64 = 0x9E3779B97F4A7C15;
        for len in 0..valid.len() {
            let _ = serde_json::from_slice::<ClientMsg>(&valid[..len]);
        }
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..(x % 64) as usize)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = serde_json::from_slice::<ClientMsg>(&bytes);
        }
        assert!(serde_json::from_slice::<ClientMsg>(b"{\"t\":\"request\",\"id\":1,\"body\":{\"op\":\"nope\"}}").is_err());
    }
}

/// How a survey question is answered on the keypad (IVR-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyScale {
    /// 1 (worst) to 5 (best).
    OneToFive,
    /// 1 yes, 2 no.
    YesNo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyQuestion {
    pub text: String,
    pub scale: SurveyScale,
}

/// A keypad opinion survey (民意调查). At most one is active: the IVR's survey node asks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Survey {
    /// None creates a new survey.
    pub id: Option<i64>,
    pub title: String,
    pub active: bool,
    pub questions: Vec<SurveyQuestion>,
}

/// A survey's answers counted: `counts[q][k]` is how many callers keyed `k + 1` for question `q`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyResults {
    pub survey: Survey,
    /// Calls that answered at least one question.
    pub respondents: u64,
    pub counts: Vec<Vec<u64>>,
}

/// A saved IVR flow version, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowInfo {
    pub name: String,
    pub version: i64,
    pub description: String,
    pub saved_at: NaiveDateTime,
    pub saved_by: String,
}

/// A caller to call back (IVR-9 after-hours callers; fax-back and e-mail-back requests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRequest {
    pub id: i64,
    pub at: NaiveDateTime,
    pub phone: String,
    /// `after_hours`, `fax`, `email`, or what the flow said.
    pub reason: String,
    /// For fax-back: the fax number; for e-mail-back: the caller's known address, if any.
    pub address: Option<String>,
    /// The article asked for.
    pub article_id: Option<i64>,
    pub done: bool,
    /// What came of calling back, as the agent noted it when finishing.
    #[serde(default)]
    pub outcome: Option<String>,
}

/// A reminder (催办) on a ticket, as a due list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    pub id: i64,
    pub no: TicketNo,
    /// When it is due, Beijing time like the tickets' times.
    pub at: NaiveDateTime,
    pub note: String,
    pub created_by: String,
    /// It has come due (and `Event::ReminderDue` was sent).
    pub fired: bool,
}

/// The seat board (SUP-1): who is serving, idle, not ready or logged out, and the queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatBoard {
    pub serving: u32,
    pub idle: u32,
    pub not_ready: u32,
    pub logged_out: u32,
    pub agents: Vec<SeatAgent>,
    pub queues: Vec<SeatQueue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatAgent {
    pub user_id: i64,
    /// As in `Event::AgentStateChanged`.
    pub state: String,
    pub reason: Option<String>,
    pub in_state_secs: u32,
    pub caller: Option<String>,
    pub queue: Option<String>,
    pub missed_offers: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatQueue {
    pub queue: String,
    /// Live callers waiting (being offered included).
    pub waiting: u32,
    /// Callbacks keeping their place.
    pub callbacks: u32,
    pub longest_wait_secs: Option<u32>,
    pub ready_agents: u32,
    pub logged_in_agents: u32,
    /// Today: calls answered, abandoned, and answered within the queue's threshold as a share
    /// of answered plus abandoned after it (GB/T 33358), in percent; `None` before the first.
    pub answered_today: u32,
    pub abandoned_today: u32,
    pub service_level_pct: Option<u32>,
    /// Today's average speed of answer.
    pub asa_secs: Option<u32>,
}
