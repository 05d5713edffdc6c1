//! Reminders (催办, TKT-5) at the desk: [`ReminderForm`] sets one on the open ticket (date and
//! time in Beijing time, checked before it goes), and [`ReminderPopups`] shows each one that
//! comes due in a window over the workstation until the user opens the ticket or dismisses it.

use crate::backend::Command;
use crate::i18n::{Lang, T};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use eframe::egui;
use rexian_shared::TicketNo;

/// The reminder fields of a ticket's detail.
#[derive(Debug, Default)]
pub struct ReminderForm {
    pub date: String,
    pub time: String,
    pub note: String,
    pub date_error: Option<String>,
    pub time_error: Option<String>,
    pub note_error: Option<String>,
    /// Set, or why the server refused it.
    pub result: Option<Result<(), String>>,
}

impl ReminderForm {
    /// The time and note when every field is right at `now` (Beijing time); otherwise the
    /// errors are set beside the fields.
    pub fn check(&mut self, now: NaiveDateTime, lang: Lang) -> Option<(NaiveDateTime, String)> {
        let date = NaiveDate::parse_from_str(self.date.trim(), "%Y-%m-%d").ok();
        let t = self.time.trim();
        let time = NaiveTime::parse_from_str(t, "%H:%M").or_else(|_| NaiveTime::parse_from_str(t, "%H:%M:%S")).ok();
        let note = self.note.trim().to_owned();
        self.date_error = date.is_none().then(|| T::ReminderDateInvalid.s(lang).to_owned());
        self.time_error = time.is_none().then(|| T::ReminderTimeInvalid.s(lang).to_owned());
        self.note_error = note.is_empty().then(|| T::ReminderNoteRequired.s(lang).to_owned());
        let at = date.zip(time).map(|(d, t)| d.and_time(t));
        if at.is_some_and(|at| at <= now) {
            self.time_error = Some(T::ReminderInPast.s(lang).to_owned());
            return None;
        }
        at.filter(|_| self.note_error.is_none()).map(|at| (at, note))
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang, no: &TicketNo) -> Option<Command> {
        ui.strong(format!("{}（{}）", T::ReminderKind.s(lang), T::TimesInBeijingTime.s(lang)));
        let now = super::beijing(chrono::Utc::now()).naive_local();
        if self.date.is_empty() {
            self.date = now.format("%Y-%m-%d").to_string();
        }
        super::field(ui, T::ReminderDate.s(lang), &mut self.date, self.date_error.as_ref(), false);
        super::field(ui, T::ReminderTime.s(lang), &mut self.time, self.time_error.as_ref(), false);
        super::field(ui, T::ReminderNote.s(lang), &mut self.note, self.note_error.as_ref(), false);
        let mut cmd = None;
        ui.horizontal(|ui| {
            if ui.button(T::SetReminder.s(lang)).clicked() {
                self.result = None;
                cmd = self.check(now, lang).map(|(at, note)| Command::SetReminder { no: no.clone(), at, note });
            }
            match &self.result {
                Some(Ok(())) => {
                    ui.colored_label(egui::Color32::from_rgb(0, 140, 0), T::ReminderSet.s(lang));
                }
                Some(Err(e)) => {
                    ui.colored_label(egui::Color32::RED, e);
                }
                None => {}
            }
        });
        cmd
    }

    /// The server took the reminder: the fields empty for the next one.
    pub fn set(&mut self) {
        *self = ReminderForm { result: Some(Ok(())), ..ReminderForm::default() };
    }
}

/// A reminder that came due, waiting for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct DueNotice {
    pub id: i64,
    pub no: TicketNo,
    pub note: String,
    pub at: NaiveDateTime,
}

/// The reminders popped up and not yet answered, oldest shown first.
#[derive(Debug, Default)]
pub struct ReminderPopups {
    pub pending: Vec<DueNotice>,
}

impl ReminderPopups {
    /// A reminder came due: pop it up (the app then asks the OS for the user's attention).
    pub fn push(&mut self, notice: DueNotice) {
        if !self.pending.iter().any(|p| p.id == notice.id && p.no == notice.no) {
            self.pending.push(notice);
        }
    }

    /// Draws the oldest pending reminder; 打开工单 opens the ticket (it stays on the due list),
    /// 知道了 dismisses it.
    pub fn ui(&mut self, ctx: &egui::Context, lang: Lang) -> Option<Command> {
        let first = self.pending.first()?.clone();
        let mut cmd = None;
        egui::Window::new(T::ReminderPopup.s(lang))
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, egui::vec2(0.0, 0.0))
            .show(ctx, |ui| {
                ui.label(egui::RichText::new(format!("{} {}", T::TicketNo.s(lang), first.no)).strong().size(18.0));
                ui.label(&first.note);
                ui.label(format!("{}：{}（北京时间）", T::ReminderTime.s(lang), first.at.format("%Y-%m-%d %H:%M")));
                if self.pending.len() > 1 {
                    ui.label(format!("+{}", self.pending.len() - 1));
                }
                ui.horizontal(|ui| {
                    if ui.button(T::OpenTicket.s(lang)).clicked() {
                        cmd = Some(Command::GetTicket(first.no.clone()));
                    }
                    if ui.button(T::GotIt.s(lang)).clicked() {
                        cmd = Some(Command::DismissReminder { id: first.id });
                    }
                });
            });
        if cmd.is_some() {
            self.pending.remove(0);
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 30).and_then(|d| d.and_hms_opt(9, 0, 0)).expect("time")
    }

    #[test]
    fn a_reminder_needs_a_date_a_time_ahead_and_a_note_each_said_in_chinese() {
        let mut f = ReminderForm { date: "2026/11/30".into(), time: "25:00".into(), ..ReminderForm::default() };
        assert!(f.check(now(), Lang::Zh).is_none());
        assert_eq!(f.date_error.as_deref(), Some("日期格式应为 2026-11-30"));
        assert_eq!(f.time_error.as_deref(), Some("时间格式应为 14:30（北京时间）"));
        assert_eq!(f.note_error.as_deref(), Some("请填写催办内容"));
        f.date = "2026-11-30".into();
        f.time = "08:59".into();
        f.note = "请今日内答复".into();
        assert!(f.check(now(), Lang::Zh).is_none());
        assert_eq!(f.time_error.as_deref(), Some("催办时间应晚于现在"));
        f.time = "14:30".into();
        let (at, note) = f.check(now(), Lang::Zh).expect("valid");
        assert_eq!((at.format("%H:%M").to_string(), note.as_str()), ("14:30".to_owned(), "请今日内答复"));
        assert!(f.date_error.is_none() && f.time_error.is_none() && f.note_error.is_none());
    }
}
