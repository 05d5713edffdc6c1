//! The ticket list with filters, a ticket's detail with its history, and the workflow actions
//! the user's role may take on it (TKT-4). Department handlers get their inbox presets
//! (待签收 / 办理中 / 已逾期). switchd decides what is allowed; a refused action is shown in Chinese.

use crate::backend::{Command, Failure};
use crate::i18n::{label, Lang, T};
use eframe::egui;
use rexian_shared::*;

#[derive(Debug, Default)]
pub struct TicketsScreen {
    pub text: String,
    pub kind: Option<TicketKind>,
    pub state: Option<TicketState>,
    pub overdue_only: bool,
    pub page: Option<TicketPage>,
    pub detail: Option<Ticket>,
    pub note: String,
    pub satisfaction: Option<Satisfaction>,
    pub lead_department: Option<i64>,
    pub error: Option<String>,
    pub busy: bool,
    /// States of the preset in use (a handler's inbox); overrides `state`.
    pub preset: Option<Vec<TicketState>>,
}

/// The handler inbox presets: label, states, overdue only.
fn presets() -> [(&'static str, &'static str, Vec<TicketState>, bool); 3] {
    [
        ("待签收", "To acknowledge", vec![TicketState::Dispatched], false),
        ("办理中", "In progress", vec![TicketState::Acknowledged, TicketState::InProgress], false),
        ("已逾期", "Overdue", vec![], true),
    ]
}

/// The actions offered for a ticket in `state` to a user of `role` (switchd has the last word).
pub fn offered_actions(role: Role, kind: TicketKind, state: TicketState) -> Vec<&'static str> {
    use TicketState as S;
    let staff = matches!(role, Role::Agent | Role::Supervisor | Role::Admin);
    let handler = role == Role::Handler;
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
    }
    if handler {
        match state {
            S::Dispatched => a.push("acknowledge"),
            S::Acknowledged => a.extend(["start_handling", "reply"]),
            S::InProgress => a.push("reply"),
            _ => {}
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
        _ => T::CommentAct.s(lang),
    }
}

impl TicketsScreen {
    /// The handler's inbox: tickets waiting for acknowledgement (待签收).
    pub fn open_inbox(&mut self) -> Command {
        let [(_, _, states, overdue), ..] = presets();
        self.preset = Some(states);
        self.overdue_only = overdue;
        self.busy = true;
        Command::SearchTickets(self.query())
    }

    pub fn query(&self) -> TicketQuery {
        TicketQuery {
            kinds: self.kind.into_iter().collect(),
            states: self.preset.clone().unwrap_or_else(|| self.state.into_iter().collect()),
            overdue_only: self.overdue_only,
            text: Some(self.text.trim().to_owned()).filter(|t| !t.is_empty()),
            page_size: 50,
            ..TicketQuery::default()
        }
    }

    pub fn failed(&mut self, f: &Failure, lang: Lang) {
        self.busy = false;
        self.error = Some(f.text(lang));
    }

    fn action(&self, code: &str) -> Option<TicketAction> {
        let note = self.note.trim().to_owned();
        Some(match code {
            "accept" => TicketAction::Accept { note },
            "reject" => TicketAction::Reject { reason: RejectReason::Other, note },
            "dispatch" => TicketAction::Dispatch { lead_department: self.lead_department?, assisting_departments: vec![], note },
            "answer_directly" => TicketAction::AnswerDirectly { answer: note, cited_articles: vec![], cited_tickets: vec![] },
            "defer_answer" => TicketAction::DeferAnswer { contact_note: note },
            "callback" => TicketAction::Callback { satisfaction: self.satisfaction?, note },
            "close" => TicketAction::Close { note },
            "acknowledge" => TicketAction::Acknowledge,
            "start_handling" => TicketAction::StartHandling,
            "reply" => TicketAction::Reply { text: note },
            _ => TicketAction::Comment { text: note },
        })
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang, role: Role, departments: &[Department]) -> Option<Command> {
        if self.detail.is_some() {
            return self.detail_ui(ui, lang, role, departments);
        }
        let mut cmd = None;
        ui.heading(T::TabTickets.s(lang));
        if role == Role::Handler {
            ui.horizontal(|ui| {
                for (zh, en, states, overdue) in presets() {
                    let active = self.overdue_only == overdue && self.preset.as_ref().map_or(states.is_empty(), |p| *p == states);
                    if ui.selectable_label(active, label(zh, en, lang)).clicked() {
                        self.preset = (!states.is_empty()).then_some(states);
                        self.overdue_only = overdue;
                        cmd = Some(Command::SearchTickets(self.query()));
                    }
                }
            });
        }
        ui.horizontal_wrapped(|ui| {
            super::field(ui, T::Text.s(lang), &mut self.text, None, false);
            ui.label(T::Kind.s(lang));
            egui::ComboBox::from_id_salt("kind-filter").selected_text(self.kind.map_or(T::All.s(lang), |k| label(k.zh(), k.en(), lang))).show_ui(ui, |ui| {
                ui.selectable_value(&mut self.kind, None, T::All.s(lang));
                for k in TicketKind::ALL {
                    ui.selectable_value(&mut self.kind, Some(*k), label(k.zh(), k.en(), lang));
                }
            });
            ui.label(T::State.s(lang));
            egui::ComboBox::from_id_salt("state-filter").selected_text(self.state.map_or(T::All.s(lang), |s| label(s.zh(), s.en(), lang))).show_ui(ui, |ui| {
                ui.selectable_value(&mut self.state, None, T::All.s(lang));
                for s in TicketState::ALL {
                    ui.selectable_value(&mut self.state, Some(*s), label(s.zh(), s.en(), lang));
                }
            });
            ui.checkbox(&mut self.overdue_only, T::OverdueOnly.s(lang));
            if ui.button(T::Search.s(lang)).clicked() {
                self.preset = None;
                self.busy = true;
                self.error = None;
                cmd = Some(Command::SearchTickets(self.query()));
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::RED, e);
        }
        let Some(page) = &self.page else { return cmd };
        ui.label(format!("{} {}", T::Total.s(lang), page.total));
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

    fn detail_ui(&mut self, ui: &mut egui::Ui, lang: Lang, role: Role, departments: &[Department]) -> Option<Command> {
        let mut cmd = None;
        let t = self.detail.clone()?;
        if ui.button(T::Back.s(lang)).clicked() {
            self.detail = None;
            return None;
        }
        ui.heading(format!("{} {}", T::TicketNo.s(lang), t.no));
        ui.label(format!(
            "{}：{}　{}：{}　{}：{}",
            T::Kind.s(lang),
            label(t.kind.zh(), t.kind.en(), lang),
            T::State.s(lang),
            label(t.state.zh(), t.state.en(), lang),
            T::Due.s(lang),
            t.due_date.map(|d| d.to_string()).unwrap_or_default()
        ));
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
        ui.separator();
        ui.strong(T::Actions.s(lang));
        let actions = offered_actions(role, t.kind, t.state);
        super::area(ui, T::Note.s(lang), &mut self.note, None);
        if actions.contains(&"dispatch") {
            egui::ComboBox::from_label(T::LeadDepartment.s(lang))
                .selected_text(self.lead_department.and_then(|id| departments.iter().find(|d| d.id == id)).map_or(String::new(), |d| d.name.clone()))
                .show_ui(ui, |ui| {
                    for d in departments {
                        ui.selectable_value(&mut self.lead_department, Some(d.id), &d.name);
                    }
                });
        }
        if actions.contains(&"callback") {
            ui.horizontal(|ui| {
                ui.label(T::Satisfaction.s(lang));
                for s in Satisfaction::ALL {
                    ui.selectable_value(&mut self.satisfaction, Some(*s), label(s.zh(), s.en(), lang));
                }
            });
        }
        ui.horizontal_wrapped(|ui| {
            for code in &actions {
                if ui.button(action_label(code, lang)).clicked() {
                    match self.action(code) {
                        Some(a) => {
                            self.error = None;
                            cmd = Some(Command::Act(t.no.clone(), a));
                        }
                        None => self.error = Some(label("请先选择部门或满意度", "Choose a department or satisfaction first", lang).into()),
                    }
                }
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::RED, e);
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

    pub fn acted(&mut self, t: Ticket) {
        self.note.clear();
        self.error = None;
        self.detail = Some(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_role_and_state() {
        assert_eq!(offered_actions(Role::Agent, TicketKind::Complaint, TicketState::Registered), ["accept", "reject", "dispatch", "comment"]);
        assert!(offered_actions(Role::Agent, TicketKind::Consultation, TicketState::Registered).contains(&"answer_directly"));
        assert_eq!(offered_actions(Role::Handler, TicketKind::Complaint, TicketState::Dispatched), ["acknowledge", "comment"]);
        assert_eq!(offered_actions(Role::Agent, TicketKind::Complaint, TicketState::Dispatched), ["comment"]);
    }
}
