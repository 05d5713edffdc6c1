//! The ticket list's filters (TKT-4): keywords, kind, state, channel, department, category
//! (searched by name or code; switchd matches the category and everything below it), the
//! registration date from / until (typed YYYY-MM-DD, Beijing dates, a bad one said beside its
//! field), overdue only, reminder due only; 清除筛选; and the user's saved filters (常用筛选),
//! kept by switchd per user so they follow the login from desk to desk.

use super::category::CategoryPicker;
use super::field;
use crate::backend::{Command, Failure};
use crate::i18n::{label, Lang, T};
use chrono::NaiveDate;
use eframe::egui;
use rexian_shared::*;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct TicketFilters {
    pub text: String,
    pub kind: Option<TicketKind>,
    pub state: Option<TicketState>,
    pub channel: Option<Channel>,
    pub department: Option<i64>,
    pub category: Option<String>,
    pub category_search: String,
    pub created_from: String,
    pub created_to: String,
    pub overdue_only: bool,
    pub reminder_due_only: bool,
    /// States of the preset in use (a handler's inbox); overrides `state`.
    pub preset: Option<Vec<TicketState>>,
    /// Errors beside their field: `created_from`, `created_to`.
    pub errors: BTreeMap<&'static str, String>,
    pub saved: SavedFilters,
}

/// The user's saved filters as switchd last listed them, and the naming of a new one.
#[derive(Debug, Default)]
pub struct SavedFilters {
    pub list: Vec<SavedFilter>,
    /// The one applied or saved last: 删除常用筛选 deletes it.
    pub current: Option<String>,
    /// The name to save the filters under.
    pub name: String,
    pub name_error: Option<String>,
    pub error: Option<String>,
}

/// A typed date, empty for none; a bad one is an error naming `field`.
fn parse_date(text: &str, field: T, lang: Lang) -> Result<Option<NaiveDate>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map(Some).map_err(|_| format!("{}{}", field.s(lang), T::BadDate.s(lang)))
}

impl TicketFilters {
    /// The query the filters make, or the errors to show beside their fields.
    pub fn query(&self, lang: Lang) -> Result<TicketQuery, BTreeMap<&'static str, String>> {
        let mut errors = BTreeMap::new();
        let from = parse_date(&self.created_from, T::CreatedFrom, lang).unwrap_or_else(|e| {
            errors.insert("created_from", e);
            None
        });
        let to = parse_date(&self.created_to, T::CreatedTo, lang).unwrap_or_else(|e| {
            errors.insert("created_to", e);
            None
        });
        if from.zip(to).is_some_and(|(f, t)| t < f) {
            errors.insert("created_to", T::DatesReversed.s(lang).to_owned());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(TicketQuery {
            kinds: self.kind.into_iter().collect(),
            states: self.preset.clone().unwrap_or_else(|| self.state.into_iter().collect()),
            channel: self.channel,
            category_code: self.category.clone(),
            department_id: self.department,
            created_from: from,
            created_to: to,
            overdue_only: self.overdue_only,
            reminder_due_only: self.reminder_due_only,
            text: Some(self.text.trim().to_owned()).filter(|t| !t.is_empty()),
            page_size: 50,
            ..TicketQuery::default()
        })
    }

    /// The search the filters ask for; with a bad field, nothing and its error beside it.
    pub fn search(&mut self, lang: Lang) -> Option<Command> {
        match self.query(lang) {
            Ok(q) => {
                self.errors.clear();
                Some(Command::SearchTickets(q))
            }
            Err(errors) => {
                self.errors = errors;
                None
            }
        }
    }

    /// Sets the filters to `q` (a saved filter); several states are kept as a preset.
    pub fn fill(&mut self, q: &TicketQuery) {
        let saved = std::mem::take(&mut self.saved);
        *self = TicketFilters {
            text: q.text.clone().unwrap_or_default(),
            kind: q.kinds.first().copied(),
            state: q.states.first().copied().filter(|_| q.states.len() == 1),
            preset: (q.states.len() > 1).then(|| q.states.clone()),
            channel: q.channel,
            department: q.department_id,
            category: q.category_code.clone(),
            created_from: q.created_from.map(|d| d.to_string()).unwrap_or_default(),
            created_to: q.created_to.map(|d| d.to_string()).unwrap_or_default(),
            overdue_only: q.overdue_only,
            reminder_due_only: q.reminder_due_only,
            saved,
            ..TicketFilters::default()
        };
    }

    /// 清除筛选: every filter back to "all"; the saved filters stay.
    pub fn clear(&mut self) {
        self.fill(&TicketQuery::default());
        self.saved.current = None;
    }

    /// Applies saved filter `name` and searches with it.
    fn apply(&mut self, name: &str, lang: Lang) -> Option<Command> {
        let q = self.saved.list.iter().find(|f| f.name == name)?.query.clone();
        self.fill(&q);
        self.saved.current = Some(name.to_owned());
        self.saved.name = name.to_owned();
        self.search(lang)
    }

    /// Saves the filters under the typed name (which must be 1 to 30 characters).
    fn save(&mut self, lang: Lang) -> Option<Command> {
        let name = self.saved.name.trim().to_owned();
        self.saved.error = None;
        self.saved.name_error = (name.is_empty() || name.chars().count() > 30).then(|| T::FilterNameInvalid.s(lang).to_owned());
        let query = match self.query(lang) {
            Ok(q) => q,
            Err(errors) => {
                self.errors = errors;
                return None;
            }
        };
        if self.saved.name_error.is_some() {
            return None;
        }
        self.saved.current = Some(name.clone());
        Some(Command::SaveFilter { name, query })
    }

    fn delete(&mut self, lang: Lang) -> Option<Command> {
        self.saved.error = None;
        match self.saved.current.clone() {
            Some(name) => Some(Command::DeleteSavedFilter(name)),
            None => {
                self.saved.error = Some(T::ChooseFilterFirst.s(lang).to_owned());
                None
            }
        }
    }

    /// switchd's list after loading, saving or deleting.
    pub fn listed(&mut self, list: Vec<SavedFilter>) {
        if self.saved.current.as_ref().is_some_and(|c| !list.iter().any(|f| f.name == *c)) {
            self.saved.current = None;
        }
        self.saved.list = list;
        self.saved.error = None;
        self.saved.name_error = None;
    }

    /// A saved-filter request was refused: said in Chinese where it belongs.
    pub fn saved_failed(&mut self, f: &Failure, lang: Lang) {
        match f.code {
            Some(ErrorCode::InvalidField) => self.saved.name_error = Some(T::FilterNameInvalid.s(lang).to_owned()),
            Some(ErrorCode::TooLarge) => self.saved.error = Some(T::TooManyFilters.s(lang).to_owned()),
            Some(ErrorCode::NotFound) => self.saved.error = Some(T::FilterGone.s(lang).to_owned()),
            _ => self.saved.error = Some(f.text(lang)),
        }
    }

    /// Draws the filters; returns the search, save or delete asked for.
    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang, departments: &[Department], categories: &[Category]) -> Option<Command> {
        let mut cmd = None;
        ui.horizontal_wrapped(|ui| {
            field(ui, T::Text.s(lang), &mut self.text, None, false);
            self.choices_ui(ui, lang, departments);
        });
        let picker = CategoryPicker { selected: &mut self.category, search: &mut self.category_search, error: None, tree: false, id_salt: "category-filter" };
        picker.ui(ui, lang, categories);
        ui.horizontal_wrapped(|ui| {
            field(ui, T::CreatedFrom.s(lang), &mut self.created_from, self.errors.get("created_from"), false);
            field(ui, T::CreatedTo.s(lang), &mut self.created_to, self.errors.get("created_to"), false);
        });
        ui.horizontal_wrapped(|ui| {
            ui.checkbox(&mut self.overdue_only, T::OverdueOnly.s(lang));
            ui.checkbox(&mut self.reminder_due_only, T::ReminderDueOnly.s(lang));
            if ui.button(T::Search.s(lang)).clicked() {
                self.preset = None;
                cmd = self.search(lang);
            }
            if ui.button(T::ClearFilters.s(lang)).clicked() {
                self.clear();
                cmd = self.search(lang);
            }
        });
        self.saved_ui(ui, lang).or(cmd)
    }

    /// The kind, state, channel and department choices.
    fn choices_ui(&mut self, ui: &mut egui::Ui, lang: Lang, departments: &[Department]) {
        let kinds = TicketKind::ALL.iter().map(|k| (*k, label(k.zh(), k.en(), lang)));
        choice(ui, T::Kind.s(lang), "kind-filter", &mut self.kind, kinds, lang);
        let states = TicketState::ALL.iter().map(|s| (*s, label(s.zh(), s.en(), lang)));
        choice(ui, T::State.s(lang), "state-filter", &mut self.state, states, lang);
        let channels = Channel::ALL.iter().map(|c| (*c, label(c.zh(), c.en(), lang)));
        choice(ui, T::Channel.s(lang), "channel-filter", &mut self.channel, channels, lang);
        let names = departments.iter().map(|d| (d.id, d.name.as_str()));
        choice(ui, T::Department.s(lang), "department-filter", &mut self.department, names, lang);
    }

    /// 常用筛选: one button per saved filter (applies it and searches), the name to save under,
    /// save and delete.
    fn saved_ui(&mut self, ui: &mut egui::Ui, lang: Lang) -> Option<Command> {
        let mut cmd = None;
        ui.horizontal_wrapped(|ui| {
            ui.label(format!("{}：", T::SavedFilters.s(lang)));
            if self.saved.list.is_empty() {
                ui.label(T::NoSavedFilters.s(lang));
            }
            let mut chosen = None;
            for f in &self.saved.list {
                if ui.selectable_label(self.saved.current.as_ref() == Some(&f.name), &f.name).clicked() {
                    chosen = Some(f.name.clone());
                }
            }
            if let Some(name) = chosen {
                cmd = self.apply(&name, lang);
            }
        });
        ui.horizontal_wrapped(|ui| {
            field(ui, T::FilterName.s(lang), &mut self.saved.name, self.saved.name_error.as_ref(), false);
            if ui.button(T::SaveFilter.s(lang)).clicked() {
                cmd = self.save(lang);
            }
            if ui.button(T::DeleteFilter.s(lang)).clicked() {
                cmd = self.delete(lang);
            }
        });
        if let Some(e) = &self.saved.error {
            ui.colored_label(egui::Color32::RED, e);
        }
        cmd
    }
}

/// A combo box named `name` (kittest and screen readers find it by that label) choosing one of
/// `options` or 全部 (`None`).
fn choice<'a, V: Copy + PartialEq>(ui: &mut egui::Ui, name: &str, salt: &str, value: &mut Option<V>, options: impl Iterator<Item = (V, &'a str)>, lang: Lang) {
    let all = T::All.s(lang);
    let options: Vec<(V, &str)> = options.collect();
    let shown = value.and_then(|v| options.iter().find(|(o, _)| *o == v)).map_or(all, |(_, text)| *text);
    let l = ui.label(name);
    egui::ComboBox::from_id_salt(salt).selected_text(shown).show_ui(ui, |ui| {
        ui.selectable_value(value, None, all);
        for (v, text) in &options {
            ui.selectable_value(value, Some(*v), *text);
        }
    }).response.labelled_by(l.id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::FailureKind;

    #[test]
    fn bad_dates_are_said_beside_their_field_naming_it() {
        let mut f = TicketFilters { created_from: "2026-13-01".into(), created_to: "昨天".into(), ..TicketFilters::default() };
        let errors = f.query(Lang::Zh).expect_err("bad dates");
        assert_eq!(errors.get("created_from").map(String::as_str), Some("登记日期起应为YYYY-MM-DD格式的北京日期，例如2026-11-29"));
        assert_eq!(errors.get("created_to").map(String::as_str), Some("登记日期止应为YYYY-MM-DD格式的北京日期，例如2026-11-29"));
        f.created_from = "2026-11-29".into();
        f.created_to = "2026-11-01".into();
        assert_eq!(f.query(Lang::Zh).expect_err("reversed").get("created_to").map(String::as_str), Some("登记日期止不能早于登记日期起"));
        assert!(f.search(Lang::Zh).is_none() && f.errors.contains_key("created_to"), "no search with a bad date");
        f.created_to = " 2026-11-30 ".into();
        assert!(f.search(Lang::Zh).is_some() && f.errors.is_empty());
    }

    #[test]
    fn a_saved_query_fills_the_filters_and_makes_the_same_query() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d);
        let q = TicketQuery {
            kinds: vec![TicketKind::Report],
            states: vec![TicketState::Dispatched],
            channel: Some(Channel::Letter),
            category_code: Some("04".into()),
            department_id: Some(6),
            created_from: day(1),
            created_to: day(29),
            overdue_only: true,
            reminder_due_only: true,
            text: Some("电梯".into()),
            page_size: 50,
            ..TicketQuery::default()
        };
        let mut f = TicketFilters::default();
        f.fill(&q);
        assert_eq!(f.created_from, "2026-11-01");
        assert_eq!(f.query(Lang::Zh), Ok(q));
        f.clear();
        assert_eq!(f.query(Lang::Zh), Ok(TicketQuery { page_size: 50, ..TicketQuery::default() }));
    }

    #[test]
    fn saving_needs_a_name_of_one_to_thirty_characters_and_refusals_are_chinese() {
        let mut f = TicketFilters::default();
        assert!(f.save(Lang::Zh).is_none());
        assert_eq!(f.saved.name_error.as_deref(), Some("常用筛选名称应为1至30个字"));
        f.saved.name = "很".repeat(31);
        assert!(f.save(Lang::Zh).is_none());
        f.saved.name = " 我的超期件 ".into();
        assert!(matches!(f.save(Lang::Zh), Some(Command::SaveFilter { name, .. }) if name == "我的超期件"));
        let refused = |code| Failure { kind: FailureKind::Desk, code: Some(code), field: None, detail: String::new() };
        f.saved_failed(&refused(ErrorCode::TooLarge), Lang::Zh);
        assert_eq!(f.saved.error.as_deref(), Some("常用筛选已达上限（50个），请先删除不用的"));
        f.saved_failed(&refused(ErrorCode::NotFound), Lang::Zh);
        assert_eq!(f.saved.error.as_deref(), Some("该常用筛选已不存在，可能已在其他座席上删除"));
        f.saved.current = None;
        assert!(f.delete(Lang::Zh).is_none());
        assert_eq!(f.saved.error.as_deref(), Some("请先点选要删除的常用筛选"));
    }
}
