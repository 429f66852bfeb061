//! The operator desk over HTTP: queue → claim → reply → user answers → close; races;
//! organizations never mixed; live events across replicas; files both ways; canned
//! responses; ratings.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use switchboard_core::Role;
use switchboard_testkit::{FailKind, FAKE_PHOTO};

use crate::harness::{alice, bob, TestApp, Web};

/// Waits for the conversation with `status` and returns its id.
async fn conversation_id(app: &TestApp, t: &crate::harness::Tenant, status: &str) -> String {
    app.conversation(t, status).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn delivery_status(
    app: &TestApp,
    t: &crate::harness::Tenant,
    conv: &str,
    text: &str,
) -> String {
    app.messages(t, conv)
        .await
        .iter()
        .rev()
        .find(|m| m["text"] == text)
        .map(|m| m["delivery_status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// The queue previews what the user last wrote, not a command or a button they pressed
/// after it.
#[tokio::test]
async fn the_queue_previews_the_last_words_not_a_command_or_a_press() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let op = app.member_web(&t, "op@acme.test", Role::Operator).await;
    app.say(&bot, &alice(), "My order arrived broken").await;
    app.expect_sent(&bot, alice().id, 1).await;
    app.say(&bot, &alice(), "/operator").await;
    app.eventually("the command stored", || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from messages where tenant_id = $1 and kind = 'command'",
        )
        .bind(t.id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
            == 1
    })
    .await;
    let desk = op.get("/desk").await;
    assert!(desk.has("My order arrived broken"), "{}", desk.body);
    assert!(!desk.has("/operator"), "{}", desk.body);
}

#[tokio::test]
async fn an_operator_works_a_conversation_from_handover_to_close() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let op = app.member_web(&t, "op@acme.test", Role::Operator).await;
    let user = alice();

    app.say(&bot, &user, "My order arrived broken").await;
    app.expect_sent(&bot, user.id, 1).await;
    let id = conversation_id(&app, &t, "waiting").await;

    // The queue shows it, with the navigation counter.
    let desk = op.get("/desk").await;
    assert_eq!(desk.status, StatusCode::OK);
    assert!(
        desk.has(&format!("/desk/t/{}/c/{id}", t.slug)),
        "{}",
        desk.body
    );
    assert!(desk.has("My order arrived broken"));
    assert!(desk
        .body
        .contains("id=\"nav-desk-waiting\" title=\"Waiting\">1</span>"));

    // The conversation page: history, handover reason, user card.
    let url = format!("/desk/t/{}/c/{id}", t.slug);
    let page = op.get(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has("No answer found"), "handover reason shown");
    assert!(page.has("Handed over to people"));
    assert!(page.has("id=\"act-claim\""));

    // Claim, then reply through the reply box.
    let claimed = op.hx_post(&format!("{url}/claim"), &[]).await;
    assert_eq!(claimed.status, StatusCode::OK);
    assert!(
        claimed.headers.get("x-sb-error").is_none(),
        "{}",
        claimed.body
    );
    assert!(claimed.has("took the conversation"));
    let sent = op
        .hx_multipart(
            &format!("{url}/send"),
            &[
                ("mode", "reply"),
                ("text", "Sorry! We will send a new one."),
            ],
            None,
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert!(sent.headers.get("x-sb-error").is_none(), "{}", sent.body);
    let got = app.expect_sent(&bot, user.id, 2).await;
    assert_eq!(got[1].text, "Sorry! We will send a new one.");
    app.eventually("the reply is marked delivered", || async {
        delivery_status(&app, &t, &id, "Sorry! We will send a new one.").await == "sent"
    })
    .await;
    let live = op.get(&format!("{url}/live")).await;
    assert!(live.has("Delivered"), "{}", live.body);

    // An internal note is stored but never sent.
    let noted = op
        .hx_multipart(
            &format!("{url}/send"),
            &[("mode", "note"), ("text", "VIP customer")],
            None,
        )
        .await;
    assert!(noted.has("VIP customer") && noted.has("Internal note"));
    // An empty reply changes nothing and says why.
    let empty = op
        .hx_multipart(
            &format!("{url}/send"),
            &[("mode", "reply"), ("text", "  ")],
            None,
        )
        .await;
    assert_eq!(empty.headers.get("x-sb-error").unwrap(), "1");
    assert!(empty.has("Write something first."));

    // The user answers: same conversation.
    app.say(&bot, &user, "Thank you!").await;
    app.eventually("the answer joins the conversation", || async {
        op.get(&format!("{url}/live")).await.has("Thank you!")
    })
    .await;
    assert_eq!(
        app.tg.sent_to(&bot, user.id).len(),
        2,
        "the bot stays silent"
    );
    assert_eq!(conversation_id(&app, &t, "assigned").await, id);

    // Close with a resolution: the closing text goes out, the next message goes to the bot.
    let closed = op
        .hx_post(
            &format!("{url}/close"),
            &[("resolution", "Replacement shipped")],
        )
        .await;
    assert!(
        closed.headers.get("x-sb-error").is_none(),
        "{}",
        closed.body
    );
    assert!(closed.has("Closed by"));
    assert!(closed.has("id=\"act-reopen\""));
    let settings = app.get(&t.token, "/api/v1/settings").await.1;
    let got = app.expect_sent(&bot, user.id, 3).await;
    assert_eq!(got[2].text, settings["closing_text"].as_str().unwrap());
    let (_, c) = app
        .get(&t.token, &format!("/api/v1/conversations/{id}"))
        .await;
    assert_eq!(c["status"], "closed");
    app.say(&bot, &user, "One more question").await;
    app.expect_sent(&bot, user.id, 4).await;
    let next = conversation_id(&app, &t, "waiting").await;
    assert_ne!(next, id, "a new conversation");
    // Which shows the earlier one collapsed, and the closed tab finds the old one.
    let page = op.get(&format!("/desk/t/{}/c/{next}", t.slug)).await;
    assert!(page.has(&format!("/desk/t/{}/c/{id}/transcript", t.slug)));
    let transcript = op.get(&format!("{url}/transcript")).await;
    assert!(transcript.has("Sorry! We will send a new one."));
    let closed_tab = op.get("/desk?tab=closed&q=broken").await;
    assert!(closed_tab.has(&format!("/c/{id}")), "{}", closed_tab.body);
    let miss = op.get("/desk?tab=closed&q=nothing-like-this").await;
    assert!(!miss.has(&format!("/c/{id}")));

    // Reopening a closed conversation while the user has a new one is refused clearly.
    let reopen = op.hx_post(&format!("{url}/reopen"), &[]).await;
    assert_eq!(reopen.headers.get("x-sb-error").unwrap(), "1");
    assert!(reopen.has("started a new conversation"));
}

#[tokio::test]
async fn two_operators_claiming_at_once_exactly_one_wins() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let a = app.member_web(&t, "a@acme.test", Role::Operator).await;
    let b = app.member_web(&t, "b@acme.test", Role::Operator).await;
    let user = alice();
    app.say(&bot, &user, "help me please with something odd")
        .await;
    let id = conversation_id(&app, &t, "waiting").await;
    let url = format!("/desk/t/{}/c/{id}/claim", t.slug);
    a.get("/desk").await;
    b.get("/desk").await;
    let (ra, rb) = tokio::join!(a.hx_post(&url, &[]), b.hx_post(&url, &[]));
    let errors = [&ra, &rb]
        .iter()
        .filter(|r| r.headers.get("x-sb-error").is_some())
        .count();
    assert_eq!(errors, 1, "exactly one claim is refused");
    let loser = if ra.headers.get("x-sb-error").is_some() {
        &ra
    } else {
        &rb
    };
    assert!(
        loser.has("Another operator has taken this conversation."),
        "{}",
        loser.body
    );
    let claims: i64 = sqlx::query_scalar(
        "select count(*) from events where tenant_id = $1 and kind = 'conversation.claimed'",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(claims, 1);
    // The loser cannot reply into it either; the winner sees it under "mine".
    let winner_is_a = rb.headers.get("x-sb-error").is_some();
    let (winner, other) = if winner_is_a { (&a, &b) } else { (&b, &a) };
    let reply = other
        .hx_multipart(
            &format!("/desk/t/{}/c/{id}/send", t.slug),
            &[("text", "me too")],
            None,
        )
        .await;
    assert_eq!(reply.headers.get("x-sb-error").unwrap(), "1");
    assert!(winner.get("/desk?tab=mine").await.has(&format!("/c/{id}")));
    assert!(!other.get("/desk?tab=mine").await.has(&format!("/c/{id}")));
    // Operators do not see the "others" tab; admins do, and can reassign.
    assert!(!other.get("/desk").await.has("id=\"tab-others\""));
    let admin = app.member_web(&t, "boss@acme.test", Role::Admin).await;
    let others = admin.get("/desk?tab=others").await;
    assert!(others.has(&format!("/c/{id}")));
    let loser_id: uuid::Uuid = sqlx::query_scalar("select id from users where email = $1")
        .bind(if winner_is_a {
            "b@acme.test"
        } else {
            "a@acme.test"
        })
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let assigned = admin
        .hx_post(
            &format!("/desk/t/{}/c/{id}/assign", t.slug),
            &[("user_id", &loser_id.to_string())],
        )
        .await;
    assert!(
        assigned.headers.get("x-sb-error").is_none(),
        "{}",
        assigned.body
    );
    assert!(other.get("/desk?tab=mine").await.has(&format!("/c/{id}")));
    // An operator cannot assign.
    let denied = other
        .hx_post(
            &format!("/desk/t/{}/c/{id}/assign", t.slug),
            &[("user_id", &loser_id.to_string())],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn operators_of_several_organizations_see_each_labelled_and_others_see_only_theirs() {
    let app = TestApp::start().await;
    let a = app.tenant("Alpha Shop").await;
    let b = app.tenant("Beta Bank").await;
    let bot_a = app.connect_bot(&a, "alpha_bot").await;
    let bot_b = app.connect_bot(&b, "beta_bot").await;
    let both = app.member_web(&a, "both@ops.test", Role::Operator).await;
    let both_id: uuid::Uuid =
        sqlx::query_scalar("select id from users where email = 'both@ops.test'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    switchboard_db::platform::add_member(
        &app.db.pool,
        b.id,
        switchboard_core::UserId(both_id),
        Role::Operator,
    )
    .await
    .unwrap();
    let only_a = app.member_web(&a, "only@alpha.test", Role::Operator).await;

    app.say(&bot_a, &alice(), "Alpha question nobody answers")
        .await;
    app.say(&bot_b, &bob(), "Beta question nobody answers")
        .await;
    let conv_a = conversation_id(&app, &a, "waiting").await;
    let conv_b = conversation_id(&app, &b, "waiting").await;

    let desk = both.get("/desk").await;
    assert!(
        desk.has("Alpha question") && desk.has("Beta question"),
        "{}",
        desk.body
    );
    assert!(desk.has("data-tenant-label>Alpha Shop<") && desk.has("data-tenant-label>Beta Bank<"));
    assert!(desk.body.contains("title=\"Waiting\">2</span>"));
    // The organization filter.
    let filtered = both.get(&format!("/desk?tenant={}", b.slug)).await;
    assert!(filtered.has("Beta question") && !filtered.has("Alpha question"));
    assert!(
        both.get(&format!("/desk/t/{}/c/{conv_b}", b.slug))
            .await
            .status
            == StatusCode::OK
    );

    let mine = only_a.get("/desk").await;
    assert!(mine.has("Alpha question"));
    assert!(
        !mine.has("Beta question") && !mine.has("Beta Bank"),
        "{}",
        mine.body
    );
    assert!(
        !mine.has("data-tenant-label"),
        "one organization: no labels"
    );
    // Naming the other organization in the filter shows nothing of it.
    let sneaky = only_a.get(&format!("/desk?tenant={}", b.slug)).await;
    assert!(!sneaky.has("Beta question"));
    // Every route of the other organization's conversation is a 404, and changes nothing.
    let base = format!("/desk/t/{}/c/{conv_b}", b.slug);
    for path in [
        base.clone(),
        format!("{base}/live"),
        format!("{base}/transcript"),
        format!("/desk/t/{}/files/1", b.slug),
    ] {
        assert_eq!(
            only_a.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    for action in ["claim", "release", "close", "reopen"] {
        let r = only_a.hx_post(&format!("{base}/{action}"), &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
    }
    let r = only_a
        .hx_multipart(&format!("{base}/send"), &[("text", "hi")], None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The conversation of B through A's slug is not found either.
    let crossed = only_a.get(&format!("/desk/t/{}/c/{conv_b}", a.slug)).await;
    assert_eq!(crossed.status, StatusCode::NOT_FOUND);
    assert_eq!(
        conversation_id(&app, &b, "waiting").await,
        conv_b,
        "B untouched"
    );
    assert!(app
        .messages(&b, &conv_b)
        .await
        .iter()
        .all(|m| m["sender"] != "operator"));
    let _ = conv_a;
}

/// Reads Server-Sent Events from a response until `want` matches one (or the deadline).
async fn next_event(
    resp: &mut reqwest::Response,
    buf: &mut String,
    deadline: Duration,
) -> Option<(String, String)> {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim());
                }
            }
            if data.is_empty() && event == "message" {
                continue; // a keep-alive comment
            }
            return Some((event, data));
        }
        match tokio::time::timeout_at(until, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => buf.push_str(&String::from_utf8_lossy(&chunk)),
            _ => return None,
        }
    }
}

async fn subscribe(web: &Web) -> (reqwest::Response, String) {
    let mut resp = web
        .client
        .get(format!("{}/desk/events", web.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut buf = String::new();
    let first = next_event(&mut resp, &mut buf, Duration::from_secs(10)).await;
    assert_eq!(first.map(|e| e.0).as_deref(), Some("ready"));
    (resp, buf)
}

#[tokio::test]
async fn live_events_reach_a_desk_connected_to_another_replica_and_only_its_members() {
    let app = TestApp::start().await;
    let replica = app.replica().await;
    let a = app.tenant("Acme").await;
    let b = app.tenant("Other").await;
    let bot_a = app.connect_bot(&a, "acme_bot").await;
    let bot_b = app.connect_bot(&b, "other_bot").await;
    let op_a = app.member_web(&a, "op@acme.test", Role::Operator).await;
    let op_b = app.member_web(&b, "op@other.test", Role::Operator).await;

    // Both desks are connected to the replica; the update arrives at the first process.
    let (mut stream_a, mut buf_a) = subscribe(&op_a.at(&replica.base)).await;
    let (mut stream_b, mut buf_b) = subscribe(&op_b.at(&replica.base)).await;
    app.say(&bot_a, &alice(), "Something no rule covers").await;
    let id_a = conversation_id(&app, &a, "waiting").await;
    let (event, data) = loop {
        let e = next_event(&mut stream_a, &mut buf_a, Duration::from_secs(10))
            .await
            .expect("an event within 10 s");
        if e.0 == "desk" {
            break e;
        }
    };
    assert_eq!(event, "desk");
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["conversation_id"], id_a.as_str());
    assert_eq!(data["tenant_id"], a.id.to_string());
    assert_eq!(data["event"], "handover");

    // The other organization's operator hears nothing of it — only their own.
    app.say(&bot_b, &bob(), "Another thing nobody answers")
        .await;
    let id_b = conversation_id(&app, &b, "waiting").await;
    let first_b = loop {
        let e = next_event(&mut stream_b, &mut buf_b, Duration::from_secs(10))
            .await
            .expect("an event within 10 s");
        if e.0 == "desk" {
            break e.1;
        }
    };
    let first_b: serde_json::Value = serde_json::from_str(&first_b).unwrap();
    assert_eq!(
        first_b["conversation_id"],
        id_b.as_str(),
        "B's desk never sees A's event"
    );

    // A follow-up message in A's conversation reaches A's desk as "inbound".
    app.say(&bot_a, &alice(), "Are you there?").await;
    // (Before it, the handover text's delivery was announced too.)
    let next = loop {
        let e = next_event(&mut stream_a, &mut buf_a, Duration::from_secs(10))
            .await
            .expect("an event within 10 s");
        let data: serde_json::Value = serde_json::from_str(&e.1).unwrap_or_default();
        if e.0 == "desk" && data["event"] != "delivery" {
            break data;
        }
    };
    assert_eq!(next["event"], "inbound");
    assert_eq!(next["conversation_id"], id_a.as_str());

    // Not signed in: no stream.
    let anonymous = app.web().at(&replica.base).get("/desk/events").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn files_are_shown_and_downloaded_through_the_bot_and_operators_send_files() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let op = app.member_web(&t, "op@acme.test", Role::Operator).await;
    let user = alice();
    app.tg.send_photo(&bot, &user, Some("the damage")).await;
    let id = conversation_id(&app, &t, "waiting").await;
    app.tg
        .send_document(&bot, &user, "invoice.pdf", 12345)
        .await;
    app.tg.send_voice(&bot, &user, 7).await;
    app.eventually("three media messages", || async {
        app.messages(&t, &id)
            .await
            .iter()
            .filter(|m| m["direction"] == "in")
            .count()
            == 3
    })
    .await;
    let messages = app.messages(&t, &id).await;
    let photo = messages.iter().find(|m| m["kind"] == "photo").unwrap()["id"]
        .as_i64()
        .unwrap();
    let voice = messages.iter().find(|m| m["kind"] == "voice").unwrap()["id"]
        .as_i64()
        .unwrap();

    let url = format!("/desk/t/{}/c/{id}", t.slug);
    let page = op.get(&url).await;
    assert!(
        page.has(&format!(
            "<img class=\"desk-image\" src=\"/desk/t/{}/files/{photo}\"",
            t.slug
        )),
        "{}",
        page.body
    );
    assert!(page.has("the damage"));
    assert!(page.has("invoice.pdf") && page.has("12.1 KB"));
    assert!(page.has(&format!(
        "<audio controls preload=\"none\" src=\"/desk/t/{}/files/{voice}\"",
        t.slug
    )));
    assert!(page.has("Voice message"));

    // The photo comes through the bot (getFile + download).
    let resp = op
        .client
        .get(format!("{}/desk/t/{}/files/{photo}", op.base, t.slug))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert!(resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), FAKE_PHOTO);
    assert!(!app.tg.calls_of("getFile").is_empty());
    // A document is offered as a download, never shown in the page.
    let doc = messages.iter().find(|m| m["kind"] == "document").unwrap()["id"]
        .as_i64()
        .unwrap();
    let resp = op
        .client
        .get(format!("{}/desk/t/{}/files/{doc}", op.base, t.slug))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"invoice.pdf\""));

    // The operator answers with an image and a PDF: sendPhoto and sendDocument uploads.
    let sent = op
        .hx_multipart(
            &format!("{url}/send"),
            &[("text", "Like this one?")],
            Some(("sample.png", "image/png", FAKE_PHOTO.to_vec())),
        )
        .await;
    assert!(sent.headers.get("x-sb-error").is_none(), "{}", sent.body);
    let pdf = b"%PDF-1.4 fake".to_vec();
    op.hx_multipart(
        &format!("{url}/send"),
        &[("text", "")],
        Some(("terms.pdf", "application/pdf", pdf.clone())),
    )
    .await;
    let got = app.expect_sent(&bot, user.id, 3).await;
    let files: Vec<_> = got.iter().filter_map(|m| m.file.clone()).collect();
    assert_eq!(
        files,
        [
            (
                "photo".to_string(),
                "sample.png".to_string(),
                FAKE_PHOTO.len()
            ),
            ("document".to_string(), "terms.pdf".to_string(), pdf.len()),
        ]
    );
    assert!(got.iter().any(|m| m.text == "Like this one?"));
    // The desk shows them, and serves the operator's own copy.
    app.eventually("both uploads delivered", || async {
        app.messages(&t, &id)
            .await
            .iter()
            .filter(|m| m["sender"] == "operator" && m["delivery_status"] == "sent")
            .count()
            == 2
    })
    .await;
    let out = app
        .messages(&t, &id)
        .await
        .into_iter()
        .find(|m| m["kind"] == "document" && m["direction"] == "out")
        .unwrap();
    let resp = op
        .client
        .get(format!("{}/desk/t/{}/files/{}", op.base, t.slug, out["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), pdf.as_slice());
    // A caption over Telegram's limit is refused and nothing is stored.
    let long = "x".repeat(1100);
    let refused = op
        .hx_multipart(
            &format!("{url}/send"),
            &[("text", &long)],
            Some(("a.png", "image/png", FAKE_PHOTO.to_vec())),
        )
        .await;
    assert!(refused.has("1024"));
    assert_eq!(
        app.messages(&t, &id)
            .await
            .iter()
            .filter(|m| m["sender"] == "operator")
            .count(),
        2
    );
}

#[tokio::test]
async fn failed_deliveries_are_visible_and_can_be_retried_and_blocked_users_are_marked() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let op = app.member_web(&t, "op@acme.test", Role::Operator).await;
    let user = alice();
    app.say(&bot, &user, "A question for a person").await;
    let id = conversation_id(&app, &t, "waiting").await;
    let url = format!("/desk/t/{}/c/{id}", t.slug);
    app.expect_sent(&bot, user.id, 1).await;

    app.tg.fail(
        "sendMessage",
        1,
        FailKind::Api {
            code: 400,
            description: "Bad Request: message is too long".into(),
        },
    );
    op.get(&url).await;
    op.hx_multipart(&format!("{url}/send"), &[("text", "First try")], None)
        .await;
    app.eventually("the reply fails", || async {
        delivery_status(&app, &t, &id, "First try").await == "failed"
    })
    .await;
    let live = op.get(&format!("{url}/live")).await;
    assert!(
        live.has("Not delivered") && live.has("message is too long"),
        "{}",
        live.body
    );
    assert!(live.has("data-retry"));
    let mid = app
        .messages(&t, &id)
        .await
        .into_iter()
        .find(|m| m["text"] == "First try")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let retried = op
        .hx_post(&format!("{url}/messages/{mid}/retry"), &[])
        .await;
    assert!(
        retried.headers.get("x-sb-error").is_none(),
        "{}",
        retried.body
    );
    app.eventually("the retry is delivered", || async {
        delivery_status(&app, &t, &id, "First try").await == "sent"
    })
    .await;
    // Retrying a delivered message is refused.
    let again = op
        .hx_post(&format!("{url}/messages/{mid}/retry"), &[])
        .await;
    assert!(again.has("Only undelivered messages"));

    // HTML we can tell is broken is refused before it is stored, as on the desk.
    let (s, body) = app
        .post(
            &t.token,
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"text": "1 < 2 <b>bold", "parse_mode": "HTML"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "text");
    // Markup Telegram cannot parse goes out as plain text instead of failing.
    let (s, _) = app
        .post(
            &t.token,
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"text": "1 < 2. Done!", "parse_mode": "MarkdownV2"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    app.eventually("sent as plain text", || async {
        delivery_status(&app, &t, &id, "1 < 2. Done!").await == "sent"
    })
    .await;
    let plain = app
        .tg
        .sent_to(&bot, user.id)
        .into_iter()
        .find(|m| m.text == "1 < 2. Done!")
        .unwrap();
    assert_eq!(plain.parse_mode, None);

    // The user blocks the bot: the desk shows it.
    app.tg.block(&bot, user.id);
    op.hx_multipart(&format!("{url}/send"), &[("text", "Hello?")], None)
        .await;
    app.eventually("blocked is shown", || async {
        let live = op.get(&format!("{url}/live")).await;
        live.has("id=\"conv-blocked\"") && live.has("The user blocked the bot")
    })
    .await;
    assert!(op.get("/desk?tab=mine").await.has(">blocked</span>"));
}

#[tokio::test]
async fn canned_responses_are_managed_by_admins_and_offered_in_the_reply_box() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let admin = app.owner_web(&t).await;
    let op = app.member_web(&t, "op@acme.test", Role::Operator).await;

    let r = admin
        .submit(
            &format!("/t/{}/canned", t.slug),
            &format!("/t/{}/canned", t.slug),
            &[
                ("shortcut", "/Hello"),
                ("title", "Greeting"),
                ("text", "Hello! How can I help?"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // Duplicate shortcut: a clear error, nothing added.
    let dup = admin
        .post(
            &format!("/t/{}/canned", t.slug),
            &[("shortcut", "hello"), ("title", "Again"), ("text", "x")],
        )
        .await;
    assert_eq!(dup.status, StatusCode::OK);
    assert!(dup.has("already used"));
    let bad = admin
        .post(
            &format!("/t/{}/canned", t.slug),
            &[("shortcut", "hi there"), ("title", ""), ("text", "")],
        )
        .await;
    assert!(bad.has("is-invalid"));
    let (_, list) = app.get(&t.token, "/api/v1/canned-responses").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["shortcut"], "hello");

    // Operators read but do not manage.
    let page = op.get(&format!("/t/{}/canned", t.slug)).await;
    assert!(page.has("/hello") && !page.has("id=\"save-canned\""));
    let denied = op
        .post(
            &format!("/t/{}/canned", t.slug),
            &[("shortcut", "x"), ("title", "X"), ("text", "x")],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    // The reply box carries them.
    app.say(&bot, &alice(), "Need a human here").await;
    let id = conversation_id(&app, &t, "waiting").await;
    let desk = op.get(&format!("/desk/t/{}/c/{id}", t.slug)).await;
    assert!(desk.has("\"shortcut\":\"hello\""), "{}", desk.body);

    // The API: CRUD, validation, and another organization's token sees none of it.
    let (s, created) = app
        .post(
            &t.token,
            "/api/v1/canned-responses",
            json!({"shortcut": "bye", "title": "Bye", "text": "Goodbye!"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let cid = created["id"].as_str().unwrap();
    let (s, e) = app
        .post(
            &t.token,
            "/api/v1/canned-responses",
            json!({"shortcut": "bye", "title": "B", "text": "B"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let path = format!("/api/v1/canned-responses/{cid}");
    assert_eq!(app.get(&other.token, &path).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.put(
            &other.token,
            &path,
            json!({"shortcut": "x", "title": "x", "text": "x"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&other.token, &path).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&other.token, "/api/v1/canned-responses").await.1["items"],
        json!([])
    );
    let (s, updated) = app
        .put(
            &t.token,
            &path,
            json!({"shortcut": "bye", "title": "Farewell", "text": "Bye now!"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(updated["title"], "Farewell");
    assert_eq!(app.delete(&t.token, &path).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&t.token, &path).await.0, StatusCode::NOT_FOUND);
    // Another organization's members cannot open the page.
    let stranger = app.owner_web(&other).await;
    assert_eq!(
        stranger.get(&format!("/t/{}/canned", t.slug)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn after_closing_the_bot_asks_for_a_rating_and_stores_it() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let (s, body) = app
        .patch(
            &t.token,
            "/api/v1/settings",
            json!({"rating_enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let op = app.member_web(&t, "op@acme.test", Role::Operator).await;
    let user = alice();
    app.say(&bot, &user, "Please help with the thing").await;
    let id = conversation_id(&app, &t, "waiting").await;
    let url = format!("/desk/t/{}/c/{id}", t.slug);
    op.get(&url).await;
    op.hx_post(&format!("{url}/close"), &[]).await;
    let got = app.expect_sent(&bot, user.id, 3).await;
    let ask = &got[2];
    let labels: Vec<String> = ask.buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels.len(), 5, "{labels:?}");
    let five = ask.buttons()[4].1["callback_data"]
        .as_str()
        .unwrap()
        .to_string();
    app.tg.press(&bot, &user, &five, ask.message_id).await;
    app.eventually("the rating is stored", || async {
        let r: Option<i16> =
            sqlx::query_scalar("select rating from conversations where id = $1::uuid")
                .bind(&id)
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
        r == Some(5)
    })
    .await;
    let live = op.get(&format!("{url}/live")).await;
    assert!(live.has("rated the help: 5 of 5"), "{}", live.body);
    let dashboard = app.owner_web(&t).await.get(&format!("/t/{}", t.slug)).await;
    assert!(
        dashboard.has("rated the help 5.0 of 5"),
        "{}",
        dashboard.body
    );
    // Pressing again does not change it or open anything.
    app.tg
        .press(
            &bot,
            &user,
            ask.buttons()[0].1["callback_data"].as_str().unwrap(),
            ask.message_id,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r: Option<i16> = sqlx::query_scalar("select rating from conversations where id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(r, Some(5));
}

#[tokio::test]
async fn the_api_covers_notes_files_and_user_cards_and_keeps_organizations_apart() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    let user = alice();
    app.tg.send_photo(&bot, &user, None).await;
    let conv = app.conversation(&t, "waiting").await;
    let id = conv["id"].as_str().unwrap().to_string();
    let end_user = conv["user"]["id"].as_str().unwrap().to_string();

    // Notes.
    let notes = format!("/api/v1/conversations/{id}/notes");
    let (s, _) = app
        .post(&t.token, &notes, json!({"text": "Check the order"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, e) = app.post(&t.token, &notes, json!({"text": "   "})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (_, list) = app.get(&t.token, &notes).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["text"], "Check the order");
    assert!(app
        .tg
        .sent_to(&bot, user.id)
        .iter()
        .all(|m| m.text != "Check the order"));

    // The user's card and notes.
    let card = format!("/api/v1/end-users/{end_user}");
    let (s, c) = app
        .patch(&t.token, &card, json!({"notes": "Prefers Russian"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["notes"], "Prefers Russian");
    assert_eq!(c["conversations"], 1);

    // The user's photo, through the bot.
    let photo = app.messages(&t, &id).await[0]["id"].as_i64().unwrap();
    let file = format!("/api/v1/conversations/{id}/messages/{photo}/file");
    let resp = app
        .http
        .get(format!("{}{file}", app.base))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), FAKE_PHOTO);

    // A file to the user.
    let form = reqwest::multipart::Form::new()
        .text("caption", "Our price list")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"a,b\n1,2\n".to_vec())
                .file_name("prices.csv")
                .mime_str("text/csv")
                .unwrap(),
        );
    let resp = app
        .http
        .post(format!("{}/api/v1/conversations/{id}/files", app.base))
        .bearer_auth(&t.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["kind"], "document");
    let sent = app.expect_sent(&bot, user.id, 2).await;
    assert_eq!(
        sent[1].file,
        Some(("document".to_string(), "prices.csv".to_string(), 8))
    );
    assert_eq!(sent[1].text, "Our price list");
    // Without a file: a clear error, nothing stored.
    let resp = app
        .http
        .post(format!("{}/api/v1/conversations/{id}/files", app.base))
        .bearer_auth(&t.token)
        .multipart(reqwest::multipart::Form::new().text("caption", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Another organization's token: 404 everywhere, nothing changed.
    assert_eq!(app.get(&other.token, &notes).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.post(&other.token, &notes, json!({"text": "x"})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&other.token, &card).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.patch(&other.token, &card, json!({"notes": "x"}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let resp = app
        .http
        .get(format!("{}{file}", app.base))
        .bearer_auth(&other.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .http
        .post(format!("{}/api/v1/conversations/{id}/files", app.base))
        .bearer_auth(&other.token)
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x.txt"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&t.token, &notes).await.1["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(app.get(&t.token, &card).await.1["notes"], "Prefers Russian");
    assert_eq!(app.tg.sent_to(&bot, user.id).len(), 2);
}

#[tokio::test]
async fn open_live_streams_do_not_hold_up_a_graceful_shutdown() {
    let mut app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let op = app.member_web(&t, "op@acme.test", Role::Operator).await;
    let (mut stream, mut buf) = subscribe(&op).await;
    assert!(
        app.stop_within(Duration::from_secs(10)).await,
        "the server finished while a desk was connected"
    );
    // The stream has ended (the browser would reconnect elsewhere).
    let mut ended = false;
    for _ in 0..5 {
        match tokio::time::timeout(Duration::from_secs(2), stream.chunk()).await {
            Ok(Ok(None)) | Ok(Err(_)) => {
                ended = true;
                break;
            }
            Ok(Ok(Some(c))) => buf.push_str(&String::from_utf8_lossy(&c)),
            Err(_) => break,
        }
    }
    assert!(ended, "the event stream was closed: {buf}");
}

/// Reads a stream until it ends (true) or the time is up (false).
async fn ends_within(resp: &mut reqwest::Response, limit: Duration) -> bool {
    let until = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(until, resp.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) | Ok(Err(_)) => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn live_streams_end_at_sign_out_and_removal_from_the_team() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    app.connect_bot(&t, "acme_bot").await;
    // Signing out ends this session's stream at once; another session of the same
    // person keeps its own.
    let op = app.member_web(&t, "op@acme.test", Role::Operator).await;
    let same_person_elsewhere = app.sign_in("op@acme.test", "password123").await;
    let (mut stream, _) = subscribe(&op).await;
    let (mut other, _) = subscribe(&same_person_elsewhere).await;
    let started = std::time::Instant::now();
    op.post("/logout", &[]).await;
    assert!(
        ends_within(&mut stream, Duration::from_secs(5)).await,
        "the stream outlived its sign-out"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        !ends_within(&mut other, Duration::from_millis(1500)).await,
        "another session's stream must stay"
    );

    // Removed from the team: every stream of theirs ends at once.
    let owner = app.owner_web(&t).await;
    let user: uuid::Uuid = sqlx::query_scalar("select id from users where email = 'op@acme.test'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let r = owner
        .submit(
            &format!("/t/{}/team", t.slug),
            &format!("/t/{}/team/{user}/remove", t.slug),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        ends_within(&mut other, Duration::from_secs(5)).await,
        "a removed member kept receiving"
    );
    // And they cannot open a new one for the organization's events.
    let again = same_person_elsewhere.get("/desk").await;
    assert!(!again.has("acme_bot"), "no desk of Acme any more");
}

/// Headers built from what people send never carry their line breaks or quotes: a file
/// name with CR/LF is refused at the upload, one that tries to close the quoted name and
/// add its own comes back as one safe Content-Disposition.
#[tokio::test]
async fn a_file_name_cannot_write_headers() {
    let app = TestApp::start().await;
    let t = app.tenant("Acme").await;
    let bot = app.connect_bot(&t, "acme_bot").await;
    app.say(&bot, &alice(), "/operator").await;
    let conv = app.conversation(&t, "waiting").await;
    let id = conv["id"].as_str().unwrap();
    let upload = |name: &str| {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"a,b\n".to_vec())
                .file_name(name.to_string())
                .mime_str("text/csv")
                .unwrap(),
        );
        app.http
            .post(format!("{}/api/v1/conversations/{id}/files", app.base))
            .bearer_auth(&t.token)
            .multipart(form)
            .send()
    };
    let resp = upload("price\r\nSet-Cookie: stolen=1\r\n.csv")
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let files: i64 = sqlx::query_scalar("select count(*) from messages where kind = 'document'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(files, 0, "a refused upload stores nothing");

    let resp = upload("list.csv\"; filename=\"evil.html").await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = resp.json().await.unwrap();
    let mid = body["id"].as_i64().unwrap();
    let resp = app
        .http
        .get(format!(
            "{}/api/v1/conversations/{id}/messages/{mid}/file",
            app.base
        ))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("set-cookie").is_none());
    let disposition = resp.headers()["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert_eq!(disposition.matches('"').count(), 2, "{disposition}");
    assert_eq!(disposition.matches("filename=").count(), 1, "{disposition}");
}

/// The desk's search on a tenant with a history: a common name fills a page from the
/// newest conversations, a word of the messages is found by its forms (full text), a
/// rare name deep in the history is found through the index, and every hit matches.
#[tokio::test]
async fn the_desk_search_finds_names_and_words_in_a_long_history() {
    let app = TestApp::start().await;
    let t = app.tenant("Big Co").await;
    let spec = switchboard_db::seed::SeedSpec {
        conversations: 3000,
        messages: 9000,
        operators: 3,
        days: 90,
    };
    let seeded = switchboard_db::seed::seed(&app.db.pool, t.id, spec, |_| {})
        .await
        .unwrap();
    assert_eq!(seeded.conversations, 3000);
    // One person, once, long ago.
    sqlx::query(
        "update end_users set first_name = 'Евлампия', last_name = 'Рудольфовна'
         where id = (select end_user_id from conversations where tenant_id = $1
                     and status = 'closed' order by opened_at limit 1)",
    )
    .bind(t.id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let owner = app.owner_web(&t).await;
    let rows = |body: &str| body.matches("data-conversation=\"").count();

    let common = owner
        .get("/desk/queue?tab=closed&q=%D0%9C%D0%B0%D1%80%D0%B8%D1%8F")
        .await;
    assert!(common.status.is_success());
    assert_eq!(rows(&common.body), 100, "a full page of Marias");
    assert!(
        common.body.matches("Мария").count() >= 100,
        "every row is a Maria"
    );
    // "посылку" finds "где моя посылка" (Russian word forms).
    let word = owner
        .get("/desk/queue?tab=closed&q=%D0%BF%D0%BE%D1%81%D1%8B%D0%BB%D0%BA%D1%83")
        .await;
    assert!(rows(&word.body) > 0, "{}", word.body);
    // The start of a word, as it is being typed, finds it too; a stop word alone, nothing.
    let typed = owner
        .get("/desk/queue?tab=closed&q=%D0%BF%D0%BE%D1%81%D1%8B%D0%BB")
        .await;
    assert!(rows(&typed.body) > 0, "{}", typed.body);
    let stop = owner.get("/desk/queue?tab=closed&q=%D0%B8").await;
    assert!(stop.status.is_success());
    // A rare name from the start of the history.
    let rare = owner
        .get("/desk/queue?tab=closed&q=%D0%95%D0%B2%D0%BB%D0%B0%D0%BC%D0%BF")
        .await;
    let hers: i64 = sqlx::query_scalar(
        "select count(*) from conversations c join end_users u
           on u.tenant_id = c.tenant_id and u.id = c.end_user_id
         where c.tenant_id = $1 and c.status = 'closed' and u.first_name = 'Евлампия'",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(hers >= 1);
    assert_eq!(rows(&rare.body) as i64, hers, "{}", rare.body);
    assert_eq!(
        rare.body.matches("Рудольфовна").count() as i64,
        hers,
        "only her conversations"
    );
    let none = owner.get("/desk/queue?tab=closed&q=zzyzx").await;
    assert_eq!(rows(&none.body), 0);
    assert!(!none.has("found-elsewhere"), "found nowhere: no links");
    // Searched on a tab where she is not, the desk says where she is.
    let mine = owner
        .get("/desk/queue?tab=mine&q=%D0%95%D0%B2%D0%BB%D0%B0%D0%BC%D0%BF")
        .await;
    assert_eq!(rows(&mine.body), 0);
    assert!(mine.has("Nothing found here"), "{}", mine.body);
    assert!(mine.has(r#"data-found-in="closed""#), "{}", mine.body);
    // The waiting tab searches its own conversations only.
    let waiting = owner
        .get("/desk/queue?tab=waiting&q=%D0%9C%D0%B0%D1%80%D0%B8%D1%8F")
        .await;
    let waiting_rows = rows(&waiting.body);
    let expected: i64 = sqlx::query_scalar(
        "select count(*) from conversations c join end_users u
           on u.tenant_id = c.tenant_id and u.id = c.end_user_id
         where c.tenant_id = $1 and c.status = 'waiting' and u.first_name = 'Мария'",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(waiting_rows as i64, expected.min(100));
    // A word on the Waiting tab: every waiting conversation with it, though the closed
    // ones hold most of the matching messages.
    let waiting = owner
        .get("/desk/queue?tab=waiting&q=%D0%BF%D0%BE%D1%81%D1%8B%D0%BB")
        .await;
    let expected: i64 = sqlx::query_scalar(
        "select count(*) from conversations c
         where c.tenant_id = $1 and c.status = 'waiting'
           and exists (select 1 from messages m where m.tenant_id = c.tenant_id
                       and m.conversation_id = c.id
                       and m.search @@ to_tsquery('russian', 'посыл:*'))",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(expected > 0);
    assert_eq!(
        rows(&waiting.body) as i64,
        expected.min(100),
        "{}",
        waiting.body
    );
}
