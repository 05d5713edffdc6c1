//! The ticket list with its filters and saved filters ([`super::ticket_filters`]), a ticket's detail with its history, and the workflow actions
//! the user's role may take on it (TKT-4). Department handlers get their inbox presets
//! (待签收 / 办理中 / 已逾期). switchd decides what is allowed; a refused action is shown in Chinese.
//! The detail prints the acceptance and dispatch forms (TKT-7) and the list exports its page
//! to Excel, both into the user's documents folder.

use super::ticket_filters::TicketFilters;
use crate::backend::{Command, Failure};
use crate::i18n::{label, Lang, T};
use crate::print::{CjkFont, FormContext, PrintError};
use eframe::egui;
use rexian_shared::*;
use std::path::PathBuf;

#[derive(Debug, Default)]
pub struct TicketsScreen {
    pub filters: TicketFilters,
    pub page: Option<TicketPage>,
    pub detail: Option<Ticket>,
    pub note: String,
    pub satisfaction: Option<Satisfaction>,
    pub lead_department: Option<i64>,
    pub error: Option<String>,
    pub busy: bool,
    /// The file the last print or export wrote, or why it failed (in the user's language).
    pub saved: Option<Result<PathBuf, String>>,
    /// Where forms and exports are written; `None` is the user's documents folder.
    pub documents: Option<PathBuf>,
    /// Working days asked for with 申请延期.
    pub extension_days: String,
    /// The open ticket's calls and their recordings (hotline staff).
    pub linked: super::linked_calls::LinkedCalls,
    /// Assisting departments chosen for a dispatch (协办).
    pub assisting: std::collections::BTreeSet<i64>,
    /// A dispatch asked for, and the ticket as it would leave it, until confirmed or dropped.
    pub pending: Option<(TicketAction, Option<Ticket>)>,
    /// 设置催办 on the open ticket.
    pub reminder: super::reminders::ReminderForm,
}

/// The forms a ticket prints (TKT-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintedForm {
    Acceptance,
    Dispatch,
}

/// The handler inbox presets: label, states, overdue only.
fn presets() -> [(&'static str, &'static str, Vec<TicketState>, bool); 3] {
    [
        ("待签收", "To acknowledge", vec![TicketState::Dispatched], false),
        ("办理中", "In progress", vec![TicketState::Acknowledged, TicketState::InProgress], false),
        ("已逾期", "Overdue", vec![], true),
    ]
}

/// The actions offered for a ticket in `state` to a user of `role`, `extension_pending` when
/// the lead department asked for more time and nobody decided yet (switchd has the last word).
pub fn offered_actions(role: Role, kind: TicketKind, state: TicketState, extension_pending: bool) -> Vec<&'static str> {
    use TicketState as S;
    let staff = matches!(role, Role::Agent | Role::Supervisor | Role::Admin);
    let handler = role == Role::Handler;
    let managing = matches!(role, Role::Supervisor | Role::Admin);
    let with_department = matches!(state, S::Dispatched | S::Acknowledged | S::InProgress);
    let direct = matches!(kind, TicketKind::Consultation | TicketKind::BusinessApplication);
    let mut a = Vec::new();
    if staff {
        if state == S::Registered {
            a.push("accept");
        }
        if matches!(state, S::Registered | S::Returned) {
            a.push("reject");
        }
        if matches!(state, S::Registered | S::Accepted | S::Returned | S::LaterReply) {
            a.push("dispatch");
        }
        if direct && matches!(state, S::Registered | S::Accepted | S::LaterReply) {
            a.push("answer_directly");
        }
        if direct && matches!(state, S::Registered | S::Accepted) {
            a.push("defer_answer");
        }
        if state == S::Replied {
            a.push("callback");
        }
        if matches!(state, S::Replied | S::CalledBack) {
            a.push("close");
        }
        if matches!(state, S::CalledBack | S::Closed) {
            a.push("reopen");
        }
    }
    if managing && extension_pending && with_department {
        a.extend(["approve_extension", "deny_extension"]);
    }
    if managing && !state.is_final() {
        a.push("supervise");
    }
    if handler {
        match state {
            S::Dispatched => a.push("acknowledge"),
            S::Acknowledged => a.extend(["start_handling", "reply"]),
            S::InProgress => a.push("reply"),
            _ => {}
        }
        if with_department && state != S::Dispatched && !extension_pending {
            a.push("request_extension");
        }
        if with_department {
            a.push("return");
        }
    }
    a.push("comment");
    a
}

fn action_label(code: &str, lang: Lang) -> &'static str {
    match code {
        "accept" => T::Accept.s(lang),
        "reject" => T::Reject.s(lang),
        "dispatch" => T::Dispatch.s(lang),
        "answer_directly" => T::AnswerDirectly.s(lang),
        "defer_answer" => T::DeferAnswer.s(lang),
        "callback" => T::Callback.s(lang),
        "close" => T::Close.s(lang),
        "acknowledge" => label("签收", "Acknowledge", lang),
        "start_handling" => label("开始办理", "Start handling", lang),
        "reply" => label("答复", "Reply", lang),
        "return" => label("退回", "Return", lang),
        "request_extension" => label("申请延期", "Request an extension", lang),
        "approve_extension" => label("批准延期", "Approve the extension", lang),
        "deny_extension" => label("不批准延期", "Refuse the extension", lang),
        "reopen" => label("重新办理", "Reopen", lang),
        "supervise" => label("督办", "Supervise", lang),
        _ => T::CommentAct.s(lang),
    }
}

/// The time left on a running deadline in working days, and whether it is pressing (due
/// within a day, or past it); empty without a running deadline.
fn days_left_text(days: Option<i32>, lang: Lang) -> (String, bool) {
    match days {
        None => (String::new(), false),
        Some(0) => (label("今日到期", "due today", lang).to_owned(), true),
        Some(d) if d < 0 => (format!("{}{}{}", label("已逾期", "overdue by ", lang), -d, label("个工作日", " working days", lang)), true),
        Some(d) => (format!("{}{d}{}", label("剩余", "", lang), label("个工作日", " working days left", lang)), d <= 1),
    }
}

impl TicketsScreen {
    /// The handler's inbox: tickets waiting for acknowledgement (待签收).
    pub fn open_inbox(&mut self, lang: Lang) -> Option<Command> {
        let [(_, _, states, overdue), ..] = presets();
        self.filters.preset = Some(states);
        self.filters.overdue_only = overdue;
        let cmd = self.filters.search(lang);
        self.searching(cmd)
    }

    /// Marks the list busy when `cmd` is a search.
    fn searching(&mut self, cmd: Option<Command>) -> Option<Command> {
        if matches!(cmd, Some(Command::SearchTickets(_))) {
            self.busy = true;
            self.error = None;
        }
        cmd
    }

    pub fn failed(&mut self, f: &Failure, lang: Lang) {
        self.busy = false;
        self.error = Some(f.text(lang));
    }

    /// The action a button asks for, or what is missing for it, said in `lang`.
    pub fn action(&self, code: &str, lang: Lang) -> Result<TicketAction, String> {
        let note = self.note.trim().to_owned();
        let missing = |zh: &'static str, en: &'static str| label(zh, en, lang).to_owned();
        let reason = |zh: &'static str, en: &'static str| if note.is_empty() { Err(missing(zh, en)) } else { Ok(note.clone()) };
        Ok(match code {
            "accept" => TicketAction::Accept { note },
            "reject" => TicketAction::Reject { reason: RejectReason::Other, note },
            "dispatch" => {
                let lead_department = self.lead_department.ok_or_else(|| missing("请先选择主办部门", "Choose the lead department first"))?;
                let assisting_departments = self.assisting.iter().copied().filter(|d| *d != lead_department).collect();
                TicketAction::Dispatch { lead_department, assisting_departments, note }
            }
            "answer_directly" => TicketAction::AnswerDirectly { answer: note, cited_articles: vec![], cited_tickets: vec![] },
            "defer_answer" => TicketAction::DeferAnswer { contact_note: note },
            "callback" => {
                let satisfaction = self.satisfaction.ok_or_else(|| missing("请先选择满意度", "Choose the satisfaction first"))?;
                TicketAction::Callback { satisfaction, note }
            }
            "close" => TicketAction::Close { note },
            "acknowledge" => TicketAction::Acknowledge,
            "start_handling" => TicketAction::StartHandling,
            "reply" => TicketAction::Reply { text: note },
            "return" => TicketAction::Return { reason: reason("请在“说明”中填写退回原因", "Give the reason for returning in the note")? },
            "request_extension" => {
                let days = self.extension_days.trim().parse::<u32>().ok().filter(|d| (1..=30).contains(d));
                let working_days = days.ok_or_else(|| missing("延期工作日数应为1至30的整数", "The extension must be 1 to 30 working days"))?;
                TicketAction::RequestExtension { working_days, reason: reason("请在“说明”中填写延期理由", "Give the reason for the extension in the note")? }
            }
            "approve_extension" => TicketAction::DecideExtension { approve: true, note },
            "deny_extension" => TicketAction::DecideExtension { approve: false, note },
            "reopen" => TicketAction::Reopen { reason: reason("请在“说明”中填写重新办理的原因", "Give the reason for reopening in the note")? },
            "supervise" => TicketAction::Supervise { note },
            _ => TicketAction::Comment { text: note },
        })
    }

    /// Writes `form` of the open ticket as PDF into the documents folder; the outcome goes to
    /// `saved`. Runs on the UI thread: it reads the font and writes a small file, no network.
    pub fn print(&mut self, form: PrintedForm, lang: Lang, departments: &[Department], categories: &[Category]) {
        let Some(t) = &self.detail else { return };
        let cx = FormContext { departments, categories, printed_at: chrono::Local::now().naive_local() };
        let (name, pdf) = match form {
            PrintedForm::Acceptance => (T::AcceptanceFile, CjkFont::system().and_then(|f| crate::print::acceptance_form(t, &cx, &f))),
            PrintedForm::Dispatch => (T::DispatchFile, CjkFont::system().and_then(|f| crate::print::dispatch_form(t, &cx, &f))),
        };
        let file = format!("{}-{}.pdf", name.s(lang), t.no);
        self.saved = Some(pdf.map_err(|e: PrintError| {
            tracing::warn!(error = %e, "cannot make the form");
            e.text(lang).to_owned()
        }).and_then(|bytes| self.save(&file, &bytes, lang)));
    }

    /// Writes the rows of the list on screen to an Excel workbook in the documents folder.
    pub fn export(&mut self, lang: Lang) {
        let Some(page) = &self.page else { return };
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let file = format!("{}-{stamp}.xlsx", T::TicketListFile.s(lang));
        self.saved = Some(crate::export::ticket_list_xlsx(page).map_err(|e| {
            tracing::warn!(error = %e, "cannot make the workbook");
            format!("{}{e}", T::SaveFailed.s(lang))
        }).and_then(|bytes| self.save(&file, &bytes, lang)));
    }

    fn save(&self, file: &str, bytes: &[u8], lang: Lang) -> Result<PathBuf, String> {
        let dir = self.documents.clone().unwrap_or_else(crate::settings::documents_dir);
        let path = dir.join(file);
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, bytes)).map_err(|e| format!("{}{e}", T::SaveFailed.s(lang)))?;
        Ok(path)
    }

    fn saved_ui(&self, ui: &mut egui::Ui, lang: Lang) {
        match &self.saved {
            Some(Ok(path)) => {
                ui.label(format!("{}{}", T::SavedTo.s(lang), path.display()));
            }
            Some(Err(e)) => {
                ui.colored_label(egui::Color32::RED, e);
            }
            None => {}
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang, role: Role, departments: &[Department], categories: &[Category]) -> Option<Command> {
        if self.detail.is_some() {
            return self.detail_ui(ui, lang, role, departments, categories);
        }
        let mut cmd = None;
        ui.heading(T::TabTickets.s(lang));
        if role == Role::Handler {
            ui.horizontal(|ui| {
                let f = &mut self.filters;
                for (zh, en, states, overdue) in presets() {
                    let active = f.overdue_only == overdue && f.preset.as_ref().map_or(states.is_empty(), |p| *p == states);
                    if ui.selectable_label(active, label(zh, en, lang)).clicked() {
                        f.preset = (!states.is_empty()).then_some(states);
                        f.overdue_only = overdue;
                        cmd = f.search(lang);
                    }
                }
            });
        }
        cmd = self.filters.ui(ui, lang, departments, categories).or(cmd);
        cmd = self.searching(cmd);
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::RED, e);
        }
        let Some(total) = self.page.as_ref().map(|p| p.total) else { return cmd };
        ui.horizontal(|ui| {
            ui.label(format!("{} {total}", T::Total.s(lang)));
            if ui.button(T::ExportExcel.s(lang)).clicked() {
                self.export(lang);
            }
        });
        self.saved_ui(ui, lang);
        let Some(page) = &self.page else { return cmd };
        egui::ScrollArea::vertical().id_salt("ticket-list").show(ui, |ui| {
            egui::Grid::new("tickets").striped(true).show(ui, |ui| {
                for h in [T::TicketNo, T::Kind, T::State, T::Summary, T::Created, T::Due] {
                    ui.strong(h.s(lang));
                }
                ui.end_row();
                for t in &page.items {
                    if ui.link(t.no.to_string()).clicked() {
                        cmd = Some(Command::GetTicket(t.no.clone()));
                    }
                    ui.label(label(t.kind.zh(), t.kind.en(), lang));
                    ui.label(label(t.state.zh(), t.state.en(), lang));
                    ui.label(&t.summary);
                    ui.label(t.created_at.format("%Y-%m-%d %H:%M").to_string());
                    let due = t.due_date.map(|d| d.to_string()).unwrap_or_default();
                    if t.overdue {
                        ui.colored_label(egui::Color32::RED, format!("{due} {}", T::Overdue.s(lang)));
                    } else {
                        ui.label(due);
                    }
                    ui.end_row();
                }
            });
        });
        cmd
    }

    fn detail_ui(&mut self, ui: &mut egui::Ui, lang: Lang, role: Role, departments: &[Department], categories: &[Category]) -> Option<Command> {
        let mut cmd = None;
        let t = self.detail.clone()?;
        if ui.button(T::Back.s(lang)).clicked() {
            self.detail = None;
            self.saved = None;
            return None;
        }
        ui.heading(format!("{} {}", T::TicketNo.s(lang), t.no));
        ui.horizontal(|ui| {
            ui.label(format!(
                "{}：{}　{}：{}　{}：{}",
                T::Kind.s(lang),
                label(t.kind.zh(), t.kind.en(), lang),
                T::State.s(lang),
                label(t.state.zh(), t.state.en(), lang),
                T::Due.s(lang),
                t.due_date.map(|d| d.to_string()).unwrap_or_default()
            ));
            let (text, urgent) = days_left_text(t.working_days_left, lang);
            ui.colored_label(if urgent { egui::Color32::RED } else { ui.visuals().text_color() }, text);
        });
        if let Some(p) = &t.caller_phone_display {
            ui.horizontal(|ui| {
                ui.label(format!("{}：{p}", T::CallerPhone.s(lang)));
                if let (Some(phone), true) = (&t.caller.phone, role != Role::Handler) {
                    if ui.button(T::CallCaller.s(lang)).clicked() {
                        cmd = Some(Command::Dial { number: phone.clone() });
                    }
                }
            });
        }
        ui.label(format!("{}：{}", T::Summary.s(lang), t.summary));
        if !t.content.is_empty() {
            ui.label(&t.content);
        }
        if let Some(r) = &t.reply {
            ui.label(format!("{}：{r}", T::Reply.s(lang)));
        }
        if role != Role::Handler {
            cmd = cmd.or(self.linked.ui(ui, lang));
        }
        ui.horizontal(|ui| {
            if ui.button(T::PrintAcceptance.s(lang)).clicked() {
                self.print(PrintedForm::Acceptance, lang, departments, categories);
            }
            // A dispatch form has a department to go to only once the ticket has a lead one.
            if t.lead_department.is_some() && ui.button(T::PrintDispatch.s(lang)).clicked() {
                self.print(PrintedForm::Dispatch, lang, departments, categories);
            }
        });
        self.saved_ui(ui, lang);
        ui.separator();
        ui.strong(T::Actions.s(lang));
        if let Some(days) = t.extension_requested {
            ui.colored_label(egui::Color32::from_rgb(200, 100, 0), format!("{}：{days}", label("延期申请（工作日，待审批）", "Extension asked (working days, undecided)", lang)));
        }
        if t.supervised {
            ui.colored_label(egui::Color32::RED, label("【督办件】", "[Supervised]", lang));
        }
        let actions = offered_actions(role, t.kind, t.state, t.extension_requested.is_some());
        super::area(ui, T::Note.s(lang), &mut self.note, None);
        if actions.contains(&"dispatch") {
            self.departments_ui(ui, lang, departments);
        }
        if actions.contains(&"request_extension") {
            super::field(ui, label("延期工作日数", "Extension (working days)", lang), &mut self.extension_days, None, false);
        }
        if actions.contains(&"callback") {
            ui.horizontal(|ui| {
                ui.label(T::Satisfaction.s(lang));
                for s in Satisfaction::ALL {
                    ui.selectable_value(&mut self.satisfaction, Some(*s), label(s.zh(), s.en(), lang));
                }
            });
        }
        if self.pending.is_some() {
            cmd = cmd.or(self.confirm_ui(ui, lang, &t.no, departments));
        } else {
            ui.horizontal_wrapped(|ui| {
                for code in &actions {
                    if ui.button(action_label(code, lang)).clicked() {
                        match self.action(code, lang) {
                            // A dispatch is confirmed with its departments and deadline shown first.
                            Ok(a @ TicketAction::Dispatch { .. }) => {
                                self.error = None;
                                self.pending = Some((a.clone(), None));
                                cmd = Some(Command::PreviewAction(t.no.clone(), a));
                            }
                            Ok(a) => {
                                self.error = None;
                                cmd = Some(Command::Act(t.no.clone(), a));
                            }
                            Err(e) => self.error = Some(e),
                        }
                    }
                }
            });
        }
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::RED, e);
        }
        if role != Role::Handler && !t.state.is_final() {
            ui.separator();
            cmd = cmd.or(self.reminder.ui(ui, lang, &t.no));
        }
        ui.separator();
        ui.strong(T::History.s(lang));
        egui::Grid::new("history").striped(true).show(ui, |ui| {
            for h in &t.history {
                ui.label(h.at.format("%Y-%m-%d %H:%M").to_string());
                ui.label(&h.actor);
                ui.label(label(h.to_state.zh(), h.to_state.en(), lang));
                ui.label(&h.note);
                ui.end_row();
            }
        });
        cmd
    }

    /// The lead department, and the assisting ones to tick (not the lead).
    fn departments_ui(&mut self, ui: &mut egui::Ui, lang: Lang, departments: &[Department]) {
        egui::ComboBox::from_label(T::LeadDepartment.s(lang))
            .selected_text(self.lead_department.and_then(|id| departments.iter().find(|d| d.id == id)).map_or(String::new(), |d| d.name.clone()))
            .show_ui(ui, |ui| {
                for d in departments {
                    ui.selectable_value(&mut self.lead_department, Some(d.id), &d.name);
                }
            });
        egui::CollapsingHeader::new(format!("{}（{}）", T::AssistingDepartments.s(lang), label("可多选", "any number", lang))).id_salt("assisting").show(ui, |ui| {
            for d in departments.iter().filter(|d| Some(d.id) != self.lead_department) {
                let mut on = self.assisting.contains(&d.id);
                if ui.checkbox(&mut on, &d.name).changed() {
                    if on {
                        self.assisting.insert(d.id);
                    } else {
                        self.assisting.remove(&d.id);
                    }
                }
            }
        });
    }

    /// The dispatch to confirm: departments and the deadline it would set.
    fn confirm_ui(&mut self, ui: &mut egui::Ui, lang: Lang, no: &TicketNo, departments: &[Department]) -> Option<Command> {
        let (action, preview) = self.pending.clone()?;
        let name = |id: i64| departments.iter().find(|d| d.id == id).map_or_else(|| id.to_string(), |d| d.name.clone());
        let mut cmd = None;
        egui::Frame::new().fill(egui::Color32::from_rgb(255, 248, 220)).inner_margin(8.0).show(ui, |ui| {
            ui.strong(label("请确认转办", "Confirm the dispatch", lang));
            if let TicketAction::Dispatch { lead_department, assisting_departments, .. } = &action {
                ui.label(format!("{}：{}", T::LeadDepartment.s(lang), name(*lead_department)));
                let assisting: Vec<String> = assisting_departments.iter().map(|d| name(*d)).collect();
                ui.label(format!("{}：{}", T::AssistingDepartments.s(lang), if assisting.is_empty() { label("无", "none", lang).to_owned() } else { assisting.join("、") }));
            }
            match &preview {
                Some(t) => {
                    let due = t.due_date.map(|d| d.to_string()).unwrap_or_default();
                    let (left, _) = days_left_text(t.working_days_left, lang);
                    ui.label(format!("{}：{due}（{left}）", label("办理期限", "Handling deadline", lang)));
                }
                None => {
                    ui.weak(label("正在计算办理期限…", "Working out the deadline…", lang));
                }
            }
            ui.horizontal(|ui| {
                if ui.add_enabled(preview.is_some(), egui::Button::new(label("确认转办", "Confirm", lang))).clicked() {
                    self.pending = None;
                    cmd = Some(Command::Act(no.clone(), action.clone()));
                }
                if ui.button(label("取消", "Cancel", lang)).clicked() {
                    self.pending = None;
                }
            });
        });
        cmd
    }

    /// The deadline a dispatch would set arrived.
    pub fn previewed(&mut self, t: Ticket) {
        if let Some((_, preview)) = &mut self.pending {
            if self.detail.as_ref().is_some_and(|d| d.no == t.no) {
                *preview = Some(t);
            }
        }
    }

    pub fn acted(&mut self, t: Ticket) {
        self.note.clear();
        self.error = None;
        if self.detail.as_ref().is_none_or(|d| d.no != t.no) {
            self.saved = None;
            self.pending = None;
            self.assisting.clear();
            self.reminder = Default::default();
        }
        self.detail = Some(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;

    fn ticket(lead: Option<i64>) -> Ticket {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).and_then(|d| d.and_hms_opt(9, 41, 0)).expect("time");
        let new = NewTicket::phone(TicketKind::Complaint, PhoneNumber::parse("13800131234").ok(), "充电器起火", "充电时冒烟起火。");
        let mut t = Ticket::from_intake(new, TicketNo::parse("202611290007").expect("no"), at, "agent1");
        t.lead_department = lead;
        t
    }

    /// The screen in a harness that draws Chinese, writing into `documents`.
    fn screen(documents: &std::path::Path, detail: Option<Ticket>) -> Harness<'static, TicketsScreen> {
        let summary = |t: &Ticket| TicketSummary { no: t.no.clone(), kind: t.kind, channel: t.channel, state: t.state, summary: t.summary.clone(), caller_phone: None, lead_department: None, created_at: t.created_at, due_date: None, overdue: false, supervised: false };
        let state = TicketsScreen { page: Some(TicketPage { items: vec![summary(&ticket(None))], total: 1, page: 0, page_size: 50 }), detail, documents: Some(documents.to_owned()), ..TicketsScreen::default() };
        Harness::builder()
            .with_size(egui::vec2(1200.0, 900.0))
            .with_context_setup(|ctx| {
                crate::fonts::install_cjk_font(ctx).expect("a CJK font (scripts/deps installs one)");
            })
            .build_ui_state(
                |ui, s: &mut TicketsScreen| {
                    let departments = [Department { id: 3, name: "质量科".into(), parent_id: None, phone: None }];
                    s.ui(ui, Lang::Zh, Role::Agent, &departments, &[]);
                },
                state,
            )
    }

    fn saved_file(h: &Harness<'static, TicketsScreen>) -> std::path::PathBuf {
        match &h.state().saved {
            Some(Ok(path)) => path.clone(),
            other => panic!("nothing saved: {other:?}"),
        }
    }

    #[test]
    fn the_detail_prints_both_forms_into_the_documents_folder() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut h = screen(dir.path(), Some(ticket(Some(3))));
        h.get_by_label("打印受理单").click();
        h.run();
        let path = saved_file(&h);
        assert_eq!(path, dir.path().join("受理单-202611290007.pdf"));
        assert!(std::fs::read(&path).expect("pdf").starts_with(b"%PDF-"));
        assert!(h.query_by_label_contains("已保存到：").is_some(), "the path is shown");
        h.get_by_label("打印转办单").click();
        h.run();
        assert_eq!(saved_file(&h), dir.path().join("转办单-202611290007.pdf"));
    }

    #[test]
    fn no_dispatch_form_before_a_lead_department_and_a_failed_save_is_told_in_chinese() {
        let dir = tempfile::tempdir().expect("tmp");
        // A file where the folder should be: the form cannot be saved there.
        let blocked = dir.path().join("文档");
        std::fs::write(&blocked, b"").expect("file");
        let mut h = screen(&blocked, Some(ticket(None)));
        assert!(h.query_by_label("打印转办单").is_none());
        h.get_by_label("打印受理单").click();
        h.run();
        assert!(matches!(&h.state().saved, Some(Err(e)) if e.starts_with("文件保存失败")), "{:?}", h.state().saved);
        assert!(h.query_by_label_contains("文件保存失败").is_some());
    }

    #[test]
    fn the_list_exports_its_page_to_excel() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut h = screen(dir.path(), None);
        h.get_by_label("导出Excel").click();
        h.run();
        let path = saved_file(&h);
        assert!(path.starts_with(dir.path()) && path.extension().is_some_and(|e| e == "xlsx"), "{}", path.display());
        assert!(path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("工单列表-")));
        assert!(std::fs::read(&path).expect("xlsx").starts_with(b"PK"), "a zip container");
    }

    #[test]
    fn actions_follow_role_and_state() {
        assert_eq!(offered_actions(Role::Agent, TicketKind::Complaint, TicketState::Registered, false), ["accept", "reject", "dispatch", "comment"]);
        assert!(offered_actions(Role::Agent, TicketKind::Consultation, TicketState::Registered, false).contains(&"answer_directly"));
        assert_eq!(offered_actions(Role::Handler, TicketKind::Complaint, TicketState::Dispatched, false), ["acknowledge", "return", "comment"]);
        assert_eq!(offered_actions(Role::Handler, TicketKind::Complaint, TicketState::InProgress, false), ["reply", "request_extension", "return", "comment"]);
        assert_eq!(offered_actions(Role::Handler, TicketKind::Complaint, TicketState::InProgress, true), ["reply", "return", "comment"]);
        assert_eq!(offered_actions(Role::Agent, TicketKind::Complaint, TicketState::Dispatched, true), ["comment"]);
        assert_eq!(offered_actions(Role::Supervisor, TicketKind::Complaint, TicketState::InProgress, true), ["approve_extension", "deny_extension", "supervise", "comment"]);
        assert!(offered_actions(Role::Agent, TicketKind::Complaint, TicketState::Closed, false).contains(&"reopen"));
    }

    #[test]
    fn an_action_missing_what_it_needs_says_so_in_chinese() {
        let mut s = TicketsScreen::default();
        assert_eq!(s.action("dispatch", Lang::Zh).unwrap_err(), "请先选择主办部门");
        assert_eq!(s.action("return", Lang::Zh).unwrap_err(), "请在“说明”中填写退回原因");
        s.extension_days = "45".into();
        s.note = "需要现场检测".into();
        assert_eq!(s.action("request_extension", Lang::Zh).unwrap_err(), "延期工作日数应为1至30的整数");
        s.extension_days = "5".into();
        assert_eq!(s.action("request_extension", Lang::Zh), Ok(TicketAction::RequestExtension { working_days: 5, reason: "需要现场检测".into() }));
    }
}
