//! The desk's and the API's lists at the size of a big organization: one tenant with a
//! million conversations and five million messages (`switchboard bench seed`), timed as
//! people and programs read them — over HTTP, as the desk and the API serve them.
//!
//!     cargo bench --bench lists -- [--conversations 1000000 --messages 5000000] [--runs 20]
//!     cargo bench --bench lists -- --database URL --tenant SLUG   (a database already seeded)
//!
//! Under `cargo test` it runs a small version (20,000 conversations). Prints p50 and p95
//! of each list (the whole request, so an upper bound of the server's time).

mod common;
use common::{arg, percentile};

use std::time::{Duration, Instant};

use switchboard::{bootstrap, Config};
use switchboard_core::text::Lang;
use switchboard_testkit::{FakeTelegram, TestDb};

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = common::full_run();
    let conversations: i64 = arg("--conversations", if full { 1_000_000 } else { 20_000 });
    let messages: i64 = arg("--messages", conversations * 5);
    let runs: usize = arg("--runs", if full { 20 } else { 5 });
    let reuse: Option<String> = std::env::args().skip_while(|a| a != "--database").nth(1);
    let slug: String = arg("--tenant", "big-co".to_string());

    let db = TestDb::new().await;
    let url = reuse.clone().unwrap_or_else(|| db.url.clone());
    let tg = FakeTelegram::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config {
        db_pool_size: 10,
        ..Config::embedded(&url, addr, &tg.url())
    };
    let pool = switchboard::connect(&config, false).await.unwrap();
    switchboard::migrate(&pool).await.unwrap();
    let owner = format!("owner@{slug}.test");
    let tenant = match switchboard_db::platform::find_tenant(&pool, &slug).await {
        Ok(t) => t,
        Err(_) => {
            let created =
                bootstrap::create_tenant(&pool, "Big Co", &owner, "password123", Lang::En)
                    .await
                    .unwrap();
            let started = Instant::now();
            let spec = switchboard_db::seed::SeedSpec {
                conversations,
                messages,
                operators: 10,
                days: 365,
            };
            let seeded = switchboard_db::seed::seed(&pool, created.tenant.id, spec, |_| {})
                .await
                .unwrap();
            println!(
                "seeded {} conversations ({} waiting, {} assigned), {} messages in {:.0} s",
                seeded.conversations,
                seeded.waiting,
                seeded.assigned,
                seeded.messages,
                started.elapsed().as_secs_f64()
            );
            created.tenant
        }
    };
    let owner: String = sqlx::query_scalar(
        "select u.email from users u join memberships m on m.user_id = u.id
         where m.tenant_id = $1 and m.role = 'owner' limit 1",
    )
    .bind(tenant.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    // The owner works the desk too (the Mine tab): give them some assigned conversations.
    sqlx::query(
        "update conversations c set assignee_id = m.user_id
         from memberships m
         where m.tenant_id = $1 and m.role = 'owner' and c.tenant_id = $1
           and c.status = 'assigned' and c.id in (
               select id from conversations where tenant_id = $1 and status = 'assigned'
               order by id limit 300)",
    )
    .bind(tenant.id)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("update users set password_hash = $2 where email = $1")
        .bind(&owner)
        .bind(switchboard_core::password::hash_password("password123"))
        .execute(&pool)
        .await
        .unwrap();
    let token = bootstrap::create_token(&pool, &tenant.slug, &owner, "bench")
        .await
        .unwrap()
        .token;
    common::serve(listener, config, pool.clone(), false);

    // Signed in on the desk as a browser is.
    let web = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{addr}");
    let login = web.get(format!("{base}/login")).send().await.unwrap();
    let page = login.text().await.unwrap();
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token on the sign-in page")
        .to_string();
    let signed = web
        .post(format!("{base}/login"))
        .form(&[
            ("email", owner.as_str()),
            ("password", "password123"),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303, "signed in");

    let api = reqwest::Client::new();
    let get_api = |path: String| {
        let api = api.clone();
        let token = token.clone();
        let base = base.clone();
        async move {
            let r = api
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    // Objects the lists and pages name.
    let closed = get_api("/api/v1/conversations?status=closed&limit=50".into()).await;
    let cursor = closed["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let first = &closed["items"][0];
    let conversation = first["id"].as_str().unwrap().to_string();
    let end_user = first["user"]["id"].as_str().unwrap().to_string();
    let operator: String = sqlx::query_scalar(
        "select m.user_id::text from memberships m where m.tenant_id = $1 and m.role = 'operator'
         limit 1",
    )
    .bind(tenant.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let slug = tenant.slug.clone();

    let api_lists = [
        (
            "API waiting",
            "/api/v1/conversations?status=waiting&limit=50".to_string(),
        ),
        (
            "API assigned",
            "/api/v1/conversations?status=assigned&limit=50".to_string(),
        ),
        ("API all", "/api/v1/conversations?limit=50".to_string()),
        (
            "API closed",
            "/api/v1/conversations?status=closed&limit=50".to_string(),
        ),
        (
            "API closed, page 2",
            format!(
                "/api/v1/conversations?status=closed&limit=50&before={}",
                urlencode(&cursor)
            ),
        ),
        (
            "API one operator's",
            format!("/api/v1/conversations?assignee_id={operator}&limit=50"),
        ),
        ("API an end user", format!("/api/v1/end-users/{end_user}")),
    ];
    let desk_pages = [
        ("desk Waiting", "/desk/queue?tab=waiting".to_string()),
        ("desk Mine", "/desk/queue?tab=mine".to_string()),
        ("desk Others", "/desk/queue?tab=others".to_string()),
        ("desk Closed", "/desk/queue?tab=closed".to_string()),
        (
            "desk Closed, a common word",
            format!("/desk/queue?tab=closed&q={}", urlencode("посылка")),
        ),
        (
            "desk Closed, a name",
            format!("/desk/queue?tab=closed&q={}", urlencode("Мария")),
        ),
        (
            "desk Closed, no match",
            "/desk/queue?tab=closed&q=zzyzx".to_string(),
        ),
        (
            "desk a conversation",
            format!("/desk/t/{slug}/c/{conversation}"),
        ),
    ];

    println!(
        "{:<30} {:>9} {:>9}   (ms, {runs} runs, whole request)",
        "list", "p50", "p95"
    );
    for (name, path) in &api_lists {
        let mut times = Vec::new();
        for _ in 0..runs + 1 {
            let t = Instant::now();
            get_api(path.clone()).await;
            times.push(t.elapsed());
        }
        report(name, times);
    }
    for (name, path) in &desk_pages {
        let mut times = Vec::new();
        for _ in 0..runs + 1 {
            let t = Instant::now();
            let r = web.get(format!("{base}{path}")).send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.bytes().await.unwrap();
            times.push(t.elapsed());
        }
        report(name, times);
    }
    if reuse.is_none() && std::env::args().any(|a| a == "--keep") {
        println!("database kept: {}", db.url);
        std::mem::forget(db);
    }
}

/// p50 and p95 after the first (warming) run.
fn report(name: &str, mut times: Vec<Duration>) {
    times.remove(0);
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<30} {:>9.1} {:>9.1}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95))
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
