//! Sign-in throttling: attempts counted before a password is checked, per account and per address.

use super::*;

/// A sign-in attempt, counted before the password is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginAttempt {
    /// Go ahead: the attempt is recorded (as a failure until the caller clears it on
    /// success), with the failures that came before it.
    Reserved {
        id: i64,
        account_failures: i64,
        address_failures: i64,
    },
    /// Too many failures: no password is checked until this many seconds have passed.
    Locked { retry_after: i64 },
}

/// Counts this attempt against the account's and the address's failures in the last
/// `window_seconds` — atomically, so parallel guesses are counted as they arrive (each
/// waits for the ones before it to be recorded) and cannot slip past the limits together.
pub async fn reserve_login_attempt(
    pool: &sqlx::PgPool,
    email: &str,
    ip: &str,
    window_seconds: i64,
    max_account: i64,
    max_address: i64,
) -> Result<LoginAttempt> {
    let email = email.trim();
    let mut tx = pool.begin().await?;
    // Account first, then address, always: no two attempts can wait for each other.
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('login:' || lower($1), 0))")
        .bind(email)
        .execute(&mut *tx)
        .await?;
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('login-ip:' || $1, 0))")
        .bind(ip)
        .execute(&mut *tx)
        .await?;
    let (by_account, account_oldest, by_address, address_oldest): (i64, Option<f64>, i64, Option<f64>) =
        sqlx::query_as(
            "with a as (
                select created_at from login_failures
                where lower(email) = lower($1) and created_at > now() - make_interval(secs => $3)
                order by created_at desc limit $4
             ), i as (
                select created_at from login_failures
                where ip = $2 and created_at > now() - make_interval(secs => $3)
                order by created_at desc limit $5
             )
             select (select count(*) from a),
                    (select extract(epoch from min(created_at) + make_interval(secs => $3) - now())::float8 from a),
                    (select count(*) from i),
                    (select extract(epoch from min(created_at) + make_interval(secs => $3) - now())::float8 from i)",
        )
        .bind(email)
        .bind(ip)
        .bind(window_seconds as f64)
        .bind(max_account)
        .bind(max_address)
        .fetch_one(&mut *tx)
        .await?;
    // Within the last `max` failures, the oldest leaving the window frees the next try.
    let wait = |count: i64, max: i64, oldest: Option<f64>| {
        (count >= max).then(|| oldest.unwrap_or(window_seconds as f64).ceil().max(1.0) as i64)
    };
    if let Some(retry_after) = wait(by_account, max_account, account_oldest)
        .into_iter()
        .chain(wait(by_address, max_address, address_oldest))
        .max()
    {
        tx.rollback().await?;
        return Ok(LoginAttempt::Locked { retry_after });
    }
    let id: i64 =
        sqlx::query_scalar("insert into login_failures (email, ip) values ($1, $2) returning id")
            .bind(email)
            .bind(ip)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(LoginAttempt::Reserved {
        id,
        account_failures: by_account,
        address_failures: by_address,
    })
}

/// Forgets one reserved attempt (the check could not be made).
pub async fn forget_login_attempt(db: impl PgExecutor<'_>, id: i64) -> Result<()> {
    sqlx::query("delete from login_failures where id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn clear_login_failures(db: impl PgExecutor<'_>, email: &str) -> Result<()> {
    sqlx::query("delete from login_failures where lower(email) = lower($1)")
        .bind(email.trim())
        .execute(db)
        .await?;
    Ok(())
}
