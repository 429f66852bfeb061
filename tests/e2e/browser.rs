//! The panel in a real browser (headless Chromium through chromedriver): what a person
//! sees and does, from sign-up to a working bot. Screenshots of each step go to
//! `target/screenshots/` (and, on failure, `failure-*.png`).

use std::path::PathBuf;
use std::time::Duration;

use futures::FutureExt;
use switchboard_testkit::webdriver::{Chrome, Element};

use crate::harness::TestApp;

pub struct Browser {
    pub chrome: Chrome,
    base: String,
}

pub fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    pub async fn start(base: &str) -> Self {
        Self {
            chrome: Chrome::start().await.expect("a browser session"),
            base: base.to_string(),
        }
    }

    pub async fn goto(&self, path: &str) {
        self.chrome
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    pub async fn wait(&self, css: &str) -> Element {
        self.chrome
            .wait_for(css, Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.wait(css).await;
        self.chrome.clear(&el).await.unwrap();
        self.chrome.type_text(&el, text).await.unwrap();
    }

    /// Types as a person does: one key at a time, ~70 ms apart.
    pub async fn type_slowly(&self, css: &str, text: &str) {
        let el = self.wait(css).await;
        for c in text.chars() {
            self.chrome.type_text(&el, &c.to_string()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(70)).await;
        }
    }

    /// The value of a form field, read from the page.
    pub async fn value(&self, css: &str) -> String {
        self.wait(css).await;
        let v = self
            .chrome
            .execute(
                "return document.querySelector(arguments[0]).value;",
                vec![serde_json::json!(css)],
            )
            .await
            .unwrap();
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn click(&self, css: &str) {
        // Live pages may replace the element between finding and clicking it: find it again.
        let mut last = String::new();
        for _ in 0..3 {
            let el = self.wait(css).await;
            // As a person would: bring it into view first (the navigation bar is sticky).
            let scrolled = self
                .chrome
                .execute(
                    "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});",
                    vec![Chrome::element_arg(&el)],
                )
                .await;
            match scrolled {
                Ok(_) => match self.chrome.click(&el).await {
                    Ok(()) => return,
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("click {css}: {last}");
    }

    /// Picks an option of a select by value (and lets the page react).
    pub async fn select(&self, css: &str, value: &str) {
        let el = self.wait(css).await;
        self.chrome
            .execute(
                "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
                vec![Chrome::element_arg(&el), serde_json::json!(value)],
            )
            .await
            .unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        let el = self.wait(css).await;
        self.chrome.text(&el).await.unwrap_or_default()
    }

    /// Waits until the page's visible text contains `text`.
    pub async fn see(&self, text: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let body = match self.chrome.find("body").await {
                Ok(b) => self.chrome.text(&b).await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if body.contains(text) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("the page never showed {text:?}; it shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` (returning a boolean) is true in the page.
    pub async fn until(&self, what: &str, script: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if self.chrome.execute(script, vec![]).await.ok() == Some(serde_json::json!(true)) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for: {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn screenshot(&self, name: &str) {
        if let Ok(png) = self.chrome.screenshot().await {
            let _ = std::fs::write(screenshots_dir().join(format!("{name}.png")), png);
        }
    }
}

/// Runs a browser scenario; on failure keeps a screenshot of where it stopped.
async fn scenario<F, Fut>(name: &str, app: &TestApp, f: F)
where
    F: FnOnce(std::sync::Arc<Browser>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let browser = std::sync::Arc::new(Browser::start(&app.base).await);
    let outcome = std::panic::AssertUnwindSafe(f(browser.clone()))
        .catch_unwind()
        .await;
    if let Err(panic) = outcome {
        if let Ok(png) = browser.chrome.screenshot().await {
            let _ = std::fs::write(screenshots_dir().join(format!("failure-{name}.png")), png);
        }
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn from_sign_up_to_a_working_bot_in_the_browser() {
    let app = TestApp::start().await;
    let fake_bot = app.tg.add_bot("shop_helper_bot");
    let token = fake_bot.token.clone();
    let db = app.db.pool.clone();
    scenario("sign-up-to-bot", &app, |b| async move {
        // Sign up.
        b.goto("/signup").await;
        b.fill("#f-name", "Anna Petrova").await;
        b.fill("#f-email", "anna@shop.test").await;
        b.fill("#f-password", "correct horse battery").await;
        b.fill("#f-organization", "Flower Shop").await;
        // The page fills in the browser's time zone for the organization's days.
        assert!(!b.value("#f-timezone").await.is_empty());
        b.screenshot("signup").await;
        b.click("#signup-submit").await;
        b.see("Welcome to Flower Shop").await;

        // Connect the bot.
        b.fill("#f-token", &token).await;
        b.click("#connect-bot").await;
        b.see("@shop_helper_bot is connected").await;
        b.see("Working").await;
        b.screenshot("bot").await;

        // A rule with a button.
        b.goto("/t/flower-shop/rules/new").await;
        b.fill("#f-title", "Opening hours").await;
        b.fill("#f-answer", "We are open every day, 9:00–20:00.")
            .await;
        b.fill(
            "#f-examples",
            "when are you open\nopening hours\nво сколько вы открыты",
        )
        .await;
        b.click("#add-row").await;
        b.fill(".button-item input[name=b_label]", "Talk to a person")
            .await;
        b.select(".button-item select[name=b_action]", "handover")
            .await;
        b.see("As Telegram shows it").await;
        b.screenshot("rule-form").await;
        b.click("#save-rule").await;
        b.see("“Opening hours” has been saved").await;
        b.screenshot("rules").await;

        // A title with no spaces (a link, say) wraps instead of widening the page: on the
        // list, in the editor, and when it is refused as too long.
        let long = format!("https://flower.shop/?q={}", "deliverytimes".repeat(13));
        b.goto("/t/flower-shop/rules/new").await;
        b.fill("#f-title", &long).await;
        b.fill("#f-answer", "See the link.").await;
        b.click("#save-rule").await;
        b.see("has been saved").await;
        let fits = "return document.documentElement.scrollWidth <= window.innerWidth;";
        b.until("the rules list fits the window", fits).await;
        b.chrome
            .execute(
                "Array.from(document.querySelectorAll('table a'))
                    .find(a => a.textContent.startsWith('https://')).click();",
                vec![],
            )
            .await
            .unwrap();
        b.wait("#f-title").await;
        b.until("the editor fits the window", fits).await;
        // (The field's maxlength stops typing past 200; a script or an old browser does not.)
        b.chrome
            .execute(
                "document.querySelector('#f-title').value = 'x'.repeat(300);",
                vec![],
            )
            .await
            .unwrap();
        b.click("#save-rule").await;
        b.see("At most 200 characters").await;
        b.until("a refused title fits the window", fits).await;

        // Try it: the answer and its button, then the hand-over.
        b.goto("/t/flower-shop/try").await;
        b.fill("#try-input", "When are you open?").await;
        b.click("#try-send").await;
        b.see("We are open every day, 9:00–20:00.").await;
        b.click("#transcript button.tg-button").await;
        b.see("I am passing your question to an operator").await;
        b.screenshot("try").await;

        // Invite an operator.
        b.goto("/t/flower-shop/team").await;
        b.fill("#invite-email", "oleg@shop.test").await;
        b.click("#send-invite").await;
        // No mail server here: the page says so and gives the link to pass on.
        b.see("No mail server is configured").await;
        let link = b.value("#invite-link-value").await;
        assert!(link.contains("/invite/"), "{link}");
        b.click("[data-copy]").await;
        b.see("Copied").await;
        b.screenshot("team").await;
    })
    .await;

    // The operator accepts in another session and signs in.
    let body: String =
        sqlx::query_scalar("select body from outbound_emails where to_address = 'oleg@shop.test'")
            .fetch_one(&db)
            .await
            .unwrap();
    let link = crate::harness::link_in(&body);
    let path = link.trim_start_matches(&app.base).to_string();
    scenario("operator-joins", &app, |b| async move {
        b.goto(&path).await;
        b.see("Join Flower Shop as Operator").await;
        b.fill("#f-name", "Oleg").await;
        b.fill("#f-password", "operator password").await;
        b.click("#accept-invite").await;
        b.see("You are now a member of Flower Shop").await;
        let nav = b.text("aside").await;
        assert!(
            !nav.contains("Team"),
            "operators do not manage the team: {nav}"
        );
        b.screenshot("dashboard-operator").await;
        // Signing out and in again works.
        b.click("#user-menu").await;
        b.click("#logout").await;
        b.fill("#f-email", "oleg@shop.test").await;
        b.fill("#f-password", "operator password").await;
        b.click("#login-submit").await;
        b.see("Flower Shop").await;
        // Switch the interface to Russian.
        b.click("button[name=lang][value=ru]").await;
        b.see("Ответы").await;
        b.screenshot("dashboard-ru").await;
    })
    .await;

    let members: i64 = sqlx::query_scalar("select count(*) from memberships")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(members, 2);
    let rules: i64 = sqlx::query_scalar("select count(*) from buttons where action = 'handover'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(rules, 1);
}

#[tokio::test]
async fn the_menu_editor_builds_rows_and_reorders_them() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    app.post(
        &t.token,
        "/api/v1/rules",
        serde_json::json!({"title": "Hours", "answer": "9–18"}),
    )
    .await;
    scenario("menu-editor", &app, |b| async move {
        b.goto("/login").await;
        b.fill("#f-email", "owner@acme.test").await;
        b.fill("#f-password", "password123").await;
        b.click("#login-submit").await;
        b.see("Acme").await;
        b.goto("/t/acme/menus/new").await;
        b.fill("#f-name", "Main").await;
        b.click("#add-row").await;
        b.fill(".button-row:nth-child(2) input[name=b_label]", "First")
            .await;
        b.select(".button-row:nth-child(2) select[name=b_action]", "url")
            .await;
        b.fill(
            ".button-row:nth-child(2) input[data-target-for=url]",
            "https://acme.example",
        )
        .await;
        b.click("#add-row").await;
        b.fill(".button-row:nth-child(3) input[name=b_label]", "Second")
            .await;
        // The label Russian speakers see, typed into the new button's own field.
        b.type_slowly(
            r#".button-row:nth-child(3) input[name="b_label.ru"]"#,
            "Второй",
        )
        .await;
        b.select(".button-row:nth-child(3) select[name=b_action]", "handover")
            .await;
        // Move "Second" above "First".
        b.click(".button-row:nth-child(3) [data-row-up]").await;
        b.screenshot("menu-editor").await;
        b.click("#save-menu").await;
        b.see("Menu “Main” has been saved").await;
        b.screenshot("menus").await;
    })
    .await;
    let (_, menus) = app.get(&t.token, "/api/v1/menus").await;
    let rows = &menus["items"][0]["rows"];
    assert_eq!(rows[0][0]["label"], "Second");
    assert_eq!(rows[0][0]["translations"]["ru"]["label"], "Второй");
    assert_eq!(rows[0][0]["action"], "handover");
    assert_eq!(rows[1][0]["label"], "First");
    assert_eq!(rows[1][0]["translations"], serde_json::json!({}));
    assert_eq!(rows[1][0]["url"], "https://acme.example");
}

#[tokio::test]
async fn an_operator_answers_live_with_a_canned_response_and_closes() {
    let app = TestApp::start().await;
    let t = app.tenant("Flower Shop").await;
    let bot = app.connect_bot(&t, "flower_bot").await;
    app.post(
        &t.token,
        "/api/v1/canned-responses",
        serde_json::json!({"shortcut": "sorry", "title": "Apology",
                           "text": "We are very sorry! A new bouquet is on its way."}),
    )
    .await;
    let hash = switchboard_core::password::hash_password("operator password");
    let user = switchboard_db::platform::insert_user(
        &app.db.pool,
        switchboard_core::UserId::new(),
        "oleg@shop.test",
        Some(&hash),
        "Oleg",
        false,
    )
    .await
    .unwrap();
    switchboard_db::platform::add_member(
        &app.db.pool,
        t.id,
        user.id,
        switchboard_core::Role::Operator,
    )
    .await
    .unwrap();
    let alice = crate::harness::alice();
    let (tg2, bot2, alice2) = (app.tg.clone(), bot.clone(), alice.clone());
    scenario("desk", &app, |b| async move {
        b.goto("/login").await;
        b.fill("#f-email", "oleg@shop.test").await;
        b.fill("#f-password", "operator password").await;
        b.click("#login-submit").await;
        b.see("Flower Shop").await;
        b.click("#nav-desk").await;
        b.see("Nobody is waiting").await;
        b.wait("#desk-conn.on").await;
        // Mark the page: if it reloads, the mark is gone.
        b.chrome
            .execute("window.__stillHere = true;", vec![])
            .await
            .unwrap();

        // A Telegram user writes; the conversation appears by itself.
        let d = tg2
            .send_text(&bot2, &alice2, "My bouquet arrived wilted")
            .await;
        assert_eq!(d.status, 200);
        b.see("My bouquet arrived wilted").await;
        let still = b
            .chrome
            .execute("return window.__stillHere === true;", vec![])
            .await
            .unwrap();
        assert_eq!(still, serde_json::json!(true), "no reload");
        let badge = b.text("#nav-desk-waiting").await;
        assert_eq!(badge, "1");
        b.screenshot("desk-queue").await;

        b.click("#queue-items a").await;
        b.see("No answer found").await;
        b.click("#act-claim").await;
        b.see("took the conversation").await;

        // "/" offers the canned responses; Enter picks one, Enter again sends it.
        b.fill("#reply-text", "/sor").await;
        b.wait("#canned-menu.show").await;
        let area = b.wait("#reply-text").await;
        b.chrome.type_text(&area, "\u{E007}").await.unwrap();
        let value = b
            .chrome
            .execute(
                "return document.getElementById('reply-text').value;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(value, "We are very sorry! A new bouquet is on its way.");
        b.chrome.type_text(&area, "\u{E007}").await.unwrap();
        // Our reply shows up, and turns "Delivered" by itself.
        b.until(
            "the reply is shown as delivered",
            "return [...document.querySelectorAll('.desk-out[data-delivery=sent]')]
               .some(e => e.textContent.includes('A new bouquet is on its way'));",
        )
        .await;
        b.until(
            "the box is emptied after sending",
            "return document.getElementById('reply-text').value === '';",
        )
        .await;

        // The user answers; it shows up in the open conversation.
        tg2.send_text(&bot2, &alice2, "Thank you so much!").await;
        b.see("Thank you so much!").await;
        b.screenshot("desk-conversation").await;

        b.click("#act-close").await;
        b.fill("#close-resolution", "Sent a new bouquet").await;
        b.click("#close-confirm").await;
        b.see("Closed by Oleg").await;
        b.wait("#act-reopen").await;
        b.screenshot("desk-closed").await;
    })
    .await;
    let sent = app.tg.sent_to(&bot, alice.id);
    assert!(sent
        .iter()
        .any(|m| m.text == "We are very sorry! A new bouquet is on its way."));
    let settings = app.get(&t.token, "/api/v1/settings").await.1;
    app.expect_sent(&bot, alice.id, 3).await;
    assert_eq!(
        app.tg.sent_to(&bot, alice.id).last().unwrap().text,
        settings["closing_text"].as_str().unwrap()
    );
    let status: String =
        sqlx::query_scalar("select status from conversations where tenant_id = $1")
            .bind(t.id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "closed");
}

/// An operator as people are: types at human speed, pauses to think, inserts a canned
/// response, gets interrupted by the user and a reload, has a send refused. Nothing typed
/// is ever lost, and what is sent reaches the user once.
#[tokio::test]
async fn the_reply_box_keeps_what_the_operator_types() {
    let app = TestApp::start().await;
    let t = app.tenant("Tea House").await;
    let bot = app.connect_bot(&t, "tea_bot").await;
    app.post(
        &t.token,
        "/api/v1/canned-responses",
        serde_json::json!({"shortcut": "wait", "title": "Checking",
                           "text": "Let me check that for you."}),
    )
    .await;
    let alice = crate::harness::alice();
    app.say(&bot, &alice, "Where is my green tea order?").await;
    let conv = app.conversation(&t, "waiting").await;
    let conv_id = conv["id"].as_str().unwrap().to_string();
    let email = format!("owner@{}.test", t.slug);
    let (token, tg, bot2, alice2) = (t.token.clone(), app.tg.clone(), bot.clone(), alice.clone());
    let app_ref = &app;
    let slug = t.slug.clone();
    let conv_path = format!("/desk/t/{slug}/c/{conv_id}");
    scenario("reply-box", &app, |b| async move {
        b.goto("/login").await;
        b.fill("#f-email", &email).await;
        b.fill("#f-password", "password123").await;
        b.click("#login-submit").await;
        b.see("Tea House").await;
        b.goto(&conv_path).await;
        b.click("#act-claim").await;
        b.see("took the conversation").await;

        // Typing with pauses: the preview runs after each pause and the text stays.
        b.type_slowly("#reply-text", "Hello! ").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        b.type_slowly("#reply-text", "Thanks for waiting.").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(b.value("#reply-text").await, "Hello! Thanks for waiting.");
        b.until(
            "the preview shows the text",
            "return document.getElementById('reply-preview').textContent.includes('Thanks for waiting.');",
        )
        .await;

        // A canned response from the list, then a pause.
        b.click("#canned-toggle").await;
        b.click("[data-canned-insert='0']").await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(
            b.value("#reply-text").await,
            "Hello! Thanks for waiting.Let me check that for you."
        );

        // The user writes meanwhile: the timeline refreshes live, the box is untouched.
        tg.send_text(&bot2, &alice2, "It was ordered on Monday").await;
        b.see("It was ordered on Monday").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            b.value("#reply-text").await,
            "Hello! Thanks for waiting.Let me check that for you."
        );

        // A reload keeps the draft of this conversation.
        b.goto(&conv_path).await;
        b.wait("#reply-text").await;
        assert_eq!(
            b.value("#reply-text").await,
            "Hello! Thanks for waiting.Let me check that for you."
        );

        // Someone closes the conversation before the operator sends: refused, text kept.
        let (status, _) = app_ref
            .post(&token, &format!("/api/v1/conversations/{conv_id}/close"), serde_json::json!({}))
            .await;
        assert!(status.is_success(), "close: {status}");
        tokio::time::sleep(Duration::from_millis(700)).await;
        b.click("#reply-send").await;
        b.wait("#conv-error").await;
        assert_eq!(
            b.value("#reply-text").await,
            "Hello! Thanks for waiting.Let me check that for you."
        );

        // Reopened; the operator sends, pausing first as people do.
        let (status, _) = app_ref
            .post(&token, &format!("/api/v1/conversations/{conv_id}/reopen"), serde_json::json!({}))
            .await;
        assert!(status.is_success(), "reopen: {status}");
        b.goto(&conv_path).await;
        b.wait("#reply-text").await;
        b.type_slowly("#reply-text", " Sorry!").await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        b.click("#reply-send").await;
        b.until(
            "the reply is in the timeline",
            "return [...document.querySelectorAll('.desk-out')]
               .some(e => e.textContent.includes('Let me check that for you. Sorry!'));",
        )
        .await;
        b.until(
            "the box is emptied after sending",
            "return document.getElementById('reply-text').value === '';",
        )
        .await;
        // Sent means the draft is gone too.
        b.goto(&conv_path).await;
        b.wait("#reply-text").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(b.value("#reply-text").await, "");
    })
    .await;
    app.eventually("the reply reaches the user once", || async {
        app.tg
            .sent_to(&bot, alice.id)
            .iter()
            .filter(|m| m.text == "Hello! Thanks for waiting.Let me check that for you. Sorry!")
            .count()
            == 1
    })
    .await;
}

#[tokio::test]
async fn an_admin_reads_the_statistics_and_finds_a_message_in_the_log() {
    let app = TestApp::start().await;
    let t = app.tenant("Metrics Shop").await;
    let bot = app.connect_bot(&t, "metrics_shop_bot").await;
    app.post(
        &t.token,
        "/api/v1/rules",
        serde_json::json!({"title": "Delivery times", "answer": "Delivery takes 2–3 days.",
                           "examples": ["how long is delivery", "сколько идёт доставка"]}),
    )
    .await;
    let alice = crate::harness::alice();
    let boris = crate::harness::bob().lang("ru");
    app.say(&bot, &alice, "How long is delivery?").await;
    app.say(&bot, &boris, "Сколько идёт доставка?").await;
    app.say(&bot, &boris, "мой заказ пришёл разбитым").await;
    app.expect_sent(&bot, boris.id, 2).await;
    let slug = t.slug.clone();
    scenario("stats-and-log", &app, |b| async move {
        b.goto("/login").await;
        b.fill("#f-email", &format!("owner@{slug}.test")).await;
        b.fill("#f-password", "password123").await;
        b.click("#login-submit").await;
        b.see("Metrics Shop").await;
        // The statistics: headline numbers, a drawn chart, the top rule, the heat map.
        b.click("a[href$='/stats']").await;
        b.see("Statistics").await;
        assert_eq!(
            b.text("[data-metric='messages_in'] .headline-value")
                .await
                .trim(),
            "3"
        );
        b.until(
            "the chart is drawn",
            "return !!(window.Chart && Chart.getChart(document.getElementById('chart-series')));",
        )
        .await;
        b.see("Delivery times").await;
        b.wait("#heatmap .heat-cell").await;
        b.screenshot("stats").await;
        // The log: search in Russian with another word form, then the detail view.
        b.click("a[href$='/logs']").await;
        b.fill("#q", "разбитый заказ").await;
        b.click("#apply-filters").await;
        b.see("мой заказ пришёл разбитым").await;
        let rows = b
            .chrome
            .execute(
                "return document.querySelectorAll('#log-table .log-entry').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(rows, serde_json::json!(1));
        b.screenshot("log").await;
        b.click(".log-detail").await;
        b.wait("#raw-update").await;
        b.see("update_id").await;
    })
    .await;
}
