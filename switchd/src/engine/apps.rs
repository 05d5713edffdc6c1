//! The engine's own applications, reachable from the routing table before the IVR exists:
//! the echo test, prompt-then-record (留言), and the placeholder behind the hotline number.
//! Each takes the call and gives it back when done; the engine then hangs up and closes the
//! CDR. `Err(Ended)` from a primitive just means the caller hung up first.

use std::time::Duration;

use super::call::{Call, CallError};
use super::desk_leg::Handover;
use crate::media::prompt::tone;

/// What the echo test says first (Chinese, then English for foreign callers).
pub const ECHO_PROMPT: &str = "回声测试。请讲话，您将听到自己的声音。";
/// The prompt before a recorded message.
pub const RECORD_PROMPT: &str = "请在提示音后留言，按井号键结束。";
/// Told to a caller whose transfer nobody answered.
pub const TRANSFER_FAILED: &str = "对不起，转接的号码无人接听，再见。";
/// The hotline placeholder until the IVR is installed.
pub const HOTLINE_PLACEHOLDER: &str = "您好，这里是12365热线。自动服务正在建设中，请稍后再拨。";

/// Echo test: answer, one short tone, then the caller's audio comes straight back until they
/// hang up. Digits are reported as events and kept in the CDR.
pub async fn echo_test(mut call: Call) -> Call {
    let result: Result<(), CallError> = async {
        call.answer().await?;
        call.play(&tone(1000.0, 200, 6000), false).await?;
        call.echo().await
    }
    .await;
    log_end(&call, "echo", result);
    call
}

/// Prompt then record: answer, speak [`RECORD_PROMPT`], beep, record the caller's message
/// until `#`, hang-up or the configured limit, then thank them.
pub async fn prompt_then_record(mut call: Call) -> Call {
    let max = Duration::from_secs(u64::from(call.max_message_secs()));
    let path = call.recording_path("message");
    let result: Result<(), CallError> = async {
        call.answer().await?;
        call.play_text(RECORD_PROMPT, false).await?;
        call.play(&tone(1000.0, 400, 8000), false).await?;
        call.record(&path, max, "#").await?;
        call.play_text("留言已收到，谢谢。", false).await?;
        Ok(())
    }
    .await;
    log_end(&call, "prompt_record", result);
    call
}

/// The hotline number's application until the IVR issue installs its own.
pub async fn hotline_placeholder(mut call: Call) -> Call {
    let result: Result<(), CallError> = async {
        call.answer().await?;
        call.play_text(HOTLINE_PLACEHOLDER, false).await?;
        call.pause(Duration::from_millis(300)).await
    }
    .await;
    log_end(&call, "hotline", result);
    call
}

fn log_end(call: &Call, app: &str, result: Result<(), CallError>) {
    match result {
        Ok(()) | Err(CallError::Ended) => {}
        Err(e) => tracing::warn!(leg = %call.info.leg, app, error = %e, "application failed"),
    }
}

/// Rings the desktop of `username` and, once they answer, connects the caller with them until
/// either hangs up. Unanswered (declined, not logged in, or `desk_ring_secs` passed), the
/// engine ends the call with "no answer".
pub async fn desk_user(mut call: Call, username: String) -> Call {
    let Some(user_id) = call.user_id_of(&username).await else {
        tracing::warn!(leg = %call.info.leg, username, "desk route names no active user");
        return call;
    };
    let ring = Duration::from_secs(u64::from(call.desk_ring_secs()));
    let result: Result<(), CallError> = async {
        let Some(conn_id) = call.offer_to_desk(user_id, ring).await? else {
            return Ok(());
        };
        call.answer().await?;
        call.record_if_configured().await;
        let transfer = call.talk_with_desk(conn_id).await?;
        transfer_if_asked(&mut call, transfer).await
    }
    .await;
    call.stop_call_recording().await;
    log_end(&call, "desk", result);
    call
}

/// After a desk call: if the agent handed the caller on, the desk lets go and the caller is
/// bridged to the number (told so if nobody answers there), walked through the IVR flow, or
/// left talking with the party the agent consulted. Hand-overs to agents and queues are the
/// ACD's (the IVR's queue carries them out); the desk server refuses them for other calls.
/// What a caller hears when the agent's desk vanished from a call outside the ACD.
const DESK_LOST: &str = "对不起，坐席连接中断，请稍后再拨。";

pub async fn transfer_if_asked(call: &mut Call, transfer: Option<Handover>) -> Result<(), CallError> {
    let number = match transfer {
        None => return Ok(()),
        Some(Handover::Consulted) => {
            tracing::info!(leg = %call.info.leg, "the consulted party takes the caller over");
            call.leave_desk();
            return call.talk_with_consulted().await;
        }
        Some(Handover::DeskLost) => {
            call.leave_desk();
            call.play_text(DESK_LOST, false).await?;
            return Ok(());
        }
        Some(Handover::Agent(_) | Handover::Queue(_)) => {
            tracing::warn!(leg = %call.info.leg, "a hand-over to an agent or queue outside the ACD");
            return Ok(());
        }
        Some(Handover::Flow(flow)) => {
            tracing::info!(leg = %call.info.leg, flow, "desk hands the caller to an IVR flow");
            call.leave_desk();
            let hook = call.flow_hook();
            hook(call, flow).await;
            return Ok(());
        }
        Some(Handover::Number(number)) => number,
    };
    tracing::info!(leg = %call.info.leg, number, "desk transfers the call");
    call.leave_desk();
    let ring = Duration::from_secs(u64::from(call.desk_ring_secs()));
    if let Some(status) = call.transfer_to_number(&number, ring).await? {
        tracing::info!(leg = %call.info.leg, number, status, "transfer not answered");
        call.play_text(TRANSFER_FAILED, false).await?;
    }
    Ok(())
}

/// Bridges the call to `number` through the outbound trunk (call forwarding, or a trunk to
/// trunk transfer): the caller hears ringing, then talks with the far end; if the far end does
/// not answer within `ring`, the caller gets its refusal (busy stays busy, anything else 480).
pub async fn forward(mut call: Call, number: String, ring: Duration) -> Call {
    if number.is_empty() {
        tracing::warn!(leg = %call.info.leg, "forward route without a number");
        return call;
    }
    match call.bridge_to_number(&number, ring).await {
        Ok(Some(status)) => {
            tracing::info!(leg = %call.info.leg, number, status, "forwarded call not answered");
            call.reject(if matches!(status, 486 | 600) { 486 } else { 480 });
        }
        Ok(None) => {}
        Err(e) => log_end(&call, "forward", Err(e)),
    }
    call.stop_call_recording().await;
    call
}

/// A forward route's call: one target as [`forward`], several rung at once (forking): the
/// first to answer takes the call; when none does the caller gets the best of their refusals
/// ([`super::fork::best_response`]), 480 after `ring`.
pub async fn forward_route(call: Call, targets: Vec<String>, ring: Duration) -> Call {
    match targets.as_slice() {
        [] => forward(call, String::new(), ring).await,
        [one] => forward(call, one.clone(), ring).await,
        several => fork(call, several, ring).await,
    }
}

async fn fork(mut call: Call, targets: &[String], ring: Duration) -> Call {
    match call.bridge_to_any(targets, ring).await {
        Ok(Some(status)) => call.reject(status),
        Ok(None) => {}
        Err(e) => log_end(&call, "forward", Err(e)),
    }
    call.stop_call_recording().await;
    call
}
