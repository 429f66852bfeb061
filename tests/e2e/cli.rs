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
