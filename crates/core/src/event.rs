//! What the events log records, as types: one [`Event`] variant per kind, with the payload
//! that kind stores. The kind's name (`command.created`) and the payload's JSON are what
//! the `events` table holds; [`Event::from_stored`] reads them back, so the log can say in
//! words what happened (older rows whose payload does not fit are shown raw).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

macro_rules! events {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal { $($field:ident : $ty:ty),* $(,)? } )*) => {
        /// One entry of the events log: its kind and what it says.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "data")]
        pub enum Event {
            $( $(#[$doc])* #[serde(rename = $name)] $variant { $(#[serde(default)] $field: $ty),* }, )*
        }

        /// The kind of an [`Event`], without its payload.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $( $variant, )*
        }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),*];

            /// The name stored in the `events` table.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( EventKind::$variant => $name, )*
                }
            }

            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $( $name => Some(EventKind::$variant), )*
                    _ => None,
                }
            }
        }

        impl Event {
            pub fn kind(&self) -> EventKind {
                match self {
                    $( Event::$variant { .. } => EventKind::$variant, )*
                }
            }
        }
    };
}

events! {
    TenantCreated = "tenant.created" { name: String, via: String }

    BotConnected = "bot.connected" { bot_id: Uuid, username: String, mode: String, replaced: Option<String> }
    BotRemoved = "bot.removed" { bot_id: Uuid, username: String }
    BotWebhookRegistered = "bot.webhook_registered" { bot_id: Uuid, url: String }
    BotModeChanged = "bot.mode_changed" { bot_id: Uuid, from: String, to: String }
    BotSendRateChanged = "bot.send_rate_changed" { bot_id: Uuid, from: Option<i32>, to: Option<i32> }
    /// The platform's key was rotated and these bots' tokens re-encrypted.
    BotTokenRotated = "bot.token_rotated" { bot_ids: Vec<Uuid>, from_key_ids: Vec<String>, key_id: String }

    ApiTokenCreated = "api_token.created" { name: String, prefix: String, role: Option<String>, user: Option<String>, via: Option<String> }
    ApiTokenRevoked = "api_token.revoked" { token_id: Uuid }

    SettingsUpdated = "settings.updated" { fields: Vec<String> }

    CommandCreated = "command.created" { command: String }
    CommandUpdated = "command.updated" { command: String }
    CommandDeleted = "command.deleted" { command: String }

    MenuCreated = "menu.created" { menu_id: Uuid, name: String }
    MenuUpdated = "menu.updated" { menu_id: Uuid, name: String }
    MenuDeleted = "menu.deleted" { menu_id: Uuid, name: String }

    CannedCreated = "canned.created" { id: Uuid, shortcut: String }
    CannedUpdated = "canned.updated" { id: Uuid, shortcut: String }
    CannedDeleted = "canned.deleted" { id: Uuid, shortcut: String }

    RuleCreated = "rule.created" { rule_id: Uuid, title: String }
    RuleUpdated = "rule.updated" { rule_id: Uuid, title: String }
    RuleDeleted = "rule.deleted" { rule_id: Uuid, title: String }
    RuleExampleAdded = "rule.example_added" { rule_id: Uuid, example: String }
    RulesImported = "rule.imported" { created: u64, updated: u64 }
    RulesEnabled = "rule.bulk_enabled" { rule_ids: Vec<Uuid>, changed: u64 }
    RulesDisabled = "rule.bulk_disabled" { rule_ids: Vec<Uuid>, changed: u64 }

    MemberInvited = "member.invited" { email: String, role: String }
    MemberJoined = "member.joined" { email: String, role: String }
    MemberRoleChanged = "member.role_changed" { user_id: Uuid, email: String, from: String, to: String }
    MemberRemoved = "member.removed" { user_id: Uuid, email: String, role: String }
    InvitationRevoked = "invitation.revoked" { invitation_id: Uuid }

    /// What was erased for a right-to-be-forgotten request (the id now points nowhere).
    EndUserErased = "end_user.erased" { end_user_id: Uuid, messages: u64, conversations: u64, events: u64, raw_updates: u64 }
    /// The user blocked the bot (seen in an update, or `detected: "delivery"` from a 403).
    EndUserBlockedBot = "end_user.blocked_bot" { detected: Option<String> }
    EndUserUnblockedBot = "end_user.unblocked_bot" {}

    ConversationOpened = "conversation.opened" {}
    ConversationHandover = "conversation.handover" { reason: String, from: String }
    ConversationClaimed = "conversation.claimed" {}
    ConversationAssigned = "conversation.assigned" { to: Uuid }
    ConversationReleased = "conversation.released" {}
    ConversationClosed = "conversation.closed" { resolution: Option<String> }
    ConversationReopened = "conversation.reopened" {}
    ConversationRated = "conversation.rated" { rating: i16 }
    ButtonPressed = "button.pressed" { button_id: String, label: String }
    SuggestionAccepted = "suggestion.accepted" { rule_id: Uuid }
    SuggestionRejected = "suggestion.rejected" {}
    AnswerFeedback = "answer.feedback" { rule_id: Uuid, helped: bool }

    MessageDeliveryFailed = "message.delivery_failed" { message_id: i64, reason: String }
}

impl Event {
    /// The payload as stored in `events.data`.
    pub fn data(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => map.remove("data").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// An entry read back from the table; `None` for a kind this version does not know or
    /// a payload of another shape.
    pub fn from_stored(kind: &str, data: &Value) -> Option<Event> {
        EventKind::parse(kind)?;
        serde_json::from_value(serde_json::json!({"kind": kind, "data": data})).ok()
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_is_stored_as_its_kind_and_payload_and_read_back() {
        let e = Event::CommandDeleted {
            command: "prices".into(),
        };
        assert_eq!(e.kind().as_str(), "command.deleted");
        assert_eq!(e.data(), json!({"command": "prices"}));
        assert_eq!(Event::from_stored("command.deleted", &e.data()), Some(e));
        let opened = Event::ConversationOpened {};
        assert_eq!(opened.data(), json!({}));
        assert_eq!(
            Event::from_stored("conversation.opened", &json!({})),
            Some(opened)
        );
    }

    #[test]
    fn unknown_kinds_and_foreign_payloads_are_not_guessed() {
        assert_eq!(Event::from_stored("no.such", &json!({})), None);
        assert_eq!(
            Event::from_stored("rule.created", &json!({"rule_id": "not a uuid"})),
            None
        );
        // A field an older version did not write defaults instead of failing.
        assert_eq!(
            Event::from_stored("menu.deleted", &json!({"menu_id": Uuid::nil()})),
            Some(Event::MenuDeleted {
                menu_id: Uuid::nil(),
                name: String::new()
            })
        );
    }

    #[test]
    fn every_kind_name_is_unique_and_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for k in EventKind::ALL {
            assert!(seen.insert(k.as_str()), "{k} twice");
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
        }
    }
}
