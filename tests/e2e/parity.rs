//! The JSON API and the HTML panel are two doors to one application layer: the same input
//! through either stores the same state and logs the same event. Each test does a thing
//! through the API in one organization and through the panel in another, then compares
//! what was stored (read back through the API, ids and times left out) and the event.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Tenant, TestApp};

/// The tenant's last event: kind and payload, with ids blanked (they differ by design).
async fn last_event(app: &TestApp, tenant: &Tenant) -> (String, Value) {
    let (kind, data): (String, Value) = sqlx::query_as(
        "select kind, data from events where tenant_id = $1 order by id desc limit 1",
    )
    .bind(tenant.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    (kind, without_ids(data))
}

async fn events_of(app: &TestApp, tenant: &Tenant, kind: &str) -> i64 {
    sqlx::query_scalar("select count(*) from events where tenant_id = $1 and kind = $2")
        .bind(tenant.id)
        .bind(kind)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// A value with every `id`, `*_id`, `*_ids` and time field removed, recursively.
fn without_ids(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| {
                    !(k == "id" || k.ends_with("_id") || k.ends_with("_ids") || k.ends_with("_at"))
                })
                .map(|(k, v)| (k, without_ids(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_ids).collect()),
        v => v,
    }
}

async fn stored(app: &TestApp, tenant: &Tenant, path: &str) -> Value {
    let (s, body) = app.get(&tenant.token, path).await;
    assert_eq!(s, StatusCode::OK, "{path}: {body}");
    without_ids(body)
}

#[tokio::test]
async fn commands_are_the_same_through_the_api_and_the_panel() {
    let app = TestApp::start().await;
    let (a, b) = (app.tenant("Api Co").await, app.tenant("Panel Co").await);
    let web = app.owner_web(&b).await;
    let s = &b.slug;

    let (st, created) = app
        .post(
            &a.token,
            "/api/v1/commands",
            json!({"command": " /prices ", "description": " Our prices ", "response": " From 10 EUR ", "enabled": true,
                   "translations": {"ru": {"description": " Наши цены ", "response": ""}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let r = web
        .submit(
            &format!("/t/{s}/commands"),
            &format!("/t/{s}/commands"),
            &[
                ("command", " /prices "),
                ("description", " Our prices "),
                ("response", " From 10 EUR "),
                ("enabled", "on"),
                ("translations.ru.description", " Наши цены "),
                ("translations.ru.response", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        stored(&app, &a, "/api/v1/commands").await,
        stored(&app, &b, "/api/v1/commands").await
    );
    assert_eq!(last_event(&app, &a).await, last_event(&app, &b).await);
    assert_eq!(
        last_event(&app, &a).await,
        ("command.created".into(), json!({"command": "prices"}))
    );

    // The same refusal: a taken name is a conflict on the `command` field.
    let (st, body) = app
        .post(
            &a.token,
            "/api/v1/commands",
            json!({"command": "prices", "description": "x", "response": "y"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "command");
    assert_eq!(body["error"]["fields"][0]["code"], "command_taken");
    let r = web
        .post(
            &format!("/t/{s}/commands"),
            &[
                ("command", "prices"),
                ("description", "x"),
                ("response", "y"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.has("already exists"), "{}", r.body);

    // Deleting logs the command's name on both doors (the API logged its id before).
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&a.token, &format!("/api/v1/commands/{id}"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, list) = app.get(&b.token, "/api/v1/commands").await;
    let bid = list["items"][0]["id"].as_str().unwrap().to_string();
    let r = web
        .post(&format!("/t/{s}/commands/{bid}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(last_event(&app, &a).await, last_event(&app, &b).await);
    assert_eq!(
        last_event(&app, &a).await,
        ("command.deleted".into(), json!({"command": "prices"}))
    );
}

#[tokio::test]
async fn menus_are_the_same_through_the_api_and_the_panel() {
    let app = TestApp::start().await;
    let (a, b) = (app.tenant("Api Co").await, app.tenant("Panel Co").await);
    let web = app.owner_web(&b).await;
    let s = &b.slug;

    let (st, body) = app
        .post(
            &a.token,
            "/api/v1/menus",
            json!({"name": " Main ", "text": "Choose:", "is_main": true, "rows": [
                [{"label": "Talk to a person", "action": "handover",
                  "translations": {"ru": {"label": " Позвать человека "}}},
                 {"label": "Website", "action": "url", "url": "https://acme.example"}],
                [{"label": "Say hi", "action": "text", "text": "Hello!"}]
            ], "translations": {"ru": {"text": "Выберите:"}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let r = web
        .submit(
            &format!("/t/{s}/menus/new"),
            &format!("/t/{s}/menus"),
            &[
                ("name", " Main "),
                ("text", "Choose:"),
                ("translations.ru.text", "Выберите:"),
                ("is_main", "on"),
                ("b_row", "0"),
                ("b_id", ""),
                ("b_label", "Talk to a person"),
                ("b_label.ru", " Позвать человека "),
                ("b_action", "handover"),
                ("b_target", ""),
                ("b_row", "0"),
                ("b_id", ""),
                ("b_label", "Website"),
                ("b_label.ru", ""),
                ("b_action", "url"),
                ("b_target", "https://acme.example"),
                ("b_row", "1"),
                ("b_id", ""),
                ("b_label", "Say hi"),
                ("b_label.ru", ""),
                ("b_action", "text"),
                ("b_target", "Hello!"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        stored(&app, &a, "/api/v1/menus").await,
        stored(&app, &b, "/api/v1/menus").await
    );
    assert_eq!(last_event(&app, &a).await, last_event(&app, &b).await);
    assert_eq!(
        last_event(&app, &a).await,
        ("menu.created".into(), json!({"name": "Main"}))
    );

    // A menu cannot open itself — refused by both doors now (the API let it through).
    let mid = body["id"].as_str().unwrap();
    let (st, refused) = app
        .patch(
            &a.token,
            &format!("/api/v1/menus/{mid}"),
            json!({"rows": [[{"label": "Loop", "action": "submenu", "menu_id": mid}]]}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["fields"][0]["code"], "menu_opens_itself");
    assert_eq!(events_of(&app, &a, "menu.updated").await, 0);
}

#[tokio::test]
async fn canned_responses_are_the_same_through_the_api_and_the_panel() {
    let app = TestApp::start().await;
    let (a, b) = (app.tenant("Api Co").await, app.tenant("Panel Co").await);
    let web = app.owner_web(&b).await;
    let s = &b.slug;
    let (st, body) = app
        .post(
            &a.token,
            "/api/v1/canned-responses",
            json!({"shortcut": "/Hello", "title": " Greeting ", "text": " Hello! How can I help? "}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let r = web
        .submit(
            &format!("/t/{s}/canned"),
            &format!("/t/{s}/canned"),
            &[
                ("shortcut", "/Hello"),
                ("title", " Greeting "),
                ("text", " Hello! How can I help? "),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        stored(&app, &a, "/api/v1/canned-responses").await,
        stored(&app, &b, "/api/v1/canned-responses").await
    );
    assert_eq!(last_event(&app, &a).await, last_event(&app, &b).await);
    assert_eq!(
        last_event(&app, &a).await,
        ("canned.created".into(), json!({"shortcut": "hello"}))
    );
}

#[tokio::test]
async fn rules_are_the_same_through_the_api_and_the_panel() {
    let app = TestApp::start().await;
    let (a, b) = (app.tenant("Api Co").await, app.tenant("Panel Co").await);
    let web = app.owner_web(&b).await;
    let s = &b.slug;
    let (st, body) = app
        .post(
            &a.token,
            "/api/v1/rules",
            json!({"title": " Opening hours ", "question": " When are you open? ",
                   "answer": "We are open <b>9–18</b>.", "format": "html",
                   "examples": ["when are you open", " opening hours ", "", "when are you open"],
                   "keywords": ["hours"], "priority": 2, "featured": true,
                   "buttons": [[{"label": "Talk to a person", "action": "handover"}]],
                   "translations": {"ru": {"question": " Когда вы открыты? ",
                                           "answer": "Мы открыты <b>9–18</b>."}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let r = web
        .submit(
            &format!("/t/{s}/rules/new"),
            &format!("/t/{s}/rules"),
            &[
                ("title", " Opening hours "),
                ("question", " When are you open? "),
                ("answer", "We are open <b>9–18</b>."),
                ("format", "html"),
                (
                    "examples",
                    "when are you open\n opening hours \n\nwhen are you open",
                ),
                ("keywords", "hours"),
                ("priority", "2"),
                ("featured", "on"),
                ("enabled", "on"),
                ("b_row", "0"),
                ("b_id", ""),
                ("b_label", "Talk to a person"),
                ("b_action", "handover"),
                ("b_target", ""),
                ("translations.ru.question", " Когда вы открыты? "),
                ("translations.ru.answer", "Мы открыты <b>9–18</b>."),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let rules = stored(&app, &b, "/api/v1/rules").await;
    assert_eq!(
        rules["items"][0]["translations"]["ru"]["question"], "Когда вы открыты?",
        "{rules}"
    );
    // The editor shows the Russian words beside the English ones (the default language).
    let listed = app.get(&b.token, "/api/v1/rules").await.1;
    let rid = listed["items"][0]["id"].as_str().unwrap();
    let page = web.get(&format!("/t/{s}/rules/{rid}")).await;
    assert!(
        page.has(r#"name="translations.ru.answer""#),
        "{}",
        page.body
    );
    assert!(
        page.has("Мы открыты &lt;b&gt;9–18&lt;/b&gt;."),
        "{}",
        page.body
    );
    assert!(
        !page.has(r#"name="translations.en.answer""#),
        "no field for the default language"
    );
    assert_eq!(
        stored(&app, &a, "/api/v1/rules").await,
        stored(&app, &b, "/api/v1/rules").await
    );
    assert_eq!(last_event(&app, &a).await, last_event(&app, &b).await);
    assert_eq!(
        last_event(&app, &a).await,
        ("rule.created".into(), json!({"title": "Opening hours"}))
    );

    // One refusal, the same field and code on both doors.
    let (st, refused) = app
        .post(
            &a.token,
            "/api/v1/rules",
            json!({"title": "Bad", "answer": "<b>open", "format": "html"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused["error"]["fields"][0]["field"], "answer");
    assert_eq!(refused["error"]["fields"][0]["code"], "html_unclosed");
    let r = web
        .post(
            &format!("/t/{s}/rules"),
            &[("title", "Bad"), ("answer", "<b>open"), ("format", "html")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.has("is not closed"), "{}", r.body);
    // A translated HTML answer is checked the same way, and named by its field.
    let r = web
        .post(
            &format!("/t/{s}/rules"),
            &[
                ("title", "Bad"),
                ("answer", "<b>open</b>"),
                ("format", "html"),
                ("translations.ru.answer", "<b>открыто"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.has(r#"is-invalid" id="f-translations.ru.answer""#),
        "{}",
        r.body
    );
    assert_eq!(events_of(&app, &a, "rule.created").await, 1);
    assert_eq!(events_of(&app, &b, "rule.created").await, 1);
}

#[tokio::test]
async fn settings_log_only_what_changed_on_both_doors() {
    let app = TestApp::start().await;
    let (a, b) = (app.tenant("Api Co").await, app.tenant("Panel Co").await);
    let web = app.owner_web(&b).await;
    let s = &b.slug;
    // The panel posts every field; only the changed one is logged, as through the API.
    let (st, body) = app
        .patch(
            &a.token,
            "/api/v1/settings",
            json!({"welcome_text": "Hello from Acme!"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let page = web.get(&format!("/t/{s}/settings")).await;
    assert!(page.status.is_success());
    let (_, current) = app.get(&b.token, "/api/v1/settings").await;
    let text = |k: &str| current[k].as_str().unwrap_or_default().to_string();
    let threshold = |k: &str| format!("{:.2}", current[k].as_f64().unwrap());
    let fields: Vec<(String, String)> = vec![
        ("welcome_text".into(), "Hello from Acme!".into()),
        ("help_text".into(), text("help_text")),
        ("handover_text".into(), text("handover_text")),
        ("closing_text".into(), text("closing_text")),
        ("already_waiting_text".into(), text("already_waiting_text")),
        ("stale_button_text".into(), text("stale_button_text")),
        ("offhours_text".into(), text("offhours_text")),
        ("rating_text".into(), text("rating_text")),
        ("answer_threshold".into(), threshold("answer_threshold")),
        ("suggest_threshold".into(), threshold("suggest_threshold")),
        ("default_language".into(), text("default_language")),
        ("timezone".into(), text("timezone")),
        ("always_open".into(), "on".into()),
        (
            "raw_retention_days".into(),
            current["raw_retention_days"].to_string(),
        ),
        ("retention_days".into(), String::new()),
        ("synonyms".into(), String::new()),
    ];
    let mut fields = fields;
    for flag in ["feedback_enabled", "rating_enabled"] {
        if current[flag] == json!(true) {
            fields.push((flag.into(), "on".into()));
        }
    }
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = web.post(&format!("/t/{s}/settings"), &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        last_event(&app, &a).await,
        (
            "settings.updated".into(),
            json!({"fields": ["welcome_text"]})
        )
    );
    assert_eq!(last_event(&app, &a).await, last_event(&app, &b).await);
    // The same save again changes nothing and logs nothing.
    let r = web.post(&format!("/t/{s}/settings"), &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(events_of(&app, &b, "settings.updated").await, 1);
}

#[tokio::test]
async fn the_desk_and_the_api_refuse_the_same_over_long_resolution() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    app.tg
        .send_photo(&bot, &crate::harness::alice(), None)
        .await;
    let conv = app.conversation(&t, "waiting").await;
    let id = conv["id"].as_str().unwrap().to_string();
    let long = "x".repeat(2001);
    // The desk used to cut it to 2000 characters and close; now both refuse it.
    let op = app.owner_web(&t).await;
    let url = format!("/desk/t/{}/c/{id}", t.slug);
    let r = op
        .hx_post(&format!("{url}/close"), &[("resolution", long.as_str())])
        .await;
    assert!(r.has("At most 2000 characters"), "{}", r.body);
    let (s, body) = app
        .post(
            &t.token,
            &format!("/api/v1/conversations/{id}/close"),
            json!({"resolution": long}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["fields"][0]["code"], "too_long");
    assert_eq!(events_of(&app, &t, "conversation.closed").await, 0);
    let (_, c) = app
        .get(&t.token, &format!("/api/v1/conversations/{id}"))
        .await;
    assert_eq!(c["status"], "waiting");
    // A resolution that fits closes on either door with the same event.
    let r = op
        .hx_post(&format!("{url}/close"), &[("resolution", " Refunded ")])
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(
        last_event(&app, &t).await,
        (
            "conversation.closed".into(),
            json!({"resolution": "Refunded"})
        )
    );
}

#[tokio::test]
async fn the_log_says_what_happened_in_words_in_the_readers_language() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    app.tg
        .send_photo(&bot, &crate::harness::alice(), None)
        .await;
    let conv = app.conversation(&t, "waiting").await;
    let id = conv["id"].as_str().unwrap().to_string();
    app.post(
        &t.token,
        &format!("/api/v1/conversations/{id}/close"),
        json!({"resolution": "Refunded"}),
    )
    .await;
    app.post(
        &t.token,
        "/api/v1/commands",
        json!({"command": "prices", "description": "p", "response": "r"}),
    )
    .await;
    let web = app.owner_web(&t).await;
    let page = web.get(&format!("/t/{}/logs", t.slug)).await;
    assert!(page.status.is_success());
    assert!(
        page.has("closed the conversation with") && page.has(": Refunded"),
        "{}",
        page.body
    );
    assert!(page.has("added the command /prices"), "{}", page.body);
    assert!(
        !page.has("{&#34;resolution"),
        "no raw payload where words exist"
    );
    web.post("/lang", &[("lang", "ru"), ("next", "/account")])
        .await;
    let page = web.get(&format!("/t/{}/logs", t.slug)).await;
    assert!(page.has("закрыт — Refunded"), "{}", page.body);
    assert!(page.has("добавлена команда /prices"), "{}", page.body);
    assert!(page.has(">Разговор<"), "the badge says what it is about");
    // A filter the log cannot read is explained in the reader's language too.
    let page = web.get(&format!("/t/{}/logs?from=someday", t.slug)).await;
    assert!(page.has("Нужна дата ГГГГ-ММ-ДД"), "{}", page.body);
    let (s, body) = app.get(&t.token, "/api/v1/events?from=someday").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"][0]["code"], "date_or_time");
}

#[tokio::test]
async fn the_bot_and_a_users_notes_are_the_same_through_the_api_and_the_panel() {
    let app = TestApp::start().await;
    let (a, b) = (app.tenant("Api Co").await, app.tenant("Panel Co").await);
    let web = app.owner_web(&b).await;
    // Connecting a bot: the same stored bot (masked token, mode, status) and event.
    let bot_a = app.tg.add_bot("api_co_bot");
    let bot_b = app.tg.add_bot("panel_co_bot");
    let (s, body) = app
        .put(&a.token, "/api/v1/bot", json!({"token": bot_a.token}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let r = web
        .submit(
            &format!("/t/{}/bot", b.slug),
            &format!("/t/{}/bot", b.slug),
            &[("token", bot_b.token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let shape = |v: Value| {
        json!({"mode": v["mode"], "status": v["status"],
               "token_masked": v["token"].as_str().unwrap().contains('…')})
    };
    assert_eq!(
        shape(app.get(&a.token, "/api/v1/bot").await.1),
        shape(app.get(&b.token, "/api/v1/bot").await.1)
    );
    let (kind_a, data_a) = last_event(&app, &a).await;
    let (kind_b, data_b) = last_event(&app, &b).await;
    assert_eq!(
        (kind_a.as_str(), kind_b.as_str()),
        ("bot.connected", "bot.connected")
    );
    assert_eq!(data_a["mode"], data_b["mode"]);

    // The team's notes about a user: the same refusal past 4,000 characters (the desk
    // used to cut them), the same stored text otherwise.
    let user = crate::harness::alice();
    app.tg.send_photo(&bot_a, &user, None).await;
    app.tg.send_photo(&bot_b, &user, None).await;
    let (ua, ub) = (end_user_of(&app, &a).await, end_user_of(&app, &b).await);
    let long = "n".repeat(4001);
    let (s, body) = app
        .patch(
            &a.token,
            &format!("/api/v1/end-users/{ua}"),
            json!({"notes": long}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let r = web
        .post(
            &format!("/desk/t/{}/users/{ub}/notes", b.slug),
            &[("notes", long.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(
        notes_of(&app, &b, &ub).await,
        "",
        "nothing was cut and stored"
    );
    app.patch(
        &a.token,
        &format!("/api/v1/end-users/{ua}"),
        json!({"notes": "  VIP, prefers Russian  "}),
    )
    .await;
    web.post(
        &format!("/desk/t/{}/users/{ub}/notes", b.slug),
        &[("notes", "  VIP, prefers Russian  ")],
    )
    .await;
    assert_eq!(notes_of(&app, &a, &ua).await, notes_of(&app, &b, &ub).await);
    assert_eq!(notes_of(&app, &a, &ua).await, "VIP, prefers Russian");
}

async fn end_user_of(app: &TestApp, t: &Tenant) -> String {
    app.conversation(t, "waiting").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn notes_of(app: &TestApp, t: &Tenant, id: &str) -> Value {
    app.get(&t.token, &format!("/api/v1/end-users/{id}"))
        .await
        .1["notes"]
        .clone()
}

/// The team through both doors: an invitation, a role change, the last owner kept, a
/// removal — the same stored team and the same events.
#[tokio::test]
async fn the_team_is_the_same_through_the_api_and_the_panel() {
    let app = TestApp::start().await;
    let (a, b) = (app.tenant("Api Co").await, app.tenant("Panel Co").await);
    let web = app.owner_web(&b).await;
    let s = &b.slug;
    let user_id = |t: &Tenant, email: &str| {
        let pool = app.db.pool.clone();
        let (tenant, email) = (t.id, email.to_string());
        async move {
            let id: uuid::Uuid = sqlx::query_scalar(
                "select u.id from users u join memberships m on m.user_id = u.id
                 where m.tenant_id = $1 and u.email = $2",
            )
            .bind(tenant)
            .bind(email)
            .fetch_one(&pool)
            .await
            .unwrap();
            id
        }
    };

    // An invitation: the API answers with the link (no mail server here) once.
    let (st, invited) = app
        .post(
            &a.token,
            "/api/v1/team/invitations",
            json!({"email": " Olga@Example.test ", "role": "admin"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{invited}");
    assert_eq!(invited["mail"], "no_mail_server");
    assert!(
        invited["link"].as_str().unwrap().contains("/invite/"),
        "{invited}"
    );
    let r = web
        .submit(
            &format!("/t/{s}/team"),
            &format!("/t/{s}/team"),
            &[("email", " Olga@Example.test "), ("role", "admin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        stored(&app, &a, "/api/v1/team").await["invitations"],
        stored(&app, &b, "/api/v1/team").await["invitations"]
    );
    assert_eq!(last_event(&app, &a).await, last_event(&app, &b).await);
    assert_eq!(
        last_event(&app, &a).await,
        (
            "member.invited".into(),
            json!({"email": "Olga@Example.test", "role": "admin"})
        )
    );

    // The same refusal: an operator cannot be invited as "boss".
    let (st, refused) = app
        .post(
            &a.token,
            "/api/v1/team/invitations",
            json!({"email": "x@example.test", "role": "boss"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["fields"][0]["code"], "role_not_allowed");

    // Two members each, then one is made an admin through each door.
    // (People are global: each organization gets its own Ivan.)
    app.member(&a, "ivan@api-co.test", switchboard_core::Role::Operator)
        .await;
    app.member(&b, "ivan@panel-co.test", switchboard_core::Role::Operator)
        .await;
    let (ia, ib) = (
        user_id(&a, "ivan@api-co.test").await,
        user_id(&b, "ivan@panel-co.test").await,
    );
    let (st, body) = app
        .patch(
            &a.token,
            &format!("/api/v1/team/members/{ia}"),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "admin");
    let r = web
        .submit(
            &format!("/t/{s}/team"),
            &format!("/t/{s}/team/{ib}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(roles(&app, &a).await, roles(&app, &b).await);
    assert_eq!(roles(&app, &a).await, ["admin", "owner"]);
    assert_eq!(
        without_emails(last_event(&app, &a).await),
        without_emails(last_event(&app, &b).await)
    );
    assert_eq!(
        without_emails(last_event(&app, &a).await),
        (
            "member.role_changed".into(),
            json!({"from": "operator", "to": "admin"})
        )
    );

    // The last owner stays: 409 through the API, a refusal on the page, nothing logged.
    let (oa, ob) = (
        user_id(&a, "owner@api-co.test").await,
        user_id(&b, "owner@panel-co.test").await,
    );
    let (st, body) = app
        .patch(
            &a.token,
            &format!("/api/v1/team/members/{oa}"),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["fields"][0]["code"], "last_owner", "{body}");
    let r = web.post(&format!("/t/{s}/team/{ob}/remove"), &[]).await;
    assert!(r.has("at least one owner"), "{}", r.body);
    assert_eq!(events_of(&app, &a, "member.role_changed").await, 1);
    assert_eq!(events_of(&app, &b, "member.removed").await, 0);

    // A removal.
    let (st, _) = app
        .delete(&a.token, &format!("/api/v1/team/members/{ia}"))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let r = web.post(&format!("/t/{s}/team/{ib}/remove"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(roles(&app, &a).await, ["owner"]);
    assert_eq!(roles(&app, &b).await, ["owner"]);
    assert_eq!(
        without_emails(last_event(&app, &a).await),
        without_emails(last_event(&app, &b).await)
    );
    assert_eq!(last_event(&app, &a).await.0, "member.removed");

    // An operator's token cannot manage the team.
    let op = app
        .member(&a, "op@example.test", switchboard_core::Role::Operator)
        .await;
    let (st, _) = app.get(&op, "/api/v1/team").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

/// The roles of a team, sorted.
async fn roles(app: &TestApp, t: &Tenant) -> Vec<String> {
    let team = stored(app, t, "/api/v1/team").await;
    let mut roles: Vec<String> = team["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_string())
        .collect();
    roles.sort();
    roles
}

/// An event without the email it names (each organization has its own people).
fn without_emails((kind, mut data): (String, Value)) -> (String, Value) {
    if let Some(map) = data.as_object_mut() {
        map.remove("email");
    }
    (kind, data)
}
