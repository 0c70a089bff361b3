//! Directory objects known only by object id: is there a user, a group, or neither? Callers
//! that hold bare ids (conditional-access exclusions and their import) ask here. An unknown
//! id, or one not replicated yet, answers 404 (`specs/msgraph/v1.0-breakglass-facts.md` §2
//! "status codes" and "consistency"; §3 "Users", "Groups (exclusion targets)").

use crate::azure::error::AzureError;
use crate::azure::graph::GraphClient;
use crate::azure::retry::Deadline;
use crate::azure::users::{path_segment, Users};

/// The kinds of principal a conditional-access policy can exclude by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Group,
}

impl PrincipalKind {
    /// "user" or "group", for messages.
    pub fn noun(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
        }
    }

    fn collection(self) -> &'static str {
        match self {
            PrincipalKind::User => "/users",
            PrincipalKind::Group => "/groups",
        }
    }
}

/// Whether a `kind` with this object id is visible; `false` when there is none (or it has
/// not replicated yet). Only the id is selected for groups; users are read as the account
/// resource reads them, so that on a client with the read cache an account this process has
/// just read (or created) answers without another request.
pub async fn exists(
    graph: &GraphClient,
    kind: PrincipalKind,
    id: &str,
    deadline: &Deadline,
) -> Result<bool, AzureError> {
    if kind == PrincipalKind::User {
        return Ok(Users::new(graph).get(id, deadline).await?.is_some());
    }
    let path = format!("{}/{}?$select=id", kind.collection(), path_segment(id));
    Ok(graph.get_optional(&path, deadline).await?.is_some())
}

/// What the object with this id is, users looked up first; `None` when it is neither.
pub async fn kind_of(
    graph: &GraphClient,
    id: &str,
    deadline: &Deadline,
) -> Result<Option<PrincipalKind>, AzureError> {
    for kind in [PrincipalKind::User, PrincipalKind::Group] {
        if exists(graph, kind, id, deadline).await? {
            return Ok(Some(kind));
        }
    }
    Ok(None)
}
