//! The ACD's desk requests: agents log in to the queues and set ready / not ready; supervisors
//! read the seat board.

use rexian_shared::*;

use super::handlers::require;
use super::DeskContext;
use crate::acd::{AcdError, AgentId, AgentState, Command, Membership, NotReadyReason, Snapshot};
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
            return Ok(Response::SeatBoard { board: board(&snapshot) });
        }
        Request::AgentLogin { ready } => {
            let queues = acd.queues().iter().enumerate().map(|(i, q)| Membership { queue: q.clone(), order: i as u8 }).collect();
            let not_ready = (!ready).then_some(NotReadyReason::Other);
            Command::Login { agent, queues, skills: Vec::new(), not_ready }
        }
        Request::AgentLogout => Command::Logout { agent },
        Request::AgentReady => Command::SetReady { agent },
        Request::AgentNotReady { reason } => {
            let reason = NotReadyReason::from_code(&reason)
                .filter(|r| *r != NotReadyReason::MissedOffers)
                .ok_or_else(|| DeskError::field("reason", "示忙原因（reason）应为 break、meeting、training、meal 或 other / unknown reason"))?;
            Command::SetNotReady { agent, reason }
        }
        _ => return Err(DeskError::new(ErrorCode::Internal, "not an ACD request")),
    };
    require(actor, &[Role::Agent, Role::Supervisor])?;
    acd.command(command).await.map_err(acd_err)?;
    Ok(Response::Ok)
}

fn acd_err(e: AcdError) -> DeskError {
    match e {
        AcdError::NotLoggedIn(_) | AcdError::UnknownAgent(_) => DeskError::new(ErrorCode::InvalidTransition, format!("请先签入 / log in to the queues first ({e})")),
        AcdError::Stopped => DeskError::new(ErrorCode::Internal, e.to_string()),
        other => DeskError::new(ErrorCode::InvalidTransition, other.to_string()),
    }
}

fn board(s: &Snapshot) -> SeatBoard {
    let agents = s
        .agents
        .iter()
        .map(|a| SeatAgent {
            user_id: a.agent.0,
            state: a.state.kind().code().to_owned(),
            reason: match a.state {
                AgentState::NotReady { reason } => Some(reason.code().to_owned()),
                _ => None,
            },
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
            longest_wait_secs: q.longest_wait.map(|d| d.as_secs() as u32),
            ready_agents: q.ready_agents,
            logged_in_agents: q.logged_in_agents,
        })
        .collect();
    SeatBoard { serving: s.seats.serving, idle: s.seats.idle, not_ready: s.seats.not_ready, logged_out: s.seats.logged_out, agents, queues }
}
