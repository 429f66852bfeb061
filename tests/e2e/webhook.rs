//! The webhook's guarantees: authenticity, exactly-once processing, per-chat order, and
//! 5xx (so Telegram retries) when the database is unavailable.

use std::time::Duration;

use serde_json::json;
use switchboard_testkit::FakeUser;

use crate::harness::{alice, TestApp};

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_redelivered_update_is_acknowledged_and_ignored() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let update = app.tg.text_update(&bot, &alice(), "/start");
    let first = app.tg.deliver(&bot, update.clone()).await;
    let second = app.tg.deliver(&bot, update.clone()).await;
    assert_eq!((first.status, second.status), (200, 200));
    app.expect_sent(&bot, alice().id, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.tg.sent_to(&bot, alice().id).len(),
        1,
        "the welcome went out once"
    );
    assert_eq!(count(&app, "select count(*) from inbox").await, 1);
    assert_eq!(
        count(&app, "select count(*) from messages where direction = 'in'").await,
        1
    );
}

#[tokio::test]
async fn a_wrong_or_missing_secret_is_rejected_and_nothing_is_stored() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let hook = app.tg.webhook(&bot).unwrap();
    assert_eq!(hook.secret_token.as_ref().unwrap().len(), 48);
    let update = app.tg.text_update(&bot, &alice(), "hello");
    let wrong = app
        .tg
        .deliver_with_secret(&bot, update.clone(), Some("not-the-secret"))
        .await;
    let missing = app.tg.deliver_with_secret(&bot, update.clone(), None).await;
    assert_eq!((wrong.status, missing.status), (401, 401));
    // An unknown bot id in the URL is not found.
    let r = app
        .http
        .post(format!("{}/telegram/nosuchbot", app.base))
        .header(
            "X-Telegram-Bot-Api-Secret-Token",
            hook.secret_token.clone().unwrap(),
        )
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(count(&app, "select count(*) from inbox").await, 0);
    assert_eq!(count(&app, "select count(*) from end_users").await, 0);
    // The right secret still works.
    assert_eq!(app.tg.deliver(&bot, update).await.status, 200);
    assert_eq!(count(&app, "select count(*) from inbox").await, 1);
}

#[tokio::test]
async fn the_webhook_is_registered_with_a_secret_and_the_allowed_updates() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let hook = app.tg.webhook(&bot).unwrap();
    let (_, info) = app.get(&t.token, "/api/v1/bot").await;
    assert_eq!(hook.url, info["webhook_url"].as_str().unwrap());
    assert!(hook.url.starts_with(&format!("{}/telegram/", app.base)));
    assert!(
        !hook.url.contains(&bot.token),
        "the token is never in the webhook URL"
    );
    assert_eq!(
        hook.allowed_updates.unwrap(),
        [
            "message",
            "edited_message",
            "callback_query",
            "my_chat_member"
        ]
    );
    let set = app.tg.calls_of("setWebhook");
    assert!(set[0].params.get("drop_pending_updates").is_none());
}

#[tokio::test]
async fn garbage_bodies_are_rejected_without_storing() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let hook = app.tg.webhook(&bot).unwrap();
    for body in ["not json", "{\"hello\": 1}"] {
        let r = app
            .http
            .post(&hook.url)
            .header(
                "X-Telegram-Bot-Api-Secret-Token",
                hook.secret_token.clone().unwrap(),
            )
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    assert_eq!(count(&app, "select count(*) from inbox").await, 0);
}

#[tokio::test]
async fn replies_keep_each_chats_order_under_concurrent_updates() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    // Ten rules, each answering its number.
    for i in 0..10 {
        let (s, _) = app
            .post(&t.token, "/api/v1/rules", json!({
                "title": format!("Topic {i}"), "answer": format!("answer {i}"),
                "examples": [format!("question number {} {}", i, ["alpha","bravo","charlie","delta","echo","foxtrot","golf","hotel","india","juliet"][i])]
            }))
            .await;
        assert_eq!(s, 201);
    }
    let users: Vec<FakeUser> = (0..5).map(|i| FakeUser::new(2000 + i, "User")).collect();
    // Every chat gets 10 updates at once, all chats concurrently.
    let mut tasks = Vec::new();
    for user in &users {
        for i in 0..10 {
            let tg = app.tg.clone();
            let bot = bot.clone();
            let user = user.clone();
            let word = [
                "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
                "juliet",
            ][i];
            tasks.push(tokio::spawn(async move {
                tg.send_text(&bot, &user, &format!("question number {i} {word}"))
                    .await
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().status, 200);
    }
    for user in &users {
        let sent = app.expect_sent(&bot, user.id, 10).await;
        // The order the bot processed this chat's questions (inbound message ids)...
        let processed: Vec<String> = sqlx::query_scalar(
            "select m.text from messages m join end_users u on u.tenant_id = m.tenant_id and u.id = m.end_user_id
             where u.telegram_user_id = $1 and m.direction = 'in' order by m.id",
        )
        .bind(user.id)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
        let expected: Vec<String> = processed
            .iter()
            .map(|q| format!("answer {}", q.split_whitespace().nth(2).unwrap()))
            .collect();
        // ...is the order the answers reached the user.
        let got: Vec<String> = sent.iter().map(|m| m.text.clone()).collect();
        assert_eq!(got, expected, "chat {}", user.id);
    }
    assert_eq!(count(&app, "select count(*) from inbox").await, 50);
    // Written in batches while delivery records what it sent, and no batch failed: the
    // two lock the chats' queue rows in one order, so they never deadlock.
    assert_eq!(
        app.metric(None, "switchboard_webhook_batches_failed_total")
            .await,
        0.0
    );
    app.eventually("all 50 replies marked sent", || async {
        count(
            &app,
            "select count(*) from deliveries where status = 'sent'",
        )
        .await
            == 50
    })
    .await;
}

#[tokio::test]
async fn the_webhook_answers_5xx_when_the_database_is_unavailable() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    // Warm the bot cache, then take the database away from the app.
    app.say(&bot, &alice(), "/start").await;
    app.expect_sent(&bot, alice().id, 1).await;
    app.telegram.pool.close().await;
    let d = app.tg.send_text(&bot, &alice(), "/help").await;
    assert!(d.status >= 500, "Telegram must retry: got {}", d.status);
    // Nothing was stored for it.
    assert_eq!(count(&app, "select count(*) from inbox").await, 1);
}

#[tokio::test]
async fn blocking_the_bot_marks_the_user() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    app.say(&bot, &alice(), "/start").await;
    let update = json!({"update_id": 999, "my_chat_member": {
        "chat": {"id": alice().id, "type": "private", "first_name": "Alice"},
        "from": {"id": alice().id, "is_bot": false, "first_name": "Alice"},
        "date": 1700000000,
        "old_chat_member": {"user": {"id": bot.id, "is_bot": true, "first_name": "b"}, "status": "member"},
        "new_chat_member": {"user": {"id": bot.id, "is_bot": true, "first_name": "b"}, "status": "kicked", "until_date": 0}}});
    assert_eq!(app.tg.deliver(&bot, update).await.status, 200);
    let (_, list) = app.get(&t.token, "/api/v1/conversations").await;
    assert_eq!(list["items"][0]["user"]["blocked"], true);
}

#[tokio::test]
async fn a_nul_character_is_stored_safely_and_answered() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let (s, body) = app
        .post(
            &t.token,
            "/api/v1/rules",
            json!({"title": "Hours", "answer": "Open 9 to 18.", "examples": ["opening hours"]}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let user = FakeUser::new(4242, "Nul\u{0}Name");
    let d = app.tg.send_text(&bot, &user, "opening\u{0} hours").await;
    assert_eq!(d.status, 200, "{}", d.body);
    let sent = app.expect_sent(&bot, user.id, 1).await;
    assert_eq!(sent[0].text, "Open 9 to 18.");
    let (text, name): (String, String) = sqlx::query_as(
        "select m.text, u.first_name from messages m
         join end_users u on u.tenant_id = m.tenant_id and u.id = m.end_user_id
         where m.direction = 'in'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(text, "opening\u{FFFD} hours");
    assert_eq!(name, "Nul\u{FFFD}Name");
    // A caption too.
    let d = app.tg.send_photo(&bot, &user, Some("look\u{0}")).await;
    assert_eq!(d.status, 200, "{}", d.body);
}

#[tokio::test]
async fn an_update_that_cannot_be_processed_is_set_aside_and_the_next_goes_on() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    // A message we cannot read is acknowledged and stored as ignored.
    let d = app
        .tg
        .deliver(&bot, json!({"update_id": 777, "message": "not an object"}))
        .await;
    assert_eq!(d.status, 200, "acknowledged: {}", d.body);
    // An update id we cannot read (beyond Telegram's 32 bits): set aside with the error.
    let poison = json!({"update_id": 5_000_000_000_i64, "message": {"text": "hi"}});
    let d = app.tg.deliver(&bot, poison.clone()).await;
    assert_eq!(d.status, 200, "acknowledged: {}", d.body);
    let (status, error): (String, Option<String>) =
        sqlx::query_as("select status, error from inbox where update_id = 5000000000")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert!(error.is_some_and(|e| !e.is_empty()));
    // Telegram delivers it again: acknowledged, nothing new.
    let d = app.tg.deliver(&bot, poison).await;
    assert_eq!(d.status, 200);
    assert_eq!(count(&app, "select count(*) from inbox").await, 2);
    // The bot goes on with the next update.
    app.say(&bot, &alice(), "/start").await;
    app.expect_sent(&bot, alice().id, 1).await;
    // The platform's health page counts it.
    let health = switchboard_db::stats::platform_health(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(health.inbox_failed_24h, 1);
}

/// The webhook's group commit (`switchboard_telegram::intake`): many chats of two
/// organizations write at once, so their updates are written in shared transactions; one
/// update the database refuses makes its batch fail, and the batch's other updates are
/// then written one by one — each answered, the bad one set aside, none lost.
#[tokio::test]
async fn updates_written_together_survive_one_bad_update_among_them() {
    let app = TestApp::start().await;
    let (a, b) = (app.tenant("Acme").await, app.tenant("Beta").await);
    let bots = [
        app.connect_bot(&a, "acme_bot").await,
        app.connect_bot(&b, "beta_bot").await,
    ];
    // The database refuses one message's data (as it would a value out of range).
    sqlx::raw_sql(
        "create function refuse_poison() returns trigger language plpgsql as $$
         begin
             if new.text = 'poison' then
                 raise exception 'refused' using errcode = '22023';
             end if;
             return new;
         end $$;
         create trigger refuse_poison before insert on messages
             for each row execute function refuse_poison();",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let mut tasks = Vec::new();
    let mut first = None;
    for (i, bot) in bots.iter().enumerate() {
        for n in 0..30 {
            let (tg, bot) = (app.tg.clone(), bot.clone());
            let user = FakeUser::new(5000 + (i as i64) * 100 + n, "User");
            let update = tg.text_update(&bot, &user, "/start");
            first.get_or_insert_with(|| update.clone());
            tasks.push(tokio::spawn(async move { tg.deliver(&bot, update).await }));
        }
    }
    let (tg, bot) = (app.tg.clone(), bots[0].clone());
    tasks.push(tokio::spawn(async move {
        tg.send_text(&bot, &FakeUser::new(4999, "Mallory"), "poison")
            .await
    }));
    for t in tasks {
        let d = t.await.unwrap();
        assert_eq!(d.status, 200, "acknowledged: {}", d.body);
    }
    for (i, bot) in bots.iter().enumerate() {
        for n in 0..30 {
            let sent = app.expect_sent(bot, 5000 + (i as i64) * 100 + n, 1).await;
            assert_eq!(sent.len(), 1);
        }
    }
    assert_eq!(
        count(
            &app,
            "select count(*) from inbox where status = 'processed'"
        )
        .await,
        60
    );
    assert_eq!(
        count(&app, "select count(*) from inbox where status = 'failed'").await,
        1,
        "the refused update is set aside"
    );
    // Each organization's rows are its own: Acme's 30 users and its conversations.
    assert_eq!(
        count(
            &app,
            &format!(
                "select count(*) from conversations c join end_users u
                   on u.tenant_id = c.tenant_id and u.id = c.end_user_id
                 where c.tenant_id = '{}' and u.telegram_user_id between 5000 and 5029",
                a.id
            )
        )
        .await,
        30
    );
    assert_eq!(
        count(&app, "select count(*) from messages where text = 'poison'").await,
        0
    );
    // Telegram delivers the first update again, among 30 new ones, after its user
    // blocked the bot: acknowledged, and nothing changes — not even the user's row.
    sqlx::query("update end_users set is_blocked = true where telegram_user_id = 5000")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..30 {
        let (tg, bot) = (app.tg.clone(), bots[1].clone());
        let user = FakeUser::new(6000 + n, "User");
        tasks.push(tokio::spawn(async move {
            tg.send_text(&bot, &user, "/start").await
        }));
    }
    let again = first.unwrap();
    for _ in 0..3 {
        let (tg, bot, again) = (app.tg.clone(), bots[0].clone(), again.clone());
        tasks.push(tokio::spawn(async move { tg.deliver(&bot, again).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().status, 200);
    }
    for n in 0..30 {
        app.expect_sent(&bots[1], 6000 + n, 1).await;
    }
    let blocked: bool =
        sqlx::query_scalar("select is_blocked from end_users where telegram_user_id = 5000")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(blocked, "a redelivered update does not touch its user");
    assert_eq!(
        count(
            &app,
            "select count(*) from messages m join end_users u
               on u.tenant_id = m.tenant_id and u.id = m.end_user_id
             where u.telegram_user_id = 5000"
        )
        .await,
        2,
        "the question and its answer, once"
    );
    // Written together: fewer batches than updates (94 updates, 2 writers).
    let (batches, updates) = (
        app.metric(None, "switchboard_webhook_batch_size_count")
            .await,
        app.metric(None, "switchboard_webhook_batch_size_sum").await,
    );
    assert_eq!(updates, 94.0);
    assert!(batches < updates, "{batches} batches for {updates} updates");
    // At most the poisoned batch failed as a whole (none, if it was alone in its batch).
    assert!(
        app.metric(None, "switchboard_webhook_batches_failed_total")
            .await
            <= 1.0
    );
}
