//! Reference materials (KB-1) beside the call: Chinese full-text search of the published
//! knowledge base, for answering consultations (TKT-3).

use crate::backend::Command;
use crate::i18n::{label, Lang, T};
use eframe::egui;
use rexian_shared::ArticleHit;

#[derive(Debug, Default)]
pub struct KnowledgePanel {
    pub query: String,
    /// `None` until the first search returns.
    pub hits: Option<Vec<ArticleHit>>,
}

impl KnowledgePanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang) -> Option<Command> {
        let mut cmd = None;
        ui.heading(T::Knowledge.s(lang));
        ui.horizontal(|ui| {
            let resp = super::field(ui, T::KnowledgeQuery.s(lang), &mut self.query, None, false);
            let enter = resp.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button(T::KnowledgeSearch.s(lang)).clicked() || enter) && !self.query.trim().is_empty() {
                cmd = Some(Command::SearchArticles(self.query.trim().to_owned()));
            }
        });
        match &self.hits {
            Some(hits) if hits.is_empty() => {
                ui.weak(T::NoArticles.s(lang));
            }
            Some(hits) => {
                for h in hits {
                    ui.label(egui::RichText::new(format!("【{}】{}", label(h.kind.zh(), h.kind.en(), lang), h.title)).strong());
                    ui.label(&h.snippet);
                    ui.add_space(4.0);
                }
            }
            None => {}
        }
        cmd
    }
}
