//! Delivering a chat's pending messages, in order, within Telegram's limits.
//!
//! A delivery job names a chat. It takes the chat's oldest undelivered message under a
//! row lock, leases it (`sending`), sends it outside any transaction, records the outcome,
//! and moves on to the next. A message leased by another worker means that worker owns the
//! chat for now; it re-checks for newer messages after each send, so nothing is stranded.
//! The spacing of a chat's messages is kept in the database (`chat_pacing`), so it holds
//! whichever worker sends. Failures are retried with backoff by scheduling a new job; 429s wait `retry_after`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use switchboard_core::bot::OutButton;
use switchboard_db::events::{Actor, NewEvent};
use switchboard_db::messages::{self, ClaimRef, Claimed};
use switchboard_db::outbox::{enqueue_delivery, DeliveryJob};
use switchboard_db::{end_users, events, DbError};
use teloxide::payloads::SendMessage;
use teloxide::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup, ParseMode, ReplyMarkup};
use teloxide::ApiError;

use crate::cache::CacheError;
use crate::client::TgError;
use crate::Telegram;

/// Waits shorter than this happen inside the job; longer ones are rescheduled.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(3);
/// Attempts before a transient failure becomes final.
pub const MAX_ATTEMPTS: i32 = 8;
/// Attempts allowed when Telegram keeps answering 429.
const MAX_RATE_LIMITED_ATTEMPTS: i32 = 30;

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

/// What one job run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: u32,
    pub failed: u32,
    pub retry_scheduled: bool,
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
    /// Runs one delivery job: sends the chat's pending messages in order.
    pub async fn deliver_chat(&self, job: &DeliveryJob) -> Result<DeliveryReport, DeliveryError> {
        let mut report = DeliveryReport::default();
        let tenant = job.tenant_id;
        let lease_ms = self.settings.delivery_lease.as_millis() as i64;
        let pace_ms = self.pace_ms();
        loop {
            // The bot's sending slot (and any pause Telegram asked for) is waited for before
            // the claim, so the lease is not spent waiting.
            self.limiter.acquire(job.bot_id).await;
            match messages::claim_next(&self.pool, tenant, job.end_user_id, lease_ms, pace_ms)
                .await?
            {
                Some(m) => {
                    self.send_one(job, m, &mut report).await?;
                    // A scheduled retry owns the rest of this chat's queue (order is kept).
                    if report.retry_scheduled {
                        return Ok(report);
                    }
                }
                None => {
                    let Some(head) =
                        messages::queue_head(&self.pool, tenant, job.end_user_id).await?
                    else {
                        return Ok(report);
                    };
                    let now = head.db_now;
                    if head.delivery_status == "sending"
                        && head.lease_until.is_some_and(|l| l > now)
                    {
                        // Another worker is sending this chat's messages and will continue.
                        return Ok(report);
                    }
                    // A retry time, or the chat's pacing (one message per interval, across
                    // all workers: Telegram's limit).
                    let ready_at = head.next_attempt_at.max(head.next_send_at);
                    match ready_at.filter(|t| *t > now) {
                        Some(at) if (at - now).to_std().unwrap_or_default() > MAX_INLINE_WAIT => {
                            enqueue_delivery(&self.pool, job, Some(at)).await?;
                            report.retry_scheduled = true;
                            return Ok(report);
                        }
                        Some(at) => {
                            tokio::time::sleep((at - now).to_std().unwrap_or_default()).await
                        }
                        // Changed under us (a lease just expired, a retry or slot came due).
                        None => {}
                    }
                }
            }
        }
    }

    /// The spacing of messages to one chat, in milliseconds.
    fn pace_ms(&self) -> i64 {
        self.settings.chat_interval.as_millis() as i64
    }

    async fn send_one(
        &self,
        job: &DeliveryJob,
        m: Claimed,
        report: &mut DeliveryReport,
    ) -> Result<(), DeliveryError> {
        let tenant = job.tenant_id;
        let claim = m.claim();
        let Some(bot) = self.caches.bot(tenant, job.bot_id).await? else {
            messages::mark_failed(
                &self.pool,
                tenant,
                claim,
                "the bot was removed before this message could be sent",
            )
            .await?;
            self.metrics.delivery_failed();
            report.failed += 1;
            return Ok(());
        };
        if bot.sandbox {
            // The "Try it" chat reads replies from the database.
            messages::mark_sent(&self.pool, tenant, claim, 0, 0).await?;
            report.sent += 1;
            return Ok(());
        }
        let result = if m.kind == "photo" || m.kind == "document" {
            self.send_file(bot.token(), job, &m).await?
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
        let outcome = self.record_outcome(job, &m, result, report).await;
        // Every open desk shows the new delivery state.
        self.notifier.desk(tenant, m.conversation_id, "delivery");
        outcome
    }

    /// A photo or document from the attachments table, as a multipart upload.
    async fn send_file(
        &self,
        token: &str,
        job: &DeliveryJob,
        m: &Claimed,
    ) -> Result<Result<teloxide::types::Message, TgError>, DeliveryError> {
        let file = switchboard_db::attachments::get(&self.pool, job.tenant_id, m.id).await?;
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

    async fn record_outcome(
        &self,
        job: &DeliveryJob,
        m: &Claimed,
        result: Result<teloxide::types::Message, TgError>,
        report: &mut DeliveryReport,
    ) -> Result<(), DeliveryError> {
        let tenant = job.tenant_id;
        let attempts = m.attempts;
        let claim = m.claim();
        match result {
            Ok(sent) => {
                // Telegram has the message: a database hiccup now must not leave it
                // `sending`, to be sent again when the lease runs out — try a few times.
                let mut tries = 0;
                let recorded = loop {
                    match messages::mark_sent(
                        &self.pool,
                        tenant,
                        claim,
                        i64::from(sent.id.0),
                        self.pace_ms(),
                    )
                    .await
                    {
                        Ok(recorded) => break recorded,
                        Err(e) if tries < 3 => {
                            tries += 1;
                            tracing::warn!(tenant = %tenant, message = %m.id, error = %e, "recording a sent message failed; trying again");
                            tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                };
                if !recorded {
                    // Our lease ran out mid-send and another worker took the message over:
                    // its outcome stands (the user may get the message twice).
                    tracing::warn!(tenant = %tenant, message = %m.id, "sent after the lease ran out; another worker owns the message");
                }
                self.metrics.delivery_sent();
                report.sent += 1;
            }
            Err(TgError::RetryAfter(secs)) => {
                let wait = Duration::from_secs(u64::from(secs.max(1)));
                self.limiter.pause(job.bot_id, wait);
                if attempts >= MAX_RATE_LIMITED_ATTEMPTS {
                    self.fail(
                        job,
                        claim,
                        &format!("Telegram kept rate-limiting after {attempts} attempts"),
                    )
                    .await?;
                    report.failed += 1;
                } else {
                    self.retry_later(job, claim, wait, &TgError::RetryAfter(secs).to_string())
                        .await?;
                    report.retry_scheduled = true;
                }
            }
            Err(e) if e.is_transient() => {
                if attempts >= MAX_ATTEMPTS {
                    self.fail(
                        job,
                        claim,
                        &format!("gave up after {attempts} attempts: {e}"),
                    )
                    .await?;
                    report.failed += 1;
                } else {
                    self.retry_later(job, claim, backoff(attempts), &e.to_string())
                        .await?;
                    report.retry_scheduled = true;
                }
            }
            Err(TgError::Api {
                kind, description, ..
            }) => {
                let reason = match kind {
                    ApiError::BotBlocked => {
                        // The desk marks the user and the conversation (once).
                        let mut tx = self.pool.begin().await?;
                        if end_users::set_blocked(&mut *tx, tenant, job.end_user_id, true).await? {
                            events::insert(
                                &mut tx,
                                tenant,
                                NewEvent::new("end_user.blocked_bot", Actor::System)
                                    .conversation(m.conversation_id, job.end_user_id)
                                    .data(json!({"detected": "delivery"})),
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
                            &self.pool,
                            tenant,
                            job.bot_id,
                            Some("Telegram rejected the bot token (revoked?)"),
                        )
                        .await?;
                        "Telegram rejected the bot token (revoked?)".to_string()
                    }
                    _ => description,
                };
                self.fail(job, claim, &reason).await?;
                report.failed += 1;
            }
            Err(e) => {
                self.fail(job, claim, &e.to_string()).await?;
                report.failed += 1;
            }
        }
        Ok(())
    }

    async fn retry_later(
        &self,
        job: &DeliveryJob,
        claim: ClaimRef,
        wait: Duration,
        error: &str,
    ) -> Result<(), DeliveryError> {
        let id = claim.id;
        let mut tx = self.pool.begin().await?;
        let at: DateTime<Utc> = Utc::now() + chrono(wait);
        if !messages::mark_retry(&mut *tx, job.tenant_id, claim, at, error).await? {
            // Another worker took the message over after our lease ran out: it decides.
            tracing::warn!(tenant = %job.tenant_id, message = %id, error, "a failed send after the lease ran out; another worker owns the message");
            return Ok(());
        }
        enqueue_delivery(&mut *tx, job, Some(at)).await?;
        tx.commit().await?;
        self.metrics.delivery_retried();
        tracing::info!(tenant = %job.tenant_id, message = %id, wait_s = wait.as_secs(), error, "delivery will be retried");
        Ok(())
    }

    async fn fail(
        &self,
        job: &DeliveryJob,
        claim: ClaimRef,
        reason: &str,
    ) -> Result<(), DeliveryError> {
        let id = claim.id;
        let mut tx = self.pool.begin().await?;
        if !messages::mark_failed(&mut *tx, job.tenant_id, claim, reason).await? {
            tracing::warn!(tenant = %job.tenant_id, message = %id, reason, "a failed send after the lease ran out; another worker owns the message");
            return Ok(());
        }
        let mut event = NewEvent::new("message.delivery_failed", Actor::System)
            .data(json!({"message_id": id, "reason": reason}));
        event.end_user_id = Some(job.end_user_id);
        events::insert(&mut tx, job.tenant_id, event).await?;
        tx.commit().await?;
        self.metrics.delivery_failed();
        tracing::warn!(tenant = %job.tenant_id, message = %id, reason, "delivery failed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
