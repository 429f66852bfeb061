//! What the operator desk reads: the queues across the tenants an operator belongs to
//! (always restricted to those tenants), counters, a user's history, notes, canned
//! responses.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use switchboard_core::{ConversationId, EndUserId, TenantId, UserId};

use crate::error::OptionExt;
use crate::{DbError, Result};

/// Which queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    /// Waiting for an operator, oldest first.
    Waiting,
    /// Assigned to the viewer.
    Mine,
    /// Assigned to someone else (only in tenants where the viewer is an admin).
    Others,
    /// Closed, most recent first.
    Closed,
}

impl Tab {
    pub fn parse(s: &str) -> Option<Tab> {
        match s {
            "waiting" => Some(Tab::Waiting),
            "mine" => Some(Tab::Mine),
            "others" => Some(Tab::Others),
            "closed" => Some(Tab::Closed),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Tab::Waiting => "waiting",
            Tab::Mine => "mine",
            Tab::Others => "others",
            Tab::Closed => "closed",
        }
    }
}

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct QueueItem {
    pub id: ConversationId,
    pub tenant_id: TenantId,
    pub tenant_slug: String,
    pub tenant_name: String,
    pub status: String,
    pub assignee_id: Option<UserId>,
    pub assignee_name: Option<String>,
    pub handover_reason: Option<String>,
    pub waiting_since: Option<DateTime<Utc>>,
    pub last_message_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub is_test: bool,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub is_blocked: bool,
    /// The last message of the user or an operator (the bot's texts say little).
    pub last_text: Option<String>,
    pub last_direction: Option<String>,
}

/// The conversations of one queue in `tenants` (the viewer's), with an optional search
/// (user names and message texts). "Try it" conversations are an admin's tests: they
/// never wait in the operators' queues (the closed tab keeps them, labelled).
///
/// Each tab is its own query shape, read per tenant along an index in the tab's order
/// and cut at `limit` there (a lateral join), so a tenant with a million conversations
/// costs what its first page costs. A search keeps, among the tab's first 2,000
/// conversations per tenant, those whose person's name or messages match (full text, each
/// word as a prefix); when that is less than a page, it reads the trigram and full-text
/// indexes instead (the tab's conversations of the newest 2,000 matching messages).
pub async fn queue(
    db: &sqlx::PgPool,
    tenants: &[TenantId],
    admin_tenants: &[TenantId],
    viewer: UserId,
    tab: Tab,
    search: Option<&str>,
    limit: i64,
) -> Result<Vec<QueueItem>> {
    let scope: Vec<uuid::Uuid> = match tab {
        // Others' conversations are for the admins of their tenant.
        Tab::Others => admin_tenants.iter().map(|t| t.0).collect(),
        _ => tenants.iter().map(|t| t.0).collect(),
    };
    let order = match tab {
        Tab::Waiting => "c.waiting_since, c.id",
        _ => "c.last_message_at desc, c.id",
    };
    let condition = |qb: &mut QueryBuilder<'_, Postgres>| {
        match tab {
            Tab::Waiting => qb.push("c.status = 'waiting' and not c.is_test"),
            Tab::Mine => qb
                .push("c.status = 'assigned' and not c.is_test and c.assignee_id = ")
                .push_bind(viewer),
            Tab::Others => qb
                .push("c.status = 'assigned' and not c.is_test and c.assignee_id <> ")
                .push_bind(viewer),
            Tab::Closed => qb.push("c.status = 'closed'"),
        };
    };
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    let Some(q) = search else {
        // A list reads as the viewer's organizations (row-level security). A search does
        // not: its name and full-text operators are not leakproof, so under a policy
        // PostgreSQL could not use their indexes ahead of it.
        let mut qb = QueryBuilder::<Postgres>::new("with picked as (");
        per_tenant(&mut qb, scope);
        qb.push("select c.* from conversations c where c.tenant_id = scope.tenant_id and ");
        condition(&mut qb);
        qb.push(format_args!(" order by {order} limit "))
            .push_bind(limit)
            .push(") c");
        push_page(&mut qb, order, limit);
        let mut tx = crate::begin_desk(db, tenants).await?;
        let items = qb.build_query_as().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        return Ok(items);
    };
    let pattern = format!("%{}%", crate::escape_like(q));
    let words = prefix_query(q);
    // First pass: the tab's newest (or longest-waiting) 2,000 conversations per tenant,
    // in the tab's order, kept when the name or a message matches — an exact top of the
    // tab within that window, and enough for a common name or word.
    let mut qb = QueryBuilder::<Postgres>::new("with picked as (");
    per_tenant(&mut qb, scope.clone());
    qb.push(
        "select c.* from (select c.* from conversations c
                          where c.tenant_id = scope.tenant_id and ",
    );
    condition(&mut qb);
    qb.push(format_args!(
        " order by {order} limit {RECENT_CONVERSATIONS}) c
         join end_users u on u.tenant_id = c.tenant_id and u.id = c.end_user_id
         where ({NAMES} ilike "
    ))
    .push_bind(pattern.clone());
    if let Some(words) = &words {
        qb.push(
            " or exists (select 1 from messages m
                         where m.tenant_id = c.tenant_id and m.conversation_id = c.id
                           and m.search @@ to_tsquery('russian', ",
        )
        .push_bind(words.clone())
        .push("))");
    }
    qb.push(format_args!(") order by {order} limit "))
        .push_bind(limit)
        .push(") c");
    push_page(&mut qb, order, limit);
    let items: Vec<QueueItem> = qb.build_query_as().fetch_all(db).await?;
    if items.len() as i64 >= limit {
        return Ok(items);
    }
    // Second pass, for what is rare: from the indexes — the people whose name matches
    // (trigrams), and the tab's conversations of the newest 2,000 matching messages (full
    // text; the order is an expression, so the full-text index finds the matches).
    let mut qb = QueryBuilder::<Postgres>::new("with picked as (");
    per_tenant(&mut qb, scope.clone());
    qb.push("select c.* from conversations c where c.tenant_id = scope.tenant_id and ");
    condition(&mut qb);
    qb.push(format_args!(
        " and c.end_user_id in (select u.id from end_users u
             where u.tenant_id = scope.tenant_id and {NAMES} ilike "
    ))
    .push_bind(pattern)
    .push(format_args!(") order by {order} limit "))
    .push_bind(limit)
    .push(") c");
    if let Some(words) = &words {
        qb.push(" union ");
        per_tenant(&mut qb, scope);
        qb.push(
            "select c.* from messages m
             join conversations c on c.tenant_id = m.tenant_id and c.id = m.conversation_id
             where m.tenant_id = scope.tenant_id
               and m.search @@ to_tsquery('russian', ",
        )
        .push_bind(words.clone())
        .push(") and ");
        condition(&mut qb);
        qb.push(" order by m.created_at + interval '0 seconds' desc limit 2000) c");
    }
    push_page(&mut qb, order, limit);
    Ok(qb.build_query_as().fetch_all(db).await?)
}

/// A search's words as a full-text query where each word may be the start of one
/// ("посыл" finds "посылку", as a search box is typed): `посыл:* & мо:*`. Only letters and
/// digits pass, at most eight words; `None` when none are left.
fn prefix_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

/// How many of a tab's first conversations (per tenant) a search reads before it turns
/// to the indexes.
const RECENT_CONVERSATIONS: i64 = 2_000;

/// Opens a query run once per tenant of `scope` (a lateral subquery that sees the
/// tenant as `scope.tenant_id`; the caller writes it and closes it with `) c`).
fn per_tenant(qb: &mut QueryBuilder<'_, Postgres>, scope: Vec<uuid::Uuid>) {
    qb.push("select c.* from unnest(")
        .push_bind(scope)
        .push("::uuid[]) as scope(tenant_id) cross join lateral (");
}

/// The page of a queue: `qb` holds the opening of `with picked as (…`, the conversations
/// picked; this adds the tenant, the person, the assignee and the last message.
fn push_page(qb: &mut QueryBuilder<'_, Postgres>, order: &str, limit: i64) {
    // The page is cut before the joins, so only its own rows are completed.
    qb.push(format_args!(
        "), page as (select c.* from picked c order by {order} limit "
    ))
    .push_bind(limit)
    .push(format_args!(
        ")
         select c.id, c.tenant_id, t.slug as tenant_slug, t.name as tenant_name, c.status,
                c.assignee_id, nullif(a.display_name, '') as assignee_name, c.handover_reason,
                c.waiting_since, c.last_message_at, c.closed_at, c.is_test,
                u.first_name, u.last_name, u.username, u.is_blocked,
                lm.text as last_text, lm.direction as last_direction
         from page c
         join tenants t on t.id = c.tenant_id
         join end_users u on u.tenant_id = c.tenant_id and u.id = c.end_user_id
         left join users a on a.id = c.assignee_id
         left join lateral (
            -- The last thing said: a button pressed or a command is the preview only when
            -- none of the last 20 messages was written.
            select r.text, r.direction from (
                select m.id, m.text, m.direction, m.kind from messages m
                where m.tenant_id = c.tenant_id and m.conversation_id = c.id
                  and m.sender in ('user', 'operator')
                order by m.id desc limit 20
            ) r
            order by r.kind in ('callback', 'command'), r.id desc limit 1
         ) lm on true
         order by {order}
         limit "
    ))
    .push_bind(limit);
}

/// An end user's searchable names, as the trigram index has them.
const NAMES: &str =
    "(u.first_name || ' ' || coalesce(u.last_name, '') || ' ' || coalesce(u.username, ''))";

#[derive(Clone, Debug, Default, sqlx::FromRow, serde::Serialize)]
pub struct Counts {
    pub waiting: i64,
    pub mine: i64,
    pub others: i64,
}

/// The queue's counters, read as the viewer's organizations (row-level security).
pub async fn counts(
    db: &sqlx::PgPool,
    tenants: &[TenantId],
    admin_tenants: &[TenantId],
    viewer: UserId,
) -> Result<Counts> {
    let ids: Vec<uuid::Uuid> = tenants.iter().map(|t| t.0).collect();
    let admin_ids: Vec<uuid::Uuid> = admin_tenants.iter().map(|t| t.0).collect();
    let mut tx = crate::begin_desk(db, tenants).await?;
    // One count per index: the waiting ones (a partial index), the viewer's, others'.
    let counts = sqlx::query_as(
        "select
            (select count(*) from conversations
             where tenant_id = any($1) and status = 'waiting' and not is_test) as waiting,
            (select count(*) from conversations
             where tenant_id = any($1) and assignee_id = $2 and status = 'assigned'
               and not is_test) as mine,
            (select count(*) from conversations
             where tenant_id = any($3) and status = 'assigned' and assignee_id <> $2
               and not is_test) as others",
    )
    .bind(&ids)
    .bind(viewer)
    .bind(&admin_ids)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(counts)
}

/// The end user as the desk's card shows them.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct UserCard {
    pub id: EndUserId,
    pub telegram_user_id: i64,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: Option<String>,
    pub language_code: Option<String>,
    pub is_blocked: bool,
    pub notes: String,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub conversations: i64,
}

pub async fn user_card(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    end_user: EndUserId,
) -> Result<UserCard> {
    sqlx::query_as(
        "select u.id, u.telegram_user_id, u.username, u.first_name, u.last_name, u.language_code,
                u.is_blocked, u.notes, u.first_seen_at, u.last_seen_at,
                (select count(*) from conversations c where c.tenant_id = u.tenant_id and c.end_user_id = u.id) as conversations
         from end_users u where u.tenant_id = $1 and u.id = $2",
    )
    .bind(tenant)
    .bind(end_user)
    .fetch_optional(db)
    .await?
    .found()
}

pub async fn set_user_notes(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    end_user: EndUserId,
    notes: &str,
) -> Result<()> {
    sqlx::query("update end_users set notes = $3 where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(end_user)
        .bind(notes)
        .execute(db)
        .await?;
    Ok(())
}

/// The user's other conversations, newest first.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct PastConversation {
    pub id: ConversationId,
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub rating: Option<i16>,
}

pub async fn other_conversations(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    end_user: EndUserId,
    except: ConversationId,
) -> Result<Vec<PastConversation>> {
    Ok(sqlx::query_as(
        "select id, status, opened_at, closed_at, resolution, rating from conversations
         where tenant_id = $1 and end_user_id = $2 and id <> $3
         order by opened_at desc limit 20",
    )
    .bind(tenant)
    .bind(end_user)
    .bind(except)
    .fetch_all(db)
    .await?)
}

// Notes ---------------------------------------------------------------------------------

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct Note {
    pub id: i64,
    pub author_id: Option<UserId>,
    pub author: Option<String>,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

pub async fn add_note(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    conversation: ConversationId,
    author: UserId,
    text: &str,
) -> Result<()> {
    sqlx::query("insert into conversation_notes (tenant_id, conversation_id, author_id, text) values ($1, $2, $3, $4)")
        .bind(tenant)
        .bind(conversation)
        .bind(author)
        .bind(text)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn notes(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    conversation: ConversationId,
) -> Result<Vec<Note>> {
    Ok(sqlx::query_as(
        "select n.id, n.author_id, coalesce(nullif(u.display_name, ''), u.email) as author, n.text, n.created_at
         from conversation_notes n left join users u on u.id = n.author_id
         where n.tenant_id = $1 and n.conversation_id = $2 order by n.id",
    )
    .bind(tenant)
    .bind(conversation)
    .fetch_all(db)
    .await?)
}

// Canned responses --------------------------------------------------------------------------

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct Canned {
    pub id: uuid::Uuid,
    pub shortcut: String,
    pub title: String,
    pub text: String,
    pub updated_at: DateTime<Utc>,
}

pub async fn canned(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Vec<Canned>> {
    Ok(sqlx::query_as(
        "select id, shortcut, title, text, updated_at from canned_responses where tenant_id = $1 order by shortcut",
    )
    .bind(tenant)
    .fetch_all(db)
    .await?)
}

pub async fn get_canned(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: uuid::Uuid,
) -> Result<Canned> {
    sqlx::query_as("select id, shortcut, title, text, updated_at from canned_responses where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .fetch_optional(db)
        .await?
        .found()
}

pub async fn upsert_canned(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: Option<uuid::Uuid>,
    shortcut: &str,
    title: &str,
    text: &str,
) -> Result<Canned> {
    match id {
        Some(id) => sqlx::query_as(
            "update canned_responses set shortcut = $3, title = $4, text = $5 where tenant_id = $1 and id = $2
             returning id, shortcut, title, text, updated_at",
        )
        .bind(tenant)
        .bind(id)
        .bind(shortcut)
        .bind(title)
        .bind(text)
        .fetch_optional(db)
        .await?
        .found(),
        None => Ok(sqlx::query_as(
            "insert into canned_responses (tenant_id, id, shortcut, title, text) values ($1, $2, $3, $4, $5)
             returning id, shortcut, title, text, updated_at",
        )
        .bind(tenant)
        .bind(uuid::Uuid::now_v7())
        .bind(shortcut)
        .bind(title)
        .bind(text)
        .fetch_one(db)
        .await?),
    }
}

pub async fn delete_canned(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: uuid::Uuid,
) -> Result<()> {
    let done = sqlx::query("delete from canned_responses where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

// The conversation's timeline --------------------------------------------------------------

/// What people did to a conversation (claims, assignments, closing, …), for the timeline.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct TimelineEvent {
    pub id: i64,
    pub kind: String,
    /// The member who acted, if a member did.
    pub actor: Option<String>,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

pub async fn timeline_events(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    conversation: ConversationId,
) -> Result<Vec<TimelineEvent>> {
    Ok(sqlx::query_as(
        "select e.id, e.kind,
                case when e.actor_type in ('user', 'api')
                     then (select coalesce(nullif(u.display_name, ''), u.email) from users u
                           where u.id::text = e.actor_id) end as actor,
                e.data, e.created_at
         from events e
         where e.tenant_id = $1 and e.conversation_id = $2
           and e.kind in ('conversation.handover', 'conversation.claimed', 'conversation.assigned',
                          'conversation.released', 'conversation.closed', 'conversation.reopened',
                          'conversation.rated', 'end_user.blocked_bot', 'end_user.unblocked_bot')
         order by e.id limit 500",
    )
    .bind(tenant)
    .bind(conversation)
    .fetch_all(db)
    .await?)
}

/// Titles of rules by id (for "matched rule" labels).
pub async fn rule_titles(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    ids: &[uuid::Uuid],
) -> Result<Vec<(uuid::Uuid, String)>> {
    Ok(
        sqlx::query_as("select id, title from answer_rules where tenant_id = $1 and id = any($2)")
            .bind(tenant)
            .bind(ids)
            .fetch_all(db)
            .await?,
    )
}

/// Display names of users by id (operators who wrote).
pub async fn user_names(
    db: impl PgExecutor<'_>,
    ids: &[uuid::Uuid],
) -> Result<Vec<(uuid::Uuid, String)>> {
    Ok(sqlx::query_as(
        "select id, coalesce(nullif(display_name, ''), email) from users where id = any($1)",
    )
    .bind(ids)
    .fetch_all(db)
    .await?)
}

/// Who can take conversations of the tenant (for "assign to").
pub async fn assignable(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
) -> Result<Vec<(uuid::Uuid, String)>> {
    Ok(sqlx::query_as(
        "select u.id, coalesce(nullif(u.display_name, ''), u.email) from memberships m
         join users u on u.id = m.user_id
         where m.tenant_id = $1 order by 2",
    )
    .bind(tenant)
    .fetch_all(db)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_become_a_safe_prefix_query() {
        assert_eq!(prefix_query("Посыл").as_deref(), Some("посыл:*"));
        assert_eq!(
            prefix_query("где моя посылка?!").as_deref(),
            Some("где:* & моя:* & посылка:*")
        );
        assert_eq!(
            prefix_query("a:* | !b & 'c'").as_deref(),
            Some("a:* & b:* & c:*"),
            "operators and quotes never reach the query"
        );
        assert_eq!(prefix_query(" ,.;- "), None);
    }
}
