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
use crate::engine::call::{ringback_tone, Call, CallError, Offer};
use crate::media::prompt::spell_digits;

/// The caller's keys while waiting.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keys {
    /// Leave the queue (to leave a message).
    pub leave: Option<char>,
    /// Be called back keeping one's place.
    pub callback: Option<char>,
}

/// Waits in ACD queue `name` while the caller hears `hold`, taking the offers the ACD makes:
/// each rings the agent's desk; an answer connects caller and agent (and ends the wait), a
/// miss goes back to the ACD, which offers the next agent. The caller's keys, the ACD's
/// overflow and `max_wait` end the wait without an agent.
pub async fn acd_queue(call: &mut Call, ivr: &Ivr, acd: &AcdHandle, name: &str, max_wait: Duration, keys: Keys, hold: &[i16]) -> Result<QueueOutcome, CallError> {
    let id = CallRef(call.info.leg.0);
    let open = is_open(ivr, acd, name);
    // Nobody logged in to an open queue: there is no one to wait for.
    let staffed = acd.snapshot().await.and_then(|s| s.queues.into_iter().find(|q| q.queue.as_str() == name)).is_some_and(|q| q.logged_in_agents > 0);
    if open && !staffed {
        tracing::info!(leg = %call.info.leg, queue = name, "IVR: no agent logged in to the queue");
        return Ok(QueueOutcome::NoAnswer);
    }
    let mut signals = match acd.enter(id, call.info.cdr, QueueId::new(name), call.info.caller.clone(), open).await {
        Ok(rx) => rx,
        Err(AcdError::QueueClosed(_)) => {
            tracing::info!(leg = %call.info.leg, queue = name, "IVR: the queue is closed");
            say(call, "对不起，现在不是人工服务时间。").await?;
            return Ok(QueueOutcome::NoAnswer);
        }
        Err(e) => {
            tracing::warn!(leg = %call.info.leg, queue = name, error = %e, "IVR: the ACD refused the call");
            return Ok(QueueOutcome::NoAnswer);
        }
    };
    let mut audio = HoldAudio::new(hold_loop(call, acd, name, hold));
    let deadline = Instant::now() + max_wait;
    let mut next_position = (!ivr.position_every.is_zero()).then(|| Instant::now() + Duration::from_secs(5));
    // The desk being rung now, and until when: the ACD decides when an offer ends.
    let mut ringing: Option<(i64, Instant)> = None;
    let result = loop {
        if Instant::now() >= deadline {
            break Ok(QueueOutcome::NoAnswer);
        }
        if keys.leave.is_some_and(|k| call.take_key(k)) {
            break Ok(QueueOutcome::Left);
        }
        if keys.callback.is_some_and(|k| call.take_key(k)) {
            if ringing.take().is_some() {
                call.withdraw_offer();
            }
            if let Some(number) = confirm_callback(call, call.info.caller.clone()).await? {
                return called_back(call, acd, id, number, true).await;
            }
        }
        match signals.try_recv() {
            Ok(QueueSignal::Offer { agent, until }) => {
                if ringing.is_some() {
                    call.withdraw_offer();
                }
                call.start_offer(agent);
                // Stop a little before the ACD's own deadline, so it never takes back an offer
                // the desk is still able to answer.
                ringing = Some((agent, until.checked_sub(Duration::from_millis(300)).unwrap_or(until)));
            }
            Ok(QueueSignal::Cancel) => {
                if ringing.take().is_some() {
                    call.withdraw_offer();
                }
            }
            Ok(QueueSignal::Overflow(OverflowTarget::Queue(to))) => {
                tracing::info!(leg = %call.info.leg, queue = %to, "IVR: the caller moves to another queue");
            }
            Ok(QueueSignal::Overflow(OverflowTarget::Callback)) => {
                // The ACD made the call a callback on the caller's number already; the caller
                // may give another, and is hung up either way.
                let number = confirm_callback(call, call.info.caller.clone()).await?;
                let confirmed = number.is_some();
                return called_back(call, acd, id, number.unwrap_or_else(|| call.info.caller.clone()), confirmed).await;
            }
            Ok(QueueSignal::Overflow(OverflowTarget::Mailbox(_))) | Err(TryRecvError::Disconnected) => {
                // Out of the ACD already: the flow takes the message.
                return Ok(QueueOutcome::NoAnswer);
            }
            Err(TryRecvError::Empty) => {}
        }
        if let Some((agent, _)) = ringing.filter(|(_, until)| Instant::now() >= *until) {
            call.withdraw_offer();
            ringing = None;
            acd.tell(AcdCommand::OfferDeclined { call: id, agent: AgentId(agent) });
        }
        if let Some(at) = next_position.filter(|at| ringing.is_none() && Instant::now() >= *at) {
            next_position = Some(at + ivr.position_every);
            if let Some((place, wait)) = acd.position(id).await {
                tell_position(call, &mut audio, place, wait).await;
            }
        }
        let frame = audio.next_frame();
        let tick = if ringing.is_some() { call.offer_tick(&frame).await } else { call.hold_tick(&frame).await.map(|()| None) };
        match (tick, ringing) {
            (Ok(Some(Offer::Answered(conn_id))), Some((agent, _))) => {
                acd.tell(AcdCommand::OfferAnswered { call: id, agent: AgentId(agent) });
                announce_agent(call, ivr, agent).await;
                let record = acd.records(name, &username_of(ivr, agent).await.unwrap_or_default());
                let talked = talk_to_agent(call, conn_id, record).await;
                acd.tell(AcdCommand::CallEnded { call: id });
                return talked.map(|()| QueueOutcome::Connected);
            }
            (Ok(Some(_)), Some((agent, _))) => {
                call.withdraw_offer();
                ringing = None;
                acd.tell(AcdCommand::OfferDeclined { call: id, agent: AgentId(agent) });
            }
            (Ok(_), _) => {}
            (Err(e), _) => break Err(e),
        }
    };
    if ringing.is_some() {
        call.withdraw_offer();
    }
    acd.tell(AcdCommand::Abandon { call: id });
    result
}

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
