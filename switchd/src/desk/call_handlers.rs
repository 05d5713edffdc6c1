//! Agent call control over the desk protocol (AGT-1, AGT-2, SUP-2): hold, mute, transfers to
//! an agent, a queue or a supervisor, the consultation of an attended transfer, and a
//! supervisor's forced hang-up. The role is checked here; that the call is the user's (and
//! connected, and from a queue when it goes to the ACD) by the engine's registry.

use rexian_shared::*;

use super::handlers::{call_control, require, store_err};
use super::DeskContext;
use crate::acd::StateKind;
use crate::cases::Actor;
use crate::engine::desk_leg::{Control, DeskControl, Handover};

type Reply = Result<Response, DeskError>;

/// Who takes calls at a desk and may hold, mute and transfer them.
const CALL_TAKERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin];

pub(super) async fn handle(ctx: &std::sync::Arc<DeskContext>, actor: &Actor, req: Request) -> Reply {
    let user_id = actor.user_id;
    let control = |call: u64, control: Control| move |reply| DeskControl::Control { call, user_id, control, reply };
    match req {
        Request::HoldCall { call, hold } => {
            require(actor, CALL_TAKERS)?;
            call_control(ctx, control(call, Control::Hold(hold))).await
        }
        Request::MuteCall { call, mute } => {
            require(actor, CALL_TAKERS)?;
            call_control(ctx, control(call, Control::Mute(mute))).await
        }
        Request::Consult { call, number } => {
            require(actor, CALL_TAKERS)?;
            call_control(ctx, control(call, Control::Consult(number.as_ref().to_owned()))).await
        }
        Request::CompleteTransfer { call } => {
            require(actor, CALL_TAKERS)?;
            call_control(ctx, control(call, Control::CompleteConsult)).await
        }
        Request::CancelConsult { call } => {
            require(actor, CALL_TAKERS)?;
            call_control(ctx, control(call, Control::CancelConsult)).await
        }
        Request::TransferToAgent { call, agent } => {
            require(actor, CALL_TAKERS)?;
            let target = desk_user(ctx, &agent).await?;
            if target.id == user_id {
                return Err(DeskError::field("agent", "不能转给自己 / you cannot transfer a call to yourself"));
            }
            if !free(ctx, target.id).await? {
                return Err(DeskError::new(ErrorCode::Busy, format!("座席{}忙或不在线 / {} is busy or not at a desk", target.display_name, target.username)));
            }
            tracing::info!(call, to = %target.username, by = actor.username, "transfer to an agent");
            call_control(ctx, |reply| DeskControl::Handover { call, user_id, to: Handover::Agent(target.id), reply }).await
        }
        Request::TransferToSupervisor { call } => {
            require(actor, CALL_TAKERS)?;
            let Some(target) = free_supervisor(ctx, user_id).await? else {
                return Err(DeskError::new(ErrorCode::Busy, "没有空闲的班长在线 / no supervisor is free at a desk"));
            };
            tracing::info!(call, to = target, by = actor.username, "transfer to a supervisor");
            call_control(ctx, |reply| DeskControl::Handover { call, user_id, to: Handover::Agent(target), reply }).await
        }
        Request::TransferToQueue { call, queue } => {
            require(actor, CALL_TAKERS)?;
            let acd = ctx.acd.as_ref().ok_or_else(acd_down)?;
            if acd.rules(&queue).is_none() {
                return Err(DeskError::field("queue", format!("没有队列“{queue}” / no queue {queue}")));
            }
            let board = acd.snapshot().await.ok_or_else(acd_down)?;
            if !board.queues.iter().any(|q| q.queue.as_str() == queue && q.logged_in_agents > 0) {
                return Err(DeskError::new(ErrorCode::Busy, format!("队列“{queue}”无座席签入 / nobody is logged in to queue {queue}")));
            }
            tracing::info!(call, queue, by = actor.username, "transfer to a queue");
            call_control(ctx, |reply| DeskControl::Handover { call, user_id, to: Handover::Queue(queue), reply }).await
        }
        Request::ForceHangup { call } => {
            require(actor, &[Role::Supervisor, Role::Admin])?;
            tracing::info!(call, by = actor.username, "supervisor ends a call");
            call_control(ctx, |reply| DeskControl::ForceHangup { call, by: user_id, reply }).await
        }
        _ => Err(DeskError::new(ErrorCode::Internal, "not a call-control request")),
    }
}

/// The active user `who` names: a user name, or an agent number (工号).
pub(super) async fn desk_user(ctx: &DeskContext, who: &str) -> Result<UserInfo, DeskError> {
    let now = ctx.now();
    let users = ctx.cases.store().read(move |db| db.users(now)).await.map_err(store_err)?;
    let who = who.trim();
    users
        .into_iter()
        .find(|u| u.active && (u.username.as_ref() == who || u.agent_no.as_ref().is_some_and(|n| n.as_ref() == who)))
        .ok_or_else(|| DeskError::new(ErrorCode::NotFound, format!("没有座席“{who}” / no agent {who}")))
}

/// Whether desk user `user` could take a call now: at a desk, in no desk call, and ready when
/// logged in to the queues.
pub(super) async fn free(ctx: &DeskContext, user: i64) -> Result<bool, DeskError> {
    if ctx.hub.connections_of(user).is_empty() {
        return Ok(false);
    }
    let engine = ctx.calls.as_ref().ok_or_else(acd_down)?;
    let (reply, calls) = tokio::sync::oneshot::channel();
    engine.send(DeskControl::List { reply }).map_err(|_| acd_down())?;
    if calls.await.map_err(|_| acd_down())?.iter().any(|c| c.user_id == user) {
        return Ok(false);
    }
    let state = match ctx.acd.as_ref() {
        Some(acd) => acd.agent_state(user).await.map(|s| s.kind()),
        None => None,
    };
    Ok(matches!(state, None | Some(StateKind::Ready | StateKind::LoggedOut)))
}

/// The supervisor a caller goes to (呼叫班长): an active supervisor at a desk and free —
/// one ready in the queues first (the ACD keeps their state), else one not taking queue
/// calls; the lowest user id among equals. Never the asking user.
pub(super) async fn free_supervisor(ctx: &DeskContext, asking: i64) -> Result<Option<i64>, DeskError> {
    let now = ctx.now();
    let users = ctx.cases.store().read(move |db| db.users(now)).await.map_err(store_err)?;
    let mut free_ones = Vec::new();
    for u in users.iter().filter(|u| u.active && u.role == Role::Supervisor && u.id != asking) {
        if !free(ctx, u.id).await? {
            continue;
        }
        let ready = match ctx.acd.as_ref() {
            Some(acd) => acd.agent_state(u.id).await.is_some_and(|s| s.kind() == StateKind::Ready),
            None => false,
        };
        free_ones.push((u.id, ready));
    }
    Ok(pick_supervisor(&free_ones))
}

/// Among free supervisors `(user id, ready in the queues)`: one ready in the queues first,
/// then the lowest user id.
fn pick_supervisor(free: &[(i64, bool)]) -> Option<i64> {
    free.iter().min_by_key(|(id, ready)| (!ready, *id)).map(|(id, _)| *id)
}

pub(super) fn acd_down() -> DeskError {
    DeskError::new(ErrorCode::Internal, "电话功能不可用 / telephony is not running")
}

#[cfg(test)]
mod tests {
    use super::pick_supervisor;

    #[test]
    fn a_supervisor_ready_in_the_queues_is_called_first_then_the_lowest_id() {
        assert_eq!(pick_supervisor(&[]), None);
        assert_eq!(pick_supervisor(&[(7, false), (4, false)]), Some(4));
        assert_eq!(pick_supervisor(&[(3, false), (9, true), (5, true)]), Some(5));
    }
}
