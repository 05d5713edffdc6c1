//! The due list (待办, TKT-5, TKT-8): the IVR's callback requests, tickets awaiting a later
//! reply, tickets due a return visit (回访) and this user's reminders (催办), most urgent first,
//! each with how long it has waited or when it falls due. A row picked shows one-click dialling
//! of the caller and of the lead department, and the form that records what came of it.

use crate::backend::Command;
use crate::i18n::{label, Lang, T};
use chrono::{NaiveDateTime, NaiveTime};
use eframe::egui;
use rexian_shared::*;
use std::time::{Duration, Instant};

/// How often the list reloads by itself while shown.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// What the server listed for the due list.
#[derive(Debug, Clone, Default)]
pub struct DueLists {
    pub callbacks: Vec<CallbackRequest>,
    /// Tickets in `later_reply` or `replied`.
    pub tickets: Vec<TicketSummary>,
    pub reminders: Vec<Reminder>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueKind {
    /// An IVR callback request, by id.
    Callback(i64),
    LaterReply,
    ReturnVisit,
    /// A reminder, by id; `fired` once it came due.
    Reminder { id: i64, fired: bool },
}

/// One row of the due list.
#[derive(Debug, Clone, PartialEq)]
pub struct DueItem {
    pub kind: DueKind,
    pub no: Option<TicketNo>,
    /// Since when it waits, or when it falls due (Beijing time).
    pub due: NaiveDateTime,
    pub what: String,
    /// The caller's number to dial, if known.
    pub phone: Option<String>,
    pub department: Option<i64>,
}

impl DueItem {
    /// The row's button text, unique in the list (tests and screen readers find rows by it).
    pub fn title(&self, lang: Lang) -> String {
        match (&self.kind, &self.no) {
            (DueKind::Callback(id), _) => format!("{}#{id}", T::CallbackRequest.s(lang)),
            (DueKind::Reminder { id, .. }, _) => format!("{}#{id}", T::ReminderKind.s(lang)),
            (_, Some(no)) => no.to_string(),
            (_, None) => String::new(),
        }
    }

    fn kind_text(&self, lang: Lang) -> &'static str {
        match self.kind {
            DueKind::Callback(_) => T::CallbackRequest.s(lang),
            DueKind::LaterReply => T::LaterReply.s(lang),
            DueKind::ReturnVisit => T::ReturnVisit.s(lang),
            DueKind::Reminder { .. } => T::ReminderKind.s(lang),
        }
    }
}

/// What a callback request's reason code means.
fn reason_text(reason: &str, lang: Lang) -> &'static str {
    match reason {
        "after_hours" => label("非工作时间来电", "called after hours", lang),
        "fax" => label("传真回传", "fax-back", lang),
        "email" => label("邮件回复", "e-mail-back", lang),
        _ => label("来电人要求回电", "asked to be called back", lang),
    }
}

impl DueLists {
    /// Every row, most urgent first: what waits longest or falls due soonest.
    pub fn items(&self, lang: Lang) -> Vec<DueItem> {
        let callbacks = self.callbacks.iter().map(|c| DueItem {
            kind: DueKind::Callback(c.id),
            no: None,
            due: c.at,
            what: format!("{} {}", c.phone, reason_text(&c.reason, lang)),
            phone: Some(c.phone.clone()),
            department: None,
        });
        let tickets = self.tickets.iter().map(|t| DueItem {
            kind: if t.state == TicketState::LaterReply { DueKind::LaterReply } else { DueKind::ReturnVisit },
            no: Some(t.no.clone()),
            // A deadline is met until its day ends.
            due: t.due_date.map_or(t.created_at, |d| (d + chrono::Days::new(1)).and_time(NaiveTime::MIN)),
            what: t.summary.clone(),
            phone: t.caller_phone.clone(),
            department: t.lead_department,
        });
        let reminders = self.reminders.iter().map(|r| DueItem {
            kind: DueKind::Reminder { id: r.id, fired: r.fired },
            no: Some(r.no.clone()),
            due: r.at,
            what: r.note.clone(),
            phone: None,
            department: None,
        });
        let mut items: Vec<DueItem> = callbacks.chain(tickets).chain(reminders).collect();
        items.sort_by_key(|i| i.due);
        items
    }
}

/// "2天3小时" / "3小时5分" / "5分钟" (or English).
pub fn span_text(d: chrono::TimeDelta, lang: Lang) -> String {
    let m = d.num_minutes().max(0);
    let (days, hours, mins) = (m / 1440, m / 60 % 24, m % 60);
    match (lang, days, hours) {
        (Lang::Zh, 1.., _) => format!("{days}天{hours}小时"),
        (Lang::Zh, 0, 1..) => format!("{hours}小时{mins}分"),
        (Lang::Zh, _, _) => format!("{mins}分钟"),
        (Lang::En, 1.., _) => format!("{days} d {hours} h"),
        (Lang::En, 0, 1..) => format!("{hours} h {mins} min"),
        (Lang::En, _, _) => format!("{mins} min"),
    }
}

/// How long a row has waited, or in how long it falls due.
pub fn wait_text(due: NaiveDateTime, now: NaiveDateTime, lang: Lang) -> String {
    if due <= now {
        format!("{}{}", label("已等待", "waiting ", lang), span_text(now - due, lang))
    } else {
        format!("{}{}", span_text(due - now, lang), label("后到期", " until due", lang))
    }
}

/// The due list's state.
#[derive(Debug, Default)]
pub struct DueScreen {
    pub lists: Option<DueLists>,
    /// The row whose actions are shown.
    pub selected: Option<DueItem>,
    pub outcome: String,
    pub satisfaction: Option<Satisfaction>,
    /// A missing field, shown beside it.
    pub field_error: Option<String>,
    /// A refused request, in the user's language.
    pub error: Option<String>,
    pub loaded_at: Option<Instant>,
    pub loading: bool,
}

impl DueScreen {
    /// Asks for the lists again.
    pub fn load(&mut self, staff: bool) -> Command {
        self.loading = true;
        self.loaded_at = Some(Instant::now());
        Command::LoadDue { staff }
    }

    /// The reload the timer asks for now, if it is time.
    pub fn tick(&mut self, staff: bool) -> Option<Command> {
        let stale = self.loaded_at.is_none_or(|t| t.elapsed() >= REFRESH_EVERY);
        (stale && !self.loading).then(|| self.load(staff))
    }

    pub fn loaded(&mut self, lists: DueLists, lang: Lang) {
        self.loading = false;
        self.error = None;
        // The picked row goes when it is done (or gone); otherwise it stays picked.
        let still = self.selected.as_ref().and_then(|s| lists.items(lang).into_iter().find(|i| i.kind == s.kind && i.no == s.no));
        if still.is_none() {
            self.outcome.clear();
            self.satisfaction = None;
            self.field_error = None;
        }
        self.selected = still;
        self.lists = Some(lists);
    }

    /// Draws the list; `staff` (hotline staff, not handlers) for what a reload asks for.
    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang, staff: bool, departments: &[Department], call_line: Option<String>) -> Option<Command> {
        let mut cmd = None;
        ui.horizontal(|ui| {
            ui.heading(T::DueHeading.s(lang));
            if ui.button(T::Refresh.s(lang)).clicked() {
                cmd = Some(self.load(staff));
            }
        });
        if let Some(line) = call_line {
            ui.label(egui::RichText::new(line).strong());
        }
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::RED, e);
        }
        let items = self.lists.as_ref().map(|l| l.items(lang)).unwrap_or_default();
        if items.is_empty() && self.lists.is_some() {
            ui.label(T::NothingDue.s(lang));
        }
        let now = super::beijing(chrono::Utc::now()).naive_local();
        egui::ScrollArea::vertical().id_salt("due-list").max_height(ui.available_height() * 0.55).show(ui, |ui| {
            self.list_ui(ui, &items, now, lang);
        });
        if let Some(item) = self.selected.clone() {
            ui.separator();
            cmd = cmd.or(self.actions_ui(ui, &item, lang, departments));
        }
        cmd
    }

    fn list_ui(&mut self, ui: &mut egui::Ui, items: &[DueItem], now: NaiveDateTime, lang: Lang) {
        egui::Grid::new("due").striped(true).show(ui, |ui| {
            for h in [T::DueKind, T::TicketNo, T::DueWhat, T::DueWhen] {
                ui.strong(h.s(lang));
            }
            ui.end_row();
            for item in items {
                ui.label(item.kind_text(lang));
                let picked = self.selected.as_ref().is_some_and(|s| s.kind == item.kind && s.no == item.no);
                if ui.selectable_label(picked, item.title(lang)).clicked() {
                    self.select(item.clone());
                }
                ui.label(&item.what);
                let text = match item.kind {
                    DueKind::Reminder { fired: false, .. } => format!("{}（{}）", T::NotDueYet.s(lang), wait_text(item.due, now, lang)),
                    _ => wait_text(item.due, now, lang),
                };
                let late = item.due <= now;
                ui.colored_label(if late { egui::Color32::from_rgb(200, 60, 0) } else { ui.visuals().text_color() }, text);
                ui.end_row();
            }
        });
    }

    fn select(&mut self, item: DueItem) {
        if self.selected.as_ref() != Some(&item) {
            self.outcome.clear();
            self.satisfaction = None;
            self.field_error = None;
        }
        self.selected = Some(item);
    }

    /// The picked row: dialling, and what records its outcome.
    fn actions_ui(&mut self, ui: &mut egui::Ui, item: &DueItem, lang: Lang, departments: &[Department]) -> Option<Command> {
        let mut cmd = None;
        ui.strong(format!("{} {}：{}", item.kind_text(lang), item.title(lang), item.what));
        ui.horizontal(|ui| {
            cmd = dial_buttons(ui, item, lang, departments);
            if let Some(no) = &item.no {
                if ui.button(T::OpenTicket.s(lang)).clicked() {
                    cmd = Some(Command::GetTicket(no.clone()));
                }
            }
        });
        let outcome = match item.kind {
            DueKind::Callback(id) => self.callback_form(ui, id, lang),
            DueKind::ReturnVisit => self.visit_form(ui, item, lang),
            DueKind::Reminder { id, fired: true } => ui.button(T::GotIt.s(lang)).clicked().then_some(Command::DismissReminder { id }),
            _ => None,
        };
        cmd.or(outcome)
    }

    /// 回拨结果 and 完成回拨 of an IVR callback request.
    fn callback_form(&mut self, ui: &mut egui::Ui, id: i64, lang: Lang) -> Option<Command> {
        super::area(ui, T::Outcome.s(lang), &mut self.outcome, self.field_error.as_ref());
        if !ui.button(T::FinishCallback.s(lang)).clicked() {
            return None;
        }
        let outcome = self.outcome.trim().to_owned();
        if outcome.is_empty() {
            self.field_error = Some(T::OutcomeRequired.s(lang).into());
            return None;
        }
        self.field_error = None;
        Some(Command::FinishCallback { id, outcome })
    }

    /// The satisfaction (满意 / 基本满意 / 不满意) and note of a return visit (回访).
    fn visit_form(&mut self, ui: &mut egui::Ui, item: &DueItem, lang: Lang) -> Option<Command> {
        ui.horizontal(|ui| {
            ui.label(T::Satisfaction.s(lang));
            for s in [Satisfaction::Satisfied, Satisfaction::Neutral, Satisfaction::Dissatisfied] {
                ui.selectable_value(&mut self.satisfaction, Some(s), label(s.zh(), s.en(), lang));
            }
            if let (None, Some(e)) = (self.satisfaction, &self.field_error) {
                ui.colored_label(egui::Color32::RED, e);
            }
        });
        super::area(ui, T::VisitNote.s(lang), &mut self.outcome, None);
        if !ui.button(T::RecordVisit.s(lang)).clicked() {
            return None;
        }
        let (Some(satisfaction), Some(no)) = (self.satisfaction, item.no.clone()) else {
            self.field_error = Some(T::SatisfactionRequired.s(lang).into());
            return None;
        };
        self.field_error = None;
        Some(Command::Act(no, TicketAction::Callback { satisfaction, note: self.outcome.trim().to_owned() }))
    }
}

/// 拨打来电人 with the caller's number, 拨打承办部门 with the lead department's phone, each when
/// there is a number to dial.
fn dial_buttons(ui: &mut egui::Ui, item: &DueItem, lang: Lang, departments: &[Department]) -> Option<Command> {
    let mut cmd = None;
    if let Some(number) = item.phone.as_deref().and_then(|p| PhoneNumber::parse(p).ok()) {
        if ui.button(format!("{}（{number}）", T::DialCaller.s(lang))).clicked() {
            cmd = Some(Command::Dial { number });
        }
    }
    let department = item.department.and_then(|id| departments.iter().find(|d| d.id == id));
    if let Some((d, number)) = department.and_then(|d| d.phone.as_deref().and_then(|p| PhoneNumber::parse(p).ok()).map(|n| (d, n))) {
        if ui.button(format!("{}（{} {number}）", T::DialDepartment.s(lang), d.name)).clicked() {
            cmd = Some(Command::Dial { number });
        }
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 30).and_then(|d| d.and_hms_opt(h, m, 0)).expect("time")
    }

    fn lists() -> DueLists {
        let no = |n| TicketNo::from_parts(at(9, 0).date(), n);
        let ticket = |n, state, due: Option<chrono::NaiveDate>| TicketSummary {
            no: no(n), kind: TicketKind::Complaint, channel: Channel::Phone, state, summary: format!("工单{n}"),
            caller_phone: Some("13800138000".into()), lead_department: Some(3), created_at: at(8, 0), due_date: due, overdue: false, supervised: false,
        };
        let callback = CallbackRequest { id: 7, at: at(9, 30), phone: "13900139000".into(), reason: "after_hours".into(), address: None, article_id: None, done: false, outcome: None };
        let reminder = Reminder { id: 4, no: no(1), at: at(10, 0), note: "请今日内答复".into(), created_by: "agent1".into(), fired: true };
        DueLists {
            callbacks: vec![callback],
            tickets: vec![ticket(1, TicketState::Replied, Some(at(0, 0).date() + chrono::Days::new(2))), ticket(2, TicketState::LaterReply, None)],
            reminders: vec![reminder],
        }
    }

    #[test]
    fn the_most_urgent_row_comes_first() {
        let items = lists().items(Lang::Zh);
        let titles: Vec<String> = items.iter().map(|i| i.title(Lang::Zh)).collect();
        assert_eq!(titles, ["202611300002", "回拨请求#7", "催办#4", "202611300001"]);
        assert_eq!(items[0].kind, DueKind::LaterReply);
        assert_eq!(items[3].kind, DueKind::ReturnVisit);
    }

    #[test]
    fn waiting_and_due_times_read_in_chinese() {
        assert_eq!(wait_text(at(9, 30), at(12, 35), Lang::Zh), "已等待3小时5分");
        assert_eq!(wait_text(at(12, 0), at(11, 55), Lang::Zh), "5分钟后到期");
        assert_eq!(span_text(chrono::TimeDelta::hours(50), Lang::Zh), "2天2小时");
        assert_eq!(wait_text(at(9, 30), at(12, 35), Lang::En), "waiting 3 h 5 min");
    }

    #[test]
    fn an_outcome_is_asked_for_in_chinese_before_the_callback_is_done() {
        use egui_kittest::kittest::Queryable;
        let screen = DueScreen { lists: Some(lists()), ..DueScreen::default() };
        let mut h = egui_kittest::Harness::builder()
            .with_size(egui::vec2(1200.0, 800.0))
            .with_context_setup(|ctx| {
                crate::fonts::install_cjk_font(ctx).expect("a CJK font (scripts/deps installs one)");
            })
            .build_ui_state(
                |ui, (s, sent): &mut (DueScreen, Vec<Command>)| {
                    let departments = [Department { id: 3, name: "质量科".into(), parent_id: None, phone: Some("01088886666".into()) }];
                    sent.extend(s.ui(ui, Lang::Zh, true, &departments, None));
                },
                (screen, Vec::new()),
            );
        h.get_by_label("回拨请求#7").click();
        h.run();
        h.get_by_label("完成回拨").click();
        h.run();
        assert!(h.query_by_label("请填写回拨结果").is_some(), "said beside the field");
        assert!(h.state().1.is_empty());
        h.get_by_label("回拨结果").focus();
        h.run();
        h.get_by_label("回拨结果").type_text("已回电，问题已解决");
        h.run();
        h.get_by_label("完成回拨").click();
        h.run();
        assert!(matches!(h.state().1.as_slice(), [Command::FinishCallback { id: 7, outcome }] if outcome == "已回电，问题已解决"), "{:?}", h.state().1);

        // A return visit offers both numbers to dial.
        h.get_by_label("202611300001").click();
        h.run();
        h.get_by_label("拨打承办部门（质量科 01088886666）").click();
        h.run();
        assert!(matches!(h.state().1.last(), Some(Command::Dial { number }) if number.as_ref() == "01088886666"), "{:?}", h.state().1);
        assert!(h.query_by_label("拨打来电人（13800138000）").is_some());
    }
}
