//! Master key rotation (`switchboard keys rotate`): every bot token sealed under an older
//! key is opened with that key and sealed again under the current one.
//!
//! Batches of bots in (tenant, bot) order, one short transaction per batch; a row is
//! rewritten only if it still holds what was read, so a token replaced meanwhile is left
//! alone. The bots table's trigger notifies every process to drop its cached copy, which
//! it reloads with its own vault — so every running process must already know the
//! current key (see docs/deployment.md, "Rotating the master key").

use std::collections::BTreeMap;

use sqlx::PgPool;
use switchboard_core::vault::{SecretPurpose, Vault};
use switchboard_core::{BotId, TenantId};
use switchboard_db::bots;
use switchboard_db::events::{self, Actor, NewEvent};

/// Bots read and re-sealed per transaction.
pub const BATCH: i64 = 100;

/// A token the configured keys cannot open: its key is not configured, or the data is
/// damaged. Left unchanged.
#[derive(Clone, Debug)]
pub struct Unopened {
    pub tenant: TenantId,
    pub bot: BotId,
    pub key_id: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Rotation {
    /// Tokens now sealed under the current key (with `dry_run`: that would be).
    pub rotated: usize,
    /// Tenants whose tokens were rotated.
    pub tenants: usize,
    /// Tokens that changed between reading and writing (a bot reconnected or removed
    /// meanwhile): left as they are; a new token is sealed under the current key anyway.
    pub changed_meanwhile: usize,
    pub unopened: Vec<Unopened>,
}

/// Re-seals every bot token not under the vault's current key. With `dry_run`, only
/// checks that each can be opened and writes nothing. Idempotent: a second run finds
/// nothing to rotate.
pub async fn rotate_bot_tokens(
    pool: &PgPool,
    vault: &Vault,
    dry_run: bool,
    batch: i64,
) -> anyhow::Result<Rotation> {
    let current = vault.current_key_id().to_string();
    let mut report = Rotation::default();
    let mut tenants = std::collections::BTreeSet::new();
    let mut after = None;
    loop {
        let rows = bots::tokens_not_under_key(pool, &current, after, batch.max(1)).await?;
        let Some(last) = rows.last() else { break };
        after = Some((last.tenant_id, last.bot_id));

        // Decrypt and re-seal in memory first: the transaction holds no crypto work.
        let mut resealed = Vec::new();
        for row in &rows {
            let old = row.sealed();
            let purpose = SecretPurpose::BotToken {
                tenant: row.tenant_id,
                bot: row.bot_id,
            };
            match vault.reseal(purpose, &old) {
                Ok(new) => resealed.push((row, old, new)),
                Err(e) => {
                    tracing::warn!(tenant = %row.tenant_id, bot = %row.bot_id,
                        key_id = %row.token_key_id, error = %e, "bot token cannot be opened");
                    report.unopened.push(Unopened {
                        tenant: row.tenant_id,
                        bot: row.bot_id,
                        key_id: row.token_key_id.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        if dry_run {
            report.rotated += resealed.len();
            tenants.extend(resealed.iter().map(|(row, ..)| row.tenant_id));
            continue;
        }

        let mut by_tenant: BTreeMap<TenantId, (Vec<BotId>, Vec<String>)> = BTreeMap::new();
        let mut tx = pool.begin().await?;
        for (row, old, new) in &resealed {
            if bots::reseal_token(&mut *tx, row.tenant_id, row.bot_id, old, new).await? {
                let (bots, from) = by_tenant.entry(row.tenant_id).or_default();
                bots.push(row.bot_id);
                if !from.contains(&old.key_id) {
                    from.push(old.key_id.clone());
                }
            } else {
                report.changed_meanwhile += 1;
            }
        }
        for (tenant, (bots, from)) in &by_tenant {
            events::insert(
                &mut tx,
                *tenant,
                NewEvent::new(
                    switchboard_core::Event::BotTokenRotated {
                        bot_ids: bots.iter().map(|b| b.0).collect(),
                        from_key_ids: from.clone(),
                        key_id: current.to_string(),
                    },
                    Actor::System,
                ),
            )
            .await?;
        }
        tx.commit().await?;
        for (tenant, (bots, from)) in &by_tenant {
            tracing::info!(%tenant, bots = bots.len(), from = ?from, to = %current,
                "bot tokens re-sealed under the current key");
            report.rotated += bots.len();
        }
        tenants.extend(by_tenant.keys().copied());
    }
    // Counted once however many batches a tenant's bots span.
    report.tenants = tenants.len();
    Ok(report)
}
