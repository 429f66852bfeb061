//! The web panel over HTTP: accounts, access rules on every page (anonymous → login,
//! wrong role → 403, other tenant → 404, no CSRF token → 403), and what the forms store.

use reqwest::StatusCode;
use serde_json::json;
use switchboard_core::Role;

use crate::harness::{link_in, TestApp};

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_up_creates_the_organization_and_its_owner() {
    let app = TestApp::start().await;
    let web = app.web();
    let form = web.get("/signup").await;
    assert!(form.has("Create your organization"));
    let r = web
        .post(
            "/signup",
            &[
                ("name", "Anna"),
                ("email", "anna@acme.test"),
                ("password", "short"),
                ("organization", ""),
                ("language", "en"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "errors re-render the form");
    assert!(r.has("is-invalid"));
    assert!(r.has("value=\"anna@acme.test\""), "what was typed is kept");
    assert_eq!(count(&app, "select count(*) from users").await, 0);
    let r = web
        .post(
            "/signup",
            &[
                ("name", "Anna"),
                ("email", "anna@acme.test"),
                ("password", "password123"),
                ("organization", "Acme Shop"),
                ("language", "ru"),
                // The page's script fills in the browser's time zone.
                ("timezone", "Europe/Moscow"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/t/acme-shop/bot"));
    let zone: String = sqlx::query_scalar("select timezone from bot_settings")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        zone, "Europe/Moscow",
        "the organization's days are the browser's"
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from users where last_login_at is not null"
        )
        .await,
        1,
        "signing up signs in: the team page shows when"
    );
    let bot_page = web.get("/t/acme-shop/bot").await;
    assert_eq!(bot_page.status, StatusCode::OK);
    assert!(
        bot_page.has("Добро пожаловать в Acme Shop"),
        "welcome in the chosen language"
    );
    let role: String = sqlx::query_scalar("select m.role from memberships m join users u on u.id = m.user_id where u.email = 'anna@acme.test'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(role, "owner");
    let welcome: String = sqlx::query_scalar("select welcome_text from bot_settings")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(
        welcome.starts_with("Здравствуйте"),
        "the bot's texts are in the chosen language"
    );
    // The same email cannot sign up twice.
    let other = app.web();
    other.get("/signup").await;
    let r = other
        .post(
            "/signup",
            &[
                ("name", "X"),
                ("email", "ANNA@acme.test"),
                ("password", "password123"),
                ("organization", "Other"),
                ("language", "en"),
            ],
        )
        .await;
    assert!(r.has("already exists"), "{}", r.body);
    // A zone no one knows is ignored: the organization starts in UTC.
    let r = other
        .post(
            "/signup",
            &[
                ("name", "Boris"),
                ("email", "boris@beta.test"),
                ("password", "password123"),
                ("organization", "Beta"),
                ("language", "en"),
                ("timezone", "Mars/Olympus_Mons"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let zone: String = sqlx::query_scalar(
        "select s.timezone from bot_settings s join tenants t on t.id = s.tenant_id
         where t.slug = 'beta'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(zone, "UTC");
}

/// The session table holds digests, not ids: a copy of it (a dump, a backup) gives no
/// cookie that signs anyone in, while the browser's own cookie keeps working.
/// An address no page has, or whose id does not parse, shows the error page in the
/// reader's language; the API's and the webhook's unknown addresses stay bare 404s.
#[tokio::test]
async fn unknown_addresses_get_the_not_found_page() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let web = app.owner_web(&t).await;
    for path in [
        "/nonexistent".to_string(),
        format!("/t/{}/log", t.slug),
        format!("/t/{}/rules/not-a-uuid", t.slug),
    ] {
        let page = web.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.has("Page not found"), "{path}: {}", page.body);
        assert!(!page.has("UUID"), "no framework text: {}", page.body);
    }
    let r = reqwest::Client::new()
        .get(format!("{}/nonexistent", app.base))
        .header("accept-language", "ru")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("Страница не найдена"));
    let (status, _) = app.get(&t.token, "/api/v1/nonexistent").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/nonexistent", app.base))
        .send()
        .await
        .unwrap();
    assert!(
        !r.text().await.unwrap().contains("<html"),
        "no page for the API"
    );
}

#[tokio::test]
async fn sessions_are_stored_under_a_digest_of_their_id() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let web = app.web();
    web.get("/login").await;
    let r = web
        .post(
            "/login",
            &[("email", "owner@acme.test"), ("password", "password123")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let cookie = r
        .headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("sb_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    let stored: Vec<String> = sqlx::query_scalar("select id from tower_sessions.session")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(!stored.is_empty());
    assert!(!stored.contains(&cookie), "the id itself is not stored");
    // The browser's cookie works.
    let page = web.get(&format!("/t/{}", t.slug)).await;
    assert_eq!(page.status, StatusCode::OK);
    // A stored id presented as a cookie is nobody's session.
    for id in &stored {
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}/t/{}", app.base, t.slug))
            .header(reqwest::header::COOKIE, format!("sb_session={id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "signed in from the table"
        );
        assert!(r.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login"));
    }
}

#[tokio::test]
async fn sign_in_out_and_throttling() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let web = app.web();
    web.get("/login").await;
    for _ in 0..3 {
        let r = web
            .post(
                "/login",
                &[("email", "owner@acme.test"), ("password", "wrong-password")],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.has("Wrong email or password"));
    }
    assert_eq!(count(&app, "select count(*) from login_failures").await, 3);
    assert_eq!(
        count(
            &app,
            "select count(*) from platform_events where kind = 'login.failed'"
        )
        .await,
        3
    );
    // The fourth try is slowed down, but the right password still gets in.
    let started = std::time::Instant::now();
    let r = web
        .post(
            "/login",
            &[("email", "owner@acme.test"), ("password", "password123")],
        )
        .await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        count(&app, "select count(*) from login_failures").await,
        0,
        "cleared on success"
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from platform_events where kind = 'login.succeeded'"
        )
        .await,
        1
    );
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let dash = web.get(&format!("/t/{}", t.slug)).await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(dash.headers.get("content-security-policy").is_some());
    assert_eq!(dash.headers["x-frame-options"], "DENY");
    let r = web.post("/logout", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let after = web.get(&format!("/t/{}", t.slug)).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(
        after.location.unwrap(),
        format!("/login?next=%2Ft%2F{}", t.slug)
    );
}

/// Every tenant page: anonymous → login; a stranger → 404; an operator → 403 where only
/// admins may go; forms without the CSRF token → 403.
#[tokio::test]
async fn every_page_checks_who_is_asking() {
    let app = TestApp::start().await;
    let a = app.tenant("Acme").await;
    let b = app.tenant("Beta").await;
    let owner = app.owner_web(&a).await;
    let stranger = app.owner_web(&b).await;
    let operator = app.member_web(&a, "op@acme.test", Role::Operator).await;
    let anonymous = app.web();
    let (_, rule) = app
        .post(
            &a.token,
            "/api/v1/rules",
            json!({"title": "Hours", "answer": "9–18"}),
        )
        .await;
    let (_, menu) = app
        .post(
            &a.token,
            "/api/v1/menus",
            json!({"name": "Main", "text": "Choose"}),
        )
        .await;
    let (_, command) = app
        .post(
            &a.token,
            "/api/v1/commands",
            json!({"command": "prices", "description": "p", "response": "r"}),
        )
        .await;
    let s = &a.slug;
    let (rid, mid, cid) = (
        rule["id"].as_str().unwrap(),
        menu["id"].as_str().unwrap(),
        command["id"].as_str().unwrap(),
    );
    let readable = [
        format!("/t/{s}"),
        format!("/t/{s}/bot"),
        format!("/t/{s}/rules"),
        format!("/t/{s}/rules/{rid}"),
        format!("/t/{s}/menus"),
        format!("/t/{s}/menus/{mid}"),
        format!("/t/{s}/commands"),
        format!("/t/{s}/commands/{cid}"),
        format!("/t/{s}/settings"),
        format!("/t/{s}/rules/export?format=json"),
    ];
    let admin_only = [
        format!("/t/{s}/rules/new"),
        format!("/t/{s}/rules/{rid}/delete"),
        format!("/t/{s}/rules/import"),
        format!("/t/{s}/menus/new"),
        format!("/t/{s}/menus/{mid}/delete"),
        format!("/t/{s}/commands/{cid}/delete"),
        format!("/t/{s}/team"),
        format!("/t/{s}/try"),
    ];
    for path in readable.iter().chain(admin_only.iter()) {
        let r = anonymous.get(path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "anonymous GET {path}");
        assert!(r.location.unwrap().starts_with("/login?next="), "{path}");
        assert_eq!(
            stranger.get(path).await.status,
            StatusCode::NOT_FOUND,
            "stranger GET {path}"
        );
        assert_eq!(
            owner.get(path).await.status,
            StatusCode::OK,
            "owner GET {path}"
        );
    }
    for path in &readable {
        assert_eq!(
            operator.get(path).await.status,
            StatusCode::OK,
            "operator GET {path}"
        );
    }
    for path in &admin_only {
        assert_eq!(
            operator.get(path).await.status,
            StatusCode::FORBIDDEN,
            "operator GET {path}"
        );
    }
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("/t/{s}/rules"),
            vec![("title", "New"), ("answer", "x")],
        ),
        (
            format!("/t/{s}/rules/{rid}"),
            vec![("title", "Changed"), ("answer", "x")],
        ),
        (format!("/t/{s}/rules/{rid}/delete"), vec![]),
        (
            format!("/t/{s}/rules/bulk"),
            vec![("ids", rid), ("action", "disable")],
        ),
        (
            format!("/t/{s}/menus"),
            vec![("name", "New"), ("text", "x")],
        ),
        (
            format!("/t/{s}/menus/{mid}"),
            vec![("name", "Changed"), ("text", "x")],
        ),
        (format!("/t/{s}/menus/{mid}/delete"), vec![]),
        (
            format!("/t/{s}/commands"),
            vec![("command", "faq"), ("description", "d"), ("response", "r")],
        ),
        (
            format!("/t/{s}/commands/{cid}"),
            vec![
                ("command", "changed"),
                ("description", "d"),
                ("response", "r"),
            ],
        ),
        (format!("/t/{s}/commands/{cid}/delete"), vec![]),
        (format!("/t/{s}/settings"), vec![("welcome_text", "Hacked")]),
        (format!("/t/{s}/bot"), vec![("token", "1:x")]),
        (format!("/t/{s}/bot/remove"), vec![]),
        (
            format!("/t/{s}/team"),
            vec![("email", "x@y.zz"), ("role", "admin")],
        ),
        (format!("/t/{s}/try/say"), vec![("text", "hi")]),
        (
            format!("/t/{s}/settings/delete"),
            vec![("confirm", s.as_str())],
        ),
    ];
    for (path, fields) in &forms {
        let r = owner.post_without_csrf(path, fields).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "no CSRF token: POST {path}"
        );
        let r = stranger.post(path, fields).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "stranger POST {path}");
        let r = operator.post(path, fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "operator POST {path}");
    }
    // Nothing changed.
    let (_, rule_now) = app.get(&a.token, &format!("/api/v1/rules/{rid}")).await;
    assert_eq!(rule_now["title"], "Hours");
    assert_eq!(rule_now["enabled"], true);
    assert_eq!(count(&app, "select count(*) from menus").await, 1);
    assert_eq!(count(&app, "select count(*) from commands").await, 1);
    assert_eq!(count(&app, "select count(*) from invitations").await, 0);
    assert_eq!(count(&app, "select count(*) from tenants").await, 2);
    let (_, settings) = app.get(&a.token, "/api/v1/settings").await;
    assert_ne!(settings["welcome_text"], "Hacked");
    // A form from another site is refused even with a token.
    let token = owner.csrf.lock().unwrap().clone();
    let r = owner
        .client
        .post(format!("{}/t/{s}/rules", app.base))
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf_token", token.as_str()),
            ("title", "x"),
            ("answer", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn rules_are_written_searched_and_managed_from_the_panel() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let web = app.owner_web(&t).await;
    let s = &t.slug;
    // Invalid: errors next to the fields, input kept, nothing stored.
    let r = web
        .submit(
            &format!("/t/{s}/rules/new"),
            &format!("/t/{s}/rules"),
            &[
                ("title", ""),
                ("answer", "<b>open"),
                ("format", "html"),
                ("examples", "when are you open"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.has("is-invalid"));
    assert!(r.has("&lt;b&gt;open"), "the typed answer is kept");
    assert!(r.has("is not closed"));
    assert_eq!(count(&app, "select count(*) from answer_rules").await, 0);
    let r = web
        .post(
            &format!("/t/{s}/rules"),
            &[
                ("title", "Opening hours"),
                ("answer", "We are open <b>9–18</b>."),
                ("format", "html"),
                (
                    "examples",
                    "when are you open\n opening hours \n\nwhen are you open",
                ),
                ("keywords", "hours"),
                ("priority", "2"),
                ("enabled", "on"),
                ("b_row", "0"),
                ("b_id", ""),
                ("b_label", "Talk to a person"),
                ("b_action", "handover"),
                ("b_target", ""),
                ("b_row", "0"),
                ("b_id", ""),
                ("b_label", "Website"),
                ("b_action", "url"),
                ("b_target", "https://acme.example"),
                ("b_row", "1"),
                ("b_id", ""),
                ("b_label", "Say hi"),
                ("b_action", "text"),
                ("b_target", "Hello!"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, list) = app.get(&t.token, "/api/v1/rules").await;
    let rule = &list["items"][0];
    assert_eq!(
        rule["examples"],
        json!(["when are you open", "opening hours"])
    );
    assert_eq!(rule["format"], "html");
    assert_eq!(rule["priority"], 2);
    assert_eq!(rule["buttons"][0].as_array().unwrap().len(), 2);
    assert_eq!(rule["buttons"][1][0]["text"], "Hello!");
    let id = rule["id"].as_str().unwrap().to_string();
    // The list searches and filters.
    app.post(
        &t.token,
        "/api/v1/rules",
        json!({"title": "Delivery", "answer": "2 days", "enabled": false}),
    )
    .await;
    let page = web.get(&format!("/t/{s}/rules?q=hours")).await;
    assert!(
        page.has("Opening hours") && !page.has(">Delivery<"),
        "{}",
        page.body
    );
    let page = web.get(&format!("/t/{s}/rules?enabled=off")).await;
    assert!(page.has(">Delivery<") && !page.has("Opening hours"));
    let page = web.get(&format!("/t/{s}/rules?buttons=yes")).await;
    assert!(page.has("Opening hours") && !page.has(">Delivery<"));
    // Bulk: turn both off.
    let (_, all) = app.get(&t.token, "/api/v1/rules").await;
    let ids: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let r = web
        .post(
            &format!("/t/{s}/rules/bulk"),
            &[
                ("ids", ids[0].as_str()),
                ("ids", ids[1].as_str()),
                ("action", "disable"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        count(&app, "select count(*) from answer_rules where enabled").await,
        0
    );
    // Export, then import the export back after a change: matched by id, updated.
    let export = web.get(&format!("/t/{s}/rules/export?format=json")).await;
    assert_eq!(export.headers["content-type"], "application/json");
    let mut exported: serde_json::Value = serde_json::from_str(&export.body).unwrap();
    assert_eq!(exported.as_array().unwrap().len(), 2);
    exported[0]["answer"] = json!("We are open 8–20.");
    exported[0]["format"] = json!("plain");
    let csv = web.get(&format!("/t/{s}/rules/export?format=csv")).await;
    // Led by the UTF-8 byte order mark, so Excel shows Cyrillic as it is.
    assert!(csv.body.starts_with("\u{feff}id,title,answer,examples"));
    let import_page = web.get(&format!("/t/{s}/rules/import")).await;
    assert_eq!(import_page.status, StatusCode::OK);
    let token = web.csrf.lock().unwrap().clone();
    // As the browser sends the form: the token is a field of the multipart body.
    let upload = |body: String| {
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", token.clone())
            .part(
                "file",
                reqwest::multipart::Part::text(body).file_name("rules.json"),
            );
        web.client
            .post(format!("{}/t/{s}/rules/import", app.base))
            .multipart(form)
            .send()
    };
    // Without it — or with it only in the address, where it would stay in the history —
    // the upload is refused.
    for url in [
        format!("{}/t/{s}/rules/import", app.base),
        format!("{}/t/{s}/rules/import?csrf_token={token}", app.base),
    ] {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::text("[]").file_name("rules.json"),
        );
        let r = web.client.post(url).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert!(
        import_page.has(r#"name="csrf_token""#) && !import_page.has("?csrf_token="),
        "{}",
        import_page.body
    );
    // One bad row: nothing imported.
    let mut bad = exported.clone();
    bad.as_array_mut()
        .unwrap()
        .push(json!({"title": "", "answer": "x"}));
    let r = upload(bad.to_string()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains("Nothing was imported"), "{text}");
    assert!(
        text.contains("Item 3, title: Required."),
        "the row and column: {text}"
    );
    // A file that cannot be read says why, in the reader's words.
    let r = upload("name,text\nHours,9-18\n".into()).await.unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("The first line of a CSV file must name its columns"),
        "{text}"
    );
    let r = upload("[{\"title\": \"x\",".into()).await.unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("The JSON could not be read: line 1"),
        "{text}"
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from answer_rules where answer like '%8–20%'"
        )
        .await,
        0
    );
    let mut good = exported.clone();
    good.as_array_mut().unwrap().push(
        json!({"title": "Returns", "answer": "Within 14 days", "examples": ["can I return it"]}),
    );
    let r = upload(good.to_string()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(count(&app, "select count(*) from answer_rules").await, 3);
    assert_eq!(
        count(
            &app,
            "select count(*) from answer_rules where answer = 'We are open 8–20.'"
        )
        .await,
        1
    );
    // Delete asks first, then deletes.
    let confirm = web.get(&format!("/t/{s}/rules/{id}/delete")).await;
    assert!(confirm.has("Delete “Opening hours”?"));
    let r = web.post(&format!("/t/{s}/rules/{id}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        count(
            &app,
            &format!("select count(*) from answer_rules where id = '{id}'")
        )
        .await,
        0
    );
    let kinds: Vec<String> =
        sqlx::query_scalar("select kind from events where kind like 'rule.%' order by id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert!(
        kinds.contains(&"rule.bulk_disabled".to_string())
            && kinds.contains(&"rule.imported".to_string()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn menus_and_settings_from_the_panel_change_what_the_bot_says() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let web = app.owner_web(&t).await;
    let s = &t.slug;
    let (_, rule) = app
        .post(
            &t.token,
            "/api/v1/rules",
            json!({"title": "Hours", "answer": "9–18"}),
        )
        .await;
    let r = web
        .submit(
            &format!("/t/{s}/menus/new"),
            &format!("/t/{s}/menus"),
            &[
                ("name", "Main"),
                ("text", "Pick one"),
                ("is_main", "on"),
                ("b_row", "0"),
                ("b_id", ""),
                ("b_label", "Hours"),
                ("b_action", "rule"),
                ("b_target", rule["id"].as_str().unwrap()),
                ("b_row", "1"),
                ("b_id", ""),
                ("b_label", "Human"),
                ("b_action", "handover"),
                ("b_target", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = web
        .submit(
            &format!("/t/{s}/settings"),
            &format!("/t/{s}/settings"),
            &[
                ("default_language", "en"),
                ("welcome_text", "Welcome to Acme!"),
                ("help_text", "Ask anything."),
                ("handover_text", "A person will answer."),
                ("offhours_text", "We are closed now."),
                ("closing_text", "Bye!"),
                ("already_waiting_text", "Soon."),
                ("stale_button_text", "Old button."),
                ("tr_welcome_text", "Добро пожаловать в Acme!"),
                ("timezone", "Mars/Olympus"),
                ("answer_threshold", "0.5"),
                ("always_open", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "an invalid time zone re-renders");
    assert!(r.has("Unknown time zone"));
    assert!(
        r.has("Nothing was saved: 1 field(s) below need a fix."),
        "a summary at the top: {}",
        r.body
    );
    assert!(r.has("Welcome to Acme!"), "input kept");
    let r = web
        .post(
            &format!("/t/{s}/settings"),
            &[
                ("default_language", "en"),
                ("welcome_text", "Welcome to Acme!"),
                ("help_text", "Ask anything."),
                ("handover_text", "A person will answer."),
                ("offhours_text", "We are closed now."),
                ("closing_text", "Bye!"),
                ("already_waiting_text", "Soon."),
                ("stale_button_text", "Old button."),
                ("tr_welcome_text", "Добро пожаловать в Acme!"),
                ("timezone", "Europe/Moscow"),
                ("answer_threshold", "0.6"),
                ("always_open", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, settings) = app.get(&t.token, "/api/v1/settings").await;
    assert_eq!(settings["timezone"], "Europe/Moscow");
    assert!((settings["answer_threshold"].as_f64().unwrap() - 0.6).abs() < 1e-6);
    assert!(settings["working_hours"].is_null());
    // The page shows the thresholds as set (0.6, not the stored real's 0.60000002384…).
    let page = web.get(&format!("/t/{s}/settings")).await;
    assert!(page.has(r#"value="0.6""#), "threshold as set");
    assert!(!page.has("0.6000000"), "no float noise");
    // English and Russian users get their language's welcome, with the main menu.
    let en = crate::harness::alice();
    let ru = switchboard_testkit::FakeUser::new(2002, "Иван").lang("ru");
    app.say(&bot, &en, "/start").await;
    app.say(&bot, &ru, "/start").await;
    let sent_en = app.expect_sent(&bot, en.id, 1).await;
    let sent_ru = app.expect_sent(&bot, ru.id, 1).await;
    assert_eq!(sent_en[0].text, "Welcome to Acme!");
    assert_eq!(sent_ru[0].text, "Добро пожаловать в Acme!");
    let labels: Vec<String> = sent_en[0].buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, ["Hours", "Human"]);
    // The menus page previews the main menu as /start sends it: under the welcome text.
    let page = web.get(&format!("/t/{s}/menus")).await;
    assert!(page.has("Welcome to Acme!"), "{}", page.body);
    assert!(
        !page.has("Pick one"),
        "the main menu's own text is not what /start shows"
    );
}

#[tokio::test]
async fn invitations_roles_and_the_last_owner() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let owner = app.owner_web(&t).await;
    let s = &t.slug;
    let r = owner
        .submit(
            &format!("/t/{s}/team"),
            &format!("/t/{s}/team"),
            &[("email", "new.op@acme.test"), ("role", "operator")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (subject, body) = app.last_mail("new.op@acme.test").await;
    assert!(subject.contains("Acme"));
    // Without a mail server nobody got that mail: the team page says so, once, and gives
    // the link to pass on.
    let team = owner.get(&format!("/t/{s}/team")).await;
    assert!(team.has("No mail server is configured"), "{}", team.body);
    assert!(!team.has("has been sent"));
    let shown = team
        .body
        .split("id=\"invite-link-value\" aria-label")
        .next()
        .and_then(|b| b.rsplit("value=\"").next())
        .and_then(|v| v.split('"').next())
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(shown.contains("/invite/"), "{shown}");
    assert!(
        body.contains(&shown),
        "the link shown is the one in the mail"
    );
    let again = owner.get(&format!("/t/{s}/team")).await;
    assert!(!again.has("invite-link-value"), "shown once");
    let link = link_in(&body);
    let path = link.trim_start_matches(&app.base).to_string();
    // The invitee creates an account through the link and lands in the organization.
    let newcomer = app.web();
    let page = newcomer.get(&path).await;
    assert!(page.has("Join Acme as Operator"), "{}", page.body);
    let r = newcomer
        .post(&path, &[("name", "Olga"), ("password", "password123")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some(format!("/t/{s}").as_str()));
    assert_eq!(
        newcomer.get(&format!("/t/{s}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        newcomer.get(&format!("/t/{s}/team")).await.status,
        StatusCode::FORBIDDEN,
        "operators do not manage the team"
    );
    // The link works once.
    assert_eq!(app.web().get(&path).await.status, StatusCode::NOT_FOUND);
    let olga: uuid::Uuid =
        sqlx::query_scalar("select id from users where email = 'new.op@acme.test'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    // Promote to admin, then the owner cannot demote themselves (last owner).
    let r = owner
        .submit(
            &format!("/t/{s}/team"),
            &format!("/t/{s}/team/{olga}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let owner_id: uuid::Uuid =
        sqlx::query_scalar("select id from users where email = 'owner@acme.test'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let r = owner
        .post(
            &format!("/t/{s}/team/{owner_id}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.has("at least one owner"));
    let r = owner
        .post(&format!("/t/{s}/team/{owner_id}/remove"), &[])
        .await;
    assert!(r.has("at least one owner"));
    // An admin cannot make owners or touch the owner.
    let admin = app.sign_in("new.op@acme.test", "password123").await;
    admin.get(&format!("/t/{s}/team")).await;
    let r = admin
        .post(&format!("/t/{s}/team/{olga}/role"), &[("role", "owner")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = admin
        .post(&format!("/t/{s}/team/{owner_id}/remove"), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Removing Olga ends her access.
    let r = owner.post(&format!("/t/{s}/team/{olga}/remove"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        admin.get(&format!("/t/{s}")).await.status,
        StatusCode::NOT_FOUND
    );
    let kinds: Vec<String> =
        sqlx::query_scalar("select kind from events where kind like 'member.%' order by id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [
            "member.invited",
            "member.joined",
            "member.role_changed",
            "member.removed"
        ]
    );
}

#[tokio::test]
async fn forgotten_passwords_are_reset_by_mail() {
    let app = TestApp::start().await;
    app.tenant("Acme").await;
    let web = app.web();
    let r = web
        .submit(
            "/password/forgot",
            "/password/forgot",
            &[("email", "owner@acme.test")],
        )
        .await;
    assert!(r.has("If an account with this email exists"));
    let r = web
        .post("/password/forgot", &[("email", "nobody@acme.test")])
        .await;
    assert!(
        r.has("If an account with this email exists"),
        "no account enumeration"
    );
    assert_eq!(count(&app, "select count(*) from outbound_emails").await, 1);
    let (_, body) = app.last_mail("owner@acme.test").await;
    let path = link_in(&body).trim_start_matches(&app.base).to_string();
    let page = web.get(&path).await;
    assert!(page.has("Choose a new password"));
    let r = web
        .post(
            &path,
            &[("password", "brand-new-pass"), ("confirm", "different")],
        )
        .await;
    assert!(r.has("do not match"));
    let r = web
        .post(
            &path,
            &[
                ("password", "brand-new-pass"),
                ("confirm", "brand-new-pass"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    app.sign_in("owner@acme.test", "brand-new-pass").await;
    let again = web.get(&path).await;
    assert!(again.has("expired or was already used"));
}

/// However often (and from wherever) someone asks, one account gets three reset mails,
/// then one every twenty minutes; the page answers the same either way.
#[tokio::test]
async fn reset_mails_to_one_account_are_limited_whoever_asks() {
    let app = TestApp::start().await;
    app.tenant("Acme").await;
    for _ in 0..8 {
        let web = app.web();
        web.get("/password/forgot").await;
        let r = web
            .post("/password/forgot", &[("email", "owner@acme.test")])
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.has("If an account with this email exists"), "{}", r.body);
    }
    assert_eq!(
        count(
            &app,
            "select count(*) from outbound_emails where to_address = 'owner@acme.test'"
        )
        .await,
        3
    );
    assert_eq!(
        count(&app, "select count(*) from password_resets").await,
        3,
        "no reset link is made for a mail not sent"
    );
}

/// The rule editor's live preview says when an answer is longer than one Telegram
/// message, and in how many it will go out.
#[tokio::test]
async fn the_answer_preview_warns_of_an_answer_sent_in_parts() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let web = app.owner_web(&t).await;
    let path = format!("/t/{}/rules/preview", t.slug);
    let long = "word ".repeat(1_800);
    let r = web.post(&path, &[("answer", long.as_str())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.has("it is sent as 3 messages"), "{}", r.body);
    let r = web.post(&path, &[("answer", "We are open 9 to 18.")]).await;
    assert!(!r.has("answer-parts"), "{}", r.body);
}

#[tokio::test]
async fn try_it_runs_the_real_pipeline_as_test_traffic() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let web = app.owner_web(&t).await;
    let s = &t.slug;
    app.post(
        &t.token,
        "/api/v1/rules",
        json!({"title": "Hours", "answer": "We are open 9–18.", "examples": ["when are you open"],
        "buttons": [[{"label": "Talk to a person", "action": "handover",
                      "translations": {"ru": {"label": "Позвать человека"}}}]],
        "translations": {"ru": {"answer": "Мы работаем с 9 до 18."}}}),
    )
    .await;
    let page = web.get(&format!("/t/{s}/try")).await;
    assert!(page.has("Try your bot"));
    assert!(
        page.has(r#"id="try-lang""#),
        "the tester picks a Telegram language"
    );
    // As a user whose Telegram is in Russian: the organization's Russian words.
    let r = web
        .post(
            &format!("/t/{s}/try/say"),
            &[("text", "When are you open?"), ("lang", "ru")],
        )
        .await;
    assert!(r.has("Мы работаем с 9 до 18."), "{}", r.body);
    assert!(r.has("Позвать человека"), "{}", r.body);
    web.post(&format!("/t/{s}/try/reset"), &[]).await;
    let r = web
        .post(
            &format!("/t/{s}/try/say"),
            &[("text", "When are you open?")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.has("We are open 9–18."), "{}", r.body);
    assert!(r.has("Talk to a person"));
    // Under the question: which rule answered and how sure the bot was, and the bands.
    assert!(r.has("Answered by “Hours”"), "{}", r.body);
    assert!(r.has("% sure"));
    assert!(r.has("at least 50% sure"), "the answer band: {}", r.body);
    let data_at = r.body.find("\"data\": \"").unwrap() + "\"data\": \"".len();
    let data = &r.body[data_at..data_at + r.body[data_at..].find('"').unwrap()];
    let r = web
        .post(
            &format!("/t/{s}/try/press"),
            &[("data", data), ("message_id", "1")],
        )
        .await;
    assert!(
        r.has("I am passing your question to an operator"),
        "{}",
        r.body
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from conversations where is_test and status = 'waiting'"
        )
        .await,
        1
    );
    // The tester is led to the conversation on the desk (it is in no queue there).
    let link_at = r.body.find("/desk/t/").expect("a link to the desk");
    let link = &r.body[link_at..link_at + r.body[link_at..].find('"').unwrap()];
    let page = web.get(link).await;
    assert_eq!(page.status, StatusCode::OK, "{link}");
    assert!(
        page.has("When are you open?"),
        "the conversation: {}",
        page.body
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from deliveries where status <> 'sent'"
        )
        .await,
        0
    );
    assert!(
        app.tg.calls().iter().all(|c| c.method != "sendMessage"),
        "nothing went to Telegram"
    );
    // The test does not wait in the operators' queue, nor count in it.
    let op = app
        .member_web(&t, "op@acme.test", switchboard_core::Role::Operator)
        .await;
    let desk = op.get("/desk").await;
    assert!(desk.status.is_success());
    assert!(
        !desk.has("data-conversation=\""),
        "a test in the queue: {}",
        desk.body
    );
    // Nor on the dashboard's "waiting for an operator".
    let dashboard = web.get(&format!("/t/{s}")).await;
    assert!(
        dashboard.has(r#"<div class="display-6" id="count-waiting">0</div>"#),
        "{}",
        dashboard.body
    );
    assert!(!dashboard.has("/desk/t/"), "a test listed as waiting");
    // After the hand-over the tester goes on with the bot, the transcript kept.
    let r = web.post(&format!("/t/{s}/try/back-to-bot"), &[]).await;
    assert!(r.has("We are open 9–18."), "transcript kept");
    assert!(!r.has("try-back-to-bot"), "no longer with the operators");
    assert_eq!(
        count(
            &app,
            "select count(*) from conversations where is_test and status = 'waiting'"
        )
        .await,
        0,
        "the test conversation left the queue"
    );
    let r = web
        .post(
            &format!("/t/{s}/try/say"),
            &[("text", "something nobody wrote a rule for")],
        )
        .await;
    assert!(r.has("No rule was sure enough"), "{}", r.body);
    let r = web.post(&format!("/t/{s}/try/reset"), &[]).await;
    assert!(r.has("or ask a question"), "the chat starts over");
}

#[tokio::test]
async fn the_bot_page_connects_shows_and_removes_the_bot() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let web = app.owner_web(&t).await;
    let s = &t.slug;
    let r = web
        .submit(
            &format!("/t/{s}/bot"),
            &format!("/t/{s}/bot"),
            &[("token", "123:not-a-token")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.has("This is not a Telegram bot token"));
    let bot = app.tg.add_bot("panel_bot");
    let r = web
        .post(&format!("/t/{s}/bot"), &[("token", bot.token.as_str())])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = web.get(&format!("/t/{s}/bot")).await;
    assert!(page.has("@panel_bot"));
    assert!(!page.has(&bot.token), "the token is never shown again");
    let status = web.get(&format!("/t/{s}/bot/webhook")).await;
    let url = app.tg.webhook(&bot).unwrap().url;
    assert!(
        status.has(&url.replace('/', "&#x2f;")),
        "Telegram's view of the webhook is shown: {}",
        status.body
    );
    let r = web.post(&format!("/t/{s}/bot/webhook"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(app.tg.calls_of("setWebhook").len(), 2);
    let r = web.post(&format!("/t/{s}/bot/remove"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(app.tg.webhook(&bot).is_none());
}

#[tokio::test]
async fn superusers_suspend_organizations() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let member = app.owner_web(&t).await;
    switchboard::bootstrap::create_superuser(&app.db.pool, "root@platform.test", "rootpassword")
        .await
        .unwrap();
    let root = app.sign_in("root@platform.test", "rootpassword").await;
    assert_eq!(
        member.get("/platform/tenants").await.status,
        StatusCode::FORBIDDEN
    );
    let page = root.get("/platform/tenants").await;
    assert!(page.has("Acme"));
    let r = root
        .post(
            &format!("/platform/tenants/{}/status", t.id),
            &[("status", "suspended")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let blocked = member.get(&format!("/t/{}", t.slug)).await;
    assert_eq!(blocked.status, StatusCode::BAD_REQUEST);
    assert!(blocked.has("suspended"));
    let (s, _) = app.get(&t.token, "/api/v1/settings").await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "API tokens of a suspended organization stop working"
    );
    let mailbox = root.get("/dev/mailbox").await;
    assert_eq!(mailbox.status, StatusCode::OK);
}

#[tokio::test]
async fn the_interface_speaks_russian_and_english() {
    let app = TestApp::start().await;
    let web = app.web();
    let r = web
        .client
        .get(format!("{}/login", app.base))
        .header("accept-language", "ru-RU,ru;q=0.9")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("Войти"));
    web.get("/login").await;
    let r = web
        .post("/lang", &[("lang", "ru"), ("next", "/login")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(web.get("/login").await.has("Забыли пароль?"));
    web.post("/lang", &[("lang", "en"), ("next", "/login")])
        .await;
    assert!(web.get("/login").await.has("Forgot your password?"));
}

#[tokio::test]
async fn oauth_sign_in_with_pkce_links_by_verified_email() {
    let provider = switchboard_testkit::FakeOAuth::start().await;
    let oauth = switchboard_web::oauth::OAuthProvider {
        id: "sso".into(),
        label: "Acme SSO".into(),
        kind: switchboard_web::oauth::ProviderKind::Oidc,
        auth_url: provider.url("/authorize"),
        token_url: provider.url("/token"),
        userinfo_url: provider.url("/userinfo"),
        client_id: "switchboard".into(),
        client_secret: "secret".into(),
        scopes: vec!["openid".into(), "email".into()],
    };
    let app = TestApp::start_with(crate::harness::Options {
        oauth: vec![oauth],
        ..Default::default()
    })
    .await;
    let t = app.tenant("Acme").await;
    // The owner's email, verified by the provider: the identity links to that account.
    provider.set_profile(
        json!({"sub": "g-42", "email": "owner@acme.test", "email_verified": true, "name": "Owner"}),
    );
    let web = app.web();
    let login = web.get("/login").await;
    assert!(login.has("Sign in with Acme SSO"));
    let start = web.get("/oauth/sso/start").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    let to_provider = start.location.unwrap();
    assert!(to_provider.contains("code_challenge_method=S256") && to_provider.contains("state="));
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&to_provider)
        .send()
        .await
        .unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_string();
    // A forged state is refused.
    let forged = web
        .get(
            format!("{}&state=forged", callback.split("&state=").next().unwrap())
                .trim_start_matches(&app.base),
        )
        .await;
    assert_eq!(forged.location.as_deref(), Some("/login"));
    // The real one signs in (a new round: the forged attempt used up the pending login).
    let start = web.get("/oauth/sso/start").await;
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(start.location.unwrap())
        .send()
        .await
        .unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_string();
    let r = web.get(callback.trim_start_matches(&app.base)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        web.get(&format!("/t/{}", t.slug)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from oauth_identities where provider = 'sso' and subject = 'g-42'"
        )
        .await,
        1
    );
    // An unverified address does not take over an existing account.
    provider
        .set_profile(json!({"sub": "evil-1", "email": "owner@acme.test", "email_verified": false}));
    let other = app.web();
    let start = other.get("/oauth/sso/start").await;
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(start.location.unwrap())
        .send()
        .await
        .unwrap();
    let r = other
        .get(
            back.headers()["location"]
                .to_str()
                .unwrap()
                .trim_start_matches(&app.base),
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/login"));
    assert_eq!(
        other.get(&format!("/t/{}", t.slug)).await.status,
        StatusCode::SEE_OTHER
    );
    // A new person gets a new account (and creates an organization next).
    provider.set_profile(json!({"sub": "new-7", "email": "newbie@else.test", "email_verified": true, "name": "Newbie"}));
    let newbie = app.web();
    let start = newbie.get("/oauth/sso/start").await;
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(start.location.unwrap())
        .send()
        .await
        .unwrap();
    newbie
        .get(
            back.headers()["location"]
                .to_str()
                .unwrap()
                .trim_start_matches(&app.base),
        )
        .await;
    let home = newbie.get("/").await;
    assert_eq!(home.location.as_deref(), Some("/orgs/new"));
}

/// Every field error a form shows, from `invalid-feedback` and `text-danger` blocks.
fn shown_errors(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in [
        "class=\"invalid-feedback\">",
        "class=\"text-danger small\">",
        "class=\"text-danger small mb-2\">",
    ] {
        for piece in html.split(marker).skip(1) {
            if let Some(text) = piece.split("</div>").next() {
                out.push(text.trim().to_string());
            }
        }
    }
    out
}

/// A Russian-speaking admin fills every form wrongly: each error is shown in Russian
/// (from the catalogue), none in the English of the checks.
#[tokio::test]
async fn every_form_speaks_russian_when_it_refuses() {
    let app = TestApp::start().await;
    let t = app.tenant("Ромашка").await;
    let s = &t.slug;
    let web = app.owner_web(&t).await;
    web.post("/lang", &[("lang", "ru"), ("next", "/account")])
        .await;
    let settings = [
        ("default_language", "ru"),
        ("welcome_text", "Здравствуйте!"),
        ("help_text", "Спросите."),
        ("handover_text", "Ответит человек."),
        ("offhours_text", "Мы закрыты."),
        ("closing_text", "Пока!"),
        ("already_waiting_text", "Скоро."),
        ("stale_button_text", "Старая кнопка."),
        ("timezone", "Mars/Olympus"),
        ("answer_threshold", "0.5"),
        ("always_open", "on"),
        ("retention_days", "99999"),
    ];
    let long = "я".repeat(201);
    // (the page a form is on, where it posts, what is typed)
    type Filled<'a> = (String, String, Vec<(&'a str, &'a str)>);
    let forms: Vec<Filled> = vec![
        (
            format!("/t/{s}/rules/new"),
            format!("/t/{s}/rules"),
            vec![("title", ""), ("answer", ""), ("priority", "0")],
        ),
        (
            format!("/t/{s}/rules/new"),
            format!("/t/{s}/rules"),
            vec![
                ("title", &long),
                ("answer", "<b>открыт"),
                ("format", "html"),
                ("patterns", "("),
            ],
        ),
        (
            format!("/t/{s}/commands"),
            format!("/t/{s}/commands"),
            vec![("command", "Плохо!"), ("description", ""), ("response", "")],
        ),
        (
            format!("/t/{s}/commands"),
            format!("/t/{s}/commands"),
            vec![
                ("command", "start"),
                ("description", "x"),
                ("response", "y"),
            ],
        ),
        (
            format!("/t/{s}/canned"),
            format!("/t/{s}/canned"),
            vec![("shortcut", "Плохо!"), ("title", ""), ("text", "")],
        ),
        (
            format!("/t/{s}/menus/new"),
            format!("/t/{s}/menus"),
            vec![
                ("name", ""),
                ("text", ""),
                ("b_row", "0"),
                ("b_id", ""),
                ("b_label", "Сайт"),
                ("b_action", "url"),
                ("b_target", "javascript:alert(1)"),
            ],
        ),
        (
            format!("/t/{s}/settings"),
            format!("/t/{s}/settings"),
            settings.to_vec(),
        ),
        (
            format!("/t/{s}/settings"),
            format!("/t/{s}/settings"),
            settings
                .iter()
                .copied()
                .filter(|(k, _)| !matches!(*k, "always_open" | "timezone" | "retention_days"))
                .chain([
                    ("timezone", "Europe/Moscow"),
                    ("mon_open", "on"),
                    ("mon_from", "18:00"),
                    ("mon_to", "09:00"),
                ])
                .collect(),
        ),
        (
            format!("/t/{s}/settings"),
            format!("/t/{s}/settings"),
            settings
                .iter()
                .copied()
                .filter(|(k, _)| !matches!(*k, "always_open" | "timezone" | "retention_days"))
                .chain([
                    ("timezone", "Europe/Moscow"),
                    ("tue_open", "on"),
                    ("tue_from", "девять"),
                    ("tue_to", "18:00"),
                ])
                .collect(),
        ),
        (
            format!("/t/{s}/rules/new"),
            format!("/t/{s}/rules"),
            vec![
                ("title", "Доставка"),
                ("answer", "<b>Бесплатно</b>"),
                ("format", "html"),
                ("translations.en.question", &long),
                ("translations.en.answer", "<b>Free"),
            ],
        ),
        (
            format!("/t/{s}/team"),
            format!("/t/{s}/team"),
            vec![("email", "не-почта"), ("role", "operator")],
        ),
        (
            format!("/t/{s}/bot"),
            format!("/t/{s}/bot"),
            vec![("token", "123:not-a-token")],
        ),
        (
            "/account".to_string(),
            "/account/password".to_string(),
            vec![
                ("current", "password123"),
                ("new", "short"),
                ("confirm", "short"),
            ],
        ),
    ];
    let english = [
        "must ",
        "is not",
        "at most",
        "is required",
        "no such",
        "unknown time zone",
    ];
    for (page, action, fields) in &forms {
        let r = web.submit(page, action, fields).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{action} re-renders: {}",
            r.status
        );
        let errors = shown_errors(&r.body);
        assert!(!errors.is_empty(), "{action} shows its errors: {}", r.body);
        for e in &errors {
            assert!(
                e.chars()
                    .any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap_or(c))),
                "{action}: {e:?} is not Russian"
            );
            for word in english {
                assert!(
                    !e.to_lowercase().contains(word),
                    "{action}: {e:?} is English"
                );
            }
        }
    }
    // Anonymous, in Russian: sign-up.
    let visitor = app.web();
    visitor.get("/signup").await;
    visitor
        .post("/lang", &[("lang", "ru"), ("next", "/signup")])
        .await;
    let r = visitor
        .submit(
            "/signup",
            "/signup",
            &[
                ("name", "Анна"),
                ("email", "не-почта"),
                ("password", "short"),
                ("organization", "Ромашка 2"),
                ("language", "ru"),
            ],
        )
        .await;
    let errors = shown_errors(&r.body);
    assert!(errors.len() >= 2, "{}", r.body);
    for e in &errors {
        for word in english {
            assert!(
                !e.to_lowercase().contains(word),
                "sign-up: {e:?} is English"
            );
        }
    }
}

/// "Come back here" links lead only to this site, judged as a browser reads them, and a
/// bad one is never a 500.
#[tokio::test]
async fn next_links_stay_on_this_site() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let web = app.owner_web(&t).await;
    for next in [
        "/%09/evil.example/x",
        "/%0d%0aSet-Cookie:x=y",
        "//evil.example",
        "/%5Cevil.example",
        "https://evil.example",
        "/%20/evil.example",
    ] {
        let r = web.get(&format!("/login?next={next}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next}");
        let to = r.location.clone().unwrap_or_default();
        assert_eq!(to, "/", "{next} → {to}");
    }
    // A good one is followed.
    let r = web.get("/login?next=/t/acme/rules").await;
    assert_eq!(r.location.as_deref(), Some("/t/acme/rules"));
    // Signing in with a bad one lands at home, not on a 500.
    let visitor = app.web();
    visitor.get("/login").await;
    let r = visitor
        .post(
            "/login",
            &[
                ("email", "owner@acme.test"),
                ("password", "password123"),
                ("next", "/\r\nLocation: https://evil.example"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/"));
}

/// Thirty guesses at once: each is counted before its password is checked, so past the
/// limit the rest are refused at once (429), and then even the right password waits.
#[tokio::test]
async fn parallel_password_guesses_hit_the_limit_together() {
    let app = TestApp::start().await;
    let _t = app.tenant("Acme").await;
    let web = app.web();
    web.get("/login").await;
    let started = std::time::Instant::now();
    let guesses = (0..30).map(|i| {
        let web = &web;
        async move {
            let password = format!("guess-{i}");
            web.post(
                "/login",
                &[
                    ("email", "owner@acme.test"),
                    ("password", password.as_str()),
                ],
            )
            .await
        }
    });
    let pages = futures::future::join_all(guesses).await;
    let refused = pages
        .iter()
        .filter(|p| p.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let checked = pages.iter().filter(|p| p.status == StatusCode::OK).count();
    assert_eq!(
        refused + checked,
        30,
        "{:?}",
        pages.iter().map(|p| p.status).collect::<Vec<_>>()
    );
    assert!(checked <= 10, "{checked} passwords were checked");
    assert!(refused >= 20);
    let locked = pages
        .iter()
        .find(|p| p.status == StatusCode::TOO_MANY_REQUESTS)
        .unwrap();
    assert!(locked.headers.contains_key("retry-after"));
    assert!(locked.has("Too many failed sign-ins"));
    eprintln!(
        "30 parallel guesses: {checked} checked, {refused} refused in {:?}",
        started.elapsed()
    );
    // The right password does not help during the lock.
    let r = web
        .post(
            "/login",
            &[("email", "owner@acme.test"), ("password", "password123")],
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        count(&app, "select count(*) from login_failures").await,
        checked as i64,
        "only checked attempts are recorded"
    );
}

/// Guesses spread over many accounts from one address: each account stays under its own
/// limit, but the address's 50 failures in 15 minutes stop the rest at once — a real
/// account's right password from that address too.
#[tokio::test]
async fn password_guesses_across_accounts_hit_the_addresss_limit() {
    let app = TestApp::start().await;
    let _t = app.tenant("Acme").await;
    let web = app.web();
    web.get("/login").await;
    let guesses = (0..60).map(|i| {
        let web = &web;
        async move {
            let email = format!("someone{i}@acme.test");
            web.post(
                "/login",
                &[("email", email.as_str()), ("password", "password123")],
            )
            .await
        }
    });
    let pages = futures::future::join_all(guesses).await;
    let statuses: Vec<_> = pages.iter().map(|p| p.status).collect();
    let checked = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (50, 10), "{statuses:?}");
    let r = web
        .post(
            "/login",
            &[("email", "owner@acme.test"), ("password", "password123")],
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(count(&app, "select count(*) from login_failures").await, 50);
}

#[tokio::test]
async fn sign_ups_from_one_address_are_limited_before_any_work() {
    let app = TestApp::start().await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let web = app.web();
        web.get("/signup").await;
        let email = format!("owner{i}@flood.test");
        let org = format!("Flood {i}");
        let r = web
            .post(
                "/signup",
                &[
                    ("name", "Flood"),
                    ("email", email.as_str()),
                    ("password", "password123"),
                    ("organization", org.as_str()),
                ],
            )
            .await;
        statuses.push(r.status);
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.has("try again in"), "{}", r.body);
        }
    }
    let made = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(made, 5, "{statuses:?}");
    assert_eq!(
        count(&app, "select count(*) from tenants").await,
        5,
        "a refused sign-up creates nothing"
    );
    // The limit is shared by every process: another replica refuses the same address.
    let replica = app.replica().await;
    let web = app.web();
    let web = crate::harness::Web {
        base: replica.base.clone(),
        ..web
    };
    web.get("/signup").await;
    let r = web
        .post(
            "/signup",
            &[
                ("name", "Flood"),
                ("email", "owner9@flood.test"),
                ("password", "password123"),
                ("organization", "Flood 9"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(count(&app, "select count(*) from tenants").await, 5);
}

/// The shared bucket under parallel takers (as from several replicas at once): exactly the
/// burst gets through, the rest are told how long to wait.
#[tokio::test]
async fn the_shared_sign_up_bucket_is_not_overdrawn_by_parallel_requests() {
    let app = TestApp::start().await;
    let pool = &app.db.pool;
    let results = futures::future::join_all(
        (0..20).map(|_| switchboard_db::rate_buckets::take(pool, "signup:10.0.0.1", 5.0, 0.01)),
    )
    .await;
    let taken = results.iter().filter(|r| matches!(r, Ok(None))).count();
    assert_eq!(taken, 5, "{results:?}");
    for r in &results {
        if let Ok(Some(wait)) = r {
            assert!(wait.as_secs() >= 1 && wait.as_secs() <= 100, "{wait:?}");
        }
    }
    // Another key has its own bucket.
    assert!(matches!(
        switchboard_db::rate_buckets::take(pool, "signup:10.0.0.2", 5.0, 0.01).await,
        Ok(None)
    ));
}
