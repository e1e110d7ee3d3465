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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::from_env();
    telemetry::init(settings.log_json);
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
            let admin = app::accounts::service::create_admin(&state.db, &username, &password)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("{} is now an admin", admin.username);
            Ok(())
        }
    }
}
