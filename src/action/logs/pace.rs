//! Pacing ahead of time (design contract 9): FilterLogEvents has a regional
//! quota of 5 to 25 requests/s per account, shared with every other caller,
//! so requests are spaced out before AWS has to refuse them; throttling that
//! still happens (someone else spending the quota) slows the pace down.

use std::time::Duration;

use tokio::time::Instant;

/// The lowest FilterLogEvents quota of any region: safe everywhere.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 5;

/// Pauses after a throttled page, doubling each time: 1 s, 2 s, 4 s, 8 s, 16 s.
pub const THROTTLE_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// A token bucket holding one token: requests leave at most every
/// `interval`, never in bursts (a burst is what trips a shared quota).
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    pub fn new(requests_per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / requests_per_second.max(1),
            next: None,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits until the next request may leave.
    pub async fn wait(&mut self) {
        let now = Instant::now();
        let at = self.next.map_or(now, |n| n.max(now));
        tokio::time::sleep_until(at).await;
        self.next = Some(at + self.interval);
    }

    /// After a throttle: half the pace from now on (at most 1 request / 4 s),
    /// since the quota is evidently shared with someone else.
    pub fn slow_down(&mut self) {
        self.interval = (self.interval * 2).min(Duration::from_secs(4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_at_the_quota_and_slow_down_after_a_throttle() {
        let start = Instant::now();
        let mut p = Pacer::new(5);
        for _ in 0..11 {
            p.wait().await;
        }
        // 11 requests at 5/s: the first at once, then one every 200 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(2000));
        p.slow_down();
        assert_eq!(p.interval(), Duration::from_millis(400));
        p.wait().await;
        p.wait().await;
        assert_eq!(start.elapsed(), Duration::from_millis(2000 + 200 + 400));
        for _ in 0..10 {
            p.slow_down();
        }
        assert_eq!(p.interval(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_pacer_does_not_bank_tokens_for_a_burst() {
        let mut p = Pacer::new(5);
        p.wait().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let start = Instant::now();
        p.wait().await;
        p.wait().await;
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }
}
