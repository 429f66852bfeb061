//! The conversation state machine: `bot` → `waiting` → `assigned` → `closed`.
//!
//! The bot talks while a conversation is `bot`. A hand-over moves it to `waiting` (the
//! queue); an operator claims it (`assigned`), may release it back, and closes it. A
//! closed conversation stays closed: the user's next message opens a new one, unless an
//! operator reopens it first.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::UserId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvStatus {
    Bot,
    Waiting,
    Assigned,
    Closed,
}

impl ConvStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ConvStatus::Bot => "bot",
            ConvStatus::Waiting => "waiting",
            ConvStatus::Assigned => "assigned",
            ConvStatus::Closed => "closed",
        }
    }

    /// While a human is involved, user messages go to the desk, not the matcher.
    pub fn with_humans(&self) -> bool {
        matches!(self, ConvStatus::Waiting | ConvStatus::Assigned)
    }

    pub fn is_open(&self) -> bool {
        *self != ConvStatus::Closed
    }
}

impl fmt::Display for ConvStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown conversation status `{0}` (expected bot, waiting, assigned or closed)")]
pub struct UnknownStatus(pub String);

impl TryFrom<String> for ConvStatus {
    type Error = UnknownStatus;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for ConvStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bot" => Ok(ConvStatus::Bot),
            "waiting" => Ok(ConvStatus::Waiting),
            "assigned" => Ok(ConvStatus::Assigned),
            "closed" => Ok(ConvStatus::Closed),
            other => Err(UnknownStatus(other.to_string())),
        }
    }
}

/// Why a conversation was handed to humans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoverReason {
    /// The matcher found no confident answer.
    NoMatch,
    /// The user asked (`/operator`).
    Requested,
    /// The user pressed a hand-over button.
    Button,
    /// The user sent something the bot does not read (photo, voice, …).
    Media,
}

impl HandoverReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            HandoverReason::NoMatch => "no_match",
            HandoverReason::Requested => "requested",
            HandoverReason::Button => "button",
            HandoverReason::Media => "media",
        }
    }
}

/// The part of a conversation the operator transitions look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvState {
    pub status: ConvStatus,
    pub assignee: Option<UserId>,
}

/// An operator's action on a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatorAction {
    /// Take it (from the queue, or from the bot).
    Claim,
    /// Give it to `to` (admins) — `force` allows taking it from another operator.
    Assign {
        to: UserId,
    },
    /// Put it back in the queue.
    Release,
    /// Send a reply (claims a conversation nobody has yet).
    Reply,
    Close,
    Reopen,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the conversation is closed; reopen it first")]
    Closed,
    #[error("the conversation is assigned to another operator")]
    AssignedToOther,
    #[error("the conversation is not assigned to you")]
    NotAssignedToYou,
    #[error("the conversation is already {0}")]
    Already(ConvStatus),
    #[error("only closed conversations can be reopened")]
    NotClosed,
}

/// Applies an operator action. `actor` acts; `can_override` is true for admins, who may
/// act on conversations assigned to others.
pub fn apply(
    state: ConvState,
    action: OperatorAction,
    actor: UserId,
    can_override: bool,
) -> Result<ConvState, TransitionError> {
    use ConvStatus::*;
    let mine = state.assignee == Some(actor);
    let others = state.status == Assigned && !mine;
    match action {
        OperatorAction::Claim => match state.status {
            Closed => Err(TransitionError::Closed),
            Assigned if mine => Err(TransitionError::Already(Assigned)),
            Assigned if !can_override => Err(TransitionError::AssignedToOther),
            _ => Ok(ConvState {
                status: Assigned,
                assignee: Some(actor),
            }),
        },
        OperatorAction::Assign { to } => match state.status {
            Closed => Err(TransitionError::Closed),
            _ if others && !can_override => Err(TransitionError::AssignedToOther),
            _ => Ok(ConvState {
                status: Assigned,
                assignee: Some(to),
            }),
        },
        OperatorAction::Release => match state.status {
            Assigned if mine || can_override => Ok(ConvState {
                status: Waiting,
                assignee: None,
            }),
            Assigned => Err(TransitionError::NotAssignedToYou),
            Closed => Err(TransitionError::Closed),
            other => Err(TransitionError::Already(other)),
        },
        OperatorAction::Reply => match state.status {
            Closed => Err(TransitionError::Closed),
            Assigned if others && !can_override => Err(TransitionError::AssignedToOther),
            Assigned => Ok(state),
            Bot | Waiting => Ok(ConvState {
                status: Assigned,
                assignee: Some(actor),
            }),
        },
        OperatorAction::Close => match state.status {
            Closed => Err(TransitionError::Already(Closed)),
            _ if others && !can_override => Err(TransitionError::AssignedToOther),
            _ => Ok(ConvState {
                status: Closed,
                assignee: state.assignee,
            }),
        },
        OperatorAction::Reopen => match state.status {
            Closed => Ok(ConvState {
                status: Assigned,
                assignee: Some(actor),
            }),
            _ => Err(TransitionError::NotClosed),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConvStatus::*;

    fn st(status: ConvStatus, assignee: Option<UserId>) -> ConvState {
        ConvState { status, assignee }
    }

    #[test]
    fn claim_takes_a_waiting_conversation() {
        let me = UserId::new();
        let s = apply(st(Waiting, None), OperatorAction::Claim, me, false).unwrap();
        assert_eq!(s, st(Assigned, Some(me)));
    }

    #[test]
    fn an_operator_cannot_take_anothers_conversation_but_an_admin_can() {
        let (me, other) = (UserId::new(), UserId::new());
        let theirs = st(Assigned, Some(other));
        assert_eq!(
            apply(theirs, OperatorAction::Claim, me, false),
            Err(TransitionError::AssignedToOther)
        );
        assert_eq!(
            apply(theirs, OperatorAction::Reply, me, false),
            Err(TransitionError::AssignedToOther)
        );
        assert_eq!(
            apply(theirs, OperatorAction::Claim, me, true).unwrap(),
            st(Assigned, Some(me))
        );
    }

    #[test]
    fn replying_claims_an_unassigned_conversation() {
        let me = UserId::new();
        for from in [Bot, Waiting] {
            assert_eq!(
                apply(st(from, None), OperatorAction::Reply, me, false).unwrap(),
                st(Assigned, Some(me))
            );
        }
    }

    #[test]
    fn closed_conversations_only_reopen() {
        let me = UserId::new();
        let closed = st(Closed, Some(me));
        for action in [
            OperatorAction::Claim,
            OperatorAction::Reply,
            OperatorAction::Release,
        ] {
            assert_eq!(
                apply(closed, action, me, true),
                Err(TransitionError::Closed)
            );
        }
        assert_eq!(
            apply(closed, OperatorAction::Close, me, true),
            Err(TransitionError::Already(Closed))
        );
        assert_eq!(
            apply(closed, OperatorAction::Reopen, me, false).unwrap(),
            st(Assigned, Some(me))
        );
        assert_eq!(
            apply(st(Waiting, None), OperatorAction::Reopen, me, false),
            Err(TransitionError::NotClosed)
        );
    }

    #[test]
    fn release_returns_to_the_queue() {
        let (me, other) = (UserId::new(), UserId::new());
        assert_eq!(
            apply(st(Assigned, Some(me)), OperatorAction::Release, me, false).unwrap(),
            st(Waiting, None)
        );
        assert_eq!(
            apply(
                st(Assigned, Some(other)),
                OperatorAction::Release,
                me,
                false
            ),
            Err(TransitionError::NotAssignedToYou)
        );
        assert_eq!(
            apply(st(Waiting, None), OperatorAction::Release, me, false),
            Err(TransitionError::Already(Waiting))
        );
    }

    #[test]
    fn statuses_parse() {
        for s in [Bot, Waiting, Assigned, Closed] {
            assert_eq!(s.as_str().parse::<ConvStatus>().unwrap(), s);
        }
        assert!("open".parse::<ConvStatus>().is_err());
        assert!(Waiting.with_humans() && Assigned.with_humans());
        assert!(!Bot.with_humans() && !Closed.is_open());
    }
}
