//! Retention (deleting what is older than a tenant keeps) and erasing everything about one end user.

use super::*;

/// What a retention pass deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    pub messages: u64,
    pub events: u64,
    pub raw_updates: u64,
    /// Conversations left empty (their notes and files with them).
    pub conversations: u64,
    /// End users not seen within the retention, with no conversation left.
    pub end_users: u64,
}

impl Purged {
    pub fn add(&mut self, other: &Purged) {
        self.messages += other.messages;
        self.events += other.events;
        self.raw_updates += other.raw_updates;
        self.conversations += other.conversations;
        self.end_users += other.end_users;
    }
}

/// Deletes a tenant's messages and events older than its retention and raw updates older
/// than the raw retention, in batches (short transactions, no long locks); then what that
/// left behind about people: conversations not open for an operator whose messages are all
/// gone (with their notes and files), and end users not seen within the retention who
/// have no conversation left. Erasure records (`end_user.erased`) are kept: they hold no
/// personal data and prove a request was met. Statistics keep their numbers.
pub async fn enforce_retention(
    pool: &sqlx::PgPool,
    tenant: TenantId,
    batch: i64,
) -> Result<Purged> {
    let (days, raw_days): (Option<i32>, i32) = sqlx::query_as(
        "select retention_days, raw_retention_days from bot_settings where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(pool)
    .await?
    .unwrap_or((None, 30));
    let raw_updates = delete_in_batches(
        pool,
        "delete from inbox where ctid = any(array(
            select ctid from inbox where tenant_id = $1
              and received_at < now() - make_interval(days => $2) limit $3))",
        tenant,
        raw_days,
        batch,
    )
    .await?;
    let Some(days) = days else {
        return Ok(Purged {
            raw_updates,
            ..Purged::default()
        });
    };
    // Replies still waiting to be delivered are never deleted.
    let messages = delete_in_batches(
        pool,
        "delete from messages where tenant_id = $1 and id = any(array(
            select id from messages where tenant_id = $1
              and created_at < now() - make_interval(days => $2)
              and not exists (select 1 from deliveries d
                              where d.tenant_id = $1 and d.message_id = messages.id
                                and d.status in ('pending', 'sending'))
            limit $3))",
        tenant,
        days,
        batch,
    )
    .await?;
    let events = delete_in_batches(
        pool,
        "delete from events where tenant_id = $1 and id = any(array(
            select id from events where tenant_id = $1
              and created_at < now() - make_interval(days => $2)
              and kind <> 'end_user.erased' limit $3))",
        tenant,
        days,
        batch,
    )
    .await?;
    let conversations = delete_in_batches(
        pool,
        "delete from conversations where tenant_id = $1 and id = any(array(
            select c.id from conversations c where c.tenant_id = $1
              and c.status in ('bot', 'closed')
              and c.last_message_at < now() - make_interval(days => $2)
              and not exists (select 1 from messages m
                              where m.tenant_id = $1 and m.conversation_id = c.id)
            limit $3))",
        tenant,
        days,
        batch,
    )
    .await?;
    let end_users = delete_in_batches(
        pool,
        "delete from end_users where tenant_id = $1 and id = any(array(
            select u.id from end_users u where u.tenant_id = $1
              and u.last_seen_at < now() - make_interval(days => $2)
              and not exists (select 1 from conversations c
                              where c.tenant_id = $1 and c.end_user_id = u.id)
            limit $3))",
        tenant,
        days,
        batch,
    )
    .await?;
    Ok(Purged {
        messages,
        events,
        raw_updates,
        conversations,
        end_users,
    })
}

/// Runs `sql` (`$1` tenant, `$2` days, `$3` batch size: one batch) until a batch deletes
/// fewer rows than its size; returns the rows deleted.
pub(super) async fn delete_in_batches(
    pool: &sqlx::PgPool,
    sql: &str,
    tenant: TenantId,
    days: i32,
    batch: i64,
) -> Result<u64> {
    let mut total = 0;
    loop {
        let n = sqlx::query(sql)
            .bind(tenant)
            .bind(days)
            .bind(batch)
            .execute(pool)
            .await?
            .rows_affected();
        total += n;
        if n < batch as u64 {
            return Ok(total);
        }
    }
}

/// What an erasure removed.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Erased {
    pub messages: u64,
    pub conversations: u64,
    pub events: u64,
    pub raw_updates: u64,
}

/// Removes everything about one end user: messages, conversations (with their notes and
/// files), events, raw updates and the user row. Aggregated statistics stay (they hold no
/// personal data). The caller logs the erasure in the same transaction.
pub async fn erase_end_user(
    conn: &mut PgConnection,
    tenant: TenantId,
    end_user: EndUserId,
) -> Result<Erased> {
    let (bot_id, telegram_user_id): (uuid::Uuid, i64) = sqlx::query_as(
        "select bot_id, telegram_user_id from end_users where tenant_id = $1 and id = $2 for update",
    )
    .bind(tenant)
    .bind(end_user)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(crate::DbError::NotFound)?;
    let mut erased = Erased::default();
    let tg = telegram_user_id.to_string();
    erased.raw_updates = sqlx::query(
        "delete from inbox where tenant_id = $1 and bot_id = $2 and (
            payload #>> '{message,from,id}' = $3 or payload #>> '{edited_message,from,id}' = $3
            or payload #>> '{callback_query,from,id}' = $3 or payload #>> '{my_chat_member,from,id}' = $3
            or payload #>> '{message,chat,id}' = $3)",
    )
    .bind(tenant)
    .bind(bot_id)
    .bind(&tg)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    erased.events = sqlx::query("delete from events where tenant_id = $1 and end_user_id = $2")
        .bind(tenant)
        .bind(end_user)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    erased.messages = sqlx::query("delete from messages where tenant_id = $1 and end_user_id = $2")
        .bind(tenant)
        .bind(end_user)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    // Events about the user's conversations that named no end user (desk actions).
    erased.events += sqlx::query(
        "delete from events e using conversations c
         where e.tenant_id = $1 and c.tenant_id = $1 and c.end_user_id = $2 and e.conversation_id = c.id",
    )
    .bind(tenant)
    .bind(end_user)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    erased.conversations =
        sqlx::query("delete from conversations where tenant_id = $1 and end_user_id = $2")
            .bind(tenant)
            .bind(end_user)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    sqlx::query("delete from end_users where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(end_user)
        .execute(&mut *conn)
        .await?;
    Ok(erased)
}
