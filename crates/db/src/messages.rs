//! Stored messages, inbound and outbound, and the delivery state of outbound ones.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, QueryBuilder};
use switchboard_core::{
    ConversationId, DeliveryStatus, Direction, EndUserId, MessageId, RuleId, TenantId, UserId,
};

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
        "with m as (insert into messages (tenant_id, conversation_id, end_user_id, direction,
            sender, operator_id, kind, text, payload, rule_id) ",
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
            .push_bind(m.rule_id);
    });
    qb.push(
        " returning tenant_id, id, end_user_id, created_at), d as (
            insert into deliveries (tenant_id, message_id, end_user_id, created_at)
            select tenant_id, id, end_user_id, created_at from m
         )
         select id from m order by id",
    );
    let ids: Vec<MessageId> = qb.build_query_scalar().fetch_all(conn).await?;
    Ok(ids)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub direction: Direction,
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
    pub delivery_status: Option<DeliveryStatus>,
    pub delivery_error: Option<String>,
    pub attempts: i32,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A message with its delivery (outbound ones): select `{COLUMNS} from {FROM}`.
const COLUMNS: &str = "m.id, m.conversation_id, m.direction, m.sender, m.operator_id, m.kind,
    m.text, m.payload, m.rule_id, m.score, m.match,
    coalesce(d.telegram_message_id, m.telegram_message_id) as telegram_message_id,
    d.status as delivery_status, d.error as delivery_error, coalesce(d.attempts, 0) as attempts,
    d.sent_at, m.created_at";
pub(crate) const FROM: &str = "messages m
    left join deliveries d on d.tenant_id = m.tenant_id and d.message_id = m.id";

/// A conversation's messages in order, after `after` (keyset), at most `limit`.
pub async fn list_for_conversation(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    conversation: ConversationId,
    after: Option<MessageId>,
    limit: i64,
) -> Result<Vec<MessageRow>> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from {FROM}
         where m.tenant_id = $1 and m.conversation_id = $2 and ($3::bigint is null or m.id > $3)
         order by m.id limit $4"
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
        "select {COLUMNS} from {FROM} where m.tenant_id = $1 and m.id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await?
    .found()
}

// Delivery ------------------------------------------------------------------------------

/// Puts a failed message back in the queue (the operator's "retry").
pub async fn requeue_failed(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: MessageId,
) -> Result<bool> {
    let done = sqlx::query(
        "update deliveries set status = 'pending', next_attempt_at = null, attempts = 0
         where tenant_id = $1 and message_id = $2 and status = 'failed'",
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
        "select {COLUMNS} from {FROM} where m.tenant_id = $1 and m.end_user_id = $2
         order by m.id desc limit $3"
    ))
    .bind(tenant)
    .bind(end_user)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.reverse();
    Ok(rows)
}
