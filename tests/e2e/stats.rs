//! Logs and statistics: roll-ups against direct counts (late events, re-runs, time zones),
//! the log's filters, search in both languages, pages and exports, retention, erasure,
//! and tenant isolation of every page and endpoint.

use chrono::{Duration, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_core::Role;
use switchboard_db::stats;

use crate::harness::{alice, bob, Tenant, TestApp};

/// A tenant with a bot, one rule, and a little real traffic through the webhook: an
/// answered question (English), a hand-over (Russian).
async fn with_traffic(app: &TestApp, name: &str) -> (Tenant, switchboard_testkit::FakeBot) {
    let t = app.tenant(name).await;
    let bot = app
        .connect_bot(&t, &format!("{}_bot", name.to_lowercase()))
        .await;
    let (s, body) = app
        .post(
            &t.token,
            "/api/v1/rules",
            json!({"title": "Hours", "answer": "We are open 9–18.", "examples": ["when are you open", "opening hours"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    app.say(&bot, &alice(), "When are you open?").await;
    app.expect_sent(&bot, alice().id, 1).await;
    app.say(&bot, &bob().lang("ru"), "у меня не работает интернет")
        .await;
    app.expect_sent(&bot, bob().id, 1).await;
    (t, bot)
}

/// Backdated messages straight into the database: `n` inbound and `n` outbound per hour
/// for `hours` hours ending at `end`, in one new conversation of a new end user.
async fn generate(app: &TestApp, t: &Tenant, end: chrono::DateTime<Utc>, hours: i32, n: i32) {
    sqlx::query(
        "with u as (
            insert into end_users (tenant_id, id, bot_id, telegram_user_id, chat_id, first_name, language_code, first_seen_at)
            select $1, gen_random_uuid(), b.id, 900000 + floor(random() * 100000)::bigint, 1, 'Gen', 'ru', $2 - make_interval(hours => $3)
            from bots b where b.tenant_id = $1 and b.status = 'active' returning id, bot_id
         ), c as (
            insert into conversations (tenant_id, id, bot_id, end_user_id, status, opened_at)
            select $1, gen_random_uuid(), u.bot_id, u.id, 'bot', $2 - make_interval(hours => $3) from u
            returning id, end_user_id
         )
         , m as (
         insert into messages (tenant_id, conversation_id, end_user_id, direction, sender, text, created_at)
         select $1, c.id, c.end_user_id, d.direction, case d.direction when 'in' then 'user' else 'bot' end,
                'generated ' || h || ' ' || i,
                $2 - make_interval(hours => h) + make_interval(secs => i)
         from c, generate_series(1, $3) h, generate_series(1, $4) i, (values ('in'), ('out')) d(direction)
         returning id, end_user_id, direction, created_at)
         insert into deliveries (tenant_id, message_id, end_user_id, status, created_at)
         select $1, id, end_user_id, 'sent', created_at from m where direction = 'out'",
    )
    .bind(t.id)
    .bind(end)
    .bind(hours)
    .bind(n)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

fn totals_of(report: &Value) -> std::collections::BTreeMap<String, i64> {
    let mut out = std::collections::BTreeMap::new();
    for x in report["totals"].as_array().unwrap() {
        *out.entry(x["metric"].as_str().unwrap().to_string())
            .or_insert(0) += x["value"].as_i64().unwrap();
    }
    out
}

async fn direct_count(
    app: &TestApp,
    t: &Tenant,
    direction: &str,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
) -> i64 {
    sqlx::query_scalar(
        "select count(*) from messages m join conversations c on c.tenant_id = m.tenant_id and c.id = m.conversation_id
         where m.tenant_id = $1 and m.direction = $2 and m.created_at >= $3 and m.created_at < $4 and not c.is_test",
    )
    .bind(t.id)
    .bind(direction)
    .bind(from)
    .bind(to)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn rollups_match_direct_counts_pick_up_late_events_and_rerun_to_the_same_numbers() {
    let app = TestApp::start().await;
    let (t, _bot) = with_traffic(&app, "Rollup").await;
    let now = Utc::now();
    generate(&app, &t, now, 72, 3).await;
    let from = now - Duration::days(5);

    // Everything live (nothing rolled up yet) …
    let q = "/api/v1/stats?granularity=day";
    let (s, live) = app.get(&t.token, q).await;
    assert_eq!(s, StatusCode::OK, "{live}");
    let live_totals = totals_of(&live);
    assert_eq!(
        live_totals["messages_in"],
        direct_count(&app, &t, "in", from, now + Duration::hours(1)).await
    );
    assert_eq!(
        live_totals["messages_out"],
        direct_count(&app, &t, "out", from, now + Duration::hours(1)).await
    );
    assert_eq!(live_totals["messages_in"], 72 * 3 + 2);
    assert!(live_totals["handovers"] >= 1, "{live_totals:?}");

    // … then rolled up: the same numbers, from the roll-ups.
    let mut tx = app.db.pool.begin().await.unwrap();
    let rows = stats::rollup(&mut tx, t.id, from, now).await.unwrap();
    tx.commit().await.unwrap();
    assert!(rows > 0);
    let stored: i64 = sqlx::query_scalar(
        "select coalesce(sum(value), 0)::bigint from stats_hourly where tenant_id = $1 and metric = 'messages_in'",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let rolled_hours_end = stats::hour_floor(now);
    assert_eq!(
        stored,
        direct_count(
            &app,
            &t,
            "in",
            from,
            stats::hour_floor(now) + Duration::hours(1)
        )
        .await
    );
    assert_eq!(
        stats::rolled_until(&app.db.pool, t.id).await.unwrap(),
        Some(rolled_hours_end)
    );
    let (_, rolled) = app.get(&t.token, q).await;
    assert_eq!(
        totals_of(&rolled),
        live_totals,
        "roll-ups and live counting disagree"
    );

    // A late event: a message stamped two hours ago arrives after that hour was rolled up.
    let late_at = now - Duration::hours(2);
    generate(&app, &t, late_at + Duration::hours(1), 1, 5).await;
    let (_, stale) = app.get(&t.token, q).await;
    assert_eq!(
        totals_of(&stale)["messages_in"],
        live_totals["messages_in"],
        "rolled-up hours are read from the roll-ups"
    );
    switchboard_jobs::scheduled::rollup_recent(&app.db.pool, Utc::now())
        .await
        .unwrap();
    let (_, fresh) = app.get(&t.token, q).await;
    assert_eq!(
        totals_of(&fresh)["messages_in"],
        live_totals["messages_in"] + 5
    );

    // Re-running a period gives the same rows.
    let snapshot = || async {
        sqlx::query_as::<_, (chrono::DateTime<Utc>, String, String, i64)>(
            "select hour, metric, dim, value from stats_hourly where tenant_id = $1 order by 1, 2, 3",
        )
        .bind(t.id)
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
    };
    let before = snapshot().await;
    let mut tx = app.db.pool.begin().await.unwrap();
    stats::rollup(&mut tx, t.id, from, now).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(snapshot().await, before);

    // The series adds up to the totals, one bucket per local day.
    let series_in: i64 = fresh["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["values"]["messages_in"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(series_in, totals_of(&fresh)["messages_in"]);
    assert_eq!(fresh["series"].as_array().unwrap().len(), 30);
    assert_eq!(fresh["languages"][0][0], "ru", "{}", fresh["languages"]);
}

#[tokio::test]
async fn days_are_the_tenants_local_days() {
    let app = TestApp::start().await;
    let (t, _bot) = with_traffic(&app, "Zone").await;
    let (s, body) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"timezone": "Europe/Moscow"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // 21:30 UTC on 1 March is 00:30 on 2 March in Moscow: 4 messages each way.
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 21, 30, 0).unwrap();
    generate(&app, &t, at + Duration::hours(1), 1, 4).await;
    let count = |day: &'static str| {
        let app = &app;
        let token = t.token.clone();
        async move {
            let (s, r) = app
                .get(
                    &token,
                    &format!("/api/v1/stats?from={day}&to={day}&granularity=hour"),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{r}");
            (totals_of(&r).get("messages_in").copied().unwrap_or(0), r)
        }
    };
    let (march2, r) = count("2026-03-02").await;
    assert_eq!(march2, 4);
    assert_eq!(count("2026-03-01").await.0, 0);
    // Hourly buckets in local time: the messages are in the 00:00 bucket.
    let first = &r["series"][0];
    assert_eq!(first["start"], "2026-03-02T00:00");
    assert_eq!(first["values"]["messages_in"], 4);
    assert_eq!(r["series"].as_array().unwrap().len(), 24);
    // Heat map: Monday 2 March, hour 0 (local).
    assert_eq!(r["heatmap"][0][0], 4);

    // Bad periods are refused with the field and change nothing.
    for (q, field) in [
        ("from=2026-03-05&to=2026-03-01", "from"),
        ("from=yesterday", "from"),
        ("granularity=minute", "granularity"),
    ] {
        let (s, body) = app.get(&t.token, &format!("/api/v1/stats?{q}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {body}");
        assert!(body.to_string().contains(field), "{q}: {body}");
    }
}

#[tokio::test]
async fn a_half_hour_time_zone_counts_the_same_before_and_after_the_roll_up() {
    let app = TestApp::start().await;
    let (t, _bot) = with_traffic(&app, "Kolkata").await;
    let (s, body) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"timezone": "Asia/Kolkata"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Kolkata is UTC+5:30: its 2 March starts at 18:30 UTC on 1 March, inside an hour
    // the roll-ups keep whole. 18:15 UTC is still 1 March there, 18:45 already 2 March.
    let hour = Duration::hours(1);
    generate(
        &app,
        &t,
        Utc.with_ymd_and_hms(2026, 3, 1, 18, 15, 0).unwrap() + hour,
        1,
        3,
    )
    .await;
    generate(
        &app,
        &t,
        Utc.with_ymd_and_hms(2026, 3, 1, 18, 45, 0).unwrap() + hour,
        1,
        5,
    )
    .await;
    let count = |day: &'static str| {
        let app = &app;
        let token = t.token.clone();
        async move {
            let (s, r) = app
                .get(&token, &format!("/api/v1/stats?from={day}&to={day}"))
                .await;
            assert_eq!(s, StatusCode::OK, "{r}");
            totals_of(&r).get("messages_in").copied().unwrap_or(0)
        }
    };
    assert_eq!(
        (count("2026-03-01").await, count("2026-03-02").await),
        (3, 5)
    );
    switchboard_jobs::scheduled::rollup_recent(&app.db.pool, Utc::now())
        .await
        .unwrap();
    assert!(stats::rolled_until(&app.db.pool, t.id)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        (count("2026-03-01").await, count("2026-03-02").await),
        (3, 5),
        "the roll-up must not move messages across the local midnight"
    );
}

#[tokio::test]
async fn the_log_filters_searches_both_languages_pages_and_exports() {
    let app = TestApp::start().await;
    let (t, _bot) = with_traffic(&app, "Logs").await;
    let get = |q: String| {
        let app = &app;
        let token = t.token.clone();
        async move {
            let (s, body) = app.get(&token, &format!("/api/v1/events?{q}")).await;
            assert_eq!(s, StatusCode::OK, "{q}: {body}");
            body
        }
    };
    let all = get("limit=500".into()).await;
    let items = all["items"].as_array().unwrap();
    assert!(items.iter().any(|e| e["kind"] == "message.in"));
    assert!(items.iter().any(|e| e["kind"] == "message.out"));
    assert!(items.iter().any(|e| e["kind"] == "conversation.handover"));
    assert!(items.iter().any(|e| e["kind"] == "rule.created"));
    // Newest first.
    let times: Vec<&str> = items
        .iter()
        .map(|e| e["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // Russian word forms: "интернета" finds "интернет"; English: "opening" finds "open".
    let ru = get(format!("q={}", "интернета")).await;
    let ru = ru["items"].as_array().unwrap();
    assert_eq!(ru.len(), 1, "{ru:?}");
    assert_eq!(ru[0]["text"], "у меня не работает интернет");
    let en = get("q=opening".into()).await;
    let texts: Vec<&str> = en["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["We are open 9–18.", "When are you open?"]);
    let en = get("q=opening&kind=message.in".into()).await;
    assert_eq!(en["items"].as_array().unwrap().len(), 1, "{en}");
    assert_eq!(en["items"][0]["text"], "When are you open?");

    // Filters by kind, end user, conversation, rule, delivery.
    let outs = get("kind=message.out".into()).await;
    assert!(outs["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["kind"] == "message.out"));
    let handovers = get("kind=conversation.*".into()).await;
    assert!(handovers["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["kind"].as_str().unwrap().starts_with("conversation.")));
    let bob_id = ru[0]["end_user_id"].as_str().unwrap().to_string();
    let bobs = get(format!("end_user={bob_id}")).await;
    assert!(bobs["items"].as_array().unwrap().len() >= 2);
    assert!(bobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["end_user_id"] == bob_id.as_str()));
    let conv = ru[0]["conversation_id"].as_str().unwrap();
    let in_conv = get(format!("conversation={conv}")).await;
    assert!(in_conv["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["conversation_id"] == conv));
    let rule_id = items.iter().find(|e| e["kind"] == "rule.created").unwrap()["rule_id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_rule = get(format!("rule={rule_id}")).await;
    assert!(by_rule["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "message.in" && e["rule_title"] == "Hours"));
    let sent = get("delivery=sent".into()).await;
    assert!(!sent["items"].as_array().unwrap().is_empty());
    assert!(sent["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["delivery_status"] == "sent"));

    // Keyset pages: disjoint, in order, together the whole log.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = get(format!("limit=3{after}")).await;
        for e in page["items"].as_array().unwrap() {
            seen.push(format!("{}{}", e["source"].as_str().unwrap(), e["id"]));
        }
        match page["next"].as_str() {
            Some(n) => after = format!("&after={n}"),
            None => break,
        }
    }
    let whole: Vec<String> = items
        .iter()
        .map(|e| format!("{}{}", e["source"].as_str().unwrap(), e["id"]))
        .collect();
    assert_eq!(seen, whole);

    // Bad input: a clear error naming the field.
    for (q, field) in [
        ("delivery=lost", "delivery"),
        ("end_user=me", "end_user"),
        ("after=garbage", "after"),
        ("limit=0", "limit"),
    ] {
        let (s, body) = app.get(&t.token, &format!("/api/v1/events?{q}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {body}");
        assert!(body.to_string().contains(field), "{body}");
    }

    // Exports of the filtered set from the panel: CSV and JSON, every entry once.
    let web = app.owner_web(&t).await;
    let csv = web
        .get(&format!("/t/{}/logs/export?format=csv", t.slug))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.starts_with('\u{feff}'), "Excel's UTF-8 mark");
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    assert_eq!(reader.headers().unwrap().get(3), Some("kind"));
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // Everything listed before, and the owner's sign-in just now (members' sign-ins are
    // in their organization's log).
    assert_eq!(records.len(), whole.len() + 1);
    assert_eq!(&records[0][3], "login.succeeded");
    let json_export = web
        .get(&format!(
            "/t/{}/logs/export?format=json&q=%D0%B8%D0%BD%D1%82%D0%B5%D1%80%D0%BD%D0%B5%D1%82",
            t.slug
        ))
        .await;
    let exported: Vec<Value> = serde_json::from_str(&json_export.body).unwrap();
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0]["text"], "у меня не работает интернет");

    // The page and the detail view with the raw update.
    let page = web.get(&format!("/t/{}/logs?q=open", t.slug)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has("When are you open?"));
    assert!(!page.has("у меня не работает интернет"));
    let inbound = ru[0]["id"].as_i64().unwrap();
    let detail = web.get(&format!("/t/{}/logs/m/{inbound}", t.slug)).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.has("raw-update"), "the raw Telegram update is shown");
    assert!(
        detail.has(r#"<li class="breadcrumb-item active">Message from a user</li>"#),
        "the kind in words, not its code: {}",
        detail.body
    );
    assert!(detail.has("update_id"));
    let all_page = web.get(&format!("/t/{}/logs", t.slug)).await;
    assert_eq!(all_page.status, StatusCode::OK);
    assert!(all_page.has("login.succeeded"));
    let login_id = &records[0][2];
    let login = web.get(&format!("/t/{}/logs/p/{login_id}", t.slug)).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(
        login.has("&quot;ip&quot;") || login.has("\"ip\""),
        "the sign-in shows where it came from: {}",
        login.body
    );
    let stats_page = web.get(&format!("/t/{}/stats", t.slug)).await;
    assert_eq!(stats_page.status, StatusCode::OK);
    assert!(stats_page.has("chart-series"));
    // The hand-over chart is labelled in words, as its table is, not with codes.
    assert!(stats_page.has("reason_labels"), "{}", stats_page.body);
    if stats_page.has("table-reasons") {
        assert!(
            ["No rule matched", "Asked for a person", "Pressed a button"]
                .iter()
                .any(|l| stats_page.body.matches(l).count() >= 2),
            "the chart's labels: {}",
            stats_page.body
        );
    }
    let csv = web
        .get(&format!("/t/{}/stats/export?table=series", t.slug))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.body.starts_with("\u{feff}start,messages_in"),
        "{}",
        csv.body
    );
}

#[tokio::test]
async fn retention_deletes_old_data_and_erasure_removes_one_user_everywhere() {
    let app = TestApp::start().await;
    let (t, _bot) = with_traffic(&app, "Keep").await;
    generate(&app, &t, Utc::now() - Duration::days(10), 2, 2).await;
    let (s, body) = app
        .patch(&t.token, "/api/v1/settings", json!({"retention_days": 0}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, body) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"retention_days": 7, "raw_retention_days": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["retention_days"], 7);
    let count = |sql: &'static str| {
        let pool = app.db.pool.clone();
        let tenant = t.id;
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(tenant)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let old = "select count(*) from messages where tenant_id = $1 and created_at < now() - interval '7 days'";
    let recent = "select count(*) from messages where tenant_id = $1 and created_at > now() - interval '1 day'";
    assert_eq!(count(old).await, 8);
    // The generated user was last seen, and their conversation (closed) last active, 10
    // days ago; an erasure record older than the retention must stay.
    sqlx::query(
        "with u as (update end_users set last_seen_at = now() - interval '10 days'
                    where tenant_id = $1 and first_name = 'Gen' returning id)
         update conversations set status = 'closed', closed_at = now() - interval '10 days',
                last_message_at = now() - interval '10 days'
         where tenant_id = $1 and end_user_id in (select id from u)",
    )
    .bind(t.id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into events (tenant_id, kind, actor_type, data, created_at)
         values ($1, 'end_user.erased', 'system', '{}', now() - interval '30 days')",
    )
    .bind(t.id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let recent_before = count(recent).await;
    let people = "select count(*) from end_users where tenant_id = $1";
    assert_eq!(count(people).await, 3);
    let purged = switchboard_jobs::scheduled::retention_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(purged.messages, 8);
    assert_eq!((purged.conversations, purged.end_users), (1, 1));
    assert_eq!(count(old).await, 0);
    assert_eq!(count(recent).await, recent_before, "recent messages stay");
    assert_eq!(count(people).await, 2, "Alice and Bob, seen today, stay");
    assert_eq!(
        count("select count(*) from events where tenant_id = $1 and kind = 'end_user.erased'")
            .await,
        1,
        "erasure records outlive the retention"
    );

    // Erase Bob: his messages, conversations, events and raw updates go; Alice's stay.
    let (_, log) = app.get(&t.token, "/api/v1/events?q=интернет").await;
    let bob_id = log["items"][0]["end_user_id"].as_str().unwrap().to_string();
    let alice_messages = "select count(*) from messages m join end_users u on u.tenant_id = m.tenant_id and u.id = m.end_user_id
        where m.tenant_id = $1 and u.telegram_user_id = 1001";
    let alice_before = count(alice_messages).await;
    assert!(alice_before > 0);
    let (s, erased) = app
        .delete(&t.token, &format!("/api/v1/end-users/{bob_id}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{erased}");
    assert!(erased["messages"].as_u64().unwrap() >= 2);
    assert!(erased["raw_updates"].as_u64().unwrap() >= 1);
    assert_eq!(
        count("select count(*) from end_users where tenant_id = $1 and telegram_user_id = 1002")
            .await,
        0
    );
    assert_eq!(
        count("select count(*) from inbox where tenant_id = $1 and payload::text like '%1002%'")
            .await,
        0
    );
    assert_eq!(count(alice_messages).await, alice_before);
    let (_, after) = app.get(&t.token, "/api/v1/events?q=интернет").await;
    assert!(after["items"].as_array().unwrap().is_empty());
    let (_, erasures) = app
        .get(&t.token, "/api/v1/events?kind=end_user.erased")
        .await;
    // Bob's, and the old record inserted above.
    assert_eq!(erasures["items"].as_array().unwrap().len(), 2);
    assert!(
        !erasures["items"][0]["data"].to_string().contains("1002"),
        "the erasure log keeps no personal data"
    );
    assert_eq!(
        erasures["items"][0]["data"]["end_user_id"],
        json!(bob_id),
        "the erasure names the erased row's id"
    );
    let (s, _) = app
        .delete(&t.token, &format!("/api/v1/end-users/{bob_id}"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_tenant_and_operators_get_nothing() {
    let app = TestApp::start().await;
    let (a, _bot) = with_traffic(&app, "Alpha").await;
    let b = app.tenant("Beta").await;
    let (_, log) = app.get(&a.token, "/api/v1/events?kind=message.in").await;
    let a_user = log["items"][0]["end_user_id"].as_str().unwrap().to_string();
    let a_message = log["items"][0]["id"].as_i64().unwrap();

    // Beta's admin: Alpha's user does not exist, Alpha's log is not in Beta's.
    let (s, _) = app
        .delete(&b.token, &format!("/api/v1/end-users/{a_user}"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = app.get(&b.token, "/api/v1/events?limit=500").await;
    assert_eq!(s, StatusCode::OK);
    assert!(body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["end_user_id"] != a_user.as_str()));
    let (s, body) = app
        .get(&b.token, &format!("/api/v1/events?end_user={a_user}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(body["items"].as_array().unwrap().is_empty());
    let (_, stats_b) = app.get(&b.token, "/api/v1/stats").await;
    assert_eq!(
        totals_of(&stats_b).get("messages_in").copied().unwrap_or(0),
        0
    );

    // Beta's owner in the panel: every Alpha page is a 404.
    let web_b = app.owner_web(&b).await;
    for path in [
        format!("/t/{}/logs", a.slug),
        format!("/t/{}/logs/export?format=csv", a.slug),
        format!("/t/{}/logs/m/{a_message}", a.slug),
        format!("/t/{}/stats", a.slug),
        format!("/t/{}/stats/export?table=series", a.slug),
    ] {
        assert_eq!(
            web_b.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // Alpha's message under Beta's own slug is not found either.
    assert_eq!(
        web_b
            .get(&format!("/t/{}/logs/m/{a_message}", b.slug))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let erase = web_b
        .post(&format!("/t/{}/end-users/{a_user}/erase", a.slug), &[])
        .await;
    assert_eq!(erase.status, StatusCode::NOT_FOUND);
    let erase = web_b
        .post(&format!("/t/{}/end-users/{a_user}/erase", b.slug), &[])
        .await;
    assert_eq!(erase.status, StatusCode::NOT_FOUND);

    // Alpha's operator: the desk, not the log or the statistics.
    let op = app.member(&a, "op@alpha.test", Role::Operator).await;
    for path in ["/api/v1/events", "/api/v1/stats"] {
        let (s, _) = app.get(&op, path).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
    let (s, _) = app
        .delete(&op, &format!("/api/v1/end-users/{a_user}"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let op_web = app.member_web(&a, "op2@alpha.test", Role::Operator).await;
    for path in [
        format!("/t/{}/logs", a.slug),
        format!("/t/{}/stats", a.slug),
    ] {
        assert_eq!(
            op_web.get(&path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    // Sign-ins are in the log of the member's organizations only.
    let logins = |token: String| {
        let app = &app;
        async move {
            let (s, body) = app.get(&token, "/api/v1/events?kind=login.succeeded").await;
            assert_eq!(s, StatusCode::OK, "{body}");
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["actor_name"].as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        }
    };
    let alpha_logins = logins(a.token.clone()).await;
    assert!(
        alpha_logins.contains(&"op2@alpha.test".to_string()),
        "{alpha_logins:?}"
    );
    assert!(
        !alpha_logins.iter().any(|n| n.contains("beta")),
        "{alpha_logins:?}"
    );
    let beta_logins = logins(b.token.clone()).await;
    assert!(
        beta_logins.iter().all(|n| n == "owner@beta.test"),
        "{beta_logins:?}"
    );
    assert!(!beta_logins.is_empty());

    // Nothing was erased by any of this.
    let (_, still) = app
        .get(&a.token, &format!("/api/v1/events?end_user={a_user}"))
        .await;
    assert!(!still["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn superusers_see_totals_per_tenant_and_platform_health() {
    let app = TestApp::start().await;
    let (t, _bot) = with_traffic(&app, "Busy").await;
    let quiet = app.tenant("Quiet").await;
    switchboard_jobs::scheduled::rollup_recent(&app.db.pool, Utc::now())
        .await
        .unwrap();
    switchboard::bootstrap::create_superuser(&app.db.pool, "root@platform.test", "rootpassword")
        .await
        .unwrap();
    let root = app.sign_in("root@platform.test", "rootpassword").await;
    let page = root.get("/platform/health").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has("busy_bot"), "the bot is listed");
    // This process matches lexically (no model in tests): said, not hidden.
    let stage = |body: &str| {
        let i = body
            .find("id=\"semantic-stage\"")
            .expect("the semantic stage line");
        body[i..i + body[i..].find("</p>").unwrap()].to_string()
    };
    assert!(
        stage(&page.body).contains("lexical matching only"),
        "{}",
        stage(&page.body)
    );
    // Busy's row: 2 messages from users, 2 replies, 1 hand-over; Quiet's row: zeros.
    let row = |slug: &str| {
        let i = page
            .body
            .find(&format!("data-tenant=\"{slug}\""))
            .expect("a row per tenant");
        page.body[i..i + page.body[i..].find("</tr>").unwrap()].to_string()
    };
    let busy = row(&t.slug);
    let cells: Vec<&str> = busy
        .split("<td class=\"text-end")
        .skip(1)
        .map(|c| c.split('>').nth(1).unwrap().split('<').next().unwrap())
        .collect();
    assert_eq!(cells[..3], ["2", "2", "1"], "{busy}");
    assert!(row(&quiet.slug).contains(">0<"));
    // With a model loaded, its name.
    app.telegram
        .caches
        .set_encoder(std::sync::Arc::new(Named("multilingual-e5-small")));
    let page = root.get("/platform/health").await;
    assert!(
        stage(&page.body).contains("<strong>multilingual-e5-small</strong>"),
        "{}",
        stage(&page.body)
    );
    // Not for tenant owners.
    let owner = app.owner_web(&t).await;
    assert_eq!(
        owner.get("/platform/health").await.status,
        StatusCode::FORBIDDEN
    );
}

/// A stand-in model that only has a name.
struct Named(&'static str);

impl switchboard_core::matcher::SentenceEncoder for Named {
    fn encode(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        texts.iter().map(|_| vec![1.0, 0.0]).collect()
    }
    fn name(&self) -> &str {
        self.0
    }
}

/// With a read replica (`SWITCHBOARD_READ_DATABASE_URL`), the log, the statistics and
/// exports read it, and everything else the primary: here the "replica" is a database of
/// its own that replicates nothing, so what each read shows tells where it was read.
#[tokio::test]
async fn the_log_and_statistics_read_the_replica_and_the_desk_the_primary() {
    let app = TestApp::start_with(crate::harness::Options {
        read_replica: true,
        ..Default::default()
    })
    .await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    app.say(&bot, &bob(), "/operator").await;
    // The primary: the conversation is there at once.
    let conv = app.conversation(&t, "waiting").await;
    assert!(conv["id"].is_string());
    // The replica has nothing of it yet.
    let (s, log) = app.get(&t.token, "/api/v1/events").await;
    assert_eq!(s, StatusCode::OK, "{log}");
    assert_eq!(log["items"].as_array().unwrap().len(), 0, "{log}");
    let (s, stats) = app.get(&t.token, "/api/v1/stats").await;
    assert_eq!(s, StatusCode::OK, "{stats}");
    // What reaches the replica shows in the log.
    let replica = &app.reads_db.as_ref().unwrap().pool;
    sqlx::query("insert into tenants (id, slug, name) values ($1, $2, 'Acme')")
        .bind(t.id)
        .bind(&t.slug)
        .execute(replica)
        .await
        .unwrap();
    sqlx::query(
        "insert into events (tenant_id, kind, actor_type, data)
         values ($1, 'settings.updated', 'system', '{\"fields\": [\"timezone\"]}')",
    )
    .bind(t.id)
    .execute(replica)
    .await
    .unwrap();
    let (_, log) = app.get(&t.token, "/api/v1/events").await;
    assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log["items"][0]["kind"], "settings.updated", "{log}");
}
