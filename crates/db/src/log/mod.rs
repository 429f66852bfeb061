//! The tenant's log: messages (both ways) and events (actions of users, operators, the
//! API and the system) as one time line, filtered, searched (PostgreSQL full text,
//! Russian and English stems) and paged by keyset — newest first, stable under inserts.
//! Also retention and the erasure of an end user's data.

mod retention;

pub use retention::*;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use switchboard_core::{EndUserId, TenantId};

use crate::Result;

/// Kinds a message has in the log; every other kind is an event's.
pub const MESSAGE_IN: &str = "message.in";
pub const MESSAGE_OUT: &str = "message.out";
pub const COMMAND: &str = "message.command";
pub const BUTTON: &str = "message.button";
/// Platform events of the tenant's members that its log shows (sign-ins and account
/// security), from the day each joined; they belong to no tenant, so they come from
/// `platform_events`.
pub const ACCOUNT_KINDS: &[&str] = &[
    "login.succeeded",
    "logout",
    "password.changed",
    "password.reset",
    "oauth.linked",
];

/// A position in the log: the entry after which the next page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    /// `m` for messages, `e` for events, `p` for members' sign-ins.
    pub source: char,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.at.timestamp_micros(), self.source, self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut parts = s.split('.');
        let at = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
        // A forged cursor far outside PostgreSQL's range is no cursor.
        if !YEARS.contains(&chrono::Datelike::year(&at)) {
            return None;
        }
        let source = match parts.next()? {
            "m" => 'm',
            "e" => 'e',
            "p" => 'p',
            _ => return None,
        };
        let id = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Cursor { at, source, id })
    }
}

/// Years a date parameter or cursor may name: PostgreSQL's range and the arithmetic on
/// periods stay far away.
pub const YEARS: std::ops::RangeInclusive<i32> = 1000..=9999;

#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub end_user: Option<uuid::Uuid>,
    pub conversation: Option<uuid::Uuid>,
    /// `message.in`, `message.out`, `message.command`, `message.button` or an event kind
    /// (`conversation.handover`, …); a trailing `*` matches a prefix (`conversation.*`).
    pub kind: Option<String>,
    pub rule: Option<uuid::Uuid>,
    /// Messages the operator wrote and events the user caused.
    pub operator: Option<uuid::Uuid>,
    /// `pending`, `sending`, `sent` or `failed` (outbound messages only).
    pub delivery: Option<String>,
    /// Full-text search over message texts.
    pub q: Option<String>,
    pub after: Option<Cursor>,
    pub limit: i64,
}

impl LogFilter {
    /// The filter needs an index behind an operator PostgreSQL does not call leakproof —
    /// full text (`@@`), a rule in the event's data (`?`, `->>`), a kind prefix (`LIKE`) —
    /// which row-level security would not use ahead of its policy: such a page is read on
    /// the platform path, with its tenant filter, and every other page scoped to the tenant.
    pub fn needs_unleakproof_index(&self) -> bool {
        self.q.as_deref().is_some_and(|q| !q.trim().is_empty())
            || self.rule.is_some()
            || self.kind.as_deref().is_some_and(|k| k.ends_with('*'))
    }

    fn wants_messages(&self) -> bool {
        self.kind.as_deref().is_none_or(|k| {
            matches!(
                k,
                MESSAGE_IN | MESSAGE_OUT | COMMAND | BUTTON | "message*" | "*"
            )
        })
    }

    fn wants_events(&self) -> bool {
        self.delivery.is_none()
            && self.q.as_deref().is_none_or(|q| q.trim().is_empty())
            && self
                .kind
                .as_deref()
                .is_none_or(|k| !matches!(k, MESSAGE_IN | MESSAGE_OUT | COMMAND | BUTTON))
    }

    fn wants_sign_ins(&self) -> bool {
        self.wants_events()
            && self.end_user.is_none()
            && self.conversation.is_none()
            && self.rule.is_none()
            && self.kind.as_deref().is_none_or(|k| {
                ACCOUNT_KINDS.contains(&k)
                    || k.strip_suffix('*')
                        .is_some_and(|p| ACCOUNT_KINDS.iter().any(|a| a.starts_with(p)))
            })
    }
}

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct LogEntry {
    /// `m` or `e`, with `id` the message's or the event's id.
    pub source: String,
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub kind: String,
    /// For messages: user, bot, operator, system; for events: end_user, user, api, system.
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub conversation_id: Option<uuid::Uuid>,
    pub end_user_id: Option<uuid::Uuid>,
    pub end_user_name: Option<String>,
    pub text: String,
    pub rule_id: Option<uuid::Uuid>,
    pub rule_title: Option<String>,
    pub score: Option<f32>,
    pub delivery_status: Option<switchboard_core::DeliveryStatus>,
    pub delivery_error: Option<String>,
    pub data: Value,
    pub test: bool,
}

impl LogEntry {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            at: self.created_at,
            source: match self.source.as_str() {
                "m" => 'm',
                "p" => 'p',
                _ => 'e',
            },
            id: self.id,
        }
    }
}

/// The period and the page's cursor as bounds on `{alias}.created_at` (what lets an index
/// ordered by time bound the scan).
fn push_time_bounds(qb: &mut QueryBuilder<'_, Postgres>, alias: &str, f: &LogFilter) {
    if let Some(from) = f.from {
        qb.push(format!(" and {alias}.created_at >= "))
            .push_bind(from);
    }
    if let Some(to) = f.to {
        qb.push(format!(" and {alias}.created_at < ")).push_bind(to);
    }
    if let Some(c) = f.after {
        qb.push(format!(" and {alias}.created_at <= "))
            .push_bind(c.at);
    }
}

fn push_common(qb: &mut QueryBuilder<'_, Postgres>, alias: &str, source: &str, f: &LogFilter) {
    push_time_bounds(qb, alias, f);
    if let Some(c) = f.after {
        // Newest first: the next page is strictly before the cursor in
        // (created_at, source, id) order.
        qb.push(format!(
            " and ({alias}.created_at, '{source}'::text, {alias}.id) < ("
        ))
        .push_bind(c.at)
        .push(", ")
        .push_bind(c.source.to_string())
        .push("::text, ")
        .push_bind(c.id)
        .push(")");
    }
    if let Some(u) = f.end_user {
        qb.push(format!(" and {alias}.end_user_id = ")).push_bind(u);
    }
    if let Some(c) = f.conversation {
        qb.push(format!(" and {alias}.conversation_id = "))
            .push_bind(c);
    }
}

fn push_messages(qb: &mut QueryBuilder<'_, Postgres>, tenant: TenantId, f: &LogFilter) {
    qb.push(
        "(select 'm'::text as source, m.id, m.created_at,
                case when m.direction = 'out' then 'message.out'
                     when m.kind = 'command' then 'message.command'
                     when m.kind = 'callback' then 'message.button'
                     else 'message.in' end as kind,
                m.sender as actor_type, m.operator_id::text as actor_id,
                m.conversation_id, m.end_user_id, m.text, m.rule_id, m.score,
                d.status as delivery_status, d.error as delivery_error,
                jsonb_build_object('kind', m.kind, 'match', m.match, 'payload', m.payload,
                                   'update_id', m.update_id,
                                   'telegram_message_id',
                                   coalesce(d.telegram_message_id, m.telegram_message_id),
                                   'sent_at', d.sent_at, 'attempts', coalesce(d.attempts, 0)) as data
         from ",
    );
    qb.push(crate::messages::FROM).push(" where m.tenant_id = ");
    qb.push_bind(tenant);
    push_common(qb, "m", "m", f);
    match f.kind.as_deref() {
        Some(MESSAGE_IN) => {
            qb.push(" and m.direction = 'in'");
        }
        Some(MESSAGE_OUT) => {
            qb.push(" and m.direction = 'out'");
        }
        Some(COMMAND) => {
            qb.push(" and m.direction = 'in' and m.kind = 'command'");
        }
        Some(BUTTON) => {
            qb.push(" and m.direction = 'in' and m.kind = 'callback'");
        }
        _ => {}
    }
    if let Some(r) = f.rule {
        qb.push(" and m.rule_id = ").push_bind(r);
    }
    if let Some(o) = f.operator {
        qb.push(" and m.operator_id = ").push_bind(o);
    }
    if let Some(d) = &f.delivery {
        qb.push(" and m.direction = 'out' and d.status = ")
            .push_bind(d.clone());
    }
    // Failed deliveries are read newest first from their own index (a delivery's
    // created_at is its message's), however many there are among the messages.
    let failed = f.delivery.as_deref() == Some("failed");
    if failed {
        push_time_bounds(qb, "d", f);
    }
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        qb.push(" and m.search @@ websearch_to_tsquery('russian', ")
            .push_bind(q.to_string())
            .push(")");
    }
    qb.push(if failed {
        " order by d.created_at desc, d.message_id desc limit "
    } else {
        " order by m.created_at desc, m.id desc limit "
    })
    .push_bind(f.limit)
    .push(")");
}

fn push_events(qb: &mut QueryBuilder<'_, Postgres>, tenant: TenantId, f: &LogFilter) {
    qb.push(
        "(select 'e'::text as source, e.id, e.created_at, e.kind, e.actor_type, e.actor_id,
                e.conversation_id, e.end_user_id, ''::text as text,
                case when e.data ->> 'rule_id' ~ '^[0-9a-f-]{36}$' then (e.data ->> 'rule_id')::uuid end as rule_id,
                null::real as score, null::text as delivery_status, null::text as delivery_error,
                e.data
         from events e where e.tenant_id = ",
    );
    qb.push_bind(tenant);
    push_common(qb, "e", "e", f);
    push_kind(qb, "e", f);
    if let Some(r) = f.rule {
        qb.push(" and e.data ? 'rule_id' and (e.data ->> 'rule_id') = ")
            .push_bind(r.to_string());
    }
    if let Some(o) = f.operator {
        qb.push(" and e.actor_id = ").push_bind(o.to_string());
    }
    qb.push(" order by e.created_at desc, e.id desc limit ")
        .push_bind(f.limit)
        .push(")");
}

/// `kind` filter on an events-like source: an exact kind, or a prefix ending in `*`.
fn push_kind(qb: &mut QueryBuilder<'_, Postgres>, alias: &str, f: &LogFilter) {
    let Some(k) = f.kind.as_deref() else { return };
    if let Some(prefix) = k.strip_suffix('*') {
        qb.push(format!(" and {alias}.kind like "))
            .push_bind(format!("{}%", prefix.replace('%', "").replace('_', "\\_")));
    } else {
        qb.push(format!(" and {alias}.kind = "))
            .push_bind(k.to_string());
    }
}

fn push_sign_ins(qb: &mut QueryBuilder<'_, Postgres>, tenant: TenantId, f: &LogFilter) {
    qb.push(
        "(select 'p'::text as source, p.id, p.created_at, p.kind, 'user'::text as actor_type,
                p.user_id::text as actor_id, null::uuid as conversation_id, null::uuid as end_user_id,
                ''::text as text, null::uuid as rule_id, null::real as score,
                null::text as delivery_status, null::text as delivery_error,
                p.data || jsonb_build_object('ip', p.ip) as data
         from platform_events p
         where exists (select 1 from memberships m where m.user_id = p.user_id
                       and p.created_at >= m.created_at and m.tenant_id = ",
    );
    qb.push_bind(tenant);
    qb.push(") and p.kind = any(").push_bind(
        ACCOUNT_KINDS
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>(),
    );
    qb.push(")");
    push_common(qb, "p", "p", f);
    push_kind(qb, "p", f);
    if let Some(o) = f.operator {
        qb.push(" and p.user_id = ").push_bind(o);
    }
    qb.push(" order by p.created_at desc, p.id desc limit ")
        .push_bind(f.limit)
        .push(")");
}

/// One page of the log, newest first; pass the last entry's cursor for the next page.
pub async fn page(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    filter: &LogFilter,
) -> Result<Vec<LogEntry>> {
    let (messages, events, sign_ins) = (
        filter.wants_messages(),
        filter.wants_events(),
        filter.wants_sign_ins(),
    );
    if !messages && !events && !sign_ins {
        return Ok(Vec::new());
    }
    let mut qb = QueryBuilder::new("select x.*, ");
    qb.push(
        "coalesce(nullif(trim(concat_ws(' ', u.first_name, u.last_name)), ''), u.username) as end_user_name,
         case when x.actor_type in ('operator', 'user', 'api') then
             (select coalesce(nullif(p.display_name, ''), p.email) from users p
              where p.id::text = x.actor_id) end as actor_name,
         (select r.title from answer_rules r where r.tenant_id = ",
    );
    qb.push_bind(tenant);
    qb.push(
        " and r.id = x.rule_id) as rule_title,
         coalesce((select c.is_test from conversations c where c.tenant_id = ",
    );
    qb.push_bind(tenant);
    qb.push(" and c.id = x.conversation_id), false) as test from (");
    if messages {
        push_messages(&mut qb, tenant, filter);
    }
    if messages && events {
        qb.push(" union all ");
    }
    if events {
        push_events(&mut qb, tenant, filter);
    }
    if sign_ins {
        if messages || events {
            qb.push(" union all ");
        }
        push_sign_ins(&mut qb, tenant, filter);
    }
    qb.push(") x left join end_users u on u.tenant_id = ");
    qb.push_bind(tenant);
    qb.push(
        " and u.id = x.end_user_id order by x.created_at desc, x.source desc, x.id desc limit ",
    );
    qb.push_bind(filter.limit);
    Ok(qb.build_query_as().fetch_all(db).await?)
}

/// One entry with everything about it, and the raw Telegram update behind a message.
pub async fn entry(
    db: &sqlx::PgPool,
    tenant: TenantId,
    source: char,
    id: i64,
) -> Result<(LogEntry, Option<Value>)> {
    // The page query with an exact cursor just after the entry finds exactly it.
    let at: Option<DateTime<Utc>> = match source {
        'm' => {
            sqlx::query_scalar("select created_at from messages where tenant_id = $1 and id = $2")
                .bind(tenant)
                .bind(id)
                .fetch_optional(db)
                .await?
        }
        'p' => {
            sqlx::query_scalar(
                "select p.created_at from platform_events p
                 where p.id = $2 and exists (select 1 from memberships m where m.tenant_id = $1
                       and m.user_id = p.user_id and p.created_at >= m.created_at)",
            )
            .bind(tenant)
            .bind(id)
            .fetch_optional(db)
            .await?
        }
        _ => {
            sqlx::query_scalar("select created_at from events where tenant_id = $1 and id = $2")
                .bind(tenant)
                .bind(id)
                .fetch_optional(db)
                .await?
        }
    };
    let at = at.ok_or(crate::DbError::NotFound)?;
    let filter = LogFilter {
        from: Some(at),
        to: Some(at + chrono::Duration::microseconds(1)),
        kind: match source {
            'm' => Some("message*".into()),
            'p' => None,
            _ => Some("*".into()),
        },
        limit: 1000,
        ..Default::default()
    };
    let entry = page(db, tenant, &filter)
        .await?
        .into_iter()
        .find(|e| e.id == id && e.source.starts_with(source))
        .ok_or(crate::DbError::NotFound)?;
    let raw = match (source, entry.data.get("update_id").and_then(Value::as_i64)) {
        ('m', Some(update_id)) => {
            sqlx::query_scalar(
                "select i.payload from inbox i
                 join conversations c on c.tenant_id = i.tenant_id and c.bot_id = i.bot_id
                 where i.tenant_id = $1 and c.id = $2 and i.update_id = $3",
            )
            .bind(tenant)
            .bind(entry.conversation_id)
            .bind(update_id)
            .fetch_optional(db)
            .await?
        }
        _ => None,
    };
    Ok((entry, raw))
}

/// The event kinds a tenant has, for the filter's choices.
pub async fn event_kinds(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "with recursive k as (
            (select kind from events where tenant_id = $1 order by kind limit 1)
            union all
            select (select kind from events where tenant_id = $1 and kind > k.kind order by kind limit 1)
            from k where k.kind is not null
         ) select kind from k where kind is not null",
    )
    .bind(tenant)
    .fetch_all(db)
    .await?)
}
