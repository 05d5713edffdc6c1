//! [`Cases`]: what a desk request may do to tickets, articles and caller profiles. Each method
//! takes the acting user and the current time, checks the user's role and department, and runs
//! its reads and writes in one store transaction.

use super::deadline::{self, DeadlineRules};
use super::workflow::{self, Relation, WorkflowError};
use crate::calendar::Calendar;
use crate::store::{Db, Store, StoreError, Visibility};
use base64::Engine;
use chrono::{NaiveDate, NaiveDateTime};
use rexian_shared::*;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// The user a request acts for.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub department_id: Option<i64>,
}

impl Actor {
    /// The automatic service, as ticket histories name it.
    pub fn ivr() -> Actor {
        Actor { user_id: 0, username: "ivr".into(), role: Role::Agent, department_id: None }
    }

    /// Department handlers see only their department's tickets.
    pub fn visibility(&self) -> Visibility {
        match self.role {
            Role::Handler => Visibility(Some(self.department_id.unwrap_or(-1))),
            _ => Visibility(None),
        }
    }

    /// A handler's department, whose tickets' reminders concern them too.
    fn handler_department(&self) -> Option<i64> {
        self.department_id.filter(|_| self.role == Role::Handler)
    }

    fn is_hotline_staff(&self) -> bool {
        matches!(self.role, Role::Agent | Role::Supervisor | Role::Admin)
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaseError {
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// A field of the request is invalid.
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    /// No such ticket, or not one this user may see.
    #[error("工单{0}不存在或无权查看 / ticket {0} not found")]
    TicketNotFound(String),
    /// Something else that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The user's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// An upload exceeds the limit.
    #[error("附件超过{0}字节上限 / attachment exceeds {0} bytes")]
    TooLarge(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<InvalidValue> for CaseError {
    fn from(e: InvalidValue) -> Self {
        CaseError::Invalid { field: e.field, message: e.to_string() }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> CaseError {
    CaseError::Invalid { field, message: message.into() }
}

/// Size and type limits of uploads; the `[limits]` section of the config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub attachment_max_bytes: u64,
    pub attachment_types: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            attachment_max_bytes: 10 * 1024 * 1024,
            attachment_types: [
                "application/pdf",
                "image/jpeg",
                "image/png",
                "image/tiff",
                "audio/wav",
                "text/plain",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

#[derive(Clone)]
pub struct Cases {
    store: Store,
    calendar: Arc<RwLock<Calendar>>,
    rules: Arc<DeadlineRules>,
    limits: Arc<Limits>,
    attachments_dir: Arc<PathBuf>,
    /// Recordings' paths in the store are relative to it.
    data_dir: Arc<PathBuf>,
}

impl Cases {
    pub fn new(store: Store, calendar: Calendar, rules: DeadlineRules, limits: Limits, data_dir: PathBuf) -> Self {
        Self {
            store,
            calendar: Arc::new(RwLock::new(calendar)),
            rules: Arc::new(rules),
            limits: Arc::new(limits),
            attachments_dir: Arc::new(data_dir.join("attachments")),
            data_dir: Arc::new(data_dir),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn calendar(&self) -> Calendar {
        self.calendar.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Reloads the calendar after an administrator changed it.
    pub async fn reload_calendar(&self) -> Result<(), CaseError> {
        let days = self.store.read(|db| db.calendar_days()).await?;
        if let Ok(mut cal) = self.calendar.write() {
            *cal = Calendar::new(days);
        }
        Ok(())
    }

    // ------------------------------------------------------------------ intake

    /// Registers a new ticket (TKT-1, TKT-2); the reply follows the durable commit.
    pub async fn create(&self, actor: &Actor, new: NewTicket, now: NaiveDateTime) -> Result<Ticket, CaseError> {
        if !actor.is_hotline_staff() {
            return Err(CaseError::Forbidden("只有话务员、班长和管理员可以登记工单 / only hotline staff register tickets".into()));
        }
        validate_new(&new)?;
        let mut ticket = draft_ticket(new, &actor.username, now);
        deadline::on_create(&self.rules, &self.calendar(), &mut ticket);
        let actor = actor.clone();
        self.store
            .write(move |db| {
                if let Some(code) = &ticket.category_code {
                    if !db.category_exists(code)? {
                        return Err(invalid("category_code", format!("分类代码{code}不存在 / unknown category {code}")));
                    }
                }
                ticket.no = db.next_ticket_no(now.date())?;
                let id = db.insert_ticket(&ticket, now)?;
                let entry = history(&actor, now, "register", None, ticket.state, "登记 / registered");
                db.append_history(id, &entry)?;
                ticket.history.push(entry);
                Ok(ticket)
            })
            .await
    }

    /// Splits one intake into linked new tickets (e.g. a complaint and a report).
    pub async fn split(&self, actor: &Actor, no: TicketNo, parts: Vec<SplitPart>, now: NaiveDateTime) -> Result<Vec<TicketNo>, CaseError> {
        if !actor.is_hotline_staff() {
            return Err(CaseError::Forbidden("只有话务员和班长可以拆分工单 / only hotline staff split tickets".into()));
        }
        if parts.len() < 2 || parts.len() > 10 {
            return Err(invalid("parts", "拆分须为2至10张工单 / split into 2 to 10 tickets"));
        }
        for p in &parts {
            check_text("summary", "摘要", &p.summary, 1, 200)?;
        }
        let (actor, cal, rules) = (actor.clone(), self.calendar(), self.rules.clone());
        self.store
            .write(move |db| {
                let (orig_id, orig) = load(db, &no, Visibility(None))?;
                let mut nos = Vec::new();
                for part in parts {
                    let mut t = orig.clone();
                    t.kind = part.kind;
                    t.summary = part.summary;
                    t.content = part.content;
                    t.state = TicketState::Registered;
                    t.created_at = now;
                    t.created_by = actor.username.clone();
                    t.history.clear();
                    t.links.clear();
                    t.lead_department = None;
                    t.assisting_departments.clear();
                    t.verification_code = Some(verification_code());
                    deadline::on_create(&rules, &cal, &mut t);
                    t.no = db.next_ticket_no(now.date())?;
                    let id = db.insert_ticket(&t, now)?;
                    db.append_history(id, &history(&actor, now, "register", None, t.state, &format!("由{no}拆分 / split from {no}")))?;
                    db.add_link(id, &no, "split_from")?;
                    db.add_link(orig_id, &t.no, "split_into")?;
                    nos.push(t.no);
                }
                let note = format!("拆分为 / split into {}", nos.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
                db.append_history(orig_id, &history(&actor, now, "split", Some(orig.state), orig.state, &note))?;
                Ok(nos)
            })
            .await
    }

    // ------------------------------------------------------------------ reading

    pub async fn get(&self, actor: &Actor, no: TicketNo, today: NaiveDate) -> Result<Ticket, CaseError> {
        let vis = actor.visibility();
        let (_, t) = self.store.read(move |db| load(db, &no, vis)).await?;
        Ok(present(t, actor, today, &self.calendar()))
    }

    pub async fn search(&self, actor: &Actor, query: TicketQuery, now: NaiveDateTime) -> Result<TicketPage, CaseError> {
        let vis = actor.visibility();
        let mut page = self.store.read(move |db| Ok::<_, CaseError>(db.search_tickets(&query, vis, now)?)).await?;
        mask_summaries(actor, &mut page.items);
        Ok(page)
    }

    /// Open tickets due within `days` working days, overdue ones included (TKT-5).
    pub async fn due(&self, actor: &Actor, days: u32, today: NaiveDate) -> Result<Vec<TicketSummary>, CaseError> {
        let until = self.calendar().add_working_days(today, days.min(60)).date;
        let vis = actor.visibility();
        let mut items = self.store.read(move |db| Ok::<_, CaseError>(db.due_tickets(until, vis, today)?)).await?;
        mask_summaries(actor, &mut items);
        Ok(items)
    }

    // ------------------------------------------------------------------ workflow

    /// Applies one workflow action (TKT-4) with its deadline effects (TKT-5).
    pub async fn act(&self, actor: &Actor, no: TicketNo, action: TicketAction, now: NaiveDateTime) -> Result<Ticket, CaseError> {
        validate_action(&action)?;
        let (actor2, cal, rules) = (actor.clone(), self.calendar(), self.rules.clone());
        let t = self
            .store
            .write(move |db| {
                let (id, mut t) = load(db, &no, actor2.visibility())?;
                let from = t.state;
                let relation = relation(&actor2, &t);
                let to = workflow::check(actor2.role, relation, from, t.kind, &action)?;
                apply_effects(db, id, &mut t, &action)?;
                deadline::on_action(&rules, &cal, &mut t, &action, now.date())
                    .map_err(|e| invalid("action", e.0))?;
                t.state = to;
                db.update_ticket(id, &t, now)?;
                if let TicketAction::MergeInto { target } = &action {
                    let (target_id, _) = load(db, target, Visibility(None))?;
                    db.add_link(id, target, "merged_into")?;
                    db.add_link(target_id, &t.no, "merged_from")?;
                    db.append_history(target_id, &history(&actor2, now, "merged_from", None, to, t.no.as_ref()))?;
                }
                db.append_history(id, &history(&actor2, now, action.code(), Some(from), to, &action_note(&action)))?;
                Ok::<_, CaseError>(load(db, &t.no, Visibility(None))?.1)
            })
            .await?;
        Ok(present(t, actor, now.date(), &self.calendar()))
    }

    /// The ticket as `action` would leave it (state, departments, deadline), checked as `act`
    /// checks it, nothing stored: what a dispatcher confirms.
    pub async fn preview(&self, actor: &Actor, no: TicketNo, action: TicketAction, now: NaiveDateTime) -> Result<Ticket, CaseError> {
        validate_action(&action)?;
        let (actor2, cal, rules) = (actor.clone(), self.calendar(), self.rules.clone());
        let t = self
            .store
            .read(move |db| {
                let (_, mut t) = load(db, &no, actor2.visibility())?;
                let to = workflow::check(actor2.role, relation(&actor2, &t), t.state, t.kind, &action)?;
                deadline::on_action(&rules, &cal, &mut t, &action, now.date()).map_err(|e| invalid("action", e.0))?;
                t.state = to;
                if let TicketAction::Dispatch { lead_department, assisting_departments, .. } = &action {
                    set_departments(db, &mut t, *lead_department, assisting_departments)?;
                }
                Ok::<_, CaseError>(t)
            })
            .await?;
        Ok(present(t, actor, now.date(), &self.calendar()))
    }

    /// Sets a reminder (催办) to fire at `at`.
    pub async fn set_reminder(&self, actor: &Actor, no: TicketNo, at: NaiveDateTime, note: String, now: NaiveDateTime) -> Result<(), CaseError> {
        if actor.role == Role::Handler {
            return Err(CaseError::Forbidden("承办人不能设置催办 / handlers cannot set reminders".into()));
        }
        check_text("note", "催办内容", &note, 1, 500)?;
        let actor = actor.clone();
        self.store
            .write(move |db| {
                let (id, t) = load(db, &no, Visibility(None))?;
                if t.state.is_final() {
                    return Err(CaseError::Workflow(WorkflowError::InvalidTransition { state: t.state, action: "remind" }));
                }
                db.insert_reminder(id, at, &note, &actor.username)?;
                let text = format!("{} 催办：{note}", at.format("%Y-%m-%d %H:%M"));
                db.append_history(id, &history(&actor, now, "remind", Some(t.state), t.state, &text))?;
                Ok(())
            })
            .await
    }

    /// The reminders on this user's due list (TKT-5): not dismissed, fired or to come.
    pub async fn reminders(&self, actor: &Actor) -> Result<Vec<Reminder>, CaseError> {
        let (user, department) = (actor.username.clone(), actor.handler_department());
        Ok(self.store.read(move |db| db.open_reminders(&user, department)).await?)
    }

    /// Takes a fired reminder off this user's due list (知道了).
    pub async fn dismiss_reminder(&self, actor: &Actor, id: i64, now: NaiveDateTime) -> Result<(), CaseError> {
        let (user, department) = (actor.username.clone(), actor.handler_department());
        if self.store.write(move |db| db.dismiss_reminder(id, &user, department, now)).await? {
            return Ok(());
        }
        Err(CaseError::NotFound(format!("催办{id}不存在、未到期或已处理 / reminder {id} not found, not due or dismissed")))
    }

    /// The caller rated call record `call` (the post-call satisfaction flow): the rating is
    /// kept on the call record and noted in the history of every ticket taken on the call.
    /// Returns the tickets noted.
    pub async fn note_caller_rating(&self, call: i64, satisfaction: Satisfaction, now: NaiveDateTime) -> Result<Vec<TicketNo>, CaseError> {
        self.store
            .write(move |db| {
                db.set_call_satisfaction(call, satisfaction)?;
                let tickets = db.tickets_of_call(&call.to_string())?;
                let note = format!("来电人对服务的评价：{} / caller's rating: {}", satisfaction.zh(), satisfaction.en());
                let ivr = Actor::ivr();
                for (id, _, state) in &tickets {
                    db.append_history(*id, &history(&ivr, now, "caller_rating", Some(*state), *state, &note))?;
                }
                Ok(tickets.into_iter().map(|(_, no, _)| no).collect())
            })
            .await
    }

    // ------------------------------------------------------------------ attachments

    pub async fn add_attachment(
        &self,
        actor: &Actor,
        no: TicketNo,
        name: String,
        mime: String,
        data_base64: String,
        now: NaiveDateTime,
    ) -> Result<AttachmentInfo, CaseError> {
        let data = base64::engine::general_purpose::STANDARD
            .decode(data_base64.as_bytes())
            .map_err(|_| invalid("data_base64", "附件内容不是有效的Base64 / attachment is not valid base64"))?;
        self.check_attachment(&name, &mime, &data)?;
        let vis = actor.visibility();
        let no2 = no.clone();
        let (ticket_id, _) = self.store.read(move |db| load(db, &no2, vis)).await?;
        let sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, &data).as_ref());
        let rel = format!("{}/{}-{}", no, &sha256[..16], sanitize_file_name(&name));
        let path = self.attachments_dir.join(&rel);
        write_durably(&path, &data).await?;
        let info = AttachmentInfo { id: 0, name, mime, size: data.len() as u64, sha256 };
        let actor = actor.clone();
        self.store
            .write(move |db| {
                let mut info = info;
                info.id = db.insert_attachment(ticket_id, &info, &rel, now, &actor.username)?;
                let t = load(db, &no, Visibility(None))?.1;
                let note = format!("{}（{}字节）", info.name, info.size);
                db.append_history(ticket_id, &history(&actor, now, "attach", Some(t.state), t.state, &note))?;
                Ok(info)
            })
            .await
    }

    fn check_attachment(&self, name: &str, mime: &str, data: &[u8]) -> Result<(), CaseError> {
        check_text("name", "附件名称", name, 1, 200)?;
        if data.len() as u64 > self.limits.attachment_max_bytes {
            return Err(CaseError::TooLarge(self.limits.attachment_max_bytes));
        }
        if !self.limits.attachment_types.iter().any(|t| t == mime) {
            return Err(invalid("mime", format!("不支持的附件类型{mime} / attachment type not allowed")));
        }
        if !content_matches_type(mime, data) {
            return Err(invalid("mime", format!("附件内容与类型{mime}不符 / content does not match its type")));
        }
        Ok(())
    }

    pub async fn attachment(&self, actor: &Actor, id: i64) -> Result<(AttachmentInfo, Vec<u8>), CaseError> {
        let vis = actor.visibility();
        let found = self
            .store
            .read(move |db| {
                let Some((info, path, no)) = db.attachment(id)? else { return Ok(None) };
                Ok::<_, CaseError>(db.ticket(&no, vis)?.map(|_| (info, path)))
            })
            .await?;
        let (info, rel) = found.ok_or_else(|| CaseError::NotFound(format!("附件{id}不存在 / attachment {id} not found")))?;
        let data = tokio::fs::read(self.attachments_dir.join(rel)).await.map_err(StoreError::from)?;
        Ok((info, data))
    }

    /// The calls a ticket is linked to. Hotline staff only: recordings carry the caller's voice,
    /// which departments do not get (they see the number masked).
    pub async fn ticket_calls(&self, actor: &Actor, no: TicketNo) -> Result<Vec<CallSummary>, CaseError> {
        self.check_may_hear_calls(actor)?;
        self.store.read(move |db| {
            let (id, _) = load(db, &no, Visibility(None))?;
            Ok::<_, CaseError>(db.ticket_call_summaries(id)?)
        })
        .await
    }

    /// The recording of a call linked to ticket `no`: the whole-call one if there is one.
    pub async fn call_recording(&self, actor: &Actor, no: TicketNo, call: i64) -> Result<Vec<u8>, CaseError> {
        self.check_may_hear_calls(actor)?;
        let path = self
            .store
            .read(move |db| {
                let (_, t) = load(db, &no, Visibility(None))?;
                let record = t.call_ids.contains(&call.to_string()).then(|| db.call(call)).transpose()?.flatten();
                let mut recordings = record.map(|r| r.recordings).unwrap_or_default();
                recordings.sort_by_key(|r| r.kind != "call");
                Ok::<_, CaseError>(recordings.into_iter().next().map(|r| r.path))
            })
            .await?
            .ok_or_else(|| CaseError::NotFound(format!("通话{call}没有录音 / call {call} has no recording")))?;
        Ok(tokio::fs::read(self.data_dir.join(path)).await.map_err(StoreError::from)?)
    }

    fn check_may_hear_calls(&self, actor: &Actor) -> Result<(), CaseError> {
        if actor.is_hotline_staff() {
            return Ok(());
        }
        Err(CaseError::Forbidden("只有热线人员可以收听通话录音 / only hotline staff hear call recordings".into()))
    }

    // ------------------------------------------------------------------ knowledge base, callers

    pub async fn save_article(&self, actor: &Actor, a: ArticleInput, now: NaiveDateTime) -> Result<Article, CaseError> {
        if !matches!(actor.role, Role::Admin | Role::Supervisor) {
            return Err(CaseError::Forbidden("只有班长和管理员可以编辑知识库 / only supervisors and administrators edit articles".into()));
        }
        check_text("title", "标题", &a.title, 1, 200)?;
        check_text("body", "正文", &a.body, 1, 200_000)?;
        let by = actor.username.clone();
        self.store
            .write(move |db| {
                let id = db.save_article(&a, now, &by)?.ok_or_else(|| CaseError::NotFound("文章不存在 / article not found".into()))?;
                db.article(id)?.ok_or_else(|| CaseError::NotFound("文章不存在 / article not found".into()))
            })
            .await
    }

    pub async fn article(&self, actor: &Actor, id: i64) -> Result<Article, CaseError> {
        let a = self.store.read(move |db| Ok::<_, CaseError>(db.article(id)?)).await?;
        a.filter(|a| a.published || matches!(actor.role, Role::Admin | Role::Supervisor))
            .ok_or_else(|| CaseError::NotFound(format!("文章{id}不存在 / article {id} not found")))
    }

    pub async fn search_articles(&self, actor: &Actor, query: String, limit: u32, include_drafts: bool) -> Result<Vec<ArticleHit>, CaseError> {
        check_text("query", "检索词", &query, 1, 200)?;
        let drafts = include_drafts && matches!(actor.role, Role::Admin | Role::Supervisor);
        self.store.read(move |db| Ok::<_, CaseError>(db.search_articles(&query, limit, drafts)?)).await
    }

    /// Reference answers for what an agent is typing: the best few articles and, for staff
    /// who see all tickets, earlier answered consultations.
    pub async fn suggest_answers(&self, actor: &Actor, text: String) -> Result<(Vec<ArticleHit>, Vec<EarlierAnswer>), CaseError> {
        check_text("text", "内容", &text, 1, 2000)?;
        let all_tickets = actor.visibility().0.is_none();
        self.store
            .read(move |db| {
                let answers = if all_tickets { db.suggest_answers(&text, 3)? } else { Vec::new() };
                Ok::<_, CaseError>((db.suggest_articles(&text, 3)?, answers))
            })
            .await
    }

    pub async fn caller_profile(&self, actor: &Actor, phone: PhoneNumber, today: NaiveDate) -> Result<CallerProfile, CaseError> {
        if actor.role == Role::Handler {
            return Err(CaseError::Forbidden("承办人不能查看来电人档案 / handlers cannot read caller profiles".into()));
        }
        self.store.read(move |db| Ok::<_, CaseError>(db.caller_profile(&phone, Visibility(None), today)?)).await
    }

    pub async fn enterprise_profile(&self, actor: &Actor, code: CreditCode, today: NaiveDate) -> Result<EnterpriseProfile, CaseError> {
        let vis = actor.visibility();
        let mut p = self.store.read(move |db| Ok::<_, CaseError>(db.enterprise_profile(&code, vis, today)?)).await?;
        mask_summaries(actor, &mut p.history);
        Ok(p)
    }

    pub async fn set_caller_flags(&self, actor: &Actor, phone: PhoneNumber, vip: bool, blocked: bool, now: NaiveDateTime) -> Result<(), CaseError> {
        if !matches!(actor.role, Role::Admin | Role::Supervisor) {
            return Err(CaseError::Forbidden("只有班长和管理员可以设置重点或黑名单 / only supervisors set VIP and block flags".into()));
        }
        let by = actor.username.clone();
        self.store
            .write(move |db| {
                db.set_caller_flags(&phone, vip, blocked)?;
                db.audit(now, &by, "caller_flags", &format!("{phone} vip={vip} blocked={blocked}"))?;
                Ok(())
            })
            .await
    }
}

fn load(db: &Db, no: &TicketNo, vis: Visibility) -> Result<(i64, Ticket), CaseError> {
    db.ticket(no, vis)?.ok_or_else(|| CaseError::TicketNotFound(no.to_string()))
}

fn relation(actor: &Actor, t: &Ticket) -> Relation {
    match actor.department_id {
        Some(d) if actor.role == Role::Handler && t.lead_department == Some(d) => Relation::LeadDepartment,
        Some(d) if actor.role == Role::Handler && t.assisting_departments.contains(&d) => Relation::AssistingDepartment,
        _ => Relation::Hotline,
    }
}

/// Field changes an action makes besides the state and the deadline.
fn apply_effects(db: &Db, id: i64, t: &mut Ticket, action: &TicketAction) -> Result<(), CaseError> {
    use TicketAction as A;
    match action {
        A::Dispatch { lead_department, assisting_departments, .. } => set_departments(db, t, *lead_department, assisting_departments)?,
        A::Reject { reason, .. } => t.reject_reason = Some(*reason),
        A::Reply { text } => t.reply = Some(text.clone()),
        A::Callback { satisfaction, .. } => t.satisfaction = Some(*satisfaction),
        A::Reopen { .. } => t.reopen_count += 1,
        A::AnswerDirectly { answer, cited_articles, cited_tickets } => {
            t.answer = Some(answer.clone());
            for article in cited_articles {
                if !db.cite_article(id, *article)? {
                    return Err(invalid("cited_articles", format!("引用的文章{article}不存在 / cited article not found")));
                }
            }
            for cited in cited_tickets {
                if !db.ticket_exists(cited)? {
                    return Err(invalid("cited_tickets", format!("引用的工单{cited}不存在 / cited ticket not found")));
                }
                db.add_link(id, cited, "cites")?;
            }
        }
        A::Supervise { .. } => t.supervised = true,
        A::MergeInto { target } => {
            if *target == t.no || !db.ticket_exists(target)? {
                return Err(invalid("target", format!("合并目标工单{target}无效 / invalid merge target")));
            }
            t.merged_into = Some(target.clone());
        }
        A::Return { .. } => {
            t.lead_department = None;
            t.assisting_departments.clear();
        }
        _ => {}
    }
    Ok(())
}

fn action_note(action: &TicketAction) -> String {
    use TicketAction as A;
    match action {
        A::Accept { note } | A::Close { note } | A::Supervise { note } | A::Instruct { note } | A::WaitForCaller { note } => note.clone(),
        A::Reject { reason, note } => format!("{}：{note}", reason.zh()),
        A::Dispatch { lead_department, assisting_departments, note } => {
            format!("主办 {lead_department} 协办 {assisting_departments:?} {note}")
        }
        A::Reply { text } | A::Comment { text } => text.clone(),
        A::Return { reason } | A::Reopen { reason } => reason.clone(),
        A::RequestExtension { working_days, reason } => format!("申请延期{working_days}个工作日：{reason}"),
        A::DecideExtension { approve, note } => format!("{}：{note}", if *approve { "同意延期" } else { "不同意延期" }),
        A::Callback { satisfaction, note } => format!("{}：{note}", satisfaction.zh()),
        A::AnswerDirectly { answer, .. } => answer.clone(),
        A::DeferAnswer { contact_note } => contact_note.clone(),
        A::MergeInto { target } => format!("合并入 / merged into {target}"),
        A::Acknowledge | A::StartHandling | A::ResumeFromCaller => String::new(),
    }
}

fn history(actor: &Actor, at: NaiveDateTime, action: &str, from: Option<TicketState>, to: TicketState, note: &str) -> HistoryEntry {
    HistoryEntry { at, actor: actor.username.clone(), action: action.into(), from_state: from, to_state: to, note: note.into() }
}

/// Applies what this user may see: department handlers get masked personal data and no
/// verification code; everyone gets the overdue flag for today.
fn present(mut t: Ticket, actor: &Actor, today: NaiveDate, cal: &Calendar) -> Ticket {
    t.overdue = crate::store::is_overdue(t.state, t.due_date, t.paused_since, today);
    t.working_days_left = working_days_left(&t, today, cal);
    if actor.role != Role::Handler {
        return t;
    }
    t.verification_code = None;
    t.caller_phone_display = t.caller.phone.take().map(|p| p.masked());
    t.caller.id_number = t.caller.id_number.map(|id| mask_middle(&id, 4, 4));
    if t.confidential {
        let withheld = Some("保密 / withheld".to_owned());
        t.caller.name = withheld.clone();
        t.caller.address = withheld.clone();
        t.caller.email = withheld;
    }
    t
}

/// The departments a dispatch names, each checked to exist.
fn set_departments(db: &Db, t: &mut Ticket, lead: i64, assisting: &[i64]) -> Result<(), CaseError> {
    for d in std::iter::once(&lead).chain(assisting) {
        if !db.department_exists(*d)? {
            return Err(invalid("lead_department", format!("部门{d}不存在 / department {d} does not exist")));
        }
    }
    t.lead_department = Some(lead);
    t.assisting_departments = assisting.to_vec();
    Ok(())
}

/// Working days to the running deadline (negative past it): what the ticket screen shows.
fn working_days_left(t: &Ticket, today: NaiveDate, cal: &Calendar) -> Option<i32> {
    let due = t.due_date.filter(|_| !t.state.is_final() && t.paused_since.is_none())?;
    let days = |from, to| i32::try_from(cal.working_days_between(from, to)).unwrap_or(i32::MAX);
    // Past the deadline it is at least one day late, even on a weekend right after it.
    Some(if due >= today { days(today, due) } else { -days(due, today).max(1) })
}

fn mask_summaries(actor: &Actor, items: &mut [TicketSummary]) {
    if actor.role == Role::Handler {
        for s in items {
            s.caller_phone = s.caller_phone.as_deref().map(|p| mask_middle(p, 3, 4));
        }
    }
}

fn check_text(field: &'static str, zh: &str, s: &str, min: usize, max: usize) -> Result<(), CaseError> {
    let n = s.trim().chars().count();
    if n < min || s.chars().count() > max {
        return Err(invalid(field, format!("{zh}（{field}）长度应为{min}至{max}个字 / {field} must be {min} to {max} characters")));
    }
    Ok(())
}

fn validate_new(t: &NewTicket) -> Result<(), CaseError> {
    check_text("summary", "摘要", &t.summary, 1, 200)?;
    check_text("content", "内容", &t.content, 0, 20_000)?;
    let optional = [
        ("caller.name", "来电人姓名", &t.caller.name, 50),
        ("caller.enterprise", "企业名称", &t.caller.enterprise, 100),
        ("caller.address", "地址", &t.caller.address, 200),
        ("caller.email", "电子邮箱", &t.caller.email, 100),
    ];
    for (field, zh, value, max) in optional {
        if let Some(v) = value {
            check_text(field, zh, v, 0, max)?;
        }
    }
    if let Some(email) = t.caller.email.as_deref().filter(|e| !e.is_empty()) {
        if !email.contains('@') {
            return Err(invalid("caller.email", "电子邮箱（caller.email）格式不正确 / invalid e-mail address"));
        }
    }
    if let Some(id) = t.caller.id_number.as_deref().filter(|s| !s.is_empty()) {
        let ok = id.len() == 18 && id[..17].bytes().all(|b| b.is_ascii_digit()) && id[17..].chars().all(|c| c.is_ascii_digit() || c == 'X' || c == 'x');
        if !ok {
            return Err(invalid("caller.id_number", "身份证号码（caller.id_number）应为18位 / the ID number must have 18 characters"));
        }
    }
    if let Some(s) = &t.subject {
        check_text("subject.name", "被投诉对象名称", &s.name, 1, 100)?;
    }
    Ok(())
}

fn validate_action(action: &TicketAction) -> Result<(), CaseError> {
    use TicketAction as A;
    match action {
        A::Reply { text } => check_text("text", "答复内容", text, 1, 20_000),
        A::Comment { text } => check_text("text", "备注", text, 1, 5_000),
        A::Return { reason } | A::Reopen { reason } => check_text("reason", "原因", reason, 1, 1_000),
        A::RequestExtension { reason, .. } => check_text("reason", "延期理由", reason, 1, 1_000),
        A::AnswerDirectly { answer, .. } => check_text("answer", "答复内容", answer, 1, 20_000),
        A::DeferAnswer { contact_note } => check_text("contact_note", "联系方式及说明", contact_note, 1, 1_000),
        A::Dispatch { lead_department, assisting_departments, .. } if assisting_departments.contains(lead_department) => {
            Err(invalid("assisting_departments", "协办部门不能与主办部门相同 / the lead department cannot also assist"))
        }
        _ => Ok(()),
    }
}

fn draft_ticket(mut new: NewTicket, by: &str, now: NaiveDateTime) -> Ticket {
    if new.anonymous {
        new.caller.name = None;
        new.caller.id_number = None;
    }
    // The number is drawn inside the write transaction; this one is a placeholder.
    let mut t = Ticket::from_intake(new, TicketNo::from_parts(now.date(), 0), now, by);
    t.verification_code = Some(verification_code());
    t
}

/// Six random digits the caller keys with the ticket number to hear its status.
fn verification_code() -> String {
    let mut bytes = [0u8; 4];
    // SystemRandom only fails if the OS has no randomness, in which case TLS is broken too.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    format!("{:06}", u32::from_le_bytes(bytes) % 1_000_000)
}

fn sanitize_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() { "file".into() } else { trimmed.chars().take(80).collect() }
}

/// Checks the first bytes of formats that have a signature.
fn content_matches_type(mime: &str, data: &[u8]) -> bool {
    match mime {
        "application/pdf" => data.starts_with(b"%PDF"),
        "image/png" => data.starts_with(b"\x89PNG"),
        "image/jpeg" => data.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/tiff" => data.starts_with(b"II*\0") || data.starts_with(b"MM\0*"),
        "audio/wav" => data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WAVE",
        "text/plain" => std::str::from_utf8(data).is_ok(),
        _ => data.starts_with(b"PK"),
    }
}

/// Writes a file and fsyncs it and its directory before the ticket refers to it.
async fn write_durably(path: &std::path::Path, data: &[u8]) -> Result<(), CaseError> {
    let (path, data) = (path.to_owned(), data.to_owned());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let dir = path.parent().ok_or_else(|| std::io::Error::other("attachment path has no directory"))?;
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension("part");
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })
    .await
    .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    .map_err(|e| CaseError::Store(StoreError::Io(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket_due(due: &str, state: TicketState) -> Ticket {
        let no = TicketNo::parse("202612010001").expect("no");
        let at = NaiveDate::from_ymd_opt(2026, 12, 1).and_then(|d| d.and_hms_opt(9, 0, 0)).expect("time");
        let mut t = Ticket::from_intake(NewTicket::phone(TicketKind::Complaint, None, "摘要", "内容"), no, at, "agent1");
        t.state = state;
        t.due_date = Some(due.parse().expect("date"));
        t
    }

    #[test]
    fn working_days_left_count_to_the_deadline_and_past_it() {
        let cal = Calendar::default();
        let day = |d: &str| d.parse::<NaiveDate>().expect("date");
        // Friday 2026-12-04 to Tuesday 2026-12-08: Monday and Tuesday.
        assert_eq!(working_days_left(&ticket_due("2026-12-08", TicketState::Dispatched), day("2026-12-04"), &cal), Some(2));
        assert_eq!(working_days_left(&ticket_due("2026-12-04", TicketState::Dispatched), day("2026-12-04"), &cal), Some(0), "due today");
        assert_eq!(working_days_left(&ticket_due("2026-12-04", TicketState::Dispatched), day("2026-12-05"), &cal), Some(-1), "late on the Saturday after");
        assert_eq!(working_days_left(&ticket_due("2026-12-02", TicketState::Dispatched), day("2026-12-07"), &cal), Some(-3));
        assert_eq!(working_days_left(&ticket_due("2026-12-08", TicketState::Closed), day("2026-12-04"), &cal), None, "finished");
        let mut paused = ticket_due("2026-12-08", TicketState::InProgress);
        paused.paused_since = Some(day("2026-12-03"));
        assert_eq!(working_days_left(&paused, day("2026-12-04"), &cal), None, "waiting for the caller");
    }
}
