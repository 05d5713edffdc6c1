//! Login: server address, user name, password; the certificate warning when a pinned server
//! presents another certificate.

use super::field;
use crate::backend::{Command, Failure};
use crate::i18n::{Lang, T};
use eframe::egui;

#[derive(Debug, Default)]
pub struct LoginScreen {
    pub server: String,
    pub username: String,
    pub password: String,
    pub busy: bool,
    pub error: Option<String>,
    pub field_errors: std::collections::BTreeMap<&'static str, String>,
    /// (server, pinned, presented) while the certificate warning shows.
    pub cert_changed: Option<(String, String, String)>,
}

impl LoginScreen {
    pub fn new(server: &str, username: &str) -> Self {
        LoginScreen { server: server.to_owned(), username: username.to_owned(), ..Default::default() }
    }

    /// Checks the fields locally; the command to send when they are fine.
    pub fn submit(&mut self, lang: Lang) -> Option<Command> {
        self.field_errors.clear();
        self.error = None;
        let server = self.server.trim();
        let valid_server = server.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !valid_server {
            self.field_errors.insert("server", T::BadServerAddress.s(lang).into());
        }
        if self.username.trim().is_empty() {
            self.field_errors.insert("username", T::UsernameRequired.s(lang).into());
        }
        if self.password.is_empty() {
            self.field_errors.insert("password", T::PasswordRequired.s(lang).into());
        }
        if !self.field_errors.is_empty() {
            return None;
        }
        self.busy = true;
        Some(Command::Login { server: server.to_owned(), username: self.username.trim().to_owned(), password: self.password.clone() })
    }

    pub fn failed(&mut self, f: &Failure, lang: Lang) {
        self.busy = false;
        self.password.clear();
        self.error = Some(f.text(lang));
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang) -> Option<Command> {
        let mut cmd = None;
        ui.heading(T::LoginTitle.s(lang));
        ui.add_space(8.0);
        if let Some((server, pinned, presented)) = self.cert_changed.clone() {
            egui::Frame::new().stroke(egui::Stroke::new(2.0, egui::Color32::RED)).inner_margin(8.0).show(ui, |ui| {
                ui.colored_label(egui::Color32::RED, egui::RichText::new(T::CertChangedTitle.s(lang)).strong().size(18.0));
                ui.label(T::CertChangedBody.s(lang));
                ui.label(format!("{}：{pinned}", T::PinnedFingerprint.s(lang)));
                ui.label(format!("{}：{presented}", T::PresentedFingerprint.s(lang)));
                if ui.button(T::TrustNewCert.s(lang)).clicked() {
                    self.cert_changed = None;
                    cmd = Some(Command::TrustNewCertificate { server });
                }
            });
            ui.add_space(8.0);
        }
        field(ui, T::Server.s(lang), &mut self.server, self.field_errors.get("server"), false);
        field(ui, T::Username.s(lang), &mut self.username, self.field_errors.get("username"), false);
        let pw = field(ui, T::Password.s(lang), &mut self.password, self.field_errors.get("password"), true);
        let enter = pw.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.add_space(8.0);
        let clicked = ui.add_enabled(!self.busy, egui::Button::new(T::LoginButton.s(lang))).clicked();
        if (clicked || enter) && !self.busy {
            cmd = self.submit(lang);
        }
        if self.busy {
            ui.label(T::LoggingIn.s(lang));
        }
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::RED, e);
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_checks_name_each_field_in_chinese() {
        let mut s = LoginScreen::new("no-port", "");
        assert!(s.submit(Lang::Zh).is_none());
        assert_eq!(s.field_errors.get("server").map(String::as_str), Some(T::BadServerAddress.s(Lang::Zh)));
        assert_eq!(s.field_errors.get("username").map(String::as_str), Some("请填写用户名"));
        assert_eq!(s.field_errors.get("password").map(String::as_str), Some("请填写密码"));
        s.server = "127.0.0.1:7443".into();
        s.username = " agent1 ".into();
        s.password = "x".into();
        assert!(matches!(s.submit(Lang::Zh), Some(Command::Login { ref username, .. }) if username == "agent1"));
        assert!(s.busy);
    }
}
