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
    /// Create an admin account, or promote an existing one. The password is read from
    /// SB_ADMIN_PASSWORD, else from the first line of standard input.
    CreateAdmin {
        #[arg(long)]
        username: String,
    },
    /// Chat maintenance.
    Chat {
        #[command(subcommand)]
        command: ChatCommand,
    },
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
    let settings = Settings::from_env();
    telemetry::init(settings.log_json);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let settings = settings.with_dev_secrets();
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
            let admin = app::accounts::service::create_admin(&state.db, &username, &password)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("{} is now an admin", admin.username);
            Ok(())
        }
        Command::Chat { command: ChatCommand::Archive { now } } => {
            if !now {
                eprintln!("the server archives expired messages every SB_CHAT_ARCHIVE_EVERY_SECS; pass --now to run it once here");
                std::process::exit(2);
            }
            let batch = settings.chat.archive_batch;
            let state = startup::open_state(settings).await?;
            let report = app::chat::service::archive_expired(&state, batch).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("archived {} message(s) in {} batch(es)", report.messages, report.batches);
            Ok(())
        }
    }
}
