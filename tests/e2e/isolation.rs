//! Tenant isolation: another organization's bot, rules, menus, commands and
//! conversations are invisible (404) and untouchable.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{alice, TestApp};

#[tokio::test]
async fn a_second_tenant_cannot_see_or_touch_the_first_ones_data() {
    let app = TestApp::start().await;
    let a = app.tenant("Acme").await;
    let b = app.tenant("Beta").await;
    let bot = app.connect_bot(&a, "acme_bot").await;
    let (_, rule) = app
        .post(
            &a.token,
            "/api/v1/rules",
            json!({"title": "Hours", "answer": "9–18", "examples": ["opening hours"]}),
        )
        .await;
    let (_, menu) = app
        .post(
            &a.token,
            "/api/v1/menus",
            json!({"name": "Main", "text": "Choose", "is_main": true}),
        )
        .await;
    let (_, command) = app
        .post(
            &a.token,
            "/api/v1/commands",
            json!({"command": "prices", "description": "p", "response": "r"}),
        )
        .await;
    app.say(&bot, &alice(), "/operator").await;
    let conv = app.conversation(&a, "waiting").await;
    let (rid, mid, cid, convid) = (
        rule["id"].as_str().unwrap(),
        menu["id"].as_str().unwrap(),
        command["id"].as_str().unwrap(),
        conv["id"].as_str().unwrap(),
    );

    // B sees none of it.
    assert_eq!(
        app.get(&b.token, "/api/v1/bot").await.0,
        StatusCode::NOT_FOUND
    );
    for path in [
        "/api/v1/rules",
        "/api/v1/menus",
        "/api/v1/commands",
        "/api/v1/conversations",
    ] {
        let (s, body) = app.get(&b.token, path).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(body["items"].as_array().unwrap().len(), 0, "{path}: {body}");
    }
    for path in [
        format!("/api/v1/rules/{rid}"),
        format!("/api/v1/menus/{mid}"),
        format!("/api/v1/commands/{cid}"),
        format!("/api/v1/conversations/{convid}"),
        format!("/api/v1/conversations/{convid}/messages"),
    ] {
        assert_eq!(
            app.get(&b.token, &path).await.0,
            StatusCode::NOT_FOUND,
            "GET {path}"
        );
    }
    // B cannot change or delete it.
    assert_eq!(
        app.patch(
            &b.token,
            &format!("/api/v1/rules/{rid}"),
            json!({"answer": "hacked"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&b.token, &format!("/api/v1/rules/{rid}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(
            &b.token,
            &format!("/api/v1/menus/{mid}"),
            json!({"name": "x"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&b.token, &format!("/api/v1/menus/{mid}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(
            &b.token,
            &format!("/api/v1/commands/{cid}"),
            json!({"response": "x"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&b.token, &format!("/api/v1/commands/{cid}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    for action in ["claim", "release", "close", "reopen"] {
        let (s, _) = app
            .post(
                &b.token,
                &format!("/api/v1/conversations/{convid}/{action}"),
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{action}");
    }
    let (s, _) = app
        .post(
            &b.token,
            &format!("/api/v1/conversations/{convid}/messages"),
            json!({"text": "hi from B"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .post(
            &b.token,
            &format!("/api/v1/conversations/{convid}/messages/1/retry"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // B cannot point its buttons at A's rules or menus.
    let (s, body) = app
        .post(&b.token, "/api/v1/menus", json!({"name": "x", "text": "x", "rows": [[{"label": "steal", "action": "rule", "rule_id": rid}, {"label": "sub", "action": "submenu", "menu_id": mid}]]}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // B cannot take over A's Telegram bot.
    let (s, body) = app
        .put(&b.token, "/api/v1/bot", json!({"token": bot.token}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        app.tg.webhook(&bot).unwrap().url,
        app.get(&a.token, "/api/v1/bot").await.1["webhook_url"]
            .as_str()
            .unwrap()
    );

    // A's data is intact and the user got nothing from B.
    assert_eq!(
        app.get(&a.token, &format!("/api/v1/rules/{rid}")).await.1["answer"],
        "9–18"
    );
    assert_eq!(
        app.get(&a.token, &format!("/api/v1/menus/{mid}")).await.1["name"],
        "Main"
    );
    assert_eq!(app.conversation(&a, "waiting").await["id"], conv["id"]);
    assert!(app
        .tg
        .sent_to(&bot, alice().id)
        .iter()
        .all(|m| m.text != "hi from B"));
}

#[tokio::test]
async fn each_tenants_bot_answers_from_its_own_rules() {
    let app = TestApp::start().await;
    let a = app.tenant("Acme").await;
    let b = app.tenant("Beta").await;
    let bot_a = app.connect_bot(&a, "acme_bot").await;
    let bot_b = app.connect_bot(&b, "beta_bot").await;
    app.post(
        &a.token,
        "/api/v1/rules",
        json!({"title": "Hours", "answer": "Acme: 9–18", "examples": ["opening hours"]}),
    )
    .await;
    app.post(
        &b.token,
        "/api/v1/rules",
        json!({"title": "Hours", "answer": "Beta: 24/7", "examples": ["opening hours"]}),
    )
    .await;
    app.say(&bot_a, &alice(), "opening hours").await;
    app.say(&bot_b, &alice(), "opening hours").await;
    assert_eq!(
        app.expect_sent(&bot_a, alice().id, 1).await[0].text,
        "Acme: 9–18"
    );
    assert_eq!(
        app.expect_sent(&bot_b, alice().id, 1).await[0].text,
        "Beta: 24/7"
    );
    // The same Telegram user is a separate end user of each tenant.
    let (_, la) = app.get(&a.token, "/api/v1/conversations").await;
    let (_, lb) = app.get(&b.token, "/api/v1/conversations").await;
    assert_eq!(la["items"].as_array().unwrap().len(), 1);
    assert_eq!(lb["items"].as_array().unwrap().len(), 1);
    assert_ne!(la["items"][0]["id"], lb["items"][0]["id"]);
    // A's webhook secret does not open B's webhook.
    let hook_a = app.tg.webhook(&bot_a).unwrap();
    let update = app.tg.text_update(&bot_b, &alice(), "hi");
    let d = app
        .tg
        .deliver_with_secret(&bot_b, update, hook_a.secret_token.as_deref())
        .await;
    assert_eq!(d.status, 401);
}
