//! Work that one process at a time may do (cron ticks run in every worker), held by a
//! PostgreSQL session advisory lock.

use sqlx::PgPool;

/// Runs `work` while holding the advisory lock `key`, or skips when another process holds it.
/// If `work` panics or is cancelled, the connection is closed rather than returned to the
/// pool, so the session lock cannot outlive it and block every later tick.
pub async fn exclusively<F, Fut>(pool: &PgPool, key: i64, work: F) -> crate::Result<bool>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    struct Held(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>);
    impl Drop for Held {
        fn drop(&mut self) {
            if let Some(conn) = self.0.take() {
                // Closing the session releases its advisory locks.
                drop(conn.detach());
            }
        }
    }
    let mut conn = pool.acquire().await?;
    let got: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut *conn)
        .await?;
    if !got {
        return Ok(false);
    }
    let mut held = Held(Some(conn));
    work().await;
    let conn = held.0.as_mut().expect("held until here");
    sqlx::query("select pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut **conn)
        .await?;
    // Unlocked: the connection may go back to the pool.
    drop(held.0.take());
    Ok(true)
}
