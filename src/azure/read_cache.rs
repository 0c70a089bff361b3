//! Answers to reads this process made a moment ago, so that one Terraform command does not ask
//! the tenant the same question twice: a plan refreshes an account and then the posture data
//! source reads the same user; two accounts check the same domain; the sign-in alert looks up
//! the UPNs the account resources have just read back.
//!
//! Only reads sent through a client made with `cached()` are answered from here; every GET
//! (cached or not) stores its answer, so a read-back after a write feeds the readers that come
//! after it. A write through either client drops every answer it may change — for Graph the
//! whole top-level collection (`/users`, `/identity`, `/roleManagement`, …), for ARM the
//! collection of the resource written — and an answer whose request was in flight while such a
//! write happened is not stored. Answers older than the time to live are never served, so a
//! long-running process does not act on what it saw minutes ago. 404s and errors are not
//! stored. Waits for replication must read through the plain client: a cached read would
//! return the same answer every time.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value as Json;

use crate::azure::error::Service;
use crate::azure::locks::ObjectLocks;

/// How long an answer may be served. A plan's refresh takes well under this; a command that
/// runs longer reads again.
pub const TIME_TO_LIVE: Duration = Duration::from_secs(30);

/// Writes remembered for in-flight reads (older ones make such a read skip storing).
const REMEMBERED_WRITES: usize = 256;

#[derive(Default)]
struct State {
    /// Incremented by every write; a read remembers the value it started with.
    seq: u64,
    entries: HashMap<String, Entry>,
    /// `(seq, what it may change)` of recent writes.
    writes: VecDeque<(u64, WriteScope)>,
    /// Writes up to this sequence number are no longer in `writes`.
    forgotten: u64,
}

struct Entry {
    path: String,
    at: Instant,
    body: Json,
}

pub struct ReadCache {
    state: Mutex<State>,
    ttl: Duration,
    /// One cached read per key at a time: concurrent readers of the same thing (two accounts
    /// checking one domain) wait for the first answer instead of each sending the request.
    in_flight: ObjectLocks,
}

impl Default for ReadCache {
    fn default() -> Self {
        ReadCache::new(TIME_TO_LIVE)
    }
}

impl ReadCache {
    pub fn new(ttl: Duration) -> Self {
        ReadCache {
            state: Mutex::new(State::default()),
            ttl,
            in_flight: ObjectLocks::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key of a read: its URL and the headers that change the answer. ARM paths compare
    /// case-insensitively (`Microsoft.Insights/actionGroups` and `microsoft.insights/
    /// actiongroups` name one resource), so their path is lower-cased.
    pub fn key(service: Service, url: &str, headers: &[(&'static str, String)]) -> String {
        let mut key = match (service, url.split_once('?')) {
            (Service::ResourceManager, Some((path, query))) => {
                format!("{}?{query}", path.to_ascii_lowercase())
            }
            (Service::ResourceManager, None) => url.to_ascii_lowercase(),
            _ => url.to_owned(),
        };
        for (name, value) in headers {
            key.push('\n');
            key.push_str(name);
            key.push(':');
            key.push_str(value);
        }
        key
    }

    /// A stored answer for `key` younger than the time to live.
    pub fn get(&self, key: &str) -> Option<Json> {
        let state = self.state();
        let entry = state.entries.get(key)?;
        (entry.at.elapsed() < self.ttl).then(|| entry.body.clone())
    }

    /// Held while a cached read of `key` is sent, so that others wait for its answer.
    pub async fn single_flight(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.in_flight.lock(key).await
    }

    /// The sequence number a read starts with (see `store`).
    pub fn begin(&self) -> u64 {
        self.state().seq
    }

    /// Stores the answer to a read of `url` that started at `began`, unless a write that may
    /// have changed it happened since.
    pub fn store(&self, service: Service, key: String, url: &str, began: u64, body: &Json) {
        let path = path_of(service, url);
        let mut state = self.state();
        if began < state.forgotten
            || state
                .writes
                .iter()
                .any(|(seq, scope)| *seq > began && scope.affects(&path))
        {
            return;
        }
        state.entries.retain(|_, e| e.at.elapsed() < self.ttl);
        state.entries.insert(
            key,
            Entry {
                path,
                at: Instant::now(),
                body: body.clone(),
            },
        );
    }

    /// A write of `method` to `url` is about to be sent (or was just answered): forget every
    /// answer it may change.
    pub fn invalidate(&self, service: Service, method: &Method, url: &str) {
        let scope = WriteScope::of(service, method, url);
        let mut state = self.state();
        state.seq += 1;
        let seq = state.seq;
        state.entries.retain(|_, e| !scope.affects(&e.path));
        state.writes.push_back((seq, scope));
        while state.writes.len() > REMEMBERED_WRITES {
            if let Some((seq, _)) = state.writes.pop_front() {
                state.forgotten = seq;
            }
        }
    }

    /// Answers stored now (for tests).
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The lower-case path of `url` (no scheme, host or query).
fn path_of(_service: Service, url: &str) -> String {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = without_scheme
        .find('/')
        .map_or("/", |i| &without_scheme[i..]);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/').to_ascii_lowercase()
}

/// What one write may change, as paths of reads.
struct WriteScope {
    /// Every read at or below this path.
    prefix: Option<String>,
    /// Reads of the user collection itself (lists, `$filter` lookups) and of users by UPN,
    /// for a write under `/users` that leaves other users' reads by id alone.
    users: Option<String>,
}

impl WriteScope {
    /// For Graph, writes under `/users` change that user (`/users/{id}` and below) and what
    /// finds users — the collection (lists, filters) and reads by UPN (a segment with `@`) —
    /// but not other users read by id: creating user B does not change user A. Any other Graph
    /// write changes its whole area under the version (`/identity`, `/roleManagement`, …),
    /// whose parts move together (a PIM request changes the schedules, a PATCH of one policy
    /// the listing of all). For ARM, the collection of the resource written (`…/actionGroups/
    /// {name}` → `…/actiongroups`), or the collection itself for a POST.
    fn of(service: Service, method: &Method, url: &str) -> WriteScope {
        let path = path_of(service, url);
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let join = |n: usize| -> String {
            segments[..n.min(segments.len())]
                .iter()
                .map(|s| format!("/{s}"))
                .collect()
        };
        match service {
            Service::Graph if segments.get(1) == Some(&"users") => WriteScope {
                // A create (a POST to the collection) changes no existing user.
                prefix: (segments.len() > 2).then(|| join(3)),
                users: Some(join(2)),
            },
            Service::Graph => WriteScope {
                prefix: Some(join(2)),
                users: None,
            },
            _ if *method == Method::POST => WriteScope {
                prefix: Some(join(segments.len())),
                users: None,
            },
            _ => WriteScope {
                prefix: Some(join(segments.len().saturating_sub(1))),
                users: None,
            },
        }
    }

    fn affects(&self, path: &str) -> bool {
        let under = |prefix: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        if self.prefix.as_deref().is_some_and(under) {
            return true;
        }
        let Some(users) = &self.users else {
            return false;
        };
        path == users
            || path
                .strip_prefix(users.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| rest.split('/').next().is_some_and(|s| s.contains('@')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GRAPH: &str = "https://graph.microsoft.com/v1.0";
    const ARM: &str = "https://management.azure.com";

    fn stored(cache: &ReadCache, service: Service, url: &str) {
        let began = cache.begin();
        let key = ReadCache::key(service, url, &[]);
        cache.store(service, key, url, began, &json!({"url": url}));
    }

    fn get(cache: &ReadCache, service: Service, url: &str) -> Option<Json> {
        cache.get(&ReadCache::key(service, url, &[]))
    }

    #[test]
    fn answers_are_served_until_a_write_to_their_collection() {
        let cache = ReadCache::default();
        let user = format!("{GRAPH}/users/u1?$select=id");
        let policies = format!("{GRAPH}/identity/conditionalAccess/policies");
        stored(&cache, Service::Graph, &user);
        stored(&cache, Service::Graph, &policies);
        assert_eq!(cache.get(&user), Some(json!({"url": user})));
        // A change to the user: every read of it may change.
        cache.invalidate(Service::Graph, &Method::PATCH, &format!("{GRAPH}/users/u1"));
        assert_eq!(cache.get(&user), None);
        assert!(
            cache.get(&policies).is_some(),
            "another collection keeps its answer"
        );
        cache.invalidate(
            Service::Graph,
            &Method::PATCH,
            &format!("{GRAPH}/identity/conditionalAccess/policies/p1"),
        );
        assert_eq!(cache.get(&policies), None);
    }

    #[test]
    fn a_new_user_leaves_other_users_read_by_id_alone() {
        let cache = ReadCache::default();
        let alice = format!("{GRAPH}/users/u1?$select=id");
        let methods = format!("{GRAPH}/users/u1/authentication/methods");
        let by_upn = format!("{GRAPH}/users/bob@contoso.com?$select=id");
        let list = format!("{GRAPH}/users?$filter=startswith(displayName,'a')");
        for url in [&alice, &methods, &by_upn, &list] {
            stored(&cache, Service::Graph, url);
        }
        cache.invalidate(Service::Graph, &Method::POST, &format!("{GRAPH}/users"));
        assert!(cache.get(&alice).is_some() && cache.get(&methods).is_some());
        assert_eq!(cache.get(&by_upn), None, "the new user may have that name");
        assert_eq!(cache.get(&list), None);
        // A change to the user itself drops all of its reads.
        cache.invalidate(Service::Graph, &Method::PATCH, &format!("{GRAPH}/users/u1"));
        assert_eq!(cache.get(&alice), None);
        assert_eq!(cache.get(&methods), None);
    }

    #[test]
    fn arm_writes_drop_their_resource_type_case_insensitively() {
        let cache = ReadCache::default();
        let rg = format!("{ARM}/subscriptions/s/resourceGroups/rg/providers");
        let rule = format!("{rg}/microsoft.insights/scheduledqueryrules/r1?api-version=1");
        let group = format!("{rg}/Microsoft.Insights/actionGroups/g1?api-version=1");
        stored(&cache, Service::ResourceManager, &rule);
        stored(&cache, Service::ResourceManager, &group);
        cache.invalidate(
            Service::ResourceManager,
            &Method::PUT,
            &format!("{rg}/Microsoft.Insights/scheduledQueryRules/r1?api-version=1"),
        );
        assert_eq!(get(&cache, Service::ResourceManager, &rule), None);
        assert!(get(&cache, Service::ResourceManager, &group).is_some());
        // Read back under another casing, the group is the same answer.
        let lower = group.to_ascii_lowercase();
        assert!(get(&cache, Service::ResourceManager, &lower).is_some());
    }

    #[test]
    fn a_read_in_flight_during_a_write_is_not_stored() {
        let cache = ReadCache::default();
        let user = format!("{GRAPH}/users/u1");
        let began = cache.begin();
        cache.invalidate(Service::Graph, &Method::PATCH, &user);
        cache.store(Service::Graph, user.clone(), &user, began, &json!({}));
        assert_eq!(cache.get(&user), None, "the answer may predate the write");
        // A write elsewhere does not matter.
        let began = cache.begin();
        cache.invalidate(Service::Graph, &Method::PATCH, &format!("{GRAPH}/groups/g"));
        cache.store(Service::Graph, user.clone(), &user, began, &json!({}));
        assert!(cache.get(&user).is_some());
    }

    #[test]
    fn old_answers_are_not_served() {
        let cache = ReadCache::new(Duration::ZERO);
        let user = format!("{GRAPH}/users/u1");
        stored(&cache, Service::Graph, &user);
        assert_eq!(cache.get(&user), None);
    }

    #[test]
    fn headers_are_part_of_the_key() {
        let plain = ReadCache::key(Service::Graph, "u", &[]);
        let eventual = ReadCache::key(
            Service::Graph,
            "u",
            &[("ConsistencyLevel", "eventual".into())],
        );
        assert_ne!(plain, eventual);
        assert_eq!(
            ReadCache::key(
                Service::ResourceManager,
                "https://m/P/Microsoft.X/y?api-version=A",
                &[]
            ),
            ReadCache::key(
                Service::ResourceManager,
                "https://m/p/microsoft.x/Y?api-version=A",
                &[]
            ),
        );
    }
}
