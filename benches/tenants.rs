//! Many tenants in one process: the memory of one `switchboard serve` (the real binary)
//! as more and more tenants' bots receive an update, with the per-tenant caches bounded
//! (`SWITCHBOARD_CACHE_TENANTS`) and, for comparison, unbounded.
//!
//!     cargo bench --bench tenants -- [--tenants 10000] [--bound 2000]
//!
//! Each tenant has a bot (a sealed token, a webhook secret), five rules and its settings;
//! each gets one update ("opening hours", answered by a rule: its configuration, matcher
//! index and bot client are loaded). Prints the process's resident memory (VmRSS) after
//! each step. Under `cargo test` it runs a small version (300 tenants).

mod common;
use common::arg;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use switchboard::Config;
use switchboard_core::vault::{secret_digest, MasterKey, SecretPurpose, Vault};
use switchboard_core::{BotId, TenantId};
use switchboard_testkit::{FakeTelegram, TestDb};

const SECRET: &str = "bench-webhook-secret";

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = common::full_run();
    let tenants: usize = arg("--tenants", if full { 10_000 } else { 300 });
    let bound: usize = arg("--bound", if full { 2_000 } else { 100 });

    let db = TestDb::new().await;
    let tg = FakeTelegram::start().await;
    let config = Config::embedded(&db.url, "127.0.0.1:0".parse().unwrap(), &tg.url());
    let pool = switchboard::connect(&config, false).await.unwrap();
    switchboard::migrate(&pool).await.unwrap();
    let key = MasterKey::generate();
    let vault = Vault::new(&key, &[]);
    let started = Instant::now();
    let hooks = create_tenants(&pool, &vault, tenants).await;
    println!(
        "{tenants} tenants with a bot and five rules created in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let steps: Vec<usize> = [tenants / 10, tenants / 4, tenants / 2, tenants]
        .into_iter()
        .filter(|n| *n > 0)
        .collect();
    println!(
        "{:<28} {}",
        "RSS (MB) after N tenants:",
        steps
            .iter()
            .map(|n| format!("{n:>8}"))
            .collect::<Vec<_>>()
            .join("")
    );
    // Update ids go on across the runs: a repeated one would be taken for Telegram's
    // redelivery and skipped.
    let mut update_id = 1i64;
    for cache in [Some(bound), None] {
        let serve = Serve::start(&db.url, &tg.url(), &key, cache).await;
        let client = reqwest::Client::new();
        let mut rss = Vec::new();
        let mut done = 0;
        for &n in &steps {
            // Eight requests at a time, as Telegram's webhooks arrive for many bots.
            let chunk: Vec<_> = hooks[done..n].to_vec();
            for batch in chunk.chunks(8) {
                let mut calls = Vec::new();
                for public_id in batch {
                    update_id += 1;
                    let url = format!("{}/telegram/{public_id}", serve.base);
                    let body = update(update_id);
                    let client = client.clone();
                    calls.push(tokio::spawn(async move {
                        let r = client
                            .post(url)
                            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                            .json(&body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 200, "the webhook took the update");
                    }));
                }
                for c in calls {
                    c.await.unwrap();
                }
            }
            done = n;
            rss.push(serve.rss_mb());
        }
        let label = match cache {
            Some(b) => format!("cache bound {b}"),
            None => "no bound (1,000,000)".to_string(),
        };
        println!(
            "{label:<28} {}",
            rss.iter()
                .map(|r| format!("{r:>8.0}"))
                .collect::<Vec<_>>()
                .join("")
        );
    }
    let answered: i64 = sqlx::query_scalar(
        "select count(*) from messages where direction = 'out' and rule_id is not null",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!("{answered} replies decided by a rule (two per tenant: one per run)");
}

/// Tenants, each with settings, five rules and a live bot whose token is sealed under
/// `vault`; returns the bots' webhook public ids.
async fn create_tenants(pool: &switchboard_db::PgPool, vault: &Vault, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut bots = Vec::new();
    let mut publics = Vec::new();
    let mut nonces = Vec::new();
    let mut ciphertexts = Vec::new();
    let mut key_ids = Vec::new();
    for i in 0..n {
        let (tenant, bot) = (TenantId::new(), BotId::new());
        let token = format!("{}:AAbench{i:0>30}", 100_000 + i);
        let sealed = vault.seal(SecretPurpose::BotToken { tenant, bot }, token.as_bytes());
        ids.push(tenant.0);
        bots.push(bot.0);
        publics.push(format!("benchhook{i}"));
        nonces.push(sealed.nonce);
        ciphertexts.push(sealed.ciphertext);
        key_ids.push(sealed.key_id);
    }
    let digest = secret_digest(SECRET);
    for sql in [
        "insert into tenants (id, slug, name)
         select id, 'bench-' || n, 'Bench ' || n from unnest($1::uuid[]) with ordinality t(id, n)",
        "insert into bot_settings (tenant_id, welcome_text, help_text, handover_text, closing_text,
            already_waiting_text, stale_button_text)
         select id, 'Hello', 'Help', 'Wait', 'Bye', 'Soon', 'Stale' from unnest($1::uuid[]) id",
        "insert into answer_rules (tenant_id, id, title, answer, examples)
         select t.id, gen_random_uuid(), 'Rule ' || r, 'Answer ' || r,
                array['opening hours ' || r, 'question number ' || r, 'where is ' || r]
         from unnest($1::uuid[]) t(id), generate_series(1, 5) r",
    ] {
        sqlx::query(sql).bind(&ids).execute(pool).await.unwrap();
    }
    sqlx::query(
        "insert into bots (tenant_id, id, public_id, telegram_bot_id, username, token_ciphertext,
                           token_nonce, token_key_id, token_hint, webhook_secret_hash, status)
         select t, b, p, 100000 + n, 'bench_' || n || '_bot', c, nc, k, '…', $7, 'active'
         from unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::bytea[], $6::text[])
              with ordinality x(t, b, p, c, nc, k, n)",
    )
    .bind(&ids)
    .bind(&bots)
    .bind(&publics)
    .bind(&ciphertexts)
    .bind(&nonces)
    .bind(&key_ids)
    .bind(&digest)
    .execute(pool)
    .await
    .unwrap();
    // Their routes, as bots::insert writes them (the workers' repair adds missing ones).
    switchboard_db::routes::repair(pool).await.unwrap();
    publics
}

fn update(update_id: i64) -> serde_json::Value {
    let user = 500_000 + update_id;
    serde_json::json!({
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": chrono::Utc::now().timestamp(),
            "chat": {"id": user, "type": "private", "first_name": "Bench"},
            "from": {"id": user, "is_bot": false, "first_name": "Bench", "language_code": "en"},
            "text": "opening hours 3"
        }
    })
}

/// One `switchboard serve --no-jobs` process (nothing is delivered: memory is the point).
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    async fn start(db: &str, tg: &str, key: &MasterKey, cache: Option<usize>) -> Self {
        let port = common::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--no-jobs"])
            .env("DATABASE_URL", db)
            .env("SWITCHBOARD_TELEGRAM_API_URL", tg)
            .env("SWITCHBOARD_BIND", format!("127.0.0.1:{port}"))
            .env("SWITCHBOARD_PUBLIC_URL", &base)
            .env("SWITCHBOARD_MASTER_KEY", key.to_base64().as_str())
            .env("SWITCHBOARD_DB_POOL_SIZE", "10")
            .env(
                "SWITCHBOARD_CACHE_TENANTS",
                cache.unwrap_or(1_000_000).to_string(),
            )
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the switchboard binary");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .map_or(true, |r| !r.status().is_success())
        {
            assert!(Instant::now() < deadline, "serve did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, base }
    }

    /// Resident memory, in MB.
    fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process's status");
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        kb / 1024.0
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
