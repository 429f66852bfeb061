//! Roles of a member within a tenant and what each may do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's role in one tenant. Ordered by power: `Operator < Admin < Owner`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Operator,
    Admin,
    Owner,
}

/// Something a member may want to do; [`Role::can`] decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Read rules, menus, commands, settings and the bot's public data.
    ReadConfig,
    /// Change the bot, rules, menus, commands and settings.
    WriteConfig,
    /// Work conversations: list, read, claim, reply, close.
    Desk,
    /// Assign conversations to other operators.
    AssignOthers,
    /// Invite, change and remove members.
    ManageTeam,
    /// Read the whole log (every message and action) and the statistics, export them,
    /// erase an end user's data.
    ReadLogs,
    /// Delete the tenant, transfer ownership.
    OwnTenant,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    pub fn can(&self, permission: Permission) -> bool {
        use Permission::*;
        match permission {
            ReadConfig | Desk => true,
            WriteConfig | AssignOthers | ManageTeam | ReadLogs => *self >= Role::Admin,
            OwnTenant => *self == Role::Owner,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}` (expected owner, admin or operator)")]
pub struct UnknownRole(pub String);

impl TryFrom<String> for Role {
    type Error = UnknownRole;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_work_the_desk_but_cannot_configure() {
        assert!(Role::Operator.can(Permission::Desk));
        assert!(Role::Operator.can(Permission::ReadConfig));
        assert!(!Role::Operator.can(Permission::WriteConfig));
        assert!(!Role::Operator.can(Permission::ManageTeam));
    }

    #[test]
    fn admins_configure_but_only_owners_own() {
        assert!(Role::Admin.can(Permission::WriteConfig));
        assert!(Role::Admin.can(Permission::AssignOthers));
        assert!(!Role::Admin.can(Permission::OwnTenant));
        assert!(Role::Owner.can(Permission::OwnTenant));
    }

    #[test]
    fn roles_parse_and_print() {
        for r in [Role::Owner, Role::Admin, Role::Operator] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
