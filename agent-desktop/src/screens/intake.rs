//! Ticket intake (TKT-1, TKT-2) for every kind: a searchable category tree, the caller, the
//! party complained about, flags; errors in Chinese beside their field, found locally before
//! sending and mapped from the server's `invalid_field` replies; after saving, the ticket number
//! and verification code to read to the caller.

use super::consult::{Consultation, Outcome};
use super::category::CategoryPicker;
use super::{area, field};
use crate::backend::{Command, Failure};
use crate::i18n::{label, Lang, T};
use crate::shortcuts::{hint, Shortcut};
use eframe::egui;
use rexian_shared::*;
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct IntakeForm {
    pub kind: TicketKind,
    pub channel: Channel,
    pub category: Option<String>,
    pub category_filter: String,
    pub caller_name: String,
    pub phone: String,
    pub enterprise: String,
    pub address: String,
    pub id_number: String,
    pub email: String,
    pub subject_name: String,
    pub credit_code: String,
    pub subject_address: String,
    pub summary: String,
    pub content: String,
    pub anonymous: bool,
    pub confidential: bool,
    pub consent: bool,
    /// The call record the ticket is taken on (from the offer).
    pub call_record: Option<i64>,
    /// Errors by field name (the server's names: `summary`, `caller.email`, …).
    pub errors: BTreeMap<String, String>,
    pub error: Option<String>,
    pub saving: bool,
    /// (number, verification code) of the ticket just saved.
    pub saved: Option<(TicketNo, String)>,
    /// What became of a consultation answered or deferred at intake.
    pub saved_outcome: Option<TicketState>,
    /// Suggestions, answer and reply arrangement of a consultation (TKT-3).
    pub consult: Consultation,
    /// Put the cursor in the summary on the next frame (a screen pop or Ctrl+N), so the agent
    /// types while the caller talks.
    pub focus_summary: bool,
}

impl Default for IntakeForm {
    fn default() -> Self {
        IntakeForm {
            kind: TicketKind::Complaint,
            channel: Channel::Phone,
            category: None,
            category_filter: String::new(),
            caller_name: String::new(),
            phone: String::new(),
            enterprise: String::new(),
            address: String::new(),
            id_number: String::new(),
            email: String::new(),
            subject_name: String::new(),
            credit_code: String::new(),
            subject_address: String::new(),
            summary: String::new(),
            content: String::new(),
            anonymous: false,
            confidential: false,
            consent: true,
            call_record: None,
            errors: BTreeMap::new(),
            error: None,
            saving: false,
            saved: None,
            saved_outcome: None,
            consult: Consultation::default(),
            focus_summary: false,
        }
    }
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

impl IntakeForm {
    /// A fresh form for a call from `phone`, linked to its call record.
    pub fn for_call(phone: &str, record: Option<i64>) -> IntakeForm {
        IntakeForm { phone: phone.to_owned(), call_record: record, focus_summary: true, ..IntakeForm::default() }
    }

    /// The ticket, or the errors by field (checked as switchd checks them).
    pub fn build(&self, lang: Lang) -> Result<NewTicket, BTreeMap<String, String>> {
        let mut errors = BTreeMap::new();
        let mut err = |f: &str, t: T| {
            errors.insert(f.to_owned(), t.s(lang).to_owned());
        };
        let summary_len = self.summary.trim().chars().count();
        if summary_len == 0 || summary_len > 200 {
            err("summary", T::SummaryRequired);
        }
        if self.content.chars().count() > 20_000 {
            err("content", T::TooLong);
        }
        let phone = match opt(&self.phone) {
            Some(p) => match PhoneNumber::parse(&p) {
                Ok(p) => Some(p),
                Err(_) => {
                    err("caller.phone", T::PhoneInvalid);
                    None
                }
            },
            None => None,
        };
        if opt(&self.email).is_some_and(|e| !e.contains('@')) {
            err("caller.email", T::EmailInvalid);
        }
        if let Some(id) = opt(&self.id_number) {
            let ok = id.len() == 18 && id[..17].bytes().all(|b| b.is_ascii_digit()) && id[17..].chars().all(|c| c.is_ascii_digit() || c == 'X' || c == 'x');
            if !ok {
                err("caller.id_number", T::IdInvalid);
            }
        }
        let credit = match opt(&self.credit_code) {
            Some(c) => match CreditCode::parse(&c) {
                Ok(c) => Some(c),
                Err(_) => {
                    err("subject.credit_code", T::CreditInvalid);
                    None
                }
            },
            None => None,
        };
        let subject_given = opt(&self.subject_name).is_some() || opt(&self.credit_code).is_some() || opt(&self.subject_address).is_some();
        if subject_given && opt(&self.subject_name).is_none() {
            err("subject.name", T::SubjectNameRequired);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(NewTicket {
            kind: self.kind,
            channel: self.channel,
            caller: CallerInfo {
                name: opt(&self.caller_name),
                phone,
                enterprise: opt(&self.enterprise),
                address: opt(&self.address),
                id_number: opt(&self.id_number),
                email: opt(&self.email),
            },
            subject: subject_given.then(|| SubjectInfo { name: self.subject_name.trim().to_owned(), credit_code: credit, address: opt(&self.subject_address) }),
            category_code: self.category.clone(),
            summary: self.summary.trim().to_owned(),
            content: self.content.clone(),
            anonymous: self.anonymous,
            confidential: self.confidential,
            consent_to_contact: self.consent,
            call_id: self.call_record.map(|r| r.to_string()),
        })
    }

    pub fn submit(&mut self, lang: Lang) -> Option<Command> {
        self.submit_with(lang, None)
    }

    /// Registers the ticket, a consultation answered or deferred right after when `outcome` says.
    fn submit_with(&mut self, lang: Lang, outcome: Option<Outcome>) -> Option<Command> {
        self.error = None;
        self.saved = None;
        let then = outcome.map(|o| self.consult.action(o, lang)).transpose();
        match (self.build(lang), then) {
            (Ok(t), Ok(then)) => {
                self.errors.clear();
                self.saving = true;
                Some(Command::CreateTicket(Box::new(t), then))
            }
            (built, then) => {
                let mut errors = built.err().unwrap_or_default();
                if let Err((field, message)) = then {
                    errors.insert(field.to_owned(), message);
                }
                tracing::info!(fields = ?errors.keys().collect::<Vec<_>>(), "ticket not saved: fields to correct");
                self.errors = errors;
                self.error = Some(T::FixErrors.s(lang).to_owned());
                None
            }
        }
    }

    /// The server refused the ticket: the message goes beside the field it names.
    pub fn rejected(&mut self, f: &Failure, lang: Lang) {
        self.saving = false;
        let text = f.text(lang);
        match f.field.as_deref() {
            Some(field) if f.code == Some(ErrorCode::InvalidField) => {
                self.errors.insert(field.to_owned(), f.detail.clone());
                self.error = Some(T::FixErrors.s(lang).to_owned());
            }
            _ => self.error = Some(text),
        }
    }

    /// Saved: keep the number and code on screen and clear the form for the next intake.
    pub fn saved(&mut self, t: &Ticket) {
        let record = self.call_record;
        let phone = self.phone.clone();
        *self = IntakeForm { phone, call_record: record, ..IntakeForm::default() };
        self.saved = Some((t.no.clone(), t.verification_code.clone().unwrap_or_default()));
        self.saved_outcome = matches!(t.state, TicketState::Closed | TicketState::LaterReply).then_some(t.state);
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang, categories: &[Category]) -> Option<Command> {
        let mut cmd = None;
        ui.heading(T::TabIntake.s(lang));
        if let Some((no, code)) = &self.saved {
            egui::Frame::new().fill(egui::Color32::from_rgb(225, 245, 225)).inner_margin(8.0).show(ui, |ui| {
                ui.label(T::Saved.s(lang));
                ui.label(egui::RichText::new(format!("{}：{no}", T::TicketNo.s(lang))).size(22.0).strong());
                ui.label(egui::RichText::new(format!("{}：{code}", T::VerificationCode.s(lang))).size(22.0).strong());
                match self.saved_outcome {
                    Some(TicketState::Closed) => ui.label(T::AnsweredAtIntake.s(lang)),
                    Some(_) => ui.label(T::DeferredAtIntake.s(lang)),
                    None => ui.label(""),
                };
                if ui.button(T::OpenTicket.s(lang)).on_hover_text(hint(Shortcut::OpenSaved, lang)).clicked() {
                    cmd = Some(Command::GetTicket(no.clone()));
                }
            });
        }
        ui.horizontal_wrapped(|ui| {
            ui.label(T::Kind.s(lang));
            for k in TicketKind::ALL {
                ui.selectable_value(&mut self.kind, *k, label(k.zh(), k.en(), lang));
            }
        });
        ui.horizontal_wrapped(|ui| {
            ui.label(T::Channel.s(lang));
            egui::ComboBox::from_id_salt("channel").selected_text(label(self.channel.zh(), self.channel.en(), lang)).show_ui(ui, |ui| {
                for c in Channel::ALL {
                    ui.selectable_value(&mut self.channel, *c, label(c.zh(), c.en(), lang));
                }
            });
            if let Some(r) = self.call_record {
                ui.label(format!("{}：#{r}", T::LinkedCall.s(lang)));
            }
        });
        let picker = CategoryPicker { selected: &mut self.category, search: &mut self.category_filter, error: self.errors.get("category_code"), tree: true, id_salt: "categories" };
        picker.ui(ui, lang, categories);
        let e = &self.errors;
        field(ui, T::CallerPhone.s(lang), &mut self.phone, e.get("caller.phone"), false);
        field(ui, T::CallerName.s(lang), &mut self.caller_name, e.get("caller.name"), false);
        field(ui, T::CallerEnterprise.s(lang), &mut self.enterprise, e.get("caller.enterprise"), false);
        field(ui, T::CallerAddress.s(lang), &mut self.address, e.get("caller.address"), false);
        field(ui, T::IdNumber.s(lang), &mut self.id_number, e.get("caller.id_number"), false);
        field(ui, T::Email.s(lang), &mut self.email, e.get("caller.email"), false);
        if matches!(self.kind, TicketKind::Complaint | TicketKind::Report) {
            ui.label(egui::RichText::new(T::Subject.s(lang)).strong());
            field(ui, T::SubjectName.s(lang), &mut self.subject_name, e.get("subject.name"), false);
            field(ui, T::CreditCode.s(lang), &mut self.credit_code, e.get("subject.credit_code"), false);
            field(ui, T::SubjectAddress.s(lang), &mut self.subject_address, e.get("subject.address"), false);
        }
        let summary = field(ui, T::Summary.s(lang), &mut self.summary, e.get("summary"), false);
        if std::mem::take(&mut self.focus_summary) {
            summary.request_focus();
        }
        area(ui, T::Content.s(lang), &mut self.content, e.get("content"));
        if self.kind == TicketKind::Consultation {
            if let Some(outcome) = self.consult.ui(ui, lang, &self.errors, self.saving) {
                cmd = self.submit_with(lang, Some(outcome));
            }
        }
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.anonymous, T::Anonymous.s(lang));
            ui.checkbox(&mut self.confidential, T::Confidential.s(lang));
            ui.checkbox(&mut self.consent, T::Consent.s(lang));
        });
        ui.horizontal(|ui| {
            if ui.add_enabled(!self.saving, egui::Button::new(T::Save.s(lang))).on_hover_text(hint(Shortcut::Save, lang)).clicked() {
                cmd = self.submit(lang);
            }
            if ui.button(T::Clear.s(lang)).clicked() {
                *self = IntakeForm::default();
            }
            if self.saving {
                ui.label(T::Saving.s(lang));
            }
        });
        if let Some(err) = &self.error {
            ui.colored_label(egui::Color32::RED, err);
        }
        cmd.or_else(|| self.ask_for_suggestions(ui.ctx()))
    }

    /// A consultation's reference answers follow what the agent types.
    fn ask_for_suggestions(&mut self, ctx: &egui::Context) -> Option<Command> {
        if self.kind != TicketKind::Consultation {
            return None;
        }
        let text = format!("{} {}", self.summary, self.content);
        let ask = self.consult.suggest(&text, std::time::Instant::now()).map(Command::SuggestAnswers);
        if let Some(wait) = self.consult.wake_in() {
            ctx.request_repaint_after(wait);
        }
        ask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::FailureKind;

    #[test]
    fn local_checks_put_chinese_messages_beside_their_fields() {
        let mut f = IntakeForm::for_call("12a", Some(9));
        f.email = "nobody".into();
        f.credit_code = "91350100M000100Y44".into();
        f.id_number = "123".into();
        let errors = f.build(Lang::Zh).expect_err("invalid");
        assert_eq!(errors.get("summary").map(String::as_str), Some("请填写摘要（1至200字）"));
        assert_eq!(errors.get("caller.phone").map(String::as_str), Some("电话号码应为3至20位数字"));
        assert_eq!(errors.get("caller.email").map(String::as_str), Some("电子邮箱格式不正确"));
        assert!(errors.contains_key("subject.credit_code") && errors.contains_key("subject.name") && errors.contains_key("caller.id_number"));
        let mut f = IntakeForm::for_call("138-0013-8000", Some(9));
        f.summary = "电梯异响".into();
        f.credit_code = "91350100M000100Y43".into();
        f.subject_name = "某物业公司".into();
        let t = f.build(Lang::Zh).expect("valid");
        assert_eq!(t.caller.phone.map(|p| p.to_string()), Some("13800138000".into()));
        assert_eq!(t.call_id.as_deref(), Some("9"), "linked to the call record");
        assert_eq!(t.subject.and_then(|s| s.credit_code).map(|c| c.to_string()), Some("91350100M000100Y43".into()));
    }

    #[test]
    fn a_server_field_error_lands_beside_that_field() {
        let mut f = IntakeForm::default();
        let failure = Failure { kind: FailureKind::Desk, code: Some(ErrorCode::InvalidField), field: Some("category_code".into()), detail: "分类代码42不存在 / unknown category 42".into() };
        f.rejected(&failure, Lang::Zh);
        assert_eq!(f.errors.get("category_code").map(String::as_str), Some("分类代码42不存在 / unknown category 42"));
        assert_eq!(f.error.as_deref(), Some("请更正标红的内容"));
        let forbidden = Failure { kind: FailureKind::Desk, code: Some(ErrorCode::Forbidden), field: None, detail: String::new() };
        f.rejected(&forbidden, Lang::Zh);
        assert_eq!(f.error.as_deref(), Some("您的角色无权执行此操作"));
    }
}
