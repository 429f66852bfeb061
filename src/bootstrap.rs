//! Bootstrap operations behind the CLI: create a tenant with its owner, a personal API
//! token, a platform superuser. Each validates everything first and writes in one
//! transaction, so bad arguments change nothing.

use anyhow::{anyhow, bail};
use sqlx::PgPool;
use switchboard_core::password::{hash_password, verify_password};
use switchboard_core::text::Lang;
use switchboard_core::validate;
use switchboard_core::{Role, UserId};
use switchboard_db::platform::{self, Tenant, User};
use switchboard_db::{accounts, DbError};

pub struct CreatedTenant {
    pub tenant: Tenant,
    pub owner: User,
    pub owner_existed: bool,
}

pub async fn create_tenant(
    pool: &PgPool,
    name: &str,
    owner_email: &str,
    owner_password: &str,
    language: Lang,
) -> anyhow::Result<CreatedTenant> {
    let name = name.trim();
    validate::text(name, 200).map_err(|m| anyhow!("--name {m}"))?;
    validate::email(owner_email).map_err(|m| anyhow!("--owner-email {m}"))?;
    validate::password(owner_password).map_err(|m| anyhow!("--owner-password {m}"))?;
    let existing = platform::find_user_by_email(pool, owner_email).await?;
    if let Some(u) = &existing {
        let matches = u
            .password_hash
            .as_deref()
            .is_some_and(|h| verify_password(owner_password, h));
        if !matches {
            bail!("a user with email {owner_email} already exists and the password does not match theirs");
        }
    }
    let mut tx = pool.begin().await?;
    let owner = match existing.clone() {
        Some(u) => u,
        None => {
            let hash = tokio::task::spawn_blocking({
                let p = owner_password.to_string();
                move || hash_password(&p)
            })
            .await?;
            platform::insert_user(&mut *tx, UserId::new(), owner_email, Some(&hash), "", false)
                .await?
        }
    };
    let tenant = accounts::create_tenant(&mut tx, name, owner.id, language, "cli").await?;
    tx.commit().await?;
    Ok(CreatedTenant {
        tenant,
        owner,
        owner_existed: existing.is_some(),
    })
}

pub struct CreatedToken {
    pub tenant: Tenant,
    pub user: User,
    pub role: Role,
    pub token: String,
    pub prefix: String,
}

pub async fn create_token(
    pool: &PgPool,
    tenant: &str,
    email: &str,
    label: &str,
) -> anyhow::Result<CreatedToken> {
    validate::text(label, 100).map_err(|m| anyhow!("--name {m}"))?;
    let tenant = match platform::find_tenant(pool, tenant.trim()).await {
        Ok(t) => t,
        Err(DbError::NotFound) => bail!("no tenant with slug or id {tenant:?}"),
        Err(e) => return Err(e.into()),
    };
    let user = platform::find_user_by_email(pool, email)
        .await?
        .ok_or_else(|| anyhow!("no user with email {email}"))?;
    let role = platform::member_role(pool, tenant.id, user.id)
        .await?
        .ok_or_else(|| anyhow!("{email} is not a member of {}", tenant.slug))?;
    let ctx = switchboard_app::Ctx {
        tenant: tenant.id,
        user: user.id,
        role,
        via_api: false,
    };
    let switchboard_app::tokens::NewToken { token, prefix } =
        switchboard_app::tokens::create(pool, &ctx, label, Some(&user.email))
            .await
            .map_err(|e| anyhow!("{e}"))?;
    Ok(CreatedToken {
        tenant,
        user,
        role,
        token,
        prefix,
    })
}

/// Creates a superuser, or makes an existing user one (setting the given password).
pub async fn create_superuser(
    pool: &PgPool,
    email: &str,
    password: &str,
) -> anyhow::Result<(User, bool)> {
    validate::email(email).map_err(|m| anyhow!("--email {m}"))?;
    validate::password(password).map_err(|m| anyhow!("--password {m}"))?;
    let hash = tokio::task::spawn_blocking({
        let p = password.to_string();
        move || hash_password(&p)
    })
    .await?;
    match platform::find_user_by_email(pool, email).await? {
        Some(u) => {
            platform::set_superuser(pool, u.id, &hash).await?;
            Ok((platform::get_user(pool, u.id).await?, true))
        }
        None => Ok((
            platform::insert_user(pool, UserId::new(), email, Some(&hash), "", true).await?,
            false,
        )),
    }
}
