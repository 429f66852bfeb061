//! The tenant's own bot commands (`/prices` → a text).

use super::*;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CommandRow {
    pub id: CommandId,
    pub command: String,
    pub description: String,
    pub response: String,
    pub enabled: bool,
    /// `description` and `response` in other languages.
    #[sqlx(json)]
    pub translations: Translations,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(super) const COMMAND_COLUMNS: &str =
    "id, command, description, response, enabled, translations, created_at, updated_at";

pub async fn list_commands(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Vec<CommandRow>> {
    Ok(sqlx::query_as(&format!(
        "select {COMMAND_COLUMNS} from commands where tenant_id = $1 order by command"
    ))
    .bind(tenant)
    .fetch_all(db)
    .await?)
}

pub async fn get_command(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: CommandId,
) -> Result<CommandRow> {
    sqlx::query_as(&format!(
        "select {COMMAND_COLUMNS} from commands where tenant_id = $1 and id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await?
    .found()
}

pub async fn insert_command(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    command: &str,
    description: &str,
    response: &str,
    enabled: bool,
    translations: &Translations,
) -> Result<CommandRow> {
    Ok(sqlx::query_as(&format!(
        "insert into commands (tenant_id, id, command, description, response, enabled,
            translations)
         values ($1, $2, $3, $4, $5, $6, $7) returning {COMMAND_COLUMNS}"
    ))
    .bind(tenant)
    .bind(CommandId::new())
    .bind(command)
    .bind(description)
    .bind(response)
    .bind(enabled)
    .bind(sqlx::types::Json(translations))
    .fetch_one(db)
    .await?)
}

#[allow(clippy::too_many_arguments)]
pub async fn update_command(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: CommandId,
    command: Option<&str>,
    description: Option<&str>,
    response: Option<&str>,
    enabled: Option<bool>,
    translations: Option<&Translations>,
) -> Result<CommandRow> {
    sqlx::query_as(&format!(
        "update commands set command = coalesce($3, command),
            description = coalesce($4, description), response = coalesce($5, response),
            enabled = coalesce($6, enabled), translations = coalesce($7, translations)
         where tenant_id = $1 and id = $2 returning {COMMAND_COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(command)
    .bind(description)
    .bind(response)
    .bind(enabled)
    .bind(translations.map(sqlx::types::Json))
    .fetch_optional(db)
    .await?
    .found()
}

pub async fn delete_command(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: CommandId,
) -> Result<()> {
    let done = sqlx::query("delete from commands where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}
