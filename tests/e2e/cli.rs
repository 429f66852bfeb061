//! The bootstrap CLI, run as a real process against a fresh database.

use std::process::Command;
use std::time::Duration;

use switchboard_core::vault::{MasterKey, SecretPurpose, Vault};
use switchboard_testkit::{FakeBot, FakeUser};

use crate::harness::{Replica, TestApp};

fn switchboard(db_url: &str, args: &[&str]) -> (bool, String, String) {
    switchboard_with(db_url, &[], args)
}

/// Runs the binary with these variables (and no master key from the environment).
fn switchboard_with(db_url: &str, vars: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .env_remove("SWITCHBOARD_MASTER_KEY")
        .env_remove("SWITCHBOARD_MASTER_KEY_FILE")
        .env_remove("SWITCHBOARD_OLD_MASTER_KEYS")
        .envs(vars.iter().copied())
        .output()
        .expect("run switchboard");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn tenant_and_token_creation_from_the_cli() {
    let app = TestApp::start().await;
    let url = app.db.url.clone();
    let (ok, out, err) = switchboard(
        &url,
        &[
            "tenant",
            "create",
            "--name",
            "Acme Inc",
            "--owner-email",
            "boss@acme.test",
            "--owner-password",
            "s3cret-pass",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("slug: acme-inc"), "{out}");
    // The same name gets a different slug.
    let (ok, out, _) = switchboard(
        &url,
        &[
            "tenant",
            "create",
            "--name",
            "Acme Inc",
            "--owner-email",
            "boss@acme.test",
            "--owner-password",
            "s3cret-pass",
        ],
    );
    assert!(ok);
    assert!(out.contains("slug: acme-inc-2"), "{out}");

    let (ok, out, err) = switchboard(
        &url,
        &[
            "token",
            "create",
            "--tenant",
            "acme-inc",
            "--email",
            "boss@acme.test",
            "--name",
            "ci",
        ],
    );
    assert!(ok, "{err}");
    let token = out.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("sb_"), "{out}");
    let (s, body) = app.get(&token, "/api/v1/settings").await;
    assert_eq!(s, 200, "{body}");

    let (ok, out, _) = switchboard(
        &url,
        &[
            "superuser",
            "create",
            "--email",
            "root@switchboard.test",
            "--password",
            "rootpass1",
        ],
    );
    assert!(ok);
    assert!(out.contains("Created superuser root@switchboard.test"));
    let is_super: bool =
        sqlx::query_scalar("select is_superuser from users where email = 'root@switchboard.test'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(is_super);
}

#[tokio::test]
async fn bad_arguments_fail_clearly_and_change_nothing() {
    let app = TestApp::start().await;
    let url = app.db.url.clone();
    let count = || async {
        let t: i64 = sqlx::query_scalar("select count(*) from tenants")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        let u: i64 = sqlx::query_scalar("select count(*) from users")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        let k: i64 = sqlx::query_scalar("select count(*) from api_tokens")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        (t, u, k)
    };
    let before = count().await;
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "tenant",
                "create",
                "--name",
                "X",
                "--owner-email",
                "not-an-email",
                "--owner-password",
                "longenough",
            ],
            "--owner-email",
        ),
        (
            &[
                "tenant",
                "create",
                "--name",
                "X",
                "--owner-email",
                "a@b.co",
                "--owner-password",
                "short",
            ],
            "--owner-password",
        ),
        (
            &[
                "tenant",
                "create",
                "--name",
                " ",
                "--owner-email",
                "a@b.co",
                "--owner-password",
                "longenough",
            ],
            "--name",
        ),
        (
            &[
                "tenant",
                "create",
                "--name",
                "X",
                "--owner-email",
                "a@b.co",
                "--owner-password",
                "longenough",
                "--language",
                "de",
            ],
            "--language",
        ),
        (
            &[
                "token", "create", "--tenant", "nope", "--email", "a@b.co", "--name", "x",
            ],
            "no tenant",
        ),
        (
            &[
                "superuser",
                "create",
                "--email",
                "x",
                "--password",
                "longenough",
            ],
            "--email",
        ),
    ];
    for (args, needle) in cases {
        let (ok, out, err) = switchboard(&url, args);
        assert!(!ok, "{args:?} should fail: {out}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    app.tenant("Acme").await;
    let after_acme = count().await;
    let (ok, _, err) = switchboard(
        &url,
        &[
            "token",
            "create",
            "--tenant",
            "acme",
            "--email",
            "stranger@x.test",
            "--name",
            "x",
        ],
    );
    assert!(!ok);
    assert!(err.contains("no user with email"), "{err}");
    let (ok, _, err) = switchboard(
        &url,
        &[
            "tenant",
            "create",
            "--name",
            "Other",
            "--owner-email",
            "owner@acme.test",
            "--owner-password",
            "wrong-password",
        ],
    );
    assert!(!ok);
    assert!(err.contains("password does not match"), "{err}");
    assert_eq!(count().await, after_acme);
    assert_eq!(before, (0, 0, 0));
    // A missing argument is clap's clear error.
    let (ok, _, err) = switchboard(&url, &["tenant", "create", "--name", "X"]);
    assert!(!ok);
    assert!(err.contains("--owner-email"), "{err}");
}

fn eval(args: &[&str]) -> (bool, serde_json::Value, String) {
    eval_with(&[], args)
}

/// `eval-matcher --json` with these variables, the semantic stage's unset: it runs what
/// the bot would run with them.
fn eval_with(vars: &[(&str, &str)], args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("eval-matcher")
        .args(args)
        .arg("--json")
        .env_remove("SWITCHBOARD_SEMANTIC")
        .env_remove("SWITCHBOARD_EMBEDDINGS_DIR")
        .env_remove("SWITCHBOARD_MODELS_DIR")
        .envs(vars.iter().copied())
        .output()
        .expect("run switchboard");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default();
    (
        out.status.success(),
        serde_json::from_str(last).unwrap_or_default(),
        format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// The matcher's quality floor on public data (a regression fails the build; the full
/// figures are in docs/matching.md).
#[test]
fn the_matcher_keeps_its_accuracy_on_public_data() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
    let (ok, r, out) = eval(&[
        "--lexical",
        "--dataset",
        &format!("{data}matcher-clinc150-sample.en.json"),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("in-scope accuracy"), "{out}");
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert!(f("in_scope_accuracy") >= 0.58, "{out}");
    assert!(f("suggestion_hit_rate") >= 0.75, "{out}");
    assert!(f("oos_recall") >= 0.80, "{out}");
    assert!(f("wrong_answer_rate") <= 0.08, "{out}");
    for key in ["p50_us", "p99_us", "build_ms"] {
        assert!(f(key) > 0.0, "{key}: {out}");
    }
    assert_eq!(r["encoder"], "none", "--lexical: {out}");

    let (ok, r, out) = eval(&[
        "--lexical",
        "--dataset",
        &format!("{data}matcher-ru-clinc150.ru.json"),
        "--examples-per-intent",
        "3",
    ]);
    assert!(ok, "{out}");
    let f = |k: &str| r[k].as_f64().unwrap();
    assert!(f("in_scope_accuracy") >= 0.53, "{out}");
    assert!(f("oos_recall") >= 0.80, "{out}");
    assert!(f("wrong_answer_rate") <= 0.12, "{out}");
}

/// Without flags `eval-matcher` measures what the bot runs: the default model where
/// `models fetch` put it (here SWITCHBOARD_MODELS_DIR=target/models, which ./test fills),
/// nothing with SWITCHBOARD_SEMANTIC=off, and, with no model fetched, the lexical matcher
/// with a warning that says how to get it.
#[test]
fn eval_matcher_runs_what_the_bot_runs_by_default() {
    let root = env!("CARGO_MANIFEST_DIR");
    let data = format!("{root}/tests/data/matcher-ru-clinc150.ru.json");
    let args = ["--dataset", &data, "--examples-per-intent", "3"];
    let models = format!("{root}/target/models");
    let (ok, r, out) = eval_with(&[("SWITCHBOARD_MODELS_DIR", &models)], &args);
    assert!(ok, "{out}");
    assert_eq!(r["encoder"], "multilingual-e5-small", "{out}");
    let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap();
    // The goals on the whole Russian set are 70% / 10%; this sample is a third.
    assert!(f(&r, "in_scope_accuracy") >= 0.70, "{out}");
    assert!(f(&r, "suggestion_hit_rate") >= 0.80, "{out}");
    assert!(f(&r, "wrong_answer_rate") <= 0.10, "{out}");
    assert!(f(&r, "encode_p50_us") > 0.0, "{out}");

    let (ok, r, out) = eval_with(
        &[
            ("SWITCHBOARD_MODELS_DIR", &models),
            ("SWITCHBOARD_SEMANTIC", "off"),
        ],
        &args,
    );
    assert!(ok, "{out}");
    assert_eq!(r["encoder"], "none", "{out}");
    let lexical = f(&r, "in_scope_accuracy");

    let (ok, r, out) = eval_with(&[("SWITCHBOARD_MODELS_DIR", "/nonexistent/models")], &args);
    assert!(ok, "{out}");
    assert_eq!(r["encoder"], "none", "{out}");
    assert_eq!(f(&r, "in_scope_accuracy"), lexical, "{out}");
    assert!(out.contains("switchboard models fetch"), "{out}");

    // A directory named explicitly must hold a model.
    let (ok, _, out) = eval_with(
        &[("SWITCHBOARD_EMBEDDINGS_DIR", "/nonexistent/model")],
        &args,
    );
    assert!(!ok);
    assert!(out.contains("no model there"), "{out}");
    let (ok, _, out) = eval_with(&[("SWITCHBOARD_SEMANTIC", "maybe")], &args);
    assert!(!ok);
    assert!(out.contains("must be on or off"), "{out}");
}

#[test]
fn eval_matcher_explains_bad_arguments() {
    let (ok, _, out) = eval(&["--dataset", "/nonexistent/data.json"]);
    assert!(!ok);
    assert!(out.contains("cannot read /nonexistent/data.json"), "{out}");
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/matcher-ru-clinc150.ru.json"
    );
    let (ok, _, out) = eval(&[
        "--dataset",
        data,
        "--answer-threshold",
        "0.2",
        "--suggest-threshold",
        "0.5",
    ]);
    assert!(!ok);
    assert!(
        out.contains("--suggest-threshold must not be above"),
        "{out}"
    );
    let (ok, _, out) = eval(&[
        "--dataset",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
    ]);
    assert!(!ok);
    assert!(out.contains("is not a matcher dataset"), "{out}");
}

#[tokio::test]
async fn statistics_rollup_and_retention_from_the_cli() {
    let app = TestApp::start().await;
    let t = app.tenant("Roll").await;
    let bot = app.connect_bot(&t, "roll_bot").await;
    app.say(&bot, &crate::harness::alice(), "hello there").await;
    app.expect_sent(&bot, crate::harness::alice().id, 1).await;
    let url = app.db.url.clone();
    let (ok, out, err) = switchboard(&url, &["stats", "rollup", "--tenant", "nobody"]);
    assert!(!ok);
    assert!(err.contains("no tenant"), "{out}{err}");
    let (ok, out, err) = switchboard(
        &url,
        &["stats", "rollup", "--tenant", &t.slug, "--days", "1"],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains(" rows"), "{out}");
    let stored: i64 = sqlx::query_scalar(
        "select coalesce(sum(value), 0)::bigint from stats_hourly where tenant_id = $1 and metric = 'messages_in'",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(stored, 1);
    let (ok, out, err) = switchboard(&url, &["stats", "retention"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("deleted 0 messages"), "{out}");
}

/// Sends `text` from `user` to the bot's webhook on `replica` (as Telegram would after
/// the address moved there), asserting it is accepted.
async fn say_to(app: &TestApp, replica: &Replica, bot: &FakeBot, user: &FakeUser, text: &str) {
    let hook = app.tg.webhook(bot).expect("the bot has a webhook");
    let url = hook.url.replacen(&app.base, &replica.base, 1);
    assert_ne!(url, hook.url, "{} is not on {}", hook.url, app.base);
    let resp = app
        .http
        .post(url)
        .header(
            "X-Telegram-Bot-Api-Secret-Token",
            hook.secret_token.unwrap_or_default(),
        )
        .json(&app.tg.text_update(bot, user, text))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status, 200, "{}", resp.text().await.unwrap_or_default());
}

async fn sealed_row(
    app: &TestApp,
    tenant: switchboard_core::TenantId,
) -> (String, Vec<u8>, Vec<u8>) {
    sqlx::query_as(
        "select token_key_id, token_nonce, token_ciphertext from bots
         where tenant_id = $1 and status = 'active'",
    )
    .bind(tenant)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

/// `keys rotate`: tokens sealed under the old key A are re-sealed under B (with A among
/// the old keys), processes that know B keep serving the bot during and after it, a
/// second run finds nothing, B alone then opens every token, and a token under a key
/// nobody configured is reported and left alone.
#[tokio::test]
async fn keys_rotate_reseals_bot_tokens_under_the_current_key() {
    let mut app = TestApp::start().await;
    let url = app.db.url.clone();
    let key_a = app.master_key().clone();
    let key_b = MasterKey::generate();
    let (a, b) = (key_a.to_base64(), key_b.to_base64());

    let t = app.tenant("Rotor").await;
    let bot = app.connect_bot(&t, "rotor_bot").await;
    app.say(&bot, &crate::harness::alice(), "/start").await;
    app.expect_sent(&bot, crate::harness::alice().id, 1).await;
    let before = sealed_row(&app, t.id).await;
    assert_eq!(before.0, key_a.key_id());

    // Another organization's token, sealed under a key that is configured nowhere.
    let lost = app.tenant("Lost").await;
    app.connect_bot(&lost, "lost_bot").await;
    let lost_bot: switchboard_core::BotId =
        sqlx::query_scalar("select id from bots where tenant_id = $1 and status = 'active'")
            .bind(lost.id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let unknown = Vault::new(&MasterKey::generate(), &[]).seal(
        SecretPurpose::BotToken {
            tenant: lost.id,
            bot: lost_bot,
        },
        b"123:lost",
    );
    sqlx::query(
        "update bots set token_key_id = $2, token_nonce = $3, token_ciphertext = $4
         where tenant_id = $1 and id = $5",
    )
    .bind(lost.id)
    .bind(&unknown.key_id)
    .bind(&unknown.nonce)
    .bind(&unknown.ciphertext)
    .bind(lost_bot)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let lost_before = sealed_row(&app, lost.id).await;

    // The new deployment: B current, A among the old keys; the old process goes away.
    assert!(app.stop_within(Duration::from_secs(35)).await);
    let next = app
        .replica_with(Vault::new(&key_b, std::slice::from_ref(&key_a)), true)
        .await;
    let bob = crate::harness::bob();
    say_to(&app, &next, &bot, &bob, "/start").await;
    app.expect_sent(&bot, bob.id, 1).await;

    let rotate = |vars: &[(&str, &str)], extra: &[&str]| {
        let mut args = vec!["keys", "rotate"];
        args.extend_from_slice(extra);
        switchboard_with(&url, vars, &args)
    };
    let with_a = [
        ("SWITCHBOARD_MASTER_KEY", b.as_str()),
        ("SWITCHBOARD_OLD_MASTER_KEYS", a.as_str()),
    ];
    let lost_line = format!("tenant {} bot {lost_bot}", lost.id);

    // A dry run reports and changes nothing.
    let (ok, out, err) = rotate(&with_a, &["--dry-run"]);
    assert!(!ok, "the undecryptable token fails the run: {out}{err}");
    assert!(
        out.contains("1 bot token(s) of 1 tenant(s) would be"),
        "{out}"
    );
    assert!(out.contains("Could not decrypt 1 bot token(s)."), "{out}");
    assert!(out.contains(&lost_line), "{out}");
    assert_eq!(sealed_row(&app, t.id).await, before);

    let (ok, out, err) = rotate(&with_a, &[]);
    assert!(!ok, "{out}{err}");
    assert!(
        out.contains(&format!(
            "Rotated 1 bot token(s) of 1 tenant(s) to key {}",
            key_b.key_id()
        )),
        "{out}"
    );
    assert!(out.contains(&lost_line), "{out}");
    assert!(err.contains("could not be decrypted"), "{err}");
    for secret in [bot.token.as_str(), "123:lost", a.as_str(), b.as_str()] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "a secret in {out}{err}"
        );
    }
    let after = sealed_row(&app, t.id).await;
    assert_eq!(after.0, key_b.key_id());
    assert_ne!(after.2, before.2);
    assert_eq!(sealed_row(&app, lost.id).await, lost_before, "left alone");
    let event: serde_json::Value = sqlx::query_scalar(
        "select data from events where tenant_id = $1 and kind = 'bot.token_rotated'",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(event["key_id"], key_b.key_id());
    assert_eq!(event["from_key_ids"], serde_json::json!([key_a.key_id()]));
    assert!(!event.to_string().contains(&bot.token));

    // A row that changed since it was read (here: rotated) is not overwritten.
    let bot_id: switchboard_core::BotId =
        sqlx::query_scalar("select id from bots where tenant_id = $1 and status = 'active'")
            .bind(t.id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let stale = switchboard_core::vault::Sealed {
        key_id: before.0.clone(),
        nonce: before.1.clone(),
        ciphertext: before.2.clone(),
    };
    let replaced = switchboard_db::bots::reseal_token(&app.db.pool, t.id, bot_id, &stale, &unknown)
        .await
        .unwrap();
    assert!(!replaced);
    assert_eq!(sealed_row(&app, t.id).await, after);

    // The running process dropped its cached token (the row's notification) and opens
    // the new sealing: the bot keeps answering.
    let carol = FakeUser::new(1003, "Carol");
    say_to(&app, &next, &bot, &carol, "/start").await;
    app.expect_sent(&bot, carol.id, 1).await;

    // Idempotent.
    let (_, out, _) = rotate(&with_a, &[]);
    assert!(out.contains("Rotated 0 bot token(s)"), "{out}");
    assert_eq!(sealed_row(&app, t.id).await, after);
    let events: i64 =
        sqlx::query_scalar("select count(*) from events where kind = 'bot.token_rotated'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(events, 1);

    // The old key dropped: B alone opens the token, in a new process and in the CLI.
    assert!(next.stop_within(Duration::from_secs(35)).await);
    let only_b = app.replica_with(Vault::new(&key_b, &[]), true).await;
    let dave = FakeUser::new(1004, "Dave");
    say_to(&app, &only_b, &bot, &dave, "/start").await;
    app.expect_sent(&bot, dave.id, 1).await;
    let (_, out, _) = rotate(&[("SWITCHBOARD_MASTER_KEY", b.as_str())], &[]);
    assert!(out.contains("Rotated 0 bot token(s)"), "{out}");
    assert!(out.contains(&lost_line), "{out}");

    // Without the lost token, the run succeeds.
    sqlx::query("delete from bots where tenant_id = $1")
        .bind(lost.id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let (ok, out, err) = rotate(&[("SWITCHBOARD_MASTER_KEY", b.as_str())], &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Could not decrypt 0 bot token(s)."), "{out}");
}

/// `switchboard bench seed` fills an organization with a history the desk and the
/// statistics show, leaves its own bot alone, adds more when run again, and refuses
/// nonsense before doing anything.
#[tokio::test]
async fn bench_seed_fills_an_organization_with_history() {
    let app = TestApp::start().await;
    let t = app.tenant("Big Co").await;
    let url = app.db.url.clone();
    let args = [
        "bench",
        "seed",
        "--tenant",
        t.slug.as_str(),
        "--conversations",
        "600",
        "--messages",
        "1800",
        "--days",
        "30",
    ];
    let (ok, out, err) = switchboard(&url, &args);
    assert!(ok, "{out}{err}");
    assert!(out.contains("600 conversations"), "{out}");
    let (ok, out, err) = switchboard(&url, &args);
    assert!(ok, "a second run adds more: {out}{err}");
    let (conversations, messages, open_twice): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from conversations where tenant_id = $1),
                (select count(*) from messages where tenant_id = $1),
                (select count(*) from (select end_user_id from conversations
                 where tenant_id = $1 and status <> 'closed'
                 group by end_user_id having count(*) > 1) x)",
    )
    .bind(t.id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((conversations, messages, open_twice), (1200, 3600, 0));
    // The desk shows the waiting ones; the statistics count the history.
    let (_, waiting) = app
        .get(&t.token, "/api/v1/conversations?status=waiting&limit=200")
        .await;
    assert!(
        !waiting["items"].as_array().unwrap().is_empty(),
        "{waiting}"
    );
    let (_, stats) = app.get(&t.token, "/api/v1/stats").await;
    assert!(stats["headlines"].to_string().contains("value"), "{stats}");
    // Nonsense is refused, and nothing is added.
    let (ok, _, err) = switchboard(
        &url,
        &["bench", "seed", "--tenant", &t.slug, "--conversations", "0"],
    );
    assert!(!ok && err.contains("--conversations"), "{err}");
    let (ok, _, err) = switchboard(&url, &["bench", "seed", "--tenant", "nobody"]);
    assert!(!ok && err.contains("no tenant"), "{err}");
    let after: i64 = sqlx::query_scalar("select count(*) from conversations where tenant_id = $1")
        .bind(t.id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(after, 1200);
}
