//! A token bucket that hands out send times instead of tokens, to the
//! most urgent waiter first.
//!
//! The schedule is a "theoretical arrival time" (GCRA): a bucket of `burst`
//! B lets B requests go at once after an idle spell, then one every
//! `1/rate` seconds. Who gets the next slot is decided by `Priority`, not
//! by arrival: with hundreds of targets sharing one quota, a change that
//! stops harm goes before any read, and the first target's reads go before
//! the hundredth's, so each target is contained as soon as its own calls
//! are answered instead of all of them being contained together at the end
//! (issue 15). Among equals, arrival order. The head waiter alone sleeps on
//! the timer; the others wait to be told the head has changed. Nothing is
//! held across an await.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::quota::Quota;

/// How urgent a request is; lower goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Priority {
    pub class: Class,
    /// The target's position in the run (0 for work that is not one
    /// target's).
    pub target: u32,
}

/// What a request is for, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Class {
    /// A change that stops harm (a throttle, a role's deny), or a read
    /// that starts such changes (a streamed listing's page): every target's
    /// go before any other target's public access is closed.
    #[default]
    StopsHarm,
    /// Any other change (closing a way in, evidence, tidying up): after
    /// the harm-stopping ones, before reads.
    Change,
    /// It only reads.
    Read,
}

impl Priority {
    pub fn of(class: Class, target: u32) -> Self {
        Self { class, target }
    }
}

#[derive(Debug)]
pub struct Bucket {
    interval: Duration,
    /// How far ahead of the schedule a request may go: (burst - 1) slots.
    tolerance: Duration,
    state: Mutex<State>,
    /// Told whenever the head of the queue may have changed.
    turn: Notify,
    /// Reads of the family on the wire (`MAX_IN_FLIGHT`).
    reading: Semaphore,
    /// Changes of the family on the wire (`MAX_CHANGES_IN_FLIGHT`).
    changing: Semaphore,
}

/// Which places on the wire a request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Read,
    Change,
}

impl Wire {
    fn index(self) -> usize {
        match self {
            Wire::Read => 0,
            Wire::Change => 1,
        }
    }
}

/// How many requests of one family are on the wire at once. On AWS the
/// quota binds long before (16 in flight at 100 ms is 160 a second, above
/// GetFunction's 100/s; the control plane's is 15/s); a slower service
/// answers them one after another instead of holding hundreds, so that
/// another family's call (the deny on a shared role) is not queued behind
/// all of them there (issue 15: a thousand targets started at once read
/// their functions at GetFunction's quota).
pub const MAX_IN_FLIGHT: usize = 16;

/// How many changes of one family are on the wire at once. Changes are
/// the run's point and are few: the quota alone paces them, so they never
/// flood a service the way a thousand targets' reads would. A change held
/// back because the ones before it are slow to answer loses its slot for
/// good (the schedule moves on), and every target behind it is contained
/// that much later: with `MAX_IN_FLIGHT` places, a PutFunctionConcurrency
/// answered in 0.35 s at 30/s kept 10 of 16 busy, and each spell of slow
/// answers cost whole seconds of the quota (issue 15). 64 places ride out
/// about 4 s of slow answers at Lambda's 15/s; a service slower than that
/// is not helped by more.
pub const MAX_CHANGES_IN_FLIGHT: usize = 64;

#[derive(Debug, Default)]
struct State {
    /// When the next request would leave if there were no burst allowance.
    next: Option<Instant>,
    /// Nobody in the family sends before this (a throttle's Retry-After).
    paused_until: Option<Instant>,
    /// Who is waiting, most urgent first, by the places they need
    /// (`Wire::index`); the queue's head is the more urgent of the two
    /// firsts.
    queues: [BTreeSet<(Priority, u64)>; 2],
    /// The head's ticket while it waits for a place of its kind: then the
    /// first waiter of the other kind may take the slot (`acquire`).
    blocked: Option<u64>,
    tickets: u64,
}

impl State {
    /// The most urgent waiter, and the places it needs.
    fn head(&self) -> Option<((Priority, u64), Wire)> {
        let read = self.queues[Wire::Read.index()]
            .first()
            .map(|k| (*k, Wire::Read));
        let change = self.queues[Wire::Change.index()]
            .first()
            .map(|k| (*k, Wire::Change));
        match (read, change) {
            (Some(r), Some(c)) => Some(if c.0 < r.0 { c } else { r }),
            (r, c) => r.or(c),
        }
    }
}

/// A place in the queue, given up when the request is dropped (a timeout,
/// a cancelled target) so the ones behind it are not held.
struct Ticket<'a> {
    bucket: &'a Bucket,
    key: (Priority, u64),
    wire: Wire,
    served: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.served {
            self.bucket.lock().queues[self.wire.index()].remove(&self.key);
            self.bucket.turn.notify_waiters();
        }
    }
}

impl Bucket {
    pub fn new(quota: Quota) -> Self {
        let interval = Duration::from_secs_f64(1.0 / quota.rate.max(0.000_1));
        Self {
            interval,
            tolerance: interval * quota.burst.max(1).saturating_sub(1),
            state: Mutex::new(State::default()),
            turn: Notify::new(),
            reading: Semaphore::new(MAX_IN_FLIGHT),
            changing: Semaphore::new(MAX_CHANGES_IN_FLIGHT),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a waiter panicked; the schedule in it
        // is still valid.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this request's turn, and for a place on the wire
    /// (`MAX_IN_FLIGHT` for reads, `MAX_CHANGES_IN_FLIGHT` for changes),
    /// held by the permit returned until the answer is in. The head of
    /// the queue waits for its place before it takes its slot: the
    /// schedule counts when requests leave, so a request held for a place
    /// never leaves in a burst with the ones behind it (the service's own
    /// bucket would throttle them), and the order stands. While the head
    /// waits for a place of its kind, the first waiter of the other kind
    /// stands in for it: a streamed listing's page (a read as urgent as a
    /// throttle) waiting for one of sixteen slow reads does not hold back
    /// the changes behind it, which have places of their own; the slot is
    /// taken by one request either way, so nothing leaves in a burst.
    /// `None` only if the semaphores were closed, which they never are.
    pub async fn acquire(&self, priority: Priority, wire: Wire) -> Option<SemaphorePermit<'_>> {
        let places = match wire {
            Wire::Read => &self.reading,
            Wire::Change => &self.changing,
        };
        let mut ticket = {
            let mut s = self.lock();
            s.tickets += 1;
            let key = (priority, s.tickets);
            s.queues[wire.index()].insert(key);
            Ticket {
                bucket: self,
                key,
                wire,
                served: false,
            }
        };
        let mut place: Option<SemaphorePermit<'_>> = None;
        loop {
            // Registered before looking, so a change of head between the
            // look and the wait is not missed.
            let turn = self.turn.notified();
            tokio::pin!(turn);
            turn.as_mut().enable();
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                let earliest = s.paused_until.map_or(now, |p| p.max(now));
                let next = s.next.map_or(earliest, |n| n.max(earliest));
                let slot = next
                    .checked_sub(self.tolerance)
                    .map_or(earliest, |t| t.max(earliest));
                let first = s.head();
                let head = first.map(|(k, _)| k) == Some(ticket.key);
                // The first of its kind, behind a head of the other kind
                // that waits for a place.
                let stand_in = !head
                    && s.queues[wire.index()].first() == Some(&ticket.key)
                    && first.is_some_and(|((_, t), w)| w != wire && s.blocked == Some(t));
                let eligible = head || stand_in;
                if !eligible {
                    // A place is only held by the head or its stand-in.
                    place = None;
                }
                if eligible && place.is_none() {
                    place = places.try_acquire().ok();
                }
                let mut changed = false;
                if head {
                    let blocked = place.is_none().then_some(ticket.key.1);
                    changed = blocked.is_some() && s.blocked != blocked;
                    s.blocked = blocked;
                }
                if eligible && slot <= now && place.is_some() {
                    s.queues[wire.index()].remove(&ticket.key);
                    s.next = Some(next + self.interval);
                    ticket.served = true;
                    drop(s);
                    self.turn.notify_waiters();
                    return place;
                }
                if changed {
                    // The first of the other kind may stand in now.
                    self.turn.notify_waiters();
                }
                eligible.then_some((slot, place.is_none()))
            };
            match wait {
                // The head (or its stand-in) waits for a place on the
                // wire, or until a more urgent request (or a pause, or
                // the head's own place) changes the picture.
                Some((_, true)) => {
                    tokio::select! {
                        p = places.acquire() => place = p.ok(),
                        () = &mut turn => {}
                    }
                    if place.is_none() && places.is_closed() {
                        return None;
                    }
                }
                // The head sleeps until its slot, or until a more urgent
                // request (or a pause) changes the picture.
                Some((slot, false)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(slot) => {}
                        () = &mut turn => {}
                    }
                }
                None => turn.await,
            }
        }
    }

    /// Stops the whole family for `pause`; afterwards requests resume one
    /// interval apart, without a burst, since the quota was just exhausted.
    pub fn pause(&self, pause: Duration) {
        {
            let mut s = self.lock();
            let until = Instant::now() + pause;
            let until = s.paused_until.map_or(until, |p| p.max(until));
            s.paused_until = Some(until);
            let resume = until + self.tolerance;
            s.next = Some(s.next.map_or(resume, |n| n.max(resume)));
        }
        self.turn.notify_waiters();
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
                b.acquire(Priority::default(), Wire::Read).await;
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
                tokio::spawn(async move {
                    b.acquire(Priority::default(), Wire::Read).await;
                })
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
        b.acquire(Priority::default(), Wire::Read).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let t0 = Instant::now();
        for _ in 0..4 {
            b.acquire(Priority::default(), Wire::Read).await;
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
        b.acquire(Priority::default(), Wire::Read).await;
        let t0 = Instant::now();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                b.acquire(Priority::default(), Wire::Read).await;
            })
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

    /// Waiters queued at once on a spent bucket (1/s), in the order they
    /// were served.
    async fn served_order(priorities: &[Priority]) -> Vec<usize> {
        let b = Arc::new(Bucket::new(Quota {
            rate: 1.0,
            burst: 1,
        }));
        b.acquire(Priority::default(), Wire::Read).await;
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks: Vec<_> = priorities
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (b, order, p) = (b.clone(), order.clone(), *p);
                tokio::spawn(async move {
                    b.acquire(p, Wire::Read).await;
                    order.lock().unwrap().push(i);
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let order = order.lock().unwrap().clone();
        order
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_goes_before_the_reads_queued_ahead_of_it() {
        let order = served_order(&[
            Priority::of(Class::Read, 0),
            Priority::of(Class::Read, 0),
            Priority::of(Class::StopsHarm, 7),
            Priority::of(Class::Read, 0),
        ])
        .await;
        assert_eq!(order, [2, 0, 1, 3]);
    }

    /// Closing target 1's public access waits for target 9's throttle, and
    /// goes before target 0's reads.
    #[tokio::test(start_paused = true)]
    async fn other_changes_go_after_every_harm_stopping_change_and_before_reads() {
        let order = served_order(&[
            Priority::of(Class::Read, 0),
            Priority::of(Class::Change, 1),
            Priority::of(Class::StopsHarm, 9),
            Priority::of(Class::Read, 0),
        ])
        .await;
        assert_eq!(order, [2, 1, 0, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn earlier_targets_go_first_and_equals_in_arrival_order() {
        let order = served_order(&[
            Priority::of(Class::Read, 5),
            Priority::of(Class::Read, 3),
            Priority::of(Class::Read, 9),
            Priority::of(Class::Read, 3),
            Priority::of(Class::Read, 1),
        ])
        .await;
        assert_eq!(order, [4, 1, 3, 0, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn priority_does_not_change_the_rate() {
        let b = Arc::new(Bucket::new(Quota {
            rate: 15.0,
            burst: 5,
        }));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..60u32)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move {
                    b.acquire(
                        Priority::of(
                            if i % 3 == 0 {
                                Class::StopsHarm
                            } else {
                                Class::Read
                            },
                            i % 7,
                        ),
                        Wire::Read,
                    )
                    .await;
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let least = Duration::from_secs_f64(55.0 / 15.0);
        assert!(
            t0.elapsed() + Duration::from_millis(1) >= least,
            "{:?}",
            t0.elapsed()
        );
        assert!(
            t0.elapsed() <= least + Duration::from_millis(100),
            "{:?}",
            t0.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_does_not_hold_the_ones_behind_it() {
        let b = Arc::new(Bucket::new(Quota {
            rate: 1.0,
            burst: 1,
        }));
        b.acquire(Priority::default(), Wire::Read).await;
        let t0 = Instant::now();
        // The head gives up before its slot (a step's timeout).
        let head = {
            let b = b.clone();
            tokio::spawn(async move {
                tokio::time::timeout(
                    Duration::from_millis(500),
                    b.acquire(Priority::of(Class::StopsHarm, 0), Wire::Read),
                )
                .await
                .is_ok()
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let behind = {
            let b = b.clone();
            tokio::spawn(async move {
                b.acquire(Priority::of(Class::Read, 3), Wire::Read).await;
            })
        };
        assert!(!head.await.expect("head"), "the head timed out");
        behind.await.expect("behind");
        // It left at the slot the head gave up, not later.
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
    }

    /// A read at the head of the queue that waits for one of the family's
    /// read places (a streamed listing's page, as urgent as a throttle,
    /// behind sixteen slow reads) does not hold back the changes queued
    /// behind it: the first of them stands in and leaves at the next slot,
    /// one interval apart as ever; the read leaves once a place frees.
    #[tokio::test(start_paused = true)]
    async fn a_head_waiting_for_a_read_place_lets_the_changes_behind_it_go() {
        let b = Arc::new(Bucket::new(Quota {
            rate: 10.0,
            burst: 1,
        }));
        let t0 = Instant::now();
        let mut held = Vec::new();
        for _ in 0..MAX_IN_FLIGHT {
            held.push(b.acquire(Priority::default(), Wire::Read).await);
        }
        assert_eq!(t0.elapsed(), Duration::from_millis(1500));
        let left = Arc::new(std::sync::Mutex::new(Vec::new()));
        let go = |what: &'static str, priority: Priority, wire: Wire| {
            let (b, left) = (b.clone(), left.clone());
            tokio::spawn(async move {
                let _place = b.acquire(priority, wire).await;
                left.lock().expect("lock").push((what, t0.elapsed()));
            })
        };
        let page = go("page", Priority::of(Class::StopsHarm, 0), Wire::Read);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let changes: Vec<_> = (0..3)
            .map(|_| go("change", Priority::of(Class::Change, 1), Wire::Change))
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(held);
        for t in changes.into_iter().chain([page]) {
            t.await.expect("task");
        }
        let left = left.lock().expect("lock").clone();
        assert_eq!(
            left,
            [
                ("change", Duration::from_millis(1600)),
                ("change", Duration::from_millis(1700)),
                ("change", Duration::from_millis(1800)),
                ("page", Duration::from_millis(3510)),
            ]
        );
    }

    /// Requests that wait for a place on the wire leave one interval
    /// apart once places free up, not in a burst: the schedule counts when
    /// they leave, and a service's own bucket would throttle a burst.
    #[tokio::test(start_paused = true)]
    async fn requests_held_for_a_place_on_the_wire_still_leave_at_the_rate() {
        let b = Arc::new(Bucket::new(Quota {
            rate: 10.0,
            burst: 1,
        }));
        let t0 = Instant::now();
        let mut held = Vec::new();
        for _ in 0..MAX_IN_FLIGHT {
            held.push(b.acquire(Priority::default(), Wire::Read).await);
        }
        // Sixteen on the wire, one every 100 ms: the last left at 1.5 s.
        assert_eq!(t0.elapsed(), Duration::from_millis(1500));
        let left = Arc::new(std::sync::Mutex::new(Vec::new()));
        let waiting: Vec<_> = (0..5)
            .map(|_| {
                let (b, left) = (b.clone(), left.clone());
                tokio::spawn(async move {
                    let _place = b.acquire(Priority::default(), Wire::Read).await;
                    left.lock().expect("lock").push(t0.elapsed());
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(held);
        for w in waiting {
            w.await.expect("task");
        }
        let left = left.lock().expect("lock").clone();
        let want: Vec<Duration> = (0..5)
            .map(|k| Duration::from_millis(3500 + 100 * k))
            .collect();
        assert_eq!(left, want);
    }
}
