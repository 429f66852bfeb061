//! Switchboard's domain, with no I/O: typed ids, roles and permissions, the conversation
//! state machine, what the bot does with an update, the answer matcher, validation and
//! the token vault.

pub mod bot;
pub mod conversation;
pub mod eval;
pub mod event;
pub mod format;
pub mod hours;
pub mod ids;
pub mod matcher;
pub mod password;
pub mod role;
pub mod status;
pub mod text;
pub mod translations;
pub mod validate;
pub mod vault;

pub use conversation::{ConvStatus, HandoverReason};
pub use event::{Event, EventKind};
pub use ids::*;
pub use role::{Permission, Role};
pub use status::{DeliveryStatus, Direction, TenantStatus};
pub use translations::Translations;
