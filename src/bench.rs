//! `switchboard bench …`: tools for measuring the platform at scale (docs/performance.md).

use clap::Subcommand;
use switchboard::Config;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Fill an organization with a realistic history: end users writing in Russian and
    /// English, conversations (most closed by operators, the recent ones with the bot,
    /// waiting or assigned), messages and events, then the statistics' roll-ups. The
    /// history hangs on a disconnected bot of its own; running it again adds more.
    Seed {
        /// The organization's slug or id.
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 10_000)]
        conversations: i64,
        #[arg(long, default_value_t = 50_000)]
        messages: i64,
        /// Operators to add (members without a password).
        #[arg(long, default_value_t = 10)]
        operators: i64,
        /// Days the history spans, ending now.
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
}

pub async fn run(config: &Config, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Seed {
            tenant,
            conversations,
            messages,
            operators,
            days,
        } => {
            let pool = switchboard::connect(config, false).await?;
            let tenant = match switchboard_db::platform::find_tenant(&pool, tenant.trim()).await {
                Ok(t) => t,
                Err(switchboard_db::DbError::NotFound) => {
                    anyhow::bail!("no tenant with slug or id {tenant:?}")
                }
                Err(e) => return Err(e.into()),
            };
            if !(1..=100_000_000).contains(&conversations)
                || !(0..=1_000_000_000).contains(&messages)
                || !(1..=10_000).contains(&operators)
                || !(1..=3650).contains(&days)
            {
                anyhow::bail!(
                    "--conversations 1–100000000, --messages 0–1000000000, \
                     --operators 1–10000, --days 1–3650"
                );
            }
            let started = std::time::Instant::now();
            let spec = switchboard_db::seed::SeedSpec {
                conversations,
                messages,
                operators,
                days,
            };
            let seeded = switchboard_db::seed::seed(&pool, tenant.id, spec, |step| {
                eprintln!("[{:>6.1} s] {step}", started.elapsed().as_secs_f64());
            })
            .await?;
            eprintln!(
                "[{:>6.1} s] statistics roll-ups",
                started.elapsed().as_secs_f64()
            );
            let now = chrono::Utc::now();
            let mut day = now - chrono::Duration::days(days + 1);
            while day < now {
                let end = (day + chrono::Duration::days(1)).min(now);
                let mut tx = pool.begin().await?;
                switchboard_db::stats::rollup(&mut tx, tenant.id, day, end).await?;
                tx.commit().await?;
                day = end;
            }
            println!(
                "{}: {} end users, {} conversations ({} waiting, {} assigned), {} messages in {:.0} s",
                tenant.slug,
                seeded.end_users,
                seeded.conversations,
                seeded.waiting,
                seeded.assigned,
                seeded.messages,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
