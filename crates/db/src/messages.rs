//! Stored messages, inbound and outbound, and the delivery state of outbound ones.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, QueryBuilder};
use switchboard_core::{ConversationId, EndUserId, MessageId, RuleId, TenantId, UserId};

use crate::Result;

/// An inbound message (from the Telegram user).
#[derive(Clone, Debug, Default)]
pub struct NewInbound {
    pub conversation_id: ConversationId,
    pub end_user_id: EndUserId,
    /// text, command, callback, photo, document, voice, sticker, …
    pub kind: String,
    pub text: String,
    pub payload: Option<Value>,
    pub rule_id: Option<RuleId>,
    pub score: Option<f32>,
    pub match_info: Option<Value>,
    pub update_id: Option<i64>,
    pub telegram_message_id: Option<i64>,
}

pub async fn insert_inbound(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    m: &NewInbound,
) -> Result<MessageId> {
    Ok(sqlx::query_scalar(
        "insert into messages (tenant_id, conversation_id, end_user_id, direction, sender, kind,
            text, payload, rule_id, score, match, update_id, telegram_message_id)
         values ($1, $2, $3, 'in', 'user', $4, $5, $6, $7, $8, $9, $10, $11)
         returning id",
    )
    .bind(tenant)
    .bind(m.conversation_id)
    .bind(m.end_user_id)
    .bind(&m.kind)
    .bind(&m.text)
    .bind(&m.payload)
    .bind(m.rule_id)
    .bind(m.score)
    .bind(&m.match_info)
    .bind(m.update_id)
    .bind(m.telegram_message_id)
    .fetch_one(db)
    .await?)
}

/// Who sends an outbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    Bot,
    Operator(UserId),
    System,
}

impl Sender {
    fn as_str(&self) -> &'static str {
        match self {
            Sender::Bot => "bot",
            Sender::Operator(_) => "operator",
            Sender::System => "system",
        }
    }
}

/// An outbound message to deliver.
#[derive(Clone, Debug)]
pub struct NewOutbound {
    pub conversation_id: ConversationId,
    pub end_user_id: EndUserId,
    pub sender: Sender,
    /// text, or photo/document for a file (its bytes in the attachments table).
    pub kind: &'static str,
    pub text: String,
    /// `{"keyboard": [[…]]}` and other sending options.
    pub payload: Option<Value>,
    pub rule_id: Option<RuleId>,
}

/// Stores outbound messages as `pending`, in order; returns their ids.
pub async fn insert_outbound(
    conn: &mut PgConnection,
    tenant: TenantId,
    items: &[NewOutbound],
) -> Result<Vec<MessageId>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = QueryBuilder::new(
        "insert into messages (tenant_id, conversation_id, end_user_id, direction, sender,
            operator_id, kind, text, payload, rule_id, delivery_status) ",
    );
    qb.push_values(items, |mut b, m| {
        let operator = match m.sender {
            Sender::Operator(u) => Some(u),
            _ => None,
        };
        b.push_bind(tenant)
            .push_bind(m.conversation_id)
            .push_bind(m.end_user_id)
            .push("'out'")
            .push_bind(m.sender.as_str())
            .push_bind(operator)
            .push_bind(m.kind)
            .push_bind(&m.text)
            .push_bind(&m.payload)
            .push_bind(m.rule_id)
            .push("'pending'");
    });
    qb.push(" returning id");
    let ids: Vec<MessageId> = qb.build_query_scalar().fetch_all(conn).await?;
    Ok(ids)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub direction: String,
    pub sender: String,
    pub operator_id: Option<UserId>,
    pub kind: String,
    pub text: String,
    pub payload: Option<Value>,
    pub rule_id: Option<RuleId>,
    pub score: Option<f32>,
    /// For inbound texts: the matcher's candidates and evidence (why the bot answered).
    #[sqlx(rename = "match")]
    pub match_info: Option<Value>,
    pub telegram_message_id: Option<i64>,
    pub delivery_status: Option<String>,
    pub delivery_error: Option<String>,
    pub attempts: i32,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, conversation_id, direction, sender, operator_id, kind, text, payload,
    rule_id, score, match, telegram_message_id, delivery_status, delivery_error, attempts, sent_at,
    created_at";

/// A conversation's messages in order, after `after` (keyset), at most `limit`.
pub async fn list_for_conversation(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    conversation: ConversationId,
    after: Option<MessageId>,
    limit: i64,
) -> Result<Vec<MessageRow>> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from messages
         where tenant_id = $1 and conversation_id = $2 and ($3::bigint is null or id > $3)
         order by id limit $4"
    ))
    .bind(tenant)
    .bind(conversation)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

pub async fn get(db: impl PgExecutor<'_>, tenant: TenantId, id: MessageId) -> Result<MessageRow> {
    use crate::error::OptionExt;
    sqlx::query_as(&format!(
        "select {COLUMNS} from messages where tenant_id = $1 and id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await?
    .found()
}

// Delivery ------------------------------------------------------------------------------

/// A message taken for sending.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Claimed {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// text, or photo/document (a file from the attachments table).
    pub kind: String,
    pub text: String,
    pub payload: Option<Value>,
    /// Attempts including this one.
    pub attempts: i32,
    pub chat_id: i64,
}

/// Takes the chat's oldest undelivered message for sending (`sending`, leased for
/// `lease_ms`, five times that for a photo or document: an upload may take minutes) — if
/// it is ready: not leased by another worker, not waiting for a retry, and
/// the chat's pacing slot is free (the slot is then taken for `pace_ms`; 0 paces nothing).
/// Only ever the oldest, so a chat's messages go out in order.
///
/// The slot is checked with an upsert, which — unlike a read — sees a slot another worker
/// committed after this statement began (it may have been waiting for the head's row lock
/// while that worker sent and recorded the previous message).
pub async fn claim_next(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    end_user: EndUserId,
    lease_ms: i64,
    pace_ms: i64,
) -> Result<Option<Claimed>> {
    Ok(sqlx::query_as(
        "with head as (
            select id, delivery_status, lease_until, next_attempt_at from messages
            where tenant_id = $1 and end_user_id = $2 and delivery_status in ('pending', 'sending')
            order by id
            limit 1
            for update
         ), ready as (
            select id from head
            where (delivery_status = 'pending' or lease_until < now())
              and (next_attempt_at is null or next_attempt_at <= now())
         ), slot as (
            insert into chat_pacing (tenant_id, end_user_id, next_send_at)
            select $1, $2, now() + make_interval(secs => $4::float8 / 1000) from ready
            where $4 > 0
            on conflict (tenant_id, end_user_id) do update set next_send_at = excluded.next_send_at
            where chat_pacing.next_send_at <= now()
            returning 1
         )
         update messages m set delivery_status = 'sending',
            lease_until = now() + make_interval(secs => $3::float8 / 1000
                * case when m.kind in ('photo', 'document') then 5 else 1 end),
            attempts = m.attempts + 1
         from ready, end_users u
         where m.tenant_id = $1 and m.id = ready.id
           and u.tenant_id = $1 and u.id = $2
           and ($4 <= 0 or exists (select 1 from slot))
         returning m.id, m.conversation_id, m.kind, m.text, m.payload, m.attempts, u.chat_id",
    )
    .bind(tenant)
    .bind(end_user)
    .bind(lease_ms)
    .bind(pace_ms)
    .fetch_optional(db)
    .await?)
}

/// Why [`claim_next`] found nothing: the chat's oldest undelivered message, if any.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct QueueHead {
    pub delivery_status: String,
    pub lease_until: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the chat's pacing lets the next message go.
    pub next_send_at: Option<DateTime<Utc>>,
    pub db_now: DateTime<Utc>,
}

pub async fn queue_head(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    end_user: EndUserId,
) -> Result<Option<QueueHead>> {
    Ok(sqlx::query_as(
        "select delivery_status, lease_until, next_attempt_at,
            (select next_send_at from chat_pacing p where p.tenant_id = $1 and p.end_user_id = $2)
                as next_send_at,
            now() as db_now
         from messages
         where tenant_id = $1 and end_user_id = $2 and delivery_status in ('pending', 'sending')
         order by id limit 1",
    )
    .bind(tenant)
    .bind(end_user)
    .fetch_optional(db)
    .await?)
}

/// The claim a delivery outcome belongs to: the message and its attempt number. An
/// outcome is recorded only while that claim still holds (`sending`, same attempt) — a
/// worker whose lease ran out mid-send, and whose message another worker took over, must
/// not overwrite that worker's outcome.
#[derive(Clone, Copy, Debug)]
pub struct ClaimRef {
    pub id: MessageId,
    pub attempts: i32,
}

impl Claimed {
    /// The claim its outcome is recorded under.
    pub fn claim(&self) -> ClaimRef {
        ClaimRef {
            id: self.id,
            attempts: self.attempts,
        }
    }
}

/// Records a message as sent; the chat's next message waits `pace_ms` from now (the
/// spacing counts from Telegram's answer, however long the send took). False: the claim
/// no longer held, nothing was recorded.
pub async fn mark_sent(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    claim: ClaimRef,
    telegram_message_id: i64,
    pace_ms: i64,
) -> Result<bool> {
    // The pacing upsert runs whether or not the outer select reads it (a data-modifying
    // statement in WITH always runs), on the row `sent` returned, if any.
    let done: i64 = sqlx::query_scalar(
        "with sent as (
            update messages set delivery_status = 'sent', telegram_message_id = $3,
                sent_at = now(), delivery_error = null, lease_until = null, next_attempt_at = null
            where tenant_id = $1 and id = $2 and delivery_status = 'sending' and attempts = $5
            returning end_user_id
         ), pace as (
            insert into chat_pacing (tenant_id, end_user_id, next_send_at)
            select $1, end_user_id, now() + make_interval(secs => $4::float8 / 1000) from sent
            where $4 > 0
            on conflict (tenant_id, end_user_id) do update
               set next_send_at = greatest(chat_pacing.next_send_at, excluded.next_send_at)
         )
         select count(*) from sent",
    )
    .bind(tenant)
    .bind(claim.id)
    .bind(telegram_message_id)
    .bind(pace_ms)
    .bind(claim.attempts)
    .fetch_one(db)
    .await?;
    Ok(done > 0)
}

/// Records a message as failed for good. False: the claim no longer held.
pub async fn mark_failed(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    claim: ClaimRef,
    error: &str,
) -> Result<bool> {
    Ok(sqlx::query(
        "update messages set delivery_status = 'failed', delivery_error = $3, lease_until = null,
            next_attempt_at = null
         where tenant_id = $1 and id = $2 and delivery_status = 'sending' and attempts = $4",
    )
    .bind(tenant)
    .bind(claim.id)
    .bind(error)
    .bind(claim.attempts)
    .execute(db)
    .await?
    .rows_affected()
        > 0)
}

/// Puts a message back to `pending` until `at`, keeping the error for display. False: the
/// claim no longer held.
pub async fn mark_retry(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    claim: ClaimRef,
    at: DateTime<Utc>,
    error: &str,
) -> Result<bool> {
    Ok(sqlx::query(
        "update messages set delivery_status = 'pending', next_attempt_at = $3,
            delivery_error = $4, lease_until = null
         where tenant_id = $1 and id = $2 and delivery_status = 'sending' and attempts = $5",
    )
    .bind(tenant)
    .bind(claim.id)
    .bind(at)
    .bind(error)
    .bind(claim.attempts)
    .execute(db)
    .await?
    .rows_affected()
        > 0)
}

/// Puts a failed message back in the queue (the operator's "retry").
pub async fn requeue_failed(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: MessageId,
) -> Result<bool> {
    let done = sqlx::query(
        "update messages set delivery_status = 'pending', next_attempt_at = null,
            attempts = 0
         where tenant_id = $1 and id = $2 and delivery_status = 'failed'",
    )
    .bind(tenant)
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An end user's latest messages across conversations, oldest first.
pub async fn recent_for_end_user(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    end_user: EndUserId,
    limit: i64,
) -> Result<Vec<MessageRow>> {
    let mut rows: Vec<MessageRow> = sqlx::query_as(&format!(
        "select {COLUMNS} from messages where tenant_id = $1 and end_user_id = $2
         order by id desc limit $3"
    ))
    .bind(tenant)
    .bind(end_user)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.reverse();
    Ok(rows)
}
