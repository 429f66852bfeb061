//! Personal API tokens: a member's key to the API of one organization, with their role
//! there. The secret is shown once; only its digest is stored.

use switchboard_core::validate::{self, Invalid};
use switchboard_core::vault::generate_api_token;
use switchboard_core::{ApiTokenId, Event};
use switchboard_db::events::{self, Actor, NewEvent};
use switchboard_db::{accounts, platform, PgPool};

use crate::{AppResult, Ctx};

/// A token just made: the secret (shown once) and the prefix it is listed by.
pub struct NewToken {
    pub token: String,
    pub prefix: String,
}

/// Makes a token for the acting member (`ctx.user`). `by_cli` names the user for the
/// log when an operator of the platform made it with `switchboard token create`.
pub async fn create(
    pool: &PgPool,
    ctx: &Ctx,
    name: &str,
    by_cli: Option<&str>,
) -> AppResult<NewToken> {
    let mut errors = Invalid::new();
    errors.check("name", validate::text(name, 100));
    errors.into_result()?;
    let name = name.trim();
    let (token, digest, prefix) = generate_api_token();
    let mut tx = switchboard_db::begin(pool).await?;
    platform::insert_api_token(&mut *tx, ctx.tenant, ctx.user, name, &digest, &prefix).await?;
    let (event, actor) = match by_cli {
        Some(email) => (
            Event::ApiTokenCreated {
                name: name.into(),
                prefix: prefix.clone(),
                role: None,
                user: Some(email.into()),
                via: Some("cli".into()),
            },
            Actor::System,
        ),
        None => (
            Event::ApiTokenCreated {
                name: name.into(),
                prefix: prefix.clone(),
                role: Some(ctx.role.as_str().into()),
                user: None,
                via: None,
            },
            Actor::User(ctx.user),
        ),
    };
    events::insert(&mut tx, ctx.tenant, NewEvent::new(event, actor)).await?;
    switchboard_db::commit(tx).await?;
    Ok(NewToken { token, prefix })
}

/// Revokes one of the acting member's own tokens.
pub async fn revoke(pool: &PgPool, ctx: &Ctx, id: ApiTokenId) -> AppResult<()> {
    let mut tx = switchboard_db::begin(pool).await?;
    accounts::revoke_token(&mut *tx, ctx.tenant, ctx.user, id).await?;
    let event = Event::ApiTokenRevoked { token_id: id.0 };
    events::insert(
        &mut tx,
        ctx.tenant,
        NewEvent::new(event, Actor::User(ctx.user)),
    )
    .await?;
    switchboard_db::commit(tx).await?;
    Ok(())
}
