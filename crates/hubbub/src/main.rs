//! `hubbub`: serve the chat, administer it, move it, measure it.

use clap::{Parser, Subcommand};
use hubbub::app::{Application, open_store};
use hubbub::config::Settings;
use hubbub::domain::Chat;
use hubbub::hub::Hub;
use std::io::Write;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "hubbub",
    version,
    about = "Self-hosted real-time group chat, one binary."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the chat (the default when no command is given).
    Serve(Box<Settings>),
    /// Write the whole chat (users, avatars, rooms, members, messages, reactions,
    /// attachments and their files) as JSON Lines, to stdout or --output.
    Export {
        #[command(flatten)]
        settings: Box<Settings>,
        /// File to write instead of stdout.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Read an export into an empty database (e.g. moving from SQLite to PostgreSQL),
    /// from stdin or --input.
    Import {
        #[command(flatten)]
        settings: Box<Settings>,
        /// File to read instead of stdin.
        #[arg(long, short)]
        input: Option<std::path::PathBuf>,
    },
    /// Administer accounts.
    Admin {
        #[command(flatten)]
        settings: Box<Settings>,
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Load-test a server over the gateway (fanout, posts, idle) or run the lean
    /// yardstick server.
    Bench(hubbub::bench::BenchArgs),
}

#[derive(Subcommand)]
enum AdminAction {
    /// Create an account.
    CreateUser {
        username: String,
        /// Password (at least 8 characters).
        #[arg(long, env = "HUBBUB_ADMIN_PASSWORD")]
        password: String,
        /// Make the account a server admin.
        #[arg(long)]
        admin: bool,
    },
    /// Make an account a server admin (or take it back with --revoke).
    MakeAdmin {
        username: String,
        #[arg(long)]
        revoke: bool,
    },
    /// Set a new password for an account.
    ResetPassword {
        username: String,
        #[arg(long, env = "HUBBUB_ADMIN_PASSWORD")]
        password: String,
    },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("HUBBUB_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn install_metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
        ])
        .ok()?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    Some(handle)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    tracing::info!(?settings, "starting");
    let app = Application::build(settings, install_metrics()).await?;
    let addr = app.local_addr()?;
    // Machine-readable for scripts and tests; the log line is for people.
    println!("hubbub listening on {addr}");
    let _ = std::io::stdout().flush();
    tracing::info!("open http://{addr} in a browser");
    app.run_until_stopped(shutdown_signal()).await
}

async fn admin(settings: Settings, action: AdminAction) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let chat = Chat::new(store, Hub::new(1), Arc::new(settings), None);
    chat.bootstrap().await?;
    let result = match action {
        AdminAction::CreateUser {
            username,
            password,
            admin,
        } => chat
            .admin_create_user(&username, &password, admin)
            .await
            .map(|u| {
                println!("created {} ({})", u.username, u.id);
            }),
        AdminAction::MakeAdmin { username, revoke } => chat
            .admin_set_admin(&username, !revoke)
            .await
            .map(|_| println!("done")),
        AdminAction::ResetPassword { username, password } => chat
            .admin_reset_password(&username, &password)
            .await
            .map(|_| println!("done")),
    };
    result.map_err(|e| anyhow::anyhow!("{}: {}", e.code(), e.client_message()))
}

async fn export(settings: Settings, output: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let counts = match output {
        Some(path) => {
            let file = std::fs::File::create(&path)?;
            let mut w = std::io::BufWriter::new(file);
            hubbub::transfer::export(store.as_ref(), &settings.data_dir, &mut w).await?
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            hubbub::transfer::export(store.as_ref(), &settings.data_dir, &mut w).await?
        }
    };
    store.close().await;
    eprintln!("exported {}", serde_json::to_string(&counts)?);
    Ok(())
}

async fn import(settings: Settings, input: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let counts = match input {
        Some(path) => {
            let file = std::fs::File::open(&path)?;
            hubbub::transfer::import(
                store.as_ref(),
                &settings.data_dir,
                std::io::BufReader::new(file),
            )
            .await?
        }
        None => {
            let stdin = std::io::stdin();
            hubbub::transfer::import(store.as_ref(), &settings.data_dir, stdin.lock()).await?
        }
    };
    store.close().await;
    eprintln!("imported {}", serde_json::to_string(&counts)?);
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Some(Command::Serve(s)) => serve(*s).await,
        Some(Command::Admin { settings, action }) => admin(*settings, action).await,
        Some(Command::Export { settings, output }) => export(*settings, output).await,
        Some(Command::Import { settings, input }) => import(*settings, input).await,
        Some(Command::Bench(args)) => hubbub::bench::run(args).await,
        None => {
            // `hubbub` alone serves with defaults and environment.
            let s = Cli::parse_from(["hubbub", "serve"]);
            match s.command {
                Some(Command::Serve(s)) => serve(*s).await,
                _ => Ok(()),
            }
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hubbub: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
