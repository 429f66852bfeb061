//! The events log: every action of users, operators, the API and the system.

use serde_json::Value;
use sqlx::{PgConnection, QueryBuilder};
use switchboard_core::{ConversationId, EndUserId, Event, TenantId};

use crate::Result;

/// Who did it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    EndUser(EndUserId),
    User(switchboard_core::UserId),
    /// A user acting through an API token.
    Api(switchboard_core::UserId),
    System,
}

impl Actor {
    fn parts(&self) -> (&'static str, Option<String>) {
        match self {
            Actor::EndUser(id) => ("end_user", Some(id.to_string())),
            Actor::User(id) => ("user", Some(id.to_string())),
            Actor::Api(id) => ("api", Some(id.to_string())),
            Actor::System => ("system", None),
        }
    }
}

/// An entry to add to the log: a typed [`Event`] and who caused it.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub kind: &'static str,
    pub actor: Actor,
    pub conversation_id: Option<ConversationId>,
    pub end_user_id: Option<EndUserId>,
    pub data: Value,
}

impl NewEvent {
    pub fn new(event: Event, actor: Actor) -> Self {
        Self {
            kind: event.kind().as_str(),
            actor,
            conversation_id: None,
            end_user_id: None,
            data: event.data(),
        }
    }

    pub fn conversation(mut self, conversation: ConversationId, end_user: EndUserId) -> Self {
        self.conversation_id = Some(conversation);
        self.end_user_id = Some(end_user);
        self
    }

    pub fn end_user(mut self, end_user: EndUserId) -> Self {
        self.end_user_id = Some(end_user);
        self
    }
}

pub async fn insert_many(
    conn: &mut PgConnection,
    tenant: TenantId,
    events: &[NewEvent],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut qb = QueryBuilder::new(
        "insert into events (tenant_id, kind, actor_type, actor_id, conversation_id, end_user_id, data) ",
    );
    qb.push_values(events, |mut b, e| {
        let (actor_type, actor_id) = e.actor.parts();
        b.push_bind(tenant)
            .push_bind(e.kind)
            .push_bind(actor_type)
            .push_bind(actor_id)
            .push_bind(e.conversation_id)
            .push_bind(e.end_user_id)
            .push_bind(&e.data);
    });
    qb.build().execute(conn).await?;
    Ok(())
}

pub async fn insert(conn: &mut PgConnection, tenant: TenantId, event: NewEvent) -> Result<()> {
    insert_many(conn, tenant, std::slice::from_ref(&event)).await
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub conversation_id: Option<ConversationId>,
    pub data: Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub async fn list_for_conversation(
    db: impl sqlx::PgExecutor<'_>,
    tenant: TenantId,
    conversation: ConversationId,
) -> Result<Vec<EventRow>> {
    Ok(sqlx::query_as(
        "select id, kind, actor_type, actor_id, conversation_id, data, created_at from events
         where tenant_id = $1 and conversation_id = $2 order by id",
    )
    .bind(tenant)
    .bind(conversation)
    .fetch_all(db)
    .await?)
}
