//! A fresh, migrated PostgreSQL database per test, cloned from a template database that
//! is built once per set of migrations (so a test pays for `create database`, not for
//! running every migration).

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// The server tests use: `SWITCHBOARD_TEST_DATABASE_URL`, else the local PostgreSQL.
pub fn server_url() -> String {
    std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    admin: PgConnectOptions,
}

impl TestDb {
    pub async fn new() -> Self {
        let admin = PgConnectOptions::from_str(&server_url())
            .expect("a valid SWITCHBOARD_TEST_DATABASE_URL")
            .database("postgres")
            .disable_statement_logging();
        let template = ensure_template(&admin).await;
        let name = format!("sb_test_{}", random_suffix());
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("connect to the test PostgreSQL server (is it running?)");
        // Creating from a template fails while anyone is connected to it; retry briefly.
        let mut attempt = 0;
        loop {
            match sqlx::query(&format!("create database {name} template {template}"))
                .execute(&mut conn)
                .await
            {
                Ok(_) => break,
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    tracing::debug!("create test database: {e}; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("create test database: {e}"),
            }
        }
        conn.close().await.ok();
        let opts = admin.clone().database(&name);
        let url = opts.to_url_lossy().to_string();
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect_with(opts)
            .await
            .expect("connect to the test database");
        Self {
            name,
            url,
            pool,
            admin,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = self.admin.clone();
        // Drop cannot await; do it on a helper thread with its own runtime. The pool is
        // left alone (its sockets belong to the test's runtime, which is blocked here);
        // `with (force)` ends its connections.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect_with(&admin).await {
                    let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// Builds the template for the current migrations once; returns its name.
async fn ensure_template(admin: &PgConnectOptions) -> String {
    let name = format!(
        "sb_template_{}",
        &switchboard_db::pool::migration_fingerprint()[..12]
    );
    let mut conn = PgConnection::connect_with(admin)
        .await
        .expect("connect to the test PostgreSQL server (is it running?)");
    sqlx::query("select pg_advisory_lock(74656)")
        .execute(&mut conn)
        .await
        .expect("lock");
    let ready: Option<Option<String>> = sqlx::query_scalar(
        "select shobj_description(oid, 'pg_database') from pg_database where datname = $1",
    )
    .bind(&name)
    .fetch_optional(&mut conn)
    .await
    .expect("look up the template");
    if ready.as_ref().and_then(|d| d.as_deref()) != Some("ready") {
        if ready.is_some() {
            sqlx::query(&format!("drop database {name} with (force)"))
                .execute(&mut conn)
                .await
                .expect("drop a half-built template");
        }
        sqlx::query(&format!("create database {name}"))
            .execute(&mut conn)
            .await
            .expect("create the template database");
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(admin.clone().database(&name))
            .await
            .expect("connect to the template");
        switchboard_db::migrate(&pool)
            .await
            .expect("migrate the template");
        pool.close().await;
        sqlx::query(&format!("comment on database {name} is 'ready'"))
            .execute(&mut conn)
            .await
            .expect("mark the template ready");
    }
    sqlx::query("select pg_advisory_unlock(74656)")
        .execute(&mut conn)
        .await
        .expect("unlock");
    conn.close().await.ok();
    name
}
