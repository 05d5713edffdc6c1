//! The screens of the workstation, each a struct with its state and a `ui()`.

pub mod consult;
pub mod due;
pub mod category;
pub mod intake;
pub mod knowledge;
pub mod linked_calls;
pub mod login;
pub mod phone;
pub mod reminders;
pub mod settings;
pub mod ticket_filters;
pub mod tickets;

use eframe::egui;

/// Width of the label column of forms.
pub const LABEL_WIDTH: f32 = 110.0;

/// A single-line text field labelled by `label` (so tests and screen readers find it by name),
/// with an error beside it in red when there is one.
pub fn field(ui: &mut egui::Ui, label: &str, value: &mut String, error: Option<&String>, password: bool) -> egui::Response {
    let resp = ui
        .horizontal(|ui| {
            // Labels in a fixed-width column so the fields line up.
            let l = ui
                .allocate_ui_with_layout(egui::vec2(LABEL_WIDTH, 20.0), egui::Layout::left_to_right(egui::Align::Center), |ui| {
                    ui.set_min_width(LABEL_WIDTH);
                    ui.label(label)
                })
                .inner;
            let resp = ui.add(egui::TextEdit::singleline(value).password(password).desired_width(220.0)).labelled_by(l.id);
            if let Some(e) = error {
                ui.colored_label(egui::Color32::RED, e);
            }
            resp
        })
        .inner;
    resp
}

/// A multi-line text field labelled by `label`, with its error below.
pub fn area(ui: &mut egui::Ui, label: &str, value: &mut String, error: Option<&String>) {
    let l = ui.label(label);
    ui.add(egui::TextEdit::multiline(value).desired_rows(3).desired_width(f32::INFINITY)).labelled_by(l.id);
    if let Some(e) = error {
        ui.colored_label(egui::Color32::RED, e);
    }
}

/// `mm:ss` (or `h:mm:ss`) of a duration.
pub fn clock(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 { format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) } else { format!("{:02}:{:02}", s / 60, s % 60) }
}

/// A UTC instant in Beijing time (UTC+8, no daylight saving), as every time on screen is.
pub fn beijing(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::FixedOffset> {
    at.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
}
