//! A fake Telegram Bot API server: real HTTP, the methods Switchboard uses, every call
//! recorded, failures on demand, and a control API to act as Telegram users (send a
//! message, press a button) towards a bot's registered webhook.
//!
//! Bot API routes: `POST|GET /bot{token}/{method}` (JSON, form or query parameters).
//! Control routes (under `/_fake`): see [`control_router`].
//!
//! Why one file of ~1,400 lines: this is test support, not the product. The Bot API
//! handlers, the control API, the rate limiter and the simulated users all read and
//! write one private state under one lock, and the file reads top to bottom as the list
//! of Telegram behaviours we imitate; splitting it would only widen that state's
//! visibility.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A bot known to the fake server.
#[derive(Clone, Debug, Serialize)]
pub struct FakeBot {
    pub id: i64,
    pub username: String,
    pub first_name: String,
    pub token: String,
}

/// A webhook as registered with `setWebhook`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Webhook {
    pub url: String,
    pub secret_token: Option<String>,
    pub allowed_updates: Option<Vec<String>>,
    pub max_connections: Option<u64>,
}

/// One Bot API call as received.
#[derive(Clone, Debug, Serialize)]
pub struct Call {
    /// The bot's username, or `None` for an unknown token.
    pub bot: Option<String>,
    pub method: String,
    pub params: Value,
    /// The HTTP status the fake answered with.
    pub status: u16,
    /// When the call arrived, in milliseconds since the Unix epoch (before any latency the
    /// fake adds): what Telegram's limits are measured on.
    pub received_ms: i64,
}

/// A message a bot sent (successfully).
#[derive(Clone, Debug, Serialize)]
pub struct SentMessage {
    pub message_id: i64,
    pub chat_id: i64,
    /// The text, or a file's caption.
    pub text: String,
    pub parse_mode: Option<String>,
    pub reply_markup: Option<Value>,
    pub date: i64,
    /// For sendPhoto / sendDocument: "photo" or "document", the file's name and size.
    pub file: Option<(String, String, usize)>,
    /// When the fake accepted it, in milliseconds since the Unix epoch (to check pacing).
    pub accepted_ms: i64,
}

impl SentMessage {
    /// The callback data of the inline button labelled `label`, if any.
    pub fn button_data(&self, label: &str) -> Option<String> {
        self.buttons()
            .into_iter()
            .find(|(l, _)| l == label)
            .and_then(|(_, b)| {
                b.get("callback_data")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
    }

    /// Labels and raw JSON of the inline buttons, row by row.
    pub fn buttons(&self) -> Vec<(String, Value)> {
        let rows = self
            .reply_markup
            .as_ref()
            .and_then(|m| m.get("inline_keyboard"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        rows.iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|b| {
                (
                    b.get("text")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    b.clone(),
                )
            })
            .collect()
    }
}

/// How a method should fail.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailKind {
    /// 429 Too Many Requests with `retry_after` seconds.
    RetryAfter { seconds: u32 },
    /// A 5xx status.
    ServerError { status: u16 },
    /// Wait this long before answering (normally), so the client times out.
    Delay { millis: u64 },
    /// An API error with this code and description (e.g. 403 "Forbidden: bot was blocked by the user").
    Api { code: u16, description: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failure {
    pub method: String,
    pub times: u32,
    #[serde(flatten)]
    pub kind: FailKind,
}

/// A Telegram user, for acting as one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FakeUser {
    pub id: i64,
    pub first_name: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub language_code: Option<String>,
}

impl FakeUser {
    pub fn new(id: i64, first_name: &str) -> Self {
        Self {
            id,
            first_name: first_name.into(),
            username: Some(format!("{}_{id}", first_name.to_lowercase())),
            language_code: Some("en".into()),
        }
    }

    pub fn lang(mut self, code: &str) -> Self {
        self.language_code = Some(code.into());
        self
    }
}

/// What happened when the fake delivered an update to the bot's webhook.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    pub update_id: i64,
    /// HTTP status of the webhook's answer (0 if it could not be reached).
    pub status: u16,
    pub body: String,
}

#[derive(Default)]
struct Inner {
    bots: HashMap<String, FakeBot>,
    webhooks: HashMap<i64, Webhook>,
    commands: HashMap<i64, Value>,
    calls: Vec<Call>,
    sent: Vec<(i64, SentMessage)>,
    failures: Vec<Failure>,
    blocked: HashSet<(i64, i64)>,
    /// Updates for bots without a webhook, fetched with getUpdates.
    pending: HashMap<i64, Vec<Value>>,
    /// Per bot, a counter of getUpdates calls: a call still waiting when a newer one
    /// arrives is ended with 409, as Telegram does.
    polls: HashMap<i64, u64>,
}

/// How the fake imitates Telegram's speed and limits. Off by default (tests that do not
/// ask for them get instant, unlimited answers).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Each Bot API answer takes between these many milliseconds (uniformly drawn);
    /// real `sendMessage` calls take ~50–300 ms.
    #[serde(default)]
    pub latency_ms: (u64, u64),
    /// Sends per bot in any one second; one more is answered 429 with `retry_after`.
    #[serde(default)]
    pub bot_per_second: Option<u32>,
    /// Minimum spacing of sends to one chat; a closer one is answered 429.
    #[serde(default)]
    pub chat_interval_ms: Option<u64>,
}

/// Recent sends, for the limits.
#[derive(Default)]
struct SendLog {
    per_bot: HashMap<i64, std::collections::VecDeque<tokio::time::Instant>>,
    per_chat: HashMap<(i64, i64), tokio::time::Instant>,
}

struct Shared {
    limits: Mutex<Limits>,
    send_log: Mutex<SendLog>,
    jitter: AtomicI64,
    inner: Mutex<Inner>,
    changed: tokio::sync::Notify,
    next_update_id: AtomicI64,
    next_message_id: AtomicI64,
    next_bot_id: AtomicI64,
    http: reqwest::Client,
}

/// Handle to a running fake server.
#[derive(Clone)]
pub struct FakeTelegram {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeTelegram {
    /// Starts a server on 127.0.0.1 with a free port.
    pub async fn start() -> Self {
        Self::bind("127.0.0.1:0".parse().expect("valid address")).await
    }

    pub async fn bind(addr: SocketAddr) -> Self {
        let shared = Arc::new(Shared {
            limits: Mutex::new(Limits::default()),
            send_log: Mutex::new(SendLog::default()),
            jitter: AtomicI64::new(0x2545_f491),
            inner: Mutex::new(Inner::default()),
            changed: tokio::sync::Notify::new(),
            next_update_id: AtomicI64::new(100_000),
            next_message_id: AtomicI64::new(1),
            next_bot_id: AtomicI64::new(7_000_000_001),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(70))
                .build()
                .expect("http client"),
        });
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the fake Telegram server");
        let addr = listener.local_addr().expect("local address");
        let app = router(shared.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { addr, shared }
    }

    /// The base URL to give the app as its Bot API URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every bot the fake knows.
    pub fn bots(&self) -> Vec<FakeBot> {
        self.shared.inner.lock().bots.values().cloned().collect()
    }

    /// Imitates Telegram's latency and limits from now on.
    pub fn set_limits(&self, limits: Limits) {
        *self.shared.limits.lock() = limits;
    }

    /// Registers a bot and returns it with its token.
    pub fn add_bot(&self, username: &str) -> FakeBot {
        add_bot(&self.shared, username, None)
    }

    pub fn bot(&self, username: &str) -> Option<FakeBot> {
        self.shared
            .inner
            .lock()
            .bots
            .values()
            .find(|b| b.username == username)
            .cloned()
    }

    pub fn webhook(&self, bot: &FakeBot) -> Option<Webhook> {
        self.shared.inner.lock().webhooks.get(&bot.id).cloned()
    }

    pub fn commands(&self, bot: &FakeBot) -> Option<Value> {
        self.shared.inner.lock().commands.get(&bot.id).cloned()
    }

    /// Every call received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.inner.lock().calls.clone()
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method))
            .collect()
    }

    /// Messages the bot sent to a chat, in order.
    pub fn sent_to(&self, bot: &FakeBot, chat_id: i64) -> Vec<SentMessage> {
        self.shared
            .inner
            .lock()
            .sent
            .iter()
            .filter(|(b, m)| *b == bot.id && m.chat_id == chat_id)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Waits until the bot has sent at least `n` messages to the chat (panics after `timeout`).
    pub async fn wait_for_sent(
        &self,
        bot: &FakeBot,
        chat_id: i64,
        n: usize,
        timeout: Duration,
    ) -> Vec<SentMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            let sent = self.sent_to(bot, chat_id);
            if sent.len() >= n {
                return sent;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let sent = self.sent_to(bot, chat_id);
                assert!(
                    sent.len() >= n,
                    "expected {n} messages to chat {chat_id}, got {}: {:#?}",
                    sent.len(),
                    sent.iter().map(|m| &m.text).collect::<Vec<_>>()
                );
                return sent;
            }
        }
    }

    /// Waits until a call of `method` has been received `n` times.
    pub async fn wait_for_calls(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            let calls = self.calls_of(method);
            if calls.len() >= n {
                return calls;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let calls = self.calls_of(method);
                assert!(
                    calls.len() >= n,
                    "expected {n} {method} calls, got {}",
                    calls.len()
                );
                return calls;
            }
        }
    }

    /// Makes the next `times` calls of `method` fail.
    pub fn fail(&self, method: &str, times: u32, kind: FailKind) {
        self.shared.inner.lock().failures.push(Failure {
            method: method.to_string(),
            times,
            kind,
        });
    }

    /// The user blocked the bot: sends to them answer 403 from now on.
    pub fn block(&self, bot: &FakeBot, chat_id: i64) {
        self.shared.inner.lock().blocked.insert((bot.id, chat_id));
    }

    /// A text message from `user` to the bot, delivered to its webhook.
    pub async fn send_text(&self, bot: &FakeBot, user: &FakeUser, text: &str) -> Delivery {
        let update = self.text_update(bot, user, text);
        self.deliver(bot, update).await
    }

    /// The update a text message from `user` would produce (not delivered).
    pub fn text_update(&self, bot: &FakeBot, user: &FakeUser, text: &str) -> Value {
        text_update(&self.shared, bot, user, text)
    }

    /// A press on an inline button with `data` under the bot's message `message_id`.
    pub async fn press(
        &self,
        bot: &FakeBot,
        user: &FakeUser,
        data: &str,
        message_id: i64,
    ) -> Delivery {
        let update = callback_update(&self.shared, bot, user, data, message_id);
        self.deliver(bot, update).await
    }

    /// A photo from `user` (for media hand-over tests).
    pub async fn send_photo(
        &self,
        bot: &FakeBot,
        user: &FakeUser,
        caption: Option<&str>,
    ) -> Delivery {
        let update_id = self.shared.next_update_id.fetch_add(1, Ordering::SeqCst);
        let mut message = base_message(&self.shared, user);
        message["photo"] = json!([{"file_id": "photo-1", "file_unique_id": "u1", "width": 90, "height": 90, "file_size": 1024}]);
        if let Some(c) = caption {
            message["caption"] = json!(c);
        }
        self.deliver(bot, json!({"update_id": update_id, "message": message}))
            .await
    }

    /// A document (file) from `user`.
    pub async fn send_document(
        &self,
        bot: &FakeBot,
        user: &FakeUser,
        file_name: &str,
        size: u64,
    ) -> Delivery {
        let update_id = self.shared.next_update_id.fetch_add(1, Ordering::SeqCst);
        let mut message = base_message(&self.shared, user);
        message["document"] = json!({"file_id": "doc-1", "file_unique_id": "ud1", "file_name": file_name,
                                     "mime_type": "application/pdf", "file_size": size});
        self.deliver(bot, json!({"update_id": update_id, "message": message}))
            .await
    }

    /// A voice message from `user`.
    pub async fn send_voice(&self, bot: &FakeBot, user: &FakeUser, seconds: u32) -> Delivery {
        let update_id = self.shared.next_update_id.fetch_add(1, Ordering::SeqCst);
        let mut message = base_message(&self.shared, user);
        message["voice"] = json!({"file_id": "voice-1", "file_unique_id": "uv1", "duration": seconds,
                                  "mime_type": "audio/ogg", "file_size": 4000});
        self.deliver(bot, json!({"update_id": update_id, "message": message}))
            .await
    }

    /// Posts an update to the bot's webhook as Telegram would.
    pub async fn deliver(&self, bot: &FakeBot, update: Value) -> Delivery {
        deliver(&self.shared, bot, update).await
    }

    /// Posts an update with an explicit secret header (or none), to test rejection.
    pub async fn deliver_with_secret(
        &self,
        bot: &FakeBot,
        update: Value,
        secret: Option<&str>,
    ) -> Delivery {
        let hook = self.webhook(bot).expect("the bot has a webhook");
        post_update(&self.shared, &hook.url, secret, &update).await
    }
}

fn add_bot(shared: &Shared, username: &str, token: Option<String>) -> FakeBot {
    let id = shared.next_bot_id.fetch_add(1, Ordering::SeqCst);
    let token = token.unwrap_or_else(|| {
        use rand::Rng;
        let secret: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(35)
            .map(char::from)
            .collect();
        format!("{id}:{secret}")
    });
    let bot = FakeBot {
        id,
        username: username.to_string(),
        first_name: username.replace('_', " "),
        token: token.clone(),
    };
    shared.inner.lock().bots.insert(token, bot.clone());
    bot
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

fn user_json(user: &FakeUser) -> Value {
    let mut u = json!({"id": user.id, "is_bot": false, "first_name": user.first_name});
    if let Some(name) = &user.username {
        u["username"] = json!(name);
    }
    if let Some(lang) = &user.language_code {
        u["language_code"] = json!(lang);
    }
    u
}

fn base_message(shared: &Shared, user: &FakeUser) -> Value {
    let message_id = shared.next_message_id.fetch_add(1, Ordering::SeqCst);
    let mut chat = json!({"id": user.id, "type": "private", "first_name": user.first_name});
    if let Some(name) = &user.username {
        chat["username"] = json!(name);
    }
    json!({
        "message_id": message_id,
        "from": user_json(user),
        "chat": chat,
        "date": now_unix(),
    })
}

fn text_update(shared: &Shared, _bot: &FakeBot, user: &FakeUser, text: &str) -> Value {
    let update_id = shared.next_update_id.fetch_add(1, Ordering::SeqCst);
    let mut message = base_message(shared, user);
    message["text"] = json!(text);
    if text.starts_with('/') {
        let len = text
            .split_whitespace()
            .next()
            .unwrap_or(text)
            .encode_utf16()
            .count();
        message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": len}]);
    }
    json!({"update_id": update_id, "message": message})
}

fn callback_update(
    shared: &Shared,
    bot: &FakeBot,
    user: &FakeUser,
    data: &str,
    message_id: i64,
) -> Value {
    let update_id = shared.next_update_id.fetch_add(1, Ordering::SeqCst);
    let message = json!({
        "message_id": message_id,
        "from": {"id": bot.id, "is_bot": true, "first_name": bot.first_name, "username": bot.username},
        "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
        "date": now_unix(),
        "text": "…",
    });
    json!({
        "update_id": update_id,
        "callback_query": {
            "id": format!("cq{update_id}"),
            "from": user_json(user),
            "message": message,
            "chat_instance": format!("ci{}", user.id),
            "data": data,
        }
    })
}

async fn deliver(shared: &Shared, bot: &FakeBot, update: Value) -> Delivery {
    let hook = shared.inner.lock().webhooks.get(&bot.id).cloned();
    match hook {
        Some(hook) => post_update(shared, &hook.url, hook.secret_token.as_deref(), &update).await,
        None => {
            let update_id = update["update_id"].as_i64().unwrap_or_default();
            shared
                .inner
                .lock()
                .pending
                .entry(bot.id)
                .or_default()
                .push(update);
            shared.changed.notify_waiters();
            Delivery {
                update_id,
                status: 0,
                body: "queued for getUpdates (no webhook set)".into(),
            }
        }
    }
}

async fn post_update(shared: &Shared, url: &str, secret: Option<&str>, update: &Value) -> Delivery {
    let update_id = update["update_id"].as_i64().unwrap_or_default();
    let mut req = shared.http.post(url).json(update);
    if let Some(s) = secret {
        req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            Delivery {
                update_id,
                status,
                body,
            }
        }
        Err(e) => Delivery {
            update_id,
            status: 0,
            body: e.to_string(),
        },
    }
}

// The Bot API ------------------------------------------------------------------------------

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/file/{bot_token}/{*path}", get(download_file))
        .route("/{bot_token}/{method}", post(bot_api).get(bot_api))
        .merge(control_router())
        .with_state(shared)
}

fn api_error(code: u16, description: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        json!({"ok": false, "error_code": code, "description": description}),
    )
}

fn ok(result: Value) -> (StatusCode, Value) {
    (StatusCode::OK, json!({"ok": true, "result": result}))
}

/// A file sent with a multipart request.
struct Upload {
    field: String,
    file_name: String,
    bytes: Vec<u8>,
}

async fn parse_multipart(headers: &HeaderMap, body: Bytes) -> (Map<String, Value>, Option<Upload>) {
    let mut params = Map::new();
    let mut upload = None;
    let boundary = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| multer::parse_boundary(c).ok());
    let Some(boundary) = boundary else {
        return (params, None);
    };
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(String::from);
        let bytes = field.bytes().await.unwrap_or_default();
        match file_name {
            Some(file_name) => {
                upload = Some(Upload {
                    field: name,
                    file_name,
                    bytes: bytes.to_vec(),
                })
            }
            None => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let value = serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(|v| v.is_object() || v.is_array())
                    .unwrap_or(json!(text));
                params.insert(name, value);
            }
        }
    }
    (params, upload)
}

fn parse_params(headers: &HeaderMap, query: &HashMap<String, String>, body: &Bytes) -> Value {
    let mut params = Map::new();
    for (k, v) in query {
        params.insert(k.clone(), json!(v));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/json") {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            params.extend(map);
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in url::form_urlencoded::parse(body) {
            // Form values of JSON fields (reply_markup, allowed_updates) are JSON text.
            let value = serde_json::from_str::<Value>(&v)
                .ok()
                .filter(|v| v.is_object() || v.is_array())
                .unwrap_or_else(|| json!(v));
            params.insert(k.into_owned(), value);
        }
    }
    Value::Object(params)
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

async fn bot_api(
    State(shared): State<Arc<Shared>>,
    Path((bot_token, method)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_multipart = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("multipart/form-data"));
    let (params, upload) = if is_multipart {
        let (mut fields, upload) = parse_multipart(&headers, body).await;
        for (k, v) in &query {
            fields.insert(k.clone(), json!(v));
        }
        (Value::Object(fields), upload)
    } else {
        (parse_params(&headers, &query, &body), None)
    };
    let token = bot_token
        .strip_prefix("bot")
        .unwrap_or_default()
        .to_string();
    let bot = shared.inner.lock().bots.get(&token).cloned();
    let method_lc = method.to_ascii_lowercase();

    let failure = bot.as_ref().and_then(|_| {
        let mut inner = shared.inner.lock();
        let f = inner
            .failures
            .iter_mut()
            .find(|f| f.method.eq_ignore_ascii_case(&method) && f.times > 0)?;
        f.times -= 1;
        Some(f.kind.clone())
    });

    let received_ms = chrono::Utc::now().timestamp_millis();
    let limits = shared.limits.lock().clone();
    let is_send = matches!(
        method_lc.as_str(),
        "sendmessage" | "sendphoto" | "senddocument" | "copymessage" | "forwardmessage"
    );
    let throttled = match (&bot, is_send, &failure) {
        (Some(bot), true, None) => throttle(
            &shared,
            &limits,
            bot.id,
            params.get("chat_id").and_then(as_i64),
        ),
        _ => None,
    };
    let (low, high) = limits.latency_ms;
    if high > 0 && method_lc != "getupdates" {
        // A cheap deterministic spread (no need for a cryptographic draw here).
        let x = shared.jitter.fetch_add(0x9e37_79b9, Ordering::Relaxed) as u64;
        let x = (x ^ (x >> 13)).wrapping_mul(0x2545_f491_4f6c_dd1d);
        let ms = low + x % (high.saturating_sub(low) + 1);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let failure = failure.or(throttled);

    let (status, body) = match (&bot, failure) {
        (None, _) => api_error(401, "Unauthorized"),
        (Some(_), Some(FailKind::RetryAfter { seconds })) => (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"ok": false, "error_code": 429,
                   "description": format!("Too Many Requests: retry after {seconds}"),
                   "parameters": {"retry_after": seconds}}),
        ),
        (Some(_), Some(FailKind::ServerError { status })) => {
            api_error(status, "Internal Server Error")
        }
        (Some(_), Some(FailKind::Api { code, description })) => api_error(code, &description),
        (Some(bot), delay) => {
            if let Some(FailKind::Delay { millis }) = delay {
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
            match (method_lc.as_str(), upload) {
                ("sendphoto" | "senddocument", upload) => {
                    send_file(&shared, bot, &method_lc, &params, upload)
                }
                ("getupdates", _) => get_updates(&shared, bot, &params).await,
                _ => handle_method(&shared, bot, &method_lc, &params),
            }
        }
    };
    {
        let mut inner = shared.inner.lock();
        inner.calls.push(Call {
            bot: bot.map(|b| b.username),
            method: method.clone(),
            params,
            status: status.as_u16(),
            received_ms,
        });
    }
    shared.changed.notify_waiters();
    (status, Json(body)).into_response()
}

/// Telegram's limits, as the fake imitates them: a send over the bot's budget for the last
/// second, or too soon after the last one to the same chat, is refused with 429. Accepted
/// sends are counted.
fn throttle(shared: &Shared, limits: &Limits, bot: i64, chat: Option<i64>) -> Option<FailKind> {
    if limits.bot_per_second.is_none() && limits.chat_interval_ms.is_none() {
        return None;
    }
    let now = tokio::time::Instant::now();
    let mut log = shared.send_log.lock();
    let window = log.per_bot.entry(bot).or_default();
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
    {
        window.pop_front();
    }
    if let Some(rate) = limits.bot_per_second {
        if window.len() >= rate as usize {
            return Some(FailKind::RetryAfter { seconds: 1 });
        }
    }
    if let (Some(interval), Some(chat)) = (limits.chat_interval_ms, chat) {
        if let Some(last) = log.per_chat.get(&(bot, chat)) {
            if now.duration_since(*last) < Duration::from_millis(interval) {
                return Some(FailKind::RetryAfter { seconds: 1 });
            }
        }
        log.per_chat.insert((bot, chat), now);
    }
    log.per_bot.entry(bot).or_default().push_back(now);
    None
}

/// `getUpdates` with long polling: waits up to `timeout` seconds for an update. As with
/// Telegram, a newer call for the same bot ends an older one still waiting with 409, and
/// the call fails with 409 while a webhook is set.
async fn get_updates(shared: &Shared, bot: &FakeBot, p: &Value) -> (StatusCode, Value) {
    let timeout = p.get("timeout").and_then(as_i64).unwrap_or(0).clamp(0, 50) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let generation = {
        let mut inner = shared.inner.lock();
        let counter = inner.polls.entry(bot.id).or_default();
        *counter += 1;
        *counter
    };
    // An older call still waiting hears of this one.
    shared.changed.notify_waiters();
    loop {
        let notified = shared.changed.notified();
        if shared.inner.lock().polls.get(&bot.id) != Some(&generation) {
            return api_error(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
            );
        }
        let (status, body) = handle_method(shared, bot, "getupdates", p);
        let waiting = status == StatusCode::OK
            && body["result"].as_array().is_some_and(Vec::is_empty)
            && tokio::time::Instant::now() < deadline;
        if !waiting {
            return (status, body);
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

fn handle_method(shared: &Shared, bot: &FakeBot, method: &str, p: &Value) -> (StatusCode, Value) {
    match method {
        "getme" => ok(json!({
            "id": bot.id, "is_bot": true, "first_name": bot.first_name, "username": bot.username,
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        })),
        "setwebhook" => {
            let Some(url) = p.get("url").and_then(Value::as_str) else {
                return api_error(400, "Bad Request: bad webhook: URL must be provided");
            };
            let mut inner = shared.inner.lock();
            if url.is_empty() {
                inner.webhooks.remove(&bot.id);
                return ok(json!(true));
            }
            if let Some(secret) = p.get("secret_token").and_then(Value::as_str) {
                let valid = (1..=256).contains(&secret.len())
                    && secret
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    return api_error(
                        400,
                        "Bad Request: secret token contains unallowed characters",
                    );
                }
            }
            inner.webhooks.insert(
                bot.id,
                Webhook {
                    url: url.to_string(),
                    secret_token: p
                        .get("secret_token")
                        .and_then(Value::as_str)
                        .map(String::from),
                    allowed_updates: p
                        .get("allowed_updates")
                        .and_then(|v| serde_json::from_value(v.clone()).ok()),
                    max_connections: p.get("max_connections").and_then(Value::as_u64),
                },
            );
            ok(json!(true))
        }
        "deletewebhook" => {
            shared.inner.lock().webhooks.remove(&bot.id);
            ok(json!(true))
        }
        "getwebhookinfo" => {
            let inner = shared.inner.lock();
            let hook = inner.webhooks.get(&bot.id);
            let pending = inner.pending.get(&bot.id).map_or(0, Vec::len);
            ok(json!({
                "url": hook.map(|h| h.url.clone()).unwrap_or_default(),
                "has_custom_certificate": false,
                "pending_update_count": pending,
                "max_connections": hook.and_then(|h| h.max_connections).unwrap_or(40),
                "allowed_updates": hook.and_then(|h| h.allowed_updates.clone()),
            }))
        }
        "setmycommands" => {
            let commands = p.get("commands").cloned().unwrap_or(json!([]));
            // Lists for a language are kept apart (as Telegram does); `commands()` shows the default.
            if p.get("language_code").and_then(Value::as_str).is_none() {
                shared.inner.lock().commands.insert(bot.id, commands);
            }
            ok(json!(true))
        }
        "deletemycommands" => {
            shared.inner.lock().commands.remove(&bot.id);
            ok(json!(true))
        }
        "getmycommands" => ok(shared
            .inner
            .lock()
            .commands
            .get(&bot.id)
            .cloned()
            .unwrap_or(json!([]))),
        "sendmessage" => send_message(shared, bot, p),
        "getfile" => {
            let Some(file_id) = p.get("file_id").and_then(Value::as_str) else {
                return api_error(400, "Bad Request: file_id is required");
            };
            ok(
                json!({"file_id": file_id, "file_unique_id": format!("u-{file_id}"),
                      "file_size": FAKE_PHOTO.len(), "file_path": format!("files/{file_id}.png")}),
            )
        }
        "answercallbackquery" => {
            if p.get("callback_query_id").is_none() {
                return api_error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid");
            }
            ok(json!(true))
        }
        "sendchataction" => ok(json!(true)),
        "editmessagereplymarkup" | "editmessagetext" => ok(json!(true)),
        "getupdates" => {
            let mut inner = shared.inner.lock();
            if inner.webhooks.contains_key(&bot.id) {
                return api_error(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
            }
            let offset = p.get("offset").and_then(as_i64).unwrap_or(0);
            let queue = inner.pending.entry(bot.id).or_default();
            queue.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            ok(Value::Array(queue.clone()))
        }
        "close" | "logout" => ok(json!(true)),
        _ => api_error(404, "Not Found: method not found"),
    }
}

/// A 1×1 PNG: what every file downloaded from the fake server contains.
pub const FAKE_PHOTO: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn send_file(
    shared: &Shared,
    bot: &FakeBot,
    method: &str,
    p: &Value,
    upload: Option<Upload>,
) -> (StatusCode, Value) {
    let Some(chat_id) = p.get("chat_id").and_then(as_i64) else {
        return api_error(400, "Bad Request: chat not found");
    };
    let kind = if method == "sendphoto" {
        "photo"
    } else {
        "document"
    };
    let Some(upload) = upload.filter(|u| u.field == kind) else {
        return api_error(
            400,
            &format!("Bad Request: there is no {kind} in the request"),
        );
    };
    if upload.bytes.is_empty() {
        return api_error(400, "Bad Request: file must be non-empty");
    }
    if shared.inner.lock().blocked.contains(&(bot.id, chat_id)) {
        return api_error(403, "Forbidden: bot was blocked by the user");
    }
    let caption = p
        .get("caption")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let message_id = shared.next_message_id.fetch_add(1, Ordering::SeqCst);
    let date = now_unix();
    let sent = SentMessage {
        message_id,
        chat_id,
        text: caption.clone(),
        parse_mode: p
            .get("parse_mode")
            .and_then(Value::as_str)
            .map(String::from),
        reply_markup: None,
        date,
        accepted_ms: chrono::Utc::now().timestamp_millis(),
        file: Some((
            kind.to_string(),
            upload.file_name.clone(),
            upload.bytes.len(),
        )),
    };
    shared.inner.lock().sent.push((bot.id, sent));
    let mut message = json!({
        "message_id": message_id,
        "from": {"id": bot.id, "is_bot": true, "first_name": bot.first_name, "username": bot.username},
        "chat": {"id": chat_id, "type": "private", "first_name": "User"},
        "date": date,
    });
    if !caption.is_empty() {
        message["caption"] = json!(caption);
    }
    let file_id = format!("sent-{message_id}");
    if kind == "photo" {
        message["photo"] = json!([{"file_id": file_id, "file_unique_id": file_id, "width": 1, "height": 1, "file_size": upload.bytes.len()}]);
    } else {
        message["document"] = json!({"file_id": file_id, "file_unique_id": file_id, "file_name": upload.file_name, "file_size": upload.bytes.len()});
    }
    ok(message)
}

fn send_message(shared: &Shared, bot: &FakeBot, p: &Value) -> (StatusCode, Value) {
    let Some(chat_id) = p.get("chat_id").and_then(as_i64) else {
        return api_error(400, "Bad Request: chat not found");
    };
    let text = p
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if text.trim().is_empty() {
        return api_error(400, "Bad Request: message text is empty");
    }
    if text.encode_utf16().count() > 4096 {
        return api_error(400, "Bad Request: message is too long");
    }
    if shared.inner.lock().blocked.contains(&(bot.id, chat_id)) {
        return api_error(403, "Forbidden: bot was blocked by the user");
    }
    let parse_mode = p
        .get("parse_mode")
        .and_then(Value::as_str)
        .map(String::from);
    if parse_mode.as_deref() == Some("HTML") {
        if let Err(e) = check_html(&text) {
            return api_error(400, &format!("Bad Request: can't parse entities: {e}"));
        }
    }
    if parse_mode.as_deref() == Some("MarkdownV2") {
        // Telegram wants these escaped outside entities.
        let mut escaped = false;
        for c in text.chars() {
            if !escaped && ".!-=+#|{}>".contains(c) {
                return api_error(
                    400,
                    &format!("Bad Request: can't parse entities: character '{c}' is reserved and must be escaped with the preceding '\\'"),
                );
            }
            escaped = !escaped && c == '\\';
        }
    }
    let reply_markup = p.get("reply_markup").cloned();
    if let Some(markup) = &reply_markup {
        for row in markup
            .get("inline_keyboard")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for b in row.as_array().into_iter().flatten() {
                if let Some(d) = b.get("callback_data").and_then(Value::as_str) {
                    if d.is_empty() || d.len() > 64 {
                        return api_error(400, "Bad Request: BUTTON_DATA_INVALID");
                    }
                }
            }
        }
    }
    let message_id = shared.next_message_id.fetch_add(1, Ordering::SeqCst);
    let date = now_unix();
    let sent = SentMessage {
        message_id,
        chat_id,
        text: text.clone(),
        parse_mode,
        reply_markup: reply_markup.clone(),
        date,
        accepted_ms: chrono::Utc::now().timestamp_millis(),
        file: None,
    };
    shared.inner.lock().sent.push((bot.id, sent));
    let mut message = json!({
        "message_id": message_id,
        "from": {"id": bot.id, "is_bot": true, "first_name": bot.first_name, "username": bot.username},
        "chat": {"id": chat_id, "type": "private", "first_name": "User"},
        "date": date,
        "text": text,
    });
    if let Some(m) = reply_markup {
        message["reply_markup"] = m;
    }
    ok(message)
}

/// The subset of Telegram's HTML parser that matters: known tags, properly nested.
fn check_html(text: &str) -> Result<(), String> {
    const TAGS: &[&str] = &[
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "tg-spoiler",
        "span",
        "blockquote",
        "tg-emoji",
    ];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else {
            return Err(format!(
                "unclosed start tag at byte offset {}",
                offset + start
            ));
        };
        let tag = &rest[start + 1..start + end];
        let (closing, name) = match tag.strip_prefix('/') {
            Some(n) => (true, n.trim()),
            None => (false, tag.split_whitespace().next().unwrap_or_default()),
        };
        if !TAGS.contains(&name) {
            return Err(format!(
                "Unsupported start tag \"{name}\" at byte offset {}",
                offset + start
            ));
        }
        if closing {
            if stack.pop().as_deref() != Some(name) {
                return Err(format!(
                    "Unexpected end tag at byte offset {}",
                    offset + start
                ));
            }
        } else {
            stack.push(name.to_string());
        }
        offset += start + end + 1;
        rest = &rest[start + end + 1..];
    }
    match stack.pop() {
        Some(open) => Err(format!(
            "Can't find end tag corresponding to start tag \"{open}\""
        )),
        None => Ok(()),
    }
}

/// `GET /file/bot<token>/<path>`: file downloads (always the same tiny PNG).
async fn download_file(
    State(shared): State<Arc<Shared>>,
    Path((bot_token, _path)): Path<(String, String)>,
) -> Response {
    let token = bot_token.strip_prefix("bot").unwrap_or_default();
    if !shared.inner.lock().bots.contains_key(token) {
        return StatusCode::NOT_FOUND.into_response();
    }
    ([("content-type", "image/png")], FAKE_PHOTO).into_response()
}

// The control API ------------------------------------------------------------------------

#[derive(Deserialize)]
struct NewBotBody {
    username: String,
    #[serde(default)]
    token: Option<String>,
}

#[derive(Deserialize)]
struct SendBody {
    from: FakeUser,
    text: String,
}

#[derive(Deserialize)]
struct PressBody {
    from: FakeUser,
    data: String,
    message_id: i64,
}

#[derive(Deserialize)]
struct ChatQuery {
    chat_id: Option<i64>,
}

/// `POST /_fake/bots {username, token?}` → the bot with its token;
/// `GET /_fake/bots`;
/// `POST /_fake/bots/{username}/send {from, text}` → the webhook delivery;
/// `POST /_fake/bots/{username}/press {from, data, message_id}`;
/// `GET /_fake/bots/{username}/messages?chat_id=` → what the bot sent;
/// `GET /_fake/calls`; `POST /_fake/fail {method, times, kind, …}`.
fn control_router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_fake/bots", post(control_add_bot).get(control_list_bots))
        .route("/_fake/bots/{username}/send", post(control_send))
        .route("/_fake/bots/{username}/press", post(control_press))
        .route("/_fake/bots/{username}/messages", get(control_messages))
        .route("/_fake/calls", get(control_calls))
        .route("/_fake/fail", post(control_fail))
        .route(
            "/_fake/limits",
            post(control_limits).get(control_get_limits),
        )
}

/// `POST /_fake/limits` `{"latency_ms": [50, 300], "bot_per_second": 30, "chat_interval_ms": 1000}`.
async fn control_limits(State(shared): State<Arc<Shared>>, Json(limits): Json<Limits>) -> Response {
    *shared.limits.lock() = limits.clone();
    Json(limits).into_response()
}

async fn control_get_limits(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.limits.lock().clone()).into_response()
}

fn find_bot(shared: &Shared, username: &str) -> Option<FakeBot> {
    shared
        .inner
        .lock()
        .bots
        .values()
        .find(|b| b.username == username)
        .cloned()
}

fn no_such_bot(username: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("no bot @{username}; create it with POST /_fake/bots")})),
    )
        .into_response()
}

async fn control_add_bot(State(shared): State<Arc<Shared>>, Json(b): Json<NewBotBody>) -> Response {
    if let Some(existing) = find_bot(&shared, &b.username) {
        return Json(existing).into_response();
    }
    Json(add_bot(&shared, &b.username, b.token)).into_response()
}

async fn control_list_bots(State(shared): State<Arc<Shared>>) -> Response {
    let bots: Vec<FakeBot> = shared.inner.lock().bots.values().cloned().collect();
    Json(bots).into_response()
}

async fn control_send(
    State(shared): State<Arc<Shared>>,
    Path(username): Path<String>,
    Json(body): Json<SendBody>,
) -> Response {
    let Some(bot) = find_bot(&shared, &username) else {
        return no_such_bot(&username);
    };
    let update = text_update(&shared, &bot, &body.from, &body.text);
    Json(deliver(&shared, &bot, update).await).into_response()
}

async fn control_press(
    State(shared): State<Arc<Shared>>,
    Path(username): Path<String>,
    Json(body): Json<PressBody>,
) -> Response {
    let Some(bot) = find_bot(&shared, &username) else {
        return no_such_bot(&username);
    };
    let update = callback_update(&shared, &bot, &body.from, &body.data, body.message_id);
    Json(deliver(&shared, &bot, update).await).into_response()
}

async fn control_messages(
    State(shared): State<Arc<Shared>>,
    Path(username): Path<String>,
    Query(q): Query<ChatQuery>,
) -> Response {
    let Some(bot) = find_bot(&shared, &username) else {
        return no_such_bot(&username);
    };
    let sent: Vec<SentMessage> = shared
        .inner
        .lock()
        .sent
        .iter()
        .filter(|(b, m)| *b == bot.id && q.chat_id.is_none_or(|c| c == m.chat_id))
        .map(|(_, m)| m.clone())
        .collect();
    Json(sent).into_response()
}

async fn control_calls(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.inner.lock().calls.clone()).into_response()
}

async fn control_fail(State(shared): State<Arc<Shared>>, Json(f): Json<Failure>) -> Response {
    shared.inner.lock().failures.push(f);
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_checker_accepts_telegram_html_and_rejects_the_rest() {
        assert!(check_html("<b>bold</b> and <a href=\"https://x\">link</a>").is_ok());
        assert!(check_html("plain").is_ok());
        assert!(check_html("<b>open").is_err());
        assert!(check_html("<div>x</div>").is_err());
        assert!(check_html("<b><i>x</b></i>").is_err());
    }

    #[tokio::test]
    async fn unknown_tokens_are_unauthorized_and_known_ones_answer_get_me() {
        let tg = FakeTelegram::start().await;
        let bot = tg.add_bot("demo_bot");
        let http = reqwest::Client::new();
        let r: Value = http
            .post(format!("{}/bot{}/getMe", tg.url(), bot.token))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["result"]["username"], "demo_bot");
        let r = http
            .post(format!("{}/bot123:nope/getMe", tg.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(tg.calls().len(), 2);
    }

    #[tokio::test]
    async fn failures_are_injected_then_cleared() {
        let tg = FakeTelegram::start().await;
        let bot = tg.add_bot("demo_bot");
        tg.fail("sendMessage", 1, FailKind::RetryAfter { seconds: 2 });
        let http = reqwest::Client::new();
        let url = format!("{}/bot{}/sendMessage", tg.url(), bot.token);
        let body = json!({"chat_id": 5, "text": "hi"});
        let r = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 429);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["parameters"]["retry_after"], 2);
        let r = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(tg.sent_to(&bot, 5).len(), 1);
    }
}
