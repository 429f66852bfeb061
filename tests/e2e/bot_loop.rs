//! The core loop: user → bot (rules, menus, commands) or hand-over → operator → user.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{alice, bob, TestApp};

#[tokio::test]
async fn start_shows_the_welcome_with_the_main_menu_and_buttons_work() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let (_, rule) = app
        .post(&t.token, "/api/v1/rules", json!({"title": "Hours", "answer": "We are open 9–18, Mon–Fri.", "examples": ["when are you open"]}))
        .await;
    let (s, sub) = app
        .post(&t.token, "/api/v1/menus", json!({"name": "More", "text": "More topics:", "rows": [[{"label": "Back to hours", "action": "rule", "rule_id": rule["id"]}]]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    let (s, main) = app
        .post(
            &t.token,
            "/api/v1/menus",
            json!({
            "name": "Main", "text": "unused for /start", "is_main": true,
            "rows": [
                [{"label": "Opening hours", "action": "rule", "rule_id": rule["id"]},
                 {"label": "Say hi", "action": "text", "text": "Hello from Acme!"}],
                [{"label": "More…", "action": "submenu", "menu_id": sub["id"]}],
                [{"label": "Talk to a person", "action": "handover"},
                 {"label": "Website", "action": "url", "url": "https://acme.example"}]
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{main}");
    assert_eq!(main["rows"].as_array().unwrap().len(), 3);

    let user = alice();
    app.say(&bot, &user, "/start").await;
    let sent = app.expect_sent(&bot, user.id, 1).await;
    let settings = app.get(&t.token, "/api/v1/settings").await.1;
    assert_eq!(sent[0].text, settings["welcome_text"].as_str().unwrap());
    let labels: Vec<String> = sent[0].buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        labels,
        [
            "Opening hours",
            "Say hi",
            "More…",
            "Talk to a person",
            "Website"
        ]
    );
    let website = sent[0]
        .buttons()
        .into_iter()
        .find(|(l, _)| l == "Website")
        .unwrap()
        .1;
    // teloxide sends the URL normalised.
    assert_eq!(website["url"], "https://acme.example/");

    let press = |label: &str| sent[0].button_data(label).unwrap();
    let d = app
        .tg
        .press(&bot, &user, &press("Opening hours"), sent[0].message_id)
        .await;
    assert_eq!(d.status, 200);
    let sent2 = app.expect_sent(&bot, user.id, 2).await;
    assert_eq!(sent2[1].text, "We are open 9–18, Mon–Fri.");

    app.tg
        .press(&bot, &user, &press("Say hi"), sent[0].message_id)
        .await;
    let sent3 = app.expect_sent(&bot, user.id, 3).await;
    assert_eq!(sent3[2].text, "Hello from Acme!");

    app.tg
        .press(&bot, &user, &press("More…"), sent[0].message_id)
        .await;
    let sent4 = app.expect_sent(&bot, user.id, 4).await;
    assert_eq!(sent4[3].text, "More topics:");
    assert_eq!(sent4[3].buttons()[0].0, "Back to hours");

    // Every press was answered, so the user's app stops its spinner.
    let answers = app
        .tg
        .wait_for_calls("answerCallbackQuery", 3, std::time::Duration::from_secs(10))
        .await;
    assert!(answers.iter().all(|c| c.status == 200));

    app.tg
        .press(&bot, &user, &press("Talk to a person"), sent[0].message_id)
        .await;
    let sent5 = app.expect_sent(&bot, user.id, 5).await;
    assert_eq!(sent5[4].text, settings["handover_text"].as_str().unwrap());
    let conv = app.conversation(&t, "waiting").await;
    assert_eq!(conv["handover_reason"], "button");

    // Button presses are stored as messages and events.
    let messages = app.messages(&t, conv["id"].as_str().unwrap()).await;
    let pressed: Vec<&str> = messages
        .iter()
        .filter(|m| m["kind"] == "callback")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        pressed,
        ["Opening hours", "Say hi", "More…", "Talk to a person"]
    );
    let pressed_events: i64 =
        sqlx::query_scalar("select count(*) from events where kind = 'button.pressed'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(pressed_events, 4);
}

/// A button press that comes without a language (some Telegram clients send none with a
/// callback) is answered in the language the user's earlier messages told.
#[tokio::test]
async fn a_press_without_a_language_is_answered_in_the_users_known_language() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let (s, menu) = app
        .post(
            &t.token,
            "/api/v1/menus",
            json!({"name": "Main", "text": "Menu", "is_main": true,
                   "rows": [[{"label": "Talk to a person", "action": "handover",
                              "translations": {"ru": {"label": "Позвать человека"}}}]]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{menu}");
    let settings = app.get(&t.token, "/api/v1/settings").await.1;
    let english = settings["handover_text"].as_str().unwrap().to_string();
    // Two Russian users: one's press carries the language, the other's does not.
    let told = switchboard_testkit::FakeUser::new(5001, "Иван").lang("ru");
    let silent = switchboard_testkit::FakeUser::new(5002, "Пётр").lang("ru");
    let mut replies = Vec::new();
    for (user, press_lang) in [(&told, Some("ru")), (&silent, None)] {
        app.say(&bot, user, "/start").await;
        let sent = app.expect_sent(&bot, user.id, 1).await;
        let data = sent[0].button_data("Позвать человека").unwrap();
        let mut presser = user.clone();
        presser.language_code = press_lang.map(String::from);
        app.tg
            .press(&bot, &presser, &data, sent[0].message_id)
            .await;
        let sent = app.expect_sent(&bot, user.id, 2).await;
        replies.push(sent[1].text.clone());
    }
    assert_ne!(replies[0], english, "the Russian hand-over text");
    assert_eq!(replies[1], replies[0], "{replies:?}");
}

#[tokio::test]
async fn a_matching_question_gets_the_rules_answer_in_russian_too() {
    let app = TestApp::start().await;
    let t = app.tenant("Ромашка").await;
    let bot = app.connect_bot(&t, "romashka_bot").await;
    let (s, rule) = app
        .post(&t.token, "/api/v1/rules", json!({
            "title": "Доставка", "answer": "Доставка занимает 2–3 дня.",
            "examples": ["сколько идет доставка", "когда привезут заказ"], "keywords": ["курьер"]
        }))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let user = alice().lang("ru");
    app.say(&bot, &user, "Сколько идёт доставка?").await;
    app.say(&bot, &user, "а курьер когда будет").await;
    let sent = app.expect_sent(&bot, user.id, 2).await;
    assert_eq!(sent[0].text, "Доставка занимает 2–3 дня.");
    assert_eq!(sent[1].text, "Доставка занимает 2–3 дня.");

    let conv = app.conversation(&t, "bot").await;
    let messages = app.messages(&t, conv["id"].as_str().unwrap()).await;
    let inbound = &messages[0];
    assert_eq!(inbound["direction"], "in");
    assert_eq!(inbound["rule_id"], rule["id"]);
    assert!(inbound["score"].as_f64().unwrap() >= 0.5);
    assert_eq!(messages[1]["sender"], "bot");
    assert_eq!(messages[1]["rule_id"], rule["id"]);
    assert_eq!(messages[1]["delivery_status"], "sent");
    // The explanation is stored with the message.
    let m: serde_json::Value =
        sqlx::query_scalar("select match from messages where direction = 'in' order by id limit 1")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(m["candidates"][0]["rule_id"], rule["id"]);
}

#[tokio::test]
async fn unknown_questions_are_handed_over_and_the_operator_reply_reaches_the_user() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    app.post(
        &t.token,
        "/api/v1/rules",
        json!({"title": "Hours", "answer": "9–18", "examples": ["opening hours"]}),
    )
    .await;
    let user = alice();
    app.say(&bot, &user, "My order arrived broken").await;
    let sent = app.expect_sent(&bot, user.id, 1).await;
    let settings = app.get(&t.token, "/api/v1/settings").await.1;
    assert_eq!(sent[0].text, settings["handover_text"].as_str().unwrap());

    let conv = app.conversation(&t, "waiting").await;
    assert_eq!(conv["user"]["telegram_id"], user.id);
    assert_eq!(conv["user"]["first_name"], "Alice");
    assert_eq!(conv["handover_reason"], "no_match");
    let id = conv["id"].as_str().unwrap().to_string();

    // While waiting, the user's messages go to the desk — even ones a rule would answer;
    // a command (/start: "is anyone there?") is told that an operator will reply.
    app.say(&bot, &user, "opening hours?").await;
    app.say(&bot, &user, "/start").await;
    let sent = app.expect_sent(&bot, user.id, 2).await;
    assert_eq!(
        sent[1].text,
        settings["already_waiting_text"].as_str().unwrap()
    );
    let messages = app.messages(&t, &id).await;
    let texts: Vec<&str> = messages
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "My order arrived broken",
            settings["handover_text"].as_str().unwrap(),
            "opening hours?",
            "/start",
            settings["already_waiting_text"].as_str().unwrap(),
        ]
    );
    assert_eq!(
        app.tg.sent_to(&bot, user.id).len(),
        2,
        "a plain message is for the operator: the bot says nothing to it"
    );

    let (s, claimed) = app
        .post(
            &t.token,
            &format!("/api/v1/conversations/{id}/claim"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["status"], "assigned");
    assert!(claimed["assignee_id"].is_string());

    let (s, accepted) = app
        .post(
            &t.token,
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"text": "Sorry! A replacement is on its way."}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["items"][0]["delivery_status"], "pending");
    let sent = app.expect_sent(&bot, user.id, 3).await;
    assert_eq!(sent[2].text, "Sorry! A replacement is on its way.");
    app.eventually("the reply is marked sent", || async {
        let m = app.messages(&t, &id).await;
        let last = m.last().unwrap();
        last["sender"] == "operator"
            && last["delivery_status"] == "sent"
            && last["telegram_message_id"].is_i64()
    })
    .await;

    // The user's answer lands in the same conversation.
    app.say(&bot, &user, "Thank you!").await;
    let messages = app.messages(&t, &id).await;
    assert_eq!(messages.last().unwrap()["text"], "Thank you!");
    assert_eq!(messages.last().unwrap()["direction"], "in");
}

#[tokio::test]
async fn closing_sends_the_closing_text_and_the_next_message_starts_over_with_the_bot() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    app.post(
        &t.token,
        "/api/v1/rules",
        json!({"title": "Hours", "answer": "9–18", "examples": ["opening hours"]}),
    )
    .await;
    let user = alice();
    app.say(&bot, &user, "/operator").await;
    let conv = app.conversation(&t, "waiting").await;
    assert_eq!(conv["handover_reason"], "requested");
    let id = conv["id"].as_str().unwrap().to_string();
    app.post(
        &t.token,
        &format!("/api/v1/conversations/{id}/messages"),
        json!({"text": "How can I help?"}),
    )
    .await;
    let (s, closed) = app
        .post(
            &t.token,
            &format!("/api/v1/conversations/{id}/close"),
            json!({"resolution": "answered"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "closed");
    let settings = app.get(&t.token, "/api/v1/settings").await.1;
    let sent = app.expect_sent(&bot, user.id, 3).await;
    assert_eq!(sent[2].text, settings["closing_text"].as_str().unwrap());

    // Closed stays closed for operator actions.
    let (s, body) = app
        .post(
            &t.token,
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"text": "late"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // What stood in the way, as a code a program can act on.
    assert_eq!(body["error"]["code"], "conflict");
    assert_eq!(body["error"]["reason"], "conversation_closed", "{body}");

    // The bot answers again, in a new conversation.
    app.say(&bot, &user, "opening hours").await;
    let sent = app.expect_sent(&bot, user.id, 4).await;
    assert_eq!(sent[3].text, "9–18");
    let new_conv = app.conversation(&t, "bot").await;
    assert_ne!(new_conv["id"], conv["id"]);

    // The old one cannot be reopened while the user has an open conversation.
    let (s, body) = app
        .post(
            &t.token,
            &format!("/api/v1/conversations/{id}/reopen"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn an_operator_can_reopen_a_closed_conversation_and_the_user_continues_there() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let user = bob();
    app.say(&bot, &user, "/operator").await;
    let id = app.conversation(&t, "waiting").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &t.token,
        &format!("/api/v1/conversations/{id}/close"),
        json!({}),
    )
    .await;
    let (s, reopened) = app
        .post(
            &t.token,
            &format!("/api/v1/conversations/{id}/reopen"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{reopened}");
    assert_eq!(reopened["status"], "assigned");
    assert!(reopened["closed_at"].is_null());
    app.say(&bot, &user, "one more thing").await;
    let messages = app.messages(&t, &id).await;
    assert_eq!(messages.last().unwrap()["text"], "one more thing");
    // Still one conversation.
    let (_, all) = app.get(&t.token, "/api/v1/conversations").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let events: Vec<String> =
        sqlx::query_scalar("select kind from events where conversation_id is not null order by id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        events,
        [
            "conversation.opened",
            "conversation.handover",
            "conversation.closed",
            "conversation.reopened"
        ]
    );
}

#[tokio::test]
async fn media_and_custom_commands() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let (s, cmd) = app
        .post(&t.token, "/api/v1/commands", json!({"command": "/prices", "description": "Our prices", "response": "Basic: $10, Pro: $20"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cmd}");
    assert_eq!(cmd["command"], "prices");
    // Published to Telegram with the built-in ones.
    app.eventually("commands published", || async {
        app.tg.commands(&bot).is_some_and(|c| {
            let names: Vec<&str> = c
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["command"].as_str().unwrap())
                .collect();
            names == ["start", "help", "operator", "prices"]
        })
    })
    .await;
    // Russian speakers see the built-in commands described in Russian.
    let localized = app.tg.calls_of("setMyCommands");
    let ru = localized
        .iter()
        .rev()
        .find(|c| c.params["language_code"] == "ru")
        .expect("a Russian command list");
    assert_eq!(ru.params["commands"][0]["description"], "Главное меню");
    let user = alice();
    app.say(&bot, &user, "/prices").await;
    app.say(&bot, &user, "/help").await;
    let sent = app.expect_sent(&bot, user.id, 2).await;
    assert_eq!(sent[0].text, "Basic: $10, Pro: $20");
    let settings = app.get(&t.token, "/api/v1/settings").await.1;
    assert_eq!(sent[1].text, settings["help_text"].as_str().unwrap());

    let d = app.tg.send_photo(&bot, &user, Some("this is broken")).await;
    assert_eq!(d.status, 200);
    let conv = app.conversation(&t, "waiting").await;
    assert_eq!(conv["handover_reason"], "media");
    let messages = app.messages(&t, conv["id"].as_str().unwrap()).await;
    let photo = messages.iter().find(|m| m["kind"] == "photo").unwrap();
    assert_eq!(photo["text"], "this is broken");
    assert_eq!(photo["payload"]["photo"][0]["file_id"], "photo-1");
}

#[tokio::test]
async fn settings_texts_change_what_the_bot_says() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let (s, body) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"welcome_text": "Hi, this is Acme!", "handover_text": "A human will answer."}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["welcome_text"], "Hi, this is Acme!");
    let user = alice();
    app.say(&bot, &user, "/start").await;
    app.say(&bot, &user, "something nobody configured").await;
    let sent = app.expect_sent(&bot, user.id, 2).await;
    assert_eq!(sent[0].text, "Hi, this is Acme!");
    assert_eq!(sent[1].text, "A human will answer.");

    // Invalid settings change nothing.
    let (s, body) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"welcome_text": "  ", "answer_threshold": 3.0}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["welcome_text", "answer_threshold"]);
    assert_eq!(
        app.get(&t.token, "/api/v1/settings").await.1["welcome_text"],
        "Hi, this is Acme!"
    );
}

/// An organization that wrote its texts once, in English: its Russian-speaking users get
/// those words, not the built-in Russian ones; texts it left alone come in Russian.
#[tokio::test]
async fn the_organizations_own_texts_reach_users_of_another_language() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let (s, body) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"welcome_text": "Welcome to Acme!", "closing_text": "Thanks for writing to Acme."}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ivan = switchboard_testkit::FakeUser::new(3003, "Иван").lang("ru");
    app.say(&bot, &ivan, "/start").await;
    app.say(&bot, &ivan, "/help").await;
    let sent = app.expect_sent(&bot, ivan.id, 2).await;
    assert_eq!(sent[0].text, "Welcome to Acme!");
    assert_eq!(
        sent[1].text,
        switchboard_core::bot::BotTexts::defaults(switchboard_core::text::Lang::Ru).help_text,
        "a text the organization did not write comes in the user's language"
    );
    // A translation the organization wrote wins.
    let (s, body) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"translations": {"ru": {"welcome_text": "Добро пожаловать в Acme!"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    app.say(&bot, &ivan, "/start").await;
    let sent = app.expect_sent(&bot, ivan.id, 3).await;
    assert_eq!(sent[2].text, "Добро пожаловать в Acme!");
    // The closing text too.
    app.say(&bot, &ivan, "/operator").await;
    let conv = app.conversation(&t, "waiting").await;
    let id = conv["id"].as_str().unwrap();
    let (s, body) = app
        .post(
            &t.token,
            &format!("/api/v1/conversations/{id}/close"),
            json!({}),
        )
        .await;
    assert!(s.is_success(), "{body}");
    app.eventually("the closing text", || async {
        app.tg
            .sent_to(&bot, ivan.id)
            .last()
            .is_some_and(|m| m.text == "Thanks for writing to Acme.")
    })
    .await;
}

/// Rules, menus, buttons and commands written in two languages: each Telegram user gets
/// the organization's words in their language where it wrote them, its default words
/// elsewhere; "Did you mean…?" and /help offer a question in the user's language.
#[tokio::test]
async fn the_organizations_words_reach_each_user_in_their_language() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let (s, rule) = app
        .post(
            &t.token,
            "/api/v1/rules",
            json!({
                "title": "Delivery cost",
                "question": "How much is delivery?",
                "answer": "Delivery is free from $50.",
                "examples": ["how much is delivery", "delivery price", "сколько стоит доставка"],
                "featured": true,
                "translations": {"ru": {"answer": "Доставка бесплатна от 5000 ₽."}}
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    assert_eq!(
        rule["translations"]["ru"]["answer"],
        "Доставка бесплатна от 5000 ₽."
    );
    let rule_id = rule["id"].as_str().unwrap();
    let (s, menu) = app
        .post(
            &t.token,
            "/api/v1/menus",
            json!({
                "name": "Main", "text": "Topics", "is_main": true,
                "rows": [[
                    {"label": "Delivery", "action": "rule", "rule_id": rule_id,
                     "translations": {"ru": {"label": "Доставка"}}},
                    {"label": "Website", "action": "url", "url": "https://acme.example"}
                ]]
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{menu}");
    let (s, cmd) = app
        .post(
            &t.token,
            "/api/v1/commands",
            json!({
                "command": "prices", "description": "Our prices", "response": "Basic: $10",
                "translations": {"ru": {"description": "Наши цены", "response": "Базовый: 900 ₽"}}
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cmd}");

    let ivan = switchboard_testkit::FakeUser::new(3004, "Иван").lang("ru");
    let alice = alice();
    for user in [&ivan, &alice] {
        app.say(&bot, user, "/start").await;
        app.say(&bot, user, "сколько стоит доставка").await;
        app.say(&bot, user, "/prices").await;
        app.say(&bot, user, "/help").await;
    }
    let ru = app.expect_sent(&bot, ivan.id, 4).await;
    let labels: Vec<String> = ru[0].buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        labels,
        ["Доставка", "Website"],
        "an untranslated label stays the organization's"
    );
    assert_eq!(ru[1].text, "Доставка бесплатна от 5000 ₽.");
    assert_eq!(ru[2].text, "Базовый: 900 ₽");
    let offered: Vec<String> = ru[3].buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        offered,
        ["Сколько стоит доставка"],
        "a question in Russian, not the English one"
    );

    let en = app.expect_sent(&bot, alice.id, 4).await;
    let labels: Vec<String> = en[0].buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, ["Delivery", "Website"]);
    assert_eq!(en[1].text, "Delivery is free from $50.");
    assert_eq!(en[2].text, "Basic: $10");
    let offered: Vec<String> = en[3].buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(offered, ["How much is delivery?"]);

    // Telegram's command menu for Russian speakers describes /prices in Russian.
    app.eventually("a Russian command menu with the translation", || async {
        app.tg.calls_of("setMyCommands").iter().any(|c| {
            c.params["language_code"] == "ru"
                && c.params["commands"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["command"] == "prices" && c["description"] == "Наши цены")
        })
    })
    .await;

    // Bad translations are refused with a clear error and change nothing.
    for (bad, field) in [
        (json!({"de": {"answer": "Ja"}}), None),
        (
            json!({"ru": {"colour": "красный"}}),
            Some("translations.ru.colour"),
        ),
        (
            json!({"ru": {"question": "?".repeat(65)}}),
            Some("translations.ru.question"),
        ),
    ] {
        let (s, body) = app
            .patch(
                &t.token,
                &format!("/api/v1/rules/{rule_id}"),
                json!({ "translations": bad }),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        if let Some(field) = field {
            assert_eq!(body["error"]["fields"][0]["field"], field, "{body}");
        }
    }
    let (_, stored) = app.get(&t.token, &format!("/api/v1/rules/{rule_id}")).await;
    assert_eq!(stored["translations"], rule["translations"]);
    // An HTML answer's translation is checked as HTML too.
    let (s, body) = app
        .patch(
            &t.token,
            &format!("/api/v1/rules/{rule_id}"),
            json!({"format": "html", "answer": "<b>Free</b> from $50",
                   "translations": {"ru": {"answer": "<b>Бесплатно"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["error"]["fields"][0]["field"], "translations.ru.answer",
        "{body}"
    );
}
