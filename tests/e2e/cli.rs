//! The bootstrap CLI, run as a real process against a fresh database.

use std::process::Command;

use crate::harness::TestApp;

fn switchboard(db_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
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
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("eval-matcher")
        .args(args)
        .arg("--json")
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

    let (ok, r, out) = eval(&[
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
