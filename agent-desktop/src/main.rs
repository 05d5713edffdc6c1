//! agent-desktop — the agent workstation window (热线坐席 Rexian Agent).
//!
//! Usage: `agent-desktop` (the login screen remembers the last server and user name).
//! `RUST_LOG=debug` for a log on stderr. With `REXIAN_PASSWORD` set it logs in at start with
//! the remembered server and user name (kiosks, demos, screenshots).

use agent_desktop::{fonts, settings, AgentApp};
use eframe::egui;
use std::sync::Arc;

fn main() -> eframe::Result {
    let started = std::time::Instant::now();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file (a kiosk's, a test's) stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let options = eframe::NativeOptions {
        // 1280×720 fits a 1366×768 screen with its task bar; the window grows to 1920×1080.
        viewport: egui::ViewportBuilder::default().with_title("热线坐席 Rexian Agent").with_inner_size([1280.0, 720.0]).with_min_inner_size([1024.0, 600.0]),
        ..Default::default()
    };
    eframe::run_native(
        "热线坐席 Rexian Agent",
        options,
        Box::new(|cc| {
            match fonts::install_cjk_font(&cc.egui_ctx) {
                Some(path) => tracing::info!(font = %path.display(), "CJK font"),
                None => eprintln!("agent-desktop: 未找到中文字体 / no CJK font found (install fonts-noto-cjk or fonts-wqy-microhei)"),
            }
            let ctx = cc.egui_ctx.clone();
            let mut app = AgentApp::new(settings::config_dir(), Arc::new(move || ctx.request_repaint()));
            app.perf = Some(agent_desktop::perf::FrameStats::new(started));
            if let Ok(password) = std::env::var("REXIAN_PASSWORD") {
                app.auto_login(password);
            }
            Ok(Box::new(app))
        }),
    )
}
