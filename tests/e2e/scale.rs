//! Scale-out correctness: three app replicas and two worker processes on one database,
//! a hundred chats talking at once, and a replica and a worker crashing (or stopping
//! gracefully) mid-run.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_testkit::FakeUser;

use crate::harness::{TestApp, WorkerOptions};

const CHATS: i64 = 100;
/// The workers' spacing of messages to one chat.
const PACE: Duration = Duration::from_millis(200);
const WORDS: [&str; 5] = ["alpha", "bravo", "charlie", "delta", "echo"];

fn question(i: usize) -> String {
    format!("question number {i} {}", WORDS[i])
}

fn answer(i: usize) -> String {
    format!("answer {i}")
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

fn sends(app: &TestApp) -> usize {
    app.tg
        .calls_of("sendMessage")
        .iter()
        .filter(|c| c.status == 200)
        .count()
}

async fn until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The bot with its five rules, the webhook path and secret.
async fn setup(app: &TestApp) -> (switchboard_testkit::FakeBot, String, String) {
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    for i in 0..WORDS.len() {
        let (s, body) = app
            .post(
                &t.token,
                "/api/v1/rules",
                json!({"title": format!("Topic {i}"), "answer": answer(i), "examples": [question(i)]}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    let hook = app.tg.webhook(&bot).unwrap();
    let path = hook.url.strip_prefix(&app.base).unwrap().to_string();
    (bot, path, hook.secret_token.unwrap())
}

/// What the chats' traffic did.
#[derive(Clone, Default)]
struct Traffic {
    acked: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

/// Each chat sends its questions one after another — Telegram delivers a chat's updates
/// one at a time — round-robin over the replicas. A delivery that fails (the replica is
/// gone, or answered 5xx) is retried against the next replica, as Telegram retries.
fn talk(
    app: &TestApp,
    bot: &switchboard_testkit::FakeBot,
    users: &[FakeUser],
    bases: Vec<String>,
    path: &str,
    secret: &str,
    traffic: &Traffic,
) -> Vec<tokio::task::JoinHandle<()>> {
    let bases = Arc::new(bases);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let mut chats = Vec::new();
    for (n, user) in users.iter().enumerate() {
        let (tg, bot, user) = (app.tg.clone(), bot.clone(), user.clone());
        let (http, bases, path, secret) = (
            http.clone(),
            bases.clone(),
            path.to_string(),
            secret.to_string(),
        );
        let traffic = traffic.clone();
        chats.push(tokio::spawn(async move {
            for i in 0..WORDS.len() {
                let update = tg.text_update(&bot, &user, &question(i));
                let mut target = (n + i) % bases.len();
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let sent = http
                        .post(format!("{}{path}", bases[target]))
                        .header("X-Telegram-Bot-Api-Secret-Token", &secret)
                        .json(&update)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 200 => break,
                        Ok(r) => assert!(r.status().is_server_error(), "{}", r.status()),
                        Err(_) => {}
                    }
                    traffic.failed.fetch_add(1, Ordering::SeqCst);
                    assert!(
                        attempts < 20,
                        "update {i} of chat {} never accepted",
                        user.id
                    );
                    target = (target + 1) % bases.len();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                traffic.acked.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    chats
}

/// Every update stored exactly once, as one inbound message, in the chat's order.
async fn assert_stored_once_in_order(app: &TestApp, users: &[FakeUser]) {
    let total = users.len() * WORDS.len();
    assert_eq!(count(app, "select count(*) from inbox").await, total as i64);
    assert_eq!(
        count(app, "select count(*) from messages where direction = 'in'").await,
        total as i64
    );
    let questions: Vec<String> = (0..WORDS.len()).map(question).collect();
    for user in users {
        let processed: Vec<String> = sqlx::query_scalar(
            "select m.text from messages m
             join end_users u on u.tenant_id = m.tenant_id and u.id = m.end_user_id
             where u.telegram_user_id = $1 and m.direction = 'in' order by m.id",
        )
        .bind(user.id)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
        assert_eq!(processed, questions, "chat {}", user.id);
    }
}

/// Waits for every chat's replies and checks them: in the order of the questions, each
/// exactly once — except that a message in `repeatable` (sends a crashed worker had in
/// flight) may have gone out twice. Returns how many went out twice.
async fn assert_answered_once_in_order(
    app: &TestApp,
    bot: &switchboard_testkit::FakeBot,
    users: &[FakeUser],
    within: Duration,
    repeatable: &HashSet<i64>,
) -> usize {
    let total = users.len() * WORDS.len();
    let deadline = tokio::time::Instant::now() + within;
    for user in users {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        app.tg
            .wait_for_sent(
                bot,
                user.id,
                WORDS.len(),
                left.max(Duration::from_millis(1)),
            )
            .await;
    }
    app.eventually("every reply marked sent", || async {
        count(app, "select count(*) from deliveries where status = 'sent'").await == total as i64
    })
    .await;
    // Nothing more trickles out afterwards.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reply_ids: HashMap<(i64, String), i64> = sqlx::query_as::<_, (i64, String, i64)>(
        "select u.telegram_user_id, m.text, m.id from messages m
         join end_users u on u.tenant_id = m.tenant_id and u.id = m.end_user_id
         where m.direction = 'out'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(chat, text, id)| ((chat, text), id))
    .collect();
    assert_eq!(reply_ids.len(), total, "one reply row per question");
    let answers: Vec<String> = (0..WORDS.len()).map(answer).collect();
    let mut repeated = 0;
    for user in users {
        let sent: Vec<String> = app
            .tg
            .sent_to(bot, user.id)
            .into_iter()
            .map(|m| m.text)
            .collect();
        let mut distinct = sent.clone();
        distinct.dedup();
        for text in &distinct {
            let times = sent.iter().filter(|t| *t == text).count();
            let id = reply_ids[&(user.id, text.clone())];
            assert!(
                times == 1 || (times == 2 && repeatable.contains(&id)),
                "chat {}: {text:?} sent {times} times",
                user.id
            );
        }
        repeated += sent.len() - distinct.len();
        // One message per interval to a chat, whichever worker sends.
        let times: Vec<i64> = app
            .tg
            .sent_to(bot, user.id)
            .iter()
            .map(|m| m.accepted_ms)
            .collect();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= PACE.as_millis() as i64 - 10,
                "chat {}: two messages {gap} ms apart",
                user.id
            );
        }
        assert_eq!(distinct, answers, "chat {}", user.id);
    }
    repeated
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_and_workers_answer_every_update_once_and_in_order_through_crashes() {
    let started = std::time::Instant::now();
    // Replica 0 is the test's own app process (HTTP only); 1 and 2 can crash.
    let app = TestApp::start_without_jobs().await;
    let (bot, path, secret) = setup(&app).await;
    let doomed_replica = app.app_process();
    let replica = app.app_process();
    let bases = vec![
        app.base.clone(),
        doomed_replica.base.clone(),
        replica.base.clone(),
    ];
    let options = WorkerOptions {
        chat_interval: PACE,
        ..Default::default()
    };
    let doomed_worker = app.worker(options.clone());
    let worker = app.worker(options);

    let users: Vec<FakeUser> = (0..CHATS)
        .map(|i| FakeUser::new(50_000 + i, "User"))
        .collect();
    let traffic = Traffic::default();
    let chats = talk(&app, &bot, &users, bases, &path, &secret, &traffic);
    let total = users.len() * WORDS.len();

    // A replica crashes with updates in flight (a fifth of them in)…
    until("a fifth of the updates", Duration::from_secs(30), || {
        traffic.acked.load(Ordering::SeqCst) >= total / 5
    })
    .await;
    doomed_replica.kill().await;
    let acked_at_replica_crash = traffic.acked.load(Ordering::SeqCst);

    // …then a worker, with replies being sent.
    let sent_before = sends(&app);
    until("replies flowing", Duration::from_secs(30), || {
        sends(&app) >= sent_before + 50
    })
    .await;
    doomed_worker.kill().await;
    let sent_at_worker_crash = sends(&app);
    // A message the dead worker had leased may or may not have reached Telegram: that is
    // the one send that can be repeated (a Bot API send is not idempotent).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let in_flight: HashSet<i64> =
        sqlx::query_scalar("select message_id from deliveries where status = 'sending'")
            .fetch_all(&app.db.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();

    for chat in chats {
        chat.await.unwrap();
    }
    assert_eq!(traffic.acked.load(Ordering::SeqCst), total);
    assert!(
        acked_at_replica_crash < total && sent_at_worker_crash < total,
        "the crashes happened mid-run"
    );
    assert!(
        traffic.failed.load(Ordering::SeqCst) > 0,
        "some deliveries hit the crashed replica and were retried"
    );
    assert_stored_once_in_order(&app, &users).await;
    let repeated =
        assert_answered_once_in_order(&app, &bot, &users, Duration::from_secs(40), &in_flight)
            .await;
    eprintln!(
        "scale: {total} updates, {} failed deliveries retried, replica crashed after {acked_at_replica_crash} acks, \
         worker crashed after {sent_at_worker_crash} sends with {} in flight, {repeated} repeated; {:?}",
        traffic.failed.load(Ordering::SeqCst),
        in_flight.len(),
        started.elapsed()
    );
    assert!(replica.stop(Duration::from_secs(10)).await);
    assert!(worker.stop(Duration::from_secs(10)).await);
}

/// A rolling restart: a replica and a worker are stopped gracefully (SIGTERM) mid-run,
/// with production's leases. Nothing is repeated, and the stopped worker's queue does not
/// wait for it to be declared dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_mid_run_repeats_nothing_and_strands_nothing() {
    let app = TestApp::start_without_jobs().await;
    let (bot, path, secret) = setup(&app).await;
    let leaving_replica = app.app_process();
    let bases = vec![app.base.clone(), leaving_replica.base.clone()];
    let production = WorkerOptions {
        delivery_lease: Duration::from_secs(60),
        chat_interval: PACE,
        // Slow enough that the worker is stopped with replies still to send.
        bot_rate: 40,
        jobs: switchboard_jobs::WorkerConfig {
            concurrency: 8,
            ..Default::default()
        },
    };
    let leaving_worker = app.worker(production.clone());
    let worker = app.worker(production);

    let users: Vec<FakeUser> = (0..CHATS)
        .map(|i| FakeUser::new(60_000 + i, "User"))
        .collect();
    let traffic = Traffic::default();
    let chats = talk(&app, &bot, &users, bases, &path, &secret, &traffic);
    let total = users.len() * WORDS.len();

    until("a fifth of the updates", Duration::from_secs(30), || {
        traffic.acked.load(Ordering::SeqCst) >= total / 5
    })
    .await;
    assert!(leaving_replica.stop(Duration::from_secs(10)).await);
    let sent_before = sends(&app);
    until("replies flowing", Duration::from_secs(30), || {
        sends(&app) >= sent_before + 30
    })
    .await;
    let sent_at_stop = sends(&app);
    assert!(leaving_worker.stop(Duration::from_secs(10)).await);
    for chat in chats {
        chat.await.unwrap();
    }
    assert!(sent_at_stop < total, "the worker stopped mid-run");
    assert_stored_once_in_order(&app, &users).await;
    // Well within the minute after which a silent worker's jobs are taken back.
    let repeated =
        assert_answered_once_in_order(&app, &bot, &users, Duration::from_secs(20), &HashSet::new())
            .await;
    assert_eq!(repeated, 0);
    // The stopped worker left no chat held as its own (until its lease ran out).
    app.eventually("no chat held", || async {
        count(
            &app,
            "select count(*) from delivery_queue where lease_owner is not null",
        )
        .await
            == 0
    })
    .await;
    assert!(worker.stop(Duration::from_secs(10)).await);
}
