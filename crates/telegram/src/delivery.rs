//! The delivery scheduler: every worker process runs one dispatcher, which takes ready
//! messages from the chat queue (`db::outbox`) in batches — round-robin between tenants,
//! within each bot's budget shared by all processes — and sends them concurrently, each at
//! its bot's send slot, without holding anything while it waits. Outcomes of successful
//! sends are recorded in batches by one recorder task, which keeps them (and stops new
//! claims) while the database is unreachable, so a message Telegram accepted is not sent
//! again because a PostgreSQL restart hid its outcome. Failures are recorded at once: a
//! 429 pauses the bot everywhere, transient errors are retried with backoff, refusals fail
//! the message visibly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_core::bot::OutButton;
use switchboard_core::{BotId, ConversationId, Event};
use switchboard_db::events::{Actor, NewEvent};
use switchboard_db::outbox::{self, ClaimParams, ClaimRef, Claimed, SentOutcome, DELIVERY_CHANNEL};
use switchboard_db::{end_users, events, DbError};
use teloxide::payloads::SendMessage;
use teloxide::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup, ParseMode, ReplyMarkup};
use teloxide::ApiError;
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::cache::CacheError;
use crate::client::TgError;
use crate::Telegram;

/// Attempts before a transient failure becomes final.
pub const MAX_ATTEMPTS: i32 = 8;
/// Attempts allowed when Telegram keeps answering 429.
const MAX_RATE_LIMITED_ATTEMPTS: i32 = 30;
/// Outcomes written in one statement at most.
const RECORD_BATCH: usize = 500;
/// How long the recorder waits for more outcomes to write together.
const RECORD_GATHER: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl From<sqlx::Error> for DeliveryError {
    fn from(e: sqlx::Error) -> Self {
        DeliveryError::Db(e.into())
    }
}

/// How one process's dispatcher works.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Names this process on the chats it holds.
    pub worker: String,
    /// Sends in flight at once (each a few KB and a socket: I/O, not CPU).
    pub max_in_flight: usize,
    /// Messages taken in one claim at most.
    pub batch: usize,
    /// How far ahead a bot's send slots are handed out (sends then wait for their slot).
    pub horizon: Duration,
    /// How often the queue is looked at when nothing wakes the dispatcher.
    pub idle_poll: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            worker: "switchboard".into(),
            max_in_flight: 256,
            batch: 200,
            horizon: Duration::from_millis(500),
            idle_poll: Duration::from_millis(100),
        }
    }
}

/// The last send of each bot from this process. Slots come from the database, but a
/// claim's answer and a task's wake-up arrive a little late or early, which could squeeze
/// two sends together; this keeps this process's sends of a bot an interval apart.
#[derive(Default)]
struct LocalSpacing(parking_lot::Mutex<std::collections::HashMap<BotId, tokio::time::Instant>>);

impl LocalSpacing {
    /// When this send may go: now, or an interval after the bot's previous one.
    fn reserve(&self, bot: BotId, interval: Duration) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let mut map = self.0.lock();
        if map.len() > 10_000 {
            map.retain(|_, at| *at + Duration::from_secs(1) > now);
        }
        let at = match map.get(&bot) {
            Some(last) => (*last + interval).max(now),
            None => now,
        };
        map.insert(bot, at);
        at
    }
}

/// A send Telegram accepted, on its way to the recorder.
struct Delivered {
    outcome: SentOutcome,
    conversation: ConversationId,
}

fn backoff(attempts: i32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempts.clamp(0, 8) as u32).min(300))
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Builds the Telegram keyboard from what was stored with the message.
pub fn keyboard_markup(payload: Option<&Value>) -> Option<InlineKeyboardMarkup> {
    let rows: Vec<Vec<OutButton>> =
        serde_json::from_value(payload?.get("keyboard")?.clone()).ok()?;
    let rows: Vec<Vec<InlineKeyboardButton>> = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .filter_map(|b| match b {
                    OutButton::Callback { label, data } => {
                        Some(InlineKeyboardButton::callback(label, data))
                    }
                    OutButton::Url { label, url } => url::Url::parse(&url)
                        .ok()
                        .map(|u| InlineKeyboardButton::url(label, u)),
                })
                .collect::<Vec<_>>()
        })
        .filter(|r: &Vec<InlineKeyboardButton>| !r.is_empty())
        .collect();
    (!rows.is_empty()).then(|| InlineKeyboardMarkup::new(rows))
}

fn parse_mode(payload: Option<&Value>) -> Option<ParseMode> {
    match payload?.get("parse_mode")?.as_str()? {
        "HTML" => Some(ParseMode::Html),
        "MarkdownV2" => Some(ParseMode::MarkdownV2),
        _ => None,
    }
}

impl Telegram {
    /// Runs this process's dispatcher until `stop` turns true, then lets the sends in
    /// flight finish and their outcomes be recorded (up to `grace`).
    pub async fn run_delivery(
        self: Arc<Self>,
        config: DeliveryConfig,
        mut stop: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(listen_for_work(self.pool.clone(), wake.clone()));
        let healthy = Arc::new(AtomicBool::new(true));
        let (record_tx, record_rx) = mpsc::unbounded_channel::<Delivered>();
        let recorder = tokio::spawn(self.clone().record_loop(record_rx, healthy.clone()));
        let permits = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
        let spacing = Arc::new(LocalSpacing::default());
        let lease_ms = self.settings.delivery_lease.as_millis() as i64;
        tracing::info!(worker = %config.worker, in_flight = config.max_in_flight, "delivery dispatcher starting");

        let mut failures = 0u32;
        while !*stop.borrow() {
            // While outcomes cannot be written, taking more work would only strand it.
            if !healthy.load(Ordering::Acquire) {
                pause(&mut stop, Duration::from_millis(200)).await;
                continue;
            }
            let free = permits.available_permits();
            if free == 0 {
                tokio::select! {
                    p = permits.clone().acquire_owned() => drop(p),
                    _ = stop.changed() => {}
                }
                continue;
            }
            let limit = free.min(config.batch.max(1));
            let params = ClaimParams {
                worker: &config.worker,
                limit: limit as i64,
                lease_ms,
                default_rate: self.settings.bot_rate.max(1) as i32,
                horizon_ms: config.horizon.as_millis() as i64,
            };
            match outbox::claim(&self.delivery_pool, &params).await {
                Ok(claimed) => {
                    failures = 0;
                    let n = claimed.len();
                    for m in claimed {
                        let permit = permits
                            .clone()
                            .try_acquire_owned()
                            .expect("a permit per claimed message");
                        tokio::spawn(self.clone().deliver(
                            m,
                            permit,
                            spacing.clone(),
                            record_tx.clone(),
                        ));
                    }
                    if n == limit {
                        // More may be ready right now.
                        tokio::task::yield_now().await;
                        continue;
                    }
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(config.idle_poll) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "claiming deliveries failed");
                    pause(
                        &mut stop,
                        Duration::from_millis(100 * u64::from(failures.min(20))),
                    )
                    .await;
                }
            }
        }
        listener.abort();
        tracing::info!(worker = %config.worker, "delivery dispatcher stopping: finishing sends in flight");
        // Every send holds a permit: all of them back means nothing is in flight.
        let all = config.max_in_flight.max(1) as u32;
        if tokio::time::timeout(grace, permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("sends still in flight at the end of the grace period; their chats are taken over when the lease runs out");
        }
        drop(record_tx);
        if tokio::time::timeout(grace, recorder).await.is_err() {
            tracing::warn!("delivery outcomes still unrecorded at the end of the grace period");
        }
    }

    /// Sends one claimed message at its slot and deals with the outcome.
    async fn deliver(
        self: Arc<Self>,
        m: Claimed,
        _permit: OwnedSemaphorePermit,
        spacing: Arc<LocalSpacing>,
        recorder: mpsc::UnboundedSender<Delivered>,
    ) {
        if m.delay_ms > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(m.delay_ms / 1000.0)).await;
        }
        let interval = Duration::from_secs_f64(m.interval_ms.max(0.0) / 1000.0);
        tokio::time::sleep_until(spacing.reserve(m.bot_id, interval)).await;
        let result = match self.send(&m).await {
            Ok(result) => result,
            Err(e) => {
                // The bot could not be loaded: the lease runs out and the chat is tried again.
                tracing::warn!(tenant = %m.tenant_id, message = %m.id, error = %e, "could not prepare a send");
                return;
            }
        };
        match result {
            Ok(telegram_message_id) => {
                let delivered = Delivered {
                    outcome: SentOutcome {
                        claim: m.claim(),
                        telegram_message_id,
                        pace_ms: self.pace_ms(m.chat_id),
                    },
                    conversation: m.conversation_id,
                };
                // The recorder outlives every send (it ends when the last sender is dropped).
                let _ = recorder.send(delivered);
            }
            Err(e) => {
                if let Err(db) = self.record_failure(&m, e).await {
                    tracing::warn!(tenant = %m.tenant_id, message = %m.id, error = %db, "recording a failed send failed; the chat is tried again when its lease runs out");
                }
                self.notifier
                    .desk(m.tenant_id, m.conversation_id, "delivery");
            }
        }
    }

    /// The spacing of messages to one chat, in milliseconds (groups: three times longer,
    /// as Telegram allows about 20 a minute there).
    fn pace_ms(&self, chat_id: i64) -> i64 {
        let ms = self.settings.chat_interval.as_millis() as i64;
        if chat_id < 0 {
            ms * 3
        } else {
            ms
        }
    }

    /// Sends a claimed message: Telegram's message id, or why not.
    async fn send(&self, m: &Claimed) -> Result<Result<i64, SendFailure>, DeliveryError> {
        let Some(bot) = self.caches.bot(m.tenant_id, m.bot_id).await? else {
            return Ok(Err(SendFailure::Final(
                "the bot was removed before this message could be sent".into(),
            )));
        };
        if bot.sandbox {
            // The "Try it" chat reads replies from the database.
            return Ok(Ok(0));
        }
        let result = if m.kind == "photo" || m.kind == "document" {
            self.send_file(bot.token(), m).await?
        } else {
            let mut payload = SendMessage::new(ChatId(m.chat_id), m.text.clone());
            payload.reply_markup =
                keyboard_markup(m.payload.as_ref()).map(ReplyMarkup::InlineKeyboard);
            payload.parse_mode = parse_mode(m.payload.as_ref());
            let mut result = self.api.call(bot.token(), &payload).await;
            if let Err(TgError::Api {
                kind: ApiError::CantParseEntities(_),
                ..
            }) = &result
            {
                // Broken formatting must not lose the message: send it as plain text.
                payload.parse_mode = None;
                result = self.api.call(bot.token(), &payload).await;
            }
            result
        };
        Ok(result
            .map(|sent| i64::from(sent.id.0))
            .map_err(SendFailure::Telegram))
    }

    /// A photo or document from the attachments table, as a multipart upload.
    async fn send_file(
        &self,
        token: &str,
        m: &Claimed,
    ) -> Result<Result<teloxide::types::Message, TgError>, DeliveryError> {
        let file = switchboard_db::attachments::get(&self.delivery_pool, m.tenant_id, m.id).await?;
        let field = if m.kind == "photo" {
            "photo"
        } else {
            "document"
        };
        let method = if m.kind == "photo" {
            "sendPhoto"
        } else {
            "sendDocument"
        };
        let form = |with_mode: bool| {
            let part = reqwest::multipart::Part::bytes(file.data.clone())
                .file_name(file.file_name.clone())
                .mime_str(&file.content_type)
                .unwrap_or_else(|_| {
                    reqwest::multipart::Part::bytes(file.data.clone())
                        .file_name(file.file_name.clone())
                });
            let mut form = reqwest::multipart::Form::new()
                .text("chat_id", m.chat_id.to_string())
                .part(field, part);
            if !m.text.is_empty() {
                form = form.text("caption", m.text.clone());
                if with_mode {
                    if let Some(mode) = m
                        .payload
                        .as_ref()
                        .and_then(|p| p.get("parse_mode"))
                        .and_then(|v| v.as_str())
                    {
                        form = form.text("parse_mode", mode.to_string());
                    }
                }
            }
            form
        };
        let mut result = self.api.call_multipart(token, method, form(true)).await;
        if let Err(TgError::Api {
            kind: ApiError::CantParseEntities(_),
            ..
        }) = &result
        {
            result = self.api.call_multipart(token, method, form(false)).await;
        }
        Ok(result)
    }

    /// Writes successful sends in batches. A batch that cannot be written is kept and
    /// tried again (new claims wait meanwhile, see `healthy`): Telegram has those messages,
    /// and only a lease running out — a minute — could make another worker send them again.
    async fn record_loop(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<Delivered>,
        healthy: Arc<AtomicBool>,
    ) {
        let mut batch: Vec<Delivered> = Vec::new();
        loop {
            match rx.recv().await {
                Some(d) => batch.push(d),
                None => return,
            }
            let until = tokio::time::Instant::now() + RECORD_GATHER;
            while batch.len() < RECORD_BATCH {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(d)) => batch.push(d),
                    _ => break,
                }
            }
            let outcomes: Vec<SentOutcome> = batch.iter().map(|d| d.outcome).collect();
            let mut wait = Duration::from_millis(100);
            loop {
                match outbox::record_sent(&self.delivery_pool, &outcomes).await {
                    Ok(recorded) => {
                        healthy.store(true, Ordering::Release);
                        if recorded.len() < outcomes.len() {
                            // Leases ran out mid-send and other workers took those messages
                            // over: their outcomes stand (the user may get them twice).
                            tracing::warn!(
                                unrecorded = outcomes.len() - recorded.len(),
                                "sent after the lease ran out; other workers own those messages"
                            );
                        }
                        break;
                    }
                    Err(e) => {
                        healthy.store(false, Ordering::Release);
                        tracing::warn!(error = %e, sends = outcomes.len(), "recording sent messages failed; keeping them and trying again");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(2));
                    }
                }
            }
            for d in batch.drain(..) {
                self.metrics.delivery_sent();
                self.notifier
                    .desk(d.outcome.claim.tenant_id, d.conversation, "delivery");
            }
        }
    }

    async fn record_failure(&self, m: &Claimed, failure: SendFailure) -> Result<(), DeliveryError> {
        let attempts = m.attempts;
        let claim = m.claim();
        let e = match failure {
            SendFailure::Final(reason) => return self.fail(m, claim, &reason).await,
            SendFailure::Telegram(e) => e,
        };
        match e {
            TgError::RetryAfter(secs) => {
                let wait = Duration::from_secs(u64::from(secs.max(1)));
                let until = Utc::now() + chrono(wait);
                // Every worker holds back this bot's sends until then.
                outbox::pause_bot(&self.delivery_pool, m.tenant_id, m.bot_id, until).await?;
                if attempts >= MAX_RATE_LIMITED_ATTEMPTS {
                    self.fail(
                        m,
                        claim,
                        &format!("Telegram kept rate-limiting after {attempts} attempts"),
                    )
                    .await
                } else {
                    self.retry_later(m, claim, until, &TgError::RetryAfter(secs).to_string())
                        .await
                }
            }
            e if e.is_transient() => {
                if attempts >= MAX_ATTEMPTS {
                    self.fail(m, claim, &format!("gave up after {attempts} attempts: {e}"))
                        .await
                } else {
                    let at = Utc::now() + chrono(backoff(attempts));
                    self.retry_later(m, claim, at, &e.to_string()).await
                }
            }
            TgError::Api {
                kind, description, ..
            } => {
                let reason = match kind {
                    ApiError::BotBlocked => {
                        // The desk marks the user and the conversation (once).
                        let mut tx = self.delivery_pool.begin().await?;
                        if end_users::set_blocked(&mut *tx, m.tenant_id, m.end_user_id, true)
                            .await?
                        {
                            events::insert(
                                &mut tx,
                                m.tenant_id,
                                NewEvent::new(
                                    Event::EndUserBlockedBot {
                                        detected: Some("delivery".into()),
                                    },
                                    Actor::System,
                                )
                                .conversation(m.conversation_id, m.end_user_id),
                            )
                            .await?;
                        }
                        tx.commit().await?;
                        "the user blocked the bot".to_string()
                    }
                    ApiError::UserDeactivated => "the user's account is deactivated".to_string(),
                    ApiError::ChatNotFound => {
                        "chat not found (the user never started the bot)".to_string()
                    }
                    ApiError::InvalidToken => {
                        switchboard_db::bots::set_error(
                            &self.delivery_pool,
                            m.tenant_id,
                            m.bot_id,
                            Some("Telegram rejected the bot token (revoked?)"),
                        )
                        .await?;
                        "Telegram rejected the bot token (revoked?)".to_string()
                    }
                    _ => description,
                };
                self.fail(m, claim, &reason).await
            }
            e => self.fail(m, claim, &e.to_string()).await,
        }
    }

    async fn retry_later(
        &self,
        m: &Claimed,
        claim: ClaimRef,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), DeliveryError> {
        if !outbox::record_retry(&self.delivery_pool, claim, at, error).await? {
            // Another worker took the message over after our lease ran out: it decides.
            tracing::warn!(tenant = %m.tenant_id, message = %m.id, error, "a failed send after the lease ran out; another worker owns the message");
            return Ok(());
        }
        self.metrics.delivery_retried();
        tracing::info!(tenant = %m.tenant_id, message = %m.id, %at, error, "delivery will be retried");
        Ok(())
    }

    async fn fail(&self, m: &Claimed, claim: ClaimRef, reason: &str) -> Result<(), DeliveryError> {
        let mut tx = self.delivery_pool.begin().await?;
        if !outbox::record_failed(&mut *tx, claim, reason).await? {
            tracing::warn!(tenant = %m.tenant_id, message = %m.id, reason, "a failed send after the lease ran out; another worker owns the message");
            return Ok(());
        }
        let event = NewEvent::new(
            Event::MessageDeliveryFailed {
                message_id: m.id.0,
                reason: reason.to_string(),
            },
            Actor::System,
        )
        .end_user(m.end_user_id);
        events::insert(&mut tx, m.tenant_id, event).await?;
        tx.commit().await?;
        self.metrics.delivery_failed();
        tracing::warn!(tenant = %m.tenant_id, message = %m.id, reason, "delivery failed");
        Ok(())
    }
}

/// Why a send did not go through.
enum SendFailure {
    /// Telegram (or the network) said no.
    Telegram(TgError),
    /// Nothing to try: the message fails with this reason.
    Final(String),
}

/// Sleeps, or returns early when the dispatcher is told to stop.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

/// Wakes the dispatcher when any process queues a chat (`pg_notify` after commit). If
/// the listener cannot connect, the dispatcher still polls.
async fn listen_for_work(pool: sqlx::PgPool, wake: Arc<Notify>) {
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(DELIVERY_CHANNEL).await {
                    tracing::warn!(error = %e, "could not listen for queued deliveries");
                } else {
                    // recv() reconnects by itself after a lost connection.
                    while listener.recv().await.is_ok() {
                        wake.notify_one();
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "delivery listener cannot connect; polling"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keyboards_round_trip_from_stored_payload() {
        let payload = json!({"keyboard": [[
            {"type": "callback", "label": "Hours", "data": "b:1"},
            {"type": "url", "label": "Site", "url": "https://example.com"}
        ], []]});
        let markup = keyboard_markup(Some(&payload)).unwrap();
        assert_eq!(markup.inline_keyboard.len(), 1);
        assert_eq!(markup.inline_keyboard[0].len(), 2);
        assert!(keyboard_markup(None).is_none());
        assert!(keyboard_markup(Some(&json!({"keyboard": []}))).is_none());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(20), Duration::from_secs(256));
        assert!(backoff(8) <= Duration::from_secs(300));
    }
}
