//! The category picker of the intake form and the ticket list's filters: the chosen category
//! (× clears it), a search by name or code, and the matches (or, in the form, the whole tree
//! while nothing is typed).

use crate::i18n::{Lang, T};
use eframe::egui;
use rexian_shared::Category;

/// The picker's state: what is chosen and what is typed into its search.
pub struct CategoryPicker<'a> {
    pub selected: &'a mut Option<String>,
    pub search: &'a mut String,
    /// Shown in red beside the chosen category.
    pub error: Option<&'a String>,
    /// Show the tree while the search is empty (the intake form); the filters show matches only.
    pub tree: bool,
    pub id_salt: &'a str,
}

fn name_of(categories: &[Category], code: &str) -> String {
    categories.iter().find(|c| c.code == code).map(|c| c.name.clone()).unwrap_or_default()
}

impl CategoryPicker<'_> {
    pub fn ui(self, ui: &mut egui::Ui, lang: Lang, categories: &[Category]) {
        ui.horizontal(|ui| {
            let current = match self.selected.as_deref() {
                Some(code) => format!("{code} {}", name_of(categories, code)),
                None => T::NoCategory.s(lang).to_owned(),
            };
            ui.label(format!("{}：{current}", T::Category.s(lang)));
            if self.selected.is_some() && ui.small_button("×").clicked() {
                *self.selected = None;
            }
            if let Some(e) = self.error {
                ui.colored_label(egui::Color32::RED, e);
            }
        });
        super::field(ui, T::CategorySearch.s(lang), self.search, None, false);
        let filter = self.search.trim().to_owned();
        if filter.is_empty() && !self.tree {
            return;
        }
        let selected = self.selected;
        egui::ScrollArea::vertical().id_salt(self.id_salt).max_height(140.0).show(ui, |ui| {
            let mut choice = |ui: &mut egui::Ui, code: &String, text: String| {
                if ui.selectable_label(selected.as_deref() == Some(code.as_str()), text).clicked() {
                    *selected = Some(code.clone());
                }
            };
            if filter.is_empty() {
                for top in categories.iter().filter(|c| c.parent_code.is_none()) {
                    egui::CollapsingHeader::new(format!("{} {}", top.code, top.name)).id_salt(&top.code).show(ui, |ui| {
                        choice(ui, &top.code, format!("{} {}", top.code, top.name));
                        for child in categories.iter().filter(|c| c.parent_code.as_deref() == Some(&top.code)) {
                            choice(ui, &child.code, format!("{} {}", child.code, child.name));
                        }
                    });
                }
            } else {
                for c in categories.iter().filter(|c| c.name.contains(&filter) || c.code.starts_with(&filter)) {
                    let path = match &c.parent_code {
                        Some(p) => format!("{} {} › {}", c.code, name_of(categories, p), c.name),
                        None => format!("{} {}", c.code, c.name),
                    };
                    choice(ui, &c.code, path);
                }
            }
        });
    }
}
