//! The webhook loop under load: updates posted to the webhook by many chats at once,
//! each answered by a rule; measures acknowledged updates per second, webhook latency,
//! and the time until every reply was delivered to the (fake) Bot API.
//!
//!     cargo bench --bench webhook_loop -- [--updates N] [--bots N] [--chats N] [--concurrency N]
//!
//! Updates are spread over `--bots` tenants (one bot each; Telegram allows a bot ~30
//! messages/s, so one bot alone caps delivery at 30/s) and `--chats` chats per bot.
//! Per-chat pacing is off (the fake Bot API has no per-chat limit); `--bot-rate` sets the
//! per-bot send rate (default 30/s, Telegram's).
//!
//! Runs the platform in this process against a fresh database on the local PostgreSQL
//! and the fake Telegram server, like the end-to-end tests.

mod common;
use common::{arg, percentile};

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::{bootstrap, Config};
use switchboard_core::text::Lang;
use switchboard_testkit::{FakeTelegram, FakeUser, TestDb};

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let updates = arg("--updates", 5000);
    let bots = arg("--bots", 20);
    let chats = arg("--chats", 10);
    let concurrency = arg("--concurrency", 64);
    // --no-delivery: measure the webhook alone (replies stay queued).
    let delivery = !std::env::args().any(|a| a == "--no-delivery");

    let db = TestDb::new().await;
    let tg = FakeTelegram::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config {
        db_pool_size: 40,
        worker_concurrency: 32,
        chat_send_interval_ms: 0,
        bot_send_rate: arg("--bot-rate", 30_u32),
        ..Config::embedded(&db.url, addr, &tg.url())
    };
    let pool = switchboard::connect(&config, false).await.unwrap();
    common::serve(listener, config, pool.clone(), delivery);

    let http = reqwest::Client::new();
    let base = format!("http://{addr}/api/v1");
    let mut hooks = Vec::new();
    for b in 0..bots {
        let email = format!("owner{b}@bench.test");
        let created = bootstrap::create_tenant(
            &pool,
            &format!("Bench {b}"),
            &email,
            "benchpassword",
            Lang::En,
        )
        .await
        .unwrap();
        let token = bootstrap::create_token(&pool, &created.tenant.slug, &email, "bench")
            .await
            .unwrap()
            .token;
        let bot = tg.add_bot(&format!("bench_{b}_bot"));
        http.put(format!("{base}/bot"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"token": bot.token}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        for i in 0..20 {
            http.post(format!("{base}/rules"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"title": format!("Topic {i}"), "answer": format!("Answer {i}"),
                    "examples": [format!("tell me about topic {i}"), format!("question {i}")]}))
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap();
        }
        let hook = tg.webhook(&bot).unwrap();
        hooks.push((bot, hook.url.clone(), hook.secret_token.clone().unwrap()));
    }

    // Prepare the updates first so the clock measures only the platform.
    let bodies: Vec<(String, String, serde_json::Value)> = (0..updates)
        .map(|i| {
            let (bot, url, secret) = &hooks[i % bots];
            let user = FakeUser::new(100_000 + ((i / bots) % chats) as i64, "Load");
            (
                url.clone(),
                secret.clone(),
                tg.text_update(bot, &user, &format!("tell me about topic {}", i % 20)),
            )
        })
        .collect();
    let queue = Arc::new(tokio::sync::Mutex::new(bodies.into_iter()));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let queue = queue.clone();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = queue.lock().await.next();
                let Some((url, secret, body)) = next else {
                    break;
                };
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("X-Telegram-Bot-Api-Secret-Token", &secret)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let acked = started.elapsed();
    latencies.sort();
    // Wait until every reply reached the Bot API.
    if delivery {
        loop {
            let sent: i64 =
                sqlx::query_scalar("select count(*) from deliveries where status = 'sent'")
                    .fetch_one(&db.pool)
                    .await
                    .unwrap();
            if sent as usize >= updates {
                break;
            }
            if started.elapsed() > Duration::from_secs(600) {
                panic!("only {sent} of {updates} replies delivered after 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let delivered = started.elapsed();
    let _ = &db;
    // The webhook's batches and delivery's records lock the same queue rows: in one order,
    // or they deadlock and every batch caught in one is written again one by one.
    let metrics = common::metrics(&http, &format!("http://{addr}/metrics")).await;
    let failed = common::metric(&metrics, "switchboard_webhook_batches_failed_total")
        .unwrap_or("?")
        .to_string();
    println!("webhook loop: {updates} updates to {bots} bots from {chats} chats each, {concurrency} concurrent senders");
    println!(
        "  acknowledged: {:.0} updates/s ({:.2} s); webhook latency p50 {:.1} ms, p99 {:.1} ms",
        updates as f64 / acked.as_secs_f64(),
        acked.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0
    );
    if delivery {
        println!(
            "  all replies delivered: {:.0} updates/s end to end ({:.2} s)",
            updates as f64 / delivered.as_secs_f64(),
            delivered.as_secs_f64()
        );
    }
    println!("  batches of updates that failed as a whole: {failed}");
    assert_eq!(
        failed, "0",
        "no batch of updates failed (a deadlock, a conflict)"
    );
}
