//! Starting and stopping the daemon: the data directory, the store, the desk server, metrics and
//! the background checks (reminders, overdue tickets).

use crate::auth::Auth;
use crate::cases::Cases;
use crate::config::Config;
use crate::desk::{self, Audience, DeskContext, Hub};
use crate::metrics::{self, Metrics};
use crate::store::{DueReminder, NewlyOverdue, Store};
use crate::{calendar, certs, demo};
use anyhow::Context as _;
use rexian_shared::{Event, NewUser, Role};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Written once the daemon listens; removed on a clean stop. Tests and scripts wait for it.
pub const READY_FILE: &str = "switchd.ready";
pub const LOCK_FILE: &str = "switchd.lock";
pub const DB_FILE: &str = "rexian.db";

pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE)
}

/// Holds the data directory's lock: one daemon per data directory.
pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let file = File::create(data_dir.join(LOCK_FILE))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!("另一个switchd正在使用数据目录 / another switchd is running on {}", data_dir.display())
    })?;
    Ok(file)
}

/// True while a daemon holds the data directory.
pub fn is_running(data_dir: &Path) -> bool {
    let Ok(file) = File::options().write(true).open(data_dir.join(LOCK_FILE)) else { return false };
    file.try_lock().is_err()
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let _lock = lock_data_dir(&data_dir)?;
    let _ = std::fs::remove_file(data_dir.join(READY_FILE));
    let store = Store::open(&db_path(&data_dir))?;
    let first_start = store.read(|db| db.user_count()).await? == 0;
    store.write(demo::seed_base).await?;
    let days = store.read(|db| db.calendar_days()).await?;
    let cases = Cases::new(
        store.clone(),
        calendar::Calendar::new(days),
        config.deadlines.clone(),
        config.limits.clone(),
        data_dir.clone(),
    );
    let auth = Auth::new(store.clone(), config.auth.clone())?;
    let desk_link = DeskLink::new();
    let prompts = prompts_of(&config);
    let (desk_out_tx, desk_out_rx) = tokio::sync::mpsc::unbounded_channel();
    let acd = crate::acd::actor::spawn(&config.acd, desk_out_tx.clone(), store.clone(), config.utc_offset_hours).context("invalid [acd] configuration")?;
    let ctx = Arc::new(DeskContext {
        auth: auth.clone(),
        cases: cases.clone(),
        hub: Hub::default(),
        metrics: Arc::new(Metrics::default()),
        utc_offset_hours: config.utc_offset_hours,
        audio_in: Some(desk_link.audio_tx.clone()),
        calls: Some(desk_link.control_tx.clone()),
        prompts: Some(prompts.clone()),
        acd: Some(acd.clone()),
    });
    if first_start {
        first_start_accounts(&config, &auth, &cases, ctx.now()).await?;
    }
    let identity = certs::load_or_create(&data_dir)?;
    let fingerprint = identity.fingerprint();
    let sip_tls = sip_tls_config(&identity)?;
    let endpoint = quinn::Endpoint::server(desk::server_config(identity)?, config.desk_addr)
        .with_context(|| format!("cannot listen for desks on {}", config.desk_addr))?;
    let desk_addr = endpoint.local_addr()?;
    let metrics_listener = metrics::bind(config.metrics_addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {}", config.metrics_addr))?;
    let metrics_addr = metrics_listener.local_addr()?;
    tokio::spawn(metrics::serve(metrics_listener, ctx.metrics.clone()));
    tokio::spawn(desk::serve(endpoint.clone(), ctx.clone()));
    let (sip_socket, sip_tcp) = bind_sip(config.sip_addr, config.telephony.sip_tcp)
        .await
        .with_context(|| format!("cannot listen for SIP on {}", config.sip_addr))?;
    let sip_addr = sip_socket.local_addr()?;
    let sip_tls_listener = match config.telephony.sip_tls_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for SIP over TLS on {addr}"))?,
        ),
        None => None,
    };
    let sip_tls_addr = sip_tls_listener.as_ref().map(tokio::net::TcpListener::local_addr).transpose()?;
    let tel = &config.telephony;
    let listeners = crate::sip::tcp::Listeners {
        tcp: sip_tcp,
        tls: sip_tls_listener.map(|l| (l, sip_tls)),
        limits: crate::sip::tcp::StreamLimits {
            max_connections: tel.tcp_max_connections,
            max_per_ip: tel.tcp_max_connections_per_ip,
            framer: crate::sip::stream::FramerLimits {
                idle: Duration::from_secs(tel.tcp_idle_secs.max(1)),
                ..Default::default()
            },
        },
    };
    repair_recordings(&store, &data_dir).await;
    tokio::spawn(desk::deliver(ctx.clone(), desk_out_rx));
    let sip = SipListeners { socket: sip_socket, local: sip_addr, streams: listeners, tls_port: sip_tls_addr.map(|a| a.port()) };
    let ivr = start_ivr(&ctx, &config, prompts.clone(), acd).await;
    start_telephony(&config, store.clone(), sip, ctx.metrics.clone(), desk_link, desk_out_tx, prompts, ivr);
    tokio::spawn(background_checks(ctx.clone(), Duration::from_secs(config.reminder_interval_secs.max(1))));
    write_ready(&data_dir, desk_addr, metrics_addr, sip_addr, sip_tls_addr, &fingerprint)?;
    tracing::info!(%desk_addr, %metrics_addr, %sip_addr, ?sip_tls_addr, data_dir = %data_dir.display(), "switchd ready");
    let sip_transports = if config.telephony.sip_tcp { "UDP+TCP" } else { "UDP" };
    let tls = sip_tls_addr.map(|a| format!(", SIP (TLS) {a}")).unwrap_or_default();
    println!("switchd 已启动 / ready — desk (QUIC) {desk_addr}, SIP ({sip_transports}) {sip_addr}{tls}, metrics http://{metrics_addr}/metrics");
    println!("证书指纹 / certificate fingerprint: {fingerprint}");
    shutdown_signal().await;
    tracing::info!("stopping");
    endpoint.close(0u32.into(), b"switchd stopping");
    let _ = tokio::time::timeout(Duration::from_secs(3), endpoint.wait_idle()).await;
    let _ = std::fs::remove_file(data_dir.join(READY_FILE));
    tracing::info!("stopped");
    Ok(())
}

/// The channels between the desk server and the engine's desk legs (see `engine::desk_leg`).
struct DeskLink {
    audio_tx: tokio::sync::mpsc::Sender<crate::engine::desk_leg::IncomingAudio>,
    audio_rx: tokio::sync::mpsc::Receiver<crate::engine::desk_leg::IncomingAudio>,
    control_tx: tokio::sync::mpsc::UnboundedSender<crate::engine::desk_leg::DeskControl>,
    control_rx: tokio::sync::mpsc::UnboundedReceiver<crate::engine::desk_leg::DeskControl>,
}

impl DeskLink {
    fn new() -> Self {
        // A few hundred frames: seconds of audio for a handful of calls, never a growing queue.
        let (audio_tx, audio_rx) = tokio::sync::mpsc::channel(512);
        let (control_tx, control_rx) = tokio::sync::mpsc::unbounded_channel();
        Self { audio_tx, audio_rx, control_tx, control_rx }
    }
}

/// Runs the SIP core (UDP, and the TCP/TLS connections) on a thread and runtime of its own, so
/// signalling is never queued behind the call tasks' 20 ms media work: the call bench showed a
/// new INVITE waiting more than 5 s while 1,000 calls ran on the shared runtime.
fn spawn_sip_thread(
    socket: tokio::net::UdpSocket,
    streams: crate::sip::tcp::Listeners,
    dials: bool,
    tls_clients: HashMap<std::net::SocketAddr, crate::sip::tcp::TlsClient>,
    core: crate::sip::udp::UdpCore,
    events: tokio::sync::mpsc::UnboundedSender<crate::sip::ua::CallEvent>,
    commands: tokio::sync::mpsc::UnboundedReceiver<crate::sip::ua::CallCommand>,
) {
    // Sockets belong to the runtime that registered them: hand them over as std sockets.
    let socket = socket.into_std();
    let tcp = streams.tcp.map(tokio::net::TcpListener::into_std);
    let tls = streams.tls.map(|(l, config)| (l.into_std(), config));
    let limits = streams.limits;
    let started = std::thread::Builder::new().name("sip".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => return tracing::error!(error = %e, "cannot start the SIP runtime"),
        };
        runtime.block_on(async move {
            let adopt = || -> std::io::Result<_> {
                let socket = tokio::net::UdpSocket::from_std(socket?)?;
                let tcp = tcp.transpose()?.map(tokio::net::TcpListener::from_std).transpose()?;
                let tls = match tls {
                    Some((l, config)) => Some((tokio::net::TcpListener::from_std(l?)?, config)),
                    None => None,
                };
                Ok((socket, tcp, tls))
            };
            let (socket, tcp, tls) = match adopt() {
                Ok(parts) => parts,
                Err(e) => return tracing::error!(error = %e, "cannot move the SIP sockets to their thread"),
            };
            let streams = crate::sip::tcp::Listeners { tcp, tls, limits };
            // A hub also when no listener runs but a trunk is reached over a stream.
            let hub = (streams.tcp.is_some() || streams.tls.is_some() || dials)
                .then(|| crate::sip::tcp::StreamHub::spawn(streams).with_tls_clients(tls_clients));
            crate::sip::udp::serve_all(socket, hub, core, events, commands).await;
        });
    });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the SIP thread");
    }
}

/// The bound SIP sockets.
struct SipListeners {
    socket: tokio::net::UdpSocket,
    /// The UDP (and TCP) address.
    local: std::net::SocketAddr,
    streams: crate::sip::tcp::Listeners,
    tls_port: Option<u16>,
}

/// The UDP socket on `addr` and, when `tcp`, a TCP listener on the same address and port (RFC
/// 3263 peers look for both on one port). With port 0 the pair is retried until the port the
/// UDP socket got is free for TCP too.
async fn bind_sip(
    addr: std::net::SocketAddr,
    tcp: bool,
) -> std::io::Result<(tokio::net::UdpSocket, Option<tokio::net::TcpListener>)> {
    let mut attempts = 0;
    loop {
        let socket = tokio::net::UdpSocket::bind(addr).await?;
        if !tcp {
            return Ok((socket, None));
        }
        let bound = socket.local_addr()?;
        match tokio::net::TcpListener::bind(bound).await {
            Ok(listener) => return Ok((socket, Some(listener))),
            Err(e) if addr.port() == 0 && attempts < 20 => {
                attempts += 1;
                tracing::debug!(%bound, error = %e, "SIP: TCP port taken, trying another pair");
            }
            Err(e) => return Err(e),
        }
    }
}

/// The SIP-over-TLS server configuration with switchd's certificate: TLS 1.2 and 1.3
/// (carriers' SBCs still speak 1.2), the ring provider, no client certificates.
fn sip_tls_config(identity: &certs::Identity) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let config = rustls::ServerConfig::builder_with_provider(rexian_shared::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    Ok(Arc::new(config))
}

/// The prompts: the administrator's files in `data_dir/prompts`, rendered TTS cached in
/// `data_dir/cache/tts`.
fn prompts_of(config: &Config) -> crate::media::prompt::Prompts {
    use crate::media::prompt::{Prompts, TtsConfig};
    let tel = &config.telephony;
    let tts = TtsConfig { program: tel.tts_program.clone(), voice: tel.tts_voice.clone(), ..TtsConfig::default() };
    Prompts::new(config.data_dir.join("prompts"), config.data_dir.join("cache").join("tts"), tts)
}

/// The IVR behind the hotline number: the shipped 12365 flow is stored on first start, and
/// every flow's fixed prompts are rendered in the background.
async fn start_ivr(
    ctx: &Arc<DeskContext>,
    config: &Config,
    prompts: crate::media::prompt::Prompts,
    acd: crate::acd::actor::AcdHandle,
) -> Arc<crate::ivr::runner::Ivr> {
    let (ivr_config, announcement) = (&config.ivr, config.acd.announcement.clone());
    let position_every = Duration::from_secs(u64::from(config.acd.position_every_secs));
    use crate::ivr::{records, runner};
    if let Err(e) = records::seed_default_flows(ctx.cases.store(), ctx.now()).await {
        tracing::error!(error = %e, "IVR: cannot install the default flow");
    }
    match records::load_flows(ctx.cases.store()).await {
        Ok(flows) => runner::prerender(prompts, flows.values().flat_map(|f| f.static_texts()).collect()),
        Err(e) => tracing::warn!(error = %e, "IVR: cannot load the flows"),
    }
    let hub = ctx.clone();
    let online: runner::Online = Arc::new(move |user_id| !hub.hub.connections_of(user_id).is_empty());
    if let Some(at) = ivr_config.simulate_time {
        tracing::warn!(%at, "IVR: business hours are judged at a simulated time (rehearsal)");
    }
    Arc::new(runner::Ivr {
        cases: ctx.cases.clone(),
        online,
        utc_offset_hours: ctx.utc_offset_hours,
        entry_flow: ivr_config.entry_flow.clone(),
        simulate_time: ivr_config.simulate_time,
        acd: Some(acd),
        announcement,
        position_every,
    })
}

/// The TLS settings of the trunks reached over TLS, by destination. A trunk whose settings
/// are unusable (an unreadable CA file, say) is left out, loudly: its connections then fail
/// as unreachable, and its calls fail over to the next trunk.
fn trunk_tls_clients(tel: &crate::engine::config::TelephonyConfig) -> HashMap<std::net::SocketAddr, crate::sip::tcp::TlsClient> {
    let mut clients = HashMap::new();
    for t in tel.trunks.iter().filter(|t| t.transport == crate::sip::stream::Transport::Tls) {
        let Some(peer) = t.proxy.or_else(|| t.addresses.first().map(|ip| std::net::SocketAddr::new(*ip, 5060))) else {
            continue;
        };
        match crate::sip::tcp::TlsClient::new(t.tls_ca.as_deref(), t.tls_server_name.as_deref(), peer) {
            Ok(client) => {
                clients.insert(peer, client);
            }
            Err(e) => tracing::error!(trunk = %t.name, error = %e, "SIP: the trunk's TLS settings are unusable; it cannot be reached"),
        }
    }
    clients
}

/// Starts the SIP listeners and the engine behind them.
#[allow(clippy::too_many_arguments)]
fn start_telephony(
    config: &Config,
    store: Store,
    sip: SipListeners,
    metrics: Arc<Metrics>,
    desk_link: DeskLink,
    desk_out: tokio::sync::mpsc::UnboundedSender<crate::engine::desk_leg::DeskOut>,
    prompts: crate::media::prompt::Prompts,
    ivr: Arc<crate::ivr::runner::Ivr>,
) {
    use crate::engine::{self, Shared};
    use crate::sip::{ua, udp, Timers};
    let tel = &config.telephony;
    let SipListeners { socket, local, streams, tls_port } = sip;
    let trunks = tel
        .trunks
        .iter()
        .map(|t| ua::TrunkPeer {
            name: t.name.clone(),
            addresses: t.addresses.clone(),
            proxy: t.proxy,
            username: t.username.clone(),
            password: t.password.clone(),
            register: t.register.then_some(t.register_expires_secs),
            e164: t.number_format == crate::engine::config::NumberFormat::E164,
            transport: t.transport,
            inbound: match (&t.inbound_username, &t.inbound_password) {
                (Some(u), Some(p)) => Some(crate::sip::digest::Credentials::new(u.clone(), p.clone())),
                _ => None,
            },
            // Listening on an unspecified address: REGISTER's Contact needs the address this
            // trunk reaches us on (the routing table knows).
            local_ip: t
                .proxy
                .or_else(|| t.addresses.first().map(|ip| std::net::SocketAddr::new(*ip, 5060)))
                .and_then(|peer| crate::sip::trunks::local_ip_towards(peer, tel.advertise_ip.unwrap_or(local.ip()))),
        })
        .collect();
    let advertised = match tel.advertise_ip {
        Some(ip) => std::net::SocketAddr::new(ip, local.port()),
        None => local,
    };
    let keepalive = (tel.keepalive_secs > 0).then(|| Duration::from_secs(u64::from(tel.keepalive_secs)));
    // A zero minimum would let a caller ask for a timer that fires at once.
    let min_se = tel.session_min_se_secs.max(1);
    let session = crate::sip::session_timer::SessionConfig { expires: tel.session_expires_secs.max(min_se), min_se };
    let calls = ua::Calls::new(Timers::default(), advertised, trunks, tel.max_calls)
        .with_keepalive(keepalive)
        .with_tls_port(tls_port)
        .with_session_timers(session);
    let limits = udp::Limits {
        rate_per_sec: tel.sip_rate_per_sec,
        burst: tel.sip_burst,
        trunk_rate_per_sec: tel.trunk_rate_per_sec,
        trunk_burst: tel.trunk_burst,
        ..udp::Limits::default()
    };
    let tls_clients = trunk_tls_clients(tel);
    let core = udp::UdpCore::new(Timers::default(), limits, metrics.clone(), calls);
    let dials = !core.stream_destinations().is_empty();
    let (event_tx, event_rx) = tokio::sync::mpsc::unbounded_channel();
    let (command_tx, command_rx) = tokio::sync::mpsc::unbounded_channel();
    spawn_sip_thread(socket, streams, dials, tls_clients, core, event_tx, command_rx);
    let desks = Arc::new(engine::desk_leg::DeskRegistry::default());
    let hold_music: Arc<[i16]> = if tel.hold_music.is_empty() {
        engine::hold::melody().into()
    } else {
        prompts.file(&tel.hold_music).unwrap_or_else(|e| {
            tracing::warn!(file = tel.hold_music, error = %e, "hold music unreadable; the built-in melody plays");
            engine::hold::melody().into()
        })
    };
    let shared = Arc::new(Shared {
        config: tel.clone(),
        store,
        prompts,
        data_dir: config.data_dir.clone(),
        utc_offset_hours: config.utc_offset_hours,
        commands: command_tx,
        events: tokio::sync::broadcast::channel(1024).0,
        hotline: ivr.clone().hook(),
        flows: ivr.clone().flow_hook(),
        metrics,
        desks,
        desk_out,
        legs: Default::default(),
        next_outbound: Default::default(),
        hold_music,
    });
    if let Some(acd) = &ivr.acd {
        tokio::spawn(crate::acd::actor::follow_engine(acd.clone(), shared.events.subscribe()));
        let dialer = shared.clone();
        acd.set_dialer(Arc::new(move |job| engine::callback::spawn(dialer.clone(), job)));
    }
    tokio::spawn(engine::desk_leg::route(shared.clone(), desk_link.audio_rx, desk_link.control_rx));
    tokio::spawn(engine::run(shared, event_rx));
}

/// Calls the last run left open (a crash or power cut) are closed in their CDRs, and their
/// recordings' WAV headers repaired so everything written up to the crash plays.
async fn repair_recordings(store: &Store, data_dir: &Path) {
    let dangling = match store.close_dangling_calls(chrono::Utc::now()).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot close the calls of the last run");
            return;
        }
    };
    for (id, path) in dangling {
        let full = data_dir.join(&path);
        let repaired = tokio::task::spawn_blocking(move || crate::media::wav::repair(&full)).await;
        match repaired {
            Ok(Ok(report)) => {
                let seconds = report.frames as f64 / f64::from(report.format.sample_rate.max(1));
                tracing::info!(call = id, path, seconds, "recording of an interrupted call repaired");
                if let Err(e) = store.call_recording_finished(id, path, seconds).await {
                    tracing::warn!(call = id, error = %e, "CDR: cannot note the repaired recording");
                }
            }
            Ok(Err(e)) => tracing::warn!(call = id, path, error = %e, "cannot repair a recording"),
            Err(e) => tracing::warn!(call = id, error = %e, "repair task failed"),
        }
    }
}

/// Demo users (with `--demo`), or one administrator with a random password.
async fn first_start_accounts(config: &Config, auth: &Auth, cases: &Cases, now: chrono::NaiveDateTime) -> anyhow::Result<()> {
    if config.demo_data {
        demo::seed_demo(auth, cases, now).await?;
        println!("演示数据已创建 / demo data created. 用户 / users: admin agent1 agent2 supervisor quality metrology equipment dongcheng director");
        println!("演示密码 / demo password: {}", demo::DEMO_PASSWORD);
        return Ok(());
    }
    let password = crate::auth::new_token()?[..16].to_owned();
    let admin = NewUser {
        username: "admin".into(),
        display_name: "系统管理员".into(),
        role: Role::Admin,
        password: password.clone(),
        agent_no: None,
        department_id: None,
    };
    auth.create_user(admin, "switchd", now).await?;
    let path = config.data_dir.join("initial-admin-password");
    std::fs::write(&path, format!("{password}\n"))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    println!("已创建管理员admin，初始密码见 / administrator 'admin' created; initial password in {}", path.display());
    Ok(())
}

fn write_ready(
    data_dir: &Path,
    desk: std::net::SocketAddr,
    metrics: std::net::SocketAddr,
    sip: std::net::SocketAddr,
    sip_tls: Option<std::net::SocketAddr>,
    fingerprint: &str,
) -> anyhow::Result<()> {
    let ready = serde_json::json!({
        "pid": std::process::id(),
        "desk_addr": desk.to_string(),
        "metrics_addr": metrics.to_string(),
        // UDP and (unless telephony.sip_tcp is off) TCP.
        "sip_addr": sip.to_string(),
        "sip_tls_addr": sip_tls.map(|a| a.to_string()),
        "fingerprint": fingerprint,
    });
    let tmp = data_dir.join("switchd.ready.part");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&ready)?)?;
    std::fs::rename(tmp, data_dir.join(READY_FILE))?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers we cannot stop cleanly; run until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// A ticket becomes overdue when a day ends, so looking once a minute is plenty.
const OVERDUE_EVERY: Duration = Duration::from_secs(60);

/// Fires due reminders (催办) and announces newly overdue tickets to the people concerned.
async fn background_checks(ctx: Arc<DeskContext>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    let mut last_overdue: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        let now = ctx.now();
        let store = ctx.cases.store();
        match store.write(move |db| db.take_due_reminders(now)).await {
            Ok(due) => {
                for DueReminder { id, no, note, at, departments, set_by } in due {
                    Metrics::inc(&ctx.metrics.reminders_fired);
                    tracing::info!(ticket = %no, reminder = id, "reminder due");
                    let users: Vec<i64> = set_by.into_iter().collect();
                    ctx.hub.publish_to_concerned(Event::ReminderDue { no, note, at, id }, &Audience { departments }, &users);
                }
            }
            Err(e) => tracing::error!(error = %e, "reminder check failed"),
        }
        if last_overdue.is_some_and(|t| t.elapsed() < OVERDUE_EVERY) {
            continue;
        }
        last_overdue = Some(std::time::Instant::now());
        let today = now.date();
        match store.write(move |db| db.take_new_overdue(today)).await {
            Ok(overdue) => {
                for NewlyOverdue { no, due_date, departments } in overdue {
                    tracing::info!(ticket = %no, %due_date, "ticket overdue");
                    ctx.hub.publish(Event::TicketOverdue { no, due_date }, &Audience { departments });
                }
            }
            Err(e) => tracing::error!(error = %e, "overdue check failed"),
        }
    }
}
