//! Delivery at a platform's load, with Telegram's limits on: the fake Bot API answers after
//! `--latency` ms and refuses (429) a bot's 31st send in a second or a chat's second send
//! within a second; the platform paces chats at one message a second and bots at 30/s.
//!
//!     cargo bench --bench delivery -- [--bots 100] [--users 10000] [--seconds 20]
//!         [--latency 50] [--noisy-burst 3000] [--quiet-tries 20] [--concurrency 64] [--semantic]
//!
//! 1. Many tenants: `--bots` tenants (one bot each) and `--users` users send questions as
//!    fast as the webhook takes them for `--seconds`; reported: updates acknowledged per
//!    second, replies delivered per second during the run and while the backlog drains,
//!    update-to-reply latency, 429s — beside the `pgbench` ceiling of the least a helpdesk
//!    writes per update, measured in the same run (when `pgbench` is installed).
//! 2. Noisy neighbour: one tenant's 1,000 users send `--noisy-burst` messages at once;
//!    while that drains, another tenant's users send one message each, `--quiet-tries`
//!    times; reported: how long each quiet answer took.
//! 3. With `--semantic` (the default model, as `switchboard models fetch` installs it;
//!    only this scenario runs): one tenant's users send free text, every message different,
//!    `--concurrency` at a time for `--seconds`, while another tenant's users ask its rule's
//!    question in Russian — its one example is English, so only the semantic stage can
//!    match it; reported: the flood's rate, the quiet answers' time and how many the rule
//!    answered.
//!
//! Runs the platform in this process against a fresh database on the local PostgreSQL,
//! like the end-to-end tests.

mod common;
use common::{arg, percentile};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::{bootstrap, Config};
use switchboard_core::text::Lang;
use switchboard_testkit::{FakeBot, FakeTelegram, FakeUser, Limits, TestDb};

struct Platform {
    db: TestDb,
    tg: FakeTelegram,
    http: reqwest::Client,
    api: String,
}

struct Hook {
    bot: FakeBot,
    url: String,
    secret: String,
}

impl Platform {
    async fn start(concurrency: usize, semantic: bool) -> Self {
        let db = TestDb::new().await;
        // Schema experiments (docs/performance.md): e.g. BENCH_SQL='drop index …' runs on
        // the fresh database before the platform starts.
        if let Ok(sql) = std::env::var("BENCH_SQL") {
            sqlx::raw_sql(&sql).execute(&db.pool).await.unwrap();
        }
        let tg = FakeTelegram::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config {
            db_pool_size: 40,
            worker_concurrency: concurrency,
            chat_send_interval_ms: 1000,
            bot_send_rate: 30,
            semantic: if semantic {
                // The default model, as ./test and `switchboard models fetch` put it.
                let local = std::path::Path::new("target/models/multilingual-e5-small");
                switchboard::SemanticStage::Model {
                    dir: if switchboard::models::is_installed(local) {
                        local.to_path_buf()
                    } else {
                        switchboard::models::default_model_dir()
                    },
                    required: true,
                }
            } else {
                switchboard::SemanticStage::Off
            },
            ..Config::embedded(&db.url, addr, &tg.url())
        };
        let pool = switchboard::connect(&config, false).await.unwrap();
        common::serve(listener, config, pool, true);
        Self {
            db,
            tg,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .unwrap(),
            api: format!("http://{addr}/api/v1"),
        }
    }

    async fn tenant(&self, n: usize) -> Hook {
        let email = format!("owner{n}@bench.test");
        let created = bootstrap::create_tenant(
            &self.db.pool,
            &format!("Bench {n}"),
            &email,
            "benchpassword",
            Lang::En,
        )
        .await
        .unwrap();
        let token = bootstrap::create_token(&self.db.pool, &created.tenant.slug, &email, "bench")
            .await
            .unwrap()
            .token;
        let bot = self.tg.add_bot(&format!("bench_{n}_bot"));
        let put = |path: &str, body: serde_json::Value, method: reqwest::Method| {
            self.http
                .request(method, format!("{}{path}", self.api))
                .bearer_auth(&token)
                .json(&body)
                .send()
        };
        put(
            "/bot",
            serde_json::json!({"token": bot.token}),
            reqwest::Method::PUT,
        )
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
        put(
            "/rules",
            serde_json::json!({"title": "Hours", "answer": "We are open 9 to 18.",
                               "examples": ["what are your opening hours"]}),
            reqwest::Method::POST,
        )
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
        let hook = self.tg.webhook(&bot).unwrap();
        Hook {
            bot,
            url: hook.url,
            secret: hook.secret_token.unwrap(),
        }
    }

    /// Posts one update (again until accepted, as Telegram does); returns when it was acked.
    async fn post(&self, hook: &Hook, user: &FakeUser) -> Instant {
        self.post_text(hook, user, "what are your opening hours")
            .await
    }

    async fn post_text(&self, hook: &Hook, user: &FakeUser, text: &str) -> Instant {
        let body = self.tg.text_update(&hook.bot, user, text);
        loop {
            let r = self
                .http
                .post(&hook.url)
                .header("X-Telegram-Bot-Api-Secret-Token", &hook.secret)
                .json(&body)
                .send()
                .await;
            if matches!(&r, Ok(r) if r.status() == 200) {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn sends(&self) -> Vec<switchboard_testkit::fake_telegram::Call> {
        self.tg
            .calls()
            .into_iter()
            .filter(|c| c.method.eq_ignore_ascii_case("sendMessage"))
            .collect()
    }
}

/// `pgbench` replaying the least a helpdesk writes per update (an inbox row, an end-user
/// upsert, the message and its reply) for 10 s with 32 clients: transactions per second.
fn pgbench_ceiling(db_url: &str) -> Option<f64> {
    // Our URL carries sqlx's own options, which libpq does not know.
    let db_url = db_url.split('?').next().unwrap_or(db_url);
    let dir = std::env::temp_dir().join(format!("sb-pgbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let script = dir.join("minimal.sql");
    std::fs::write(
        &script,
        "\\set u random(1, 10000)\n\
         begin;\n\
         insert into pgb_inbox (update_id, body) values (nextval('pgb_seq'), '{\"message\": {\"text\": \"hello\"}}');\n\
         insert into pgb_users (id, seen) values (:u, now()) on conflict (id) do update set seen = now();\n\
         insert into pgb_messages (user_id, text) values (:u, 'what are your opening hours'), (:u, 'We are open 9 to 18.');\n\
         commit;\n",
    )
    .ok()?;
    let psql = |sql: &str| {
        std::process::Command::new("psql")
            .args([db_url, "-qc", sql])
            .status()
            .ok()
            .filter(|s| s.success())
    };
    psql("create sequence if not exists pgb_seq; create table if not exists pgb_inbox (update_id bigint primary key, body jsonb, at timestamptz default now()); create table if not exists pgb_users (id bigint primary key, seen timestamptz); create table if not exists pgb_messages (id bigserial primary key, user_id bigint, text text, at timestamptz default now())")?;
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-c", "32", "-j", "2", "-T", "10", "-f"])
        .arg(&script)
        .arg(db_url)
        .output()
        .ok()?;
    psql("drop table pgb_inbox, pgb_users, pgb_messages; drop sequence pgb_seq");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l[6..].split_whitespace().next()?.parse().ok())
}

/// When each chat's updates were acknowledged, by (bot, chat).
type Acks = HashMap<(i64, i64), Vec<Instant>>;

async fn many_tenants(
    p: &Platform,
    hooks: &[Hook],
    users: usize,
    seconds: u64,
    concurrency: usize,
    full: bool,
) {
    let per_bot = (users / hooks.len()).max(1);
    // pgbench takes ten seconds: only in the full run.
    let ceiling = if full {
        pgbench_ceiling(&p.db.url)
    } else {
        None
    };
    let before = p.sends().len();
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(seconds);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acked: Arc<parking_lot::Mutex<Acks>> = Arc::default();
    let p = Arc::new(p);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, acked, p) = (next.clone(), acked.clone(), p.clone());
        let hooks: Vec<(FakeBot, String, String)> = hooks
            .iter()
            .map(|h| (h.bot.clone(), h.url.clone(), h.secret.clone()))
            .collect();
        tasks.push(async move {
            while Instant::now() < stop_at {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (bot, url, secret) = &hooks[i % hooks.len()];
                let user = FakeUser::new(1_000_000 + ((i / hooks.len()) % per_bot) as i64, "Load");
                let hook = Hook {
                    bot: bot.clone(),
                    url: url.clone(),
                    secret: secret.clone(),
                };
                let at = p.post(&hook, &user).await;
                acked.lock().entry((bot.id, user.id)).or_default().push(at);
            }
        });
    }
    futures::future::join_all(tasks).await;
    let run = started.elapsed();
    let offered: usize = acked.lock().values().map(Vec::len).sum();
    let sent_in_run = p.sends().iter().filter(|c| c.status == 200).count() - before;
    let drain_started = Instant::now();
    loop {
        let sent = p.sends().iter().filter(|c| c.status == 200).count() - before;
        if sent >= offered || drain_started.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain = drain_started.elapsed();
    let sends = p.sends();
    let refused = sends.iter().filter(|c| c.status == 429).count();
    // Update-to-reply: the k-th reply to a chat answers its k-th update.
    let username: HashMap<String, i64> =
        p.tg.bots()
            .into_iter()
            .map(|b| (b.username, b.id))
            .collect();
    let mut replies: HashMap<(i64, i64), Vec<i64>> = HashMap::new();
    for c in sends.iter().filter(|c| c.status == 200) {
        let bot = username[c.bot.as_deref().unwrap_or_default()];
        let chat = c.params["chat_id"].as_i64().unwrap_or_default();
        replies.entry((bot, chat)).or_default().push(c.received_ms);
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut latencies = Vec::new();
    for (key, acks) in acked.lock().iter() {
        let got = replies.get(key).cloned().unwrap_or_default();
        for (k, ack) in acks.iter().enumerate() {
            let ack_ms = now_ms - ack.elapsed().as_millis() as i64;
            if let Some(r) = got.get(k) {
                latencies.push((*r - ack_ms).max(0) as f64 / 1000.0);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "many tenants: {} bots, {} users, {seconds} s, fake Bot API latency on, 30/s per bot, 1/s per chat",
        hooks.len(),
        per_bot * hooks.len()
    );
    println!(
        "  offered (acknowledged): {:.0} updates/s; delivered during the run: {:.0} replies/s; draining {} more took {:.1} s ({:.0}/s)",
        offered as f64 / run.as_secs_f64(),
        sent_in_run as f64 / run.as_secs_f64(),
        offered.saturating_sub(sent_in_run),
        drain.as_secs_f64(),
        offered.saturating_sub(sent_in_run) as f64 / drain.as_secs_f64().max(0.001)
    );
    println!(
        "  update to reply: p50 {:.2} s, p99 {:.2} s, max {:.2} s; 429s: {refused}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    let delivered = sends.iter().filter(|c| c.status == 200).count() - before;
    assert!(
        delivered >= offered,
        "{delivered} of {offered} replies delivered"
    );
    // What Telegram lets these bots send at all: each bot's budget, paced 10% below its
    // 30/s (`outbox`), caps the delivered rate whatever the machine can do.
    let budget = hooks.len() as f64 * 30.0 / 1.1;
    match ceiling {
        Some(tps) => println!(
            "  pgbench ceiling of the minimal write (same run, 32 clients): {tps:.0} tx/s; delivered/ceiling {:.2} \
             (the bots' own budget, {budget:.0}/s, is {:.2} of it)",
            sent_in_run as f64 / run.as_secs_f64() / tps,
            budget / tps
        ),
        None if full => println!("  (pgbench not installed: no ceiling measured)"),
        None => {}
    }
}

async fn noisy_neighbour(p: &Platform, noisy: &Hook, quiet: &Hook, burst: usize, tries: usize) {
    let crowd: Vec<FakeUser> = (0..1000)
        .map(|i| FakeUser::new(5_000_000 + i, "Fan"))
        .collect();
    let started = Instant::now();
    let p = Arc::new(p);
    let mut tasks = Vec::new();
    for (n, user) in crowd.iter().enumerate() {
        let count = burst / crowd.len() + usize::from(n < burst % crowd.len());
        let (p, user) = (p.clone(), user.clone());
        let hook = Hook {
            bot: noisy.bot.clone(),
            url: noisy.url.clone(),
            secret: noisy.secret.clone(),
        };
        tasks.push(async move {
            for _ in 0..count {
                p.post(&hook, &user).await;
            }
        });
    }
    futures::future::join_all(tasks).await;
    let burst_in = started.elapsed();
    let mut waits = Vec::new();
    for i in 0..tries {
        let user = FakeUser::new(6_000_000 + i as i64, "Quiet");
        let t = Instant::now();
        p.post(quiet, &user).await;
        p.tg.wait_for_sent(&quiet.bot, user.id, 1, Duration::from_secs(120))
            .await;
        waits.push(t.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let noisy_sent = p
        .sends()
        .iter()
        .filter(|c| c.bot.as_deref() == Some(&noisy.bot.username) && c.status == 200)
        .count();
    let mut sorted = waits.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "noisy neighbour: {burst} messages from 1,000 users of one tenant (in {:.1} s), then {tries} users of another",
        burst_in.as_secs_f64()
    );
    println!(
        "  quiet tenant's answer: p50 {:.3} s, p99 {:.3} s, max {:.3} s; noisy replies still queued after: {}",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        sorted.last().copied().unwrap_or_default(),
        burst.saturating_sub(noisy_sent)
    );
    assert!(
        sorted.last().copied().unwrap_or_default() < 5.0,
        "a quiet tenant waited behind a noisy one"
    );
}

/// With the semantic stage on: tenant A's 1,000 users send free text, every message
/// different (nothing comes from the encoder's cache), `concurrency` at a time for
/// `seconds`; meanwhile tenant B's users ask B's only rule's question in Russian (its one
/// example is English, so only the semantic stage can match it), one after another.
async fn free_text_flood(
    p: &Platform,
    noisy: &Hook,
    quiet: &Hook,
    seconds: u64,
    concurrency: usize,
    tries: usize,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let flood = futures::future::join_all((0..concurrency).map(|_| {
        let (stop, next) = (stop.clone(), next.clone());
        let hook = Hook {
            bot: noisy.bot.clone(),
            url: noisy.url.clone(),
            secret: noisy.secret.clone(),
        };
        async move {
            let mut sent = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let user = FakeUser::new(7_000_000 + (i % 1000) as i64, "Crowd");
                let text = format!(
                    "my order {i} has not arrived yet, parcel {} is still in transit",
                    i * 7919 % 100_003
                );
                p.post_text(&hook, &user, &text).await;
                sent += 1;
            }
            sent
        }
    }));
    let quiet_side = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut waits = Vec::new();
        let mut answered = 0;
        for i in 0..tries {
            let user = FakeUser::new(8_000_000 + i as i64, "Тихий");
            let t = Instant::now();
            p.post_text(quiet, &user, "во сколько вы открываетесь?")
                .await;
            p.tg.wait_for_sent(&quiet.bot, user.id, 1, Duration::from_secs(120))
                .await;
            waits.push(t.elapsed().as_secs_f64());
            answered += p
                .sends()
                .iter()
                .filter(|c| {
                    c.bot.as_deref() == Some(&quiet.bot.username)
                        && c.params["chat_id"].as_i64() == Some(user.id)
                        && c.params["text"].as_str() == Some("We are open 9 to 18.")
                })
                .count()
                .min(1);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let left = Duration::from_secs(seconds).saturating_sub(started.elapsed());
        tokio::time::sleep(left).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (waits, answered)
    };
    let (sent, (mut waits, answered)) = tokio::join!(flood, quiet_side);
    let run = started.elapsed().as_secs_f64();
    waits.sort_by(f64::total_cmp);
    println!(
        "free text, semantic stage on: one tenant's users send {:.0} different messages/s ({} in {run:.0} s, {concurrency} at a time), another's ask in Russian what its rule answers in English, {tries} times",
        sent.iter().sum::<usize>() as f64 / run,
        sent.iter().sum::<usize>(),
    );
    println!(
        "  quiet tenant's answer: p50 {:.3} s, p99 {:.3} s, max {:.3} s; answered by the rule (matched by meaning): {answered} of {tries}",
        percentile(&waits, 0.5),
        percentile(&waits, 0.99),
        waits.last().copied().unwrap_or_default(),
    );
    // What the cores encoded meanwhile, from the process's own metrics.
    let metrics = common::metrics(&p.http, &p.api.replace("/api/v1", "/metrics")).await;
    let value = |name: &str| -> f64 {
        common::metric(&metrics, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    println!(
        "  messages encoded: {:.0} ({:.0}/s), matched lexically because no core was free in time: {:.0}",
        value("switchboard_matcher_encode_duration_seconds_count"),
        value("switchboard_matcher_encode_duration_seconds_count") / run,
        value("switchboard_matcher_semantic_skipped_total"),
    );
}

fn main() {
    switchboard::one_thread_per_forward_pass();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts")
        .block_on(bench());
}

async fn bench() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo bench` passes --bench; `cargo test` (./test) runs a small version.
    let full = common::full_run();
    let bots = arg("--bots", if full { 100 } else { 5 });
    let users = arg("--users", if full { 10_000 } else { 100 });
    let seconds: u64 = arg("--seconds", if full { 20 } else { 3 });
    let latency: u64 = arg("--latency", 50);
    let concurrency = arg("--concurrency", if full { 64 } else { 8 });
    let semantic = std::env::args().any(|a| a == "--semantic");
    let p = Platform::start(512, semantic).await;
    p.tg.set_limits(Limits {
        latency_ms: (latency, latency),
        bot_per_second: Some(30),
        chat_interval_ms: Some(1000),
    });
    let mut hooks = Vec::new();
    for n in 0..bots + 2 {
        hooks.push(p.tenant(n).await);
    }
    let (pair, many) = hooks.split_at(2);
    if semantic {
        free_text_flood(
            &p,
            &pair[0],
            &pair[1],
            seconds,
            concurrency,
            arg("--quiet-tries", if full { 20 } else { 5 }),
        )
        .await;
        return;
    }
    noisy_neighbour(
        &p,
        &pair[0],
        &pair[1],
        arg("--noisy-burst", if full { 3000 } else { 300 }),
        arg("--quiet-tries", if full { 20 } else { 5 }),
    )
    .await;
    many_tenants(&p, many, users, seconds, concurrency, full).await;
}
