//! Drives the [`Interpreter`] on a live call: each [`Command`] becomes engine primitives
//! (play, collect, record, offers to desks, bridging) or case-system work (tickets, status,
//! articles, surveys, the callback list), and its result goes back as an [`Input`]. At the end
//! the call's path through the flows is stored with its call record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::NaiveDateTime;
use rexian_shared::{CallbackRequest, CallerInfo, Channel, NewTicket, PhoneNumber, Role, TicketKind, TicketNo};

use super::interp::{ArticleBrief, Command, Input, Interpreter, QueueOutcome, Say, Start};
use super::records;
use crate::acd::actor::AcdHandle;
use crate::cases::service::{Actor, Cases};
use crate::engine::call::{ringback_tone, Call, CallError, CallInfo, Offer};
use crate::engine::desk_leg::Handover;
use crate::engine::{apps, FlowHook, HotlineHook};
use crate::media::prompt::{tone, PromptError, Prompts};
use crate::store::TrailRow;

/// Whether a desk user is logged in on some desktop now.
pub type Online = Arc<dyn Fn(i64) -> bool + Send + Sync>;

/// What the IVR needs beyond the call.
pub struct Ivr {
    pub cases: Cases,
    pub online: Online,
    pub utc_offset_hours: i32,
    /// The flow hotline calls start in.
    pub entry_flow: String,
    /// Rehearsal: business hours are judged as if every call came at this local time.
    pub simulate_time: Option<NaiveDateTime>,
    /// The ACD, for `queue` nodes naming a queue.
    pub acd: Option<AcdHandle>,
    /// Said to the caller when an ACD agent answers; `{agent_no}` is the agent's number.
    pub announcement: String,
    /// How often a caller waiting in an ACD queue is told their place (zero: never).
    pub position_every: Duration,
}

impl Ivr {
    /// The hook the engine runs for calls to the hotline number.
    pub fn hook(self: Arc<Self>) -> HotlineHook {
        Arc::new(move |call| {
            let ivr = self.clone();
            Box::pin(async move { run(call, ivr).await })
        })
    }

    /// The hook that runs a named flow on a call a desk hands over.
    pub fn flow_hook(self: Arc<Self>) -> FlowHook {
        Arc::new(move |call, flow| {
            let ivr = self.clone();
            Box::pin(async move {
                run_flow(call, &ivr, &flow).await;
            })
        })
    }

    pub(super) fn local_now(&self) -> NaiveDateTime {
        (chrono::Utc::now() + chrono::Duration::hours(i64::from(self.utc_offset_hours))).naive_utc()
    }
}

/// Runs the hotline's entry flow on `call`.
pub async fn run(mut call: Call, ivr: Arc<Ivr>) -> Call {
    let entry = ivr.entry_flow.clone();
    if !run_flow(&mut call, &ivr, &entry).await {
        return apps::hotline_placeholder(call).await;
    }
    call
}

/// Runs flow `name` on `call` until it hangs up or hands the caller on and that ends; false
/// when there is no such flow.
pub async fn run_flow(call: &mut Call, ivr: &Ivr, name: &str) -> bool {
    let flows = match records::load_flows(ivr.cases.store()).await {
        Ok(flows) => flows,
        Err(e) => {
            tracing::error!(error = %e, "IVR: cannot load the flows");
            Default::default()
        }
    };
    let Some(entry) = flows.get(name).cloned() else {
        tracing::error!(flow = name, "IVR: no such flow");
        return false;
    };
    let mut it = Interpreter::new(flows, entry, ivr.cases.calendar());
    let mut recordings = 0;
    match drive(call, ivr, &mut it, &mut recordings).await {
        Ok(()) | Err(CallError::Ended) => {}
        Err(e) => tracing::warn!(leg = %call.info.leg, error = %e, "IVR: the call failed"),
    }
    call.stop_call_recording().await;
    if let Some(cdr) = call.info.cdr {
        let trail = it.trail().iter().map(|v| TrailRow { after_ms: v.after_ms, flow: v.flow.clone(), node: v.node.clone(), note: v.note.clone() });
        if let Err(e) = records::save_trail(ivr.cases.store(), cdr, trail.collect()).await {
            tracing::warn!(leg = %call.info.leg, error = %e, "IVR: cannot store the call's trail");
        }
    }
    true
}

async fn drive(call: &mut Call, ivr: &Ivr, it: &mut Interpreter, recordings: &mut u32) -> Result<(), CallError> {
    call.answer().await?;
    let local_time = ivr.simulate_time.unwrap_or_else(|| ivr.local_now());
    let start = Start { caller: call.info.caller.clone(), hotline: call.info.callee.clone(), local_time };
    it.start(Instant::now(), start);
    while let Some(command) = it.poll_command() {
        tracing::debug!(leg = %call.info.leg, ?command, "IVR");
        if let Some(input) = execute(call, ivr, command, recordings).await? {
            it.handle_input(Instant::now(), input);
        }
    }
    if !it.is_finished() {
        tracing::warn!(leg = %call.info.leg, position = ?it.position(), "IVR: the flow stopped without hanging up");
    }
    Ok(())
}

/// Carries one command out; `Some(input)` for the commands that await one.
async fn execute(call: &mut Call, ivr: &Ivr, command: Command, recordings: &mut u32) -> Result<Option<Input>, CallError> {
    let store = ivr.cases.store();
    let cdr = call.info.cdr;
    let input = match command {
        Command::Play { says, barge_in } => {
            play(call, &says, barge_in).await?;
            Input::Played
        }
        Command::Collect { max, terminator, first, between } => Input::Digits(call.collect(max, terminator, first, between).await?),
        Command::Record { max } => {
            *recordings += 1;
            let path = call.recording_path(&format!("ivr{recordings}"));
            call.play(&tone(1000.0, 400, 8000), false).await?;
            let recorded = call.record(&path, max, "#").await?;
            Input::Recorded { path: recorded.path, seconds: recorded.seconds }
        }
        Command::CreateTicket { kind, recording, callback, reply_wanted } => {
            let (info, data_dir) = (call.info.clone(), call.data_dir().to_owned());
            match create_ticket(&info, &data_dir, ivr, kind, &recording, &callback, reply_wanted).await {
                Ok((no, code)) => Input::TicketCreated { no, code },
                Err(e) => {
                    tracing::error!(leg = %call.info.leg, error = %e, recording, "IVR: cannot register the message as a ticket");
                    Input::Failed
                }
            }
        }
        Command::LookupTicket { number, code } => Input::TicketStatus(ticket_status(ivr, &number, &code, &call.info.caller).await),
        Command::LoadArticles => Input::Articles(articles(ivr).await),
        Command::LoadSurvey => Input::Survey(records::active_survey(store).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "IVR: cannot load the survey");
            None
        })),
        Command::Queue { queue: name, users, all_agents, ring, max_wait, leave_key, callback_key, hold } => {
            let hold = match hold {
                Some(say) => hold_audio(call.prompts(), &say).await,
                None => Vec::new(),
            };
            let outcome = match (name, &ivr.acd) {
                (Some(name), Some(acd)) => {
                    let keys = super::waiting::Keys { leave: leave_key, callback: callback_key };
                    super::waiting::acd_queue(call, ivr, acd, &name, max_wait, keys, &hold).await?
                }
                (Some(name), None) => {
                    tracing::warn!(queue = name, "IVR: no ACD for the queue");
                    QueueOutcome::NoAnswer
                }
                (None, _) => {
                    let people = candidates(call, ivr, &users, all_agents).await;
                    queue(call, ivr, &people, ring, max_wait, leave_key, &hold).await?
                }
            };
            Input::Queue(outcome)
        }
        Command::Transfer { number } => {
            let ring = Duration::from_secs(u64::from(call.desk_ring_secs()));
            Input::Transferred(call.bridge_to_number(&number, ring).await?.is_none())
        }
        Command::LogCallback { reason } => {
            callback_request(ivr, &call.info, reason, None, None).await;
            return Ok(None);
        }
        Command::RequestDelivery { channel, address, article } => {
            callback_request(ivr, &call.info, channel.code().into(), Some(address), Some(article)).await;
            return Ok(None);
        }
        Command::SaveAnswer { survey, question, answer } => {
            let at = ivr.local_now();
            if let Err(e) = store.write(move |db| db.save_survey_answer(survey, question, answer, cdr, at)).await {
                tracing::warn!(error = %e, "IVR: cannot store a survey answer");
            }
            return Ok(None);
        }
        Command::SaveSatisfaction(satisfaction) => {
            match cdr {
                Some(id) => match ivr.cases.note_caller_rating(id, satisfaction, ivr.local_now()).await {
                    Ok(tickets) => tracing::info!(call = id, ?satisfaction, ?tickets, "IVR: the caller rated the call"),
                    Err(e) => tracing::warn!(call = id, error = %e, "IVR: cannot keep the caller's rating"),
                },
                None => tracing::warn!(leg = %call.info.leg, "IVR: a rating for a call without a record"),
            }
            return Ok(None);
        }
        Command::Hangup => {
            call.hangup();
            return Ok(None);
        }
    };
    Ok(Some(input))
}

/// The samples of `say`: the administrator's replacement recording when there is one, else
/// the prompt file or the rendered text.
fn render(prompts: &Prompts, say: &Say) -> Result<Arc<[i16]>, PromptError> {
    if let Some(samples) = say.replaced_by.as_deref().and_then(|name| prompts.file(name).ok()) {
        return Ok(samples);
    }
    match (&say.file, &say.text) {
        (Some(file), _) => prompts.file(file),
        (None, Some(text)) => prompts.tts(text),
        (None, None) => Err(PromptError::EmptyText),
    }
}

pub(super) async fn rendered(prompts: &Prompts, say: &Say) -> Result<Arc<[i16]>, CallError> {
    let (prompts, say) = (prompts.clone(), say.clone());
    tokio::task::spawn_blocking(move || render(&prompts, &say)).await.map_err(|e| CallError::Task(e.to_string()))?.map_err(CallError::from)
}

/// Plays `says` in turn; a key stops them when `barge_in`. A prompt that cannot be rendered is
/// logged and skipped: the caller hears the rest rather than nothing.
async fn play(call: &mut Call, says: &[Say], barge_in: bool) -> Result<(), CallError> {
    for say in says {
        match rendered(call.prompts(), say).await {
            Ok(samples) => {
                if call.play(&samples, barge_in).await?.is_some() {
                    break;
                }
            }
            Err(CallError::Ended) => return Err(CallError::Ended),
            Err(e) => tracing::warn!(leg = %call.info.leg, error = %e, ?say, "IVR: prompt skipped"),
        }
    }
    Ok(())
}

/// The hold prompt followed by one cycle of Chinese ringback, played in a loop.
async fn hold_audio(prompts: &Prompts, say: &Say) -> Vec<i16> {
    let mut samples = match rendered(prompts, say).await {
        Ok(s) => s.to_vec(),
        Err(e) => {
            tracing::warn!(error = %e, "IVR: hold prompt unavailable");
            Vec::new()
        }
    };
    samples.extend(ringback_tone());
    samples
}

/// Renders `texts` into the TTS cache on a blocking thread, one after another (failures are
/// logged: the call renders again when it needs the text).
pub fn prerender(prompts: Prompts, texts: Vec<String>) {
    tokio::task::spawn_blocking(move || {
        let rendered = texts.iter().filter(|text| match prompts.tts(text) {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, text, "IVR: cannot render a prompt ahead of time");
                false
            }
        });
        let count = rendered.count();
        tracing::info!(count, "IVR: prompts rendered");
    });
}

/// The desk users to ring, in order: the named ones, or every active agent.
async fn candidates(call: &mut Call, ivr: &Ivr, users: &[String], all_agents: bool) -> Vec<i64> {
    if all_agents {
        let now = ivr.local_now();
        return match ivr.cases.store().read(move |db| db.users(now)).await {
            Ok(all) => all.into_iter().filter(|u| u.active && u.role == Role::Agent).map(|u| u.id).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "IVR: cannot list the agents");
                Vec::new()
            }
        };
    }
    let mut ids = Vec::with_capacity(users.len());
    for name in users {
        if let Some(id) = call.user_id_of(name).await {
            ids.push(id);
        }
    }
    ids
}

/// Rings the logged-in `people` one after another until one answers (then they talk, and a
/// transfer the desk asks for is carried out), the caller presses `leave_key`, or `max_wait`
/// passes. Until the ACD takes over this is the hotline's queue.
async fn queue(
    call: &mut Call,
    ivr: &Ivr,
    people: &[i64],
    ring: Duration,
    max_wait: Duration,
    leave_key: Option<char>,
    hold: &[i16],
) -> Result<QueueOutcome, CallError> {
    let deadline = Instant::now() + max_wait;
    let mut turn = 0usize;
    loop {
        let online: Vec<i64> = people.iter().copied().filter(|id| (ivr.online)(*id)).collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if online.is_empty() || left.is_zero() {
            return Ok(QueueOutcome::NoAnswer);
        }
        let user = online[turn % online.len()];
        turn += 1;
        match call.offer_holding(user, ring.min(left), hold, leave_key).await? {
            Offer::Answered(conn_id) => {
                tracing::info!(leg = %call.info.leg, user, "IVR: an agent took the call");
                let result = match talk_to_agent(call, conn_id, true).await {
                    Ok(handover) => apps::transfer_if_asked(call, handover).await,
                    Err(e) => Err(e),
                };
                call.stop_call_recording().await;
                return result.map(|()| QueueOutcome::Connected);
            }
            Offer::Left => return Ok(QueueOutcome::Left),
            Offer::NotAnswered | Offer::DeclinedBy(_) => {}
        }
    }
}

/// Tells the caller the answering agent's number (自动报工号), when configured and the agent
/// has one.
pub(super) async fn announce_agent(call: &mut Call, ivr: &Ivr, agent: i64) {
    if ivr.announcement.trim().is_empty() {
        return;
    }
    let user = ivr.cases.store().read(move |db| db.user_by_id(agent)).await.ok().flatten();
    let Some(agent_no) = user.and_then(|u| u.info.agent_no) else { return };
    let text = ivr.announcement.replace("{agent_no}", agent_no.as_ref());
    match rendered(call.prompts(), &Say::text(text)).await {
        Ok(samples) => call.announce_on_connect(&samples),
        Err(e) => tracing::warn!(leg = %call.info.leg, error = %e, "IVR: cannot render the agent announcement"),
    }
}

/// Caller and agent talk (recorded when `record` and calls are recorded at all) until either
/// hangs up or the agent hands the caller on; the recording goes on through a hand-over.
pub(super) async fn talk_to_agent(call: &mut Call, conn_id: u64, record: bool) -> Result<Option<Handover>, CallError> {
    if record {
        call.record_if_configured().await;
    }
    call.talk_with_desk(conn_id).await
}

async fn create_ticket(
    info: &CallInfo,
    data_dir: &std::path::Path,
    ivr: &Ivr,
    kind: TicketKind,
    recording: &str,
    callback: &str,
    reply_wanted: Option<bool>,
) -> Result<(String, String), Box<dyn std::error::Error + Send + Sync>> {
    let actor = Actor::ivr();
    let now = ivr.local_now();
    let caller = info.caller.clone();
    let reply = match reply_wanted {
        Some(true) => "需要 / yes",
        Some(false) => "不需要 / no",
        None => "未询问 / not asked",
    };
    let summary = match kind {
        TicketKind::DirectorMailbox => "局长信箱语音留言 / director's mailbox voice message",
        TicketKind::Complaint => "自动投诉录音 / recorded complaint",
        TicketKind::Report => "自动举报录音 / recorded report",
        _ => "语音留言 / voice message",
    };
    let content = format!(
        "来电号码 / caller: {caller}\n回电号码 / call back on: {callback}\n需要答复 / reply wanted: {reply}\n\
         语音留言见附件录音 / the voice message is attached ({recording})"
    );
    let phone = PhoneNumber::parse(callback).or_else(|_| PhoneNumber::parse(&caller)).ok();
    let new = NewTicket {
        channel: Channel::IvrMessage,
        caller: CallerInfo { phone, ..CallerInfo::default() },
        consent_to_contact: reply_wanted != Some(false),
        call_id: info.cdr.map(|id| id.to_string()),
        ..NewTicket::phone(kind, None, summary, &content)
    };
    let ticket = ivr.cases.create(&actor, new, now).await?;
    let data = tokio::fs::read(data_dir.join(recording)).await?;
    let name = format!("{}-message.wav", ticket.no);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
    if let Err(e) = ivr.cases.add_attachment(&actor, ticket.no.clone(), name, "audio/wav".into(), b64, now).await {
        // The ticket stands and names the recording, which the call record keeps too.
        tracing::warn!(ticket = %ticket.no, error = %e, "IVR: cannot attach the recording");
    }
    tracing::info!(leg = %info.leg, ticket = %ticket.no, ?kind, "IVR: message registered");
    Ok((ticket.no.to_string(), ticket.verification_code.unwrap_or_default()))
}

/// The status sentence of ticket `number` when `code` is its verification code, or when `code`
/// is empty and the call comes from the ticket's own phone number.
async fn ticket_status(ivr: &Ivr, number: &str, code: &str, caller: &str) -> Option<String> {
    let no = TicketNo::parse(number).ok()?;
    let today = ivr.local_now().date();
    let ticket = ivr.cases.get(&Actor::ivr(), no, today).await.ok()?;
    let verified = if code.is_empty() {
        let caller = PhoneNumber::parse(caller).ok();
        caller.is_some() && ticket.caller.phone == caller
    } else {
        ticket.verification_code.as_deref() == Some(code)
    };
    if !verified {
        return None;
    }
    let department = match ticket.lead_department {
        Some(id) => ivr.cases.store().read(|db| db.departments()).await.ok().and_then(|all| all.into_iter().find(|d| d.id == id)).map(|d| d.name),
        None => None,
    };
    Some(super::speech::status(&ticket, department.as_deref()))
}

async fn articles(ivr: &Ivr) -> Vec<ArticleBrief> {
    match ivr.cases.store().read(|db| db.ivr_articles()).await {
        Ok(rows) => rows.into_iter().map(|(id, kind, title, body)| ArticleBrief { id, kind, title, body }).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "IVR: cannot load the articles");
            Vec::new()
        }
    }
}

async fn callback_request(ivr: &Ivr, info: &CallInfo, reason: String, address: Option<String>, article_id: Option<i64>) {
    let request = CallbackRequest { id: 0, at: ivr.local_now(), phone: info.caller.clone(), reason, address, article_id, done: false, outcome: None };
    if let Err(e) = records::add_callback(ivr.cases.store(), request, info.cdr).await {
        tracing::warn!(leg = %info.leg, error = %e, "IVR: cannot store a callback request");
    }
}
