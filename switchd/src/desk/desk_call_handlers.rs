//! Desk-to-desk calls over the desk protocol: calling another desk user or a supervisor
//! (SUP-3, 内部呼叫 / 求助), consulting a desk user during a caller's call (AGT-2, 咨询座席),
//! and a supervisor's take-over (SUP-2, 接管). The role and the target are checked here;
//! that the call is the user's (and connected, and listened to for a take-over) by the
//! engine's registry.

use std::sync::Arc;

use rexian_shared::*;

use super::call_handlers::{acd_down, desk_user, free, free_supervisor};
use super::handlers::{call_control, require};
use super::DeskContext;
use crate::cases::Actor;
use crate::engine::desk_leg::{Control, DeskControl};

type Reply = Result<Response, DeskError>;

/// Who talks at a desk and may call or consult another desk.
const CALL_TAKERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin];

pub(super) async fn handle(ctx: &Arc<DeskContext>, actor: &Actor, conn_id: u64, req: Request) -> Reply {
    let user_id = actor.user_id;
    match req {
        Request::CallDesk { user } => {
            require(actor, CALL_TAKERS)?;
            let target = desk_user(ctx, &user).await?;
            not_self(actor, target.id, "user")?;
            not_on_a_call(ctx, user_id).await?;
            if ctx.hub.connections_of(target.id).is_empty() || in_desk_call(ctx, target.id).await? {
                return Err(busy(&target));
            }
            intercom(ctx, actor, conn_id, target.id, target.username.as_ref()).await
        }
        Request::CallSupervisor => {
            require(actor, CALL_TAKERS)?;
            not_on_a_call(ctx, user_id).await?;
            let target = free_supervisor(ctx, user_id).await?.ok_or_else(no_supervisor)?;
            let name = username(ctx, target).await?;
            intercom(ctx, actor, conn_id, target, &name).await
        }
        Request::ConsultAgent { call, agent } => {
            require(actor, CALL_TAKERS)?;
            owns(ctx, call, user_id).await?;
            let target = desk_user(ctx, &agent).await?;
            not_self(actor, target.id, "agent")?;
            if !free(ctx, target.id).await? {
                return Err(busy(&target));
            }
            tracing::info!(call, to = %target.username, by = actor.username, "consulting a desk user");
            consult(ctx, actor, call, target.id).await
        }
        Request::ConsultSupervisor { call } => {
            require(actor, CALL_TAKERS)?;
            owns(ctx, call, user_id).await?;
            let target = free_supervisor(ctx, user_id).await?.ok_or_else(no_supervisor)?;
            tracing::info!(call, to = target, by = actor.username, "asking a supervisor for help");
            consult(ctx, actor, call, target).await
        }
        Request::TakeOver { call } => {
            require(actor, &[Role::Supervisor, Role::Admin])?;
            tracing::info!(call, by = actor.username, "supervisor takes a call over");
            call_control(ctx, |reply| DeskControl::TakeOver { call, by: user_id, reply }).await
        }
        _ => Err(DeskError::new(ErrorCode::Internal, "not a desk-to-desk request")),
    }
}

async fn consult(ctx: &Arc<DeskContext>, actor: &Actor, call: u64, target: i64) -> Reply {
    let (user_id, by) = (actor.user_id, actor.username.clone());
    call_control(ctx, |reply| DeskControl::Control { call, user_id, control: Control::ConsultDesk { user_id: target, by }, reply }).await
}

async fn intercom(ctx: &Arc<DeskContext>, actor: &Actor, conn_id: u64, to: i64, to_name: &str) -> Reply {
    let engine = ctx.calls.as_ref().ok_or_else(acd_down)?;
    let (reply, verdict) = tokio::sync::oneshot::channel();
    let (from, from_name, to_name) = (actor.user_id, actor.username.clone(), to_name.to_owned());
    engine.send(DeskControl::Intercom { from, from_name, conn_id, to, to_name, reply }).map_err(|_| acd_down())?;
    match verdict.await.map_err(|_| acd_down())? {
        Ok(call) => Ok(Response::CallStarted { call }),
        Err(e) => Err(DeskError::new(ErrorCode::Internal, e.to_string())),
    }
}

fn not_self(actor: &Actor, target: i64, field: &str) -> Result<(), DeskError> {
    if target == actor.user_id {
        return Err(DeskError::field(field, "不能呼叫自己 / you cannot call yourself"));
    }
    Ok(())
}

/// A desk-to-desk call is for a user on no call; on a caller's call the way is a consultation.
async fn not_on_a_call(ctx: &DeskContext, user: i64) -> Result<(), DeskError> {
    if in_desk_call(ctx, user).await? {
        return Err(DeskError::new(ErrorCode::InvalidTransition, "通话中请使用咨询求助 / on a call, consult instead (ConsultAgent, ConsultSupervisor)"));
    }
    Ok(())
}

/// The asking user's own call is checked before its target, so a stranger learns nothing of
/// who is free (the registry checks it again when the consultation starts).
async fn owns(ctx: &DeskContext, call: u64, user: i64) -> Result<(), DeskError> {
    let calls = desk_calls(ctx).await?;
    match calls.iter().find(|c| c.call == call && c.callee != crate::engine::desk_leg::INTERNAL) {
        None => Err(DeskError::new(ErrorCode::NotFound, "通话不存在或已结束 / no such call")),
        Some(c) if c.user_id != user => Err(DeskError::new(ErrorCode::Forbidden, "这不是您的通话 / not your call")),
        Some(_) => Ok(()),
    }
}

async fn desk_calls(ctx: &DeskContext) -> Result<Vec<ActiveCall>, DeskError> {
    let engine = ctx.calls.as_ref().ok_or_else(acd_down)?;
    let (reply, calls) = tokio::sync::oneshot::channel();
    engine.send(DeskControl::List { reply }).map_err(|_| acd_down())?;
    calls.await.map_err(|_| acd_down())
}

async fn in_desk_call(ctx: &DeskContext, user: i64) -> Result<bool, DeskError> {
    Ok(desk_calls(ctx).await?.iter().any(|c| c.user_id == user))
}

async fn username(ctx: &DeskContext, id: i64) -> Result<String, DeskError> {
    let user = ctx.cases.store().read(move |db| db.user_by_id(id)).await.map_err(super::handlers::store_err)?;
    Ok(user.map(|u| u.info.username.as_ref().to_owned()).unwrap_or_default())
}

fn busy(target: &UserInfo) -> DeskError {
    DeskError::new(ErrorCode::Busy, format!("{}忙或不在线 / {} is busy or not at a desk", target.display_name, target.username))
}

fn no_supervisor() -> DeskError {
    DeskError::new(ErrorCode::Busy, "没有空闲的班长在线 / no supervisor is free at a desk")
}
