//! When and how long to wait before trying a request again.
//!
//! Graph and ARM both document 429 with `Retry-After` (seconds, or an HTTP date) and transient
//! 500/502/503/504; everything else is final. Without a `Retry-After` we back off
//! exponentially with "full jitter" (a uniform pick between zero and the exponential cap), which
//! spreads a fleet of clients out after a shared outage. Every wait is bounded by the operation's
//! `Deadline`, which the caller derives from the resource's Terraform `timeouts`.

use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use reqwest::header::HeaderMap;

/// The time budget of one provider operation (a create, a read, a consistency wait).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    started: Instant,
    budget: Duration,
}

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Deadline {
            started: Instant::now(),
            budget,
        }
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    pub fn remaining(&self) -> Duration {
        self.budget.saturating_sub(self.started.elapsed())
    }

    pub fn is_expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// True when waiting `wait` would leave no time for the request that follows it.
    pub fn would_pass(&self, wait: Duration) -> bool {
        wait >= self.remaining()
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Exponential backoff base: the cap before the n-th retry is `base * 2^(n-1)`.
    pub base_delay: Duration,
    /// Upper bound of one backoff wait (not of a server-sent Retry-After).
    pub max_delay: Duration,
    /// Attempts in total, including the first one. The deadline usually ends retries first.
    pub max_attempts: u32,
    /// Longest single HTTP exchange before it counts as a (retryable) transport failure.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: 10,
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Full-jitter backoff before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = 2u32.saturating_pow(retry.saturating_sub(1).min(20));
        let cap = self.base_delay.saturating_mul(exp).min(self.max_delay);
        if cap.is_zero() {
            return cap;
        }
        let millis = rand::thread_rng().gen_range(0..=cap.as_millis() as u64);
        Duration::from_millis(millis)
    }
}

/// Statuses the services document as transient.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// The server's requested wait: `Retry-After` as delta-seconds or HTTP date (RFC 9110 §10.2.3),
/// or the millisecond variants some Azure services send.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = header_str(headers, name).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    parse_retry_after(header_str(headers, "retry-after")?, SystemTime::now())
}

/// Parses a `Retry-After` value relative to `now`. A date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs));
        }
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_is_jittered_below_an_exponential_cap() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
            ..RetryPolicy::default()
        };
        for retry in 1..8 {
            let cap = Duration::from_millis((100u64 << (retry - 1)).min(700));
            for _ in 0..50 {
                assert!(policy.backoff(retry) <= cap);
            }
        }
        // Full jitter: not every draw may sit at the cap.
        let draws: Vec<_> = (0..50).map(|_| policy.backoff(4)).collect();
        assert!(draws.iter().any(|d| *d < Duration::from_millis(700)));
    }

    #[test]
    fn deadline_refuses_waits_it_cannot_afford() {
        let d = Deadline::after(Duration::from_secs(5));
        assert!(!d.would_pass(Duration::from_secs(1)));
        assert!(d.would_pass(Duration::from_secs(6)));
    }
}
