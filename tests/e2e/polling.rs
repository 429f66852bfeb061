//! Polling mode: a bot that cannot receive webhooks has its updates fetched with
//! getUpdates by exactly one worker at a time (a lease in PostgreSQL), through the same
//! code path as the webhook; another worker takes over when that one stops or crashes.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use switchboard_testkit::{FakeBot, FakeUser};

use crate::harness::{alice, bob, Process, Tenant, TestApp, WorkerOptions};

/// The test workers' polling lease (see `WorkerOptions`).
const LEASE: Duration = Duration::from_secs(3);

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

fn worker(app: &TestApp, name: &str) -> Process {
    let mut options = WorkerOptions::default();
    options.jobs.name = name.into();
    app.worker(options)
}

/// Who holds the bot's polling lease (the worker's name; `None` if nobody).
async fn poller(app: &TestApp, t: &Tenant) -> Option<String> {
    let owner: Option<Option<String>> = sqlx::query_scalar(
        "select p.lease_owner from bot_polling p join bots b
           on b.tenant_id = p.tenant_id and b.id = p.bot_id
         where p.tenant_id = $1 and b.status <> 'removed'",
    )
    .bind(t.id)
    .fetch_optional(&app.db.pool)
    .await
    .unwrap();
    owner
        .flatten()
        .map(|o| o.split("-poll-").next().unwrap().to_string())
}

/// A bot with a rule, switched to polling mode through the API.
async fn polling_bot(app: &TestApp) -> (Tenant, FakeBot) {
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let (s, body) = app
        .post(
            &t.token,
            "/api/v1/rules",
            json!({"title": "Hours", "answer": "We are open 9–18.", "examples": ["when are you open"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = app
        .patch(&t.token, "/api/v1/bot", json!({"mode": "polling"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], "polling");
    assert!(body["webhook_url"].is_null(), "{body}");
    (t, bot)
}

/// The user asks; the update waits at Telegram for getUpdates.
async fn ask(app: &TestApp, bot: &FakeBot, user: &FakeUser) {
    let d = app.tg.send_text(bot, user, "when are you open?").await;
    assert_eq!(d.status, 0, "no webhook: the update is queued ({})", d.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_polls_a_bot_and_another_takes_over_when_it_stops_or_crashes() {
    let app = TestApp::start_without_jobs().await;
    let (t, bot) = polling_bot(&app).await;
    // Switching deleted the webhook, keeping the updates Telegram holds.
    assert!(app.tg.webhook(&bot).is_none());
    let deleted = app.tg.calls_of("deleteWebhook");
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].params.get("drop_pending_updates").is_none());

    let a = worker(&app, "worker-a");
    let b = worker(&app, "worker-b");
    let user = alice();
    ask(&app, &bot, &user).await;
    let sent = app.expect_sent(&bot, user.id, 1).await;
    assert_eq!(sent[0].text, "We are open 9–18.");

    // Exactly one of the two polls the bot: the lease stays with it, and Telegram never
    // sees two getUpdates at once (it would end the older with 409).
    let first = poller(&app, &t).await.expect("a worker holds the lease");
    for _ in 0..3 {
        ask(&app, &bot, &user).await;
    }
    app.expect_sent(&bot, user.id, 4).await;
    tokio::time::sleep(LEASE / 2).await;
    assert_eq!(poller(&app, &t).await.as_deref(), Some(first.as_str()));
    let polls = app.tg.calls_of("getUpdates");
    assert!(polls.len() >= 2);
    assert!(
        polls.iter().all(|c| c.status == 200),
        "two workers polled at once: {:?}",
        polls.iter().map(|c| c.status).collect::<Vec<_>>()
    );
    // Each update was fetched with the previous ones confirmed, and stored once.
    assert_eq!(count(&app, "select count(*) from inbox").await, 4);

    // The polling worker crashes: the other takes over when the lease runs out, and a
    // message sent meanwhile waits at Telegram, then is answered once.
    let (doomed, survivor, survivor_name) = if first == "worker-a" {
        (a, b, "worker-b")
    } else {
        (b, a, "worker-a")
    };
    doomed.kill().await;
    let crashed = Instant::now();
    let other = bob();
    ask(&app, &bot, &other).await;
    let sent = app.expect_sent(&bot, other.id, 1).await;
    assert_eq!(sent[0].text, "We are open 9–18.");
    let took = crashed.elapsed();
    assert!(
        took < LEASE + Duration::from_secs(3),
        "taken over after {took:?}"
    );
    assert_eq!(poller(&app, &t).await.as_deref(), Some(survivor_name));

    // A graceful stop gives the lease up at once: a new worker takes the bot over
    // without waiting for the lease to run out.
    assert!(survivor.stop(Duration::from_secs(10)).await);
    assert_eq!(
        poller(&app, &t).await,
        None,
        "the stopped worker released its lease"
    );
    ask(&app, &bot, &user).await;
    let started = Instant::now();
    let c = worker(&app, "worker-c");
    app.expect_sent(&bot, user.id, 5).await;
    assert!(
        started.elapsed() < LEASE,
        "taken over after {:?}",
        started.elapsed()
    );
    assert_eq!(poller(&app, &t).await.as_deref(), Some("worker-c"));

    // Every update stored once, every answer sent once; the offset is past the last one.
    assert_eq!(count(&app, "select count(*) from inbox").await, 6);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.tg.sent_to(&bot, user.id).len(), 5);
    assert_eq!(app.tg.sent_to(&bot, other.id).len(), 1);
    let last: i64 = count(&app, "select max(update_id) from inbox").await;
    app.eventually("the offset stored", || async {
        count(
            &app,
            "select coalesce(max(update_offset), 0) from bot_polling",
        )
        .await
            == last + 1
    })
    .await;
    assert!(c.stop(Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_back_to_webhook_registers_it_again_and_the_poller_lets_go() {
    let app = TestApp::start_without_jobs().await;
    let (t, bot) = polling_bot(&app).await;
    let w = worker(&app, "worker-a");
    ask(&app, &bot, &alice()).await;
    app.expect_sent(&bot, alice().id, 1).await;
    assert_eq!(poller(&app, &t).await.as_deref(), Some("worker-a"));

    let (s, body) = app
        .patch(&t.token, "/api/v1/bot", json!({"mode": "webhook"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], "webhook");
    let hook = app
        .tg
        .webhook(&bot)
        .expect("the webhook is registered again");
    assert_eq!(hook.url, body["webhook_url"].as_str().unwrap());
    app.eventually("the poller lets go", || async {
        poller(&app, &t).await.is_none()
    })
    .await;
    // Updates come by webhook again, with the new secret.
    app.say(&bot, &alice(), "when are you open?").await;
    app.expect_sent(&bot, alice().id, 2).await;
    assert_eq!(count(&app, "select count(*) from inbox").await, 2);
    assert!(w.stop(Duration::from_secs(10)).await);
}

#[tokio::test]
async fn the_mode_is_validated_kept_with_a_new_token_and_settable_at_connection() {
    let app = TestApp::start_without_jobs().await;
    let t = app.tenant("Acme").await;
    let other = app.tenant("Beta").await;
    // Nothing to switch without a bot; another organization's bot is out of reach.
    let (s, _) = app
        .patch(&t.token, "/api/v1/bot", json!({"mode": "polling"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let bot = app.connect_bot(&t, "acme_bot").await;
    let (s, _) = app
        .patch(&other.token, "/api/v1/bot", json!({"mode": "polling"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(app.tg.webhook(&bot).is_some(), "A's bot untouched");
    let (s, body) = app
        .patch(&t.token, "/api/v1/bot", json!({"mode": "carrier-pigeon"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "mode");
    let op = app
        .member(&t, "op@acme.test", switchboard_core::Role::Operator)
        .await;
    let (s, _) = app
        .patch(&op, "/api/v1/bot", json!({"mode": "polling"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // In polling mode, a new token for the same bot keeps it in polling mode (no webhook).
    let (s, _) = app
        .patch(&t.token, "/api/v1/bot", json!({"mode": "polling"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = app
        .put(&t.token, "/api/v1/bot", json!({"token": bot.token}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], "polling");
    assert!(app.tg.webhook(&bot).is_none());
    let (_, body) = app.get(&t.token, "/api/v1/bot").await;
    assert_eq!(body["mode"], "polling");

    // A bot can be connected in polling mode straight away (no webhook is ever set).
    let second = app.tg.add_bot("beta_bot");
    let (s, body) = app
        .put(
            &other.token,
            "/api/v1/bot",
            json!({"token": second.token, "mode": "polling"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], "polling");
    assert!(app.tg.webhook(&second).is_none());
    let (s, body) = app
        .put(
            &other.token,
            "/api/v1/bot",
            json!({"token": second.token, "mode": "sometimes"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_set_behind_our_back_is_shown_and_a_suspended_organization_is_not_polled() {
    let app = TestApp::start_without_jobs().await;
    let (t, bot) = polling_bot(&app).await;
    let w = worker(&app, "worker-a");
    ask(&app, &bot, &alice()).await;
    app.expect_sent(&bot, alice().id, 1).await;

    // Someone sets a webhook with the same token elsewhere: Telegram answers getUpdates
    // with 409, and the bot's admins must see why nothing arrives.
    let set = app
        .http
        .post(format!("{}/bot{}/setWebhook", app.tg.url(), bot.token))
        .json(&json!({"url": "https://elsewhere.example/hook"}))
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success());
    app.eventually("the bot shows the conflict", || async {
        let (_, body) = app.get(&t.token, "/api/v1/bot").await;
        body["status"] == "error"
            && body["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("webhook is set"))
    })
    .await;
    // Removed again: polling works, and the error goes away by itself.
    let deleted = app
        .http
        .post(format!("{}/bot{}/deleteWebhook", app.tg.url(), bot.token))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    app.eventually("the error is cleared", || async {
        let (_, body) = app.get(&t.token, "/api/v1/bot").await;
        body["status"] == "active" && body["last_error"].is_null()
    })
    .await;
    ask(&app, &bot, &bob()).await;
    app.expect_sent(&bot, bob().id, 1).await;

    // A suspended organization's bot is let go by the worker that holds it.
    sqlx::query("update tenants set status = 'suspended' where id = $1")
        .bind(t.id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    app.eventually("the poller lets go", || async {
        poller(&app, &t).await.is_none()
    })
    .await;
    assert!(w.stop(Duration::from_secs(10)).await);
}
