//! The tenant's state: one `Tenant` behind a mutex, shared by every handler.
//!
//! Directory and ARM objects are kept as JSON objects with Graph/ARM property names, so what a
//! handler stores is exactly what the service would return (minus `$select` trimming), and the
//! spec validator can check it. `Collection` adds the replication-lag view every family needs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// Handle passed to every handler.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

pub struct Shared {
    tenant: Mutex<Tenant>,
    /// The public base URL clients reach this instance at (e.g. `http://127.0.0.1:4567`, or
    /// `https://login.contoso.test` behind a proxy or TLS front). Every URL the emulator emits
    /// is built from it: `@odata.nextLink`, `@odata.context`, `Location`, the discovery
    /// documents, and the token-endpoint URL a client assertion's `aud` must name.
    pub base_url: Mutex<String>,
}

impl AppState {
    pub fn new(tenant: Tenant) -> Self {
        AppState(Arc::new(Shared {
            tenant: Mutex::new(tenant),
            base_url: Mutex::new(String::from("http://127.0.0.1")),
        }))
    }

    /// Locks the tenant. Handlers hold the guard only for synchronous work (never across an
    /// `.await`), which also makes each request atomic like a single service call.
    pub fn tenant(&self) -> MutexGuard<'_, Tenant> {
        self.0.tenant.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn base_url(&self) -> String {
        self.0
            .base_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets the public base URL (see [`Shared::base_url`]); a trailing `/` is dropped.
    pub fn set_base_url(&self, url: &str) {
        *self.0.base_url.lock().unwrap_or_else(|p| p.into_inner()) =
            url.trim_end_matches('/').to_owned();
    }
}

/// Checks a `--public-url` value and fills in `{port}` (the port the listener was bound to,
/// for ephemeral ports): an absolute `http` or `https` URL with a host and no path, query or
/// fragment, since paths are appended to it as they are to `https://graph.microsoft.com`.
pub fn public_url(template: &str, port: u16) -> Result<String, String> {
    let url = template.replace("{port}", &port.to_string());
    let url = url.trim_end_matches('/');
    let bad = |why: &str| Err(format!("--public-url '{template}': {why}"));
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("needs a scheme, e.g. https://host:port");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return bad("the scheme must be http or https");
    }
    if rest.is_empty() || rest.starts_with(':') {
        return bad("needs a host");
    }
    if rest.contains(['/', '?', '#', '@']) || rest.contains(char::is_whitespace) {
        return bad("must be scheme://host[:port] with no path, query, fragment or user info");
    }
    Ok(url.to_owned())
}

/// Everything the emulator knows. Each area owns its part; see the module of each field.
pub struct Tenant {
    /// Tenant id (GUID) and display name.
    pub tenant_id: String,
    pub display_name: String,
    /// App registrations / service principals and their credentials, issued tokens.
    pub auth: crate::token::AuthState,
    /// Users, groups, domains, organization, deleted items, CA policies, authentication methods.
    pub directory: crate::graph::directory::DirectoryState,
    /// Role definitions, direct role assignments, PIM requests/schedules/instances, PIM policies.
    pub pim: crate::graph::pim::PimState,
    /// Subscriptions, resource groups, workspaces, diagnostic settings, action groups, alert rules.
    pub arm: crate::arm::ArmState,
    /// Test-controlled behaviours: lag, throttling, latency, faults, request log, counters.
    pub behaviour: crate::behaviour::BehaviourState,
    /// The seed this tenant was built from, for `POST /_fake/reset`.
    pub seed: serde_json::Value,
}

/// A keyed set of JSON objects with Entra-style replication lag: a write is visible to reads
/// only after `lag` has passed; until then readers see the previous version (or nothing, for a
/// fresh create). Keys are compared case-insensitively (directory ids and ARM names are).
#[derive(Default, Clone)]
pub struct Collection {
    entries: BTreeMap<String, Entry>,
}

#[derive(Clone)]
struct Entry {
    current: Option<Map<String, Value>>,
    previous: Option<Map<String, Value>>,
    written_at: Instant,
}

impl Collection {
    fn key(id: &str) -> String {
        id.to_ascii_lowercase()
    }

    /// Inserts or replaces an object (the writer's own view is immediate; readers lag).
    pub fn put(&mut self, id: &str, value: Map<String, Value>) {
        let key = Self::key(id);
        let previous = self.entries.get(&key).and_then(|e| e.current.clone());
        self.entries.insert(
            key,
            Entry {
                current: Some(value),
                previous,
                written_at: Instant::now(),
            },
        );
    }

    /// Inserts an object that is visible at once (seeding).
    pub fn seed(&mut self, id: &str, value: Map<String, Value>) {
        self.entries.insert(
            Self::key(id),
            Entry {
                current: Some(value),
                previous: None,
                written_at: Instant::now() - Duration::from_secs(3600),
            },
        );
    }

    /// Removes an object; readers keep seeing it until the lag has passed. Returns the removed value.
    pub fn remove(&mut self, id: &str) -> Option<Map<String, Value>> {
        let key = Self::key(id);
        let entry = self.entries.get_mut(&key)?;
        let old = entry.current.take()?;
        entry.previous = Some(old.clone());
        entry.written_at = Instant::now();
        Some(old)
    }

    /// The authoritative (primary replica) value, used for writes and conflict checks.
    pub fn get_latest(&self, id: &str) -> Option<&Map<String, Value>> {
        self.entries.get(&Self::key(id))?.current.as_ref()
    }

    pub fn get_latest_mut(&mut self, id: &str) -> Option<&mut Map<String, Value>> {
        self.entries.get_mut(&Self::key(id))?.current.as_mut()
    }

    /// What a reader sees given the replication lag.
    pub fn get(&self, id: &str, lag: Duration) -> Option<&Map<String, Value>> {
        Self::visible(self.entries.get(&Self::key(id))?, lag)
    }

    /// All objects a reader sees, in key order.
    pub fn list(&self, lag: Duration) -> Vec<&Map<String, Value>> {
        self.entries
            .values()
            .filter_map(|e| Self::visible(e, lag))
            .collect()
    }

    /// All authoritative objects, in key order.
    pub fn list_latest(&self) -> Vec<&Map<String, Value>> {
        self.entries
            .values()
            .filter_map(|e| e.current.as_ref())
            .collect()
    }

    pub fn len_latest(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.current.is_some())
            .count()
    }

    fn visible(e: &Entry, lag: Duration) -> Option<&Map<String, Value>> {
        if e.written_at.elapsed() >= lag {
            e.current.as_ref()
        } else {
            e.previous.as_ref()
        }
    }
}
