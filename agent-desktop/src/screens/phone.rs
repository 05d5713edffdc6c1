//! The agent's working position: the ACD state bar (AGT-7, ACD-5), the softphone (AGT-1 … AGT-5)
//! and the screen pop (AGT-9). [`AgentStatus`] and [`Softphone`] are plain state fed by desk
//! events; their `ui()`s draw them and return the commands the agent gave.

use super::{beijing, clock};
use crate::backend::Command;
use crate::i18n::{label, Lang, T};
use crate::shortcuts::{hint, Shortcut};
use eframe::egui;
use rexian_shared::{CallerProfile, Department, Event, PhoneNumber};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

rexian_shared::labelled_enum!(
    /// Why an agent is not ready (临时闭席), as the ACD takes them.
    NotReadyReason {
        Break => "break", "休息", "break";
        Meeting => "meeting", "会议", "meeting";
        Training => "training", "培训", "training";
        Meal => "meal", "用餐", "meal";
        Other => "other", "其他", "other";
    }
);

/// The agent's ACD state as the server last said it.
#[derive(Debug, Clone)]
pub struct AgentStatus {
    /// `logged_out`, `ready`, `reserved`, `on_call`, `wrap_up`, `not_ready`.
    pub state: String,
    pub reason: Option<String>,
    pub since: Instant,
    /// When the ACD ends this wrap-up (counted down in the bar).
    pub wrap_up_until: Option<Instant>,
    /// Callers waiting per queue (QueueWaiting).
    pub waiting: BTreeMap<String, u32>,
    /// The reason picked for the next 临时闭席.
    pub pick: NotReadyReason,
    pub pending: bool,
}

impl Default for AgentStatus {
    fn default() -> Self {
        AgentStatus { state: "logged_out".into(), reason: None, since: Instant::now(), wrap_up_until: None, waiting: BTreeMap::new(), pick: NotReadyReason::Break, pending: false }
    }
}

/// The Chinese (or English) name of an ACD state code.
pub fn state_text(state: &str, lang: Lang) -> &'static str {
    match state {
        "ready" => T::StateReady.s(lang),
        "reserved" => T::StateReserved.s(lang),
        "on_call" => T::StateOnCall.s(lang),
        "wrap_up" => T::StateWrapUp.s(lang),
        "not_ready" => T::StateNotReady.s(lang),
        _ => T::StateLoggedOut.s(lang),
    }
}

/// The reason's label; `missed_offers` is the ACD's own.
pub fn reason_text(reason: &str, lang: Lang) -> &'static str {
    match NotReadyReason::from_code(reason) {
        Some(r) => label(r.zh(), r.en(), lang),
        None if reason == "missed_offers" => label("未接来电过多", "missed offers", lang),
        None => label("其他", "other", lang),
    }
}

impl AgentStatus {
    pub fn on_event(&mut self, ev: &Event) {
        match ev {
            Event::AgentStateChanged { state, reason, wrap_up_secs } => {
                self.state = state.clone();
                self.reason = reason.clone();
                self.since = Instant::now();
                self.wrap_up_until = wrap_up_secs.map(|s| self.since + Duration::from_secs(s.into()));
                self.pending = false;
            }
            Event::QueueWaiting { queue, waiting, .. } => {
                self.waiting.insert(queue.clone(), *waiting);
            }
            _ => {}
        }
    }

    /// F3 / F5: the state change the bar's buttons would ask for now, if any.
    pub fn shortcut(&mut self, s: Shortcut) -> Option<Command> {
        if self.pending {
            return None;
        }
        let cmd = match (s, self.state.as_str()) {
            (Shortcut::Ready, "logged_out") => Command::AgentLogin { ready: true },
            (Shortcut::Ready, "not_ready" | "wrap_up") => Command::AgentReady,
            (Shortcut::NotReady, "ready" | "wrap_up") => Command::AgentNotReady { reason: self.pick.code().into() },
            _ => return None,
        };
        self.pending = true;
        Some(cmd)
    }

    /// The wrap-up time left, while in wrap-up (rounded up, so it never shows 00:00 early).
    pub fn wrap_up_left(&self) -> Option<Duration> {
        let until = self.wrap_up_until.filter(|_| self.state == "wrap_up")?;
        let left = until.saturating_duration_since(Instant::now());
        Some(Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0)))
    }

    pub fn waiting_total(&self) -> u32 {
        self.waiting.values().sum()
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang) -> Option<Command> {
        let mut cmd = None;
        ui.horizontal_wrapped(|ui| {
            let mut text = format!("{}：{}", T::State.s(lang), state_text(&self.state, lang));
            if let Some(r) = &self.reason {
                text.push_str(&format!("（{}）", reason_text(r, lang)));
            }
            let color = match self.state.as_str() {
                "ready" => egui::Color32::from_rgb(0, 140, 0),
                "on_call" | "reserved" => egui::Color32::from_rgb(200, 100, 0),
                "not_ready" | "wrap_up" => egui::Color32::from_rgb(180, 0, 0),
                _ => ui.visuals().text_color(),
            };
            ui.label(egui::RichText::new(text).strong().color(color));
            match self.wrap_up_left() {
                Some(left) => ui.label(egui::RichText::new(format!("{} {}", T::WrapUpLeft.s(lang), clock(left))).strong()),
                None => ui.label(format!("{} {}", T::TimeInState.s(lang), clock(self.since.elapsed()))),
            };
            ui.label(format!("{}：{}", T::Waiting.s(lang), self.waiting_total()));
            ui.separator();
            let enabled = !self.pending;
            if self.state == "logged_out" {
                if ui.add_enabled(enabled, egui::Button::new(T::AgentLogin.s(lang))).on_hover_text(hint(Shortcut::Ready, lang)).clicked() {
                    cmd = Some(Command::AgentLogin { ready: false });
                }
                return;
            }
            // 返回 ends 临时闭席; 就绪 ends wrap-up early.
            let back = match self.state.as_str() {
                "not_ready" => Some(T::Return),
                "wrap_up" => Some(T::Ready),
                _ => None,
            };
            if let Some(back) = back {
                if ui.add_enabled(enabled, egui::Button::new(back.s(lang))).on_hover_text(hint(Shortcut::Ready, lang)).clicked() {
                    cmd = Some(Command::AgentReady);
                }
            }
            if matches!(self.state.as_str(), "ready" | "wrap_up" | "not_ready") {
                ui.separator();
                ui.label(T::NotReadyReason.s(lang));
                for r in NotReadyReason::ALL {
                    ui.selectable_value(&mut self.pick, *r, label(r.zh(), r.en(), lang));
                }
                if ui.add_enabled(enabled, egui::Button::new(T::NotReady.s(lang))).on_hover_text(hint(Shortcut::NotReady, lang)).clicked() {
                    cmd = Some(Command::AgentNotReady { reason: self.pick.code().into() });
                }
            }
            ui.separator();
            if ui.add_enabled(enabled, egui::Button::new(T::AgentLogout.s(lang))).clicked() {
                cmd = Some(Command::AgentLogout);
            }
        });
        if cmd.is_some() {
            self.pending = true;
        }
        cmd
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Offered to this desk, ringing the headset.
    Offered,
    /// Placed by this desk, not yet ringing at the far end.
    Dialling,
    /// Placed by this desk, ringing at the far end.
    Ringing,
    Connected,
}

#[derive(Debug, Clone)]
pub struct CallView {
    pub call: u64,
    pub number: String,
    pub outbound: bool,
    pub phase: Phase,
    pub record: Option<i64>,
    pub started: Instant,
    pub connected_at: Option<Instant>,
    pub conference: Option<bool>,
    pub held: bool,
    pub muted: bool,
}

/// The softphone's state.
#[derive(Debug, Default)]
pub struct Softphone {
    pub call: Option<CallView>,
    pub ended: Option<String>,
    pub dial_number: String,
    pub transfer_number: String,
    /// The agent (user name or 工号) to transfer to.
    pub transfer_agent: String,
    /// A consultation was asked for and not yet completed or cancelled.
    pub consulting: bool,
    pub digits_sent: String,
    pub error: Option<String>,
    pub number_error: Option<String>,
    pub profile: Option<CallerProfile>,
    /// Put the cursor in the number to dial on the next frame (Ctrl+D).
    pub focus_dial: bool,
}

impl Softphone {
    /// Follows a desk event; returns the caller's number when a screen pop should start.
    pub fn on_event(&mut self, ev: &Event) -> Option<(String, Option<i64>)> {
        match ev {
            Event::CallOffered { call, caller, record, .. } => {
                self.call = Some(CallView {
                    call: *call,
                    number: caller.clone(),
                    outbound: false,
                    phase: Phase::Offered,
                    record: *record,
                    started: Instant::now(),
                    connected_at: None,
                    conference: None,
                    held: false,
                    muted: false,
                });
                self.consulting = false;
                self.ended = None;
                self.error = None;
                self.digits_sent.clear();
                self.profile = None;
                return Some((caller.clone(), *record));
            }
            Event::CallRinging { call } => {
                if let Some(c) = self.call.as_mut().filter(|c| c.call == *call) {
                    c.phase = Phase::Ringing;
                }
            }
            Event::CallConnected { call } => {
                if let Some(c) = self.call.as_mut().filter(|c| c.call == *call) {
                    c.phase = Phase::Connected;
                    c.connected_at = Some(Instant::now());
                }
            }
            Event::ConferenceChanged { call, joined } => {
                if let Some(c) = self.call.as_mut().filter(|c| c.call == *call) {
                    c.conference = Some(*joined);
                }
            }
            Event::CallHeld { call, held } => {
                if let Some(c) = self.call.as_mut().filter(|c| c.call == *call) {
                    c.held = *held;
                }
            }
            Event::CallMuted { call, muted } => {
                if let Some(c) = self.call.as_mut().filter(|c| c.call == *call) {
                    c.muted = *muted;
                }
            }
            Event::CallEnded { call, cause } if self.call.as_ref().is_some_and(|c| c.call == *call) => {
                self.call = None;
                self.ended = Some(cause.clone());
            }
            _ => {}
        }
        None
    }

    /// 通讯录: picking a department (or a leader's office) puts its number in the number field,
    /// for 转外线, 三方通话 or 咨询后转接.
    fn directory_ui(&mut self, ui: &mut egui::Ui, lang: Lang, directory: &[Department]) {
        let listed: Vec<(&str, &str)> = directory.iter().filter_map(|d| Some((d.name.as_str(), d.phone.as_deref()?))).collect();
        if listed.is_empty() {
            return;
        }
        egui::ComboBox::from_label(label("通讯录", "Directory", lang))
            .selected_text(label("选择部门或领导…", "Pick a department or leader…", lang))
            // A bureau's directory (a few dozen entries) shown whole rather than in a small scroll.
            .height(480.0)
            .show_ui(ui, |ui| {
                for (name, phone) in listed {
                    if ui.selectable_label(self.transfer_number == phone, format!("{name} {phone}")).clicked() {
                        self.transfer_number = phone.to_owned();
                        self.number_error = None;
                    }
                }
            });
    }

    pub fn started_outbound(&mut self, call: u64, number: String) {
        self.call = Some(CallView { call, number, outbound: true, phase: Phase::Dialling, record: None, started: Instant::now(), connected_at: None, conference: None, held: false, muted: false });
        self.ended = None;
    }

    /// One line on the call for other screens (the due list): its phase and number, or how
    /// the last one ended or failed.
    pub fn summary(&self, lang: Lang) -> Option<String> {
        if let Some(c) = &self.call {
            let phase = match c.phase {
                Phase::Offered => T::Incoming,
                Phase::Dialling => T::Dialling,
                Phase::Ringing => T::RingingFar,
                Phase::Connected => T::Connected,
            };
            return Some(format!("{}：{}", phase.s(lang), c.number));
        }
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        self.ended.as_ref().map(|cause| format!("{}（{cause}）", T::CallEndedMsg.s(lang)))
    }

    fn number(&mut self, s: &str, lang: Lang) -> Option<PhoneNumber> {
        match PhoneNumber::parse(s) {
            Ok(n) => {
                self.number_error = None;
                Some(n)
            }
            Err(_) => {
                self.number_error = Some(T::PhoneInvalid.s(lang).into());
                None
            }
        }
    }

    /// The softphone; `directory` lists the departments whose numbers a call can go on to.
    pub fn ui(&mut self, ui: &mut egui::Ui, lang: Lang, directory: &[Department]) -> Option<Command> {
        let mut cmd = None;
        ui.heading(T::Softphone.s(lang));
        match self.call.clone() {
            Some(c) => {
                let who = if c.outbound { T::Called } else { T::Caller };
                let phase = match c.phase {
                    Phase::Offered => T::Incoming,
                    Phase::Dialling => T::Dialling,
                    Phase::Ringing => T::RingingFar,
                    Phase::Connected => T::Connected,
                };
                ui.label(egui::RichText::new(format!("{}：{}", phase.s(lang), c.number)).size(20.0).strong());
                ui.label(format!("{}：{}", who.s(lang), c.number));
                let since = c.connected_at.unwrap_or(c.started);
                ui.label(format!("{} {}", T::CallTime.s(lang), clock(since.elapsed())));
                if let Some(joined) = c.conference {
                    ui.label(if joined { T::ConferenceJoined.s(lang) } else { T::ConferenceLeft.s(lang) });
                }
                ui.horizontal(|ui| {
                    if c.phase == Phase::Offered {
                        if ui.button(egui::RichText::new(T::Answer.s(lang)).size(18.0).color(egui::Color32::from_rgb(0, 140, 0))).on_hover_text(hint(Shortcut::Answer, lang)).clicked() {
                            cmd = Some(Command::Answer { call: c.call });
                        }
                        if ui.button(T::Decline.s(lang)).on_hover_text(hint(Shortcut::HangUp, lang)).clicked() {
                            cmd = Some(Command::Hangup { call: c.call });
                        }
                    } else if ui.button(egui::RichText::new(T::HangUp.s(lang)).size(18.0).color(egui::Color32::RED)).on_hover_text(hint(Shortcut::HangUp, lang)).clicked() {
                        cmd = Some(Command::Hangup { call: c.call });
                    }
                });
                if c.phase == Phase::Connected {
                    ui.label(T::DtmfPad.s(lang));
                    egui::Grid::new("dtmf").show(ui, |ui| {
                        for row in ["123", "456", "789", "*0#"] {
                            for key in row.chars() {
                                if ui.add(egui::Button::new(key.to_string()).min_size(egui::vec2(32.0, 28.0))).clicked() {
                                    self.digits_sent.push(key);
                                    cmd = Some(Command::Dtmf { call: c.call, digits: key.to_string() });
                                }
                            }
                            ui.end_row();
                        }
                    });
                    if !self.digits_sent.is_empty() {
                        ui.label(format!("DTMF: {}", self.digits_sent));
                    }
                    self.directory_ui(ui, lang, directory);
                    super::field(ui, T::Number.s(lang), &mut self.transfer_number, self.number_error.as_ref(), false);
                    ui.horizontal(|ui| {
                        if ui.button(T::TransferOut.s(lang)).clicked() {
                            if let Some(n) = self.number(&self.transfer_number.clone(), lang) {
                                cmd = Some(Command::Transfer { call: c.call, number: n });
                            }
                        }
                        if ui.button(T::Conference.s(lang)).clicked() {
                            if let Some(n) = self.number(&self.transfer_number.clone(), lang) {
                                cmd = Some(Command::Conference { call: c.call, number: n });
                            }
                        }
                        if ui.button(T::ToSatisfaction.s(lang)).clicked() {
                            cmd = Some(Command::ToSatisfaction { call: c.call });
                        }
                    });
                    cmd = cmd.take().or_else(|| self.control_ui(ui, &c, lang));
                }
            }
            None => {
                if let Some(cause) = &self.ended {
                    ui.label(format!("{}（{cause}）", T::CallEndedMsg.s(lang)));
                }
                let number = super::field(ui, T::Number.s(lang), &mut self.dial_number, self.number_error.as_ref(), false);
                if std::mem::take(&mut self.focus_dial) {
                    number.request_focus();
                }
                let enter = number.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if ui.button(T::Dial.s(lang)).on_hover_text(hint(Shortcut::Dial, lang)).clicked() || enter {
                    if let Some(n) = self.number(&self.dial_number.clone(), lang) {
                        cmd = Some(Command::Dial { number: n });
                    }
                }
            }
        }
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::RED, e);
        }
        ui.separator();
        self.profile_ui(ui, lang);
        cmd
    }

    /// Hold, mute, transfers to an agent or the supervisor and the consultation of a connected
    /// call (AGT-1, AGT-2).
    fn control_ui(&mut self, ui: &mut egui::Ui, c: &CallView, lang: Lang) -> Option<Command> {
        let mut cmd = None;
        let call = c.call;
        ui.horizontal(|ui| {
            let (hold, hold_label) = if c.held { (false, T::Resume) } else { (true, T::Hold) };
            if ui.button(hold_label.s(lang)).on_hover_text(hint(Shortcut::Hold, lang)).clicked() {
                cmd = Some(Command::Hold { call, hold });
            }
            let (mute, mute_label) = if c.muted { (false, T::Unmute) } else { (true, T::Mute) };
            if ui.button(mute_label.s(lang)).on_hover_text(hint(Shortcut::Mute, lang)).clicked() {
                cmd = Some(Command::Mute { call, mute });
            }
            if ui.button(T::CallSupervisor.s(lang)).clicked() {
                cmd = Some(Command::TransferToSupervisor { call });
            }
        });
        if c.held {
            ui.colored_label(egui::Color32::from_rgb(200, 100, 0), T::OnHold.s(lang));
        }
        if c.muted {
            ui.colored_label(egui::Color32::from_rgb(200, 100, 0), T::Muted.s(lang));
        }
        super::field(ui, T::AgentOrNo.s(lang), &mut self.transfer_agent, None, false);
        ui.horizontal(|ui| {
            let agent = self.transfer_agent.trim().to_owned();
            if ui.add_enabled(!agent.is_empty(), egui::Button::new(T::TransferToAgent.s(lang))).clicked() {
                cmd = Some(Command::TransferToAgent { call, agent });
            }
            if self.consulting {
                ui.label(T::Consulting.s(lang));
                if ui.button(T::CompleteTransfer.s(lang)).clicked() {
                    self.consulting = false;
                    cmd = Some(Command::CompleteTransfer { call });
                }
                if ui.button(T::CancelConsult.s(lang)).clicked() {
                    self.consulting = false;
                    cmd = Some(Command::CancelConsult { call });
                }
            } else if ui.button(T::Consult.s(lang)).clicked() {
                if let Some(number) = self.number(&self.transfer_number.clone(), lang) {
                    self.consulting = true;
                    cmd = Some(Command::Consult { call, number });
                }
            }
        });
        cmd
    }

    fn profile_ui(&self, ui: &mut egui::Ui, lang: Lang) {
        let Some(p) = &self.profile else { return };
        ui.heading(T::CallerProfile.s(lang));
        ui.horizontal_wrapped(|ui| {
            ui.label(egui::RichText::new(format!("{} {}", p.phone, p.name.clone().unwrap_or_default())).strong());
            let tag = |ui: &mut egui::Ui, t: T| ui.colored_label(egui::Color32::from_rgb(200, 0, 0), format!("【{}】", t.s(lang)));
            if p.repeat_caller {
                tag(ui, T::RepeatCaller);
            }
            if p.repeat_complainant {
                tag(ui, T::RepeatComplainant);
            }
            if p.vip {
                tag(ui, T::Vip);
            }
            if p.blocked {
                tag(ui, T::Blocked);
            }
        });
        match p.first_seen {
            Some(first) => ui.label(format!("{}：{}  {}：{}", T::FirstSeen.s(lang), first.format("%Y-%m-%d"), T::TicketsCount.s(lang), p.ticket_count)),
            None => ui.label(T::NewCaller.s(lang)),
        };
        if p.history.is_empty() {
            ui.weak(T::NoHistory.s(lang));
        }
        egui::Grid::new("caller-history").striped(true).show(ui, |ui| {
            for t in p.history.iter().take(10) {
                ui.label(t.no.to_string());
                ui.label(t.created_at.format("%Y-%m-%d").to_string());
                ui.label(label(t.kind.zh(), t.kind.en(), lang));
                ui.label(label(t.state.zh(), t.state.en(), lang));
                ui.label(&t.summary);
                ui.end_row();
            }
        });
        // The calls before this one (the current call is in the records already).
        let current = self.call.as_ref().and_then(|c| c.record);
        let earlier: Vec<_> = p.calls.iter().filter(|c| Some(c.id) != current).collect();
        if !earlier.is_empty() {
            ui.label(egui::RichText::new(label("近期通话", "Recent calls", lang)).strong());
            egui::Grid::new("caller-calls").striped(true).show(ui, |ui| {
                for c in earlier {
                    ui.label(beijing(c.offered_at).format("%Y-%m-%d %H:%M").to_string());
                    ui.label(if c.inbound { label("呼入", "in", lang) } else { label("呼出", "out", lang) });
                    match c.talk_secs {
                        Some(secs) => ui.label(format!("{} {}", label("通话", "talked", lang), clock(Duration::from_secs(secs.into())))),
                        None if c.answered => ui.label(label("已接通", "answered", lang)),
                        None => ui.colored_label(egui::Color32::from_rgb(200, 100, 0), label("未接通", "not answered", lang)),
                    };
                    ui.end_row();
                }
            });
        }
    }
}

/// How often the bar and the call timer redraw.
pub const TICK: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_pops_the_caller_and_the_call_follows_its_events() {
        let mut phone = Softphone::default();
        let pop = phone.on_event(&Event::CallOffered { call: 7, caller: "13800138000".into(), callee: "12365".into(), trunk: "t".into(), record: Some(42) });
        assert_eq!(pop, Some(("13800138000".into(), Some(42))));
        assert_eq!(phone.call.as_ref().map(|c| c.phase), Some(Phase::Offered));
        phone.on_event(&Event::CallConnected { call: 7 });
        assert_eq!(phone.call.as_ref().map(|c| c.phase), Some(Phase::Connected));
        phone.on_event(&Event::CallEnded { call: 8, cause: "x".into() });
        assert!(phone.call.is_some(), "another call's end is not this one's");
        phone.on_event(&Event::CallEnded { call: 7, cause: "caller_hangup".into() });
        assert!(phone.call.is_none());
        assert_eq!(phone.ended.as_deref(), Some("caller_hangup"));
    }

    #[test]
    fn the_bar_counts_waiting_callers_and_names_reasons_in_chinese() {
        let mut s = AgentStatus::default();
        s.on_event(&Event::QueueWaiting { queue: "hotline".into(), waiting: 2, longest_wait_secs: None });
        s.on_event(&Event::QueueWaiting { queue: "vip".into(), waiting: 1, longest_wait_secs: None });
        s.on_event(&Event::QueueWaiting { queue: "hotline".into(), waiting: 0, longest_wait_secs: None });
        assert_eq!(s.waiting_total(), 1);
        s.on_event(&Event::AgentStateChanged { state: "not_ready".into(), reason: Some("meal".into()), wrap_up_secs: None });
        assert_eq!((state_text(&s.state, Lang::Zh), reason_text("meal", Lang::Zh)), ("临时闭席", "用餐"));
        assert_eq!(reason_text("missed_offers", Lang::Zh), "未接来电过多");
        assert_eq!(s.wrap_up_left(), None);
        s.on_event(&Event::AgentStateChanged { state: "wrap_up".into(), reason: None, wrap_up_secs: Some(30) });
        let left = s.wrap_up_left().expect("counting down");
        assert!(left <= Duration::from_secs(30) && left >= Duration::from_secs(29), "{left:?}");
        s.on_event(&Event::AgentStateChanged { state: "ready".into(), reason: None, wrap_up_secs: None });
        assert_eq!(s.wrap_up_left(), None);
    }
}
