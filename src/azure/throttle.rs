//! Keeping under a service's request rate once it has said "too many requests". A 429 is
//! about the caller's whole usage, not the one request ("Microsoft Graph throttling guidance":
//! wait the `Retry-After`, and "avoid immediate retries, because all requests accrue against
//! your usage limits"), so after one every request of the same throttling family waits until
//! the `Retry-After` has passed, not only the request that was refused.
//!
//! Conditional-access policies have a limit of their own, far below the rest of Graph's: "1
//! request per second" per tenant for all apps ("Microsoft Graph service-specific throttling
//! limits", Identity protection and conditional access service limits), and the page says
//! those resources do not send `Retry-After`. Once the tenant has refused one of them, the
//! provider sends them at that documented rate (one at a time, a little over a second apart)
//! for the rest of the process, instead of finding the limit again with every burst: each
//! refused PATCH costs a fresh read and a second PATCH, both counted against the same limit.
//! The next request goes a full interval after the previous one was *answered*, not merely
//! after it was sent: the service counts a request when it arrives, and a request delayed on
//! the way would otherwise land in the same second as the next one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::azure::error::Service;

/// Requests counted against one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Graph under `/identity/conditionalAccess/`.
    ConditionalAccess,
    Graph,
    ResourceManager,
    /// Token endpoints and the like: never paced.
    Other,
}

impl Family {
    pub fn of(service: Service, url: &str) -> Family {
        match service {
            Service::Graph if url.contains("/identity/conditionalAccess/") => {
                Family::ConditionalAccess
            }
            Service::Graph => Family::Graph,
            Service::ResourceManager => Family::ResourceManager,
            _ => Family::Other,
        }
    }

    /// The documented steady rate, for families that have one.
    fn documented_interval(self) -> Option<Duration> {
        match self {
            // One request per second, plus a margin for the service's clock and window edges.
            Family::ConditionalAccess => Some(Duration::from_millis(1020)),
            _ => None,
        }
    }
}

/// How long to wait after a 429 that names no `Retry-After`.
const WITHOUT_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    /// No request of the family before this (a `Retry-After`).
    blocked_until: Option<Instant>,
    /// Paced: one request per interval, the next one not before `next_slot`.
    interval: Option<Duration>,
    next_slot: Option<Instant>,
}

#[derive(Default)]
pub struct Throttle {
    families: Mutex<HashMap<Family, State>>,
}

impl Throttle {
    pub fn new() -> Self {
        Self::default()
    }

    /// How long the next request of `family` must wait, and takes its slot.
    pub fn reserve(&self, family: Family) -> Duration {
        if family == Family::Other {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let Some(state) = families.get_mut(&family) else {
            return Duration::ZERO;
        };
        let mut at = now;
        if let Some(blocked) = state.blocked_until {
            at = at.max(blocked);
        }
        if let Some(interval) = state.interval {
            if let Some(slot) = state.next_slot {
                at = at.max(slot);
            }
            state.next_slot = Some(at + interval);
        }
        at.saturating_duration_since(now)
    }

    /// Waits for the next slot of `family`.
    pub async fn admit(&self, family: Family) {
        let wait = self.reserve(family);
        if !wait.is_zero() {
            tracing::debug!(
                ?family,
                wait_ms = wait.as_millis() as u64,
                "waiting for the service's rate limit"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// A request of `family` got its answer (or failed): a paced family's next request waits a
    /// full interval from now.
    pub fn completed(&self, family: Family) {
        if family == Family::Other {
            return;
        }
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = families.get_mut(&family) {
            if let Some(interval) = state.interval {
                let after = Instant::now() + interval;
                state.next_slot = Some(state.next_slot.map_or(after, |s| s.max(after)));
            }
        }
    }

    /// The service answered 429 to a request of `family`.
    pub fn throttled(&self, family: Family, retry_after: Option<Duration>) {
        if family == Family::Other {
            return;
        }
        let until = Instant::now() + retry_after.unwrap_or(WITHOUT_RETRY_AFTER);
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let state = families.entry(family).or_default();
        state.blocked_until = Some(state.blocked_until.map_or(until, |b| b.max(until)));
        if let Some(interval) = family.documented_interval() {
            if state.interval.is_none() {
                tracing::info!(
                    ?family,
                    interval_ms = interval.as_millis() as u64,
                    "throttled: sending these requests at the documented rate from now on"
                );
            }
            state.interval = Some(interval);
        }
    }

    /// Whether `family` is sent at its documented rate (after a 429).
    pub fn is_paced(&self, family: Family) -> bool {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        families.get(&family).is_some_and(|s| s.interval.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_documented_limits() {
        let ca = "https://graph.microsoft.com/v1.0/identity/conditionalAccess/policies/p";
        assert_eq!(Family::of(Service::Graph, ca), Family::ConditionalAccess);
        let users = "https://graph.microsoft.com/v1.0/users/u";
        assert_eq!(Family::of(Service::Graph, users), Family::Graph);
        assert_eq!(Family::of(Service::Login, "https://login/t"), Family::Other);
    }

    #[test]
    fn nothing_waits_before_a_429() {
        let t = Throttle::new();
        assert_eq!(t.reserve(Family::Graph), Duration::ZERO);
        assert!(!t.is_paced(Family::ConditionalAccess));
    }

    #[test]
    fn a_429_holds_the_whole_family_for_its_retry_after() {
        let t = Throttle::new();
        t.throttled(Family::Graph, Some(Duration::from_secs(3)));
        let wait = t.reserve(Family::Graph);
        assert!(wait > Duration::from_millis(2900) && wait <= Duration::from_secs(3));
        // Other families are not affected, and Graph is not paced after its wait.
        assert_eq!(t.reserve(Family::ResourceManager), Duration::ZERO);
        assert!(!t.is_paced(Family::Graph));
    }

    #[test]
    fn conditional_access_is_paced_at_one_request_per_second_after_a_429() {
        let t = Throttle::new();
        t.throttled(Family::ConditionalAccess, Some(Duration::ZERO));
        assert!(t.is_paced(Family::ConditionalAccess));
        let first = t.reserve(Family::ConditionalAccess);
        let second = t.reserve(Family::ConditionalAccess);
        let third = t.reserve(Family::ConditionalAccess);
        assert!(first < Duration::from_millis(10));
        assert!(second >= Duration::from_millis(1000) && second <= Duration::from_millis(1030));
        assert!(third >= Duration::from_millis(2030) && third <= Duration::from_millis(2050));
        // An answer that came late pushes the next slot to a full interval after it.
        let t = Throttle::new();
        t.throttled(Family::ConditionalAccess, Some(Duration::ZERO));
        assert!(t.reserve(Family::ConditionalAccess) < Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(50));
        t.completed(Family::ConditionalAccess);
        let next = t.reserve(Family::ConditionalAccess);
        assert!(next >= Duration::from_millis(1000), "{next:?}");
    }
}
