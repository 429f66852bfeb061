//! Conversations and their state.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use switchboard_core::conversation::ConvState;
use switchboard_core::{
    BotId, ConvStatus, ConversationId, EndUserId, HandoverReason, TenantId, UserId,
};

use crate::error::OptionExt;
use crate::Result;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Conversation {
    pub id: ConversationId,
    pub bot_id: BotId,
    pub end_user_id: EndUserId,
    #[sqlx(try_from = "String")]
    pub status: ConvStatus,
    pub assignee_id: Option<UserId>,
    pub handover_reason: Option<String>,
    pub resolution: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub waiting_since: Option<DateTime<Utc>>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub last_message_at: DateTime<Utc>,
    pub is_test: bool,
    /// The user's 1–5 rating after closing, if asked and given.
    pub rating: Option<i16>,
}

impl Conversation {
    pub fn state(&self) -> ConvState {
        ConvState {
            status: self.status,
            assignee: self.assignee_id,
        }
    }
}

const COLUMNS: &str = "id, bot_id, end_user_id, status, assignee_id, handover_reason, resolution,
    opened_at, waiting_since, assigned_at, closed_at, last_message_at, is_test, rating";

/// The end user's open conversation, locked for the rest of the transaction.
pub async fn open_for_user_locked(
    conn: &mut PgConnection,
    tenant: TenantId,
    end_user: EndUserId,
) -> Result<Option<Conversation>> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from conversations
         where tenant_id = $1 and end_user_id = $2 and status <> 'closed'
         for update"
    ))
    .bind(tenant)
    .bind(end_user)
    .fetch_optional(conn)
    .await?)
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    bot: BotId,
    end_user: EndUserId,
) -> Result<Conversation> {
    Ok(sqlx::query_as(&format!(
        "insert into conversations (tenant_id, id, bot_id, end_user_id, status)
         values ($1, $2, $3, $4, 'bot') returning {COLUMNS}"
    ))
    .bind(tenant)
    .bind(ConversationId::new())
    .bind(bot)
    .bind(end_user)
    .fetch_one(db)
    .await?)
}

pub async fn get(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: ConversationId,
) -> Result<Conversation> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from conversations where tenant_id = $1 and id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await?
    .found()
}

pub async fn get_locked(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: ConversationId,
) -> Result<Conversation> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from conversations where tenant_id = $1 and id = $2 for update"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .found()
}

/// Moves a conversation to a new state, stamping the matching timestamps.
pub async fn set_state(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: ConversationId,
    to: ConvState,
    handover: Option<HandoverReason>,
    actor: Option<UserId>,
    resolution: Option<&str>,
) -> Result<Conversation> {
    sqlx::query_as(&format!(
        "update conversations set
            status = $3,
            assignee_id = $4,
            handover_reason = coalesce($5, handover_reason),
            waiting_since = case when $3 = 'waiting' and status <> 'waiting' then now()
                                 else waiting_since end,
            assigned_at = case when $3 = 'assigned' and assignee_id is distinct from $4 then now()
                               else assigned_at end,
            closed_at = case when $3 = 'closed' then now() else null end,
            closed_by = case when $3 = 'closed' then $6 else null end,
            resolution = case when $3 = 'closed' then $7 else resolution end
         where tenant_id = $1 and id = $2 returning {COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(to.status.as_str())
    .bind(to.assignee)
    .bind(handover.map(|h| h.as_str()))
    .bind(actor)
    .bind(resolution)
    .fetch_optional(db)
    .await?
    .found()
}

/// Notes activity (a message) on the conversation.
pub async fn touch(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: ConversationId,
    operator_replied: bool,
) -> Result<()> {
    sqlx::query(
        "update conversations set last_message_at = now(),
            first_response_at = case when $3 and first_response_at is null then now()
                                     else first_response_at end
         where tenant_id = $1 and id = $2",
    )
    .bind(tenant)
    .bind(id)
    .bind(operator_replied)
    .execute(db)
    .await?;
    Ok(())
}

/// A conversation with its end user, for lists.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConversationListItem {
    pub id: ConversationId,
    #[sqlx(try_from = "String")]
    pub status: ConvStatus,
    pub assignee_id: Option<UserId>,
    pub handover_reason: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub waiting_since: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub last_message_at: DateTime<Utc>,
    pub end_user_id: EndUserId,
    pub telegram_user_id: i64,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: Option<String>,
    pub is_blocked: bool,
    /// Test traffic from the panel's "Try it" chat.
    pub is_test: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ConversationFilter {
    pub status: Option<ConvStatus>,
    pub assignee: Option<UserId>,
    pub limit: i64,
    /// Keyset cursor: (last_message_at, id) of the last item of the previous page.
    pub before: Option<(DateTime<Utc>, ConversationId)>,
    /// Leave out the conversations of *Try it*.
    pub real_only: bool,
}

/// Conversations, most recently active first (ties by id), a page after the keyset
/// cursor. The query is built for the filters given, so each shape walks its own index
/// (status, assignee, or neither) in this order and stops at the page.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    f: &ConversationFilter,
) -> Result<Vec<ConversationListItem>> {
    let mut qb = QueryBuilder::<Postgres>::new(
        "with page as (select c.* from conversations c where c.tenant_id = ",
    );
    qb.push_bind(tenant);
    if let Some(status) = f.status {
        qb.push(" and c.status = ").push_bind(status.as_str());
    }
    if let Some(assignee) = f.assignee {
        qb.push(" and c.assignee_id = ").push_bind(assignee);
    }
    if f.real_only {
        qb.push(" and not c.is_test");
    }
    if let Some((at, id)) = f.before {
        qb.push(" and (c.last_message_at < ")
            .push_bind(at)
            .push(" or (c.last_message_at = ")
            .push_bind(at)
            .push(" and c.id > ")
            .push_bind(id)
            .push("))");
    }
    qb.push(" order by c.last_message_at desc, c.id limit ")
        .push_bind(f.limit)
        .push(
            ")
         select c.id, c.status, c.assignee_id, c.handover_reason, c.opened_at, c.waiting_since,
                c.closed_at, c.last_message_at, c.end_user_id, u.telegram_user_id, u.username,
                u.first_name, u.last_name, u.is_blocked, c.is_test
         from page c
         join end_users u on u.tenant_id = c.tenant_id and u.id = c.end_user_id
         order by c.last_message_at desc, c.id",
        );
    Ok(qb.build_query_as().fetch_all(db).await?)
}

/// The end user's open conversation, if any (not locked).
pub async fn open_for_user(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    end_user: EndUserId,
) -> Result<Option<Conversation>> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from conversations where tenant_id = $1 and end_user_id = $2 and status <> 'closed'"
    ))
    .bind(tenant)
    .bind(end_user)
    .fetch_optional(db)
    .await?)
}
