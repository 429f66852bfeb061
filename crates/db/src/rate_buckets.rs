//! Token buckets in PostgreSQL, for limits that must hold across every process: one
//! statement takes a token atomically (the row lock orders concurrent takers), so
//! parallel requests through several replicas cannot overdraw a bucket.

use std::time::Duration;

use sqlx::PgPool;

use crate::Result;

/// Takes one token from `key`'s bucket (`burst` at most, refilled at `per_second`), or
/// says how long until one is there. Buckets full again are deleted now and then.
pub async fn take(
    pool: &PgPool,
    key: &str,
    burst: f64,
    per_second: f64,
) -> Result<Option<Duration>> {
    let taken: Option<f64> = sqlx::query_scalar(
        "insert into rate_buckets as b (key, tokens, at) values ($1, $2 - 1, now())
         on conflict (key) do update set
             tokens = least($2, b.tokens + extract(epoch from now() - b.at) * $3) - 1,
             at = now()
         where least($2, b.tokens + extract(epoch from now() - b.at) * $3) >= 1
         returning tokens",
    )
    .bind(key)
    .bind(burst)
    .bind(per_second)
    .fetch_optional(pool)
    .await?;
    if taken.is_some() {
        if rand_percent() == 0 {
            // A bucket idle long enough to be full is the same as no row.
            sqlx::query("delete from rate_buckets where at < now() - make_interval(secs => $1)")
                .bind(burst / per_second)
                .execute(pool)
                .await?;
        }
        return Ok(None);
    }
    let tokens: f64 = sqlx::query_scalar(
        "select least($2, tokens + extract(epoch from now() - at) * $3)
         from rate_buckets where key = $1",
    )
    .bind(key)
    .bind(burst)
    .bind(per_second)
    .fetch_optional(pool)
    .await?
    .unwrap_or(burst);
    Ok(Some(Duration::from_secs_f64(
        ((1.0 - tokens).max(0.0) / per_second).ceil().max(1.0),
    )))
}

/// 0–99, roughly uniform (clock nanoseconds): how often to prune.
fn rand_percent() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 100)
}
