//! The matcher in the bot: confident answers, "Did you mean…?" suggestions and what a
//! press on one does, typical questions, required words, patterns and synonyms set
//! through the API, and the explanation stored with each message.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{alice, bob, TestApp};

async fn rule(app: &TestApp, token: &str, body: serde_json::Value) -> String {
    let (s, r) = app.post(token, "/api/v1/rules", body).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn unsure_matches_suggest_rules_and_a_press_answers_and_is_logged() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let hours = rule(
        &app,
        &t.token,
        json!({"title": "Opening hours", "answer": "We are open 9–18.",
        "examples": ["when are you open", "what are your opening hours", "working hours"]}),
    )
    .await;
    let refunds = rule(
        &app,
        &t.token,
        json!({"title": "Refunds", "answer": "Refunds take 5 days.",
        "examples": ["how do I get a refund", "return my money"]}),
    )
    .await;
    let user = alice();

    // A confident match is answered, and the explanation is stored with the message.
    app.say(&bot, &user, "When are you open?").await;
    let sent = app.expect_sent(&bot, user.id, 1).await;
    assert_eq!(sent[0].text, "We are open 9–18.");
    let (info, rule_id): (serde_json::Value, Option<uuid::Uuid>) = sqlx::query_as(
        "select match, rule_id from messages where tenant_id = $1 and direction = 'in' order by id limit 1",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rule_id.unwrap().to_string(), hours);
    let best = &info["candidates"][0];
    assert_eq!(best["rule_id"], hours.as_str());
    for key in ["score", "similarity", "margin", "coverage"] {
        assert!(best[key].is_number(), "{key} in {info}");
    }
    assert!(
        info["terms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "open"),
        "{info}"
    );
    // The API and the desk show it too.
    let conv = app.conversation(&t, "bot").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let messages = app.messages(&t, &conv).await;
    assert_eq!(
        messages[0]["match"]["candidates"][0]["rule_id"],
        hours.as_str()
    );
    let live = app
        .owner_web(&t)
        .await
        .get(&format!("/desk/t/{}/c/{conv}/live", t.slug))
        .await;
    assert!(
        live.has("Why the bot decided so") && live.has("Opening hours — "),
        "{}",
        live.body
    );

    // An admin who wants the bot to be very sure: the same kind of match now gets
    // "Did you mean…?" with the candidates, and a button for a person.
    let (s, _) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"answer_threshold": 0.99, "suggest_threshold": 0.1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.say(&bot, &user, "open money").await;
    let sent = app.expect_sent(&bot, user.id, 2).await;
    let ask = &sent[1];
    assert!(ask.text.contains("Did you mean"), "{}", ask.text);
    let labels: Vec<String> = ask.buttons().into_iter().map(|(l, _)| l).collect();
    // Users see questions in their words (the first example), never the internal title.
    assert!(
        labels.contains(&"How do I get a refund".to_string()),
        "{labels:?}"
    );
    assert!(!labels.contains(&"Refunds".to_string()), "{labels:?}");
    assert_eq!(labels.last().unwrap(), "None of these — talk to a person");
    assert_eq!(app.conversation(&t, "bot").await["status"], "bot");

    // Pressing a suggestion answers with that rule; the press is stored with the rule and
    // logged as an accepted suggestion.
    let data = ask.button_data("How do I get a refund").unwrap();
    app.tg.press(&bot, &user, &data, ask.message_id).await;
    let sent = app.expect_sent(&bot, user.id, 3).await;
    assert_eq!(sent[2].text, "Refunds take 5 days.");
    let (text, kind, rule_id): (String, String, Option<uuid::Uuid>) = sqlx::query_as(
        "select text, kind, rule_id from messages where tenant_id = $1 and direction = 'in' order by id desc limit 1",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (text.as_str(), kind.as_str()),
        ("How do I get a refund", "callback")
    );
    assert_eq!(rule_id.unwrap().to_string(), refunds);
    let accepted: serde_json::Value = sqlx::query_scalar(
        "select data from events where tenant_id = $1 and kind = 'suggestion.accepted'",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(accepted["rule_id"], refunds.as_str());

    // "None of these" hands over to a person.
    app.say(&bot, &bob(), "open money").await;
    let ask = app.expect_sent(&bot, bob().id, 1).await.remove(0);
    let none = ask.button_data("None of these — talk to a person").unwrap();
    app.tg.press(&bot, &bob(), &none, ask.message_id).await;
    let sent = app.expect_sent(&bot, bob().id, 2).await;
    let settings = app.get(&t.token, "/api/v1/settings").await.1;
    assert_eq!(sent[1].text, settings["handover_text"].as_str().unwrap());
    let waiting = app.conversation(&t, "waiting").await;
    assert_eq!(waiting["user"]["telegram_id"], bob().id);
    assert_eq!(waiting["handover_reason"], "requested");

    // Something no rule covers is handed over directly.
    app.patch(
        &t.token,
        "/api/v1/settings",
        json!({"answer_threshold": 0.5, "suggest_threshold": 0.2}),
    )
    .await;
    app.say(&bot, &user, "can you sing me a song about penguins")
        .await;
    let sent = app.expect_sent(&bot, user.id, 4).await;
    assert_eq!(sent[3].text, settings["handover_text"].as_str().unwrap());
}

#[tokio::test]
async fn typical_questions_required_words_patterns_and_synonyms() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let internet = rule(
        &app,
        &t.token,
        json!({"title": "Интернет не работает", "answer": "Перезагрузите роутер.",
        "examples": ["не работает интернет", "пропал интернет"], "featured": true, "priority": 5}),
    )
    .await;
    rule(
        &app,
        &t.token,
        json!({"title": "Статус заказа", "answer": "Заказ в пути.",
        "examples": ["где мой заказ"], "patterns": [r"заказ\s*№?\s*\d{6}"], "featured": true}),
    )
    .await;
    let tariff = rule(
        &app,
        &t.token,
        json!({"title": "Смена тарифа", "answer": "Тариф меняется в личном кабинете.",
        "examples": ["как сменить тариф", "хочу другой тариф"], "required": ["тариф"]}),
    )
    .await;

    // The API keeps the new fields, and refuses a broken pattern.
    let (_, got) = app
        .get(&t.token, &format!("/api/v1/rules/{internet}"))
        .await;
    assert_eq!(got["featured"], true);
    let (_, got) = app.get(&t.token, &format!("/api/v1/rules/{tariff}")).await;
    assert_eq!(got["required"], json!(["тариф"]));
    let (s, e) = app
        .post(
            &t.token,
            "/api/v1/rules",
            json!({"title": "x", "answer": "y", "patterns": ["(unclosed"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e.to_string().contains("regular expression"), "{e}");

    let user = alice();
    // /help lists the typical questions as buttons, most important first.
    app.say(&bot, &user, "/help").await;
    let help = app.expect_sent(&bot, user.id, 1).await.remove(0);
    let labels: Vec<String> = help.buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, ["Не работает интернет", "Где мой заказ"]);
    // A vague message gets them too, instead of a hand-over.
    app.say(&bot, &user, "вопрос").await;
    let vague = app.expect_sent(&bot, user.id, 2).await.remove(1);
    assert!(vague.text.contains("Did you mean"), "{}", vague.text);
    assert!(vague.button_data("Где мой заказ").is_some());

    // A pattern answers outright.
    app.say(&bot, &user, "Заказ № 123456 — где он?").await;
    assert_eq!(
        app.expect_sent(&bot, user.id, 3).await[2].text,
        "Заказ в пути."
    );
    // Without its required word the tariff rule does not answer…
    app.say(&bot, &user, "как сменить").await;
    let reply = app.expect_sent(&bot, user.id, 4).await.remove(3);
    assert_ne!(reply.text, "Тариф меняется в личном кабинете.");
    // …with it (in another form), it does.
    app.say(&bot, &bob(), "как сменить тарифы").await;
    assert_eq!(
        app.expect_sent(&bot, bob().id, 1).await[0].text,
        "Тариф меняется в личном кабинете."
    );

    // Synonyms: "вайфай" means "интернет" once the admin says so.
    let carol = switchboard_testkit::FakeUser::new(1003, "Carol");
    app.say(&bot, &carol, "нет вайфая").await;
    let before = app.expect_sent(&bot, carol.id, 1).await.remove(0);
    let reaches = |m: &switchboard_testkit::SentMessage| {
        m.text == "Перезагрузите роутер." || m.button_data("Не работает интернет").is_some()
    };
    assert!(!reaches(&before), "{before:?}");
    let (s, body) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"synonyms": ["интернет, вайфай, wifi"], "suggest_threshold": 0.25}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["synonyms"], json!(["интернет, вайфай, wifi"]));
    assert!((body["suggest_threshold"].as_f64().unwrap() - 0.25).abs() < 1e-6);
    let dave = switchboard_testkit::FakeUser::new(1004, "Dave");
    app.say(&bot, &dave, "нет вайфая").await;
    let after = app.expect_sent(&bot, dave.id, 1).await.remove(0);
    assert!(reaches(&after), "{after:?}");
    let (s, e) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"synonyms": ["одно"], "suggest_threshold": 2.0}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        e.to_string().contains("synonyms") && e.to_string().contains("suggest_threshold"),
        "{e}"
    );
}

#[tokio::test]
async fn admins_teach_the_bot_from_the_questions_it_could_not_answer() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let delivery = rule(
        &app,
        &t.token,
        json!({"title": "Delivery time", "answer": "Delivery takes 2 days.",
        "examples": ["how long is delivery"]}),
    )
    .await;
    for (i, text) in [
        "parcel tracking number missing",
        "tracking number missing for my parcel",
        "Parcel tracking number is missing!",
    ]
    .iter()
    .enumerate()
    {
        let user = switchboard_testkit::FakeUser::new(2000 + i as i64, "User");
        app.say(&bot, &user, text).await;
        app.expect_sent(&bot, user.id, 1).await;
    }
    let admin = app.owner_web(&t).await;
    let page = admin.get(&format!("/t/{}/rules/unanswered", t.slug)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has("asked 3 times"), "{}", page.body);
    assert!(page.has("parcel tracking number missing"));

    let r = admin
        .post(
            &format!("/t/{}/rules/unanswered/add", t.slug),
            &[
                ("text", "parcel tracking number missing"),
                ("rule_id", &delivery),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, got) = app
        .get(&t.token, &format!("/api/v1/rules/{delivery}"))
        .await;
    assert_eq!(
        got["examples"],
        json!(["how long is delivery", "parcel tracking number missing"])
    );
    let page = admin.get(&format!("/t/{}/rules/unanswered", t.slug)).await;
    assert!(
        !page.has("“parcel tracking number missing”"),
        "taught questions leave the list"
    );
    // The bot now answers it.
    let next = switchboard_testkit::FakeUser::new(2100, "Next");
    app.say(&bot, &next, "parcel tracking number missing").await;
    assert_eq!(
        app.expect_sent(&bot, next.id, 1).await[0].text,
        "Delivery takes 2 days."
    );

    // Operators may look but not teach; other organizations see nothing.
    let op = app
        .member_web(&t, "op@acme.test", switchboard_core::Role::Operator)
        .await;
    assert_eq!(
        op.get(&format!("/t/{}/rules/unanswered", t.slug))
            .await
            .status,
        StatusCode::OK
    );
    let denied = op
        .post(
            &format!("/t/{}/rules/unanswered/add", t.slug),
            &[("text", "x"), ("rule_id", &delivery)],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let stranger = app.owner_web(&other).await;
    assert_eq!(
        stranger
            .get(&format!("/t/{}/rules/unanswered", t.slug))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let own = stranger
        .get(&format!("/t/{}/rules/unanswered", other.slug))
        .await;
    assert!(
        !own.has("parcel"),
        "another organization's questions never show"
    );
    // Adding to another organization's rule through one's own slug: not found.
    let r = stranger
        .post(
            &format!("/t/{}/rules/unanswered/add", other.slug),
            &[("text", "steal"), ("rule_id", &delivery)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// An answer the bot was unsure of may be wrong, and the user who got it says nothing:
/// it joins the list for an admin to check, with the rule and how sure the bot was; a
/// sure answer does not, and a question with no guess preselects no rule.
#[tokio::test]
async fn unsure_answers_are_listed_for_an_admin_to_check() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    rule(
        &app,
        &t.token,
        json!({"title": "Delivery time", "answer": "Delivery takes 2 days.",
        "examples": ["how long is delivery"], "keywords": ["delivery"]}),
    )
    .await;
    for (i, text) in ["delivery to Berlin?", "delivery to Paris?"]
        .iter()
        .enumerate()
    {
        let user = switchboard_testkit::FakeUser::new(2200 + i as i64, "User");
        app.say(&bot, &user, text).await;
        let sent = app.expect_sent(&bot, user.id, 1).await;
        assert_eq!(sent[0].text, "Delivery takes 2 days.");
    }
    // The matcher was sure of Berlin; say it was unsure of Paris.
    sqlx::query(
        "update messages set match = jsonb_set(match, '{candidates,0,score}', '0.6')
         where text = 'delivery to Paris?'",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let page = app
        .owner_web(&t)
        .await
        .get(&format!("/t/{}/rules/unanswered", t.slug))
        .await;
    assert!(page.has("“delivery to Paris?”"), "{}", page.body);
    assert!(
        page.has("Answered by “Delivery time”, 60% sure"),
        "{}",
        page.body
    );
    assert!(!page.has("Berlin"), "a sure answer is not listed");
    assert!(
        !page.has("Choose a rule"),
        "the answering rule is preselected"
    );
}

#[tokio::test]
async fn users_say_whether_an_answer_helped() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let hours = rule(
        &app,
        &t.token,
        json!({"title": "Opening hours", "answer": "We are open 9–18.",
        "examples": ["when are you open"]}),
    )
    .await;
    let (s, body) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"feedback_enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["feedback_enabled"], true);
    let user = alice();
    app.say(&bot, &user, "when are you open on sunday").await;
    let answer = app.expect_sent(&bot, user.id, 1).await.remove(0);
    let labels: Vec<String> = answer.buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, ["👍 Helped", "👎 Didn't help"]);

    // Didn't help: thanks, an offer of a person, logged with the rule; and the question
    // joins the admins' list of what to improve.
    let no = answer.button_data("👎 Didn't help").unwrap();
    app.tg.press(&bot, &user, &no, answer.message_id).await;
    let sorry = app.expect_sent(&bot, user.id, 2).await.remove(1);
    assert!(sorry.text.contains("did not help"), "{}", sorry.text);
    let feedback: serde_json::Value = sqlx::query_scalar(
        "select data from events where tenant_id = $1 and kind = 'answer.feedback'",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(feedback, json!({"rule_id": hours, "helped": false}));
    let page = app
        .owner_web(&t)
        .await
        .get(&format!("/t/{}/rules/unanswered", t.slug))
        .await;
    assert!(page.has("“when are you open on sunday”"), "{}", page.body);
    let person = sorry.button_data("Talk to a person").unwrap();
    app.tg.press(&bot, &user, &person, sorry.message_id).await;
    app.expect_sent(&bot, user.id, 3).await;
    assert_eq!(
        app.conversation(&t, "waiting").await["handover_reason"],
        "requested"
    );

    // Helped: just thanks, nothing sent.
    app.say(&bot, &bob(), "when are you open").await;
    let answer = app.expect_sent(&bot, bob().id, 1).await.remove(0);
    let yes = answer.button_data("👍 Helped").unwrap();
    app.tg.press(&bot, &bob(), &yes, answer.message_id).await;
    app.tg
        .wait_for_calls("answerCallbackQuery", 3, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(app.tg.sent_to(&bot, bob().id).len(), 1);
    let helped: i64 = sqlx::query_scalar(
        "select count(*) from events where tenant_id = $1 and kind = 'answer.feedback' and data ->> 'helped' = 'true'",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(helped, 1);
}

#[tokio::test]
async fn admins_word_the_suggestions_in_both_languages() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    rule(
        &app,
        &t.token,
        json!({"title": "Refunds", "answer": "Refunds take 5 days.",
        "examples": ["how do I get a refund", "return my money"]}),
    )
    .await;
    app.patch(
        &t.token,
        "/api/v1/settings",
        json!({"answer_threshold": 0.99, "suggest_threshold": 0.05}),
    )
    .await;
    let admin = app.owner_web(&t).await;
    let page = admin.get(&format!("/t/{}/settings", t.slug)).await;
    assert!(page.has("name=\"suggest_text\""), "the form has the field");
    // Save the whole form as the browser would, with the new texts.
    let (_, s) = app.get(&t.token, "/api/v1/settings").await;
    let texts = switchboard_app::settings::TEXTS;
    let mut form: Vec<(String, String)> = texts
        .iter()
        .map(|k| {
            (
                k.to_string(),
                s[*k].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    form.extend([
        ("default_language".into(), "en".into()),
        ("timezone".into(), "UTC".into()),
        ("always_open".into(), "on".into()),
        ("answer_threshold".into(), "0.99".into()),
        ("suggest_threshold".into(), "0.05".into()),
        ("suggest_text".into(), "Maybe one of these?".into()),
        ("tr_suggest_text".into(), "Может быть, это?".into()),
    ]);
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = admin
        .post(&format!("/t/{}/settings", t.slug), &fields)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    app.say(&bot, &alice(), "money please").await;
    let ask = app.expect_sent(&bot, alice().id, 1).await.remove(0);
    assert_eq!(ask.text, "Maybe one of these?");
    let ivan = switchboard_testkit::FakeUser::new(3001, "Иван").lang("ru");
    app.say(&bot, &ivan, "money please").await;
    let ask = app.expect_sent(&bot, ivan.id, 1).await.remove(0);
    assert_eq!(ask.text, "Может быть, это?");
    // Texts not changed stay the built-in ones of each language.
    assert!(
        ask.button_data("Ничего из этого — позвать человека")
            .is_some(),
        "{ask:?}"
    );
}

#[tokio::test]
async fn a_vague_message_is_offered_the_most_asked_questions() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    rule(
        &app,
        &t.token,
        json!({"title": "Opening hours", "answer": "We are open 9–18.",
        "examples": ["when are you open"]}),
    )
    .await;
    rule(
        &app,
        &t.token,
        json!({"title": "Refunds", "answer": "Refunds take 5 days.",
        "examples": ["how do I get a refund"]}),
    )
    .await;
    for i in 0..2 {
        let u = switchboard_testkit::FakeUser::new(4000 + i, "U");
        app.say(&bot, &u, "when are you open").await;
        app.expect_sent(&bot, u.id, 1).await;
    }
    // The list is taken when the configuration is loaded (any change reloads it).
    app.patch(
        &t.token,
        "/api/v1/settings",
        json!({"answer_threshold": 0.5}),
    )
    .await;
    let user = alice();
    app.say(&bot, &user, "question").await;
    let ask = app.expect_sent(&bot, user.id, 1).await.remove(0);
    assert!(ask.text.contains("Did you mean"), "{}", ask.text);
    let labels: Vec<String> = ask.buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels[0], "When are you open", "{labels:?}");
    // The admins can word it themselves.
    let (s, body) = app.get(&t.token, "/api/v1/rules").await;
    assert_eq!(s, StatusCode::OK);
    let id = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["title"] == "Opening hours")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, body) = app
        .patch(
            &t.token,
            &format!("/api/v1/rules/{id}"),
            json!({"question": "What are your opening hours?"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["question"], "What are your opening hours?");
    let (s, body) = app
        .patch(
            &t.token,
            &format!("/api/v1/rules/{id}"),
            json!({"question": "x".repeat(65)}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    app.say(&bot, &bob(), "question").await;
    let ask = app.expect_sent(&bot, bob().id, 1).await.remove(0);
    let labels: Vec<String> = ask.buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels[0], "What are your opening hours?", "{labels:?}");
}

/// A stand-in for a sentence-embedding model: money talk one way, everything else another.
struct MoneyTopics;

impl switchboard_core::matcher::SentenceEncoder for MoneyTopics {
    fn encode(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        texts
            .iter()
            .map(|t| {
                let t = t.to_lowercase();
                if ["money", "balance", "funds", "деньги", "баланс"]
                    .iter()
                    .any(|w| t.contains(w))
                {
                    vec![1.0, 0.05]
                } else {
                    vec![0.05, 1.0]
                }
            })
            .collect()
    }
    fn name(&self) -> &str {
        "money-topics"
    }
}

#[tokio::test]
async fn with_the_semantic_stage_the_bot_answers_a_paraphrase_it_could_not_before() {
    let app = TestApp::start().await;
    let t = app.tenant("Bank").await;
    let bot = app.connect_bot(&t, "bank_bot").await;
    rule(
        &app,
        &t.token,
        json!({"title": "Balance", "answer": "Your balance is in the app, under Accounts.",
               "examples": ["what is my balance", "check my account balance", "show my balance"]}),
    )
    .await;
    rule(
        &app,
        &t.token,
        json!({"title": "Opening hours", "answer": "We are open 9–18.",
               "examples": ["when are you open", "opening hours"]}),
    )
    .await;
    let question = "how much money do I have left";
    // Lexically the message shares no word with the balance rule: not answered by it.
    let (user, later) = (alice(), bob());
    app.say(&bot, &user, question).await;
    let sent = app.expect_sent(&bot, user.id, 1).await;
    assert_ne!(sent[0].text, "Your balance is in the app, under Accounts.");

    // With sentence vectors (any encoder: here a stand-in), the same question is answered.
    app.telegram
        .caches
        .set_encoder(std::sync::Arc::new(MoneyTopics));
    app.say(&bot, &later, question).await;
    let sent = app.expect_sent(&bot, later.id, 1).await;
    assert_eq!(sent[0].text, "Your balance is in the app, under Accounts.");
    // The explanation says why: by meaning.
    let (_, log) = app
        .get(&t.token, "/api/v1/events?kind=message.in&limit=1")
        .await;
    let m = &log["items"][0]["data"]["match"];
    assert_eq!(m["candidates"][0]["via"], "meaning", "{m}");
    // Lexical evidence still decides where words are shared.
    app.say(&bot, &later, "/start").await;
    app.say(&bot, &later, "what are your opening hours").await;
    let sent = app.expect_sent(&bot, later.id, 3).await;
    assert_eq!(sent.last().unwrap().text, "We are open 9–18.");
}

/// Counts the texts it is asked to encode (and encodes them like [`MoneyTopics`]).
#[derive(Default)]
struct Counting(std::sync::atomic::AtomicUsize);

impl switchboard_core::matcher::SentenceEncoder for Counting {
    fn encode(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        self.0
            .fetch_add(texts.len(), std::sync::atomic::Ordering::SeqCst);
        MoneyTopics.encode(texts)
    }
    fn name(&self) -> &str {
        "money-topics"
    }
}

/// Rule texts are encoded once: their vectors are stored by tenant, model and text, so a
/// rebuilt index (a restart, another process, an evicted cache) encodes nothing again, a
/// change encodes only its new text, and vectors of texts no rule uses any more go.
#[tokio::test]
async fn rule_vectors_are_stored_and_a_rebuild_encodes_only_new_texts() {
    use std::sync::atomic::Ordering::SeqCst;
    let app = TestApp::start().await;
    let t = app.tenant("Bank").await;
    let bot = app.connect_bot(&t, "bank_bot").await;
    let id = rule(
        &app,
        &t.token,
        json!({"title": "Balance", "answer": "In the app, under Accounts.",
               "examples": ["what is my balance", "check my account balance", "show my balance"]}),
    )
    .await;
    rule(
        &app,
        &t.token,
        json!({"title": "Hours", "answer": "9–18.", "examples": ["when are you open", "opening hours"]}),
    )
    .await;
    let stored = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from sentence_vectors where tenant_id = $1 and model = 'money-topics'",
        )
        .bind(t.id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
    };
    let first = std::sync::Arc::new(Counting::default());
    app.telegram.caches.set_encoder(first.clone());
    app.telegram.caches.invalidate(t.id);
    app.say(&bot, &alice(), "how much money do I have left")
        .await;
    assert_eq!(
        app.expect_sent(&bot, alice().id, 1).await[0].text,
        "In the app, under Accounts."
    );
    assert_eq!(first.0.load(SeqCst), 5 + 1, "five examples and the message");
    assert_eq!(stored().await, 5);

    // A fresh process's encoder (nothing in memory) and a rebuilt index: only the message.
    let second = std::sync::Arc::new(Counting::default());
    app.telegram.caches.set_encoder(second.clone());
    app.telegram.caches.invalidate(t.id);
    app.say(&bot, &bob(), "how much money do I have left").await;
    assert_eq!(
        app.expect_sent(&bot, bob().id, 1).await[0].text,
        "In the app, under Accounts."
    );
    assert_eq!(
        second.0.load(SeqCst),
        1,
        "the rules' vectors came from the database"
    );

    // One example changed: one new text encoded, the old one's vector dropped.
    let (s, body) = app
        .patch(
            &t.token,
            &format!("/api/v1/rules/{id}"),
            json!({"examples": ["what is my balance", "check my account balance", "funds available"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let third = std::sync::Arc::new(Counting::default());
    app.telegram.caches.set_encoder(third.clone());
    app.telegram.caches.invalidate(t.id);
    app.say(&bot, &alice(), "/start").await;
    app.expect_sent(&bot, alice().id, 2).await;
    assert_eq!(
        third.0.load(SeqCst),
        1,
        "only \"funds available\" (a command is not encoded)"
    );
    assert_eq!(stored().await, 5);
}

/// Many new rule texts (more than `BACKGROUND_TEXTS`) are encoded in the background: the
/// bot answers at once, lexically, and with the meaning once the vectors are stored.
#[tokio::test]
async fn a_big_first_index_is_encoded_in_the_background_while_the_bot_answers() {
    let app = TestApp::start().await;
    let t = app.tenant("Bank").await;
    let bot = app.connect_bot(&t, "bank_bot").await;
    let mut examples = vec![
        "what is my balance".to_string(),
        "show my balance".to_string(),
    ];
    examples.extend((0..80).map(|i| format!("balance topic {i}")));
    rule(
        &app,
        &t.token,
        json!({"title": "Balance", "answer": "In the app, under Accounts.", "examples": examples}),
    )
    .await;
    rule(
        &app,
        &t.token,
        json!({"title": "Hours", "answer": "9–18.", "examples": ["when are you open", "opening hours"]}),
    )
    .await;
    app.telegram
        .caches
        .set_encoder(std::sync::Arc::new(Counting::default()));
    app.telegram.caches.invalidate(t.id);
    let question = "how much money do I have left";
    app.say(&bot, &alice(), question).await;
    // Meanwhile each rule is matched by its first example's vector, encoded at once.
    let first = app.expect_sent(&bot, alice().id, 1).await;
    assert_eq!(first[0].text, "In the app, under Accounts.");
    app.eventually("the rules' vectors stored", || async {
        sqlx::query_scalar::<_, i64>("select count(*) from sentence_vectors where tenant_id = $1")
            .bind(t.id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
            == 84
    })
    .await;
    app.say(&bot, &bob(), question).await;
    assert_eq!(
        app.expect_sent(&bot, bob().id, 1).await[0].text,
        "In the app, under Accounts."
    );
}

/// Encodes batches of more than a few texts slowly (a big import on a busy machine).
#[derive(Default)]
struct SlowForMany(Counting);

impl switchboard_core::matcher::SentenceEncoder for SlowForMany {
    fn encode(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        if texts.len() > 8 {
            std::thread::sleep(std::time::Duration::from_secs(3));
        }
        self.0.encode(texts)
    }
    fn name(&self) -> &str {
        self.0.name()
    }
}

/// An import of many new example questions is encoded in the background, and meanwhile
/// the rules that were there keep being matched by meaning (their vectors are stored);
/// a new rule is matched by its first example until the rest are encoded.
#[tokio::test]
async fn during_a_big_import_the_rules_already_there_keep_matching_by_meaning() {
    let app = TestApp::start().await;
    let t = app.tenant("Bank").await;
    let bot = app.connect_bot(&t, "bank_bot").await;
    app.telegram
        .caches
        .set_encoder(std::sync::Arc::new(SlowForMany::default()));
    rule(
        &app,
        &t.token,
        json!({"title": "Balance", "answer": "In the app, under Accounts.",
               "examples": ["what is my balance", "show my balance"]}),
    )
    .await;
    rule(
        &app,
        &t.token,
        json!({"title": "Hours", "answer": "9–18.", "examples": ["when are you open", "opening hours"]}),
    )
    .await;
    let question = "how much money do I have left";
    app.say(&bot, &alice(), question).await;
    assert_eq!(
        app.expect_sent(&bot, alice().id, 1).await[0].text,
        "In the app, under Accounts."
    );
    // The import: one rule with 100 examples, more than are encoded at once.
    let examples: Vec<String> = (0..100).map(|i| format!("card question {i}")).collect();
    rule(
        &app,
        &t.token,
        json!({"title": "Cards", "answer": "Cards arrive in 5 days.", "examples": examples}),
    )
    .await;
    let started = std::time::Instant::now();
    app.say(&bot, &bob(), question).await;
    assert_eq!(
        app.expect_sent(&bot, bob().id, 1).await[0].text,
        "In the app, under Accounts.",
        "matched by meaning while the import is encoded"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "answered without waiting for the import's encoding"
    );
    // The new rule answers its own first example meanwhile.
    let carol = switchboard_testkit::FakeUser::new(1003, "Carol");
    app.say(&bot, &carol, "card question 0").await;
    assert_eq!(
        app.expect_sent(&bot, carol.id, 1).await[0].text,
        "Cards arrive in 5 days."
    );
    app.eventually("the import's vectors stored", || async {
        sqlx::query_scalar::<_, i64>("select count(*) from sentence_vectors where tenant_id = $1")
            .bind(t.id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
            == 104
    })
    .await;
}

/// The default model, as `serve` loads it (`switchboard models fetch` put it in place;
/// `./test` fills target/models).
fn default_model() -> Box<dyn switchboard_core::matcher::SentenceEncoder> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/models")
        .join(switchboard::models::DEFAULT_MODEL);
    switchboard::semantic_encoder(&switchboard::SemanticStage::Model {
        dir,
        required: true,
    })
    .expect("the default model: run `switchboard models fetch --dir target/models/multilingual-e5-small` (./test does)")
    .expect("the stage is on")
}

/// With the default model a Russian speaker is understood by meaning, in an English
/// organization whose rules were written in English and Russian: a paraphrase that shares
/// no word with any example is answered, a question in English finds the rule written in
/// Russian, and an unrelated question is handed to a person rather than answered wrongly.
#[tokio::test]
async fn the_default_model_answers_russian_paraphrases_and_crosses_languages() {
    let app = TestApp::start().await;
    let t = app.tenant("Shop").await;
    let bot = app.connect_bot(&t, "shop_bot").await;
    app.telegram
        .caches
        .set_encoder(std::sync::Arc::from(default_model()));
    rule(
        &app,
        &t.token,
        json!({"title": "Delivery", "answer": "Доставка занимает 2–3 дня. / Delivery takes 2–3 days.",
               "examples": ["сколько идёт доставка", "когда привезут заказ", "how long does shipping take"]}),
    )
    .await;
    rule(
        &app,
        &t.token,
        json!({"title": "Refunds", "answer": "Деньги вернём за 5 дней. / Refunds take 5 days.",
               "examples": ["как вернуть деньги", "хочу возврат средств"]}),
    )
    .await;
    rule(
        &app,
        &t.token,
        json!({"title": "Hours", "answer": "Мы работаем с 9 до 18. / We are open 9–18.",
               "examples": ["часы работы", "когда вы открыты", "opening hours"]}),
    )
    .await;
    let ivan = switchboard_testkit::FakeUser::new(3001, "Иван").lang("ru");
    // No word in common with the delivery examples.
    app.say(&bot, &ivan, "через какое время я получу свою посылку?")
        .await;
    let sent = app.expect_sent(&bot, ivan.id, 1).await;
    assert_eq!(
        sent[0].text, "Доставка занимает 2–3 дня. / Delivery takes 2–3 days.",
        "{sent:?}"
    );
    let (_, log) = app
        .get(&t.token, "/api/v1/events?kind=message.in&limit=1")
        .await;
    let m = &log["items"][0]["data"]["match"];
    assert_eq!(m["candidates"][0]["via"], "meaning", "{m}");
    // English, against a rule written only in Russian.
    let anna = alice();
    app.say(&bot, &anna, "I want my money back").await;
    let sent = app.expect_sent(&bot, anna.id, 1).await;
    assert_eq!(
        sent[0].text,
        "Деньги вернём за 5 дней. / Refunds take 5 days."
    );
    // Unrelated: not answered with any rule.
    let petr = switchboard_testkit::FakeUser::new(3002, "Пётр").lang("ru");
    app.say(&bot, &petr, "какая сегодня погода в Новосибирске?")
        .await;
    let sent = app.expect_sent(&bot, petr.id, 1).await;
    for answer in ["Доставка", "Деньги", "Мы работаем"] {
        assert!(!sent[0].text.starts_with(answer), "{sent:?}");
    }
}

/// Takes 600 ms per message (a model far slower than the real one), and encodes like
/// [`MoneyTopics`].
struct Slow;

impl switchboard_core::matcher::SentenceEncoder for Slow {
    fn encode(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        if texts.len() == 1 && texts[0].starts_with("how much") {
            std::thread::sleep(std::time::Duration::from_millis(600));
        }
        MoneyTopics.encode(texts)
    }
    fn name(&self) -> &str {
        "money-topics"
    }
}

/// A flood of messages while every core is busy encoding: the excess is matched
/// lexically after a short wait (`ENCODE_WAIT`) instead of queueing behind the model, each
/// message is still answered, and `/metrics` counts the ones that went without vectors.
/// An organization with one rule (the README's tour): a question on another subject is
/// handed over, not answered with that rule — with no second rule to lead, the lead is
/// measured against what other subjects score — while the rule's own question is
/// answered.
#[tokio::test]
async fn with_one_rule_the_default_model_hands_over_what_it_does_not_cover() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    app.telegram
        .caches
        .set_encoder(std::sync::Arc::from(default_model()));
    rule(
        &app,
        &t.token,
        json!({"title": "Hours", "answer": "We are open 9–18.",
               "examples": ["when are you open", "во сколько вы открыты"]}),
    )
    .await;
    let settings = app.get(&t.token, "/api/v1/settings").await.1;
    let anna = switchboard_testkit::FakeUser::new(3101, "Anna");
    app.say(&bot, &anna, "My parcel arrived broken").await;
    let sent = app.expect_sent(&bot, anna.id, 1).await;
    assert_eq!(
        sent[0].text,
        settings["handover_text"].as_str().unwrap(),
        "{sent:?}"
    );
    let bob = switchboard_testkit::FakeUser::new(3102, "Bob");
    app.say(&bot, &bob, "When are you open?").await;
    let sent = app.expect_sent(&bot, bob.id, 1).await;
    assert_eq!(sent[0].text, "We are open 9–18.");
}

#[tokio::test]
async fn messages_that_find_every_core_encoding_are_matched_lexically_not_queued() {
    let app = TestApp::start().await;
    let t = app.tenant("Bank").await;
    let bot = app.connect_bot(&t, "bank_bot").await;
    app.telegram.caches.set_encoder(std::sync::Arc::new(Slow));
    rule(
        &app,
        &t.token,
        json!({"title": "Balance", "answer": "Your balance is in the app, under Accounts.",
               "examples": ["what is my balance", "check my account balance"]}),
    )
    .await;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let users: Vec<_> = (0..cores * 3)
        .map(|i| switchboard_testkit::FakeUser::new(4000 + i as i64, "User"))
        .collect();
    futures::future::join_all(
        users
            .iter()
            .map(|u| app.say(&bot, u, "how much money do I have left")),
    )
    .await;
    let mut by_meaning = 0;
    for u in &users {
        let sent = app.expect_sent(&bot, u.id, 1).await;
        if sent[0].text == "Your balance is in the app, under Accounts." {
            by_meaning += 1;
        }
    }
    // The first ones (a core each) got their vectors and the answer; the rest did not
    // wait for theirs.
    assert!(by_meaning >= 1 && by_meaning < users.len(), "{by_meaning}");
    let metrics = app.metrics_text(None).await;
    let skipped = crate::harness::sample(&metrics, "switchboard_matcher_semantic_skipped_total")
        .unwrap_or_else(|| panic!("no skipped counter in:\n{metrics}"));
    assert_eq!(skipped as usize, users.len() - by_meaning, "{metrics}");
    assert!(metrics.contains("switchboard_matcher_encode_duration_seconds_count"));
}

/// Once a conversation is with people, what the user writes goes to the desk unmatched:
/// the engine does not spend the model's CPU on it (and does again once it is closed and
/// the bot answers).
#[tokio::test]
async fn messages_to_people_are_not_encoded() {
    use std::sync::atomic::Ordering::SeqCst;
    let app = TestApp::start().await;
    let t = app.tenant("Bank").await;
    let bot = app.connect_bot(&t, "bank_bot").await;
    let encoder = std::sync::Arc::new(Counting::default());
    app.telegram.caches.set_encoder(encoder.clone());
    rule(
        &app,
        &t.token,
        json!({"title": "Balance", "answer": "In the app, under Accounts.",
               "examples": ["what is my balance", "check my account balance"]}),
    )
    .await;
    let user = alice();
    app.say(&bot, &user, "how much money do I have left").await;
    let sent = app.expect_sent(&bot, user.id, 1).await;
    assert_eq!(sent[0].text, "In the app, under Accounts.");
    let after_bot = encoder.0.load(SeqCst);
    assert!(after_bot >= 1);
    app.say(&bot, &user, "/operator").await;
    app.expect_sent(&bot, user.id, 2).await;
    for text in ["hello?", "is anyone there", "my card was stolen"] {
        app.say(&bot, &user, text).await;
    }
    let (_, conv) = app
        .get(&t.token, "/api/v1/conversations?status=waiting")
        .await;
    assert_eq!(conv["items"].as_array().map(Vec::len), Some(1), "{conv}");
    assert_eq!(
        encoder.0.load(SeqCst),
        after_bot,
        "messages to people were encoded"
    );
    // Another user, with the bot: encoded.
    app.say(&bot, &bob(), "how much is left on my account")
        .await;
    app.expect_sent(&bot, bob().id, 1).await;
    assert!(encoder.0.load(SeqCst) > after_bot);
}
