//! Shared state of the HTTP handlers.

use std::sync::Arc;
use std::time::Duration;

use switchboard_db::PgPool;
use switchboard_telegram::Telegram;

use crate::i18n::Catalogs;
use crate::mail::Mailer;
use crate::oauth::OAuthProvider;
use crate::session::Backend;
use crate::templates::Templates;

/// Settings of the web panel, from the configuration.
#[derive(Clone, Debug)]
pub struct WebSettings {
    /// Base URL people reach the panel at (links in emails, OAuth redirects).
    pub public_url: String,
    /// Trust `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_proxy: bool,
    /// Anyone may create an organization (otherwise only by invitation or the CLI).
    pub allow_signup: bool,
    /// A session ends after this long without requests.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, whatever happens.
    pub session_max_age: Duration,
    pub oauth: Vec<OAuthProvider>,
    /// When set, `/metrics` answers only to `Authorization: Bearer <token>`.
    pub metrics_token: Option<crate::metrics::MetricsToken>,
    /// `/metrics` on the main address too (off when it has an address of its own,
    /// `SWITCHBOARD_METRICS_BIND`).
    pub metrics_on_main: bool,
    /// Limits on writes (sign-ups per address, API writes per token, form posts per
    /// address).
    pub rate_limits: crate::limits::RateLimits,
}

impl WebSettings {
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into(),
            trust_proxy: false,
            allow_signup: true,
            session_idle: Duration::from_secs(12 * 3600),
            session_max_age: Duration::from_secs(7 * 86_400),
            oauth: Vec::new(),
            metrics_token: None,
            metrics_on_main: true,
            rate_limits: crate::limits::RateLimits::default(),
        }
    }

    /// Cookies get the `Secure` flag (and the `__Host-` name) when served over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// What the pages need besides the database and the Telegram side.
pub struct WebContext {
    pub settings: WebSettings,
    pub templates: Templates,
    pub catalogs: Arc<Catalogs>,
    pub mailer: Mailer,
    pub backend: Backend,
    /// For OAuth token exchanges (never follows redirects).
    pub http: reqwest::Client,
    /// Live desk events of this process.
    pub desk: crate::live::DeskHub,
    /// Rate limits on writes.
    pub limiter: crate::limits::Limiter,
}

impl std::ops::Deref for WebContext {
    type Target = WebSettings;
    fn deref(&self) -> &WebSettings {
        &self.settings
    }
}

#[derive(Clone)]
pub struct AppState {
    /// The application layer: every change goes through it.
    pub app: switchboard_app::App,
    pub pool: PgPool,
    /// Where the log, the statistics and exports read: a replica, or `pool`.
    pub reads: PgPool,
    pub telegram: Arc<Telegram>,
    pub web: Arc<WebContext>,
}

impl AppState {
    /// Reads that may lag (the log, the statistics, exports) from `reads`.
    pub fn with_reads(mut self, reads: PgPool) -> Self {
        self.app.reads = reads.clone();
        self.reads = reads;
        self
    }

    pub fn new(
        pool: PgPool,
        telegram: Arc<Telegram>,
        settings: WebSettings,
        mailer: Mailer,
    ) -> Self {
        let catalogs = Arc::new(Catalogs::embedded());
        let web = WebContext {
            templates: Templates::new(catalogs.clone()),
            catalogs,
            mailer,
            backend: Backend::new(pool.clone()),
            desk: crate::live::DeskHub::new(pool.clone()),
            limiter: crate::limits::Limiter::new(settings.rate_limits),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(15))
                .build()
                .expect("http client"),
            settings,
        };
        Self {
            app: switchboard_app::App::new(pool.clone(), telegram.clone()),
            reads: pool.clone(),
            pool,
            telegram,
            web: Arc::new(web),
        }
    }
}
