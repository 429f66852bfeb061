//! The webhook's hot path in two statements: [`receive`] (user, inbox, open conversation)
//! and [`record`] (state, messages, events, delivery queue). With BEGIN, the scope and
//! COMMIT that is five round trips per update — or per batch of up to 32 updates of
//! different chats, with [`receive_batch`] and [`record_batch`] (the webhook's group
//! commit, `switchboard_telegram::intake`).

use serde_json::Value;
use sqlx::PgConnection;
use switchboard_core::{BotId, ConvStatus, ConversationId, EndUserId, RuleId, TenantId};

use crate::end_users::{upsert_on_conflict, EndUser, TelegramUser, UPSERT_SQL};

/// The end of both record statements: what each part wrote (every CTE is referenced, so
/// PostgreSQL runs them all).
macro_rules! record_summary {
    () => {
        "select
            (select count(*) from new_conv) + (select count(*) from changed_conv) as conversations,
            (select count(*) from msgs) as messages,
            (select count(*) from evs) as events,
            (select count(*) from queued) as queued"
    };
}
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
    received(row)
}

fn received(row: ReceivedRow) -> Result<Received> {
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
    sqlx::query(concat!(
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
         ",
        record_summary!()
    ),
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

/// One update of a batch for [`receive_batch`].
#[derive(Debug)]
pub struct Incoming<'a> {
    pub tenant: TenantId,
    pub bot: BotId,
    pub update_id: i64,
    pub payload: &'a Value,
    pub user: &'a TelegramUser,
}

#[derive(sqlx::FromRow)]
struct ReceivedBatchRow {
    ord: i64,
    #[sqlx(flatten)]
    row: ReceivedRow,
}

/// [`receive`] for several updates of different chats in one statement (the webhook's
/// group commit): each user upserted and locked, each update stored (deduplicated), each
/// open conversation locked. Rows are written and locked in one order — by organization,
/// bot and Telegram user — so two batches never wait for each other in a cycle. No two
/// updates may be of the same chat (one row cannot be upserted twice in a statement).
/// Returns what each update found, in the order given.
pub async fn receive_batch(
    conn: &mut PgConnection,
    items: &[Incoming<'_>],
) -> Result<Vec<Received>> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| {
        (
            items[i].tenant,
            items[i].bot,
            items[i].user.telegram_user_id,
        )
    });
    let sorted: Vec<&Incoming> = order.iter().map(|&i| &items[i]).collect();
    let tenants: Vec<TenantId> = sorted.iter().map(|x| x.tenant).collect();
    let bots: Vec<BotId> = sorted.iter().map(|x| x.bot).collect();
    let new_ids: Vec<EndUserId> = sorted.iter().map(|_| EndUserId::new()).collect();
    let users: Vec<i64> = sorted.iter().map(|x| x.user.telegram_user_id).collect();
    let chats: Vec<i64> = sorted.iter().map(|x| x.user.chat_id).collect();
    let update_ids: Vec<i64> = sorted.iter().map(|x| x.update_id).collect();
    let usernames: Vec<Option<&str>> = sorted.iter().map(|x| x.user.username.as_deref()).collect();
    let first_names: Vec<&str> = sorted.iter().map(|x| x.user.first_name.as_str()).collect();
    let last_names: Vec<Option<&str>> =
        sorted.iter().map(|x| x.user.last_name.as_deref()).collect();
    let languages: Vec<Option<&str>> = sorted
        .iter()
        .map(|x| x.user.language_code.as_deref())
        .collect();
    let payloads: Vec<&Value> = sorted.iter().map(|x| x.payload).collect();
    let originals: Vec<i64> = order.iter().map(|&i| i as i64).collect();
    let rows: Vec<ReceivedBatchRow> = sqlx::query_as(concat!(
        "with i as (
            select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::bigint[],
                $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::jsonb[],
                $12::bigint[])
              as i(tenant_id, new_id, bot_id, tg, chat, un, fname, lname, lang, upd, pl, ord)
         ), u as (
            insert into end_users (tenant_id, id, bot_id, telegram_user_id,
                chat_id, username, first_name, last_name, language_code)
            select tenant_id, new_id, bot_id, tg, chat, un, fname, lname, lang from i
            order by tenant_id, bot_id, tg ",
        upsert_on_conflict!(),
        " returning tenant_id, id, bot_id, telegram_user_id, chat_id, username, first_name,
                last_name, language_code, is_blocked, first_seen_at, last_seen_at
         ), ib as (
            insert into inbox (tenant_id, bot_id, update_id, payload, status)
            select i.tenant_id, i.bot_id, i.upd, i.pl, 'processed'
            from i join u on u.tenant_id = i.tenant_id and u.bot_id = i.bot_id
                          and u.telegram_user_id = i.tg
            on conflict do nothing
            returning tenant_id, bot_id, update_id
         ), c as (
            select c.tenant_id, c.end_user_id, c.id, c.status, c.assignee_id
            from u join conversations c on c.tenant_id = u.tenant_id and c.end_user_id = u.id
            where c.status <> 'closed'
            order by c.tenant_id, c.end_user_id
            for update of c
         )
         select i.ord,
                exists (select 1 from ib where ib.tenant_id = i.tenant_id
                        and ib.bot_id = i.bot_id and ib.update_id = i.upd) as fresh,
                u.id, u.bot_id, u.telegram_user_id, u.chat_id, u.username, u.first_name,
                u.last_name, u.language_code, u.is_blocked, u.first_seen_at, u.last_seen_at,
                c.id as conversation_id, c.status as conversation_status, c.assignee_id
         from i
         join u on u.tenant_id = i.tenant_id and u.bot_id = i.bot_id and u.telegram_user_id = i.tg
         left join c on c.tenant_id = u.tenant_id and c.end_user_id = u.id"
    ))
    .bind(&tenants)
    .bind(&new_ids)
    .bind(&bots)
    .bind(&users)
    .bind(&chats)
    .bind(&usernames)
    .bind(&first_names)
    .bind(&last_names)
    .bind(&languages)
    .bind(&update_ids)
    .bind(&payloads)
    .bind(&originals)
    .fetch_all(conn)
    .await?;
    let mut found: Vec<Option<Received>> = (0..items.len()).map(|_| None).collect();
    for r in rows {
        let slot = usize::try_from(r.ord)
            .ok()
            .and_then(|i| found.get_mut(i))
            .ok_or_else(|| sqlx::Error::Decode("a batch row of no update".into()))?;
        *slot = Some(received(r.row)?);
    }
    Ok(found
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| sqlx::Error::Decode("an update of the batch found no row".into()))?)
}

/// [`record`] for several updates of different chats in one statement, each with its
/// organization: per update the same rows in the same order (the inbound message, then
/// its replies).
pub async fn record_batch(conn: &mut PgConnection, records: &[(TenantId, &Record)]) -> Result<()> {
    let tenants: Vec<TenantId> = records.iter().map(|(t, _)| *t).collect();
    let conversations: Vec<ConversationId> = records.iter().map(|(_, r)| r.conversation).collect();
    let bots: Vec<BotId> = records.iter().map(|(_, r)| r.bot).collect();
    let end_users: Vec<EndUserId> = records.iter().map(|(_, r)| r.end_user).collect();
    let new: Vec<bool> = records.iter().map(|(_, r)| r.new_conversation).collect();
    let statuses: Vec<&str> = records.iter().map(|(_, r)| r.status.as_str()).collect();
    let reasons: Vec<Option<&str>> = records.iter().map(|(_, r)| r.handover_reason).collect();
    let sandbox: Vec<bool> = records.iter().map(|(_, r)| r.sandbox).collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|(_, r)| r.inbound.kind.as_str())
        .collect();
    let texts: Vec<&str> = records
        .iter()
        .map(|(_, r)| r.inbound.text.as_str())
        .collect();
    let payloads: Vec<Option<&Value>> = records
        .iter()
        .map(|(_, r)| r.inbound.payload.as_ref())
        .collect();
    let rules: Vec<Option<uuid::Uuid>> = records
        .iter()
        .map(|(_, r)| r.inbound.rule_id.map(|x| x.0))
        .collect();
    let scores: Vec<Option<f32>> = records.iter().map(|(_, r)| r.inbound.score).collect();
    let matches: Vec<Option<&Value>> = records
        .iter()
        .map(|(_, r)| r.inbound.match_info.as_ref())
        .collect();
    let update_ids: Vec<i64> = records.iter().map(|(_, r)| r.inbound.update_id).collect();
    let message_ids: Vec<Option<i64>> = records
        .iter()
        .map(|(_, r)| r.inbound.telegram_message_id)
        .collect();
    let (mut out_of, mut out_texts, mut out_payloads, mut out_rules) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ev_of, mut ev_kinds, mut ev_data) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (_, r)) in records.iter().enumerate() {
        // `with ordinality` numbers the updates from 1.
        let n = i as i64 + 1;
        for o in &r.outbound {
            out_of.push(n);
            out_texts.push(o.text.as_str());
            out_payloads.push(o.payload.as_ref());
            out_rules.push(o.rule_id.map(|x| x.0));
        }
        for e in &r.events {
            ev_of.push(n);
            ev_kinds.push(e.kind().as_str());
            ev_data.push(e.data());
        }
    }
    sqlx::query(concat!(
        "with r as (
            select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bool[],
                $6::text[], $7::text[], $8::bool[], $9::text[], $10::text[], $11::jsonb[],
                $12::uuid[], $13::real[], $14::jsonb[], $15::bigint[], $16::bigint[])
              with ordinality as r(tenant_id, conv, bot_id, end_user, is_new, status, reason,
                sandbox, kind, txt, pl, rl, sc, mt, upd, tmid, n)
         ), o as (
            select * from unnest($17::bigint[], $18::text[], $19::jsonb[], $20::uuid[])
              with ordinality as o(n, txt, pl, rl, ord)
         ), new_conv as (
            insert into conversations (tenant_id, id, bot_id, end_user_id, status, handover_reason,
                waiting_since, is_test)
            select tenant_id, conv, bot_id, end_user, status, reason,
                   case when status = 'waiting' then now() end, sandbox
            from r where is_new
            returning id
         ), changed_conv as (
            update conversations c set
                status = r.status,
                handover_reason = coalesce(r.reason, c.handover_reason),
                waiting_since = case when r.status = 'waiting' and c.status <> 'waiting' then now()
                                     else c.waiting_since end,
                last_message_at = now()
            from r
            where c.tenant_id = r.tenant_id and c.id = r.conv and not r.is_new
            returning c.id
         ), msgs as (
            insert into messages (tenant_id, conversation_id, end_user_id, direction, sender, kind,
                text, payload, rule_id, score, match, update_id, telegram_message_id)
            select tenant_id, conv, end_user, dir, snd, knd, txt, pl, rl, sc, mt, upd, tmid
            from (
                select r.n, 0::bigint as ord, r.tenant_id, r.conv, r.end_user, 'in' as dir,
                       'user' as snd, r.kind as knd, r.txt, r.pl, r.rl, r.sc, r.mt, r.upd, r.tmid
                from r
                union all
                select o.n, o.ord, r.tenant_id, r.conv, r.end_user, 'out', 'bot', 'text', o.txt,
                       o.pl, o.rl, null, null, null, null
                from o join r on r.n = o.n
            ) m
            order by n, ord
            returning tenant_id, id, end_user_id, direction, created_at
         ), dels as (
            insert into deliveries (tenant_id, message_id, end_user_id, status, sent_at, created_at)
            select m.tenant_id, m.id, m.end_user_id, case when r.sandbox then 'sent' else 'pending' end,
                   case when r.sandbox then now() end, m.created_at
            from msgs m join r on r.tenant_id = m.tenant_id and r.end_user = m.end_user_id
            where m.direction = 'out'
         ), evs as (
            insert into events (tenant_id, kind, actor_type, actor_id, conversation_id, end_user_id, data)
            select r.tenant_id, e.kind, 'end_user', r.end_user::text, r.conv, r.end_user, e.data
            from unnest($21::bigint[], $22::text[], $23::jsonb[]) with ordinality as e(n, kind, data, ord)
            join r on r.n = e.n
            order by e.ord
            returning 1
         ), queued as (
            insert into delivery_queue (tenant_id, end_user_id, bot_id)
            select r.tenant_id, r.end_user, r.bot_id from r
            where not r.sandbox and exists (select 1 from o where o.n = r.n)
            order by r.tenant_id, r.end_user
            on conflict (tenant_id, end_user_id) do update set ready_at = delivery_queue.ready_at
            returning 1
         )
         ",
        record_summary!()
    ),
    )
    .bind(&tenants)
    .bind(&conversations)
    .bind(&bots)
    .bind(&end_users)
    .bind(&new)
    .bind(&statuses)
    .bind(&reasons)
    .bind(&sandbox)
    .bind(&kinds)
    .bind(&texts)
    .bind(&payloads)
    .bind(&rules)
    .bind(&scores)
    .bind(&matches)
    .bind(&update_ids)
    .bind(&message_ids)
    .bind(&out_of)
    .bind(&out_texts)
    .bind(&out_payloads)
    .bind(&out_rules)
    .bind(&ev_of)
    .bind(&ev_kinds)
    .bind(&ev_data)
    .execute(conn)
    .await?;
    Ok(())
}
