//! Logs and statistics at the size of a busy tenant: 5,000,000 messages over a year.
//!
//! `cargo bench --bench stats [-- --messages 5000000 --keep]`
//! (under `cargo test` it runs a small smoke version)
//!
//! Generates a tenant in a fresh database (end users, conversations with hand-overs and
//! operator replies, messages in Russian and English with a daily rhythm, events), rolls
//! up the whole year, then times on the server side, as the pages and the API run them:
//! the roll-up of one day, the 30-day dashboard report, and the log's first page with
//! each single filter. `--keep` leaves the database for EXPLAIN.

mod common;
use common::arg;

use std::time::{Duration, Instant};

use chrono::Utc;
use switchboard_db::log::{self, LogFilter};
use switchboard_db::stats;
use switchboard_testkit::TestDb;
use switchboard_web::reports::{self, StatsQuery};

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Best of `runs` (the first run warms the cache).
async fn time<F, Fut, T>(runs: usize, mut f: F) -> (Duration, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f().await;
        best = best.min(t.elapsed());
        out = Some(v);
    }
    (best, out.expect("at least one run"))
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = common::full_run();
    let messages: i64 = arg("--messages", if full { 5_000_000 } else { 20_000 });
    let keep = std::env::args().any(|a| a == "--keep");
    // `--database URL`: time the reads on a database a `--keep` run left (no generation).
    let reuse = std::env::args().skip_while(|a| a != "--database").nth(1);
    let db = TestDb::new().await;
    let pool = match &reuse {
        Some(url) => switchboard_db::PgPool::connect(url)
            .await
            .expect("the kept database"),
        None => db.pool.clone(),
    };
    let mut tenant = switchboard_core::TenantId::new();
    if reuse.is_some() {
        tenant = sqlx::query_scalar("select id from tenants where slug = 'bench'")
            .fetch_one(&pool)
            .await
            .expect("a benchmark database");
    }
    let (users, _conversations): (i64, i64) = if reuse.is_some() {
        sqlx::query_as(
            "select (select count(*) from end_users), (select count(*) from conversations)",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    } else {
        generate(&pool, tenant, messages).await
    };
    let now = Utc::now();
    if reuse.is_none() {
        rollup_year(&pool, tenant, now).await;
    }
    timings(&pool, tenant, now, messages, users, full).await;
    if keep {
        println!("database kept: {}", db.url);
        std::mem::forget(db);
    }
}

async fn generate(
    pool: &switchboard_db::PgPool,
    tenant: switchboard_core::TenantId,
    messages: i64,
) -> (i64, i64) {
    let pool = pool.clone();
    let users = (messages / 25).max(10);
    let conversations = (messages / 5).max(10);

    let t0 = Instant::now();
    for sql in [
        "insert into tenants (id, slug, name) values ($1, 'bench', 'Bench')",
        "insert into bot_settings (tenant_id, welcome_text, help_text, handover_text, closing_text,
            already_waiting_text, stale_button_text, timezone)
         values ($1, 'hi', 'help', 'wait', 'bye', 'waiting', 'stale', 'Europe/Moscow')",
        "insert into bots (tenant_id, id, public_id, telegram_bot_id, username, token_ciphertext, token_nonce,
            token_key_id, token_hint, status)
         values ($1, gen_random_uuid(), 'benchbot', 1, 'bench_bot', '\\x00', '\\x00', 'k', '…', 'active')",
        "insert into answer_rules (tenant_id, id, title, answer, examples)
         select $1, gen_random_uuid(), 'Rule ' || i, 'Answer ' || i, array['question ' || i]
         from generate_series(1, 200) i",
        "insert into users (id, email) select gen_random_uuid(), 'op' || i || '@bench.test' from generate_series(1, 10) i",
        "insert into memberships (tenant_id, user_id, role) select $1, id, 'operator' from users where email like '%@bench.test'",
    ] {
        sqlx::query(sql).bind(tenant).execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // End users, then conversations spread over the year (a quarter handed over).
    sqlx::query(
        "insert into end_users (tenant_id, id, bot_id, telegram_user_id, chat_id, first_name, language_code, first_seen_at)
         select $1, gen_random_uuid(), b.id, 1000 + i, 1000 + i, 'User ' || i,
                case when i % 3 = 0 then 'en' else 'ru' end,
                now() - make_interval(days => 365) + (i::float8 / $2) * interval '365 days'
         from bots b, generate_series(1, $2) i where b.tenant_id = $1",
    )
    .bind(tenant)
    .bind(users)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "with ops as (select array_agg(id) a from users where email like '%@bench.test'),
         u as (select id, bot_id, row_number() over () - 1 as n from end_users where tenant_id = $1)
         insert into conversations (tenant_id, id, bot_id, end_user_id, status, opened_at, waiting_since,
                                    assigned_at, first_response_at, closed_at, closed_by, assignee_id, rating)
         select $1, gen_random_uuid(), u.bot_id, u.id, 'closed', o, w, w + interval '2 minutes',
                w + make_interval(secs => 30 + (i % 600)), o + interval '3 hours',
                case when w is not null then ops.a[1 + i % 10] end, case when w is not null then ops.a[1 + i % 10] end,
                case when w is not null and i % 5 = 0 then 1 + i % 5 end
         from generate_series(0, $2 - 1) i
         cross join ops
         join u on u.n = i % $3
         cross join lateral (select now() - make_interval(days => 365) + (i::float8 / $2) * interval '365 days' as o) t
         cross join lateral (select case when i % 4 = 0 then t.o + interval '1 minute' end as w) h",
    )
    .bind(tenant)
    .bind(conversations)
    .bind(users)
    .execute(&pool)
    .await
    .unwrap();
    // Five messages per conversation, alternating in/out, with a daily rhythm.
    let texts = "array['у меня не работает интернет', 'когда вы открыты', 'where is my parcel',
                       'how do I reset my password', 'спасибо, всё работает', 'верните деньги за заказ']";
    let batch = 500_000i64;
    let mut done = 0i64;
    while done < messages {
        let n = batch.min(messages - done);
        sqlx::query(&format!(
            "with c as (select id, end_user_id, opened_at, row_number() over () - 1 as n
                        from conversations where tenant_id = $1)
             , m as (
             insert into messages (tenant_id, conversation_id, end_user_id, direction, sender, text,
                                   rule_id, created_at)
             select $1, c.id, c.end_user_id, case when k % 2 = 0 then 'in' else 'out' end,
                    case when k % 2 = 0 then 'user' else 'bot' end,
                    ({texts})[1 + (j % 6)], null,
                    c.opened_at + make_interval(secs => k * 20)
             from generate_series($2, $2 + $3 - 1) j
             cross join lateral (select j / 5 as ci, j % 5 as k) x
             join c on c.n = x.ci % $4
             returning tenant_id, id, end_user_id, direction, created_at)
             insert into deliveries (tenant_id, message_id, end_user_id, status, created_at)
             select tenant_id, id, end_user_id,
                    case when id % 1000 in (1, 2) then 'failed' else 'sent' end, created_at
             from m where direction = 'out'"
        ))
        .bind(tenant)
        .bind(done)
        .bind(n)
        .bind(conversations)
        .execute(&pool)
        .await
        .unwrap();
        done += n;
    }
    sqlx::query(
        "insert into events (tenant_id, kind, actor_type, actor_id, conversation_id, end_user_id, data, created_at)
         select $1, 'conversation.handover', 'end_user', end_user_id::text, id, end_user_id, '{\"reason\": \"no_match\"}'::jsonb, waiting_since
         from conversations where tenant_id = $1 and waiting_since is not null
         union all
         select $1, 'conversation.closed', 'user', closed_by::text, id, end_user_id, '{}'::jsonb, closed_at
         from conversations where tenant_id = $1 and waiting_since is not null",
    )
    .bind(tenant)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("analyze").execute(&pool).await.unwrap();
    let generated = t0.elapsed();
    println!(
        "generated {messages} messages, {conversations} conversations, {users} end users in {:.0} s",
        generated.as_secs_f64()
    );
    (users, conversations)
}

/// Rolls up the year, day by day; the slowest day is the figure.
async fn rollup_year(
    pool: &switchboard_db::PgPool,
    tenant: switchboard_core::TenantId,
    now: chrono::DateTime<Utc>,
) {
    let start = stats::hour_floor(now - chrono::Duration::days(366));
    let t1 = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut day = start;
    while day < now {
        let t = Instant::now();
        let mut tx = pool.begin().await.unwrap();
        stats::rollup(&mut tx, tenant, day, day + chrono::Duration::days(1))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        slowest = slowest.max(t.elapsed());
        day += chrono::Duration::days(1);
    }
    println!(
        "roll-up of the year: {:.1} s; one day: slowest {}",
        t1.elapsed().as_secs_f64(),
        ms(slowest)
    );
    // As autovacuum would (it also sets the visibility map that index-only scans use).
    sqlx::query("vacuum analyze").execute(pool).await.unwrap();
}

async fn timings(
    pool: &switchboard_db::PgPool,
    tenant: switchboard_core::TenantId,
    now: chrono::DateTime<Utc>,
    messages: i64,
    users: i64,
    full: bool,
) {
    let range = reports::resolve(&StatsQuery::default(), "Europe/Moscow", now).unwrap();
    let (d, report) = time(5, || reports::report(pool, tenant, &range)).await;
    let report = report.unwrap();
    let messages_30d: i64 = report["totals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["metric"] == "messages_in")
        .map(|t| t["value"].as_i64().unwrap())
        .sum();
    println!(
        "dashboard, 30 days ({messages_30d} messages from users): {}",
        ms(d)
    );
    let year = reports::resolve(
        &StatsQuery {
            from: Some((now - chrono::Duration::days(364)).date_naive().to_string()),
            to: None,
            granularity: Some("week".into()),
        },
        "Europe/Moscow",
        now,
    )
    .unwrap();
    let (d, _) = time(3, || reports::report(pool, tenant, &year)).await;
    println!("dashboard, 365 days by week: {}", ms(d));

    let some_user: uuid::Uuid =
        sqlx::query_scalar("select id from end_users where tenant_id = $1 offset $2 limit 1")
            .bind(tenant)
            .bind(users / 2)
            .fetch_one(pool)
            .await
            .unwrap();
    let some_conv: uuid::Uuid = sqlx::query_scalar(
        "select conversation_id from messages where tenant_id = $1 offset $2 limit 1",
    )
    .bind(tenant)
    .bind(messages / 2)
    .fetch_one(pool)
    .await
    .unwrap();
    let some_op: uuid::Uuid = sqlx::query_scalar("select closed_by from conversations where tenant_id = $1 and closed_by is not null limit 1")
        .bind(tenant)
        .fetch_one(pool)
        .await
        .unwrap();
    let base = LogFilter {
        limit: 50,
        ..Default::default()
    };
    let filters: Vec<(&str, LogFilter)> = vec![
        ("no filter", base.clone()),
        (
            "last 7 days",
            LogFilter {
                from: Some(now - chrono::Duration::days(7)),
                ..base.clone()
            },
        ),
        (
            "a month a year ago",
            LogFilter {
                from: Some(now - chrono::Duration::days(330)),
                to: Some(now - chrono::Duration::days(300)),
                ..base.clone()
            },
        ),
        (
            "one end user",
            LogFilter {
                end_user: Some(some_user),
                ..base.clone()
            },
        ),
        (
            "one conversation",
            LogFilter {
                conversation: Some(some_conv),
                ..base.clone()
            },
        ),
        (
            "kind message.in",
            LogFilter {
                kind: Some("message.in".into()),
                ..base.clone()
            },
        ),
        (
            "kind conversation.handover",
            LogFilter {
                kind: Some("conversation.handover".into()),
                ..base.clone()
            },
        ),
        (
            "operator",
            LogFilter {
                operator: Some(some_op),
                ..base.clone()
            },
        ),
        (
            "delivery failed",
            LogFilter {
                delivery: Some("failed".into()),
                ..base.clone()
            },
        ),
        (
            "search 'интернета'",
            LogFilter {
                q: Some("интернета".into()),
                ..base.clone()
            },
        ),
        (
            "search 'parcels'",
            LogFilter {
                q: Some("parcels".into()),
                ..base.clone()
            },
        ),
    ];
    println!("log, first page of 50 (platform path / scoped to the tenant, as it runs):");
    for (name, f) in &filters {
        let (d, rows) = time(5, || log::page(pool, tenant, f)).await;
        let rows = rows.unwrap();
        assert!(!rows.is_empty() || !full, "{name}: no rows");
        let (scoped, same) = time(5, || async {
            let mut tx = switchboard_db::begin_scoped(pool, tenant).await.unwrap();
            log::page(&mut *tx, tenant, f).await
        })
        .await;
        assert_eq!(
            same.unwrap().len(),
            rows.len(),
            "{name}: the same page scoped"
        );
        let runs = if f.needs_unleakproof_index() {
            "platform"
        } else {
            "scoped"
        };
        println!(
            "  {name:<28} {:>9} / {:>9}  ({} rows; runs {runs})",
            ms(d),
            ms(scoped),
            rows.len()
        );
    }
    // Deep in the log: the 200th page by keyset.
    let mut f = base.clone();
    for _ in 0..199 {
        let rows = log::page(pool, tenant, &f).await.unwrap();
        f.after = rows.last().map(|r| r.cursor());
    }
    let (d, _) = time(5, || log::page(pool, tenant, &f)).await;
    println!("  {:<28} {:>9}", "page 200 (keyset)", ms(d));
}
