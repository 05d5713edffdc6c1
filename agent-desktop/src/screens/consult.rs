//! A consultation at intake (TKT-3): as the agent types the summary and content, reference
//! answers come up — knowledge-base articles and earlier answered consultations — to cite or
//! to take as the answer; then 直接答复 registers and answers the ticket in one go, and
//! 暂不能答复 registers it as a later reply with the arrangement made with the caller.

use crate::i18n::{label, Lang, T};
use eframe::egui;
use rexian_shared::{ArticleHit, EarlierAnswer, TicketAction, TicketNo};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long the text must rest before suggestions are asked for: every keystroke would be a
/// request, and half-typed words suggest nothing useful.
const SETTLE: Duration = Duration::from_millis(600);

/// What to do with a consultation after registering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answer,
    Defer,
}

#[derive(Debug, Default)]
pub struct Consultation {
    pub answer: String,
    /// For 暂不能答复: how and when the caller will be answered.
    pub contact_note: String,
    pub articles: Vec<ArticleHit>,
    pub answers: Vec<EarlierAnswer>,
    pub cited_articles: BTreeSet<i64>,
    pub cited_tickets: BTreeSet<TicketNo>,
    /// The text last asked about, and the text seen last with when it changed.
    asked: String,
    seen: String,
    changed_at: Option<Instant>,
}

impl Consultation {
    /// Asks for suggestions once `text` has rested for [`SETTLE`] and differs from the last
    /// text asked about.
    pub fn suggest(&mut self, text: &str, now: Instant) -> Option<String> {
        let text = text.trim();
        if text != self.seen {
            self.seen = text.to_owned();
            self.changed_at = Some(now);
        }
        let settled = self.changed_at.is_some_and(|t| now.duration_since(t) >= SETTLE);
        if !settled || text.is_empty() || text == self.asked {
            return None;
        }
        self.asked = text.to_owned();
        Some(self.asked.clone())
    }

    /// Keeps suggestions for the text asked last (an older reply arriving late is dropped).
    pub fn suggestions(&mut self, text: &str, articles: Vec<ArticleHit>, answers: Vec<EarlierAnswer>) {
        if text == self.asked {
            self.articles = articles;
            self.answers = answers;
        }
    }

    /// How long until [`Consultation::suggest`] may act, for a repaint.
    /// `None` once settled: the frame that saw it settle has asked already (or had nothing to ask).
    pub fn wake_in(&self) -> Option<Duration> {
        let left = SETTLE.checked_sub(self.changed_at?.elapsed())?;
        (self.seen != self.asked && !left.is_zero()).then_some(left)
    }

    /// The action for `outcome`, or the field to correct with its message.
    pub fn action(&self, outcome: Outcome, lang: Lang) -> Result<TicketAction, (&'static str, String)> {
        match outcome {
            Outcome::Answer => {
                let n = self.answer.trim().chars().count();
                if !(1..=2000).contains(&n) {
                    return Err(("answer", T::AnswerRequired.s(lang).to_owned()));
                }
                Ok(TicketAction::AnswerDirectly {
                    answer: self.answer.trim().to_owned(),
                    cited_articles: self.cited_articles.iter().copied().collect(),
                    cited_tickets: self.cited_tickets.iter().cloned().collect(),
                })
            }
            Outcome::Defer => {
                let n = self.contact_note.trim().chars().count();
                if !(1..=500).contains(&n) {
                    return Err(("contact_note", T::ContactNoteRequired.s(lang).to_owned()));
                }
                Ok(TicketAction::DeferAnswer { contact_note: self.contact_note.trim().to_owned() })
            }
        }
    }

    /// The suggestions, the answer box and the two outcomes; the outcome clicked, if any.
    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang, errors: &BTreeMap<String, String>, busy: bool) -> Option<Outcome> {
        ui.label(egui::RichText::new(T::SuggestedAnswers.s(lang)).strong());
        self.suggestions_ui(ui, lang);
        super::area(ui, T::AnswerText.s(lang), &mut self.answer, errors.get("answer"));
        super::field(ui, T::ContactNote.s(lang), &mut self.contact_note, errors.get("contact_note"), false);
        let mut outcome = None;
        ui.horizontal(|ui| {
            if ui.add_enabled(!busy, egui::Button::new(T::AnswerDirectly.s(lang))).clicked() {
                outcome = Some(Outcome::Answer);
            }
            if ui.add_enabled(!busy, egui::Button::new(T::DeferAnswer.s(lang))).clicked() {
                outcome = Some(Outcome::Defer);
            }
        });
        outcome
    }

    fn suggestions_ui(&mut self, ui: &mut egui::Ui, lang: Lang) {
        if self.articles.is_empty() && self.answers.is_empty() {
            ui.weak(T::NoSuggestions.s(lang));
            return;
        }
        for a in &self.articles {
            ui.horizontal_wrapped(|ui| {
                let mut cited = self.cited_articles.contains(&a.id);
                if ui.checkbox(&mut cited, format!("{}【{}】{}", T::Cite.s(lang), label(a.kind.zh(), a.kind.en(), lang), a.title)).changed() {
                    toggle(&mut self.cited_articles, a.id, cited);
                }
            });
            ui.weak(&a.snippet);
        }
        let mut take = None;
        for e in &self.answers {
            ui.horizontal_wrapped(|ui| {
                let mut cited = self.cited_tickets.contains(&e.no);
                if ui.checkbox(&mut cited, format!("{}【{}】{} {}", T::Cite.s(lang), T::EarlierAnswer.s(lang), e.no, e.summary)).changed() {
                    toggle(&mut self.cited_tickets, e.no.clone(), cited);
                }
                if ui.small_button(T::UseAnswer.s(lang)).clicked() {
                    take = Some(e.clone());
                }
            });
            ui.weak(&e.answer);
        }
        if let Some(e) = take {
            self.answer = e.answer;
            self.cited_tickets.insert(e.no);
        }
    }
}

fn toggle<K: Ord>(set: &mut BTreeSet<K>, key: K, on: bool) {
    if on {
        set.insert(key);
    } else {
        set.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_asked_once_the_text_rests_and_only_when_it_changed() {
        let mut c = Consultation::default();
        let t0 = Instant::now();
        assert_eq!(c.suggest("生产许可", t0), None, "just typed");
        assert_eq!(c.suggest("生产许可证", t0 + Duration::from_millis(300)), None, "still typing");
        assert_eq!(c.suggest("生产许可证", t0 + Duration::from_millis(950)).as_deref(), Some("生产许可证"));
        assert_eq!(c.suggest("生产许可证 ", t0 + Duration::from_secs(3)), None, "asked already");
        assert_eq!(c.suggest("", t0 + Duration::from_secs(4)), None);
        c.suggestions("生产许可", Vec::new(), vec![EarlierAnswer { no: TicketNo::parse("202611280001").unwrap(), summary: "x".into(), answer: "y".into() }]);
        assert!(c.answers.is_empty(), "a late reply for older text is dropped");
    }

    #[test]
    fn each_outcome_names_the_field_it_lacks() {
        let mut c = Consultation::default();
        assert_eq!(c.action(Outcome::Answer, Lang::Zh).map_err(|e| e.0), Err("answer"));
        assert_eq!(c.action(Outcome::Defer, Lang::Zh).map_err(|e| e.0), Err("contact_note"));
        c.answer = " 有效期五年。 ".into();
        c.cited_articles.insert(7);
        let Ok(TicketAction::AnswerDirectly { answer, cited_articles, .. }) = c.action(Outcome::Answer, Lang::Zh) else { panic!("an answer") };
        assert_eq!((answer.as_str(), cited_articles), ("有效期五年。", vec![7]));
    }
}
