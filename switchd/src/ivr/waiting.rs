//! A caller waiting in an ACD queue (ACD-3, ACD-4, ACD-6): what they hear (the hold prompt and
//! music on hold, their place and estimated wait at intervals), the offers the ACD makes
//! (each rings an agent's desk while the caller keeps hearing the hold audio), the overflow
//! the ACD decides (another queue, the mailbox, a callback), the queue's hours, and the
//! caller's own keys: leave a message, or be called back keeping their place.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TryRecvError;

use super::interp::QueueOutcome;
use super::runner::{announce_agent, rendered, talk_to_agent, Ivr};
use super::interp::Say;
use crate::acd::actor::{AcdHandle, QueueSignal};
use crate::acd::{AcdError, AgentId, CallRef, Command as AcdCommand, OverflowTarget, QueueId};
use crate::cases::service::Actor;
use crate::engine::apps;
use crate::engine::call::{ringback_tone, Call, CallError, Offer};
use crate::engine::desk_leg::Handover;
use crate::media::prompt::spell_digits;

/// The caller's keys while waiting.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keys {
    /// Leave the queue (to leave a message).
    pub leave: Option<char>,
    /// Be called back keeping one's place.
    pub callback: Option<char>,
}

/// The priority of a caller an agent handed to another agent or a queue: ahead of new callers.
const TRANSFER_PRIORITY: i32 = 10;

/// How a wait in an ACD queue ended.
enum Waited {
    /// The ACD's offer to `agent` was answered on desk connection `conn_id`.
    Agent { agent: i64, conn_id: u64 },
    /// A desk user outside the ACD, rung directly after a transfer, answered.
    Desk { conn_id: u64 },
    /// The desk user a transfer named did not answer: the caller waits in the queue.
    Requeue,
    Done(QueueOutcome),
}

/// Waits in ACD queue `name` while the caller hears `hold`, taking the offers the ACD makes:
/// each rings the agent's desk; an answer connects caller and agent, a miss goes back to the
/// ACD, which offers the next agent. The caller's keys, the ACD's overflow and `max_wait` end
/// the wait without an agent. An agent who hands the caller to another agent or queue (AGT-2)
/// goes to wrap-up and the caller enters the ACD again, ahead of new callers: offered to that
/// agent first, or waiting in that queue. A named agent who does not answer leaves the caller
/// waiting in the queue they first came to.
pub async fn acd_queue(call: &mut Call, ivr: &Ivr, acd: &AcdHandle, name: &str, max_wait: Duration, keys: Keys, hold: &[i16]) -> Result<QueueOutcome, CallError> {
    let id = CallRef(call.info.leg.0);
    let open = is_open(ivr, acd, name);
    // Nobody logged in to an open queue: there is no one to wait for.
    let staffed = acd.snapshot().await.and_then(|s| s.queues.into_iter().find(|q| q.queue.as_str() == name)).is_some_and(|q| q.logged_in_agents > 0);
    if open && !staffed {
        tracing::info!(leg = %call.info.leg, queue = name, "IVR: no agent logged in to the queue");
        return Ok(QueueOutcome::NoAnswer);
    }
    let hold = hold_loop(call, acd, name, hold);
    call.set_acd_queue(Some(name.to_owned()));
    // The queue to wait in, and for a transfer the agent to offer the caller to first.
    let (mut queue, mut transfer) = (name.to_owned(), None::<Option<i64>>);
    let result = loop {
        let entry = Entry { queue: &queue, open, transfer, max_wait, keys };
        let (conn_id, agent) = match wait_for_agent(call, ivr, acd, entry, &hold).await {
            Ok(Waited::Agent { agent, conn_id }) => {
                announce_agent(call, ivr, agent).await;
                (conn_id, Some(agent))
            }
            Ok(Waited::Desk { conn_id }) => (conn_id, None),
            Ok(Waited::Requeue) => {
                (queue, transfer) = (name.to_owned(), Some(None));
                continue;
            }
            Ok(Waited::Done(outcome)) => break Ok(outcome),
            Err(e) => break Err(e),
        };
        let record = match agent {
            Some(agent) => acd.records(&queue, &username_of(ivr, agent).await.unwrap_or_default()),
            None => true,
        };
        let talked = talk_to_agent(call, conn_id, record).await;
        if agent.is_some() {
            // The agent is done with this caller whatever comes next: wrap-up.
            acd.tell(AcdCommand::CallEnded { call: id });
        }
        match talked {
            Ok(Some(Handover::Agent(user))) => {
                tracing::info!(leg = %call.info.leg, user, "IVR: the agent hands the caller to another agent");
                call.leave_desk();
                (queue, transfer) = (name.to_owned(), Some(Some(user)));
            }
            Ok(Some(Handover::DeskLost)) => {
                tracing::info!(leg = %call.info.leg, queue, "IVR: the agent's desk was lost; the caller goes back to the queue");
                call.leave_desk();
                say(call, "对不起，坐席连接中断，正在为您重新转接，请稍候。").await?;
                transfer = Some(None);
            }
            Ok(Some(Handover::Queue(to))) => {
                tracing::info!(leg = %call.info.leg, queue = to, "IVR: the agent hands the caller to a queue");
                call.leave_desk();
                call.set_acd_queue(Some(to.clone()));
                (queue, transfer) = (to, Some(None));
            }
            Ok(other) => break apps::transfer_if_asked(call, other).await.map(|()| QueueOutcome::Connected),
            Err(e) => break Err(e),
        }
    };
    call.set_acd_queue(None);
    call.stop_call_recording().await;
    result
}

/// How a caller enters the ACD for one wait.
#[derive(Clone, Copy)]
struct Entry<'a> {
    queue: &'a str,
    /// The first entry: whether the queue is open by its hours (transfers ignore them).
    open: bool,
    /// `Some` for a caller an agent handed on, with the agent to offer it to first.
    transfer: Option<Option<i64>>,
    max_wait: Duration,
    keys: Keys,
}

/// One wait in an ACD queue (see [`acd_queue`]).
async fn wait_for_agent(call: &mut Call, ivr: &Ivr, acd: &AcdHandle, entry: Entry<'_>, hold: &[i16]) -> Result<Waited, CallError> {
    let id = CallRef(call.info.leg.0);
    let (record, caller, queue) = (call.info.cdr, call.info.caller.clone(), entry.queue);
    let entered = match entry.transfer {
        None => {
            let priority = caller_priority(ivr, &caller).await;
            acd.enter(id, record, QueueId::new(queue), caller, entry.open, priority).await
        }
        Some(agent) => acd.enter_transferred(id, record, QueueId::new(queue), caller, TRANSFER_PRIORITY, agent.map(AgentId)).await,
    };
    let mut signals = match (entered, entry.transfer) {
        (Ok(rx), _) => rx,
        // A desk user who does not take queue calls (a supervisor watching the board): their
        // desk rings directly.
        (Err(AcdError::UnknownAgent(_) | AcdError::NotLoggedIn(_)), Some(Some(user))) => {
            let ring = Duration::from_secs(u64::from(call.desk_ring_secs()));
            return Ok(match call.offer_holding(user, ring, hold, entry.keys.leave).await? {
                Offer::Answered(conn_id) => Waited::Desk { conn_id },
                Offer::NotAnswered | Offer::DeclinedBy(_) => Waited::Requeue,
                Offer::Left => Waited::Done(QueueOutcome::Left),
            });
        }
        // Busy since the agent asked: the caller waits in the queue instead.
        (Err(AcdError::AgentBusy(_)), Some(Some(_))) => return Ok(Waited::Requeue),
        (Err(AcdError::QueueClosed(_)), _) => {
            tracing::info!(leg = %call.info.leg, queue, "IVR: the queue is closed");
            say(call, "对不起，现在不是人工服务时间。").await?;
            return Ok(Waited::Done(QueueOutcome::NoAnswer));
        }
        (Err(e), _) => {
            tracing::warn!(leg = %call.info.leg, queue, error = %e, "IVR: the ACD refused the call");
            return Ok(Waited::Done(QueueOutcome::NoAnswer));
        }
    };
    let mut audio = HoldAudio::new(hold.to_vec());
    let deadline = Instant::now() + entry.max_wait;
    let mut next_position = (!ivr.position_every.is_zero()).then(|| Instant::now() + Duration::from_secs(5));
    // Until when the desks of the current offer ring (`call.ringing()` says which): the ACD
    // decides when an offer ends.
    let mut ringing: Option<Instant> = None;
    let result = loop {
        if Instant::now() >= deadline {
            break Ok(QueueOutcome::NoAnswer);
        }
        if entry.keys.leave.is_some_and(|k| call.take_key(k)) {
            break Ok(QueueOutcome::Left);
        }
        if entry.keys.callback.is_some_and(|k| call.take_key(k)) {
            if ringing.take().is_some() {
                call.withdraw_offer();
            }
            if let Some(number) = confirm_callback(call, call.info.caller.clone()).await? {
                return called_back(call, acd, id, number, true).await.map(Waited::Done);
            }
        }
        match signals.try_recv() {
            Ok(QueueSignal::Offer { agents, until }) => {
                if ringing.is_some() {
                    call.withdraw_offer();
                }
                call.start_offer_all(&agents);
                // Stop a little before the ACD's own deadline, so it never takes back an offer
                // a desk is still able to answer.
                ringing = Some(until.checked_sub(Duration::from_millis(300)).unwrap_or(until));
            }
            Ok(QueueSignal::Cancel { agents }) => {
                for agent in agents {
                    call.stop_ringing(agent);
                }
                if call.ringing().is_empty() {
                    ringing = None;
                }
            }
            Ok(QueueSignal::Overflow(OverflowTarget::Queue(to))) => {
                tracing::info!(leg = %call.info.leg, queue = %to, "IVR: the caller moves to another queue");
                call.set_acd_queue(Some(to.0));
            }
            Ok(QueueSignal::Overflow(OverflowTarget::Callback)) => {
                // The ACD made the call a callback on the caller's number already; the caller
                // may give another, and is hung up either way.
                let number = confirm_callback(call, call.info.caller.clone()).await?;
                let confirmed = number.is_some();
                let number = number.unwrap_or_else(|| call.info.caller.clone());
                return called_back(call, acd, id, number, confirmed).await.map(Waited::Done);
            }
            Ok(QueueSignal::Overflow(OverflowTarget::Mailbox(_))) | Err(TryRecvError::Disconnected) => {
                // Out of the ACD already: the flow takes the message.
                return Ok(Waited::Done(QueueOutcome::NoAnswer));
            }
            Err(TryRecvError::Empty) => {}
        }
        if ringing.is_some_and(|until| Instant::now() >= until) {
            decline_all(call, acd, id);
            ringing = None;
        }
        if let Some(at) = next_position.filter(|at| ringing.is_none() && Instant::now() >= *at) {
            next_position = Some(at + ivr.position_every);
            if let Some((place, wait)) = acd.position(id).await {
                tell_position(call, &mut audio, place, wait).await;
            }
        }
        let frame = audio.next_frame();
        let tick = if ringing.is_some() { call.offer_tick(&frame).await } else { call.hold_tick(&frame).await.map(|()| None) };
        match tick {
            Ok(Some(Offer::Answered(conn_id))) => match call.desk_user() {
                Some(agent) => {
                    acd.tell(AcdCommand::OfferAnswered { call: id, agent: AgentId(agent) });
                    return Ok(Waited::Agent { agent, conn_id });
                }
                None => break Err(CallError::Task("an answer from no desk user".into())),
            },
            Ok(Some(Offer::DeclinedBy(agent))) => acd.tell(AcdCommand::OfferDeclined { call: id, agent: AgentId(agent) }),
            Ok(Some(_)) if ringing.is_some() => {
                decline_all(call, acd, id);
                ringing = None;
            }
            Ok(_) => {}
            Err(e) => break Err(e),
        }
    };
    if ringing.is_some() {
        call.withdraw_offer();
    }
    acd.tell(AcdCommand::Abandon { call: id });
    result.map(Waited::Done)
}

/// Every desk the current offer rings missed it: the offer ends, and the ACD hears of each.
fn decline_all(call: &mut Call, acd: &AcdHandle, id: CallRef) {
    let agents = call.ringing().to_vec();
    call.withdraw_offer();
    for agent in agents {
        acd.tell(AcdCommand::OfferDeclined { call: id, agent: AgentId(agent) });
    }
}

/// VIP callers (the caller list's mark) go first, then repeat callers, then everyone else.
async fn caller_priority(ivr: &Ivr, caller: &str) -> i32 {
    let Ok(phone) = rexian_shared::PhoneNumber::parse(caller) else { return 0 };
    match ivr.cases.caller_profile(&Actor::ivr(), phone, ivr.local_now().date()).await {
        Ok(p) if p.vip => VIP_PRIORITY,
        Ok(p) if p.repeat_caller => REPEAT_CALLER_PRIORITY,
        Ok(_) => 0,
        Err(e) => {
            tracing::warn!(error = %e, "IVR: cannot read the caller's profile; no priority");
            0
        }
    }
}

/// Queue priorities: VIP callers ahead of repeat callers ahead of the rest; a transferred
/// caller (see [`TRANSFER_PRIORITY`]) ahead of them all.
const VIP_PRIORITY: i32 = 5;
const REPEAT_CALLER_PRIORITY: i32 = 2;

async fn username_of(ivr: &Ivr, agent: i64) -> Option<String> {
    let user = ivr.cases.store().read(move |db| db.user_by_id(agent)).await.ok().flatten()?;
    Some(user.info.username.as_ref().to_owned())
}

/// Whether queue `name` takes calls now, by its hours on the calendar's working days (the
/// rehearsal clock counts).
fn is_open(ivr: &Ivr, acd: &AcdHandle, name: &str) -> bool {
    let Some(rules) = acd.rules(name).filter(|r| !r.hours.is_empty()) else { return true };
    let now = ivr.simulate_time.unwrap_or_else(|| ivr.local_now());
    ivr.cases.calendar().is_open(now, &rules.hours)
}

/// The queue's music on hold after the flow's hold prompt, or the prompt and ringback.
fn hold_loop(call: &Call, acd: &AcdHandle, name: &str, hold: &[i16]) -> Vec<i16> {
    let music = acd.rules(name).map(|r| r.music_on_hold.clone()).filter(|m| !m.is_empty());
    let music = music.and_then(|file| match call.prompts().file(&file) {
        Ok(samples) => Some(samples),
        Err(e) => {
            tracing::warn!(queue = name, file, error = %e, "IVR: music on hold unavailable; ringback instead");
            None
        }
    });
    match music {
        Some(music) => hold.iter().chain(music.iter()).copied().collect(),
        None if hold.is_empty() => ringback_tone(),
        None => hold.to_vec(),
    }
}

/// The caller confirms the number to be called back on, or keys another (ACD-4): `None`
/// when they confirm nothing after three tries.
async fn confirm_callback(call: &mut Call, caller: String) -> Result<Option<String>, CallError> {
    let mut number = caller;
    for _ in 0..3 {
        if number.len() < 5 {
            number = ask_number(call).await?;
            continue;
        }
        let text = format!("轮到您时我们将回电至{}。确认请按1，使用其他号码请按2。", spell_digits(&number));
        call.play_text(&text, true).await?;
        match call.collect(1, None, Duration::from_secs(6), Duration::ZERO).await?.as_str() {
            "1" => return Ok(Some(number)),
            "2" => number = ask_number(call).await?,
            _ => {}
        }
    }
    Ok(None)
}

async fn ask_number(call: &mut Call) -> Result<String, CallError> {
    call.play_text("请输入回电号码，以井号键结束。", true).await?;
    call.collect(15, Some('#'), Duration::from_secs(10), Duration::from_secs(5)).await
}

/// The caller will be called back on `number` keeping their place: the ACD is told, the
/// caller hears so (when they confirmed) and is hung up.
async fn called_back(call: &mut Call, acd: &AcdHandle, id: CallRef, number: String, confirmed: bool) -> Result<QueueOutcome, CallError> {
    tracing::info!(leg = %call.info.leg, number, "IVR: the caller will be called back");
    if let Err(e) = acd.command(AcdCommand::RequestCallback { call: id, number }).await {
        tracing::warn!(leg = %call.info.leg, error = %e, "IVR: the ACD refused the callback");
        acd.tell(AcdCommand::Abandon { call: id });
        say(call, "对不起，暂时无法预约回电，请稍后再拨。").await?;
        call.hangup();
        return Ok(QueueOutcome::Callback);
    }
    let text = if confirmed { "好的，已为您保留排队位置，轮到您时我们将回电，请保持电话畅通。再见。" } else { "坐席仍然繁忙，已为您保留排队位置，轮到您时我们将回电至您的来电号码。再见。" };
    say(call, text).await?;
    call.hangup();
    Ok(QueueOutcome::Callback)
}

async fn say(call: &mut Call, text: &str) -> Result<(), CallError> {
    call.play_text(text, false).await.map(|_| ())
}

/// What a waiting caller hears: the hold audio in a loop, with an announcement spliced in
/// frame by frame (so the wait keeps watching the ACD while it plays).
struct HoldAudio {
    hold: Vec<i16>,
    at: usize,
    insert: std::collections::VecDeque<i16>,
}

impl HoldAudio {
    fn new(hold: Vec<i16>) -> Self {
        Self { hold, at: 0, insert: Default::default() }
    }

    fn next_frame(&mut self) -> Vec<i16> {
        if !self.insert.is_empty() {
            let n = self.insert.len().min(160);
            return self.insert.drain(..n).collect();
        }
        if self.hold.is_empty() {
            return vec![0; 160];
        }
        // Slices, not `cycle().skip(at)`: that walks the whole buffer up to `at` every tick.
        let mut frame = Vec::with_capacity(160);
        while frame.len() < 160 {
            let take = (160 - frame.len()).min(self.hold.len() - self.at);
            frame.extend_from_slice(&self.hold[self.at..self.at + take]);
            self.at = (self.at + take) % self.hold.len();
        }
        frame
    }
}

/// Tells a waiting caller their place in line and about how long they will wait (ACD-3).
async fn tell_position(call: &mut Call, audio: &mut HoldAudio, place: usize, wait: Duration) {
    let text = format!("{}{}", place_sentence(place), wait_sentence(wait));
    tracing::info!(leg = %call.info.leg, place, wait_secs = wait.as_secs(), "IVR: telling the caller their place");
    match rendered(call.prompts(), &Say::text(text)).await {
        Ok(samples) => audio.insert.extend(samples.iter().copied()),
        Err(e) => tracing::warn!(leg = %call.info.leg, error = %e, "IVR: cannot render the position announcement"),
    }
}

fn place_sentence(place: usize) -> String {
    match place {
        0 | 1 => "您是下一位。".to_owned(),
        n => format!("您前面还有{}位来电者。", super::speech::zh_count(n as u32 - 1)),
    }
}

/// The estimated wait in whole minutes, rounded up ("about three minutes").
fn wait_sentence(wait: Duration) -> String {
    match wait.as_secs().div_ceil(60) {
        0 | 1 => "预计等待时间不超过一分钟，请稍候。".to_owned(),
        m => format!("预计等待时间约{}分钟，请耐心等待。", super::speech::zh_count(m.min(99) as u32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_hears_their_place_and_a_rounded_wait() {
        assert_eq!(place_sentence(1), "您是下一位。");
        assert_eq!(place_sentence(4), "您前面还有三位来电者。");
        assert_eq!(wait_sentence(Duration::from_secs(45)), "预计等待时间不超过一分钟，请稍候。");
        assert_eq!(wait_sentence(Duration::from_secs(121)), "预计等待时间约三分钟，请耐心等待。");
        assert_eq!(wait_sentence(Duration::from_secs(3 * 3600)), "预计等待时间约九十九分钟，请耐心等待。");
    }

    #[test]
    fn hold_audio_loops_and_splices_announcements_in() {
        let mut audio = HoldAudio::new((0..200).collect());
        assert_eq!(audio.next_frame()[..3], [0, 1, 2]);
        let second = audio.next_frame();
        assert_eq!((second[0], second[40]), (160, 0), "wraps around");
        audio.insert.extend([7; 100]);
        assert_eq!(audio.next_frame(), vec![7; 100]);
        assert_eq!(audio.next_frame()[0], 120, "the loop resumes where it was");
    }
}
