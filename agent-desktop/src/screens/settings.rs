//! Settings: language, microphone and headset choice, a microphone test with a level meter,
//! a speaker test.

use crate::backend::Command;
use crate::i18n::{Lang, T};
use eframe::egui;

#[derive(Debug, Default)]
pub struct SettingsScreen {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub listed: bool,
    pub testing: bool,
    pub level: f32,
    /// An audio problem, already in words, or `None` when the last open worked.
    pub audio_error: Option<String>,
    pub audio_ok: bool,
    /// The speaker test plays.
    pub speaker_testing: bool,
}

impl SettingsScreen {
    pub fn ui(&mut self, ui: &mut egui::Ui, lang: &mut Lang, input: &mut Option<String>, output: &mut Option<String>) -> (Option<Command>, bool) {
        let mut cmd = None;
        let mut changed = false;
        ui.heading(T::TabSettings.s(*lang));
        ui.horizontal(|ui| {
            changed |= ui.selectable_value(lang, Lang::Zh, "简体中文").changed();
            changed |= ui.selectable_value(lang, Lang::En, "English").changed();
        });
        let l = *lang;
        // The button is drawn every frame, so the widgets below never move when the list loads.
        let refresh = ui.button(T::RefreshDevices.s(l)).clicked();
        if !self.listed || refresh {
            let (i, o) = crate::audio::list_devices();
            (self.inputs, self.outputs, self.listed) = (i, o, true);
        }
        let mut pick = |ui: &mut egui::Ui, title: T, current: &mut Option<String>, names: &[String]| {
            egui::ComboBox::from_label(title.s(l)).selected_text(current.clone().unwrap_or_else(|| T::SystemDefault.s(l).into())).show_ui(ui, |ui| {
                changed |= ui.selectable_value(current, None, T::SystemDefault.s(l)).changed();
                for n in names {
                    changed |= ui.selectable_value(current, Some(n.clone()), n).changed();
                }
            });
        };
        pick(ui, T::Microphone, input, &self.inputs);
        pick(ui, T::Speaker, output, &self.outputs);
        if changed {
            cmd = Some(Command::SetDevices { input: input.clone(), output: output.clone() });
        }
        ui.horizontal(|ui| {
            let text = if self.testing { T::StopTest } else { T::TestMic };
            if ui.button(text.s(l)).clicked() {
                self.testing = !self.testing;
                self.level = 0.0;
                self.audio_error = None;
                cmd = Some(Command::MicTest(self.testing));
            }
            ui.label(T::MicLevel.s(l));
            ui.add(egui::ProgressBar::new(self.level).desired_width(200.0));
        });
        ui.horizontal(|ui| {
            let text = if self.speaker_testing { T::StopTest } else { T::TestSpeaker };
            if ui.button(text.s(l)).clicked() {
                self.audio_error = None;
                cmd = Some(if self.speaker_testing { Command::StopPlayback } else { Command::TestSpeaker });
                self.speaker_testing = !self.speaker_testing;
            }
            ui.label(T::SpeakerTestHint.s(l));
        });
        if let Some(e) = &self.audio_error {
            ui.colored_label(egui::Color32::RED, e);
        } else if self.audio_ok {
            ui.label(T::AudioOk.s(l));
        }
        ui.separator();
        ui.strong(T::Shortcuts.s(l));
        egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
            for s in crate::shortcuts::Shortcut::ALL {
                ui.label(s.key_text());
                ui.label(s.what(l));
                ui.end_row();
            }
        });
        (cmd, changed)
    }
}
