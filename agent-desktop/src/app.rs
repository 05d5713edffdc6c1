//! The workstation: the top bar (title, connection state always shown, language, sign-out),
//! the login screen until a session exists, then the tabs. `AgentApp::ui` first applies what
//! the backend reported, then draws; the screens return commands that go to the backend.

use crate::backend::{Backend, Clip, Command, ConnState, Op, Repaint, Update};
use crate::i18n::{Lang, T};
use crate::screens::due::DueScreen;
use crate::screens::intake::IntakeForm;
use crate::screens::knowledge::KnowledgePanel;
use crate::screens::login::LoginScreen;
use crate::screens::phone::{AgentStatus, Phase, Softphone, TICK};
use crate::screens::reminders::{DueNotice, ReminderPopups};
use crate::screens::settings::SettingsScreen;
use crate::screens::tickets::TicketsScreen;
use crate::settings::Settings;
use crate::shortcuts::Shortcut;
use eframe::egui;
use rexian_shared::{Category, Department, Event, PhoneNumber, Role, Session};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Phone,
    /// 待办: callbacks, later replies, return visits, reminders.
    Due,
    Tickets,
    Settings,
}

pub struct AgentApp {
    pub config_dir: PathBuf,
    pub settings: Settings,
    pub lang: Lang,
    pub backend: Backend,
    pub conn: ConnState,
    pub session: Option<Session>,
    pub tab: Tab,
    pub login: LoginScreen,
    pub status: AgentStatus,
    pub phone: Softphone,
    pub intake: IntakeForm,
    pub knowledge: KnowledgePanel,
    pub tickets: TicketsScreen,
    pub due: DueScreen,
    /// Reminders that came due and wait for the user.
    pub popups: ReminderPopups,
    /// Ask the OS to draw the user's eye to the window on the next frame.
    pub wants_attention: bool,
    pub settings_screen: SettingsScreen,
    pub categories: Vec<Category>,
    pub departments: Vec<Department>,
    /// The last failure of a call or state request, shown in the bar.
    pub notice: Option<String>,
    /// Frame times (the window sets it; a test harness has no frames to time).
    pub perf: Option<crate::perf::FrameStats>,
}

impl AgentApp {
    /// A workstation whose settings and pinned certificates live in `config_dir`; `repaint`
    /// wakes the UI when the backend has news.
    pub fn new(config_dir: PathBuf, repaint: Repaint) -> AgentApp {
        let settings = Settings::load(&config_dir);
        let backend = Backend::start(config_dir.clone(), repaint);
        backend.send(Command::SetDevices { input: settings.input_device.clone(), output: settings.output_device.clone() });
        let server = if settings.server.is_empty() { "127.0.0.1:7443".to_owned() } else { settings.server.clone() };
        AgentApp {
            lang: settings.lang,
            login: LoginScreen::new(&server, &settings.username),
            config_dir,
            settings,
            backend,
            conn: ConnState::Offline,
            session: None,
            tab: Tab::Phone,
            status: AgentStatus::default(),
            phone: Softphone::default(),
            intake: IntakeForm::default(),
            knowledge: KnowledgePanel::default(),
            tickets: TicketsScreen::default(),
            due: DueScreen::default(),
            popups: ReminderPopups::default(),
            wants_attention: false,
            settings_screen: SettingsScreen::default(),
            categories: Vec::new(),
            departments: Vec::new(),
            notice: None,
            perf: None,
        }
    }

    fn save_settings(&mut self) {
        self.settings.lang = self.lang;
        if let Err(e) = self.settings.save(&self.config_dir) {
            tracing::warn!(error = %e, "cannot save settings");
        }
    }

    fn send(&mut self, cmd: Option<Command>) {
        if let Some(cmd) = cmd {
            match &cmd {
                Command::Login { server, username, .. } => {
                    self.settings.server = server.clone();
                    self.settings.username = username.clone();
                }
                // A ticket opened from anywhere (the saved banner, Ctrl+O) shows in the ticket screen.
                Command::GetTicket(_) => self.tab = Tab::Tickets,
                _ => {}
            }
            self.backend.send(cmd);
        }
    }

    /// Logs in with the remembered server and user name and `password` without waiting for
    /// the agent (`REXIAN_PASSWORD`, for kiosks, demos and screenshots).
    pub fn auto_login(&mut self, password: String) {
        self.login.password = password;
        let cmd = self.login.submit(self.lang);
        self.send(cmd);
    }

    /// Applies everything the backend reported since the last frame.
    pub fn pump(&mut self) {
        while let Some(u) = self.backend.try_recv() {
            self.apply(u);
        }
    }

    fn apply(&mut self, u: Update) {
        let lang = self.lang;
        match u {
            Update::Conn(c) => self.conn = c,
            Update::LoggedIn(session) => {
                tracing::info!(user = %session.user.username, role = ?session.user.role, "logged in");
                self.login.busy = false;
                self.login.password.clear();
                self.login.error = None;
                // Department handlers work their inbox; they take no calls.
                self.tab = if session.user.role == Role::Handler { Tab::Tickets } else { Tab::Phone };
                if session.user.role == Role::Handler {
                    // A handler's day starts with what waits for acknowledgement.
                    if let Some(inbox) = self.tickets.open_inbox(lang) {
                        self.backend.send(inbox);
                    }
                }
                self.session = Some(session);
                self.status = AgentStatus::default();
                self.due = DueScreen::default();
                self.popups = ReminderPopups::default();
                self.save_settings();
                self.backend.send(Command::LoadCategories);
                self.backend.send(Command::LoadDepartments);
                // Saved filters follow the user, not the desk.
                self.tickets.filters.saved = Default::default();
                self.backend.send(Command::LoadSavedFilters);
            }
            Update::LoginFailed(f) => self.login.failed(&f, lang),
            Update::SessionLost(f) => {
                self.session = None;
                self.login.failed(&f, lang);
            }
            Update::CertificateChanged { server, expected, actual } => {
                self.session = None;
                self.login.busy = false;
                self.login.password.clear();
                self.login.cert_changed = Some((server, expected, actual));
            }
            Update::Event(ev) => self.event(ev),
            Update::Failed { op, failure } => match op {
                Op::Tickets | Op::Catalogue => self.tickets.failed(&failure, lang),
                // A return visit recorded from the due list is refused there.
                Op::Act if self.tab == Tab::Due => self.due.error = Some(failure.text(lang)),
                Op::Act => self.tickets.error = Some(failure.text(lang)),
                Op::AgentState => {
                    self.status.pending = false;
                    self.notice = Some(failure.text(lang));
                }
                Op::Call => self.phone.error = Some(failure.text(lang)),
                Op::Profile | Op::Suggest => {}
                Op::Due => {
                    self.due.loading = false;
                    self.due.error = Some(failure.text(lang));
                }
                Op::Remind => self.tickets.reminder.result = Some(Err(failure.text(lang))),
                Op::SavedFilters => self.tickets.filters.saved_failed(&failure, lang),
            },
            Update::Done(op) => {
                match op {
                    Op::AgentState => self.status.pending = false,
                    Op::Remind => self.tickets.reminder.set(),
                    _ => {}
                }
                if matches!(op, Op::Due | Op::Remind) {
                    self.reload_due();
                }
                self.notice = None;
            }
            Update::Due(lists) => self.due.loaded(*lists, lang),
            Update::CallStarted { call, number } => self.phone.started_outbound(call, number),
            Update::Profile(p) => {
                let earlier: Vec<String> = p.history.iter().map(|t| t.no.to_string()).collect();
                let record = self.phone.call.as_ref().and_then(|c| c.record);
                let earlier_calls: Vec<i64> = p.calls.iter().map(|c| c.id).filter(|id| Some(*id) != record).collect();
                tracing::info!(caller = %p.phone, ?earlier, ?earlier_calls, repeat_caller = p.repeat_caller, "screen pop: the caller's history is shown");
                self.phone.profile = Some(*p);
            }
            Update::Categories(c) => self.categories = c,
            Update::Departments(d) => self.departments = d,
            Update::Articles(hits) => self.knowledge.hits = Some(hits),
            Update::TicketSaved(t) => {
                tracing::info!(ticket = %t.no, state = t.state.code(), call_record = ?self.intake.call_record, "ticket saved");
                self.intake.saved(&t);
            }
            Update::TicketRejected(f) => self.intake.rejected(&f, lang),
            Update::FollowUpFailed { no, failure } => {
                tracing::info!(ticket = %no, error = %failure.detail, "ticket registered, its answer not saved");
                self.intake.error = Some(format!("{}{}", T::FollowUpFailed.s(lang), failure.text(lang)));
            }
            Update::Suggestions { text, articles, answers } => {
                let answers_shown: Vec<String> = answers.iter().map(|a| a.no.to_string()).collect();
                tracing::info!(articles = articles.len(), ?answers_shown, "reference answers suggested");
                self.intake.consult.suggestions(&text, articles, answers);
            }
            Update::Tickets(page) => {
                tracing::info!(total = page.total, shown = page.items.len(), "tickets listed");
                self.tickets.busy = false;
                self.tickets.page = Some(page);
            }
            Update::SavedFilters(list) => {
                tracing::info!(saved_filters = list.len(), "saved filters listed");
                self.tickets.filters.listed(list);
            }
            Update::Ticket(t) => self.show_ticket(*t),
            Update::Acted(t) => {
                // An action in the due list (a return visit) stays there; others show the ticket.
                if self.tab != Tab::Due {
                    self.show_ticket(*t);
                } else {
                    tracing::info!(ticket = %t.no, state = t.state.code(), "ticket acted on");
                }
                self.reload_due();
            }
            Update::Previewed(t) => {
                tracing::info!(ticket = %t.no, due = ?t.due_date, working_days_left = ?t.working_days_left, "dispatch to confirm");
                self.tickets.previewed(*t);
            }
            Update::TicketCalls { no, calls } => {
                tracing::info!(ticket = %no, calls = ?calls.iter().map(|c| c.id).collect::<Vec<_>>(), "linked calls shown");
                self.tickets.linked.loaded(&no, calls);
            }
            Update::Playing { clip, at_secs, total_secs } => {
                if at_secs == 0 {
                    tracing::info!(?clip, total_secs, "playing on the headset");
                }
                self.tickets.linked.playing(clip, at_secs, total_secs);
            }
            Update::PlaybackEnded { clip, error } => {
                tracing::info!(?clip, ?error, "playback ended");
                if clip == Clip::SpeakerTest {
                    self.settings_screen.speaker_testing = false;
                    if error.is_some() {
                        self.settings_screen.audio_error.clone_from(&error);
                    }
                }
                self.tickets.linked.ended(clip, error);
            }
            Update::MicLevel(l) => self.settings_screen.level = l,
            Update::AudioProblem(e) => {
                let text = e.text(lang);
                self.settings_screen.audio_error = Some(text.clone());
                self.settings_screen.testing = false;
                self.notice = Some(text);
            }
            Update::AudioOk => {
                self.settings_screen.audio_ok = true;
                self.settings_screen.audio_error = None;
            }
        }
    }

    fn event(&mut self, ev: Event) {
        match &ev {
            Event::AgentStateChanged { state, .. } => tracing::info!(%state, "agent state"),
            Event::CallOffered { call, caller, .. } => {
                tracing::info!(call, %caller, "call offered");
                // The taskbar flashes for a ringing call when the window is behind another.
                self.wants_attention = true;
            }
            Event::CallConnected { call } => tracing::info!(call, "call connected"),
            Event::CallEnded { call, cause } => tracing::info!(call, %cause, "call ended"),
            _ => {}
        }
        self.status.on_event(&ev);
        match &ev {
            Event::ReminderDue { no, note, at, id } => {
                tracing::info!(ticket = %no, reminder = id, "reminder popped up");
                self.popups.push(DueNotice { id: *id, no: no.clone(), note: note.clone(), at: *at });
                self.wants_attention = true;
                self.reload_due();
            }
            Event::TicketChanged { .. } => self.reload_due(),
            _ => {}
        }
        if matches!(ev, Event::CallEnded { .. }) {
            // An audio problem belonged to the call.
            self.notice = None;
        }
        if let Some((caller, record)) = self.phone.on_event(&ev) {
            // Screen pop: the caller's history beside a form prefilled for this call.
            self.intake = IntakeForm::for_call(&caller, record);
            self.tab = Tab::Phone;
            if let Ok(phone) = PhoneNumber::parse(&caller) {
                self.backend.send(Command::CallerProfile { phone });
            }
        }
    }

    /// What a keyboard shortcut does now; department handlers take no calls, so only the
    /// ticket keys work for them.
    fn shortcut(&mut self, s: Shortcut, handler: bool) -> Option<Command> {
        let lang = self.lang;
        let call = self.phone.call.clone();
        let connected = call.as_ref().filter(|c| c.phase == Phase::Connected);
        let cmd = match s {
            _ if handler && !matches!(s, Shortcut::OpenSaved) => None,
            Shortcut::Answer => call.filter(|c| c.phase == Phase::Offered).map(|c| Command::Answer { call: c.call }),
            Shortcut::HangUp => call.map(|c| Command::Hangup { call: c.call }),
            Shortcut::Hold => connected.map(|c| Command::Hold { call: c.call, hold: !c.held }),
            Shortcut::Mute => connected.map(|c| Command::Mute { call: c.call, mute: !c.muted }),
            Shortcut::Ready | Shortcut::NotReady => self.status.shortcut(s),
            Shortcut::Dial => {
                self.tab = Tab::Phone;
                self.phone.focus_dial = true;
                None
            }
            Shortcut::NewTicket => {
                let (phone, record) = call.map_or((String::new(), None), |c| (c.number, c.record));
                self.intake = IntakeForm::for_call(&phone, record);
                self.tab = Tab::Phone;
                None
            }
            Shortcut::Save => (self.tab == Tab::Phone && !self.intake.saving).then(|| self.intake.submit(lang)).flatten(),
            Shortcut::OpenSaved => self.open_saved(),
        };
        tracing::info!(shortcut = ?s, acted = cmd.is_some(), "keyboard shortcut");
        cmd
    }

    /// Opens the ticket the intake form saved last in the ticket screen.
    fn open_saved(&self) -> Option<Command> {
        self.intake.saved.as_ref().map(|(no, _)| Command::GetTicket(no.clone()))
    }

    /// Marks the due list stale: it reloads on the next frame.
    /// A ticket to show in the ticket screen, its calls loaded for hotline staff.
    fn show_ticket(&mut self, t: rexian_shared::Ticket) {
        tracing::info!(ticket = %t.no, state = t.state.code(), working_days_left = ?t.working_days_left, "ticket shown");
        if self.role() != Role::Handler {
            let cmd = self.tickets.linked.open(&t.no);
            self.send(cmd);
        }
        self.tickets.acted(t);
    }

    fn reload_due(&mut self) {
        self.due.loaded_at = None;
    }

    /// Hotline staff see the callback list and the tickets due a call; handlers their reminders.
    fn staff(&self) -> bool {
        self.role() != Role::Handler
    }

    /// The due list with the call it started, if any, above it.
    fn due_ui(&mut self, ui: &mut egui::Ui) {
        let lang = self.lang;
        if let Some(c) = self.phone.call.clone() {
            if ui.button(T::HangUp.s(lang)).clicked() {
                self.send(Some(Command::Hangup { call: c.call }));
            }
        }
        let line = self.phone.summary(lang);
        let staff = self.staff();
        let cmd = self.due.ui(ui, lang, staff, &self.departments, line);
        if let Some(Command::Dial { number }) = &cmd {
            tracing::info!(%number, "dialling from the due list");
            self.phone.error = None;
        }
        self.send(cmd);
    }

    fn role(&self) -> Role {
        self.session.as_ref().map_or(Role::Agent, |s| s.user.role)
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        let lang = self.lang;
        ui.horizontal(|ui| {
            ui.heading(T::AppTitle.s(lang));
            ui.separator();
            let (text, color) = match self.conn {
                ConnState::Offline => (T::ConnOffline.s(lang).to_owned(), egui::Color32::GRAY),
                ConnState::Connecting => (T::ConnConnecting.s(lang).to_owned(), egui::Color32::from_rgb(200, 140, 0)),
                ConnState::Online => (T::ConnOnline.s(lang).to_owned(), egui::Color32::from_rgb(0, 140, 0)),
                ConnState::Reconnecting { attempt } => (format!("{}（{attempt}）", T::ConnReconnecting.s(lang)), egui::Color32::RED),
            };
            ui.colored_label(color, format!("● {text}"));
            if let Some(s) = &self.session {
                let no = s.user.agent_no.as_ref().map(|a| format!(" 工号{a}")).unwrap_or_default();
                ui.label(format!("{}（{}{no}）", s.user.display_name, crate::i18n::label(s.user.role.zh(), s.user.role.en(), lang)));
            }
            if ui.button(T::Language.s(lang)).clicked() {
                self.lang = if lang == Lang::Zh { Lang::En } else { Lang::Zh };
                self.save_settings();
            }
            if self.session.is_some() && ui.button(T::SignOut.s(lang)).clicked() {
                self.backend.send(Command::SignOut);
                self.session = None;
                self.phone = Softphone::default();
            }
        });
        ui.separator();
    }

    /// Draws the whole workstation into `ui` (the window's, or a test harness's).
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.pump();
        self.top_bar(ui);
        let lang = self.lang;
        if self.session.is_none() {
            let cmd = self.login.ui(ui, lang);
            self.send(cmd);
            return;
        }
        ui.ctx().request_repaint_after(TICK);
        let handler = self.role() == Role::Handler;
        for s in Shortcut::pressed(ui.ctx()) {
            let cmd = self.shortcut(s, handler);
            self.send(cmd);
        }
        if !handler {
            let cmd = self.status.ui(ui, lang);
            self.send(cmd);
        }
        let staff = self.staff();
        let reload = self.due.tick(staff);
        self.send(reload);
        if std::mem::take(&mut self.wants_attention) {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::RequestUserAttention(egui::UserAttentionType::Critical));
        }
        let cmd = self.popups.ui(ui.ctx(), lang);
        self.send(cmd);
        if let Some(n) = &self.notice {
            ui.colored_label(egui::Color32::RED, n);
        }
        ui.separator();
        ui.horizontal(|ui| {
            if !handler {
                ui.selectable_value(&mut self.tab, Tab::Phone, T::TabPhone.s(lang));
            }
            ui.selectable_value(&mut self.tab, Tab::Due, T::TabDue.s(lang));
            ui.selectable_value(&mut self.tab, Tab::Tickets, T::TabTickets.s(lang));
            ui.selectable_value(&mut self.tab, Tab::Settings, T::TabSettings.s(lang));
        });
        ui.separator();
        // The tab's widgets get ids independent of what is drawn above them (a notice, the state
        // bar's buttons): egui numbers widgets in drawing order, and a widget whose id shifts
        // loses the keyboard focus — the summary the agent is typing into.
        ui.scope_builder(egui::UiBuilder::new().scope_id(egui::Id::unique("tab-content")), |ui| self.tab_content(ui, lang));
    }

    fn tab_content(&mut self, ui: &mut egui::Ui, lang: Lang) {
        match self.tab {
            Tab::Phone => {
                let mut cmds = Vec::new();
                ui.columns(2, |cols| {
                    egui::ScrollArea::vertical().id_salt("phone-col").show(&mut cols[0], |ui| {
                        cmds.push(self.phone.ui(ui, lang, &self.departments));
                        ui.separator();
                        cmds.push(self.knowledge.ui(ui, lang));
                    });
                    egui::ScrollArea::vertical().id_salt("intake-col").show(&mut cols[1], |ui| cmds.push(self.intake.ui(ui, lang, &self.categories)));
                });
                for c in cmds {
                    self.send(c);
                }
            }
            Tab::Due => self.due_ui(ui),
            Tab::Tickets => {
                let role = self.role();
                let cmd = self.tickets.ui(ui, lang, role, &self.departments, &self.categories);
                self.send(cmd);
            }
            Tab::Settings => {
                let (mut input, mut output) = (self.settings.input_device.clone(), self.settings.output_device.clone());
                let (cmd, changed) = self.settings_screen.ui(ui, &mut self.lang, &mut input, &mut output);
                (self.settings.input_device, self.settings.output_device) = (input, output);
                if changed {
                    self.save_settings();
                }
                self.send(cmd);
            }
        }
    }
}

impl eframe::App for AgentApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(perf) = &mut self.perf {
            perf.frame(frame.info().cpu_usage);
        }
        egui::CentralPanel::default().show(ui, |ui| AgentApp::ui(self, ui));
    }
}
