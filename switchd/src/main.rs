use clap::Parser;
use switchd::cli::{self, Cli, Command, RunArgs};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut config = match cli::load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchd: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchd: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None => switchd::daemon::run(config).await,
            Some(Command::Run(args)) => {
                apply(&mut config, &args);
                switchd::daemon::run(config).await
            }
            Some(other) => cli::admin(config, other).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn apply(config: &mut switchd::config::Config, args: &RunArgs) {
    cli::apply_run_args(config, args);
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colour).with_writer(std::io::stderr).init();
}
