//! Starts the whole platform (HTTP + job workers) on a fresh database, against the fake
//! Telegram server, and talks to it over real HTTP.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use switchboard::bootstrap;
use switchboard::Config;
use switchboard_core::text::Lang;
use switchboard_core::vault::{MasterKey, Vault};
use switchboard_testkit::{FakeBot, FakeTelegram, FakeUser, TestDb};

pub struct TestApp {
    pub db: TestDb,
    /// With `Options::read_replica`: the database the log, statistics and exports read (a
    /// stand-in for a replica: it receives none of the writes).
    pub reads_db: Option<TestDb>,
    pub tg: FakeTelegram,
    pub base: String,
    pub http: reqwest::Client,
    pub telegram: std::sync::Arc<switchboard_telegram::Telegram>,
    key: MasterKey,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A second app process (see [`TestApp::replica`]); stops when dropped.
pub struct Replica {
    pub base: String,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Replica {
    /// Shuts it down gracefully (HTTP and job workers); true if it finished within `limit`.
    pub async fn stop_within(mut self, limit: Duration) -> bool {
        let _ = self.shutdown.send(true);
        tokio::time::timeout(limit, &mut self.server).await.is_ok()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A `switchboard worker` process with its metrics listener (see [`TestApp::metrics_worker`]); stops when dropped.
pub struct Worker {
    /// Where its metrics listener (`SWITCHBOARD_METRICS_BIND`) answers.
    pub metrics_base: String,
    _shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Switchboard process simulated inside the test: its own Tokio runtime on its own
/// thread, so [`Process::kill`] drops every task, socket and database connection it has
/// at once — what a crash (SIGKILL) does to a real process — while [`Process::stop`] is
/// the graceful SIGTERM. Dropping it kills it.
pub struct Process {
    /// Where an app process serves HTTP (empty for a worker).
    pub base: String,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    done: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Process {
    fn start<F, Fut>(name: &str, base: String, main: F) -> Self
    where
        F: FnOnce(tokio::sync::watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let done = runtime.spawn(main(rx));
        Self {
            base,
            runtime: Some(runtime),
            shutdown: Some(tx),
            done: Some(done),
        }
    }

    /// A crash: everything the process was doing stops where it is; its connections close.
    /// Returns once its threads are gone.
    pub async fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            tokio::task::spawn_blocking(move || runtime.shutdown_timeout(Duration::from_secs(5)))
                .await
                .unwrap();
        }
    }

    /// A graceful stop (SIGTERM); true if the process finished within `limit`.
    pub async fn stop(mut self, limit: Duration) -> bool {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        let finished = match self.done.take() {
            Some(done) => matches!(tokio::time::timeout(limit, done).await, Ok(Ok(Ok(())))),
            None => true,
        };
        self.kill().await;
        finished
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// How a worker process started with [`TestApp::worker`] is tuned: short leases (delivery,
/// polling) and quick upkeep so that recovery from a crash fits in a test.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    pub delivery_lease: Duration,
    pub chat_interval: Duration,
    pub bot_rate: u32,
    pub jobs: switchboard_jobs::WorkerConfig,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            delivery_lease: Duration::from_secs(3),
            chat_interval: Duration::from_millis(20),
            bot_rate: 100,
            jobs: switchboard_jobs::WorkerConfig {
                name: "test-worker".into(),
                concurrency: 8,
                shutdown_grace: Duration::from_secs(5),
                upkeep_interval: Duration::from_secs(1),
                delivery_poll: Duration::from_millis(50),
                poll: switchboard_jobs::polling::PollConfig {
                    lease: Duration::from_secs(3),
                },
            },
        }
    }
}

pub struct Tenant {
    pub slug: String,
    pub id: switchboard_core::TenantId,
    pub token: String,
}

pub struct Options {
    pub chat_interval_ms: u64,
    pub jobs: bool,
    pub oauth: Vec<switchboard_web::oauth::OAuthProvider>,
    /// `SWITCHBOARD_METRICS_TOKEN`.
    pub metrics_token: Option<String>,
    /// `SWITCHBOARD_METRICS_BIND` (on a free port).
    pub metrics_bind: bool,
    /// `SWITCHBOARD_CACHE_TENANTS`.
    pub cached_tenants: usize,
    /// `SWITCHBOARD_READ_DATABASE_URL`: a second database.
    pub read_replica: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            chat_interval_ms: 50,
            jobs: true,
            oauth: Vec::new(),
            metrics_token: None,
            metrics_bind: false,
            cached_tenants: 2000,
            read_replica: false,
        }
    }
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// The platform without its job workers: nothing is delivered unless the test sends.
    pub async fn start_without_jobs() -> Self {
        Self::start_with(Options {
            jobs: false,
            ..Default::default()
        })
        .await
    }

    pub async fn start_with(options: Options) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let db = TestDb::new().await;
        let tg = FakeTelegram::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config {
            chat_send_interval_ms: options.chat_interval_ms,
            cached_tenants: options.cached_tenants,
            ..Config::embedded(&db.url, addr, &tg.url())
        };
        config.web.oauth = options.oauth;
        let reads_db = if options.read_replica {
            let reads = TestDb::new().await;
            config.read_database_url = Some(reads.url.clone());
            Some(reads)
        } else {
            None
        };
        config.web.metrics_token = options
            .metrics_token
            .as_deref()
            .map(switchboard_web::metrics::MetricsToken::new);
        if options.metrics_bind {
            config.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
        }
        let pool = switchboard::connect(&config, false).await.unwrap();
        let key = MasterKey::generate();
        let vault = Vault::new(&key, &[]);
        let telegram = switchboard::telegram(&config, &pool, vault).unwrap();
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(switchboard::run(
            listener,
            config,
            pool,
            telegram.clone(),
            switchboard::ServeOptions { jobs: options.jobs },
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        ));
        Self {
            db,
            reads_db,
            tg,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            telegram,
            key,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Asks the platform to shut down gracefully; true if it finished within `limit`.
    pub async fn stop_within(&mut self, limit: Duration) -> bool {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        match self.server.take() {
            Some(server) => tokio::time::timeout(limit, server).await.is_ok(),
            None => true,
        }
    }

    /// Another app process on the same database and fake Telegram (HTTP only), as a
    /// replica behind a load balancer would be.
    pub async fn replica(&self) -> Replica {
        self.replica_with(Vault::new(&self.key, &[]), false).await
    }

    /// The master key this app seals bot tokens with.
    pub fn master_key(&self) -> &MasterKey {
        &self.key
    }

    /// A replica with its own vault (master keys), and with `jobs` also the job workers:
    /// a process of the next deployment.
    pub async fn replica_with(&self, vault: Vault, jobs: bool) -> Replica {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config::embedded(&self.db.url, addr, &self.tg.url());
        let pool = switchboard::connect(&config, false).await.unwrap();
        let telegram = switchboard::telegram(&config, &pool, vault).unwrap();
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(switchboard::run(
            listener,
            config,
            pool,
            telegram,
            switchboard::ServeOptions { jobs },
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        ));
        Replica {
            base: format!("http://{addr}"),
            shutdown: tx,
            server,
        }
    }

    /// A job-worker process on the same database and fake Telegram, as `switchboard
    /// worker` with `SWITCHBOARD_METRICS_BIND` runs (its own metrics, on its own port).
    pub async fn metrics_worker(&self) -> Worker {
        let mut config = Config {
            chat_send_interval_ms: 50,
            ..Config::embedded(&self.db.url, "127.0.0.1:0".parse().unwrap(), &self.tg.url())
        };
        config.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
        let pool = switchboard::connect(&config, false).await.unwrap();
        let vault = Vault::new(&self.key, &[]);
        let telegram = switchboard::telegram(&config, &pool, vault).unwrap();
        let listener = switchboard::metrics_listener(&config)
            .await
            .unwrap()
            .unwrap();
        let metrics_base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            switchboard::work(&config, pool, telegram, Some(listener), async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
        });
        Worker {
            metrics_base,
            _shutdown: tx,
            task,
        }
    }

    /// An app process (HTTP only) in its own [`Process`], on the same database and fake
    /// Telegram: a replica that can crash.
    pub fn app_process(&self) -> Process {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config::embedded(&self.db.url, addr, &self.tg.url());
        config.db_pool_size = 6;
        let vault = Vault::new(&self.key, &[]);
        Process::start(
            "app-replica",
            format!("http://{addr}"),
            move |mut rx| async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let pool = switchboard::connect(&config, false).await?;
                let telegram = switchboard::telegram(&config, &pool, vault)?;
                switchboard::run(
                    listener,
                    config,
                    pool,
                    telegram,
                    switchboard::ServeOptions { jobs: false },
                    async move {
                        let _ = rx.wait_for(|stop| *stop).await;
                    },
                )
                .await
            },
        )
    }

    /// A worker process (`switchboard worker`) in its own [`Process`].
    pub fn worker(&self, options: WorkerOptions) -> Process {
        let db_url = self.db.url.clone();
        let tg_url = self.tg.url();
        let public_url = self.base.clone();
        let vault = Vault::new(&self.key, &[]);
        Process::start("worker", String::new(), move |mut rx| async move {
            let pool = switchboard_db::connect(&switchboard_db::ConnectOptions {
                url: db_url,
                max_connections: 6,
                create_if_missing: false,
            })
            .await?;
            let api = switchboard_telegram::BotApi::new(&tg_url, Duration::from_secs(20))
                .map_err(anyhow::Error::msg)?;
            let settings = switchboard_telegram::TelegramSettings {
                chat_interval: options.chat_interval,
                bot_rate: options.bot_rate,
                delivery_lease: options.delivery_lease,
                ..switchboard_telegram::TelegramSettings::new(public_url)
            };
            let telegram = std::sync::Arc::new(switchboard_telegram::Telegram::new(
                pool.clone(),
                api,
                std::sync::Arc::new(vault),
                settings,
            ));
            tokio::spawn(switchboard_telegram::cache::listen_for_invalidations(
                pool.clone(),
                telegram.caches.clone(),
            ));
            switchboard_jobs::run(pool, telegram, options.jobs, async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await?;
            Ok(())
        })
    }

    pub async fn tenant(&self, name: &str) -> Tenant {
        let email = format!("owner@{}.test", switchboard_core::validate::slugify(name));
        let created =
            bootstrap::create_tenant(&self.db.pool, name, &email, "password123", Lang::En)
                .await
                .unwrap();
        let token = bootstrap::create_token(&self.db.pool, &created.tenant.slug, &email, "tests")
            .await
            .unwrap();
        Tenant {
            slug: created.tenant.slug,
            id: created.tenant.id,
            token: token.token,
        }
    }

    /// Adds a member with `role` to the tenant and returns their API token.
    pub async fn member(
        &self,
        tenant: &Tenant,
        email: &str,
        role: switchboard_core::Role,
    ) -> String {
        let user = switchboard_db::platform::insert_user(
            &self.db.pool,
            switchboard_core::UserId::new(),
            email,
            None,
            "",
            false,
        )
        .await
        .unwrap();
        switchboard_db::platform::add_member(&self.db.pool, tenant.id, user.id, role)
            .await
            .unwrap();
        bootstrap::create_token(&self.db.pool, &tenant.slug, email, "tests")
            .await
            .unwrap()
            .token
    }

    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.call(token, Method::GET, path, None).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(token, Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(token, Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(token, Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.call(token, Method::DELETE, path, None).await
    }

    /// Creates a bot in the fake Telegram and connects it to the tenant.
    pub async fn connect_bot(&self, tenant: &Tenant, username: &str) -> FakeBot {
        let bot = self.tg.add_bot(username);
        let (status, body) = self
            .put(
                &tenant.token,
                "/api/v1/bot",
                serde_json::json!({"token": bot.token}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        bot
    }

    /// Sends a text as `user` and asserts the webhook accepted it.
    pub async fn say(&self, bot: &FakeBot, user: &FakeUser, text: &str) {
        let d = self.tg.send_text(bot, user, text).await;
        assert_eq!(d.status, 200, "webhook answered {}: {}", d.status, d.body);
    }

    /// The text of `/metrics` (with the scrape token, if the app has one).
    pub async fn metrics_text(&self, token: Option<&str>) -> String {
        let mut req = self.http.get(format!("{}/metrics", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap().text().await.unwrap()
    }

    /// The value of the sample `series` (name and labels exactly as exported) in
    /// `/metrics` (with the scrape token, if the app has one); the test fails without it.
    pub async fn metric(&self, token: Option<&str>, series: &str) -> f64 {
        let text = self.metrics_text(token).await;
        sample(&text, series).unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
    }

    /// Waits until the chat has received `n` messages from the bot.
    pub async fn expect_sent(
        &self,
        bot: &FakeBot,
        chat: i64,
        n: usize,
    ) -> Vec<switchboard_testkit::SentMessage> {
        self.tg
            .wait_for_sent(bot, chat, n, Duration::from_secs(20))
            .await
    }

    /// The only conversation with `status`, as the API lists it.
    pub async fn conversation(&self, tenant: &Tenant, status: &str) -> Value {
        let (s, body) = self
            .get(
                &tenant.token,
                &format!("/api/v1/conversations?status={status}"),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "expected one {status} conversation: {body}");
        items[0].clone()
    }

    pub async fn messages(&self, tenant: &Tenant, conversation: &str) -> Vec<Value> {
        let (s, body) = self
            .get(
                &tenant.token,
                &format!("/api/v1/conversations/{conversation}/messages"),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    /// Polls until `check` holds (panics after 15 s).
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::time::Instant::now() < deadline {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for: {what}");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

pub fn alice() -> FakeUser {
    FakeUser::new(1001, "Alice")
}

pub fn bob() -> FakeUser {
    FakeUser::new(1002, "Bob")
}

/// A browser without a browser: cookies, the CSRF token of the last page, no redirects
/// followed (so tests see them).
pub struct Web {
    pub client: reqwest::Client,
    pub base: String,
    pub csrf: std::sync::Mutex<String>,
}

/// What a page request returned.
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// Whether the page contains `text` (minijinja writes `/` in values as `&#x2f;`).
    pub fn has(&self, text: &str) -> bool {
        self.body.contains(text) || self.body.replace("&#x2f;", "/").contains(text)
    }
}

fn csrf_of(body: &str) -> Option<String> {
    let i = body.find("data-csrf=\"")? + "data-csrf=\"".len();
    Some(body[i..i + body[i..].find('"')?].to_string())
}

impl Web {
    pub async fn get(&self, path: &str) -> Page {
        self.request(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    async fn request(&self, req: reqwest::RequestBuilder) -> Page {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = resp.text().await.unwrap();
        if let Some(t) = csrf_of(&body) {
            *self.csrf.lock().unwrap() = t;
        }
        Page {
            status,
            location,
            body,
            headers,
        }
    }

    /// Posts a form with the current CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf.lock().unwrap().clone();
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.request(self.client.post(format!("{}{path}", self.base)).form(&all))
            .await
    }

    /// Posts a form as htmx does (with `HX-Request` and the CSRF header).
    pub async fn hx_post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf.lock().unwrap().clone();
        self.request(
            self.client
                .post(format!("{}{path}", self.base))
                .header("hx-request", "true")
                .header("x-csrf-token", token)
                .form(fields),
        )
        .await
    }

    /// Posts a multipart form as the desk's reply box does (htmx, CSRF header), with an
    /// optional file `(name, content type, bytes)`.
    pub async fn hx_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, Vec<u8>)>,
    ) -> Page {
        let token = self.csrf.lock().unwrap().clone();
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        if let Some((name, ct, bytes)) = file {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(name.to_string())
                    .mime_str(ct)
                    .unwrap(),
            );
        }
        self.request(
            self.client
                .post(format!("{}{path}", self.base))
                .header("hx-request", "true")
                .header("x-csrf-token", token)
                .multipart(form),
        )
        .await
    }

    /// The same signed-in browser talking to another replica.
    pub fn at(&self, base: &str) -> Web {
        Web {
            client: self.client.clone(),
            base: base.to_string(),
            csrf: std::sync::Mutex::new(self.csrf.lock().unwrap().clone()),
        }
    }

    /// Posts a form without any CSRF token.
    pub async fn post_without_csrf(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.request(
            self.client
                .post(format!("{}{path}", self.base))
                .form(fields),
        )
        .await
    }

    /// Loads a page (for its CSRF token) and posts a form.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let p = self.get(page).await;
        assert!(p.status.is_success(), "GET {page}: {}", p.status);
        self.post(action, fields).await
    }
}

impl TestApp {
    /// A fresh cookie-keeping client.
    pub fn web(&self) -> Web {
        Web {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: self.base.clone(),
            csrf: std::sync::Mutex::new(String::new()),
        }
    }

    /// Signs in with email and password; panics if that fails.
    pub async fn sign_in(&self, email: &str, password: &str) -> Web {
        let web = self.web();
        let r = web
            .submit(
                "/login",
                "/login",
                &[("email", email), ("password", password)],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "sign-in as {email} failed: {}",
            r.body
        );
        // Signing in issues a new CSRF token: pick it up as a browser would on the next page.
        web.get("/account").await;
        web
    }

    /// A member with a password, signed in.
    pub async fn member_web(
        &self,
        tenant: &Tenant,
        email: &str,
        role: switchboard_core::Role,
    ) -> Web {
        let hash = switchboard_core::password::hash_password("password123");
        let user = switchboard_db::platform::insert_user(
            &self.db.pool,
            switchboard_core::UserId::new(),
            email,
            Some(&hash),
            "",
            false,
        )
        .await
        .unwrap();
        switchboard_db::platform::add_member(&self.db.pool, tenant.id, user.id, role)
            .await
            .unwrap();
        self.sign_in(email, "password123").await
    }

    /// The owner of a tenant made with [`TestApp::tenant`], signed in.
    pub async fn owner_web(&self, tenant: &Tenant) -> Web {
        self.sign_in(&format!("owner@{}.test", tenant.slug), "password123")
            .await
    }

    /// The newest mail in the development mailbox to `to`.
    pub async fn last_mail(&self, to: &str) -> (String, String) {
        sqlx::query_as("select subject, body from outbound_emails where to_address = $1 order by id desc limit 1")
            .bind(to)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

/// The first `http…` link in a text.
pub fn link_in(text: &str) -> String {
    let i = text.find("http").expect("a link");
    text[i..].split_whitespace().next().unwrap().to_string()
}

/// The value of the sample `series` (name and labels exactly as exported) in a `/metrics`
/// text, if any.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
