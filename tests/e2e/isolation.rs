//! Tenant isolation: another organization's bot, rules, menus, commands and
//! conversations are invisible (404) and untouchable.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{alice, Tenant, TestApp};

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

/// Every operation of the API document that names an object, called by another
/// organization's owner with this organization's ids: 404 each time, and nothing
/// changes. Every list the other organization reads holds none of these ids. Walking the
/// document means a new endpoint is covered the day it is added.
#[tokio::test]
async fn every_operation_of_the_api_refuses_another_tenants_ids() {
    let app = TestApp::start().await;
    let a = app.tenant("Acme").await;
    let b = app.tenant("Beta").await;
    let bot = app.connect_bot(&a, "acme_bot").await;
    let id_of = |v: &serde_json::Value| v["id"].as_str().unwrap().to_string();
    let rule = id_of(
        &app.post(
            &a.token,
            "/api/v1/rules",
            json!({"title": "Hours", "answer": "9–18", "examples": ["opening hours"]}),
        )
        .await
        .1,
    );
    let menu = id_of(
        &app.post(
            &a.token,
            "/api/v1/menus",
            json!({"name": "Main", "text": "Choose", "is_main": true}),
        )
        .await
        .1,
    );
    let command = id_of(
        &app.post(
            &a.token,
            "/api/v1/commands",
            json!({"command": "prices", "description": "p", "response": "r"}),
        )
        .await
        .1,
    );
    let canned = id_of(
        &app.post(
            &a.token,
            "/api/v1/canned-responses",
            json!({"shortcut": "hi", "title": "Hi", "text": "Hello!"}),
        )
        .await
        .1,
    );
    app.say(&bot, &alice(), "/operator").await;
    let conv = app.conversation(&a, "waiting").await;
    let conversation = id_of(&conv);
    let end_user = conv["user"]["id"].as_str().unwrap().to_string();
    // The bot's answer is delivered before the snapshot, so only B could change A's data.
    app.expect_sent(&bot, alice().id, 1).await;
    app.eventually("the hand-over text is marked sent", || async {
        app.messages(&a, &conversation)
            .await
            .iter()
            .all(|m| m["direction"] == "in" || m["delivery_status"] == "sent")
    })
    .await;
    let messages = app.messages(&a, &conversation).await;
    let message = messages[0]["id"].to_string();
    app.post(
        &a.token,
        &format!("/api/v1/conversations/{conversation}/notes"),
        json!({"text": "VIP"}),
    )
    .await;
    let invitation = app
        .post(
            &a.token,
            "/api/v1/team/invitations",
            json!({"email": "new@acme.test", "role": "operator"}),
        )
        .await
        .1["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a_owner: uuid::Uuid =
        sqlx::query_scalar("select id from users where email = 'owner@acme.test'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let a_owner = a_owner.to_string();
    let paths = [
        "/api/v1/team".to_string(),
        format!("/api/v1/rules/{rule}"),
        format!("/api/v1/menus/{menu}"),
        format!("/api/v1/commands/{command}"),
        format!("/api/v1/canned-responses/{canned}"),
        format!("/api/v1/conversations/{conversation}"),
        format!("/api/v1/conversations/{conversation}/messages"),
        format!("/api/v1/conversations/{conversation}/notes"),
        format!("/api/v1/end-users/{end_user}"),
        "/api/v1/settings".to_string(),
        "/api/v1/bot".to_string(),
    ];
    let snapshot = || async {
        let mut out = Vec::new();
        for p in &paths {
            let (s, body) = app.get(&a.token, p).await;
            assert_eq!(s, StatusCode::OK, "{p}: {body}");
            out.push(body);
        }
        out
    };
    let before = snapshot().await;

    // B's own owner, so an assignment is valid in B and only the conversation is not B's.
    let b_owner: uuid::Uuid =
        sqlx::query_scalar("select id from users where email = 'owner@beta.test'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let (_, doc) = app.get(&b.token, "/api/v1/openapi.json").await;
    let mut tried = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            let path = template
                .replace("{message_id}", &message)
                .replace("{user_id}", &a_owner)
                .replace(
                    "{id}",
                    if template.starts_with("/api/v1/team/invitations") {
                        &invitation
                    } else if template.starts_with("/api/v1/rules") {
                        &rule
                    } else if template.starts_with("/api/v1/menus") {
                        &menu
                    } else if template.starts_with("/api/v1/commands") {
                        &command
                    } else if template.starts_with("/api/v1/canned-responses") {
                        &canned
                    } else if template.starts_with("/api/v1/conversations") {
                        &conversation
                    } else if template.starts_with("/api/v1/end-users") {
                        &end_user
                    } else if template.contains("{id}") {
                        panic!("no id of this organization for {template}")
                    } else {
                        ""
                    },
                );
            assert!(!path.contains('{'), "unfilled parameter in {template}");
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            if path == *template {
                // No object named: a list or a tenant-wide resource; B's reads must not
                // show A's objects (B's own writes are B's business).
                if method == reqwest::Method::GET {
                    let (_, body) = app.get(&b.token, &path).await;
                    let text = body.to_string();
                    for id in [
                        &rule,
                        &menu,
                        &command,
                        &canned,
                        &conversation,
                        &end_user,
                        &invitation,
                        &a_owner,
                    ] {
                        assert!(!text.contains(id.as_str()), "{path} shows {id}: {text}");
                    }
                }
                continue;
            }
            // A body each write would accept, so only the ownership check can refuse it.
            let body = match (method.as_str(), template.rsplit('/').next().unwrap()) {
                ("PUT", _) => Some(json!({"shortcut": "x", "title": "x", "text": "x"})),
                ("PATCH", "{id}") if template.contains("end-users") => Some(json!({"notes": "x"})),
                ("PATCH", "{user_id}") => Some(json!({"role": "operator"})),
                ("PATCH", _) => Some(json!({})),
                ("POST", "messages") | ("POST", "notes") => Some(json!({"text": "x"})),
                ("POST", "assign") => Some(json!({"user_id": b_owner})),
                ("POST", _) => Some(json!({})),
                _ => None,
            };
            let (status, body) = app.call(&b.token, method.clone(), &path, body).await;
            let expected = if path.ends_with("/files") {
                // A JSON body is no upload: refused before the conversation is looked up.
                status.is_client_error()
            } else {
                status == StatusCode::NOT_FOUND
            };
            assert!(
                expected,
                "{method} {path} by another tenant: {status} {body}"
            );
            tried += 1;
        }
    }
    assert!(tried >= 20, "only {tried} operations name an object");
    assert_eq!(snapshot().await, before, "nothing of A changed");
}

/// A process that keeps fewer tenants in memory than it serves: tenants are forgotten and
/// loaded again as they come and go, each bot always answers from its own rules, a
/// change reaches the bot at once, and `/metrics` shows the caches within their bound.
#[tokio::test]
async fn more_tenants_than_the_cache_holds_each_answer_from_their_own_rules() {
    let app = TestApp::start_with(crate::harness::Options {
        cached_tenants: 2,
        metrics_token: Some("scrape".into()),
        ..Default::default()
    })
    .await;
    let mut tenants = Vec::new();
    for name in ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"] {
        let t = app.tenant(name).await;
        let bot = app
            .connect_bot(&t, &format!("{}_bot", name.to_lowercase()))
            .await;
        let (s, body) = app
            .post(
                &t.token,
                "/api/v1/rules",
                json!({"title": "Hours", "answer": format!("{name}: 9–18"), "examples": ["opening hours"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        tenants.push((name, t, bot));
    }
    let user = alice();
    for round in 1..=3 {
        for (name, t, bot) in &tenants {
            if round == 3 && *name == "Gamma" {
                // A change while the tenant is (or is not) cached reaches its bot.
                let (_, rules) = app.get(&t.token, "/api/v1/rules").await;
                let id = rules["items"][0]["id"].as_str().unwrap();
                app.patch(
                    &t.token,
                    &format!("/api/v1/rules/{id}"),
                    json!({"answer": "Gamma: 10–20"}),
                )
                .await;
            }
            app.say(bot, &user, "opening hours").await;
            let sent = app.expect_sent(bot, user.id, round).await;
            let want = if round == 3 && *name == "Gamma" {
                "Gamma: 10–20".to_string()
            } else {
                format!("{name}: 9–18")
            };
            assert_eq!(sent[round - 1].text, want, "round {round}");
        }
    }
    let scrape = Some("scrape");
    assert!(
        app.metric(scrape, "switchboard_cached_tenant_configs")
            .await
            <= 2.0
    );
    let bots = app.metric(scrape, "switchboard_cached_bots").await;
    assert!((1.0..=2.0).contains(&bots), "{bots}");
}

/// The schema can be distributed by organization (Citus, docs/scaling.md), as
/// scripts/citus-distribute.sql does it: every table is listed there once; a distributed
/// table has `tenant_id`, and every unique key and every foreign key to another
/// distributed table includes it; no reference table points into a distributed one; and
/// a table is distributed after the tables it points to.
#[tokio::test]
async fn every_table_could_be_distributed_by_tenant() {
    let app = TestApp::start().await;
    let script = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/citus-distribute.sql"),
    )
    .unwrap();
    let listed = |call: &str| -> Vec<String> {
        script
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("select {call}('")))
            .map(|rest| rest.split('\'').next().unwrap().to_string())
            .collect()
    };
    let reference = listed("create_reference_table");
    let distributed = listed("create_distributed_table");
    let pool = &app.db.pool;
    let tables: Vec<(String, bool)> = sqlx::query_as(
        "select c.relname::text, exists (select 1 from pg_attribute a where a.attrelid = c.oid
                                  and a.attname = 'tenant_id' and not a.attisdropped)
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('r', 'p')
           and c.relname <> '_sqlx_migrations'
         order by 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (table, has_tenant) in &tables {
        let (r, d) = (reference.contains(table), distributed.contains(table));
        assert!(
            r ^ d,
            "{table} must be listed once in scripts/citus-distribute.sql, as a reference or a distributed table"
        );
        if d {
            assert!(
                has_tenant,
                "{table} is distributed by tenant_id but has none"
            );
        }
    }
    for name in reference.iter().chain(&distributed) {
        assert!(
            tables.iter().any(|(t, _)| t == name),
            "scripts/citus-distribute.sql names {name}, which is not a table"
        );
    }
    // Unique keys of distributed tables.
    let uniques: Vec<(String, String)> = sqlx::query_as(
        "select c.relname::text, i.relname::text
         from pg_index x join pg_class i on i.oid = x.indexrelid
         join pg_class c on c.oid = x.indrelid join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and x.indisunique
           and not exists (select 1 from pg_attribute a where a.attrelid = c.oid
                           and a.attname = 'tenant_id' and a.attnum = any(x.indkey))",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (table, index) in &uniques {
        assert!(
            !distributed.contains(table),
            "{index} on {table} is unique without tenant_id: it cannot be kept on a distributed table (a routing table can, see bot_routes)"
        );
    }
    // Foreign keys.
    let fks: Vec<(String, String, String, bool)> = sqlx::query_as(
        "select con.conname::text, c.relname::text, f.relname::text,
                exists (select 1 from pg_attribute a where a.attrelid = c.oid
                        and a.attname = 'tenant_id' and a.attnum = any(con.conkey))
         from pg_constraint con join pg_class c on c.oid = con.conrelid
         join pg_class f on f.oid = con.confrelid join pg_namespace n on n.oid = c.relnamespace
         where con.contype = 'f' and n.nspname = 'public'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let position = |t: &str| distributed.iter().position(|d| d == t);
    for (name, from, to, with_tenant) in &fks {
        if reference.contains(from) {
            assert!(
                !distributed.contains(to),
                "{name}: the reference table {from} points into the distributed {to}"
            );
        }
        if distributed.contains(from) && distributed.contains(to) {
            assert!(with_tenant, "{name}: {from} → {to} without tenant_id");
            if from != to {
                assert!(
                    position(to) < position(from),
                    "{name}: distribute {to} before {from} in scripts/citus-distribute.sql"
                );
            }
        }
    }
    assert!(distributed.len() >= 20 && reference.len() >= 8);
}

/// A Telegram bot serves one organization at a time (the routing table keeps it so across
/// organizations): a second one is refused while the first has it, and may take it once
/// the first disconnects it or is deleted; its webhook then reaches the new organization.
#[tokio::test]
async fn a_telegram_bot_moves_between_organizations_only_when_freed() {
    let app = TestApp::start().await;
    let (a, b) = (app.tenant("Acme").await, app.tenant("Beta").await);
    let bot = app.connect_bot(&a, "shared_bot").await;
    let (s, body) = app
        .put(&b.token, "/api/v1/bot", json!({"token": bot.token}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"]["fields"][0]["code"], "bot_connected_elsewhere",
        "{body}"
    );
    let (s, _) = app.delete(&a.token, "/api/v1/bot").await;
    assert!(s.is_success());
    let (s, body) = app
        .put(&b.token, "/api/v1/bot", json!({"token": bot.token}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    app.post(
        &b.token,
        "/api/v1/rules",
        json!({"title": "Hours", "answer": "Beta: 24/7", "examples": ["opening hours"]}),
    )
    .await;
    app.say(&bot, &alice(), "opening hours").await;
    assert_eq!(
        app.expect_sent(&bot, alice().id, 1).await[0].text,
        "Beta: 24/7",
        "the webhook reaches the organization that has the bot now"
    );
    // Deleting the organization frees the bot too.
    switchboard_db::accounts::delete_tenant(&app.db.pool, b.id)
        .await
        .unwrap();
    let routes: i64 = sqlx::query_scalar(
        "select (select count(*) from bot_routes where tenant_id = $1)
              + (select count(*) from live_telegram_bots where tenant_id = $1)
              + (select count(*) from api_token_routes where tenant_id = $1)",
    )
    .bind(b.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(routes, 0, "no route outlives its organization");
    let (s, body) = app
        .put(&a.token, "/api/v1/bot", json!({"token": bot.token}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

/// Rows written without their routes (a process of the previous version during a rolling
/// upgrade) and routes left behind are put right by the workers' upkeep
/// (`db::routes::repair`): the webhook answers again, and a freed Telegram bot can be
/// connected again.
#[tokio::test]
async fn routes_missing_or_left_behind_are_repaired() {
    let app = TestApp::start().await;
    let (a, b) = (app.tenant("Acme").await, app.tenant("Beta").await);
    let bot = app.connect_bot(&a, "acme_bot").await;
    let other = app.tg.add_bot("free_bot");
    let pool = &app.db.pool;
    // As the old code would leave things: no routes for A's bot or tokens, and a stale
    // live route holding a Telegram bot nobody has.
    for sql in [
        "delete from bot_routes where tenant_id = $1",
        "delete from live_telegram_bots where tenant_id = $1",
        "delete from api_token_routes where tenant_id = $1",
    ] {
        sqlx::query(sql).bind(a.id).execute(pool).await.unwrap();
    }
    let other_id: i64 = other.token.split(':').next().unwrap().parse().unwrap();
    sqlx::query(
        "insert into live_telegram_bots (telegram_bot_id, tenant_id, bot_id)
         values ($1, $2, gen_random_uuid())",
    )
    .bind(other_id)
    .bind(b.id)
    .execute(pool)
    .await
    .unwrap();
    let (s, _) = app.get(&a.token, "/api/v1/settings").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the token has no route");

    let repaired = switchboard_db::routes::repair(pool).await.unwrap();
    assert!(repaired.added >= 3 && repaired.removed >= 1, "{repaired:?}");
    assert_eq!(
        switchboard_db::routes::repair(pool).await.unwrap(),
        Default::default(),
        "nothing left to repair"
    );
    let (s, _) = app.get(&a.token, "/api/v1/settings").await;
    assert_eq!(s, StatusCode::OK);
    app.say(&bot, &alice(), "/start").await;
    app.expect_sent(&bot, alice().id, 1).await;
    let (s, body) = app
        .put(&b.token, "/api/v1/bot", json!({"token": other.token}))
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the stale route no longer holds it: {body}"
    );
}

/// Isolation is enforced twice: every table with a tenant_id (and `tenants`, by id) has
/// row-level security enabled and forced, with the tenant policy for the tenant role, the
/// desk's read-only policy for the desk role and the webhook batch's policy for the
/// intake role. A
/// table added without `switchboard_isolate` fails here.
#[tokio::test]
async fn every_tenant_table_has_forced_row_level_security() {
    let app = TestApp::start().await;
    let tables: Vec<(String, bool, bool, bool)> = sqlx::query_as(
        "select c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                exists (select 1 from pg_policy p where p.polrelid = c.oid
                        and p.polname = 'tenant_scope'
                        and p.polroles = array[(select oid from pg_roles
                                                where rolname = 'switchboard_tenant')])
                and exists (select 1 from pg_policy p where p.polrelid = c.oid
                        and p.polname = 'desk_scope' and p.polcmd = 'r'
                        and p.polroles = array[(select oid from pg_roles
                                                where rolname = 'switchboard_desk')])
                and exists (select 1 from pg_policy p where p.polrelid = c.oid
                        and p.polname = 'intake_scope'
                        and p.polroles = array[(select oid from pg_roles
                                                where rolname = 'switchboard_intake')])
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('r', 'p')
           and (c.relname = 'tenants' or exists (
                select 1 from pg_attribute a where a.attrelid = c.oid
                and a.attname = 'tenant_id' and not a.attisdropped))
         order by 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(tables.len() > 25, "{tables:?}");
    for (table, enabled, forced, policy) in &tables {
        assert!(
            *enabled && *forced && *policy,
            "{table}: row-level security enabled {enabled}, forced {forced}, tenant, desk and intake policies {policy} \
             (call switchboard_isolate('{table}') in its migration)"
        );
    }
}

/// A query that forgot its tenant filter, run the way the application layer runs its
/// queries (a transaction scoped to one tenant), sees, changes and creates nothing of
/// another tenant; with no tenant set, it sees nothing at all.
#[tokio::test]
async fn a_query_without_its_tenant_filter_reaches_nothing_of_another_tenant() {
    let app = TestApp::start().await;
    let a = app.tenant("Acme").await;
    let b = app.tenant("Beta").await;
    for (t, title) in [(&a, "Acme hours"), (&b, "Beta hours")] {
        let (status, body) = app
            .post(
                &t.token,
                "/api/v1/rules",
                json!({"title": title, "answer": "9–18", "examples": ["opening hours"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let pool = &app.db.pool;
    let mut tx = switchboard_db::begin_scoped(pool, a.id).await.unwrap();
    // No tenant filter anywhere below.
    let titles: Vec<String> = sqlx::query_scalar("select title from answer_rules order by 1")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(titles, vec!["Acme hours"]);
    let tenants: Vec<String> = sqlx::query_scalar("select name from tenants")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(tenants, vec!["Acme"]);
    let memberships: i64 = sqlx::query_scalar("select count(*) from memberships")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(memberships, 1, "only Acme's owner");
    let changed = sqlx::query("update answer_rules set title = 'Changed'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1, "only Acme's rule");
    let deleted = sqlx::query("delete from events")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert!(deleted >= 1);
    // Writing a row for another tenant is refused by the policy's check.
    let refused = sqlx::query(
        "insert into canned_responses (tenant_id, id, shortcut, title, text)
         values ($1, gen_random_uuid(), 'x', 'x', 'y')",
    )
    .bind(b.id)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("row-level security"),
        "{refused}"
    );
    drop(tx);
    // The role without a tenant set: nothing.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("select set_config('role', 'switchboard_tenant', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let seen: i64 = sqlx::query_scalar("select count(*) from answer_rules")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, 0);
    drop(tx);
    // Beta's data is untouched (read on the platform path), Acme's change rolled back.
    let all: Vec<(String,)> = sqlx::query_as("select title from answer_rules order by 1")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(
        all,
        vec![("Acme hours".to_string(),), ("Beta hours".to_string(),)]
    );
    let beta_events: i64 = sqlx::query_scalar("select count(*) from events where tenant_id = $1")
        .bind(b.id)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(beta_events >= 1);
}

/// The end of both multi-organization scope tests: `none`, a transaction of the scope
/// with no organization listed, sees nothing at all; and what the test's transaction did
/// was not kept (rolled back, or refused) — every conversation still waits.
async fn sees_nothing_and_nothing_changed(
    pool: &sqlx::PgPool,
    mut none: sqlx::Transaction<'static, sqlx::Postgres>,
) {
    let seen: i64 = sqlx::query_scalar(
        "select (select count(*) from conversations) + (select count(*) from tenants)
              + (select count(*) from end_users) + (select count(*) from messages)",
    )
    .fetch_one(&mut *none)
    .await
    .unwrap();
    assert_eq!(seen, 0);
    drop(none);
    let waiting: i64 =
        sqlx::query_scalar("select count(*) from conversations where status = 'waiting'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(waiting, 3);
}

/// Acme, Beta and Gamma, each with a bot and Alice's conversation waiting for a person.
async fn three_organizations_with_a_waiting_conversation() -> (TestApp, [Tenant; 3]) {
    let app = TestApp::start().await;
    let tenants = [
        app.tenant("Acme").await,
        app.tenant("Beta").await,
        app.tenant("Gamma").await,
    ];
    for (t, bot) in tenants.iter().zip(["acme_bot", "beta_bot", "gamma_bot"]) {
        let bot = app.connect_bot(t, bot).await;
        app.say(&bot, &alice(), "/operator").await;
        app.conversation(t, "waiting").await;
    }
    (app, tenants)
}

/// The desk's queue reads as the viewer's organizations: a query without its tenant
/// filter, in a desk transaction for Acme and Gamma, sees their conversations and
/// organizations and nothing of Beta's; it cannot write; with no organization listed it
/// sees nothing.
#[tokio::test]
async fn the_desks_scope_sees_only_the_viewers_organizations_and_writes_nothing() {
    let (app, [a, _, g]) = three_organizations_with_a_waiting_conversation().await;
    let pool = &app.db.pool;
    let mut tx = switchboard_db::begin_desk(pool, &[a.id, g.id])
        .await
        .unwrap();
    // No tenant filter anywhere below.
    let mut seen: Vec<String> = sqlx::query_scalar(
        "select t.name from conversations c join tenants t on t.id = c.tenant_id",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    seen.sort();
    assert_eq!(seen, vec!["Acme", "Gamma"]);
    let users: i64 = sqlx::query_scalar("select count(*) from end_users")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(users, 2, "Alice in Acme and in Gamma, not in Beta");
    let refused = sqlx::query("update conversations set status = 'closed'")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("permission denied"),
        "{refused}"
    );
    drop(tx);
    sees_nothing_and_nothing_changed(pool, switchboard_db::begin_desk(pool, &[]).await.unwrap())
        .await;
}

/// The webhook's group commit writes several organizations' updates in one transaction,
/// as the intake role: a query of it that forgot its tenant filter reads and changes only
/// the organizations of the batch, and cannot write a row of any other.
#[tokio::test]
async fn the_intake_scope_reaches_only_the_batchs_organizations() {
    let (app, [a, b, g]) = three_organizations_with_a_waiting_conversation().await;
    let pool = &app.db.pool;
    let mut tx = switchboard_db::begin_intake(pool, &[a.id, g.id])
        .await
        .unwrap();
    // No tenant filter anywhere below.
    let closed = sqlx::query("update conversations set status = 'closed'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(closed, 2, "Acme's and Gamma's");
    let refused = sqlx::query(
        "insert into inbox (tenant_id, bot_id, update_id, payload)
         select tenant_id, id, 1, '{}' from bots where tenant_id = $1",
    )
    .bind(b.id)
    .execute(&mut *tx)
    .await;
    // Beta's bot is not even visible: nothing to insert from.
    assert_eq!(refused.unwrap().rows_affected(), 0);
    let refused = sqlx::query(
        "insert into inbox (tenant_id, bot_id, update_id, payload) values ($1, $2, 1, '{}')",
    )
    .bind(b.id)
    .bind(uuid::Uuid::new_v4())
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("row-level security"),
        "{refused}"
    );
    drop(tx);
    sees_nothing_and_nothing_changed(pool, switchboard_db::begin_intake(pool, &[]).await.unwrap())
        .await;
}

/// Every page and form of an organization, found in the panel's router source (each
/// `.route("…{slug}…")` in `crates/web/src/pages`, so a new page is covered the day it is
/// added), asked for by a signed-in member of another organization with this
/// organization's slug and object ids, by GET and by POST (with a valid CSRF token):
/// 404 (or 405 where the method does not exist) every time, and nothing changes.
#[tokio::test]
async fn every_panel_route_refuses_another_organizations_member() {
    let app = TestApp::start().await;
    let a = app.tenant("Acme").await;
    let b = app.tenant("Beta").await;
    let bot = app.connect_bot(&a, "acme_bot").await;
    let created = |path: &'static str, body: serde_json::Value| {
        let app = &app;
        let token = a.token.clone();
        async move {
            let (s, r) = app.post(&token, path, body).await;
            assert_eq!(s, StatusCode::CREATED, "{path}: {r}");
            r["id"].as_str().unwrap().to_string()
        }
    };
    let rule = created(
        "/api/v1/rules",
        json!({"title": "Hours", "answer": "9–18", "examples": ["opening hours"]}),
    )
    .await;
    let menu = created("/api/v1/menus", json!({"name": "Main", "text": "Choose"})).await;
    let command = created(
        "/api/v1/commands",
        json!({"command": "prices", "description": "p", "response": "r"}),
    )
    .await;
    app.say(&bot, &alice(), "/operator").await;
    app.expect_sent(&bot, alice().id, 1).await;
    let conversation = app.conversation(&a, "waiting").await;
    let conv = conversation["id"].as_str().unwrap().to_string();
    let end_user = conversation["user"]["id"].as_str().unwrap().to_string();
    let message = app.messages(&a, &conv).await[0]["id"].to_string();

    // The routes, as the router declares them.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/web/src/pages");
    let mut sources = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                sources.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    // `.route(` then, after white space, the quoted path.
    let mut routes: Vec<String> = sources
        .iter()
        .flat_map(|s| s.split(".route(").skip(1))
        .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
        .filter(|path| path.contains("{slug}"))
        .map(str::to_string)
        .collect();
    routes.sort();
    routes.dedup();
    assert!(
        routes.len() >= 50,
        "{} routes found: {routes:?}",
        routes.len()
    );

    let stranger = app.owner_web(&b).await;
    stranger.get("/").await;
    for template in &routes {
        let id = if template.contains("/rules/") {
            &rule
        } else if template.contains("/menus/") {
            &menu
        } else if template.contains("/commands/") {
            &command
        } else if template.contains("/end-users/") {
            &end_user
        } else if template.contains("/c/") {
            &conv
        } else {
            &message
        };
        let path = template
            .replace("{slug}", &a.slug)
            .replace("{id}", id)
            .replace("{user}", &end_user)
            .replace("{message}", &message)
            .replace("{source}", "m");
        for (method, page) in [
            ("GET", stranger.get(&path).await),
            ("POST", stranger.post(&path, &[("text", "stolen")]).await),
        ] {
            assert!(
                matches!(
                    page.status,
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                ),
                "{method} {path} ({template}) by another organization's owner: {}",
                page.status
            );
        }
    }
    // Nothing changed: the objects are there, the conversation still waits.
    for path in [
        format!("/api/v1/rules/{rule}"),
        format!("/api/v1/menus/{menu}"),
        format!("/api/v1/commands/{command}"),
    ] {
        assert_eq!(app.get(&a.token, &path).await.0, StatusCode::OK, "{path}");
    }
    assert_eq!(app.conversation(&a, "waiting").await["id"], conv.as_str());
    let (_, bot_info) = app.get(&a.token, "/api/v1/bot").await;
    assert!(!bot_info.is_null());
}
