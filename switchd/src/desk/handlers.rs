//! One function per request: the role check, the call into the services, the event to push.

use crate::engine::desk_leg::{DeskCallError, DeskControl};
use super::{Audience, Connection, DeskContext};
use crate::auth::{actor_of, AuthError};
use crate::cases::{Actor, CaseError};
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::cases::workflow::WorkflowError;
use base64::Engine;
use rexian_shared::*;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

type Reply = Result<Response, DeskError>;

pub async fn handle(ctx: &Arc<DeskContext>, conn: &Arc<Connection>, req: Request) -> Reply {
    let started = Instant::now();
    let op = req.op();
    let span = tracing::info_span!("desk_request", op, conn = conn.id);
    let result = dispatch(ctx, conn, req).instrument(span).await;
    Metrics::inc(&ctx.metrics.desk_requests);
    ctx.metrics.desk_request_micros.fetch_add(started.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
    if let Err(e) = &result {
        Metrics::inc(&ctx.metrics.desk_request_errors);
        tracing::debug!(op, code = ?e.code, "request refused");
    }
    result
}

async fn dispatch(ctx: &Arc<DeskContext>, conn: &Arc<Connection>, req: Request) -> Reply {
    let now = ctx.now();
    match req {
        Request::Login { username, password } => login(ctx, conn, &username, &password).await,
        Request::Resume { token } => {
            let session = ctx.auth.resume(&token, now).await.map_err(auth_err)?;
            set_session(ctx, conn, &session);
            Ok(Response::Session { session })
        }
        other => {
            let session = current_session(conn, now)?;
            authenticated(ctx, conn, &session, other).await
        }
    }
}

async fn login(ctx: &DeskContext, conn: &Arc<Connection>, username: &str, password: &str) -> Reply {
    match ctx.auth.login(username, password, ctx.now()).await {
        Ok(session) => {
            tracing::info!(user = %session.user.username, role = %session.user.role, "login");
            set_session(ctx, conn, &session);
            Ok(Response::Session { session })
        }
        Err(e) => {
            Metrics::inc(&ctx.metrics.desk_logins_failed);
            tracing::warn!(user = username, remote = %conn.remote, "login refused");
            Err(auth_err(e))
        }
    }
}

fn set_session(ctx: &DeskContext, conn: &Arc<Connection>, session: &Session) {
    if let Ok(mut s) = conn.session.lock() {
        *s = Some(session.clone());
    }
    ctx.hub.logged_in(conn, session.user.id);
}

/// The connection's session while it is valid at `now`.
pub(super) fn current_session(conn: &Connection, now: chrono::NaiveDateTime) -> Result<Session, DeskError> {
    let session = conn.session.lock().ok().and_then(|s| s.clone());
    match session {
        None => Err(DeskError::new(ErrorCode::NotAuthenticated, "请先登录 / log in first")),
        Some(s) if s.expires_at <= now => Err(DeskError::new(ErrorCode::SessionExpired, "会话已过期 / session expired")),
        Some(s) => Ok(s),
    }
}

pub(super) fn require(actor: &Actor, roles: &[Role]) -> Result<(), DeskError> {
    if roles.contains(&actor.role) {
        return Ok(());
    }
    Err(DeskError::new(ErrorCode::Forbidden, format!("角色“{}”无权执行此操作 / role {} may not do this", actor.role.zh(), actor.role)))
}

async fn authenticated(ctx: &Arc<DeskContext>, conn: &Arc<Connection>, session: &Session, req: Request) -> Reply {
    let actor = actor_of(&session.user);
    let now = ctx.now();
    let today = now.date();
    let store = ctx.cases.store();
    match req {
        Request::Login { .. } | Request::Resume { .. } => Err(DeskError::new(ErrorCode::Internal, "unreachable")),
        Request::Logout => {
            ctx.auth.logout(&session.token).await.map_err(auth_err)?;
            if let Ok(mut s) = conn.session.lock() {
                *s = None;
            }
            ctx.hub.remove(conn.id);
            Ok(Response::Ok)
        }
        Request::ChangePassword { old_password, new_password } => {
            ctx.auth.change_password(actor.user_id, &old_password, &new_password, now).await.map_err(auth_err)?;
            ctx.hub.end_sessions_of(actor.user_id, Some(conn.id));
            Ok(Response::Ok)
        }
        Request::WhoAmI => Ok(Response::User { user: session.user.clone() }),
        Request::Subscribe => {
            ctx.hub.subscribe(conn, actor.user_id, actor.role, actor.department_id);
            Ok(Response::Ok)
        }
        req @ (Request::ListFlows
        | Request::GetFlow { .. }
        | Request::SaveFlow { .. }
        | Request::SetPromptAudio { .. }
        | Request::ListSurveys
        | Request::SaveSurvey { .. }
        | Request::GetSurveyResults { .. }
        | Request::ListCallbackRequests { .. }
        | Request::FinishCallbackRequest { .. }) => super::ivr_handlers::handle(ctx, &actor, req).await,
        req @ (Request::ListSavedFilters | Request::SaveFilter { .. } | Request::DeleteSavedFilter { .. }) => {
            super::filter_handlers::handle(ctx, &actor, req).await
        }
        req @ (Request::AgentLogin { .. }
        | Request::AgentLogout
        | Request::AgentReady
        | Request::AgentNotReady { .. }
        | Request::GetSeatBoard
        | Request::ForceAgentState { .. }) => {
            super::acd_handlers::handle(ctx, &actor, req).await
        }
        req @ (Request::HoldCall { .. }
        | Request::MuteCall { .. }
        | Request::TransferToAgent { .. }
        | Request::TransferToQueue { .. }
        | Request::TransferToSupervisor { .. }
        | Request::Consult { .. }
        | Request::CompleteTransfer { .. }
        | Request::CancelConsult { .. }
        | Request::ForceHangup { .. }) => super::call_handlers::handle(ctx, &actor, req).await,
        req @ (Request::CallDesk { .. }
        | Request::CallSupervisor
        | Request::ConsultAgent { .. }
        | Request::ConsultSupervisor { .. }
        | Request::TakeOver { .. }) => super::desk_call_handlers::handle(ctx, &actor, conn.id, req).await,
        Request::ListUsers => {
            require(&actor, &[Role::Admin, Role::Supervisor])?;
            let users = store.read(move |db| db.users(now)).await.map_err(store_err)?;
            Ok(Response::Users { users })
        }
        Request::CreateUser { user } => {
            require(&actor, &[Role::Admin])?;
            let user = ctx.auth.create_user(user, &actor.username, now).await.map_err(auth_err)?;
            Ok(Response::User { user })
        }
        Request::SetUserPassword { username, new_password } => {
            require(&actor, &[Role::Admin])?;
            let user_id = ctx.auth.set_password(&username, &new_password, &actor.username, now).await.map_err(auth_err)?;
            ctx.hub.end_sessions_of(user_id, None);
            Ok(Response::Ok)
        }
        Request::SetUserActive { username, active } => {
            require(&actor, &[Role::Admin])?;
            let user_id = ctx.auth.set_active(&username, active, &actor.username, now).await.map_err(auth_err)?;
            if !active {
                ctx.hub.end_sessions_of(user_id, None);
            }
            Ok(Response::Ok)
        }
        Request::UnlockUser { username } => {
            require(&actor, &[Role::Admin])?;
            ctx.auth.unlock(&username, &actor.username, now).await.map_err(auth_err)?;
            Ok(Response::Ok)
        }
        Request::ListDepartments => Ok(Response::Departments { departments: store.read(|db| db.departments()).await.map_err(store_err)? }),
        Request::CreateDepartment { name, parent_id, phone } => {
            require(&actor, &[Role::Admin])?;
            check_name("name", "部门名称", &name)?;
            let by = actor.username.clone();
            let department = store
                .write(move |db| {
                    if let Some(p) = parent_id.filter(|p| !db.department_exists(*p).unwrap_or(false)) {
                        return Ok(Err(DeskError::field("parent_id", format!("上级部门{p}不存在 / parent department not found"))));
                    }
                    let d = db.insert_department(name.trim(), parent_id, phone.as_deref())?;
                    db.audit(now, &by, "create_department", &d.name)?;
                    Ok::<_, StoreError>(Ok(d))
                })
                .await
                .map_err(store_err)??;
            Ok(Response::Department { department })
        }
        Request::ListCategories => Ok(Response::Categories { categories: store.read(|db| db.categories()).await.map_err(store_err)? }),
        Request::CreateCategory { code, name, parent_code } => {
            require(&actor, &[Role::Admin])?;
            let category = crate::demo::category(&code, &name, parent_code.as_deref()).map_err(DeskError::from)?;
            let by = actor.username.clone();
            store
                .write(move |db| {
                    db.insert_category(&category)?;
                    db.audit(now, &by, "create_category", &category.code)
                })
                .await
                .map_err(store_err)?;
            Ok(Response::Ok)
        }
        Request::ListCalendar { year } => {
            let days = store.read(|db| db.calendar_days()).await.map_err(store_err)?;
            Ok(Response::Calendar { days: days.into_iter().filter(|d| chrono::Datelike::year(&d.date) == year).collect() })
        }
        Request::SetCalendarDays { days } => {
            require(&actor, &[Role::Admin])?;
            let by = actor.username.clone();
            store
                .write(move |db| {
                    for d in &days {
                        db.upsert_calendar_day(d)?;
                    }
                    db.audit(now, &by, "set_calendar_days", &format!("{} days", days.len()))
                })
                .await
                .map_err(store_err)?;
            ctx.cases.reload_calendar().await.map_err(case_err)?;
            Ok(Response::Ok)
        }
        Request::CreateTicket { ticket } => {
            let t = ctx.cases.create(&actor, ticket, now).await.map_err(case_err)?;
            Metrics::inc(&ctx.metrics.tickets_created);
            tracing::info!(ticket = %t.no, kind = %t.kind, by = %actor.username, "ticket registered");
            publish_change(ctx, &t, "register", &actor);
            Ok(Response::Ticket { ticket: Box::new(t) })
        }
        Request::GetTicket { no } => Ok(Response::Ticket { ticket: Box::new(ctx.cases.get(&actor, no, today).await.map_err(case_err)?) }),
        Request::SearchTickets { query } => Ok(Response::Tickets { page: ctx.cases.search(&actor, query, now).await.map_err(case_err)? }),
        Request::PreviewAction { no, action } => {
            Ok(Response::Ticket { ticket: Box::new(ctx.cases.preview(&actor, no, action, now).await.map_err(case_err)?) })
        }
        Request::Act { no, action } => {
            let code = action.code();
            let t = ctx.cases.act(&actor, no, action, now).await.map_err(case_err)?;
            Metrics::inc(&ctx.metrics.ticket_actions);
            tracing::info!(ticket = %t.no, action = code, state = %t.state, by = %actor.username, "ticket action");
            publish_change(ctx, &t, code, &actor);
            Ok(Response::Ticket { ticket: Box::new(t) })
        }
        Request::SplitTicket { no, parts } => {
            let nos = ctx.cases.split(&actor, no, parts, now).await.map_err(case_err)?;
            Ok(Response::TicketNos { nos })
        }
        Request::SetReminder { no, at, note } => {
            ctx.cases.set_reminder(&actor, no, at, note, now).await.map_err(case_err)?;
            Ok(Response::Ok)
        }
        Request::ListReminders => Ok(Response::Reminders { reminders: ctx.cases.reminders(&actor).await.map_err(case_err)? }),
        Request::DismissReminder { id } => {
            ctx.cases.dismiss_reminder(&actor, id, now).await.map_err(case_err)?;
            Ok(Response::Ok)
        }
        Request::AddAttachment { no, name, mime, data_base64 } => {
            let attachment = ctx.cases.add_attachment(&actor, no, name, mime, data_base64, now).await.map_err(case_err)?;
            Ok(Response::Attachment { attachment })
        }
        Request::GetAttachment { id } => {
            let (attachment, data) = ctx.cases.attachment(&actor, id).await.map_err(case_err)?;
            Ok(Response::AttachmentData { attachment, data_base64: base64::engine::general_purpose::STANDARD.encode(data) })
        }
        Request::TicketCalls { no } => Ok(Response::TicketCalls { calls: ctx.cases.ticket_calls(&actor, no).await.map_err(case_err)? }),
        Request::GetCallRecording { no, call } => {
            let wav = ctx.cases.call_recording(&actor, no, call).await.map_err(case_err)?;
            Ok(Response::CallRecording { call, wav_base64: base64::engine::general_purpose::STANDARD.encode(wav) })
        }
        Request::DueTickets { within_working_days } => {
            let items = ctx.cases.due(&actor, within_working_days, today).await.map_err(case_err)?;
            let total = items.len() as u64;
            Ok(Response::Tickets { page: TicketPage { items, total, page: 0, page_size: total as u32 } })
        }
        Request::SaveArticle { article } => Ok(Response::Article { article: ctx.cases.save_article(&actor, article, now).await.map_err(case_err)? }),
        Request::GetArticle { id } => Ok(Response::Article { article: ctx.cases.article(&actor, id).await.map_err(case_err)? }),
        Request::SearchArticles { query, limit, include_drafts } => {
            Ok(Response::ArticleHits { hits: ctx.cases.search_articles(&actor, query, limit, include_drafts).await.map_err(case_err)? })
        }
        Request::SuggestAnswers { text } => {
            let (articles, answers) = ctx.cases.suggest_answers(&actor, text).await.map_err(case_err)?;
            Ok(Response::Suggestions { articles, answers })
        }
        Request::GetCallerProfile { phone } => {
            Ok(Response::CallerProfile { profile: ctx.cases.caller_profile(&actor, phone, today).await.map_err(case_err)? })
        }
        Request::GetEnterpriseProfile { credit_code } => {
            Ok(Response::EnterpriseProfile { profile: ctx.cases.enterprise_profile(&actor, credit_code, today).await.map_err(case_err)? })
        }
        Request::AnswerCall { call } => call_control(ctx, |reply| DeskControl::Answer { call, user_id: session.user.id, conn_id: conn.id, reply }).await,
        Request::HangupCall { call } => call_control(ctx, |reply| DeskControl::Hangup { call, user_id: session.user.id, reply }).await,
        Request::Transfer { call, number } => {
            let number = number.as_ref().to_owned();
            call_control(ctx, |reply| DeskControl::Transfer { call, user_id: session.user.id, number, keep: false, reply }).await
        }
        Request::TransferToFlow { call, flow } => {
            if crate::ivr::records::flow_yaml(store, flow.clone(), None).await.is_err() {
                return Err(DeskError::field("flow", format!("语音流程（flow）{flow}不存在 / no IVR flow {flow}")));
            }
            call_control(ctx, |reply| DeskControl::TransferToFlow { call, user_id: session.user.id, flow, reply }).await
        }
        Request::Conference { call, number } => {
            let number = number.as_ref().to_owned();
            call_control(ctx, |reply| DeskControl::Transfer { call, user_id: session.user.id, number, keep: true, reply }).await
        }
        Request::SendDtmf { call, digits } => {
            let valid = |c: char| matches!(c.to_ascii_uppercase(), '0'..='9' | '*' | '#' | 'A'..='D');
            if digits.is_empty() || digits.chars().count() > 32 || !digits.chars().all(valid) {
                return Err(DeskError::field("digits", "按键应为1至32个0-9、*、#、A-D / digits must be 1 to 32 of 0-9 * # A-D"));
            }
            let digits = digits.to_ascii_uppercase();
            call_control(ctx, |reply| DeskControl::Dtmf { call, user_id: session.user.id, digits, reply }).await
        }
        Request::ListCalls => {
            require(&actor, &[Role::Supervisor, Role::Admin])?;
            let engine = ctx.calls.as_ref().ok_or_else(telephony_down)?;
            let (reply, calls) = tokio::sync::oneshot::channel();
            engine.send(DeskControl::List { reply }).map_err(|_| telephony_down())?;
            Ok(Response::Calls { calls: calls.await.map_err(|_| telephony_down())? })
        }
        Request::Snoop { call, mode } => {
            require(&actor, &[Role::Supervisor, Role::Admin])?;
            tracing::info!(call, ?mode, supervisor = %session.user.username, "supervisor joins a call");
            call_control(ctx, |reply| DeskControl::Snoop { call, user_id: session.user.id, conn_id: conn.id, mode, reply }).await
        }
        Request::Dial { number } => {
            let unavailable = || DeskError::new(ErrorCode::Internal, "电话功能不可用 / telephony is not running");
            let engine = ctx.calls.as_ref().ok_or_else(unavailable)?;
            let (reply, verdict) = tokio::sync::oneshot::channel();
            let dial = DeskControl::Dial { number: number.as_ref().to_owned(), user_id: session.user.id, conn_id: conn.id, reply };
            engine.send(dial).map_err(|_| unavailable())?;
            match verdict.await.map_err(|_| unavailable())? {
                Ok(call) => Ok(Response::CallStarted { call }),
                Err(e) => Err(desk_call_error(e)),
            }
        }
        Request::SetCallerFlags { phone, vip, blocked } => {
            ctx.cases.set_caller_flags(&actor, phone, vip, blocked, now).await.map_err(case_err)?;
            Ok(Response::Ok)
        }
    }
}

fn publish_change(ctx: &DeskContext, t: &Ticket, action: &str, actor: &Actor) {
    let departments = t.lead_department.into_iter().chain(t.assisting_departments.iter().copied()).collect();
    let event = Event::TicketChanged { no: t.no.clone(), state: t.state, action: action.into(), actor: actor.username.clone() };
    ctx.hub.publish(event, &Audience { departments });
}

fn check_name(field: &str, zh: &str, s: &str) -> Result<(), DeskError> {
    let n = s.trim().chars().count();
    if n == 0 || n > 100 {
        return Err(DeskError::field(field, format!("{zh}（{field}）应为1至100个字 / {field} must be 1 to 100 characters")));
    }
    Ok(())
}

fn telephony_down() -> DeskError {
    DeskError::new(ErrorCode::Internal, "电话功能不可用 / telephony is not running")
}

/// Hands a desk's call request to the engine and waits for its verdict. Ownership (the call
/// was offered to this user) is checked there, where the calls are.
pub(super) async fn call_control(
    ctx: &Arc<DeskContext>,
    make: impl FnOnce(tokio::sync::oneshot::Sender<Result<(), DeskCallError>>) -> DeskControl,
) -> Reply {
    let unavailable = || DeskError::new(ErrorCode::Internal, "电话功能不可用 / telephony is not running");
    let engine = ctx.calls.as_ref().ok_or_else(unavailable)?;
    let (reply, verdict) = tokio::sync::oneshot::channel();
    engine.send(make(reply)).map_err(|_| unavailable())?;
    match verdict.await.map_err(|_| unavailable())? {
        Ok(()) => Ok(Response::Ok),
        Err(e) => Err(desk_call_error(e)),
    }
}

fn desk_call_error(e: DeskCallError) -> DeskError {
    let code = match e {
        DeskCallError::NotYours => ErrorCode::Forbidden,
        DeskCallError::AlreadyAnswered => ErrorCode::Conflict,
        DeskCallError::NotFound => ErrorCode::NotFound,
        DeskCallError::NoTrunk | DeskCallError::NoMedia => ErrorCode::Internal,
        DeskCallError::NotConnected | DeskCallError::NotQueued | DeskCallError::NotListening | DeskCallError::DeskToDesk => ErrorCode::InvalidTransition,
    };
    DeskError::new(code, e.to_string())
}

pub(crate) fn store_err(e: StoreError) -> DeskError {
    if let StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) = &e {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            return DeskError::new(ErrorCode::Conflict, "已存在或与现有数据冲突 / already exists or conflicts with existing data");
        }
    }
    tracing::error!(error = %e, "store failure");
    DeskError::new(ErrorCode::Internal, "服务器内部错误，已记录 / internal error, logged")
}

fn case_err(e: CaseError) -> DeskError {
    match e {
        CaseError::Workflow(w) => DeskError::new(workflow_error_code(&w), w.to_string()),
        CaseError::Invalid { field, message } => DeskError::field(field, message),
        CaseError::TicketNotFound(_) | CaseError::NotFound(_) => DeskError::new(ErrorCode::NotFound, e.to_string()),
        CaseError::Forbidden(m) => DeskError::new(ErrorCode::Forbidden, m),
        CaseError::TooLarge(_) => DeskError::new(ErrorCode::TooLarge, e.to_string()),
        CaseError::Store(s) => store_err(s),
    }
}

fn auth_err(e: AuthError) -> DeskError {
    let code = match &e {
        AuthError::BadCredentials => ErrorCode::BadCredentials,
        AuthError::Locked(_) => ErrorCode::AccountLocked,
        AuthError::SessionExpired => ErrorCode::SessionExpired,
        AuthError::WeakPassword(_) => ErrorCode::WeakPassword,
        AuthError::Conflict(_) => ErrorCode::Conflict,
        AuthError::Invalid(v) => return DeskError::field(v.field, e.to_string()),
        AuthError::NoSuchUser(_) => ErrorCode::NotFound,
        AuthError::Store(_) | AuthError::Hash(_) => {
            tracing::error!(error = %e, "auth failure");
            ErrorCode::Internal
        }
    };
    DeskError::new(code, e.to_string())
}

fn workflow_error_code(w: &WorkflowError) -> ErrorCode {
    match w {
        WorkflowError::Forbidden { .. } => ErrorCode::Forbidden,
        _ => ErrorCode::InvalidTransition,
    }
}
