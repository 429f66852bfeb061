//! Live desk updates: one PostgreSQL `LISTEN` per process on the desk channel, fanned
//! out to every open desk of this process through a broadcast channel, and streamed to
//! browsers as Server-Sent Events filtered to the viewer's organizations.
//!
//! Any replica's commit reaches every replica's desks (PostgreSQL carries the
//! notification). Notifications are transient: when the listening connection drops, or a
//! slow browser falls behind, the desk is told to `resync` (reload what it shows), and a
//! browser that reconnects reloads by itself — so nothing is missed, only coalesced.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use serde::{Deserialize, Serialize};
use switchboard_core::{ConversationId, TenantId, UserId};
use switchboard_db::accounts;
use switchboard_db::notify::{Heard, Listener};
use switchboard_db::notify::{ACCESS_CHANNEL, DESK_CHANNEL};
use switchboard_db::PgPool;
use tokio::sync::broadcast;

use crate::pages::{PageResult, SignedIn};
use crate::AppState;

/// Something changed in a conversation (as the notifier sends it).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct DeskEvent {
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    /// handover, inbound, message, delivery, state, rating, note
    pub event: String,
}

#[derive(Clone, Debug)]
pub enum Signal {
    Event(Arc<DeskEvent>),
    /// Events may have been lost: reload everything shown.
    Resync,
    /// This user's access changed: their streams check it again.
    Access(UserId),
}

/// The process's listener, started by the first subscriber.
pub struct DeskHub {
    pool: PgPool,
    sender: OnceLock<broadcast::Sender<Signal>>,
    /// Set when the server shuts down: open streams end, so the graceful shutdown does
    /// not wait for them (browsers reconnect to another replica).
    closing: tokio::sync::watch::Sender<bool>,
}

impl DeskHub {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            sender: OnceLock::new(),
            closing: tokio::sync::watch::channel(false).0,
        }
    }

    /// Ends every open stream (at shutdown).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.sender
            .get_or_init(|| {
                let (tx, _) = broadcast::channel(1024);
                tokio::spawn(listen(self.pool.clone(), tx.clone()));
                tx
            })
            .subscribe()
    }
}

async fn listen(pool: PgPool, tx: broadcast::Sender<Signal>) {
    loop {
        if pool.is_closed() {
            return;
        }
        let mut listener = match Listener::connect(&pool, &[DESK_CHANNEL, ACCESS_CHANNEL]).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "desk listener cannot LISTEN; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Whatever happened while not listening is unknown.
        let _ = tx.send(Signal::Resync);
        loop {
            match listener.recv().await {
                Ok(Heard::Payload { channel, payload }) if channel == ACCESS_CHANNEL => {
                    match payload.parse::<UserId>() {
                        Ok(user) => {
                            let _ = tx.send(Signal::Access(user));
                        }
                        Err(_) => tracing::warn!("unreadable access notification"),
                    }
                }
                Ok(Heard::Payload { payload: p, .. }) => {
                    match serde_json::from_str::<Vec<DeskEvent>>(&p) {
                        Ok(events) => {
                            for e in events {
                                let _ = tx.send(Signal::Event(Arc::new(e)));
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "unreadable desk notification"),
                    }
                }
                // The connection dropped; the next call reconnects.
                Ok(Heard::Reconnected) => {
                    let _ = tx.send(Signal::Resync);
                }
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "desk listener failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/desk/events", get(events))
}

/// The organizations whose events this user may see: active memberships (any role can
/// use the desk).
async fn visible_tenants(pool: &PgPool, user: UserId) -> switchboard_db::Result<HashSet<TenantId>> {
    let memberships = accounts::memberships_of(pool, user).await?;
    Ok(memberships
        .into_iter()
        .filter(|m| m.status == switchboard_core::TenantStatus::Active)
        .map(|m| m.tenant_id)
        .collect())
}

/// How often an open stream checks its session and memberships when nothing told it to
/// (a session that simply expired ends within this time; sign-out, a password change and
/// removal from a team end it at once, through [`Signal::Access`]).
const MEMBERSHIP_TTL: Duration = Duration::from_secs(20);

/// `GET /desk/events`: the viewer's desk events as Server-Sent Events (`event: desk`,
/// data `{"tenant_id", "conversation_id", "event"}`; `event: resync` to reload).
async fn events(
    State(state): State<AppState>,
    SignedIn(viewer, signed_user): SignedIn,
) -> PageResult {
    let user = signed_user.id;
    let tenants = visible_tenants(&state.pool, user).await?;
    let rx = state.web.desk.subscribe();
    let closing = state.web.desk.closing.subscribe();
    let session = viewer.auth.session.id();
    let stream = desk_stream(state.pool.clone(), user, session, tenants, rx, closing);
    let mut response: Response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // Proxies (nginx) must pass events through as they come.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Is the stream still allowed: its session alive, and every organization it was opened
/// for still the viewer's? (`None`: it must end; the browser reconnects and is asked
/// again.)
async fn still_allowed(
    pool: &PgPool,
    user: UserId,
    session: Option<tower_sessions::session::Id>,
    tenants: &HashSet<TenantId>,
) -> Option<HashSet<TenantId>> {
    use axum_login::AuthUser;
    use tower_sessions::SessionStore;
    let store = crate::session_store::DigestStore::new(pool.clone());
    let record = store.load(&session?).await.ok()??;
    // Signed in as this user, with the password it has now (a password change ends the
    // other sessions by changing this hash).
    let current = crate::session::web_user(pool, user).await.ok()?;
    let hash = serde_json::to_value(current.session_auth_hash()).ok()?;
    if !record
        .data
        .values()
        .any(|v| v.get("auth_hash") == Some(&hash))
    {
        return None;
    }
    let now = visible_tenants(pool, user).await.ok()?;
    tenants.is_subset(&now).then_some(now)
}

fn desk_stream(
    pool: PgPool,
    user: UserId,
    session: Option<tower_sessions::session::Id>,
    tenants: HashSet<TenantId>,
    rx: broadcast::Receiver<Signal>,
    closing: tokio::sync::watch::Receiver<bool>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    struct S {
        pool: PgPool,
        user: UserId,
        session: Option<tower_sessions::session::Id>,
        tenants: HashSet<TenantId>,
        rx: broadcast::Receiver<Signal>,
        closing: tokio::sync::watch::Receiver<bool>,
        tick: tokio::time::Interval,
        hello: bool,
    }
    // The handler has just checked: the first look is one period away.
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + MEMBERSHIP_TTL, MEMBERSHIP_TTL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let s = S {
        pool,
        user,
        session,
        tenants,
        rx,
        closing,
        tick,
        hello: true,
    };
    futures::stream::unfold(s, |mut s| async move {
        if s.hello {
            s.hello = false;
            return Some((Ok(Event::default().event("ready").data("{}")), s));
        }
        loop {
            if *s.closing.borrow() {
                return None;
            }
            let received = tokio::select! {
                r = s.rx.recv() => r,
                _ = s.closing.changed() => return None,
                _ = s.tick.tick() => Ok(Signal::Access(s.user)),
            };
            let signal = match received {
                Ok(signal) => signal,
                Err(broadcast::error::RecvError::Lagged(_)) => Signal::Resync,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            let event = match signal {
                Signal::Resync => Event::default().event("resync").data("{}"),
                Signal::Access(user) if user == s.user => {
                    match still_allowed(&s.pool, s.user, s.session, &s.tenants).await {
                        Some(now) => {
                            s.tenants = now;
                            continue;
                        }
                        None => return None,
                    }
                }
                Signal::Access(_) => continue,
                Signal::Event(e) => {
                    if !s.tenants.contains(&e.tenant_id) {
                        continue;
                    }
                    Event::default()
                        .event("desk")
                        .data(serde_json::to_string(&*e).expect("event serialises"))
                }
            };
            return Some((Ok(event), s));
        }
    })
}
