//! A ticket's calls in its detail (hotline staff): when, which way, how long, and the recording
//! played on the headset with its progress — what the caller said, heard again before a
//! callback or a reply.

use super::{beijing, clock};
use crate::backend::{Clip, Command};
use crate::i18n::{label, Lang};
use eframe::egui;
use rexian_shared::{CallSummary, TicketNo};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct LinkedCalls {
    /// The ticket the calls belong to (a reply for another ticket is dropped).
    pub no: Option<TicketNo>,
    pub calls: Vec<CallSummary>,
    /// The recording playing: (call, seconds played, total seconds).
    pub playing: Option<(i64, u32, u32)>,
    pub error: Option<String>,
}

impl LinkedCalls {
    /// Opening ticket `no`: its calls are to be loaded unless they are.
    pub fn open(&mut self, no: &TicketNo) -> Option<Command> {
        if self.no.as_ref() == Some(no) {
            return None;
        }
        *self = LinkedCalls { no: Some(no.clone()), ..LinkedCalls::default() };
        Some(Command::LoadTicketCalls(no.clone()))
    }

    pub fn loaded(&mut self, no: &TicketNo, calls: Vec<CallSummary>) {
        if self.no.as_ref() == Some(no) {
            self.calls = calls;
        }
    }

    pub fn playing(&mut self, clip: Clip, at: u32, total: u32) {
        if let Clip::Recording(call) = clip {
            self.playing = Some((call, at, total));
            self.error = None;
        }
    }

    pub fn ended(&mut self, clip: Clip, error: Option<String>) {
        if let Clip::Recording(call) = clip {
            if self.playing.is_some_and(|(c, ..)| c == call) || error.is_some() {
                self.playing = None;
            }
            self.error = error;
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang) -> Option<Command> {
        let no = self.no.clone()?;
        let mut cmd = None;
        ui.strong(label("关联通话", "Linked calls", lang));
        if self.calls.is_empty() {
            ui.weak(label("没有关联的通话", "No linked calls", lang));
        }
        egui::Grid::new("linked-calls").striped(true).show(ui, |ui| {
            for c in &self.calls {
                ui.label(beijing(c.offered_at).format("%Y-%m-%d %H:%M").to_string());
                ui.label(if c.inbound { label("呼入", "in", lang) } else { label("呼出", "out", lang) });
                ui.label(c.talk_secs.map_or_else(|| label("未接通", "not answered", lang).to_owned(), |s| format!("{} {}", label("通话", "talked", lang), clock(Duration::from_secs(s.into())))));
                match (c.recording_secs, self.playing) {
                    (Some(_), Some((call, at, total))) if call == c.id => {
                        ui.label(format!("{} {} / {}", label("正在播放", "Playing", lang), clock(Duration::from_secs(at.into())), clock(Duration::from_secs(total.into()))));
                        if ui.button(label("停止播放", "Stop", lang)).clicked() {
                            cmd = Some(Command::StopPlayback);
                        }
                    }
                    (Some(secs), _) => {
                        ui.label(format!("{} {}", label("录音", "recording", lang), clock(Duration::from_secs(secs.into()))));
                        if ui.button(label("播放录音", "Play the recording", lang)).clicked() {
                            self.error = None;
                            cmd = Some(Command::PlayRecording { no: no.clone(), call: c.id });
                        }
                    }
                    (None, _) => {
                        ui.weak(label("无录音", "no recording", lang));
                        ui.label("");
                    }
                }
                ui.end_row();
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::RED, format!("{}{e}", label("无法播放录音：", "Cannot play the recording: ", lang)));
        }
        cmd
    }
}
