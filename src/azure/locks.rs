//! Per-object locks inside the provider process. Terraform applies independent resources in
//! parallel; several of ours (CA policy exclusions) read-modify-write the same remote object,
//! and Graph's PATCH replaces arrays whole, so two unserialized updates would lose one
//! another's change. Entries are dropped when nobody holds or waits for them.
//!
//! A holder may also leave a note of what it wrote (`note_write`): the next holder of the same
//! object in this process reads it (`last_write`) to tell a replica that has not caught up with
//! that write from a version someone else wrote.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use serde_json::Value as Json;

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct ObjectLocks {
    locks: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
    writes: Mutex<HashMap<String, (Instant, Json)>>,
}

impl ObjectLocks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for exclusive use of the object named `key` (e.g. `ca-policy/<id>`); held until
    /// the guard is dropped.
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.retain(|_, weak| weak.strong_count() > 0);
            match locks.get(key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(AsyncMutex::new(()));
                    locks.insert(key.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// Records that this process wrote the object `key` (while holding its lock), with what
    /// the writer needs to recognise its write later.
    pub fn note_write(&self, key: &str, note: Json) {
        let mut writes = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        writes.insert(key.to_owned(), (Instant::now(), note));
    }

    /// When this process last wrote `key`, and the note left with it.
    pub fn last_write(&self, key: &str) -> Option<(Instant, Json)> {
        let writes = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        writes.get(key).cloned()
    }

    /// Keys currently held or awaited (for tests and debugging).
    pub fn active(&self) -> usize {
        let locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.values().filter(|w| w.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn read_modify_write_of_one_object_is_serialized() {
        let locks = Arc::new(ObjectLocks::new());
        let inside = Arc::new(AtomicU32::new(0));
        let max_inside = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (locks, inside, max_inside) = (locks.clone(), inside.clone(), max_inside.clone());
            tasks.push(tokio::spawn(async move {
                let _g = locks.lock("ca-policy/p1").await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max_inside.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(max_inside.load(Ordering::SeqCst), 1);
        assert_eq!(locks.active(), 0);
    }

    #[tokio::test]
    async fn different_objects_do_not_wait_for_each_other() {
        let locks = ObjectLocks::new();
        let _a = locks.lock("ca-policy/a").await;
        let b = tokio::time::timeout(Duration::from_secs(5), locks.lock("ca-policy/b")).await;
        assert!(b.is_ok());
    }
}
