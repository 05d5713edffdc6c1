//! The ACD's one owner as a task (DESIGN.md decision 4): it holds the sans-IO [`Acd`], feeds it
//! desk commands and call events through an [`AcdHandle`], fires its deadlines, and carries its
//! outputs out — offers go to the waiting call's task, state changes and queue figures to the
//! desks. No other task touches agent or queue state.

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use chrono::NaiveDateTime;

use super::{Acd, AcdConfig, AcdError, AgentId, AgentState, CallRef, Cause, Command, ConfigError, Output, OverflowRule, OverflowTarget, QueueConfig, QueueEvent, QueueEventKind, QueueId, Snapshot, Strategy};
use crate::engine::callback::{CallbackJob, CallbackReport};
use crate::engine::desk_leg::DeskOut;
use crate::store::{AgentStateRow, QueueEventRow, Store};

/// The `[acd]` section of the config: the queues. Every agent who logs in to the ACD joins
/// every queue, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcdSettings {
    /// What the caller hears when an agent answers (自动报工号); `{agent_no}` is the agent's
    /// number, spoken digit by digit. Empty: no announcement.
    pub announcement: String,
    /// A waiting caller is told their place in line this often (and first after five seconds
    /// of waiting); 0 turns it off.
    pub position_every_secs: u32,
    /// Recording policy (REC-1): when not empty, only these agents' (usernames) queue calls
    /// are recorded; queues opt out with `record = false`. `[telephony] record_calls = false`
    /// turns all call recording off.
    pub record_agents: Vec<String>,
    pub queues: Vec<QueueSettings>,
}

/// One queue (`[[acd.queues]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    pub name: String,
    /// `longest_idle`, `round_robin`, `ring_all`, `fewest_calls` or `least_talk_time`.
    pub strategy: String,
    /// How long an offer rings at a desk before it goes to the next agent.
    pub offer_secs: u32,
    /// After-call work before the agent is ready again (话后处理).
    pub wrap_up_secs: u32,
    /// Missed offers in a row before the agent is set not ready (未接自动置忙).
    pub max_missed_offers: u32,
    /// Answered within this many seconds counts toward the service level.
    pub service_level_secs: u32,
    /// How long switchd tries to reach a caller who asked to be called back (回呼).
    pub callback_secs: u32,
    /// Open hours on the calendar's working days (`["08:30-12:00", "13:30-17:30"]`); empty:
    /// always open.
    pub hours: Vec<String>,
    /// Where callers go while the queue is closed: `mailbox`, `callback` or `queue:NAME` (the
    /// night bell: a queue its duty agents serve); empty: the flow's `on_fail`.
    pub when_closed: String,
    /// Overflow by waiting time, in increasing `after_secs`.
    pub overflow: Vec<OverflowSettings>,
    /// The usernames of the agents who serve this queue; empty: every agent.
    pub agents: Vec<String>,
    /// What waiting callers hear: a WAV under the data directory's `prompts/` (8 kHz mono);
    /// empty: the flow's hold prompt, or ringback.
    pub music_on_hold: String,
    /// Record the calls agents answer from this queue (REC-1).
    pub record: bool,
}

/// One overflow rule (`[[acd.queues.overflow]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverflowSettings {
    /// After this long waiting in the queue…
    pub after_secs: u32,
    /// …the caller goes to `mailbox` (leaves a message that becomes a ticket), `callback` (is
    /// called back keeping their place) or `queue:NAME`.
    pub to: String,
}

impl Default for AcdSettings {
    fn default() -> Self {
        Self { announcement: "工号{agent_no}，为您服务。".into(), position_every_secs: 30, record_agents: Vec::new(), queues: vec![QueueSettings::default()] }
    }
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            name: "hotline".into(),
            strategy: "longest_idle".into(),
            offer_secs: 20,
            wrap_up_secs: 10,
            max_missed_offers: 3,
            service_level_secs: 15,
            callback_secs: 45,
            hours: Vec::new(),
            when_closed: String::new(),
            overflow: Vec::new(),
            agents: Vec::new(),
            music_on_hold: String::new(),
            record: true,
        }
    }
}

/// Why the `[acd]` section was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("未知的排队策略 {0} / unknown strategy {0} (longest_idle, round_robin, ring_all, fewest_calls, least_talk_time)")]
    Strategy(String),
    #[error("队列 {queue} 的目标 {target} 无效，应为 mailbox、callback 或 queue:名称 / queue {queue}: bad target {target} (mailbox, callback or queue:NAME)")]
    Target { queue: String, target: String },
    #[error("队列 {queue} 的服务时间 {hours} 无效，应为 08:30-17:30 / queue {queue}: bad hours {hours}")]
    Hours { queue: String, hours: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl AcdSettings {
    /// The core's configuration.
    pub fn to_config(&self) -> Result<AcdConfig, SettingsError> {
        let queues = self.queues.iter().map(QueueSettings::to_config).collect::<Result<_, _>>()?;
        let config = AcdConfig { queues };
        config.validate()?;
        Ok(config)
    }
}

impl QueueSettings {
    fn to_config(&self) -> Result<QueueConfig, SettingsError> {
        let strategy = match self.strategy.as_str() {
            "longest_idle" => Strategy::LongestIdle,
            "round_robin" => Strategy::RoundRobin,
            "ring_all" => Strategy::RingAll,
            "fewest_calls" => Strategy::FewestCalls,
            "least_talk_time" => Strategy::LeastTalkTime,
            other => return Err(SettingsError::Strategy(other.into())),
        };
        let mut q = QueueConfig::new(self.name.clone(), strategy);
        q.offer_timeout_secs = self.offer_secs;
        q.wrap_up_secs = self.wrap_up_secs;
        q.max_missed_offers = self.max_missed_offers;
        q.service_level_secs = self.service_level_secs;
        q.callback_timeout_secs = self.callback_secs;
        if let Some(bad) = self.hours.iter().find(|h| crate::calendar::parse_hours(h).is_none()) {
            return Err(SettingsError::Hours { queue: self.name.clone(), hours: bad.clone() });
        }
        q.when_closed = match self.when_closed.trim() {
            "" => None,
            target => Some(self.target(target)?),
        };
        q.overflow = self.overflow.iter().map(|r| Ok(OverflowRule { after_secs: r.after_secs, target: self.target(&r.to)? })).collect::<Result<_, SettingsError>>()?;
        Ok(q)
    }

    fn target(&self, text: &str) -> Result<OverflowTarget, SettingsError> {
        match text.trim() {
            "mailbox" => Ok(OverflowTarget::Mailbox("mailbox".into())),
            "callback" => Ok(OverflowTarget::Callback),
            other => match other.strip_prefix("queue:") {
                Some(name) if !name.trim().is_empty() => Ok(OverflowTarget::Queue(QueueId::new(name.trim()))),
                _ => Err(SettingsError::Target { queue: self.name.clone(), target: text.into() }),
            },
        }
    }

    /// What the engine side needs of this queue beyond the core's configuration.
    fn rules(&self) -> QueueRules {
        QueueRules { agents: self.agents.clone(), hours: self.hours.clone(), music_on_hold: self.music_on_hold.clone(), record: self.record }
    }
}

/// A queue's settings the ACD core does not use: who serves it, when it is open, what
/// waiting callers hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRules {
    pub agents: Vec<String>,
    pub hours: Vec<String>,
    pub music_on_hold: String,
    pub record: bool,
}

/// What the ACD tells a waiting call's task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueSignal {
    /// Ring these agents' desks until `until` (several for ring-all: the first answer wins).
    Offer { agents: Vec<i64>, until: Instant },
    /// The offer is withdrawn from these agents (timed out, the agent left, answered by
    /// another).
    Cancel { agents: Vec<i64> },
    /// An overflow rule (or the queue being closed) sends the call on: to another queue (it
    /// waits on, its signals keep coming here), the mailbox (it leaves the ACD), or a callback
    /// (confirm the number with the caller, then [`Command::RequestCallback`]).
    Overflow(OverflowTarget),
}

/// Carries a callback out (the engine's [`callback::spawn`]); set once telephony runs.
pub type Dialer = std::sync::Arc<dyn Fn(CallbackJob) + Send + Sync>;

enum Msg {
    Command { command: Command, reply: Option<oneshot::Sender<Result<(), AcdError>>> },
    Enter {
        call: CallRef,
        record: Option<i64>,
        queue: QueueId,
        caller: String,
        open: bool,
        priority: i32,
        signals: mpsc::UnboundedSender<QueueSignal>,
        /// A caller an agent handed on, with the agent to offer it to first.
        transfer: Option<Option<AgentId>>,
        reply: oneshot::Sender<Result<(), AcdError>>,
    },
    Snapshot { reply: oneshot::Sender<Snapshot> },
    SetDialer(Dialer),
    Position { call: CallRef, reply: oneshot::Sender<Option<(usize, std::time::Duration)>> },
}

/// The way to the ACD task. Cheap to clone.
#[derive(Clone)]
pub struct AcdHandle {
    tx: mpsc::UnboundedSender<Msg>,
    queues: std::sync::Arc<Vec<(QueueId, QueueRules)>>,
    record_agents: std::sync::Arc<Vec<String>>,
}

/// Feeds the ACD what the engine reports about desks outside its routing (desk-to-desk
/// calls, consultations, take-overs): the agents in them are kept on call, and a queue call
/// handed to another desk follows it. Runs until the engine's event stream closes.
pub async fn follow_engine(acd: AcdHandle, mut events: tokio::sync::broadcast::Receiver<crate::engine::EngineEvent>) {
    use crate::engine::EngineEvent;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let command = match events.recv().await {
            Ok(EngineEvent::DeskBusy { user_id, call }) => Command::InternalCall { agent: AgentId(user_id), call: CallRef(call) },
            Ok(EngineEvent::DeskFree { user_id, call }) => Command::InternalCallEnded { agent: AgentId(user_id), call: CallRef(call) },
            Ok(EngineEvent::DeskHandedOver { call, to }) => Command::HandOver { call: CallRef(call), to: AgentId(to) },
            Ok(_) => continue,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "ACD: engine events missed");
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        acd.tell(command);
    }
}

impl AcdHandle {
    /// Runs `command` and says whether the ACD took it.
    pub async fn command(&self, command: Command) -> Result<(), AcdError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Command { command, reply: Some(reply) }).map_err(|_| AcdError::Stopped)?;
        rx.await.map_err(|_| AcdError::Stopped)?
    }

    /// Runs `command`; a refusal is only logged (for reports whose offer may be gone already).
    pub fn tell(&self, command: Command) {
        let _ = self.tx.send(Msg::Command { command, reply: None });
    }

    /// Puts `call` (with call record `record`) in `queue`, `open` or closed by its hours, ahead
    /// of callers with a lower `priority` (VIP and repeat callers); its offers come on the
    /// returned channel.
    pub async fn enter(&self, call: CallRef, record: Option<i64>, queue: QueueId, caller: String, open: bool, priority: i32) -> Result<mpsc::UnboundedReceiver<QueueSignal>, AcdError> {
        self.enter_with(call, record, queue, caller, open, priority, None).await
    }

    /// Puts `call`, which an agent handed on (its [`Command::CallEnded`] told first), into
    /// `queue` with `priority`, offered to `agent` first when named ([`Command::Transfer`]).
    pub async fn enter_transferred(
        &self,
        call: CallRef,
        record: Option<i64>,
        queue: QueueId,
        caller: String,
        priority: i32,
        agent: Option<AgentId>,
    ) -> Result<mpsc::UnboundedReceiver<QueueSignal>, AcdError> {
        self.enter_with(call, record, queue, caller, true, priority, Some(agent)).await
    }

    async fn enter_with(
        &self,
        call: CallRef,
        record: Option<i64>,
        queue: QueueId,
        caller: String,
        open: bool,
        priority: i32,
        transfer: Option<Option<AgentId>>,
    ) -> Result<mpsc::UnboundedReceiver<QueueSignal>, AcdError> {
        let (signals, rx) = mpsc::unbounded_channel();
        let (reply, done) = oneshot::channel();
        self.tx.send(Msg::Enter { call, record, queue, caller, open, priority, signals, transfer, reply }).map_err(|_| AcdError::Stopped)?;
        done.await.map_err(|_| AcdError::Stopped)??;
        Ok(rx)
    }

    /// The state of agent `user` now, if it ever logged in to the queues.
    pub async fn agent_state(&self, user: i64) -> Option<AgentState> {
        let snapshot = self.snapshot().await?;
        snapshot.agents.into_iter().find(|a| a.agent.0 == user).map(|a| a.state)
    }

    /// The seat board now (SUP-1).
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Snapshot { reply }).ok()?;
        rx.await.ok()
    }

    /// `call`'s place in its queue (1 = next) and its estimated wait, while it waits.
    pub async fn position(&self, call: CallRef) -> Option<(usize, std::time::Duration)> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Position { call, reply }).ok()?;
        rx.await.ok().flatten()
    }

    /// From now on callbacks are dialled by `dialer`; until then they are given back.
    pub fn set_dialer(&self, dialer: Dialer) {
        let _ = self.tx.send(Msg::SetDialer(dialer));
    }

    /// The configured queues in order, with who serves them and when.
    pub fn queues(&self) -> &[(QueueId, QueueRules)] {
        &self.queues
    }

    /// Whether a call answered from queue `name` by `agent` (username) is recorded (REC-1).
    pub fn records(&self, name: &str, agent: &str) -> bool {
        let queue = self.rules(name).is_none_or(|r| r.record);
        queue && (self.record_agents.is_empty() || self.record_agents.iter().any(|a| a == agent))
    }

    /// Queue `name`'s rules, if it exists.
    pub fn rules(&self, name: &str) -> Option<&QueueRules> {
        self.queues.iter().find(|(q, _)| q.as_str() == name).map(|(_, r)| r)
    }
}

/// Starts the ACD task; state changes and queue events are written to `store` (in order, by a
/// recorder task of their own, so a slow disk never delays routing).
pub fn spawn(settings: &AcdSettings, desk_out: mpsc::UnboundedSender<DeskOut>, store: Store, utc_offset_hours: i32) -> Result<AcdHandle, SettingsError> {
    let queues = settings.queues.iter().map(|q| (QueueId::new(q.name.clone()), q.rules())).collect();
    let acd = Acd::new(settings.to_config()?)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (records, pending) = mpsc::unbounded_channel();
    tokio::spawn(record(store, pending));
    let me = tx.downgrade();
    let owner = Owner {
        acd,
        desk_out,
        calls: HashMap::new(),
        call_records: HashMap::new(),
        records,
        utc_offset_hours,
        board_changed: false,
        pending_status: Default::default(),
        dialer: None,
        callbacks: HashMap::new(),
        me,
    };
    tokio::spawn(owner.run(rx));
    Ok(AcdHandle { tx, queues: std::sync::Arc::new(queues), record_agents: std::sync::Arc::new(settings.record_agents.clone()) })
}

/// What the ACD keeps in the store.
enum Record {
    State(AgentStateRow),
    Event(QueueEventRow),
}

async fn record(store: Store, mut pending: mpsc::UnboundedReceiver<Record>) {
    while let Some(r) = pending.recv().await {
        let result = match r {
            Record::State(row) => store.write(move |db| db.insert_agent_state(&row)).await,
            Record::Event(row) => store.write(move |db| db.insert_queue_event(&row)).await,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "ACD: cannot store a record");
        }
    }
}

struct Owner {
    acd: Acd,
    desk_out: mpsc::UnboundedSender<DeskOut>,
    /// The task of every call in a queue.
    calls: HashMap<CallRef, mpsc::UnboundedSender<QueueSignal>>,
    /// Each queued call's record id, for the queue event log (dropped at its last event).
    call_records: HashMap<CallRef, i64>,
    records: mpsc::UnboundedSender<Record>,
    utc_offset_hours: i32,
    /// Something on the seat board changed since supervisors were last sent it.
    board_changed: bool,
    /// The latest waiting figures of each queue not yet pushed to the agents.
    pending_status: std::collections::BTreeMap<QueueId, super::QueueStatus>,
    dialer: Option<Dialer>,
    /// The callbacks being carried out, to withdraw them (dropping the sender cancels).
    callbacks: HashMap<CallRef, oneshot::Sender<()>>,
    /// Our own mailbox, for the reports of callbacks (weak: it must not keep the task alive).
    me: mpsc::WeakUnboundedSender<Msg>,
}

impl Owner {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        // Supervisors get the seat board at most once a second, when it changed (SUP-1).
        // The call-waiting figure goes to the agents at most every 250 ms per queue: each
        // answer and arrival changes it, and pushing every change to every agent cost a
        // thousand desk events per call with 500 agents (acd-bench).
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u32;
        loop {
            let deadline = self.acd.poll_timeout().map(tokio::time::Instant::from_std);
            let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { return };
                    self.handle(msg);
                }
                () = tokio::time::sleep_until(deadline.unwrap_or(far)) => self.acd.handle_timeout(Instant::now()),
                _ = tick.tick() => {
                    self.publish_waiting();
                    ticks = ticks.wrapping_add(1);
                    if ticks % 4 == 0 {
                        self.publish_board();
                    }
                }
            }
            self.drain();
        }
    }

    fn publish_waiting(&mut self) {
        for (queue, status) in std::mem::take(&mut self.pending_status) {
            let longest_wait_secs = status.oldest_since.map(|t| Instant::now().saturating_duration_since(t).as_secs() as u32);
            let event = rexian_shared::Event::QueueWaiting { queue: queue.0, waiting: status.waiting, longest_wait_secs };
            for agent in self.acd.logged_in_agents() {
                self.push(agent, event.clone());
            }
        }
    }

    fn publish_board(&mut self) {
        if std::mem::take(&mut self.board_changed) {
            let board = seat_board(&self.acd.snapshot(Instant::now()));
            let _ = self.desk_out.send(DeskOut::Supervisors { event: rexian_shared::Event::SeatBoardChanged { board } });
        }
    }

    fn handle(&mut self, msg: Msg) {
        let now = Instant::now();
        match msg {
            Msg::Command { command, reply } => {
                if let Command::CallEnded { call } | Command::Abandon { call } = &command {
                    self.calls.remove(call);
                }
                let result = self.acd.handle_command(now, command.clone());
                if let Err(e) = &result {
                    tracing::debug!(?command, error = %e, "ACD refused a command");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            Msg::Enter { call, record, queue, caller, open, priority, signals, transfer, reply } => {
                self.calls.insert(call, signals);
                if let Some(id) = record {
                    self.call_records.insert(call, id);
                }
                let command = match transfer {
                    None => Command::Enter { call, queue, priority, caller, open },
                    Some(agent) => Command::Transfer { call, queue, priority, caller, agent },
                };
                let result = self.acd.handle_command(now, command);
                if result.is_err() {
                    self.calls.remove(&call);
                }
                let _ = reply.send(result);
            }
            Msg::Snapshot { reply } => {
                let _ = reply.send(self.acd.snapshot(now));
            }
            Msg::SetDialer(dialer) => self.dialer = Some(dialer),
            Msg::Position { call, reply } => {
                let _ = reply.send(self.acd.estimated_wait(call));
            }
        }
    }

    /// Carries every output out, in order.
    fn drain(&mut self) {
        while let Some(output) = self.acd.poll_output() {
            self.carry_out(output);
        }
    }

    fn signal(&mut self, call: CallRef, signal: QueueSignal) {
        if let Some(tx) = self.calls.get(&call) {
            if tx.send(signal).is_err() {
                self.calls.remove(&call);
            }
        }
    }

    fn carry_out(&mut self, output: Output) {
        if matches!(output, Output::AgentStateChanged { .. } | Output::QueueStatus(_)) {
            self.board_changed = true;
        }
        match output {
            Output::Offer { call, agent, until, .. } => self.signal(call, QueueSignal::Offer { agents: vec![agent.0], until }),
            Output::OfferRingAll { call, agents, until, .. } => {
                self.signal(call, QueueSignal::Offer { agents: agents.iter().map(|a| a.0).collect(), until });
            }
            Output::DialCallback { call, agent, number, queue, until } => self.dial_callback(call, agent, number, queue, until),
            Output::CancelOffer { call, agents, .. } => {
                self.callbacks.remove(&call);
                self.signal(call, QueueSignal::Cancel { agents: agents.iter().map(|a| a.0).collect() });
            }
            Output::Overflow { call, to, .. } => {
                tracing::info!(?call, ?to, "ACD: overflow");
                let moved = matches!(to, OverflowTarget::Queue(_));
                self.signal(call, QueueSignal::Overflow(to));
                if !moved {
                    self.calls.remove(&call);
                }
            }
            Output::AgentStateChanged { agent, from, to, cause, at } => {
                tracing::info!(agent = agent.0, from = from.kind().code(), to = to.kind().code(), ?cause, "ACD: agent state");
                self.push(agent, agent_event(&to, at));
                let row = AgentStateRow {
                    user_id: agent.0,
                    at: self.wall(at),
                    from_state: from.kind().code().into(),
                    to_state: to.kind().code().into(),
                    reason: reason_of(&to),
                    cause: cause_code(cause),
                };
                let _ = self.records.send(Record::State(row));
            }
            Output::QueueStatus(status) => {
                self.pending_status.insert(status.queue.clone(), status);
            }
            Output::QueueEvent(event) => {
                tracing::info!(call = event.call.0, queue = %event.queue, kind = ?event.kind, "ACD: queue event");
                let row = self.event_row(&event);
                if matches!(row.kind.as_str(), "abandoned" | "overflowed" | "callback_failed" | "wrap_up") {
                    self.call_records.remove(&event.call);
                }
                if matches!(row.kind.as_str(), "answered" | "callback_failed") {
                    self.callbacks.remove(&event.call);
                }
                let _ = self.records.send(Record::Event(row));
            }
        }
    }

    /// Hands a callback to the engine; its reports come back as the ACD's commands.
    fn dial_callback(&mut self, call: CallRef, agent: AgentId, number: String, queue: QueueId, until: Instant) {
        let (Some(dialer), Some(me)) = (self.dialer.clone(), self.me.upgrade()) else {
            tracing::warn!(?call, "ACD: no telephony to dial a callback; it is given back");
            let _ = self.acd.handle_command(Instant::now(), Command::OfferDeclined { call, agent });
            return;
        };
        tracing::info!(call = call.0, agent = agent.0, number, "ACD: dialling a callback");
        let (reports, mut rx) = mpsc::unbounded_channel();
        let (cancel_tx, cancel) = oneshot::channel();
        self.callbacks.insert(call, cancel_tx);
        let record = self.call_records.get(&call).copied();
        dialer(CallbackJob { agent: agent.0, number, queue: queue.0, until, record, reports, cancel });
        tokio::spawn(async move {
            while let Some(report) = rx.recv().await {
                let command = match report {
                    CallbackReport::Declined => Command::OfferDeclined { call, agent },
                    CallbackReport::Reached => Command::OfferAnswered { call, agent },
                    CallbackReport::NotReached | CallbackReport::Ended => Command::CallEnded { call },
                };
                if me.send(Msg::Command { command, reply: None }).is_err() {
                    return;
                }
            }
        });
    }

    /// Local wall-clock time of `at`.
    fn wall(&self, at: Instant) -> NaiveDateTime {
        let now = chrono::Utc::now().naive_utc() + chrono::Duration::hours(i64::from(self.utc_offset_hours));
        now - chrono::Duration::from_std(Instant::now().saturating_duration_since(at)).unwrap_or_default()
    }

    fn event_row(&self, event: &QueueEvent) -> QueueEventRow {
        let ms = |d: std::time::Duration| Some(d.as_millis() as i64);
        let (kind, agent, wait_ms, detail) = match &event.kind {
            QueueEventKind::Entered { priority, caller, overflowed_in } => {
                ("entered", None, None, format!("priority {priority}, caller {caller}, overflowed in {overflowed_in}"))
            }
            QueueEventKind::Offered { agents } => ("offered", agents.first().map(|a| a.0), None, format!("{} agent(s)", agents.len())),
            QueueEventKind::Missed { agent } => ("missed", Some(agent.0), None, String::new()),
            QueueEventKind::Answered { agent, wait, total_wait, callback } => {
                ("answered", Some(agent.0), ms(*wait), format!("total wait {} ms, callback {callback}", total_wait.as_millis()))
            }
            QueueEventKind::Abandoned { wait, total_wait } => ("abandoned", None, ms(*wait), format!("total wait {} ms", total_wait.as_millis())),
            QueueEventKind::Overflowed { to, wait } => ("overflowed", None, ms(*wait), format!("{to:?}")),
            QueueEventKind::CallbackRequested { number } => ("callback_requested", None, None, number.clone()),
            QueueEventKind::CallbackFailed => ("callback_failed", None, None, String::new()),
            QueueEventKind::Ended { agent, talk } => ("ended", Some(agent.0), ms(*talk), "talk time".into()),
            QueueEventKind::WrapUp { agent, duration } => ("wrap_up", Some(agent.0), ms(*duration), "wrap-up time".into()),
        };
        QueueEventRow {
            at: self.wall(event.at),
            call_id: self.call_records.get(&event.call).copied(),
            queue: event.queue.0.clone(),
            kind: kind.into(),
            agent_id: agent,
            wait_ms,
            detail,
        }
    }

    fn push(&self, agent: AgentId, event: rexian_shared::Event) {
        let _ = self.desk_out.send(DeskOut::Event { user_id: agent.0, event });
    }
}

/// What an agent's desk is told of its state.
fn agent_event(state: &AgentState, now: Instant) -> rexian_shared::Event {
    let wrap_up_secs = match state {
        AgentState::WrapUp { until } => Some(until.saturating_duration_since(now).as_secs_f64().round() as u32),
        _ => None,
    };
    rexian_shared::Event::AgentStateChanged { state: state.kind().code().to_owned(), reason: reason_of(state), wrap_up_secs }
}

fn reason_of(state: &AgentState) -> Option<String> {
    match state {
        AgentState::NotReady { reason } => Some(reason.code().to_owned()),
        _ => None,
    }
}

fn cause_code(cause: Cause) -> String {
    match cause {
        Cause::Agent => "agent".into(),
        Cause::Supervisor { by } => format!("supervisor {}", by.0),
        Cause::Routing => "routing".into(),
        Cause::Engine => "engine".into(),
        Cause::Timeout => "timeout".into(),
        Cause::MissedOffers => "missed_offers".into(),
        Cause::Disconnected => "disconnected".into(),
    }
}

/// The seat board as the desks see it.
pub fn seat_board(s: &Snapshot) -> rexian_shared::SeatBoard {
    use rexian_shared::{SeatAgent, SeatBoard, SeatQueue};
    let agents = s
        .agents
        .iter()
        .map(|a| SeatAgent {
            user_id: a.agent.0,
            state: a.state.kind().code().to_owned(),
            reason: reason_of(&a.state),
            in_state_secs: a.in_state.as_secs() as u32,
            caller: a.caller.clone(),
            queue: a.queue.as_ref().map(|q| q.0.clone()),
            missed_offers: a.missed_offers,
        })
        .collect();
    let queues = s
        .queues
        .iter()
        .map(|q| SeatQueue {
            queue: q.queue.0.clone(),
            waiting: q.waiting,
            callbacks: q.callbacks,
            longest_wait_secs: q.longest_wait.map(|d| d.as_secs() as u32),
            ready_agents: q.ready_agents,
            logged_in_agents: q.logged_in_agents,
            answered_today: q.counters.answered,
            abandoned_today: q.counters.abandoned,
            service_level_pct: q.service_level.map(|sl| (sl * 100.0).round() as u32),
            asa_secs: q.counters.asa().map(|d| d.as_secs() as u32),
        })
        .collect();
    SeatBoard { serving: s.seats.serving, idle: s.seats.idle, not_ready: s.seats.not_ready, logged_out: s.seats.logged_out, agents, queues }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(queue: &str) -> AcdSettings {
        let text = format!("[[queues]]\nname = \"hotline\"\n{queue}\n[[queues]]\nname = \"night\"\nagents = [\"agent2\"]\n");
        toml::from_str(&text).expect("settings parse")
    }

    #[test]
    fn queue_settings_become_overflow_rules_hours_and_night_bell() {
        let s = settings("hours = [\"08:30-17:30\"]\nwhen_closed = \"queue:night\"\n[[queues.overflow]]\nafter_secs = 60\nto = \"callback\"\n[[queues.overflow]]\nafter_secs = 300\nto = \"mailbox\"");
        let config = s.to_config().expect("valid");
        let hotline = &config.queues[0];
        assert_eq!(hotline.when_closed, Some(OverflowTarget::Queue(QueueId::new("night"))));
        assert_eq!(hotline.overflow, [
            OverflowRule { after_secs: 60, target: OverflowTarget::Callback },
            OverflowRule { after_secs: 300, target: OverflowTarget::Mailbox("mailbox".into()) },
        ]);
        assert_eq!(s.queues[1].rules().agents, ["agent2"]);
    }

    #[test]
    fn bad_targets_hours_and_unknown_queues_are_refused_naming_the_queue() {
        for (queue, needle) in [
            ("when_closed = \"voicemail\"", "voicemail"),
            ("hours = [\"17:30-08:30\"]", "17:30-08:30"),
            ("[[queues.overflow]]\nafter_secs = 60\nto = \"queue:nowhere\"", "nowhere"),
            ("[[queues.overflow]]\nafter_secs = 60\nto = \"queue:\"", "queue:"),
        ] {
            let e = settings(queue).to_config().expect_err(queue).to_string();
            assert!(e.contains("hotline") && e.contains(needle), "{queue}: {e}");
        }
    }
}
