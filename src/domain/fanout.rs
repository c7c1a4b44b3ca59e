//! Which targets an event goes to. Every store calls this one function inside its accept
//! transaction, so the rule cannot differ between SQLite and PostgreSQL.

use uuid::Uuid;

use super::ids::TargetId;

use super::integration::IntegrationKind;

/// Inputs HubSpot takes in one batch upsert.
pub const HUBSPOT_BATCH_LIMIT: usize = 100;

/// The kinds of outbound target. Every kind shares the queue, retries and the delivery log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Webhook,
    Integration(IntegrationKind),
    Mailer,
    Destination,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Integration(kind) => kind.as_str(),
            Self::Mailer => "mailer",
            Self::Destination => "destination",
        }
    }

    /// How many deliveries one request may carry: HubSpot upserts up to 100 contacts in one
    /// batch request (and limits requests, not contacts); every other kind sends one at a time.
    pub fn batch_limit(self) -> usize {
        match self {
            Self::Integration(IntegrationKind::Hubspot) => HUBSPOT_BATCH_LIMIT,
            _ => 1,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "webhook" => Some(Self::Webhook),
            "mailer" => Some(Self::Mailer),
            "destination" => Some(Self::Destination),
            other => IntegrationKind::parse(other).map(Self::Integration),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TargetRef {
    pub kind: TargetKind,
    pub id: TargetId,
}

/// Where a target is available: every workspace (and events sent with none), or those listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkspaceScope {
    All,
    Only(Vec<Uuid>),
}

impl WorkspaceScope {
    /// Whether a target of this scope gets events of `workspace` and of no other workspace: what
    /// a session confined to that workspace may see without seeing others' events.
    pub fn confined_to(&self, workspace: Uuid) -> bool {
        matches!(self, Self::Only(list) if list.as_slice() == [workspace])
    }
}

/// An active target and what it listens to.
#[derive(Clone, Debug)]
pub struct Subscription {
    pub target: TargetRef,
    pub events: Vec<String>,
    pub workspaces: WorkspaceScope,
}

/// The targets an event of `event_type` in `workspace` must be delivered to.
pub fn targets_for<'a>(event_type: &'a str, workspace: Option<Uuid>, subscriptions: &'a [Subscription]) -> impl Iterator<Item = TargetRef> + 'a {
    subscriptions
        .iter()
        .filter(move |s| s.events.iter().any(|e| e == event_type))
        .filter(move |s| match (&s.workspaces, workspace) {
            (WorkspaceScope::All, _) => true,
            (WorkspaceScope::Only(list), Some(ws)) => list.contains(&ws),
            (WorkspaceScope::Only(_), None) => false,
        })
        .map(|s| s.target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(events: &[&str], workspaces: WorkspaceScope) -> Subscription {
        Subscription {
            target: TargetRef { kind: TargetKind::Webhook, id: TargetId::from(Uuid::new_v4()) },
            events: events.iter().map(|e| e.to_string()).collect(),
            workspaces,
        }
    }

    #[test]
    fn a_target_is_confined_to_a_workspace_only_when_it_is_its_only_one() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(WorkspaceScope::Only(vec![a]).confined_to(a));
        assert!(!WorkspaceScope::Only(vec![a, b]).confined_to(a), "it also gets b's events");
        assert!(!WorkspaceScope::All.confined_to(a));
        assert!(!WorkspaceScope::Only(vec![]).confined_to(a));
    }

    #[test]
    fn matches_on_type_and_workspace() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let subs = vec![
            sub(&["contact.created", "contact.updated"], WorkspaceScope::All),
            sub(&["contact.updated"], WorkspaceScope::Only(vec![a])),
            sub(&["company.created"], WorkspaceScope::All),
        ];
        let hits = |t, ws| targets_for(t, ws, &subs).map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(hits("contact.created", None), vec![subs[0].target.id]);
        assert_eq!(hits("contact.updated", Some(a)), vec![subs[0].target.id, subs[1].target.id]);
        assert_eq!(hits("contact.updated", Some(b)), vec![subs[0].target.id]);
        assert_eq!(hits("contact.updated", None), vec![subs[0].target.id]);
        assert!(hits("project.deleted", None).is_empty());
    }

    #[test]
    fn kinds_round_trip() {
        assert_eq!(TargetKind::parse(TargetKind::Webhook.as_str()), Some(TargetKind::Webhook));
        let hubspot = TargetKind::Integration(IntegrationKind::Hubspot);
        assert_eq!(TargetKind::parse(hubspot.as_str()), Some(hubspot));
        assert_eq!(TargetKind::parse("fax"), None);
    }
}
