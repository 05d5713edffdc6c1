//! The ACD's desk requests: agents log in to the queues and set ready / not ready; supervisors
//! read the seat board.

use rexian_shared::*;

use super::handlers::require;
use super::DeskContext;
use crate::acd::{AcdError, AgentId, Command, Membership, NotReadyReason};
use crate::cases::Actor;

type Reply = Result<Response, DeskError>;

pub(super) async fn handle(ctx: &DeskContext, actor: &Actor, req: Request) -> Reply {
    let Some(acd) = ctx.acd.as_ref() else {
        return Err(DeskError::new(ErrorCode::Internal, "排队服务不可用 / the ACD is not running"));
    };
    let agent = AgentId(actor.user_id);
    let command = match req {
        Request::GetSeatBoard => {
            require(actor, &[Role::Admin, Role::Supervisor])?;
            let snapshot = acd.snapshot().await.ok_or_else(|| acd_err(AcdError::Stopped))?;
            return Ok(Response::SeatBoard { board: crate::acd::actor::seat_board(&snapshot) });
        }
        Request::ForceAgentState { user_id, state, reason } => {
            require(actor, &[Role::Admin, Role::Supervisor])?;
            let (target, by) = (AgentId(user_id), agent);
            let command = match state.as_str() {
                "ready" => Command::ForceReady { agent: target, by },
                "logged_out" => Command::ForceLogout { agent: target, by },
                "not_ready" => Command::ForceNotReady { agent: target, by, reason: not_ready_reason(reason.as_deref().unwrap_or("other"))? },
                _ => return Err(DeskError::field("state", "座席状态（state）应为 ready、not_ready 或 logged_out / state must be ready, not_ready or logged_out")),
            };
            tracing::info!(agent = user_id, state, by = actor.username, "supervisor sets an agent's state");
            acd.command(command).await.map_err(acd_err)?;
            return Ok(Response::Ok);
        }
        Request::AgentLogin { ready } => {
            // Queues that name their agents take only those; the others take everyone.
            let serves = |agents: &[String]| agents.is_empty() || agents.iter().any(|a| *a == actor.username);
            let queues = acd.queues().iter().enumerate().filter(|(_, (_, rules))| serves(&rules.agents));
            let queues = queues.map(|(i, (q, _))| Membership { queue: q.clone(), order: i as u8 }).collect();
            let not_ready = (!ready).then_some(NotReadyReason::Other);
            Command::Login { agent, queues, skills: Vec::new(), not_ready }
        }
        Request::AgentLogout => Command::Logout { agent },
        Request::AgentReady => Command::SetReady { agent },
        Request::AgentNotReady { reason } => Command::SetNotReady { agent, reason: not_ready_reason(&reason)? },
        _ => return Err(DeskError::new(ErrorCode::Internal, "not an ACD request")),
    };
    require(actor, &[Role::Agent, Role::Supervisor])?;
    acd.command(command).await.map_err(acd_err)?;
    Ok(Response::Ok)
}

/// A reason a person may give (the automatic `missed_offers` is the ACD's own).
fn not_ready_reason(code: &str) -> Result<NotReadyReason, DeskError> {
    NotReadyReason::from_code(code)
        .filter(|r| *r != NotReadyReason::MissedOffers)
        .ok_or_else(|| DeskError::field("reason", "示忙原因（reason）应为 break、meeting、training、meal 或 other / unknown reason"))
}

fn acd_err(e: AcdError) -> DeskError {
    match e {
        AcdError::NotLoggedIn(_) | AcdError::UnknownAgent(_) => DeskError::new(ErrorCode::InvalidTransition, format!("请先签入 / log in to the queues first ({e})")),
        AcdError::Stopped => DeskError::new(ErrorCode::Internal, e.to_string()),
        other => DeskError::new(ErrorCode::InvalidTransition, other.to_string()),
    }
}
