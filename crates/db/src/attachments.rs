//! Files operators send, kept with their message.

use sqlx::PgExecutor;
use switchboard_core::{MessageId, TenantId};

use crate::error::OptionExt;
use crate::Result;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Attachment {
    pub file_name: String,
    pub content_type: String,
    pub size: i32,
    pub data: Vec<u8>,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    message: MessageId,
    file_name: &str,
    content_type: &str,
    data: &[u8],
) -> Result<()> {
    sqlx::query(
        "insert into attachments (tenant_id, message_id, file_name, content_type, size, data)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant)
    .bind(message)
    .bind(file_name)
    .bind(content_type)
    .bind(data.len() as i32)
    .bind(data)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    message: MessageId,
) -> Result<Attachment> {
    sqlx::query_as("select file_name, content_type, size, data from attachments where tenant_id = $1 and message_id = $2")
        .bind(tenant)
        .bind(message)
        .fetch_optional(db)
        .await?
        .found()
}
