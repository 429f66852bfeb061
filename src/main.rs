//! `switchboard`: run the platform (`serve`, `worker`), migrate the database, and
//! bootstrap tenants, API tokens and superusers.

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::{bootstrap, Config, ServeOptions};
use switchboard_core::text::Lang;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Multi-tenant helpdesk platform for Telegram bots"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (webhooks, API, pages) and the job workers.
    Serve {
        /// Run only HTTP; start job workers separately with `switchboard worker`.
        #[arg(long)]
        no_jobs: bool,
    },
    /// Run only the job workers (delivery and upkeep).
    Worker,
    /// Apply database migrations (creating the database if needed).
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage personal API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage platform superusers.
    Superuser {
        #[command(subcommand)]
        command: SuperuserCommand,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create an organization with its owner.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: String,
        #[arg(long)]
        owner_password: String,
        /// Language of the bot's default texts: en or ru.
        #[arg(long, default_value = "en")]
        language: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a personal API token of a member (the last line printed is the token).
    Create {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// A label to recognise the token by.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum SuperuserCommand {
    /// Create a platform superuser (or promote an existing user).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info,apalis=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = real_main().await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::from_env()?;
    init_logging(config.json_logs);
    match cli.command {
        Command::Serve { no_jobs } => {
            let vault = config.vault(true)?;
            let pool = switchboard::connect(&config, true).await?;
            switchboard::migrate(&pool).await?;
            let telegram = switchboard::telegram(&config, &pool, vault)?;
            let listener = tokio::net::TcpListener::bind(config.bind)
                .await
                .with_context(|| format!("cannot listen on {}", config.bind))?;
            println!(
                "Switchboard is running at http://{}",
                listener.local_addr()?
            );
            println!(
                "  public URL (for Telegram webhooks): {}",
                config.public_url
            );
            println!("  Bot API: {}", config.telegram_api_url);
            println!(
                "  API docs: http://{}/api/v1/openapi.json",
                listener.local_addr()?
            );
            println!(
                "Next: open {} and create your organization (or from the command line:",
                config.public_url
            );
            println!("  switchboard tenant create --name \"Acme\" --owner-email you@example.com --owner-password '…')");
            let options = ServeOptions { jobs: !no_jobs };
            switchboard::run(
                listener,
                config,
                pool,
                telegram,
                options,
                switchboard::shutdown_signal(),
            )
            .await?;
        }
        Command::Worker => {
            let vault = config.vault(false)?;
            let pool = switchboard::connect(&config, false).await?;
            if !switchboard_db::pool::migrations_current(&pool).await? {
                anyhow::bail!(
                    "the database schema is not current: run `switchboard migrate` first"
                );
            }
            let telegram = switchboard::telegram(&config, &pool, vault)?;
            let worker_config = switchboard_jobs::WorkerConfig {
                concurrency: config.worker_concurrency,
                ..Default::default()
            };
            switchboard_jobs::run(
                pool,
                telegram,
                worker_config,
                switchboard::shutdown_signal(),
            )
            .await
            .context("job workers failed")?;
        }
        Command::Migrate => {
            let pool = switchboard::connect(&config, true).await?;
            switchboard::migrate(&pool).await?;
            println!(
                "Database {} is migrated.",
                switchboard::redact_url(&config.database_url)
            );
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    owner_email,
                    owner_password,
                    language,
                },
        } => {
            let lang = match language.as_str() {
                "en" => Lang::En,
                "ru" => Lang::Ru,
                other => anyhow::bail!("--language must be en or ru, not {other:?}"),
            };
            let pool = switchboard::connect(&config, false).await?;
            let created =
                bootstrap::create_tenant(&pool, &name, &owner_email, &owner_password, lang).await?;
            println!("Created tenant {:?}", created.tenant.name);
            println!("  slug: {}", created.tenant.slug);
            println!("  id:   {}", created.tenant.id);
            println!(
                "Owner: {} ({}, user id {})",
                created.owner.email,
                if created.owner_existed {
                    "existing user"
                } else {
                    "new user"
                },
                created.owner.id
            );
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    tenant,
                    email,
                    name,
                },
        } => {
            let pool = switchboard::connect(&config, false).await?;
            let created = bootstrap::create_token(&pool, &tenant, &email, &name).await?;
            println!(
                "Created API token {:?} ({}…) for {} as {} of {}. Keep it secret; it is shown only once:",
                name, created.prefix, created.user.email, created.role, created.tenant.slug
            );
            println!("{}", created.token);
        }
        Command::Superuser {
            command: SuperuserCommand::Create { email, password },
        } => {
            let pool = switchboard::connect(&config, false).await?;
            let (user, existed) = bootstrap::create_superuser(&pool, &email, &password).await?;
            if existed {
                println!(
                    "Made existing user {} (id {}) a superuser",
                    user.email, user.id
                );
            } else {
                println!("Created superuser {} (id {})", user.email, user.id);
            }
        }
    }
    Ok(())
}
