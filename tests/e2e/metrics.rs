//! `/metrics`: what a Prometheus scrape sees after real traffic — webhook outcomes,
//! deliveries, Bot API errors, HTTP requests by route template (never a tenant's slug or
//! a bot's id), the queue gauges read from PostgreSQL (cached), and the optional token.

use reqwest::StatusCode;
use switchboard_testkit::FailKind;

use crate::harness::{alice, bob, Options, TestApp};

/// What a scrape returned.
struct Scrape {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Scrape {
    /// The value of the sample `series` (name and labels exactly as exported), if any.
    fn value(&self, series: &str) -> Option<f64> {
        crate::harness::sample(&self.text, series)
    }

    /// The sum of every series of the family `name` (any labels).
    fn sum(&self, name: &str) -> f64 {
        self.text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(name)?.strip_prefix('{')?;
                rest.rsplit_once(' ')?.1.parse::<f64>().ok()
            })
            .sum()
    }

    /// Like [`Scrape::value`], failing the test when the series is missing.
    fn get(&self, series: &str) -> f64 {
        self.value(series)
            .unwrap_or_else(|| panic!("no series {series} in:\n{}", self.text))
    }
}

async fn scrape(app: &TestApp, token: Option<&str>) -> Scrape {
    scrape_at(app, &app.base, token).await
}

async fn scrape_at(app: &TestApp, base: &str, token: Option<&str>) -> Scrape {
    let mut req = app.http.get(format!("{base}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Scrape {
        status,
        content_type,
        text: resp.text().await.unwrap(),
    }
}

/// Scrapes until `done` holds (panics after 15 s).
async fn scrape_until(app: &TestApp, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let s = scrape(app, None).await;
        if done(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; last scrape:\n{}",
            s.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

const WEBHOOK_2XX: &str = r#"method="POST",route="/telegram/{public_id}",status="2xx""#;
const WEBHOOK_4XX: &str = r#"method="POST",route="/telegram/{public_id}",status="4xx""#;

#[tokio::test]
async fn a_scrape_counts_webhook_outcomes_deliveries_and_routes_by_template() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let hook = app.tg.webhook(&bot).unwrap();
    let public_id = hook.url.rsplit('/').next().unwrap().to_string();
    // The first send is rate-limited (then retried a second later).
    app.tg
        .fail("sendMessage", 1, FailKind::RetryAfter { seconds: 1 });

    // Alice's /start, then the same update again (Telegram retrying): a duplicate.
    let update = app.tg.text_update(&bot, &alice(), "/start");
    assert_eq!(app.tg.deliver(&bot, update.clone()).await.status, 200);
    assert_eq!(app.tg.deliver(&bot, update.clone()).await.status, 200);
    // Bob blocked the bot: his welcome fails with 403.
    app.tg.block(&bot, bob().id);
    app.say(&bot, &bob(), "/start").await;
    // A wrong secret and an unknown bot.
    let wrong = app
        .tg
        .deliver_with_secret(&bot, update.clone(), Some("not-the-secret"))
        .await;
    assert_eq!(wrong.status, 401);
    let unknown = app
        .http
        .post(format!("{}/telegram/nosuchbot", app.base))
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    app.expect_sent(&bot, alice().id, 1).await;
    // A page of the panel (its route has the tenant's slug) and a path nothing serves.
    let owner = app.owner_web(&t).await;
    assert_eq!(owner.get("/t/acme/bot").await.status, StatusCode::OK);
    let none = app
        .http
        .get(format!("{}/no/such/page", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);

    // Deliveries are counted when their outcome is stored, just after Telegram's answer.
    let s = scrape_until(&app, |s| {
        s.value("switchboard_deliveries_sent_total") == Some(1.0)
            && s.value("switchboard_deliveries_failed_total") == Some(1.0)
    })
    .await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.content_type, "text/plain; version=0.0.4; charset=utf-8");

    // Webhook outcomes: received = processed + duplicated + rejected.
    assert_eq!(s.get("switchboard_webhook_updates_received_total"), 5.0);
    assert_eq!(s.get("switchboard_webhook_updates_processed_total"), 2.0);
    assert_eq!(s.get("switchboard_webhook_updates_duplicated_total"), 1.0);
    assert_eq!(s.get("switchboard_webhook_updates_ignored_total"), 0.0);
    assert_eq!(
        s.get(r#"switchboard_webhook_updates_rejected_total{reason="bad_secret"}"#),
        1.0
    );
    assert_eq!(
        s.get(r#"switchboard_webhook_updates_rejected_total{reason="unknown_bot"}"#),
        1.0
    );
    assert_eq!(
        s.get(r#"switchboard_webhook_updates_rejected_total{reason="bad_body"}"#),
        0.0
    );
    assert_eq!(s.get("switchboard_webhook_updates_failed_total"), 0.0);

    // The bot decided twice (the duplicate never reaches the matcher).
    assert_eq!(s.get("switchboard_matcher_duration_seconds_count"), 2.0);
    assert_eq!(
        s.get(r#"switchboard_matcher_duration_seconds_bucket{le="+Inf"}"#),
        2.0
    );

    // The Bot API: connecting the bot, three sends: one rate-limited and retried, one
    // refused.
    assert_eq!(
        s.get(r#"switchboard_telegram_api_requests_total{method="sendMessage"}"#),
        3.0
    );
    assert_eq!(
        s.get(r#"switchboard_telegram_api_errors_total{method="sendMessage",code="429"}"#),
        1.0
    );
    assert_eq!(s.get("switchboard_deliveries_retried_total"), 1.0);
    assert!(s.get(r#"switchboard_telegram_api_requests_total{method="setWebhook"}"#) >= 1.0);
    assert_eq!(
        s.get(r#"switchboard_telegram_api_errors_total{method="sendMessage",code="403"}"#),
        1.0
    );

    // HTTP by route template: three deliveries answered 200, two refused, one histogram
    // observation per request.
    assert_eq!(
        s.get(&format!("switchboard_http_requests_total{{{WEBHOOK_2XX}}}")),
        3.0
    );
    assert_eq!(
        s.get(&format!("switchboard_http_requests_total{{{WEBHOOK_4XX}}}")),
        2.0
    );
    assert_eq!(
        s.get(&format!(
            "switchboard_http_request_duration_seconds_count{{{WEBHOOK_2XX}}}"
        )),
        3.0
    );
    assert_eq!(
        s.get(&format!(
            "switchboard_http_request_duration_seconds_bucket{{{WEBHOOK_2XX},le=\"+Inf\"}}"
        )),
        3.0
    );
    assert!(
        s.get(
            r#"switchboard_http_requests_total{method="GET",route="/t/{slug}/bot",status="2xx"}"#
        ) >= 1.0
    );
    assert_eq!(
        s.get(r#"switchboard_http_requests_total{method="PUT",route="/api/v1/bot",status="2xx"}"#),
        1.0
    );
    assert_eq!(
        s.get(r#"switchboard_http_requests_total{method="GET",route="unmatched",status="4xx"}"#),
        1.0
    );
    // Concrete paths never become labels.
    assert!(!s.text.contains(&public_id), "{}", s.text);
    assert!(!s.text.contains("nosuchbot"), "{}", s.text);
    assert!(!s.text.contains("/t/acme"), "{}", s.text);
    assert!(!s.text.contains("/no/such/page"), "{}", s.text);
    // The gauges are there (their values: the next test).
    assert!(s.value("switchboard_delivery_queue_depth").is_some());
    assert!(s
        .value("switchboard_delivery_queue_oldest_age_seconds")
        .is_some());
}

#[tokio::test]
async fn queue_gauges_come_from_the_database_and_are_cached() {
    // No workers: the replies stay queued.
    let app = TestApp::start_with(Options {
        jobs: false,
        ..Options::default()
    })
    .await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    app.say(&bot, &alice(), "/start").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let s = scrape(&app, None).await;
    assert_eq!(s.get("switchboard_delivery_queue_depth"), 1.0);
    let series = format!(
        r#"{{tenant="{}",bot="{}"}}"#,
        t.id,
        sqlx::query_scalar::<_, uuid::Uuid>("select id from bots where username = 'acme_bot'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
    );
    assert_eq!(
        s.get(&format!("switchboard_delivery_backlog_chats{series}")),
        1.0
    );
    assert_eq!(
        s.get(&format!("switchboard_delivery_backlog_ready_chats{series}")),
        1.0
    );
    let ready_age = s.get(&format!(
        "switchboard_delivery_backlog_oldest_ready_age_seconds{series}"
    ));
    assert!(
        (1.0..60.0).contains(&ready_age),
        "oldest ready age {ready_age}"
    );
    let age = s.get("switchboard_delivery_queue_oldest_age_seconds");
    assert!((1.0..60.0).contains(&age), "oldest message age {age}");

    // A second chat queues another reply, but a scrape right away reuses the sample.
    app.say(&bot, &bob(), "/start").await;
    let again = scrape(&app, None).await;
    assert_eq!(again.get("switchboard_delivery_queue_depth"), 1.0);
    assert_eq!(again.sum("switchboard_delivery_backlog_chats"), 1.0);

    // Another app process on the same database counts its own traffic: none.
    let other = app.replica().await;
    let s2 = scrape_at(&app, &other.base, None).await;
    assert_eq!(s2.get("switchboard_webhook_updates_received_total"), 0.0);
    // … but reads the shared queue: both replies are waiting.
    assert_eq!(s2.get("switchboard_delivery_queue_depth"), 2.0);
    assert_eq!(s2.sum("switchboard_delivery_backlog_chats"), 2.0);
}

#[tokio::test]
async fn a_worker_process_serves_its_own_metrics_on_the_metrics_address() {
    // As docker-compose runs it: `serve --no-jobs` and a separate `worker`.
    let app = TestApp::start_with(Options {
        jobs: false,
        ..Options::default()
    })
    .await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let worker = app.metrics_worker().await;
    app.say(&bot, &alice(), "/start").await;
    app.expect_sent(&bot, alice().id, 1).await;

    let base = worker.metrics_base.clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let s = loop {
        let s = scrape_at(&app, &base, None).await;
        if s.value("switchboard_deliveries_sent_total") == Some(1.0) {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", s.text);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(
        s.get(r#"switchboard_telegram_api_requests_total{method="sendMessage"}"#),
        1.0
    );
    // The worker received no webhook; the web process did, and sent nothing.
    assert_eq!(s.get("switchboard_webhook_updates_received_total"), 0.0);
    let web = scrape(&app, None).await;
    assert_eq!(web.get("switchboard_webhook_updates_processed_total"), 1.0);
    assert_eq!(web.get("switchboard_deliveries_sent_total"), 0.0);
    // The metrics address serves nothing else.
    let page = app.http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn with_a_token_only_scrapes_that_present_it_are_answered() {
    let app = TestApp::start_with(Options {
        metrics_token: Some("scrape-secret".into()),
        ..Options::default()
    })
    .await;
    let missing = scrape(&app, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(!missing.text.contains("switchboard_"), "{}", missing.text);
    let wrong = scrape(&app, Some("not-it")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = scrape(&app, Some("scrape-secret")).await;
    assert_eq!(right.status, StatusCode::OK);
    // The refused scrapes are themselves counted (as 4xx on /metrics).
    assert_eq!(
        right.get(r#"switchboard_http_requests_total{method="GET",route="/metrics",status="4xx"}"#),
        2.0
    );
    // Nothing else needs the token.
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_a_metrics_address_the_main_address_does_not_serve_metrics() {
    // An Ingress routes every path of the main address to the app: with a metrics address
    // of its own, /metrics must not be reachable through it.
    let app = TestApp::start_with(Options {
        metrics_bind: true,
        ..Options::default()
    })
    .await;
    let main = scrape(&app, None).await;
    assert_eq!(main.status, StatusCode::NOT_FOUND);
    assert!(!main.text.contains("switchboard_"), "{}", main.text);
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}
