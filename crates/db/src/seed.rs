//! Seeding a tenant with a realistic history at scale (`switchboard bench seed`), for
//! measuring the desk's and the API's lists, the log and the statistics at the size of a
//! big organization. Everything is generated inside PostgreSQL (`generate_series`), in
//! batches, so millions of rows take minutes, not hours.
//!
//! The history: end users writing in Russian and English over `days` days, each
//! conversation a few messages (questions, the bot's answers, operators' replies), most
//! closed by an operator with a resolution, the recent ones still with the bot, waiting or
//! assigned — at most one open conversation per end user, as the schema requires.

use sqlx::PgPool;
use switchboard_core::{BotId, TenantId};

use crate::Result;

/// How much history to make.
#[derive(Clone, Copy, Debug)]
pub struct SeedSpec {
    pub conversations: i64,
    pub messages: i64,
    /// Operators to create (members with the operator role, without a password).
    pub operators: i64,
    /// Days the history spans, ending now.
    pub days: i64,
}

/// What was made.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seeded {
    pub end_users: i64,
    pub conversations: i64,
    pub messages: i64,
    pub waiting: i64,
    pub assigned: i64,
}

/// The conversations of this run: those of the end users it made (`$2` the bot, `$3` the
/// Telegram id below which the earlier ones are).
const THIS_RUN: &str = "end_user_id in (select id from end_users where tenant_id = $1
    and bot_id = $2 and telegram_user_id > $3)";
/// The same with the Telegram id in `$7`.
const THIS_RUN7: &str = "end_user_id in (select id from end_users where tenant_id = $1
    and bot_id = $2 and telegram_user_id > $7)";

/// Rows per statement for messages.
const BATCH: i64 = 250_000;

/// Questions and answers the generated people write, Russian and English.
const TEXTS: &str = "array[
    'у меня не работает интернет', 'когда вы открыты', 'где моя посылка',
    'как сбросить пароль', 'верните деньги за заказ', 'не приходит смс с кодом',
    'сколько стоит доставка в Казань', 'можно поменять адрес доставки',
    'where is my parcel', 'how do I reset my password', 'the app crashes on start',
    'can I change my delivery address', 'I was charged twice', 'do you ship to Germany']";
const ANSWERS: &str = "array[
    'Проверьте, пожалуйста, роутер и перезагрузите его.', 'Мы работаем с 9 до 18 по Москве.',
    'Посылка в пути, номер для отслеживания пришлём в течение дня.',
    'Ссылка для сброса пароля отправлена на вашу почту.',
    'Your parcel is on its way; tracking follows today.', 'We are open 9–18 CET.',
    'The reset link is in your inbox.', 'Refunds take 3–5 business days.']";
const FIRST_NAMES: &str = "array['Иван', 'Мария', 'Алексей', 'Ольга', 'Дмитрий', 'Анна',
    'Сергей', 'Елена', 'John', 'Emma', 'Liam', 'Olivia', 'Noah', 'Sophia']";
const RESOLUTIONS: &str = "array['resolved', 'refunded', 'answered', 'duplicate', 'no reply']";

/// Fills the tenant with history. Uses the tenant's live bot, or makes a disconnected
/// one to hang the history on. `progress` hears what is being done.
pub async fn seed(
    pool: &PgPool,
    tenant: TenantId,
    spec: SeedSpec,
    progress: impl Fn(&str),
) -> Result<Seeded> {
    let conversations = spec.conversations.max(1);
    let messages = spec.messages.max(0);
    let days = spec.days.max(1);
    let users = (conversations / 3).max(1);
    let bot = bot_for(pool, tenant).await?;

    progress("operators");
    sqlx::query(
        "insert into users (id, email, display_name)
         select gen_random_uuid(), 'op' || i || '.' || t.slug || '@seed.invalid',
                ($3::text[])[1 + i % 14] || ' (seed)'
         from tenants t, generate_series(1, $2) i where t.id = $1
         on conflict do nothing",
    )
    .bind(tenant)
    .bind(spec.operators.max(1))
    .bind(names())
    .execute(pool)
    .await?;
    sqlx::query(
        "insert into memberships (tenant_id, user_id, role)
         select $1, u.id, 'operator' from users u, tenants t
         where t.id = $1 and u.email like 'op%.' || t.slug || '@seed.invalid'
         on conflict do nothing",
    )
    .bind(tenant)
    .execute(pool)
    .await?;

    progress("end users");
    let base: i64 = sqlx::query_scalar(
        "select greatest(max(telegram_user_id), 5000000000) from end_users where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await?;
    sqlx::query(&format!(
        "insert into end_users (tenant_id, id, bot_id, telegram_user_id, chat_id, first_name,
                                username, language_code, first_seen_at, last_seen_at)
         select $1, gen_random_uuid(), $2, $3 + i, $3 + i, ({FIRST_NAMES})[1 + i % 14],
                case when i % 4 = 0 then 'user' || i end,
                case when i % 14 < 8 then 'ru' else 'en' end,
                now() - make_interval(days => $5) + (i::float8 / $4) * make_interval(days => $5),
                now()
         from generate_series(1, $4) i"
    ))
    .bind(tenant)
    .bind(bot)
    .bind(base)
    .bind(users)
    .bind(days as i32)
    .execute(pool)
    .await?;

    // Conversation i belongs to end user i mod users, and opens at a time spread over the
    // period. Only a user's last conversation may be open: of those, the most recent
    // few percent are waiting, assigned or with the bot.
    progress("conversations");
    let open_from = conversations - users;
    sqlx::query(&format!(
        "with ops as (select array_agg(user_id order by user_id) a, count(*) n
                      from memberships where tenant_id = $1 and role = 'operator'),
              u as (select id, telegram_user_id - $7 - 1 as n
                    from end_users where tenant_id = $1 and bot_id = $2
                      and telegram_user_id > $7)
         insert into conversations (tenant_id, id, bot_id, end_user_id, status, assignee_id,
                                    handover_reason, resolution, rating, opened_at,
                                    waiting_since, assigned_at, first_response_at, closed_at,
                                    closed_by, last_message_at)
         select $1, gen_random_uuid(), $2, u.id, s.status,
                case when s.status in ('assigned', 'closed') and h then op end,
                case when h then case when i % 3 = 0 then 'requested' else 'no_match' end end,
                case when s.status = 'closed' and h then ({RESOLUTIONS})[1 + i % 5] end,
                case when s.status = 'closed' and h and i % 5 = 0 then 1 + i % 5 end,
                o, case when h then o + interval '1 minute' end,
                case when h and s.status in ('assigned', 'closed') then o + interval '3 minutes' end,
                case when h and s.status in ('assigned', 'closed') then o + interval '4 minutes' end,
                case when s.status = 'closed' then o + interval '40 minutes' end,
                case when s.status = 'closed' and h then op end,
                o + interval '30 minutes'
         from generate_series(0, $3 - 1) i
         cross join ops
         join u on u.n = i % $4
         cross join lateral (
            select now() - make_interval(days => $5)
                   + (i::float8 / $3) * make_interval(days => $5) - interval '1 hour' as o,
                   i % 4 = 0 or i >= $6 as h,
                   ops.a[1 + i % greatest(ops.n, 1)] as op) t
         cross join lateral (
            select case
                when i < $6 then 'closed'
                when i % 100 < 4 then 'waiting'
                when i % 100 < 6 then 'assigned'
                when i % 100 < 7 then 'bot'
                else 'closed' end as status) s"
    ))
    .bind(tenant)
    .bind(bot)
    .bind(conversations)
    .bind(users)
    .bind(days as i32)
    .bind(open_from)
    .bind(base)
    .execute(pool)
    .await?;
    // A bot conversation has not been handed over.
    sqlx::query(&format!(
        "update conversations set handover_reason = null, waiting_since = null
         where tenant_id = $1 and status = 'bot' and {THIS_RUN}"
    ))
    .bind(tenant)
    .bind(bot)
    .bind(base)
    .execute(pool)
    .await?;

    // Messages: conversation c gets messages j with j / per = c, alternating the user's
    // question and the answer (the bot's; an operator's in handed-over conversations).
    let per = (messages / conversations).max(1);
    let mut done = 0i64;
    while done < messages {
        let n = BATCH.min(messages - done);
        progress(&format!("messages {done}–{}", done + n));
        sqlx::query(&format!(
            "with c as (select id, end_user_id, opened_at, assignee_id, waiting_since,
                               row_number() over (order by opened_at, id) - 1 as n
                        from conversations where tenant_id = $1 and {THIS_RUN7})
             , m as (
             insert into messages (tenant_id, conversation_id, end_user_id, direction, sender,
                                   operator_id, text, created_at)
             select $1, c.id, c.end_user_id,
                    case when k % 2 = 0 then 'in' else 'out' end,
                    case when k % 2 = 0 then 'user'
                         when c.assignee_id is not null and k > 1 then 'operator'
                         else 'bot' end,
                    case when k % 2 = 1 and c.assignee_id is not null and k > 1 then c.assignee_id end,
                    case when k % 2 = 0 then ({TEXTS})[1 + (j * 7 + k) % 14]
                         else ({ANSWERS})[1 + (j * 3 + k) % 8] end,
                    c.opened_at + make_interval(secs => k * 60)
             from generate_series($3, $3 + $4 - 1) j
             cross join lateral (select j / $5 as ci, j % $5 as k) x
             join c on c.n = x.ci % $6
             returning tenant_id, id, end_user_id, direction, created_at)
             insert into deliveries (tenant_id, message_id, end_user_id, status, sent_at, created_at)
             select tenant_id, id, end_user_id, 'sent', created_at, created_at
             from m where direction = 'out'"
        ))
        .bind(tenant)
        .bind(bot)
        .bind(done)
        .bind(n)
        .bind(per)
        .bind(conversations)
        .bind(base)
        .execute(pool)
        .await?;
        done += n;
    }
    progress("the last message times");
    sqlx::query(&format!(
        // Per conversation, along the messages' conversation index: a join of the run's
        // messages grouped by conversation was planned as a scan per conversation on the
        // second run into an organization (over ten minutes for 20,000 conversations).
        "update conversations c set last_message_at = coalesce(
             (select max(m.created_at) from messages m
              where m.tenant_id = c.tenant_id and m.conversation_id = c.id),
             c.last_message_at)
         where c.tenant_id = $1 and {THIS_RUN}"
    ))
    .bind(tenant)
    .bind(bot)
    .bind(base)
    .execute(pool)
    .await?;
    progress("events");
    sqlx::query(&format!(
        "insert into events (tenant_id, kind, actor_type, actor_id, conversation_id,
                             end_user_id, data, created_at)
         select $1, 'conversation.handover', 'end_user', end_user_id::text, id, end_user_id,
                jsonb_build_object('reason', handover_reason), waiting_since
         from conversations where tenant_id = $1 and waiting_since is not null and {THIS_RUN}
         union all
         select $1, 'conversation.closed', 'user', closed_by::text, id, end_user_id,
                jsonb_build_object('resolution', resolution), closed_at
         from conversations where tenant_id = $1 and closed_by is not null and {THIS_RUN}"
    ))
    .bind(tenant)
    .bind(bot)
    .bind(base)
    .execute(pool)
    .await?;
    // As autovacuum would leave them: statistics for the planner, and the visibility
    // map that lets index-only scans skip the table.
    progress("vacuum analyze");
    for table in ["end_users", "conversations", "messages", "events"] {
        sqlx::query(&format!("vacuum analyze {table}"))
            .execute(pool)
            .await?;
    }
    let (waiting, assigned): (i64, i64) = sqlx::query_as(&format!(
        "select count(*) filter (where status = 'waiting'),
                count(*) filter (where status = 'assigned')
         from conversations where tenant_id = $1 and {THIS_RUN}"
    ))
    .bind(tenant)
    .bind(bot)
    .bind(base)
    .fetch_one(pool)
    .await?;
    Ok(Seeded {
        end_users: users,
        conversations,
        messages,
        waiting,
        assigned,
    })
}

fn names() -> Vec<String> {
    [
        "Анна",
        "Олег",
        "Мария",
        "Павел",
        "Ирина",
        "Кирилл",
        "Наталья",
        "Игорь",
        "Kate",
        "Mark",
        "Lucy",
        "Tom",
        "Nina",
        "Alex",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The bot the history hangs on: a disconnected one made for it (so that the tenant's
/// own bot keeps its real history apart, and seeding twice adds to the same place).
async fn bot_for(pool: &PgPool, tenant: TenantId) -> Result<BotId> {
    if let Some(id) = sqlx::query_scalar(
        "select id from bots where tenant_id = $1 and username = 'seeded_history_bot'",
    )
    .bind(tenant)
    .fetch_optional(pool)
    .await?
    {
        return Ok(id);
    }
    let id = BotId::new();
    sqlx::query(
        "with b as (
            insert into bots (tenant_id, id, public_id, telegram_bot_id, username, first_name,
                              token_hint, status, removed_at)
            values ($1, $2, 'seed-' || replace(gen_random_uuid()::text, '-', ''), 1,
                    'seeded_history_bot', 'Seeded history', '…', 'removed', now())
            returning public_id, tenant_id, id)
         insert into bot_routes (public_id, tenant_id, bot_id)
         select public_id, tenant_id, id from b",
    )
    .bind(tenant)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(id)
}
