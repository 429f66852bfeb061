//! The REST API's contract: authentication, roles, validation, CRUD shapes, OpenAPI.

use reqwest::StatusCode;
use serde_json::json;
use switchboard_core::Role;

use crate::harness::TestApp;

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthorized() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let r = app
        .http
        .get(format!("{}/api/v1/rules", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let (s, _) = app.get("sb_not_a_real_token", "/api/v1/rules").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app.get(&t.token, "/api/v1/rules").await;
    assert_eq!(s, StatusCode::OK);
    // A revoked token stops working.
    sqlx::query("update api_tokens set revoked_at = now()")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (s, _) = app.get(&t.token, "/api/v1/rules").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_invalid_bot_token_is_rejected_and_nothing_is_stored() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    // Well-formed, but Telegram does not know it.
    let (s, body) = app
        .put(
            &t.token,
            "/api/v1/bot",
            json!({"token": "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_token");
    // Malformed: rejected before asking Telegram.
    let calls_before = app.tg.calls().len();
    let (s, body) = app
        .put(&t.token, "/api/v1/bot", json!({"token": "hello"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"][0]["field"], "token");
    assert_eq!(app.tg.calls().len(), calls_before);
    let bots: i64 = sqlx::query_scalar("select count(*) from bots")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(bots, 0);
    let (s, _) = app.get(&t.token, "/api/v1/bot").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_bot_token_is_stored_encrypted_and_shown_masked() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let (s, body) = app.get(&t.token, "/api/v1/bot").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["username"], "acme_bot");
    assert_eq!(body["telegram_id"], bot.id);
    let masked = body["token"].as_str().unwrap();
    let secret = bot.token.split(':').nth(1).unwrap();
    assert!(!masked.contains(secret));
    assert!(masked.ends_with(&secret[secret.len() - 4..]));
    let (ciphertext, key_id): (Vec<u8>, String) =
        sqlx::query_as("select token_ciphertext, token_key_id from bots")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(!ciphertext
        .windows(secret.len())
        .any(|w| w == secret.as_bytes()));
    assert_eq!(key_id.len(), 12);

    // Replacing the token of the same bot keeps the bot; removing it deletes the webhook.
    let first_url = app.tg.webhook(&bot).unwrap().url;
    let (s, again) = app
        .put(&t.token, "/api/v1/bot", json!({"token": bot.token}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["id"], body["id"]);
    assert_eq!(app.tg.webhook(&bot).unwrap().url, first_url);
    let (s, _) = app.delete(&t.token, "/api/v1/bot").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(app.tg.webhook(&bot).is_none());
    let (s, _) = app.get(&t.token, "/api/v1/bot").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.delete(&t.token, "/api/v1/bot").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn connecting_another_bot_replaces_the_first() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let first = app.connect_bot(&t, "first_bot").await;
    let second = app.connect_bot(&t, "second_bot").await;
    assert!(
        app.tg.webhook(&first).is_none(),
        "the old bot's webhook is removed"
    );
    assert!(app.tg.webhook(&second).is_some());
    let (_, body) = app.get(&t.token, "/api/v1/bot").await;
    assert_eq!(body["username"], "second_bot");
    // The first bot's (stale) webhook no longer reaches us.
    let stale: i64 = sqlx::query_scalar("select count(*) from bots where status = 'removed'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stale, 1);
}

#[tokio::test]
async fn operators_work_conversations_but_cannot_configure() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let op = app.member(&t, "op@acme.test", Role::Operator).await;
    let admin = app.member(&t, "admin@acme.test", Role::Admin).await;
    let (s, body) = app
        .post(&op, "/api/v1/rules", json!({"title": "x", "answer": "y"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    let (s, _) = app.put(&op, "/api/v1/bot", json!({"token": "1:x"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .patch(&op, "/api/v1/settings", json!({"help_text": "x"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .post(
            &op,
            "/api/v1/commands",
            json!({"command": "x", "description": "x", "response": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .post(&op, "/api/v1/menus", json!({"name": "x", "text": "x"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Reading the configuration and the desk is fine.
    for path in [
        "/api/v1/rules",
        "/api/v1/settings",
        "/api/v1/menus",
        "/api/v1/commands",
        "/api/v1/conversations",
    ] {
        let (s, _) = app.get(&op, path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
    }
    let (s, _) = app
        .post(
            &admin,
            "/api/v1/rules",
            json!({"title": "x", "answer": "y"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // An operator cannot take a conversation another operator has; an admin can assign.
    let bot = app.connect_bot(&t, "acme_bot").await;
    app.say(&bot, &crate::harness::alice(), "/operator").await;
    let id = app.conversation(&t, "waiting").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = app
        .post(&op, &format!("/api/v1/conversations/{id}/claim"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let op2 = app.member(&t, "op2@acme.test", Role::Operator).await;
    let (s, body) = app
        .post(
            &op2,
            &format!("/api/v1/conversations/{id}/claim"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, _) = app
        .post(
            &op2,
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"text": "mine?"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app
        .post(
            &op2,
            &format!("/api/v1/conversations/{id}/assign"),
            json!({"user_id": uuid::Uuid::nil()}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let op2_id: uuid::Uuid =
        sqlx::query_scalar("select id from users where email = 'op2@acme.test'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let (s, body) = app
        .post(
            &admin,
            &format!("/api/v1/conversations/{id}/assign"),
            json!({"user_id": op2_id}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["assignee_id"], op2_id.to_string());
    let (s, body) = app
        .post(
            &admin,
            &format!("/api/v1/conversations/{id}/assign"),
            json!({"user_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, body) = app
        .post(
            &op2,
            &format!("/api/v1/conversations/{id}/release"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["status"], "waiting");
}

#[tokio::test]
async fn rules_crud_with_validation_search_and_buttons() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let (s, body) = app
        .post(
            &t.token,
            "/api/v1/rules",
            json!({"title": "", "answer": "", "examples": ["ok", " "]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title", "answer"]);
    let (s, body) = app
        .post(
            &t.token,
            "/api/v1/rules",
            json!({"title": "x", "answer": "y", "colour": "red"}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are errors: {body}"
    );
    let (s, body) = app
        .post(&t.token, "/api/v1/rules", json!({"title": "x", "answer": "y", "buttons": [[{"label": "Go", "action": "rule", "rule_id": uuid::Uuid::now_v7()}]]}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"][0]["field"], "buttons[0][0].rule_id");
    let count: i64 = sqlx::query_scalar("select count(*) from answer_rules")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "invalid input changes nothing");

    let (s, a) = app
        .post(&t.token, "/api/v1/rules", json!({"title": "Delivery", "answer": "2-3 days", "examples": ["how long is delivery", "how long is delivery", " when will it arrive "], "keywords": ["courier"]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(
        a["examples"],
        json!(["how long is delivery", "when will it arrive"])
    );
    assert_eq!(a["enabled"], true);
    let (s, b) = app
        .post(&t.token, "/api/v1/rules", json!({"title": "Refunds", "answer": "Within 14 days", "enabled": false,
            "buttons": [[{"label": "Delivery", "action": "rule", "rule_id": a["id"]}, {"label": "Human", "action": "handover"}]]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["buttons"][0][0]["rule_id"], a["id"]);
    assert_eq!(b["buttons"][0][1]["action"], "handover");

    let (_, list) = app.get(&t.token, "/api/v1/rules").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let (_, found) = app.get(&t.token, "/api/v1/rules?q=courier").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["id"], a["id"]);
    let (_, disabled) = app.get(&t.token, "/api/v1/rules?enabled=false").await;
    assert_eq!(disabled["items"][0]["id"], b["id"]);

    let path = format!("/api/v1/rules/{}", a["id"].as_str().unwrap());
    let (s, patched) = app
        .patch(&t.token, &path, json!({"answer": "1-2 days"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(patched["answer"], "1-2 days");
    assert_eq!(patched["title"], "Delivery", "unchanged fields stay");
    let (s, _) = app.delete(&t.token, &path).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&t.token, &path).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The button that showed the deleted rule went with it.
    let (_, b) = app
        .get(
            &t.token,
            &format!("/api/v1/rules/{}", b["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        b["buttons"],
        json!([[{"id": b["buttons"][0][0]["id"], "label": "Human", "action": "handover",
                 "translations": {}}]])
    );
    let (s, _) = app.get(&t.token, "/api/v1/rules/not-a-uuid").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let events: Vec<String> =
        sqlx::query_scalar("select kind from events where kind like 'rule.%' order by id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        events,
        [
            "rule.created",
            "rule.created",
            "rule.updated",
            "rule.deleted"
        ]
    );
}

#[tokio::test]
async fn menus_and_commands_crud() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let (s, m1) = app
        .post(
            &t.token,
            "/api/v1/menus",
            json!({"name": "Main", "text": "Choose:", "is_main": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, m2) = app
        .post(
            &t.token,
            "/api/v1/menus",
            json!({"name": "Other", "text": "Other:", "is_main": true,
        "rows": [[{"label": "Back", "action": "submenu", "menu_id": m1["id"]}]]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m2}");
    let (_, m1_now) = app
        .get(
            &t.token,
            &format!("/api/v1/menus/{}", m1["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(m1_now["is_main"], false, "only one main menu");
    let (s, body) = app
        .patch(
            &t.token,
            &format!("/api/v1/menus/{}", m2["id"].as_str().unwrap()),
            json!({"rows": [[{"label": "Site", "action": "url", "url": "javascript:alert(1)"}]]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, patched) = app
        .patch(&t.token, &format!("/api/v1/menus/{}", m2["id"].as_str().unwrap()), json!({"name": "Renamed", "rows": [[{"label": "Site", "action": "url", "url": "https://acme.example"}]]}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(patched["name"], "Renamed");
    assert_eq!(patched["rows"][0][0]["url"], "https://acme.example");
    let (s, _) = app
        .delete(
            &t.token,
            &format!("/api/v1/menus/{}", m1["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, list) = app.get(&t.token, "/api/v1/menus").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let (s, c) = app
        .post(
            &t.token,
            "/api/v1/commands",
            json!({"command": "prices", "description": "Prices", "response": "Cheap"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = app
        .post(
            &t.token,
            "/api/v1/commands",
            json!({"command": "prices", "description": "Again", "response": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        body["error"]["message"],
        "A command with this name already exists"
    );
    let (s, body) = app
        .post(
            &t.token,
            "/api/v1/commands",
            json!({"command": "start", "description": "x", "response": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, body) = app
        .post(
            &t.token,
            "/api/v1/commands",
            json!({"command": "Bad Name", "description": "x", "response": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let path = format!("/api/v1/commands/{}", c["id"].as_str().unwrap());
    let (s, upd) = app.patch(&t.token, &path, json!({"enabled": false})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(upd["enabled"], false);
    let (s, _) = app.delete(&t.token, &path).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&t.token, &path).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn conversations_list_filters_and_pages() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    for i in 0..5 {
        let user = switchboard_testkit::FakeUser::new(3000 + i, "U");
        app.say(&bot, &user, if i % 2 == 0 { "/operator" } else { "/start" })
            .await;
    }
    let (_, waiting) = app
        .get(&t.token, "/api/v1/conversations?status=waiting")
        .await;
    assert_eq!(waiting["items"].as_array().unwrap().len(), 3);
    let (_, bot_only) = app.get(&t.token, "/api/v1/conversations?status=bot").await;
    assert_eq!(bot_only["items"].as_array().unwrap().len(), 2);
    let (s, body) = app.get(&t.token, "/api/v1/conversations?status=open").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, page1) = app.get(&t.token, "/api/v1/conversations?limit=2").await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = app
        .get(
            &t.token,
            &format!("/api/v1/conversations?limit=2&before={cursor}"),
        )
        .await;
    let (_, page3) = app
        .get(
            &t.token,
            &format!(
                "/api/v1/conversations?limit=2&before={}",
                page2["next_cursor"].as_str().unwrap()
            ),
        )
        .await;
    let mut ids: Vec<String> = [&page1, &page2, &page3]
        .iter()
        .flat_map(|p| {
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(ids.len(), 5);
    ids.dedup();
    assert_eq!(ids.len(), 5);
    assert!(page3["next_cursor"].is_null());
    // A last page that happens to be full says it is the last: no cursor to an empty one.
    let (_, whole) = app.get(&t.token, "/api/v1/conversations?limit=5").await;
    assert_eq!(whole["items"].as_array().unwrap().len(), 5);
    assert!(whole["next_cursor"].is_null(), "{whole}");
}

#[tokio::test]
async fn the_openapi_document_describes_the_whole_api() {
    let app = TestApp::start().await;
    let r = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/bot", "put"),
        ("/api/v1/bot", "get"),
        ("/api/v1/bot", "delete"),
        ("/api/v1/settings", "patch"),
        ("/api/v1/rules", "post"),
        ("/api/v1/rules/{id}", "patch"),
        ("/api/v1/menus", "post"),
        ("/api/v1/commands/{id}", "delete"),
        ("/api/v1/conversations", "get"),
        ("/api/v1/conversations/{id}/messages", "post"),
        ("/api/v1/conversations/{id}/claim", "post"),
        ("/api/v1/conversations/{id}/close", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["RuleOut"]["properties"]["examples"].is_object());
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::start().await;
    let r = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.telegram.pool.close().await;
    let r = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// U+0000 cannot be stored: anywhere a person or a program can put it in (a JSON string,
/// a query, a form), the answer is a clear 4xx and nothing changes.
#[tokio::test]
async fn the_nul_character_is_refused_with_a_4xx_everywhere() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let body = r#"{"title": "Bad\u0000title", "answer": "x"}"#;
    let r = app
        .http
        .post(format!("{}/api/v1/rules", app.base))
        .bearer_auth(&t.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("U+0000"),
        "{v}"
    );
    // An escaped backslash followed by "u0000" is just text.
    let (s, body) = app
        .post(
            &t.token,
            "/api/v1/rules",
            serde_json::json!({"title": "Backslash \\u0000 text", "answer": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = app.get(&t.token, "/api/v1/conversations?q=%00").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_query");
    let (_, rules) = app.get(&t.token, "/api/v1/rules").await;
    assert_eq!(
        rules["items"].as_array().unwrap().len(),
        1,
        "only the good rule"
    );
    // The panel: a form and an export.
    let web = app.owner_web(&t).await;
    let r = web
        .post(
            &format!("/t/{}/rules", t.slug),
            &[("title", "Bad\u{0}title"), ("answer", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = web.get(&format!("/t/{}/log/export?q=%00", t.slug)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

/// JSON nested 100,000 levels deep — in a field the API reads or in one it ignores — is
/// refused with a 4xx and a message (serde_json stops at 128 levels, before recursing
/// further), nothing is stored, and the server answers on.
#[tokio::test]
async fn deeply_nested_json_is_refused_with_a_4xx() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    for field in ["examples", "unknown"] {
        let r = app
            .http
            .post(format!("{}/api/v1/rules", app.base))
            .bearer_auth(&t.token)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"title": "Deep", "answer": "x", "{field}": {deep}}}"#
            ))
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert!(status.is_client_error(), "{field}: {status}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(!v["error"]["message"].as_str().unwrap().is_empty(), "{v}");
    }
    let (s, rules) = app.get(&t.token, "/api/v1/rules").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(rules["items"].as_array().unwrap().len(), 0);
}

/// A body of the wrong shape says which field is at fault, as a validation error does: a
/// missing field, one the request does not have, a value of the wrong type.
#[tokio::test]
async fn a_body_of_the_wrong_shape_names_its_field() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    for (body, field, code) in [
        (json!({"answer": "y"}), "title", "required"),
        (
            json!({"title": "a", "answer": "b", "colour": "red"}),
            "colour",
            "not_a_field",
        ),
        (
            json!({"title": "a", "answer": "b", "examples": "x"}),
            "examples",
            "wrong_type",
        ),
    ] {
        let (s, e) = app.post(&t.token, "/api/v1/rules", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["code"], "validation_failed", "{e}");
        assert_eq!(e["error"]["fields"][0]["field"], field, "{e}");
        assert_eq!(e["error"]["fields"][0]["code"], code, "{e}");
    }
    let (_, rules) = app.get(&t.token, "/api/v1/rules").await;
    assert_eq!(rules["items"].as_array().unwrap().len(), 0);
    // A misspelt text name in the settings' translations is refused by name (a change
    // replaces all translations: stored, it would have lost the text it meant).
    let (s, before) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"translations": {"ru": {"welcome_text": "Привет!"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{before}");
    let (s, e) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"translations": {"ru": {"welcom_text": "x"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        e["error"]["fields"][0]["field"],
        "translations.ru.welcom_text"
    );
    assert_eq!(e["error"]["fields"][0]["code"], "unknown_field");
    let (_, after) = app.get(&t.token, "/api/v1/settings").await;
    assert_eq!(after["translations"]["ru"]["welcome_text"], "Привет!");
    // The same for a body the handler reads itself (closing takes an optional one).
    let bot = app.connect_bot(&t, "acme_bot").await;
    let user = switchboard_testkit::FakeUser::new(3900, "U");
    app.say(&bot, &user, "/operator").await;
    let id = app.conversation(&t, "waiting").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, e) = app
        .post(
            &t.token,
            &format!("/api/v1/conversations/{id}/close"),
            json!({"resolution": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["fields"][0]["field"], "resolution", "{e}");
    assert_eq!(e["error"]["fields"][0]["code"], "wrong_type", "{e}");
    assert_eq!(app.conversation(&t, "waiting").await["id"], id.as_str());
}

#[tokio::test]
async fn writes_past_the_rate_limit_get_429_with_retry_after_and_others_go_on() {
    let app = TestApp::start().await;
    let a = app.tenant("Acme").await;
    let b = app.tenant("Beta").await;
    // A flood of writes through one token, in parallel, spread over two processes (as
    // behind a balancer): the bucket is shared, so each process's half would fit in a
    // burst of its own and still some are refused.
    let replica = app.replica().await;
    let attempts = 260;
    let results = futures::future::join_all((0..attempts).map(|i| {
        let app = &app;
        let base = if i % 2 == 0 { &app.base } else { &replica.base };
        let token = a.token.clone();
        async move {
            let r = app
                .http
                .post(format!("{base}/api/v1/canned-responses"))
                .bearer_auth(&token)
                .json(&json!({"shortcut": format!("c{i}"), "title": "t", "text": "x"}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert!(r.headers().get("retry-after").is_some());
            }
            (
                status,
                r.json::<serde_json::Value>()
                    .await
                    .unwrap_or(serde_json::Value::Null),
            )
        }
    }))
    .await;
    let limited: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!limited.is_empty(), "no write was limited");
    assert!(limited.len() < attempts / 2, "the burst went through first");
    assert_eq!(limited[0].1["error"]["code"], "rate_limited");
    assert!(limited[0].1["error"]["retry_after"].as_u64().unwrap() >= 1);
    // What was refused changed nothing: only the accepted writes are stored.
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count() as i64;
    let stored: i64 =
        sqlx::query_scalar("select count(*) from canned_responses where tenant_id = $1")
            .bind(a.id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(stored, created);
    // Another organization is not slowed by it; reads are not limited.
    let (s, _) = app
        .post(
            &b.token,
            "/api/v1/canned-responses",
            json!({"shortcut": "hi", "title": "t", "text": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        app.get(&a.token, "/api/v1/canned-responses").await.0,
        StatusCode::OK
    );
}

/// Guessing API tokens with a new one each time: every refused token counts against the
/// address, in a bucket every process shares; past it the address's API requests are
/// refused at once (429 with Retry-After, the token not looked up), a valid token's too,
/// until the bucket refills.
#[tokio::test]
async fn guessing_api_tokens_from_one_address_is_limited_on_every_process() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let replica = app.replica().await;
    let guess = |base: &str, i: usize| {
        app.http
            .get(format!("{base}/api/v1/rules"))
            .bearer_auth(format!("sb_guess_{i:04}"))
            .send()
    };
    // The burst: a hundred unknown tokens are each told 401.
    for i in 0..100 {
        let r = guess(&app.base, i).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    // The other process shares the bucket: within a few more guesses it refuses too.
    let mut refused = None;
    for i in 100..110 {
        let r = guess(&replica.base, i).await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = refused.expect("the replica kept looking tokens up");
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // The address is refused whatever token it brings, until the bucket refills.
    let valid = || async {
        app.http
            .get(format!("{}/api/v1/rules", replica.base))
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(valid().await, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(std::time::Duration::from_secs(retry_after)).await;
    assert_eq!(valid().await, StatusCode::OK);
}

/// An organization's rules are bounded — at most 5,000 rules and 50,000 examples in all —
/// counted after each change under a per-organization lock, so parallel requests cannot
/// pass the limits together; what is refused stores nothing.
#[tokio::test]
async fn an_organizations_rules_stay_within_their_limits_under_parallel_writes() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let other = app.tenant("Beta").await;
    // 50 rules of 999 examples (49,950) and 4,947 rules without: 4,997 rules.
    sqlx::query(
        "insert into answer_rules (tenant_id, id, title, answer, examples)
         select $1, gen_random_uuid(), 'bulk ' || g, 'a',
                array(select 'example ' || g || ' ' || e from generate_series(1, 999) e)
         from generate_series(1, 50) g
         union all
         select $1, gen_random_uuid(), 'plain ' || g, 'a', '{}'
         from generate_series(1, 4947) g",
    )
    .bind(t.id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let rule = |i: usize, examples: usize| {
        json!({"title": format!("New {i}"), "answer": "x",
               "examples": (0..examples).map(|e| format!("new {i} {e}")).collect::<Vec<_>>()})
    };
    // Four at once, 20 examples each: two fit (49,990), a third would make 50,010.
    let results =
        futures::future::join_all((0..4).map(|i| app.post(&t.token, "/api/v1/rules", rule(i, 20))))
            .await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 2, "{results:?}");
    for (s, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*s, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["fields"][0]["field"], "examples", "{body}");
        assert_eq!(
            body["error"]["fields"][0]["code"], "examples_quota",
            "{body}"
        );
    }
    let totals = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "select count(*), sum(cardinality(examples))::bigint from answer_rules
             where tenant_id = $1",
        )
        .bind(t.id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
    };
    assert_eq!(totals().await, (4_999, 49_990));
    // The 5,000th rule is made; the 5,001st is refused, even without examples.
    let (s, body) = app.post(&t.token, "/api/v1/rules", rule(8, 0)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = app.post(&t.token, "/api/v1/rules", rule(9, 0)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5000 rules"),
        "{body}"
    );
    // Room for one rule: 11 more examples are too many, 10 fit.
    let (_, page) = app.get(&t.token, "/api/v1/rules?q=plain%201&limit=1").await;
    let id = page["items"][0]["id"].as_str().unwrap().to_string();
    let (s, _) = app.delete(&t.token, &format!("/api/v1/rules/{id}")).await;
    assert!(s.is_success());
    let (s, _) = app.post(&t.token, "/api/v1/rules", rule(10, 11)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, body) = app.post(&t.token, "/api/v1/rules", rule(11, 10)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(totals().await, (5_000, 50_000));
    // Another organization's limits are its own.
    let (s, _) = app.post(&other.token, "/api/v1/rules", rule(12, 20)).await;
    assert_eq!(s, StatusCode::CREATED);
}

/// Two rules cannot share a title (an import tells rules apart by it): a second one —
/// a double submit, the browser's Back and Save again, a rename — is refused on the
/// title, also when both arrive at once; another organization may use it.
#[tokio::test]
async fn a_rules_title_is_its_own() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let other = app.tenant("Beta").await;
    let hours = json!({"title": "Hours", "answer": "9-18", "examples": ["when are you open"]});
    let results = futures::future::join_all(
        (0..3).map(|_| app.post(&t.token, "/api/v1/rules", hours.clone())),
    )
    .await;
    let statuses: Vec<_> = results.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{results:?}"
    );
    let refused = results
        .iter()
        .find(|(s, _)| *s == StatusCode::CONFLICT)
        .expect("a refusal");
    assert_eq!(refused.1["error"]["fields"][0]["field"], "title");
    assert_eq!(refused.1["error"]["fields"][0]["code"], "title_taken");
    assert_eq!(refused.1["error"]["reason"], "title_taken");
    let (_, rules) = app.get(&t.token, "/api/v1/rules").await;
    assert_eq!(rules["items"].as_array().unwrap().len(), 1);
    // A rename onto it is refused too; the rule keeps its title.
    let (_, prices) = app
        .post(
            &t.token,
            "/api/v1/rules",
            json!({"title": "Prices", "answer": "See the list"}),
        )
        .await;
    let id = prices["id"].as_str().unwrap();
    let (s, _) = app
        .patch(
            &t.token,
            &format!("/api/v1/rules/{id}"),
            json!({"title": "Hours"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, got) = app.get(&t.token, &format!("/api/v1/rules/{id}")).await;
    assert_eq!(got["title"], "Prices");
    // Saving a rule under its own title is no conflict.
    let (s, _) = app
        .patch(
            &t.token,
            &format!("/api/v1/rules/{id}"),
            json!({"answer": "New list"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.post(&other.token, "/api/v1/rules", hours).await;
    assert_eq!(s, StatusCode::CREATED);
}

/// A member removed from the team loses the API at once: their token answers 401 on the
/// next request, and nothing they send afterwards is stored.
#[tokio::test]
async fn a_removed_members_api_token_stops_working_at_once() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let token = app.member(&t, "op@acme.test", Role::Admin).await;
    let (status, _) = app.get(&token, "/api/v1/rules").await;
    assert_eq!(status, StatusCode::OK);
    let (_, team) = app.get(&t.token, "/api/v1/team").await;
    let user_id = team["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "op@acme.test")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = app
        .delete(&t.token, &format!("/api/v1/team/members/{user_id}"))
        .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, _) = app.get(&token, "/api/v1/rules").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(
            &token,
            "/api/v1/rules",
            json!({"title": "Sneaky", "answer": "x", "examples": ["y"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, rules) = app.get(&t.token, "/api/v1/rules").await;
    assert!(!rules.to_string().contains("Sneaky"));
}
