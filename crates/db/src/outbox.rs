//! The delivery queue: one row per chat with messages to send, written in the caller's
//! transaction (so a decided reply is never lost between "stored" and "queued"), and the
//! statements the delivery scheduler runs on it.
//!
//! A chat is *ready* when its `ready_at` has passed: its pacing interval since the last
//! send, a retry time, or the lease of a worker that died while sending. Workers take
//! ready chats in batches, bot by bot within each bot's budget (`bot_send_budget`: sends
//! spaced `1 / rate` apart across every process, paused everywhere by a 429), round-robin
//! between tenants and between the bots of a tenant, with `for update skip locked` — so
//! workers never wait for each other, and no tenant's backlog stands in front of another's
//! chats. Only a chat's oldest undelivered message is ever taken, and a chat is held by one
//! worker at a time, so each chat's messages go out in order.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use switchboard_core::{BotId, ConversationId, EndUserId, MessageId, TenantId};

use crate::Result;

/// A chat with something to deliver: the tenant, the bot it talks through, the end user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryChat {
    pub tenant_id: TenantId,
    pub bot_id: BotId,
    pub end_user_id: EndUserId,
}

impl DeliveryChat {
    pub fn new(tenant_id: TenantId, bot_id: BotId, end_user_id: EndUserId) -> Self {
        Self {
            tenant_id,
            bot_id,
            end_user_id,
        }
    }
}

/// The channel that wakes the delivery workers (payload unused).
pub const DELIVERY_CHANNEL: &str = "switchboard_delivery";

/// Queues a chat for delivery (its pending messages were written in this transaction).
/// A chat already queued keeps its place and pacing; the row is still locked until the
/// caller commits, so a worker cannot drop it as finished before these messages are
/// visible. After committing, call [`crate::notify::Notifier::deliveries_queued`] to wake the
/// workers at once (they also poll).
pub async fn enqueue(db: impl PgExecutor<'_>, chat: &DeliveryChat) -> Result<()> {
    sqlx::query(ENQUEUE_SQL)
        .bind(chat.tenant_id)
        .bind(chat.end_user_id)
        .bind(chat.bot_id)
        .execute(db)
        .await?;
    Ok(())
}

/// The upsert of [`enqueue`] (also used inside the webhook's single statement).
pub const ENQUEUE_SQL: &str = "insert into delivery_queue (tenant_id, end_user_id, bot_id)
     values ($1, $2, $3)
     on conflict (tenant_id, end_user_id) do update set ready_at = delivery_queue.ready_at";

/// How the scheduler takes work; see [`claim`].
#[derive(Clone, Debug)]
pub struct ClaimParams<'a> {
    /// This worker, recorded on the chats it holds.
    pub worker: &'a str,
    /// At most this many messages.
    pub limit: i64,
    /// How long a claim holds a chat before another worker may take it over.
    pub lease_ms: i64,
    /// Sends per second for bots without a rate of their own.
    pub default_rate: i32,
    /// How far ahead of now a bot's send slots may be handed out.
    pub horizon_ms: i64,
}

/// A message taken for sending.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Claimed {
    pub tenant_id: TenantId,
    pub bot_id: BotId,
    pub end_user_id: EndUserId,
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// text, or photo/document (a file from the attachments table).
    pub kind: String,
    pub text: String,
    pub payload: Option<Value>,
    /// Attempts including this one.
    pub attempts: i32,
    pub chat_id: i64,
    /// The spacing of this bot's sends, in milliseconds.
    pub interval_ms: f64,
    /// How long from now until this message's send slot (the bot's budget).
    pub delay_ms: f64,
}

/// The claim a delivery outcome belongs to: the message and its attempt number. An
/// outcome is recorded only while that claim still holds (`sending`, same attempt) — a
/// worker whose lease ran out mid-send, and whose message another worker took over, must
/// not overwrite that worker's outcome.
#[derive(Clone, Copy, Debug)]
pub struct ClaimRef {
    pub tenant_id: TenantId,
    pub end_user_id: EndUserId,
    pub id: MessageId,
    pub attempts: i32,
}

impl Claimed {
    /// The claim its outcome is recorded under.
    pub fn claim(&self) -> ClaimRef {
        ClaimRef {
            tenant_id: self.tenant_id,
            end_user_id: self.end_user_id,
            id: self.id,
            attempts: self.attempts,
        }
    }
}

/// Takes up to `limit` ready messages, one per chat, in one statement:
///
/// 1. the bots with queued chats (a skip scan of `delivery_queue_bot_ready_idx`);
/// 2. their budgets (sends spaced 10% wider than `1 / rate`, so that a send woken
///    late on a busy machine cannot push one more than `rate` into a second), locked (`skip locked`: a bot another worker is claiming for right now
///    is left to it), unless paused or already spent beyond the horizon; each grants as
///    many sends as fit in its slots up to `now + horizon`;
/// 3. for each bot, its ready chats up to the grant, oldest first, locked (`skip locked`);
/// 4. each chat's oldest undelivered message; a chat without one is finished and its row
///    deleted (under our lock, so an enqueue waiting on it inserts a new row afterwards).
///    All of that only for a chat whose row has not changed since this statement's
///    snapshot (its locked version is the one the snapshot sees): a row changed in
///    between — an enqueue, or another worker's claim and send committed — means the
///    snapshot's view of its messages is stale (a new message unseen, a sent one still
///    pending), and acting on it would strand the new one, send one twice, or put the
///    chat off for a lease it no longer has. Such a chat is left as it is, for the next
///    claim;
/// 5. round-robin: the first chat of every tenant (its bots taken in turn), then the
///    second, … up to `limit`; among equals, the bot whose budget is least spent first (a
///    bot that has not sent for a while goes before one sending flat out);
/// 6. the chosen messages get consecutive slots of their bot (returned as `delay_ms`), the
///    budget moves past them, the chats are leased to this worker and the messages'
///    deliveries marked `sending` with one more attempt.
///
/// Lookups by key are written as `lateral (… limit 1)`, so that each is an index probe
/// whatever the planner believes of the tables' sizes: with the statistics of a young
/// database it joined `messages` by tenant alone and filtered 30,000 rows per claim.
pub async fn claim(db: impl PgExecutor<'_>, p: &ClaimParams<'_>) -> Result<Vec<Claimed>> {
    Ok(sqlx::query_as(
        "with recursive busy (bot_id) as (
            (select bot_id from delivery_queue order by bot_id limit 1)
            union all
            select (select q.bot_id from delivery_queue q where q.bot_id > busy.bot_id
                    order by q.bot_id limit 1)
            from busy where busy.bot_id is not null
         ), budget as (
            select s.tenant_id, s.bot_id,
                   greatest(s.next_slot_at, now()) as first_slot,
                   1100.0 / coalesce(b.send_rate, $4) as interval_ms
            from busy
            join bot_send_budget s on s.bot_id = busy.bot_id
            join bots b on b.tenant_id = s.tenant_id and b.id = s.bot_id
            where (s.paused_until is null or s.paused_until <= now())
              and s.next_slot_at <= now() + make_interval(secs => $5::float8 / 1000)
            for update of s skip locked
         ), grants as (
            select budget.*, greatest(1, floor(extract(epoch from
                       (now() + make_interval(secs => $5::float8 / 1000) - first_slot))
                       * 1000 / interval_ms))::int as grant_n
            from budget
         ), picked as (
            select g.tenant_id, g.bot_id, g.first_slot, g.interval_ms, q.end_user_id, q.ready_at,
                   q.xmin as locked_version
            from grants g
            cross join lateral (
                select q.end_user_id, q.ready_at, q.xmin from delivery_queue q
                where q.bot_id = g.bot_id and q.ready_at <= now()
                order by q.ready_at
                limit g.grant_n
                for update skip locked
            ) q
         ), heads as (
            select p.*, h.id as message_id, h.ready as head_ready, h.wait_until,
                   coalesce(p.locked_version = s.seen_version, false) as settled
            from picked p
            left join lateral (
                select q.xmin as seen_version from delivery_queue q
                where q.tenant_id = p.tenant_id and q.end_user_id = p.end_user_id
                limit 1
            ) s on true
            left join lateral (
                select d.message_id as id,
                       (d.status = 'pending' or d.lease_until < now())
                       and (d.next_attempt_at is null or d.next_attempt_at <= now()) as ready,
                       greatest(d.next_attempt_at, d.lease_until, now()) as wait_until
                from deliveries d
                where d.tenant_id = p.tenant_id and d.end_user_id = p.end_user_id
                  and d.status in ('pending', 'sending')
                order by d.message_id
                limit 1
            ) h on true
         ), deferred as (
            update delivery_queue q set ready_at = h.wait_until
            from heads h
            where h.message_id is not null and not h.head_ready and h.settled
              and q.tenant_id = h.tenant_id and q.end_user_id = h.end_user_id
            returning 1
         ), finished as (
            delete from delivery_queue q using heads h
            where h.message_id is null and h.settled
              and q.tenant_id = h.tenant_id and q.end_user_id = h.end_user_id
            returning 1
         ), by_bot as (
            select h.*, row_number() over (partition by h.bot_id order by h.ready_at) as bot_rank
            from heads h where h.head_ready and h.settled
         ), by_tenant as (
            select b.*, row_number() over (partition by b.tenant_id order by b.bot_rank, b.ready_at)
                   as tenant_rank
            from by_bot b
         ), chosen as (
            select c.*, row_number() over (partition by c.bot_id order by c.ready_at) - 1 as k,
                   count(*) over (partition by c.bot_id) as per_bot
            from (select * from by_tenant order by tenant_rank, first_slot, ready_at limit $2) c
         ), slots as (
            select c.*, c.first_slot + make_interval(secs => c.k * c.interval_ms / 1000) as slot_at
            from chosen c
         ), spent as (
            update bot_send_budget s
            set next_slot_at = x.next_slot
            from (select distinct on (bot_id) tenant_id, bot_id,
                         first_slot + make_interval(secs => per_bot * interval_ms / 1000) as next_slot
                  from chosen) x
            where s.tenant_id = x.tenant_id and s.bot_id = x.bot_id
            returning 1
         ), leased as (
            update delivery_queue q
            set lease_owner = $1,
                ready_at = s.slot_at + make_interval(secs => $3::float8 / 1000)
            from slots s
            where q.tenant_id = s.tenant_id and q.end_user_id = s.end_user_id
            returning 1
         ), sending as (
            update deliveries d set status = 'sending',
                lease_until = s.slot_at + make_interval(secs => $3::float8 / 1000),
                attempts = d.attempts + 1
            from slots s
            where d.tenant_id = s.tenant_id and d.message_id = s.message_id
            returning d.tenant_id, d.message_id, d.end_user_id, d.attempts, s.bot_id,
                s.interval_ms, s.slot_at
         )
         select x.tenant_id, x.bot_id, x.end_user_id, m.id, m.conversation_id, m.kind, m.text,
            m.payload, x.attempts, u.chat_id, x.interval_ms::float8 as interval_ms,
            greatest(0, extract(epoch from (x.slot_at - clock_timestamp())) * 1000)::float8
                as delay_ms
         from sending x
         cross join lateral (
            select m.id, m.conversation_id, m.kind, m.text, m.payload from messages m
            where m.tenant_id = x.tenant_id and m.id = x.message_id limit 1
         ) m
         cross join lateral (
            select u.chat_id from end_users u
            where u.tenant_id = x.tenant_id and u.id = x.end_user_id limit 1
         ) u",
    )
    .bind(p.worker)
    .bind(p.limit)
    .bind(p.lease_ms)
    .bind(p.default_rate)
    .bind(p.horizon_ms)
    .fetch_all(db)
    .await?)
}

/// A send Telegram confirmed.
#[derive(Clone, Copy, Debug)]
pub struct SentOutcome {
    pub claim: ClaimRef,
    pub telegram_message_id: i64,
    /// The chat's next message waits this long from now (its pacing).
    pub pace_ms: i64,
}

/// Records sent messages, many in one statement, and releases their chats until their
/// pacing allows the next message. Returns the ids recorded: a claim that no longer held
/// (the lease ran out and another worker took the message over) records nothing.
pub async fn record_sent(db: impl PgExecutor<'_>, sent: &[SentOutcome]) -> Result<Vec<MessageId>> {
    let tenants: Vec<TenantId> = sent.iter().map(|s| s.claim.tenant_id).collect();
    let ids: Vec<MessageId> = sent.iter().map(|s| s.claim.id).collect();
    let attempts: Vec<i32> = sent.iter().map(|s| s.claim.attempts).collect();
    let telegram_ids: Vec<i64> = sent.iter().map(|s| s.telegram_message_id).collect();
    let paces: Vec<i64> = sent.iter().map(|s| s.pace_ms).collect();
    Ok(sqlx::query_scalar(
        "with o as (
            select * from unnest($1::uuid[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[])
                as o(tenant_id, id, attempts, telegram_id, pace_ms)
         ), sent as (
            update deliveries d set status = 'sent', telegram_message_id = o.telegram_id,
                sent_at = now(), error = null, lease_until = null, next_attempt_at = null
            from o
            where d.tenant_id = o.tenant_id and d.message_id = o.id
              and d.status = 'sending' and d.attempts = o.attempts
            returning d.tenant_id, d.message_id as id, d.end_user_id, o.pace_ms
         ), locked as materialized (
            -- The chats' queue rows, locked in one order — the order the webhook's batches
            -- lock them in (`inbound::record_batch`) — so the two never deadlock.
            select q.tenant_id, q.end_user_id from delivery_queue q
            where (q.tenant_id, q.end_user_id) in (select tenant_id, end_user_id from sent)
            order by q.tenant_id, q.end_user_id
            for update of q
         ), released as (
            update delivery_queue q set lease_owner = null,
                ready_at = now() + make_interval(secs => s.pace_ms::float8 / 1000)
            from sent s join locked l on l.tenant_id = s.tenant_id and l.end_user_id = s.end_user_id
            where q.tenant_id = s.tenant_id and q.end_user_id = s.end_user_id
            returning 1
         )
         select id from sent",
    )
    .bind(&tenants)
    .bind(&ids)
    .bind(&attempts)
    .bind(&telegram_ids)
    .bind(&paces)
    .fetch_all(db)
    .await?)
}

/// Records a message as failed for good and lets the chat's next message go. False: the
/// claim no longer held, nothing was recorded.
pub async fn record_failed(db: impl PgExecutor<'_>, claim: ClaimRef, error: &str) -> Result<bool> {
    let done: i64 = sqlx::query_scalar(
        "with failed as (
            update deliveries set status = 'failed', error = $3,
                lease_until = null, next_attempt_at = null
            where tenant_id = $1 and message_id = $2 and status = 'sending' and attempts = $4
            returning end_user_id
         ), released as (
            update delivery_queue q set lease_owner = null, ready_at = now()
            from failed f where q.tenant_id = $1 and q.end_user_id = f.end_user_id
            returning 1
         )
         select count(*) from failed",
    )
    .bind(claim.tenant_id)
    .bind(claim.id)
    .bind(error)
    .bind(claim.attempts)
    .fetch_one(db)
    .await?;
    Ok(done > 0)
}

/// Puts a message back to `pending` until `at`, keeping the error for display; the chat
/// waits until then (its later messages stay behind it). False: the claim no longer held.
pub async fn record_retry(
    db: impl PgExecutor<'_>,
    claim: ClaimRef,
    at: DateTime<Utc>,
    error: &str,
) -> Result<bool> {
    let done: i64 = sqlx::query_scalar(
        "with retried as (
            update deliveries set status = 'pending', next_attempt_at = $3,
                error = $4, lease_until = null
            where tenant_id = $1 and message_id = $2 and status = 'sending' and attempts = $5
            returning end_user_id
         ), released as (
            update delivery_queue q set lease_owner = null, ready_at = $3
            from retried r where q.tenant_id = $1 and q.end_user_id = r.end_user_id
            returning 1
         )
         select count(*) from retried",
    )
    .bind(claim.tenant_id)
    .bind(claim.id)
    .bind(at)
    .bind(error)
    .bind(claim.attempts)
    .fetch_one(db)
    .await?;
    Ok(done > 0)
}

/// Telegram answered 429: no worker sends for this bot until `until`.
pub async fn pause_bot(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    bot: BotId,
    until: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update bot_send_budget set paused_until = greatest(coalesce(paused_until, $3), $3),
            next_slot_at = greatest(next_slot_at, $3)
         where tenant_id = $1 and bot_id = $2",
    )
    .bind(tenant)
    .bind(bot)
    .bind(until)
    .execute(db)
    .await?;
    Ok(())
}

/// The safety net: chats with undelivered messages but no queue row (nothing should
/// leave one, but a row deleted by hand or a bug must not strand a chat for ever) are
/// queued again. Returns how many.
pub async fn requeue_orphans(db: impl PgExecutor<'_>, limit: i64) -> Result<u64> {
    Ok(sqlx::query(
        "insert into delivery_queue (tenant_id, end_user_id, bot_id)
         select distinct d.tenant_id, d.end_user_id, u.bot_id
         from deliveries d
         join end_users u on u.tenant_id = d.tenant_id and u.id = d.end_user_id
         where d.status in ('pending', 'sending')
           and d.created_at < now() - interval '1 minute'
           and not exists (select 1 from delivery_queue q
                           where q.tenant_id = d.tenant_id and q.end_user_id = d.end_user_id)
         limit $1
         on conflict do nothing",
    )
    .bind(limit)
    .execute(db)
    .await?
    .rows_affected())
}

/// The backlog of one bot: chats with messages to send, and how long the longest-waiting
/// ready one has waited (since its oldest message was written or its pacing, retry or
/// 429 pause ended, whichever is later).
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct Backlog {
    pub tenant_id: TenantId,
    pub bot_id: BotId,
    pub tenant_slug: String,
    pub bot_username: String,
    /// Chats with messages to send.
    pub chats: i64,
    /// Of those, chats ready to be sent to now (not paced, not being sent).
    pub ready_chats: i64,
    /// Seconds the longest-waiting ready chat has waited (0 if none is ready).
    pub oldest_ready_seconds: f64,
}

/// The backlog per bot, for the queue rows `filter` keeps (SQL on `q`).
fn backlog_sql(filter: &str) -> String {
    format!(
        "select b.*, t.slug as tenant_slug, bots.username as bot_username
         from (
            select q.tenant_id, q.bot_id,
                count(*) as chats,
                count(*) filter (where r.ready_since <= now()) as ready_chats,
                coalesce(extract(epoch from now() - min(r.ready_since)
                                 filter (where r.ready_since <= now())), 0)::float8
                    as oldest_ready_seconds
            from delivery_queue q
            cross join lateral (
                select d.created_at from deliveries d
                where d.tenant_id = q.tenant_id and d.end_user_id = q.end_user_id
                  and d.status in ('pending', 'sending')
                order by d.message_id limit 1
            ) h
            left join bot_send_budget s on s.tenant_id = q.tenant_id and s.bot_id = q.bot_id
            cross join lateral (
                select case when q.lease_owner is not null then 'infinity'::timestamptz
                            else greatest(q.ready_at, h.created_at, s.paused_until) end
                    as ready_since
            ) r
            where {filter}
            group by q.tenant_id, q.bot_id
         ) b
         join tenants t on t.id = b.tenant_id
         join bots on bots.tenant_id = b.tenant_id and bots.id = b.bot_id
         order by b.oldest_ready_seconds desc, b.chats desc"
    )
}

/// Every bot's backlog (bots with nothing to send are left out), longest-waiting first.
/// Reads the queue and, for each queued chat, its oldest undelivered message: the work is
/// the size of the backlog.
pub async fn backlog(db: impl PgExecutor<'_>) -> Result<Vec<Backlog>> {
    Ok(sqlx::query_as(&backlog_sql("true")).fetch_all(db).await?)
}

/// One tenant's backlog (for its dashboard), per bot.
pub async fn tenant_backlog(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Vec<Backlog>> {
    Ok(sqlx::query_as(&backlog_sql("q.tenant_id = $1"))
        .bind(tenant)
        .fetch_all(db)
        .await?)
}
