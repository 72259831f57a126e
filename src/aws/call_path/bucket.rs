//! A token bucket that hands out send times instead of tokens.
//!
//! It is kept as a "theoretical arrival time" (GCRA): each request reserves
//! the next slot under the lock and then sleeps without it, so waiters
//! leave in arrival order and nothing is held across an await. A bucket of
//! `burst` B lets B requests go at once after an idle spell, then one every
//! `1/rate` seconds.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::quota::Quota;

#[derive(Debug)]
pub struct Bucket {
    interval: Duration,
    /// How far ahead of the schedule a request may go: (burst - 1) slots.
    tolerance: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the next request would leave if there were no burst allowance.
    next: Option<Instant>,
    /// Nobody in the family sends before this (a throttle's Retry-After).
    paused_until: Option<Instant>,
}

impl Bucket {
    pub fn new(quota: Quota) -> Self {
        let interval = Duration::from_secs_f64(1.0 / quota.rate.max(0.000_1));
        Self {
            interval,
            tolerance: interval * quota.burst.max(1).saturating_sub(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Waits for this request's turn.
    pub async fn acquire(&self) {
        let slot = {
            // A poisoned lock only means a waiter panicked; the schedule in
            // it is still valid.
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let earliest = s.paused_until.map_or(now, |p| p.max(now));
            let next = s.next.map_or(earliest, |n| n.max(earliest));
            let slot = next
                .checked_sub(self.tolerance)
                .map_or(earliest, |t| t.max(earliest));
            s.next = Some(next + self.interval);
            slot
        };
        // A free slot costs no timer tick.
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
        // A pause that began while we slept (another caller was throttled)
        // holds us too: the quota is spent for the whole family.
        while let Some(until) = self.paused_until() {
            if until <= Instant::now() {
                break;
            }
            tokio::time::sleep_until(until).await;
        }
    }

    /// Stops the whole family for `pause`; afterwards requests resume one
    /// interval apart, without a burst, since the quota was just exhausted.
    pub fn pause(&self, pause: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let until = Instant::now() + pause;
        let until = s.paused_until.map_or(until, |p| p.max(until));
        s.paused_until = Some(until);
        let resume = until + self.tolerance;
        s.next = Some(s.next.map_or(resume, |n| n.max(resume)));
    }

    fn paused_until(&self) -> Option<Instant> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .paused_until
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sixty_calls_at_fifteen_a_second_take_what_the_quota_allows() {
        for burst in [1u32, 5, 15] {
            let b = Bucket::new(Quota { rate: 15.0, burst });
            let t0 = Instant::now();
            for _ in 0..60 {
                b.acquire().await;
            }
            let least = Duration::from_secs_f64(f64::from(60 - burst) / 15.0);
            let took = t0.elapsed();
            assert!(
                took + Duration::from_millis(1) >= least,
                "burst {burst}: {took:?}"
            );
            assert!(
                took <= least + Duration::from_millis(100),
                "burst {burst}: {took:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_bucket() {
        let b = Arc::new(Bucket::new(Quota {
            rate: 15.0,
            burst: 5,
        }));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move { b.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        assert!(t0.elapsed() + Duration::from_millis(1) >= Duration::from_secs_f64(55.0 / 15.0));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_refills_only_up_to_its_burst() {
        let b = Bucket::new(Quota {
            rate: 5.0,
            burst: 2,
        });
        b.acquire().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let t0 = Instant::now();
        for _ in 0..4 {
            b.acquire().await;
        }
        // Two at once, then 200 ms apart.
        assert_eq!(t0.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_callers_already_waiting_for_their_slot() {
        let b = Arc::new(Bucket::new(Quota {
            rate: 1.0,
            burst: 1,
        }));
        b.acquire().await;
        let t0 = Instant::now();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire().await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.pause(Duration::from_secs(3));
        waiter.await.expect("waiter");
        assert!(
            t0.elapsed() >= Duration::from_millis(3100),
            "{:?}",
            t0.elapsed()
        );
    }
}
