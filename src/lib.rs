//! The `switchboard` program: configuration, start-up of the web server and the job
//! workers, and the bootstrap commands. The binary (`main.rs`) is a thin CLI over this.

pub mod bootstrap;
pub mod config;
pub mod keys;
pub mod models;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use switchboard_telegram::{BotApi, Telegram, TelegramSettings};

pub use config::{Config, SemanticStage};

/// Telegram calls give up after this long (the delivery job retries later).
const TELEGRAM_TIMEOUT: Duration = Duration::from_secs(20);

/// Applies every migration: apalis's and ours, and the session table.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    switchboard_db::migrate(pool)
        .await
        .context("migrations failed")?;
    switchboard_web::migrate_sessions(pool)
        .await
        .context("session table migration failed")?;
    Ok(())
}

/// Opens the pool; `serve` and `migrate` create the database if needed.
pub async fn connect(config: &Config, create_if_missing: bool) -> anyhow::Result<PgPool> {
    switchboard_db::connect(&switchboard_db::ConnectOptions {
        url: config.database_url.clone(),
        max_connections: config.db_pool_size,
        create_if_missing,
    })
    .await
    .with_context(|| {
        format!(
            "cannot connect to PostgreSQL at {}",
            redact_url(&config.database_url)
        )
    })
}

/// The database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(unparseable URL)".into(),
    }
}

/// The shared Telegram side, with its cache invalidation listener running.
pub fn telegram(
    config: &Config,
    pool: &PgPool,
    vault: switchboard_core::vault::Vault,
) -> anyhow::Result<Arc<Telegram>> {
    let api =
        BotApi::new(&config.telegram_api_url, TELEGRAM_TIMEOUT).map_err(anyhow::Error::msg)?;
    let settings = TelegramSettings {
        chat_interval: Duration::from_millis(config.chat_send_interval_ms),
        bot_rate: config.bot_send_rate.max(1),
        cached_tenants: config.cached_tenants,
        delivery_lease: Duration::from_secs(config.delivery_lease_seconds),
        ..TelegramSettings::new(config.public_url.clone())
    };
    let telegram = Arc::new(Telegram::new(pool.clone(), api, Arc::new(vault), settings));
    if let Some(encoder) = semantic_encoder(&config.semantic)? {
        telegram.caches.set_encoder(Arc::from(encoder));
    }
    tokio::spawn(switchboard_telegram::cache::listen_for_invalidations(
        pool.clone(),
        telegram.caches.clone(),
    ));
    Ok(telegram)
}

/// Makes the sentence encoder's matrix products run on the thread of their forward pass.
/// Each pass already runs on a one-thread lane of its own (`switchboard_embed`), at most one
/// per core at a time; candle would otherwise split every product over all cores, which
/// inside such a lane is pure overhead (a short message: 10 ms instead of 7). candle
/// reads `RAYON_NUM_THREADS`, as rayon does; an operator's own value is kept. Call first
/// thing in `main`, before any other thread exists (the environment is not thread-safe).
pub fn one_thread_per_forward_pass() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

/// The matcher's semantic stage as configured: its encoder, or none (turned off, a build
/// without the stage, or the default model not fetched yet — each said in the log). A
/// model directory named explicitly that holds no model, or a model that cannot be read,
/// is an error.
pub fn semantic_encoder(
    stage: &SemanticStage,
) -> anyhow::Result<Option<Box<dyn switchboard_core::matcher::SentenceEncoder>>> {
    let (dir, required) = match stage {
        SemanticStage::Off => {
            tracing::info!("the matcher's semantic stage is off (SWITCHBOARD_SEMANTIC=off)");
            return Ok(None);
        }
        SemanticStage::Model { dir, required } => (dir, *required),
    };
    if !cfg!(feature = "embeddings") && !required {
        tracing::info!("this build has no semantic stage: the matcher is lexical");
        return Ok(None);
    }
    if !models::is_installed(dir) {
        if required {
            anyhow::bail!(
                "SWITCHBOARD_EMBEDDINGS_DIR={}: no model there (`switchboard models fetch --dir {0}` puts the default one)",
                dir.display()
            );
        }
        tracing::warn!(
            model = %dir.display(),
            "the matcher's semantic stage is off: its model is not there yet; run `switchboard models fetch` (./run does), or set SWITCHBOARD_SEMANTIC=off to silence this"
        );
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let encoder = load_encoder(dir)?;
    tracing::info!(
        model = encoder.name(),
        dir = %dir.display(),
        load_ms = started.elapsed().as_millis() as u64,
        "the matcher's semantic stage is on"
    );
    Ok(Some(encoder))
}

/// The sentence encoder in a model directory.
#[cfg(feature = "embeddings")]
pub fn load_encoder(
    dir: &std::path::Path,
) -> anyhow::Result<Box<dyn switchboard_core::matcher::SentenceEncoder>> {
    use anyhow::Context as _;
    switchboard_embed::load(dir).with_context(|| {
        format!(
            "cannot load the sentence-embedding model in {}",
            dir.display()
        )
    })
}

#[cfg(not(feature = "embeddings"))]
pub fn load_encoder(
    dir: &std::path::Path,
) -> anyhow::Result<Box<dyn switchboard_core::matcher::SentenceEncoder>> {
    anyhow::bail!(
        "{}: this build has no semantic stage (it was built with --no-default-features)",
        dir.display()
    )
}

/// The listener of `SWITCHBOARD_METRICS_BIND`, if set.
pub async fn metrics_listener(config: &Config) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    match config.metrics_bind {
        Some(addr) => Ok(Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (SWITCHBOARD_METRICS_BIND)"))?,
        )),
        None => Ok(None),
    }
}

/// Serves only `/metrics` (and `/healthz`) on `listener` until `shutdown` resolves.
async fn serve_metrics<S>(
    listener: tokio::net::TcpListener,
    token: Option<switchboard_web::metrics::MetricsToken>,
    telegram: Arc<Telegram>,
    shutdown: S,
) -> anyhow::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    let router = switchboard_web::metrics::standalone(telegram, token);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("metrics listener failed")
}

/// `switchboard worker`: the job workers until `shutdown` resolves, and their metrics on
/// `metrics` (the listener of `SWITCHBOARD_METRICS_BIND`) if given.
pub async fn work<S>(
    config: &Config,
    pool: PgPool,
    telegram: Arc<Telegram>,
    metrics: Option<tokio::net::TcpListener>,
    shutdown: S,
) -> anyhow::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let jobs = switchboard_jobs::run(
        pool,
        telegram.clone(),
        config.worker_config(),
        wait_for(stop_rx.clone()),
    );
    match metrics {
        Some(listener) => {
            let token = config.web.metrics_token.clone();
            let metrics = serve_metrics(listener, token, telegram, wait_for(stop_rx));
            let (j, m) = tokio::join!(jobs, metrics);
            j.context("job workers failed")?;
            m
        }
        None => jobs.await.context("job workers failed"),
    }
}

/// What `serve` runs.
pub struct ServeOptions {
    /// Also run the job workers in this process.
    pub jobs: bool,
}

/// A running platform (for tests and embedding): its address and a way to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Binds and starts serving (and working jobs) in the background.
pub async fn start(
    config: Config,
    pool: PgPool,
    telegram: Arc<Telegram>,
    options: ServeOptions,
) -> anyhow::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener.local_addr()?;
    let (shutdown, rx) = tokio::sync::watch::channel(false);
    let done = tokio::spawn(run(listener, config, pool, telegram, options, wait_for(rx)));
    Ok(RunningServer {
        addr,
        shutdown,
        done,
    })
}

async fn wait_for(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Serves HTTP (and jobs) until `shutdown` resolves; then stops accepting, finishes
/// in-flight requests and running jobs, and returns.
pub async fn run<S>(
    listener: tokio::net::TcpListener,
    config: Config,
    pool: PgPool,
    telegram: Arc<Telegram>,
    options: ServeOptions,
    shutdown: S,
) -> anyhow::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    let metrics_listener = metrics_listener(&config).await?;
    let metrics_on_main = metrics_listener.is_none();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    if let Some(listener) = metrics_listener {
        // The same metrics as the main address's /metrics, for scraping every process
        // (serve and worker) on one port.
        let serving = serve_metrics(
            listener,
            config.web.metrics_token.clone(),
            telegram.clone(),
            wait_for(stop_rx.clone()),
        );
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
    }
    let mailer = match &config.smtp_url {
        Some(url) => switchboard_web::mail::Mailer::smtp(url, &config.mail_from)
            .context("SWITCHBOARD_SMTP_URL")?,
        None => switchboard_web::mail::Mailer::Log { pool: pool.clone() },
    };
    let mut web = config.web.clone();
    // With a metrics address of its own, /metrics is served there only: the main address
    // is the public one (an Ingress or a proxy may route every path to it).
    web.metrics_on_main = metrics_on_main;
    // The log, the statistics and exports may read a replica: they can lag a moment
    // behind; everything else (the desk, the bot, every change) uses the primary.
    let reads = match &config.read_database_url {
        Some(url) => switchboard_db::connect(&switchboard_db::ConnectOptions {
            url: url.clone(),
            max_connections: config.db_pool_size,
            create_if_missing: false,
        })
        .await
        .with_context(|| format!("cannot connect to the read replica at {}", redact_url(url)))?,
        None => pool.clone(),
    };
    let state = switchboard_web::AppState::new(pool.clone(), telegram.clone(), web, mailer)
        .with_reads(reads);
    tokio::spawn(switchboard_web::delete_expired_sessions(pool.clone()));
    // Live desk streams never end by themselves: close them when shutting down, or the
    // graceful shutdown would wait for them forever.
    let web = state.web.clone();
    let desk_stop = wait_for(stop_rx.clone());
    tokio::spawn(async move {
        desk_stop.await;
        web.desk.close();
    });
    let app = switchboard_web::app(state);
    let http_stop = wait_for(stop_rx.clone());
    let http = async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(http_stop)
        .await
        .context("HTTP server failed")
    };
    if options.jobs {
        let jobs = switchboard_jobs::run(pool, telegram, config.worker_config(), wait_for(stop_rx));
        let (h, j) = tokio::join!(http, jobs);
        h?;
        j.context("job workers failed")?;
    } else {
        http.await?;
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight work");
}
