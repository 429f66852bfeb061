//! The application layer: each change to a tenant's data is one function here, taking
//! the acting member ([`Ctx`]) and the input. It checks the member's permission,
//! validates, writes in one transaction with one typed event, then tells the caches and
//! Telegram. The JSON API and the HTML panel are thin adapters over it, so both paths
//! store the same state, log the same event and refuse the same input with the same
//! [`AppError`].

pub mod bot;
pub mod buttons;
pub mod canned;
pub mod commands;
pub mod conversations;
pub mod end_users;
pub mod error;
pub mod log;
pub mod menus;
pub mod rules;
pub mod settings;
pub mod team;
pub mod tokens;

use std::sync::Arc;

use switchboard_core::{Permission, Role, TenantId, UserId};
use switchboard_db::events::Actor;
use switchboard_db::{PgPool, Postgres, Transaction};
use switchboard_telegram::operator::Operator;
use switchboard_telegram::Telegram;

pub use error::{AppError, AppResult};

type Tx = Transaction<'static, Postgres>;

/// Logs what the acting member did, in the change's transaction.
async fn record(tx: &mut Tx, ctx: &Ctx, event: switchboard_core::Event) -> AppResult<()> {
    let entry = switchboard_db::events::NewEvent::new(event, ctx.actor());
    Ok(switchboard_db::events::insert(tx, ctx.tenant, entry).await?)
}

async fn commit(tx: Tx) -> AppResult<()> {
    Ok(switchboard_db::commit(tx).await?)
}

/// What the application layer works with: the database and the Telegram side (its
/// caches, its command publishing, its conversation actions).
#[derive(Clone)]
pub struct App {
    pub pool: PgPool,
    /// Where reads that may lag a moment go (the log): a read replica, or `pool`.
    pub reads: PgPool,
    pub telegram: Arc<Telegram>,
}

impl App {
    pub fn new(pool: PgPool, telegram: Arc<Telegram>) -> Self {
        Self {
            reads: pool.clone(),
            pool,
            telegram,
        }
    }

    /// A transaction for one change to `tenant`'s data, scoped to it: it runs as the
    /// tenant role, so PostgreSQL's row-level security hides and protects every other
    /// tenant's rows even from a query that forgot its tenant filter.
    async fn begin(&self, tenant: TenantId) -> AppResult<Tx> {
        Ok(switchboard_db::begin_scoped(&self.pool, tenant).await?)
    }

    /// A transaction for reading `tenant`'s data, scoped like [`App::begin`]; dropped
    /// without a commit. (The platform path — `self.pool` as it is — is for what crosses
    /// tenants or searches with indexes row-level security would bar: the log.)
    async fn read(&self, tenant: TenantId) -> AppResult<Tx> {
        self.begin(tenant).await
    }

    /// The tenant's configuration changed: every process reloads it, and Telegram's
    /// command menu is published again in the background (best effort).
    fn config_changed(&self, tenant: TenantId, republish: bool) {
        self.telegram.config_changed(tenant);
        if republish {
            self.republish_commands(tenant);
        }
    }

    /// Publishes the bot's command list to Telegram in the background (best effort).
    pub fn republish_commands(&self, tenant: TenantId) {
        let telegram = self.telegram.clone();
        tokio::spawn(async move {
            if let Err(e) = telegram.publish_commands(tenant).await {
                tracing::warn!(%tenant, error = %e, "could not publish commands to Telegram");
            }
        });
    }
}

/// Who acts, in which organization, with which role, and whether through the API
/// (the log tells the two apart).
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub tenant: TenantId,
    pub user: UserId,
    pub role: Role,
    pub via_api: bool,
}

impl Ctx {
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    pub fn actor(&self) -> Actor {
        self.operator().actor()
    }

    pub fn operator(&self) -> Operator {
        Operator {
            user: self.user,
            role: self.role,
            via_api: self.via_api,
        }
    }
}
