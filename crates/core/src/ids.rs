//! Typed identifiers, so a `RuleId` can never be passed where a `TenantId` is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

macro_rules! serial_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(/// An organization using Switchboard.
    TenantId);
uuid_id!(/// A platform account (admin, operator, superuser).
    UserId);
uuid_id!(/// A tenant's Telegram bot.
    BotId);
uuid_id!(/// An answer rule.
    RuleId);
uuid_id!(/// A menu (a set of rows of inline buttons).
    MenuId);
uuid_id!(/// An inline button of a menu or of a rule's answer.
    ButtonId);
uuid_id!(/// A custom bot command.
    CommandId);
uuid_id!(/// A Telegram user talking to a tenant's bot.
    EndUserId);
uuid_id!(/// One conversation between an end user and the tenant.
    ConversationId);
uuid_id!(/// A personal API token.
    ApiTokenId);
serial_id!(/// A stored message (inbound or outbound).
    MessageId);
serial_id!(/// A stored event (audit log entry).
    EventId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings_and_json() {
        let id = RuleId::new();
        let parsed: RuleId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert!("not-a-uuid".parse::<RuleId>().is_err());
    }

    #[test]
    fn new_ids_are_time_ordered() {
        let a = ConversationId::new();
        let b = ConversationId::new();
        assert!(a < b);
    }
}
