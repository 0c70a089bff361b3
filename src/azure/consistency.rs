//! Waiting out Entra's eventual consistency. A write lands on one replica; reads may be served
//! by others for a while, so a fresh object can 404 and an update can read back stale
//! ("Designing for Eventual Consistency for Microsoft Entra", Microsoft Entra developer blog).
//! Instead of sleeping for a guessed time, every resource uses `ConsistencyWait`: read at once;
//! if that first read already shows the write, replication beat the round trip and the wait is
//! over (one request, no pause). Once a read has missed, replicas are evidently behind and may
//! disagree, so the condition must then hold for N reads in a row (one lucky replica is not
//! enough), logging at INFO while it waits, and giving up when the operation's deadline would
//! pass.

use std::future::Future;
use std::time::Duration;

use tracing::info;

use crate::azure::error::AzureError;
use crate::azure::retry::Deadline;

/// The longest pause between two reads of `until_final`.
const MAX_STATUS_POLL_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct ConsistencyWait {
    /// What is awaited, for the log and the timeout error: "user bg-1 to be readable".
    pub what: String,
    /// Consecutive successful reads required.
    pub consecutive: u32,
    /// Pause between reads.
    pub interval: Duration,
    pub deadline: Deadline,
}

impl ConsistencyWait {
    /// After a miss, three reads in a row, half a second apart: more than one lucky replica.
    /// A write whose first read-back already shows it costs that one read.
    pub fn new(what: impl Into<String>, deadline: Deadline) -> Self {
        ConsistencyWait {
            what: what.into(),
            consecutive: 3,
            interval: Duration::from_millis(500),
            deadline,
        }
    }

    pub fn consecutive(mut self, n: u32) -> Self {
        self.consecutive = n.max(1);
        self
    }

    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Reads until `holds` is true for the first read, or — after a read for which it was not —
    /// for `consecutive` reads in a row, and returns the last read. Errors from `read` end the
    /// wait at once (a 404 should be mapped to a value by the reader, e.g. with
    /// `get_optional`).
    pub async fn until<T, F, Fut>(
        &self,
        read: F,
        holds: impl Fn(&T) -> bool,
    ) -> Result<T, AzureError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AzureError>>,
    {
        // Nothing settles it otherwise, so the inner result is always the read `holds` accepted.
        match self.until_unless(read, holds, |_| false).await? {
            Ok(value) | Err(value) => Ok(value),
        }
    }

    /// `until`, except that a read for which `settled_otherwise` is true ends the wait at once
    /// with `Ok(Err(that read))`: the condition can no longer come true by waiting (another
    /// writer replaced what we wait for). `Ok(Ok(last read))` when `holds` held for the first
    /// read or, after a miss, `consecutive` times in a row.
    pub async fn until_unless<T, F, Fut>(
        &self,
        mut read: F,
        holds: impl Fn(&T) -> bool,
        settled_otherwise: impl Fn(&T) -> bool,
    ) -> Result<Result<T, T>, AzureError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AzureError>>,
    {
        let mut streak = 0;
        let mut reads = 0u32;
        loop {
            let value = read().await?;
            reads += 1;
            if holds(&value) {
                streak += 1;
                if streak >= self.consecutive || reads == 1 {
                    return Ok(Ok(value));
                }
            } else if settled_otherwise(&value) {
                return Ok(Err(value));
            } else {
                if streak > 0 || reads == 1 || reads.is_multiple_of(10) {
                    info!(
                        what = %self.what,
                        reads,
                        remaining_s = self.deadline.remaining().as_secs(),
                        "waiting for Microsoft Entra to become consistent"
                    );
                }
                streak = 0;
            }
            if self.deadline.would_pass(self.interval) {
                return Err(self.timed_out(reads));
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    /// Polls a status until `done` holds for one read: the first read after `first`, then one
    /// every `interval`, slowing down (doubling every twenty reads, at most five seconds apart)
    /// so that a long wait does not keep asking several times a second. For a state the
    /// service reports as final and never leaves (a PIM request's `Provisioned` or `Revoked`):
    /// no streak is needed, and the first read that shows it ends the wait.
    pub async fn until_final<T, F, Fut>(
        &self,
        first: Duration,
        mut read: F,
        done: impl Fn(&T) -> bool,
    ) -> Result<T, AzureError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AzureError>>,
    {
        if self.deadline.would_pass(first) {
            return Err(self.timed_out(0));
        }
        tokio::time::sleep(first).await;
        let mut reads = 0u32;
        loop {
            let value = read().await?;
            reads += 1;
            if done(&value) {
                return Ok(value);
            }
            if reads == 1 || reads.is_multiple_of(20) {
                info!(
                    what = %self.what,
                    reads,
                    remaining_s = self.deadline.remaining().as_secs(),
                    "waiting for Microsoft Entra"
                );
            }
            let pause = self
                .interval
                .saturating_mul(1 << (reads / 20).min(6))
                .min(MAX_STATUS_POLL_INTERVAL);
            if self.deadline.would_pass(pause) {
                return Err(self.timed_out(reads));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Reads until `consecutive` reads in a row return the same value (the replicas agree).
    pub async fn until_stable<T, F, Fut>(&self, mut read: F) -> Result<T, AzureError>
    where
        T: PartialEq + Clone,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AzureError>>,
    {
        let mut previous: Option<T> = None;
        let mut streak = 0;
        let mut reads = 0u32;
        loop {
            let value = read().await?;
            reads += 1;
            if previous.as_ref() == Some(&value) {
                streak += 1;
            } else {
                if previous.is_some() {
                    info!(what = %self.what, reads, "reads disagree; waiting for replicas to converge");
                }
                streak = 1;
            }
            if streak >= self.consecutive {
                return Ok(value);
            }
            previous = Some(value);
            if self.deadline.would_pass(self.interval) {
                return Err(self.timed_out(reads));
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    fn timed_out(&self, reads: u32) -> AzureError {
        AzureError::Deadline {
            operation: format!("Waiting for {}", self.what),
            budget: self.deadline.budget(),
            attempts: reads,
            last: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast(deadline: Duration) -> ConsistencyWait {
        ConsistencyWait::new("test object", Deadline::after(deadline))
            .consecutive(3)
            .interval(Duration::from_millis(1))
    }

    #[tokio::test]
    async fn a_first_read_that_shows_the_write_ends_the_wait() {
        let n = AtomicU32::new(0);
        let got = fast(Duration::from_secs(5))
            .until(
                || {
                    n.fetch_add(1, Ordering::SeqCst);
                    async { Ok(true) }
                },
                |found| *found,
            )
            .await
            .unwrap();
        assert!(got);
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn after_a_miss_a_single_good_read_is_not_enough() {
        // Replica answers: missing, found, missing, found, found, found.
        let answers = [false, true, false, true, true, true];
        let n = AtomicU32::new(0);
        let got = fast(Duration::from_secs(5))
            .until(
                || {
                    let i = n.fetch_add(1, Ordering::SeqCst) as usize;
                    async move { Ok(answers[i]) }
                },
                |found| *found,
            )
            .await
            .unwrap();
        assert!(got);
        assert_eq!(n.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn stable_means_equal_in_a_row() {
        let answers = [1, 2, 2, 3, 3, 3];
        let n = AtomicU32::new(0);
        let got = fast(Duration::from_secs(5))
            .until_stable(|| {
                let i = n.fetch_add(1, Ordering::SeqCst) as usize;
                async move { Ok(answers[i]) }
            })
            .await
            .unwrap();
        assert_eq!(got, 3);
        assert_eq!(n.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn a_read_that_settles_otherwise_ends_the_wait() {
        // 0 = stale, 1 = shows the change, 2 = replaced by someone else.
        let answers = [0, 1, 0, 2, 1, 1, 1];
        let n = AtomicU32::new(0);
        let read = || {
            let i = n.fetch_add(1, Ordering::SeqCst) as usize;
            async move { Ok(answers[i]) }
        };
        let got = fast(Duration::from_secs(5))
            .until_unless(read, |v| *v == 1, |v| *v == 2)
            .await
            .unwrap();
        assert_eq!(got, Err(2));
        assert_eq!(n.load(Ordering::SeqCst), 4);
        // Without such a read it behaves like `until`.
        let n = AtomicU32::new(0);
        let answers = [0, 1, 1, 1];
        let got = fast(Duration::from_secs(5))
            .until_unless(
                || {
                    let i = n.fetch_add(1, Ordering::SeqCst) as usize;
                    async move { Ok(answers[i]) }
                },
                |v| *v == 1,
                |v| *v == 2,
            )
            .await
            .unwrap();
        assert_eq!(got, Ok(1));
    }

    #[tokio::test]
    async fn a_final_status_needs_one_read() {
        let answers = ["PendingProvisioning", "PendingProvisioning", "Provisioned"];
        let n = AtomicU32::new(0);
        let got = fast(Duration::from_secs(5))
            .until_final(
                Duration::ZERO,
                || {
                    let i = n.fetch_add(1, Ordering::SeqCst) as usize;
                    async move { Ok(answers[i]) }
                },
                |s| *s == "Provisioned",
            )
            .await
            .unwrap();
        assert_eq!(got, "Provisioned");
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline() {
        let err = fast(Duration::from_millis(30))
            .until(|| async { Ok(false) }, |b| *b)
            .await
            .unwrap_err();
        assert!(matches!(err, AzureError::Deadline { .. }));
        assert!(err.to_string().contains("test object"));
    }
}
