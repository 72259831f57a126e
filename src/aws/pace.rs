//! Pacing calls ahead of time (design contract 9): an API with a published
//! rate limit gets a token bucket per account and region, so firebreak waits
//! its turn instead of discovering the limit by being throttled.
//!
//! The bucket holds one token: calls are spaced evenly rather than sent in
//! a burst, because the limits (CloudTrail LookupEvents: 2/s) are shared
//! with every other caller in the account and a burst is what trips them.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    /// The earliest time the next call may start.
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn per_second(calls: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / calls.max(1),
            next: Mutex::new(None),
        }
    }

    /// Waits for this caller's turn. Turns are handed out in arrival order
    /// and the lock is never held across the wait.
    pub async fn ready(&self) {
        let slot = {
            // A poisoned lock only means a waiter panicked; the time in it
            // is still a valid schedule.
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

type Registry = Mutex<HashMap<(String, String, String), Arc<Pacer>>>;

static SHARED: LazyLock<Registry> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The process-wide pacer of `api` in one account and region: every step
/// and every target of a run shares it, as AWS counts them together.
pub fn shared(api: &str, account: &str, region: &str, per_second: u32) -> Arc<Pacer> {
    let mut map = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    map.entry((api.to_string(), account.to_string(), region.to_string()))
        .or_insert_with(|| Arc::new(Pacer::per_second(per_second)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_at_the_rate_whatever_the_arrivals() {
        let pacer = Pacer::per_second(2);
        let t0 = Instant::now();
        for _ in 0..5 {
            pacer.ready().await;
        }
        // Five calls at 2/s: the first at once, the fifth 2 s later.
        assert_eq!(t0.elapsed(), Duration::from_millis(2000));
        // After an idle pause the next call goes at once: no debt builds up.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let t1 = Instant::now();
        pacer.ready().await;
        assert_eq!(t1.elapsed(), Duration::ZERO);
    }

    #[test]
    fn accounts_and_regions_have_their_own_buckets() {
        let a = shared("test:Api", "111122223333", "us-east-1", 2);
        let b = shared("test:Api", "111122223333", "us-east-1", 2);
        let c = shared("test:Api", "111122223333", "eu-west-1", 2);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
