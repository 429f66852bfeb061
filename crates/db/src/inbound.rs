//! The webhook's hot path in two statements: [`receive`] (user, inbox, open conversation)
//! and [`record`] (state, messages, events, delivery queue, notifications). With BEGIN and
//! COMMIT that is four round trips per update.

use serde_json::Value;
use sqlx::PgConnection;
use switchboard_core::{BotId, ConvStatus, ConversationId, EndUserId, RuleId, TenantId};

use crate::end_users::{EndUser, TelegramUser, UPSERT_SQL};
use crate::Result;

/// What [`receive`] found.
#[derive(Debug)]
pub struct Received {
    /// False when the update was stored before (a redelivery): roll back, do nothing.
    pub fresh: bool,
    pub end_user: EndUser,
    /// The user's open conversation, locked for this transaction.
    pub conversation: Option<(ConversationId, ConvStatus, Option<switchboard_core::UserId>)>,
}

#[derive(sqlx::FromRow)]
struct ReceivedRow {
    fresh: bool,
    id: EndUserId,
    bot_id: BotId,
    telegram_user_id: i64,
    chat_id: i64,
    username: Option<String>,
    first_name: String,
    last_name: Option<String>,
    language_code: Option<String>,
    is_blocked: bool,
    first_seen_at: chrono::DateTime<chrono::Utc>,
    last_seen_at: chrono::DateTime<chrono::Utc>,
    conversation_id: Option<ConversationId>,
    conversation_status: Option<String>,
    assignee_id: Option<switchboard_core::UserId>,
}

/// Whether this Telegram user's open conversation with the bot is with people (waiting or
/// assigned): then what they write goes to the desk and is not matched — so the engine
/// need not encode it. Read before the update's transaction, without locks; a status that
/// changes in between only costs that message its vector.
pub async fn with_humans(
    pool: &sqlx::PgPool,
    tenant: TenantId,
    bot: BotId,
    telegram_user_id: i64,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (
            select 1 from end_users u
            join conversations c on c.tenant_id = u.tenant_id and c.end_user_id = u.id
            where u.tenant_id = $1 and u.bot_id = $2 and u.telegram_user_id = $3
              and c.status in ('waiting', 'assigned'))",
    )
    .bind(tenant)
    .bind(bot)
    .bind(telegram_user_id)
    .fetch_one(pool)
    .await?)
}

/// Upserts the end user — whose row lock then serialises this chat's updates across all
/// processes until commit — stores the raw update (deduplicated), and locks the open
/// conversation.
pub async fn receive(
    conn: &mut PgConnection,
    tenant: TenantId,
    bot: BotId,
    update_id: i64,
    payload: &Value,
    user: &TelegramUser,
) -> Result<Received> {
    let row: ReceivedRow = sqlx::query_as(&format!(
        "with u as ({UPSERT_SQL}         ), ib as (
            insert into inbox (tenant_id, bot_id, update_id, payload, status)
            select $1, $3, $10, $11, 'processed' from u
            on conflict do nothing
            returning 1
         ), c as (
            select c.id, c.status, c.assignee_id from conversations c
            where c.tenant_id = $1 and c.end_user_id = (select id from u) and c.status <> 'closed'
            for update
         )
         select exists (select 1 from ib) as fresh, u.*,
                c.id as conversation_id, c.status as conversation_status, c.assignee_id
         from u left join c on true"
    ))
    .bind(tenant)
    .bind(EndUserId::new())
    .bind(bot)
    .bind(user.telegram_user_id)
    .bind(user.chat_id)
    .bind(&user.username)
    .bind(&user.first_name)
    .bind(&user.last_name)
    .bind(&user.language_code)
    .bind(update_id)
    .bind(payload)
    .fetch_one(conn)
    .await?;
    let conversation = match (row.conversation_id, row.conversation_status) {
        (Some(id), Some(status)) => Some((
            id,
            status
                .parse()
                .map_err(|e: switchboard_core::conversation::UnknownStatus| {
                    sqlx::Error::Decode(e.to_string().into())
                })?,
            row.assignee_id,
        )),
        _ => None,
    };
    Ok(Received {
        fresh: row.fresh,
        end_user: EndUser {
            id: row.id,
            bot_id: row.bot_id,
            telegram_user_id: row.telegram_user_id,
            chat_id: row.chat_id,
            username: row.username,
            first_name: row.first_name,
            last_name: row.last_name,
            language_code: row.language_code,
            is_blocked: row.is_blocked,
            first_seen_at: row.first_seen_at,
            last_seen_at: row.last_seen_at,
        },
        conversation,
    })
}

/// The inbound message as stored.
#[derive(Debug, Default)]
pub struct InboundRecord {
    pub kind: String,
    pub text: String,
    pub payload: Option<Value>,
    pub rule_id: Option<RuleId>,
    pub score: Option<f32>,
    pub match_info: Option<Value>,
    pub update_id: i64,
    pub telegram_message_id: Option<i64>,
}

/// A bot reply to queue.
#[derive(Debug)]
pub struct OutboundRecord {
    pub text: String,
    pub payload: Option<Value>,
    pub rule_id: Option<RuleId>,
}

/// Everything one update decided.
#[derive(Debug)]
pub struct Record {
    pub bot: BotId,
    pub end_user: EndUserId,
    pub conversation: ConversationId,
    /// The conversation is new: insert it (with `status`), else update it.
    pub new_conversation: bool,
    pub status: ConvStatus,
    pub handover_reason: Option<&'static str>,
    pub inbound: InboundRecord,
    pub outbound: Vec<OutboundRecord>,
    /// Events to log (actor: the end user).
    pub events: Vec<switchboard_core::Event>,
    /// Test traffic from the "Try it" chat: the conversation is marked as a test, replies
    /// are stored as delivered and nothing is queued for delivery.
    pub sandbox: bool,
}

/// Writes what an update decided, in one statement: the conversation (new or changed),
/// the inbound message followed by the replies (ids in that order), the events and the
/// chat queued for delivery (if there are replies).
pub async fn record(conn: &mut PgConnection, tenant: TenantId, r: &Record) -> Result<()> {
    let out_texts: Vec<&str> = r.outbound.iter().map(|o| o.text.as_str()).collect();
    let out_payloads: Vec<Option<&Value>> = r.outbound.iter().map(|o| o.payload.as_ref()).collect();
    let out_rules: Vec<Option<uuid::Uuid>> =
        r.outbound.iter().map(|o| o.rule_id.map(|x| x.0)).collect();
    let ev_kinds: Vec<&str> = r.events.iter().map(|e| e.kind().as_str()).collect();
    let ev_data: Vec<Value> = r.events.iter().map(|e| e.data()).collect();
    sqlx::query(
        "with new_conv as (
            insert into conversations (tenant_id, id, bot_id, end_user_id, status, handover_reason,
                waiting_since, is_test)
            select $1, $2, $3, $4, $6, $7, case when $6 = 'waiting' then now() end, $21
            where $5
            returning id
         ), changed_conv as (
            update conversations set
                status = $6,
                handover_reason = coalesce($7, handover_reason),
                waiting_since = case when $6 = 'waiting' and status <> 'waiting' then now()
                                     else waiting_since end,
                last_message_at = now()
            where tenant_id = $1 and id = $2 and not $5
            returning id
         ), msgs as (
            insert into messages (tenant_id, conversation_id, end_user_id, direction, sender, kind,
                text, payload, rule_id, score, match, update_id, telegram_message_id)
            select $1, $2, $4, dir, snd, knd, txt, pl, rl, sc, mt, upd, tmid
            from (
                select 0 as ord, 'in' as dir, 'user' as snd, $8::text as knd, $9::text as txt,
                       $10::jsonb as pl, $11::uuid as rl, $12::real as sc, $13::jsonb as mt,
                       $14::bigint as upd, $15::bigint as tmid
                union all
                select o.ord, 'out', 'bot', 'text', o.txt, o.pl, o.rl, null, null, null, null
                from unnest($16::text[], $17::jsonb[], $18::uuid[]) with ordinality as o(txt, pl, rl, ord)
            ) m
            order by ord
            returning id, direction, created_at
         ), dels as (
            insert into deliveries (tenant_id, message_id, end_user_id, status, sent_at, created_at)
            select $1, id, $4, case when $21 then 'sent' else 'pending' end,
                   case when $21 then now() end, created_at
            from msgs where direction = 'out'
         ), evs as (
            insert into events (tenant_id, kind, actor_type, actor_id, conversation_id, end_user_id, data)
            select $1, e.kind, 'end_user', $4::text, $2, $4, e.data
            from unnest($19::text[], $20::jsonb[]) as e(kind, data)
            returning 1
         ), queued as (
            insert into delivery_queue (tenant_id, end_user_id, bot_id)
            select $1, $4, $3
            where cardinality($16::text[]) > 0 and not $21
            on conflict (tenant_id, end_user_id) do update set ready_at = delivery_queue.ready_at
            returning 1
         )
         select
            (select count(*) from new_conv) + (select count(*) from changed_conv) as conversations,
            (select count(*) from msgs) as messages,
            (select count(*) from evs) as events,
            (select count(*) from queued) as queued",
    )
    .bind(tenant)
    .bind(r.conversation)
    .bind(r.bot)
    .bind(r.end_user)
    .bind(r.new_conversation)
    .bind(r.status.as_str())
    .bind(r.handover_reason)
    .bind(&r.inbound.kind)
    .bind(&r.inbound.text)
    .bind(&r.inbound.payload)
    .bind(r.inbound.rule_id)
    .bind(r.inbound.score)
    .bind(&r.inbound.match_info)
    .bind(r.inbound.update_id)
    .bind(r.inbound.telegram_message_id)
    .bind(&out_texts)
    .bind(&out_payloads)
    .bind(&out_rules)
    .bind(&ev_kinds)
    .bind(&ev_data)
    .bind(r.sandbox)
    .execute(conn)
    .await?;
    Ok(())
}

/// A rating button was pressed: the closed conversation it names gets the rating (the
/// first one counts), the press is stored in it, and the rating is logged. Nothing opens.
/// Returns false when the conversation is not this user's closed conversation.
pub async fn record_rating(
    conn: &mut PgConnection,
    tenant: TenantId,
    end_user: EndUserId,
    conversation: ConversationId,
    rating: i16,
    inbound: &InboundRecord,
) -> Result<bool> {
    let rated: Option<ConversationId> = sqlx::query_scalar(
        "update conversations set rating = coalesce(rating, $4)
         where tenant_id = $1 and id = $2 and end_user_id = $3 and status = 'closed'
         returning id",
    )
    .bind(tenant)
    .bind(conversation)
    .bind(end_user)
    .bind(rating)
    .fetch_optional(&mut *conn)
    .await?;
    if rated.is_none() {
        return Ok(false);
    }
    crate::messages::insert_inbound(
        &mut *conn,
        tenant,
        &crate::messages::NewInbound {
            conversation_id: conversation,
            end_user_id: end_user,
            kind: inbound.kind.clone(),
            text: inbound.text.clone(),
            payload: inbound.payload.clone(),
            update_id: Some(inbound.update_id),
            telegram_message_id: inbound.telegram_message_id,
            ..Default::default()
        },
    )
    .await?;
    let event = crate::events::NewEvent::new(
        switchboard_core::Event::ConversationRated { rating },
        crate::events::Actor::EndUser(end_user),
    )
    .conversation(conversation, end_user);
    crate::events::insert(conn, tenant, event).await?;
    Ok(true)
}
