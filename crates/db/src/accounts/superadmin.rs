//! Organizations as a whole: created (with their owner), listed, suspended and deleted
//! by the platform's administrators.

use super::*;

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct TenantOverview {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: switchboard_core::TenantStatus,
    pub created_at: DateTime<Utc>,
    pub members: i64,
    pub bot_username: Option<String>,
    pub conversations: i64,
}

pub async fn tenants_overview(
    db: impl PgExecutor<'_>,
    query: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<TenantOverview>> {
    let pattern = query
        .filter(|q| !q.trim().is_empty())
        .map(|q| format!("%{}%", q.trim()));
    Ok(sqlx::query_as(
        "select t.id, t.slug, t.name, t.status, t.created_at,
            (select count(*) from memberships m where m.tenant_id = t.id) as members,
            (select b.username from bots b where b.tenant_id = t.id and b.status in ('active', 'error')) as bot_username,
            (select count(*) from conversations c where c.tenant_id = t.id) as conversations
         from tenants t
         where ($1::text is null or t.name ilike $1 or t.slug ilike $1)
         order by t.created_at desc limit $2 offset $3",
    )
    .bind(pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?)
}

pub async fn set_tenant_status(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    status: switchboard_core::TenantStatus,
) -> Result<()> {
    sqlx::query("update tenants set status = $2 where id = $1")
        .bind(tenant)
        .bind(status)
        .execute(db)
        .await?
        .rows_affected()
        .eq(&1)
        .then_some(())
        .found()
}

pub async fn delete_tenant(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<()> {
    // The routes to the organization's bots, tokens and invitations go with it.
    sqlx::query(
        "with b as (delete from bot_routes where tenant_id = $1),
              l as (delete from live_telegram_bots where tenant_id = $1),
              t as (delete from api_token_routes where tenant_id = $1),
              i as (delete from invitation_routes where tenant_id = $1)
         delete from tenants where id = $1",
    )
    .bind(tenant)
    .execute(db)
    .await?
    .rows_affected()
    .eq(&1)
    .then_some(())
    .found()
}

/// Creates an organization owned by `owner`: a free slug from the name, the owner's
/// membership, the bot's default texts in `lang`, and the event.
pub async fn create_tenant(
    conn: &mut sqlx::PgConnection,
    name: &str,
    owner: UserId,
    lang: switchboard_core::text::Lang,
    via: &str,
) -> Result<crate::platform::Tenant> {
    let base = switchboard_core::validate::slugify(name);
    let mut slug = base.clone();
    for n in 2..10_000 {
        if !crate::platform::slug_taken(&mut *conn, &slug).await? {
            break;
        }
        slug = format!("{}-{n}", &base[..base.len().min(40)]);
    }
    let tenant =
        crate::platform::insert_tenant(&mut *conn, TenantId::new(), &slug, name.trim()).await?;
    crate::platform::add_member(&mut *conn, tenant.id, owner, Role::Owner).await?;
    crate::config::insert_default_settings(&mut *conn, tenant.id, lang).await?;
    crate::events::insert(
        conn,
        tenant.id,
        crate::events::NewEvent::new(
            switchboard_core::Event::TenantCreated {
                name: name.trim().into(),
                via: via.into(),
            },
            crate::events::Actor::User(owner),
        ),
    )
    .await?;
    Ok(tenant)
}
