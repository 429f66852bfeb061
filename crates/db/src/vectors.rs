//! Stored sentence vectors of a tenant's rule texts, by model (`sentence_vectors`), so
//! that building a matcher index encodes only texts no process has encoded before.

use sqlx::PgExecutor;
use switchboard_core::TenantId;

use crate::Result;

/// A text's key: the SHA-256 of the text.
pub fn text_hash(text: &str) -> Vec<u8> {
    switchboard_core::vault::secret_digest(text)
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The stored vectors among `hashes`, as (hash, vector).
pub async fn get(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    model: &str,
    hashes: &[Vec<u8>],
) -> Result<Vec<(Vec<u8>, Vec<f32>)>> {
    let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "select text_hash, vector from sentence_vectors
         where tenant_id = $1 and model = $2 and text_hash = any($3)",
    )
    .bind(tenant)
    .bind(model)
    .bind(hashes)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(h, v)| (h, from_bytes(&v))).collect())
}

/// Stores vectors (a text already stored keeps its row).
pub async fn put(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    model: &str,
    items: &[(Vec<u8>, Vec<f32>)],
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let hashes: Vec<&[u8]> = items.iter().map(|(h, _)| h.as_slice()).collect();
    let vectors: Vec<Vec<u8>> = items.iter().map(|(_, v)| to_bytes(v)).collect();
    sqlx::query(
        "insert into sentence_vectors (tenant_id, model, text_hash, vector)
         select $1, $2, h, v from unnest($3::bytea[], $4::bytea[]) as x(h, v)
         on conflict do nothing",
    )
    .bind(tenant)
    .bind(model)
    .bind(&hashes)
    .bind(&vectors)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes the tenant's vectors of this model whose texts are not among `keep` (texts no
/// rule uses any more). Returns how many.
pub async fn keep_only(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    model: &str,
    keep: &[Vec<u8>],
) -> Result<u64> {
    Ok(sqlx::query(
        "delete from sentence_vectors
         where tenant_id = $1 and model = $2 and not (text_hash = any($3))",
    )
    .bind(tenant)
    .bind(model)
    .bind(keep)
    .execute(db)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    #[test]
    fn vectors_round_trip_through_bytes() {
        let v = vec![0.5f32, -1.25, 3.0e-8];
        assert_eq!(super::from_bytes(&super::to_bytes(&v)), v);
    }
}
