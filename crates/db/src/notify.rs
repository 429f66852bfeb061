//! Post-commit notifications, coalesced.
//!
//! A transaction that calls `pg_notify` takes a database-wide lock while it commits, so
//! notifying from inside every webhook transaction would make them commit one at a time.
//! Instead, callers note what happened *after* their commit, and one background task per
//! process sends the notifications a few milliseconds later, merged: one wake-up for any
//! number of chats queued for delivery, desk events batched into JSON arrays. A
//! notification lost in a crash costs latency only: the delivery workers poll, and desks
//! catch up when they reconnect.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sqlx::PgPool;
use switchboard_core::{ConversationId, TenantId, UserId};

use crate::outbox::DELIVERY_CHANNEL;
/// The channel desks listen on (payload: a JSON array of desk events).
pub const DESK_CHANNEL: &str = "switchboard_desk";
/// A user's access changed — signed out, password changed, removed from a team, role
/// changed (payload: the user's id): their open live streams check again at once.
pub const ACCESS_CHANNEL: &str = "switchboard_access";

/// Tells every process that `user`'s access changed (sent at once: it is rare, and a
/// stream that outlives its right must end now).
pub async fn access_changed(db: impl sqlx::PgExecutor<'_>, user: UserId) -> crate::Result<()> {
    sqlx::query("select pg_notify($1, $2)")
        .bind(ACCESS_CHANNEL)
        .bind(user.to_string())
        .execute(db)
        .await?;
    Ok(())
}
/// PostgreSQL's limit for a notification payload is 8000 bytes.
const MAX_PAYLOAD: usize = 7900;
const TICK: Duration = Duration::from_millis(5);

#[derive(Default)]
struct Pending {
    deliveries: bool,
    desk: BTreeSet<String>,
}

/// Handle to the process's notifier. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    pending: Arc<Mutex<Pending>>,
    wake: Arc<tokio::sync::Notify>,
}

impl Notifier {
    /// Starts the background task that sends the notifications on `pool`.
    pub fn start(pool: PgPool) -> Self {
        let notifier = Self {
            pending: Arc::default(),
            wake: Arc::new(tokio::sync::Notify::new()),
        };
        tokio::spawn(notifier.clone().run(pool));
        notifier
    }

    /// Chats were queued for delivery (committed): wake the delivery workers.
    pub fn deliveries_queued(&self) {
        self.pending.lock().deliveries = true;
        self.wake.notify_one();
    }

    /// Something changed in a conversation the desks show (`event`: message, state, …).
    pub fn desk(&self, tenant: TenantId, conversation: ConversationId, event: &str) {
        let item = serde_json::json!({
            "tenant_id": tenant, "conversation_id": conversation, "event": event
        })
        .to_string();
        self.pending.lock().desk.insert(item);
        self.wake.notify_one();
    }

    async fn run(self, pool: PgPool) {
        loop {
            self.wake.notified().await;
            // Let a burst of commits pile up into one round of notifications.
            tokio::time::sleep(TICK).await;
            let Pending { deliveries, desk } = std::mem::take(&mut *self.pending.lock());
            let mut sends: Vec<(&str, String)> = Vec::new();
            if deliveries {
                sends.push((DELIVERY_CHANNEL, String::new()));
            }
            let mut batch = String::from("[");
            for item in desk {
                if batch.len() + item.len() + 2 > MAX_PAYLOAD && batch.len() > 1 {
                    batch.push(']');
                    sends.push((
                        DESK_CHANNEL,
                        std::mem::replace(&mut batch, String::from("[")),
                    ));
                }
                if batch.len() > 1 {
                    batch.push(',');
                }
                batch.push_str(&item);
            }
            if batch.len() > 1 {
                batch.push(']');
                sends.push((DESK_CHANNEL, batch));
            }
            for (channel, payload) in sends {
                if let Err(e) = sqlx::query("select pg_notify($1, $2)")
                    .bind(channel)
                    .bind(&payload)
                    .execute(&pool)
                    .await
                {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::debug!(error = %e, channel, "notification not sent");
                }
            }
        }
    }
}

/// What a [`Listener`] heard.
pub enum Heard {
    /// A notification: its channel and payload.
    Payload { channel: String, payload: String },
    /// The connection dropped and was made again: notifications may have been missed.
    Reconnected,
}

/// LISTEN on some channels over its own connection.
pub struct Listener(sqlx::postgres::PgListener);

impl Listener {
    pub async fn connect(pool: &PgPool, channels: &[&str]) -> crate::Result<Self> {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen_all(channels.iter().copied()).await?;
        Ok(Listener(listener))
    }

    /// The next notification; after a dropped connection, [`Heard::Reconnected`] first.
    pub async fn recv(&mut self) -> crate::Result<Heard> {
        Ok(match self.0.try_recv().await? {
            Some(n) => Heard::Payload {
                channel: n.channel().to_string(),
                payload: n.payload().to_string(),
            },
            None => Heard::Reconnected,
        })
    }
}
