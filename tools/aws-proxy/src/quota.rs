//! Per-API request quotas, enforced like AWS's: a token bucket per account
//! and region (per account for global services such as IAM), shared by
//! every operation a rule covers.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::RateLimiter;

use crate::classify::Api;

/// `SERVICE[:OPERATION]=RATE[/BURST]`, or `=none` for no quota.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub service: String,
    /// `None`: every operation of the service not named by a rule of its
    /// own, sharing one bucket.
    pub operation: Option<String>,
    pub limit: Option<Limit>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Requests per second.
    pub rate: f64,
    /// Requests that may go at once after an idle spell.
    pub burst: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RuleError {
    #[error("quota `{0}`: expected SERVICE[:OPERATION]=RATE[/BURST] or SERVICE[:OPERATION]=none, e.g. lambda=15/15 or lambda:GetFunction=100")]
    Shape(String),
    #[error("quota `{0}`: the rate must be a number of requests per second above 0")]
    Rate(String),
    #[error("quota `{0}`: the burst must be a whole number of requests, at least 1")]
    Burst(String),
}

impl std::str::FromStr for Rule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, RuleError> {
        let shape = || RuleError::Shape(s.to_string());
        let (api, limit) = s.split_once('=').ok_or_else(shape)?;
        let (service, operation) = match api.split_once(':') {
            Some((svc, op)) if !op.is_empty() => (svc, Some(op.to_string())),
            Some(_) => return Err(shape()),
            None => (api, None),
        };
        if service.is_empty()
            || !service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(shape());
        }
        let limit = if limit == "none" {
            None
        } else {
            let (rate, burst) = match limit.split_once('/') {
                Some((r, b)) => (r, Some(b)),
                None => (limit, None),
            };
            let rate: f64 = rate.parse().map_err(|_| RuleError::Rate(s.to_string()))?;
            if !(rate.is_finite() && rate > 0.0) {
                return Err(RuleError::Rate(s.to_string()));
            }
            let burst = match burst {
                Some(b) => b
                    .parse::<u32>()
                    .ok()
                    .filter(|b| *b >= 1)
                    .ok_or_else(|| RuleError::Burst(s.to_string()))?,
                // One second's worth, as AWS's buckets refill.
                None => (rate.ceil() as u32).max(1),
            };
            Some(Limit { rate, burst })
        };
        Ok(Rule {
            service: service.to_string(),
            operation,
            limit,
        })
    }
}

/// AWS's published quotas for the APIs firebreak and the tools it is
/// measured against call (Lambda: 15/s for the control plane, GetFunction
/// 100/s, GetPolicy 15/s of its own, invocations not counted); IAM's are not
/// published, and these are what it answers to sustained callers.
pub const AWS_DEFAULTS: &[&str] = &[
    "lambda=15/15",
    "lambda:GetFunction=100/100",
    "lambda:GetPolicy=15/15",
    "lambda:Invoke=none",
    "lambda:InvokeAsync=none",
    "iam=20/20",
];

/// Services whose quotas are per account, not per region.
fn is_global(service: &str) -> bool {
    matches!(service, "iam")
}

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// (account, region or `global`, the rule's index).
type BucketKey = (String, String, usize);

pub enum Verdict {
    Allow,
    /// Over quota; the bucket has a token again after this long.
    Throttle {
        retry_after: Duration,
    },
}

pub struct Quotas<C: Clock = DefaultClock> {
    rules: Vec<Rule>,
    /// Rates are multiplied by it, so a long benchmark runs in less time
    /// with the same shape.
    compress: f64,
    clock: C,
    buckets: Mutex<HashMap<BucketKey, Arc<Limiter<C>>>>,
}

impl Quotas<DefaultClock> {
    pub fn new(rules: Vec<Rule>, compress: f64) -> Self {
        Self::with_clock(rules, compress, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Quotas<C> {
    pub fn with_clock(rules: Vec<Rule>, compress: f64, clock: C) -> Self {
        Self {
            rules,
            compress: if compress.is_finite() && compress > 0.0 {
                compress
            } else {
                1.0
            },
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The rule governing `api`: its operation's own, else its service's.
    /// Later rules win, so a command line overrides the defaults.
    fn rule(&self, api: &Api) -> Option<usize> {
        let exact = self.rules.iter().rposition(|r| {
            r.service == api.service && r.operation.as_deref() == Some(api.operation.as_str())
        });
        exact.or_else(|| {
            self.rules
                .iter()
                .rposition(|r| r.service == api.service && r.operation.is_none())
        })
    }

    pub fn check(&self, api: &Api) -> Verdict {
        let Some(i) = self.rule(api) else {
            return Verdict::Allow;
        };
        let Some(limit) = self.rules[i].limit else {
            return Verdict::Allow;
        };
        let region = if is_global(&api.service) {
            "global".to_string()
        } else {
            api.region.clone()
        };
        let limiter = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            buckets
                .entry((api.account.clone(), region, i))
                .or_insert_with(|| Arc::new(self.limiter(limit)))
                .clone()
        };
        match limiter.check() {
            Ok(()) => Verdict::Allow,
            Err(not_until) => Verdict::Throttle {
                retry_after: not_until.wait_time_from(self.clock.now()),
            },
        }
    }

    fn limiter(&self, limit: Limit) -> Limiter<C> {
        let period = Duration::from_secs_f64(1.0 / (limit.rate * self.compress));
        let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
        // A period of zero (an absurd rate) is refused by governor; such a
        // rate is no quota at all.
        let quota = governor::Quota::with_period(period)
            .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        RateLimiter::direct_with_clock(quota, self.clock.clone())
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::classify::Protocol;

    fn api(service: &str, operation: &str, account: &str) -> Api {
        Api {
            service: service.into(),
            operation: operation.into(),
            account: account.into(),
            region: "us-east-1".into(),
            protocol: Protocol::RestJson,
        }
    }

    fn rules(specs: &[&str]) -> Vec<Rule> {
        specs
            .iter()
            .map(|s| s.parse().expect("valid rule"))
            .collect()
    }

    /// Requests sent every `step` for `over`; how many were let through.
    fn allowed(
        q: &Quotas<FakeRelativeClock>,
        clock: &FakeRelativeClock,
        a: &Api,
        step: Duration,
        over: Duration,
    ) -> usize {
        let mut n = 0;
        let mut t = Duration::ZERO;
        while t < over {
            if matches!(q.check(a), Verdict::Allow) {
                n += 1;
            }
            clock.advance(step);
            t += step;
        }
        n
    }

    #[test]
    fn a_bucket_lets_through_its_burst_then_exactly_its_rate() {
        let clock = FakeRelativeClock::default();
        let q = Quotas::with_clock(rules(&["lambda=15/5"]), 1.0, clock.clone());
        let a = api("lambda", "PutFunctionConcurrency", "1");
        // Offered 1,000/s for 10 s: the burst, then 15 a second.
        let n = allowed(
            &q,
            &clock,
            &a,
            Duration::from_micros(100),
            Duration::from_secs(10),
        );
        // At t = 0 the burst; the bucket was full, so the 5th of them
        // already used the first 1/15 s slot: 4 + 10 s × 15.
        assert_eq!(n, 4 + 150, "burst of 5 then 15/s over 10 s");
    }

    #[test]
    fn compression_multiplies_the_rate() {
        let clock = FakeRelativeClock::default();
        let q = Quotas::with_clock(rules(&["lambda=15/1"]), 10.0, clock.clone());
        let a = api("lambda", "PutFunctionConcurrency", "1");
        let n = allowed(
            &q,
            &clock,
            &a,
            Duration::from_micros(10),
            Duration::from_secs(1),
        );
        assert_eq!(n, 150);
    }

    #[test]
    fn a_service_rule_is_one_bucket_for_its_operations_and_an_operation_rule_its_own() {
        let clock = FakeRelativeClock::default();
        let q = Quotas::with_clock(rules(AWS_DEFAULTS), 1.0, clock.clone());
        for _ in 0..15 {
            assert!(matches!(
                q.check(&api("lambda", "GetPolicy", "1")),
                Verdict::Allow
            ));
        }
        // The control plane's 15 are untouched by GetPolicy's own bucket...
        for i in 0..15 {
            let op = if i % 2 == 0 {
                "ListAliases"
            } else {
                "PutFunctionConcurrency"
            };
            assert!(
                matches!(q.check(&api("lambda", op, "1")), Verdict::Allow),
                "{i}"
            );
        }
        // ...and shared by all its operations.
        match q.check(&api("lambda", "ListVersionsByFunction", "1")) {
            Verdict::Throttle { retry_after } => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_millis(67))
            }
            Verdict::Allow => panic!("the 16th control-plane call in the same instant passed"),
        }
        // Another account has its own quota; invocations have none.
        assert!(matches!(
            q.check(&api("lambda", "ListAliases", "2")),
            Verdict::Allow
        ));
        for _ in 0..100 {
            assert!(matches!(
                q.check(&api("lambda", "Invoke", "1")),
                Verdict::Allow
            ));
        }
    }

    #[test]
    fn iam_is_one_bucket_across_regions() {
        let clock = FakeRelativeClock::default();
        let q = Quotas::with_clock(rules(&["iam=2/2"]), 1.0, clock);
        let mut a = api("iam", "GetRole", "1");
        assert!(matches!(q.check(&a), Verdict::Allow));
        a.region = "eu-west-1".into();
        assert!(matches!(q.check(&a), Verdict::Allow));
        assert!(matches!(q.check(&a), Verdict::Throttle { .. }));
    }

    #[test]
    fn rules_are_parsed_or_refused_with_the_shape_expected() {
        assert_eq!(
            "lambda:GetFunction=100".parse::<Rule>(),
            Ok(Rule {
                service: "lambda".into(),
                operation: Some("GetFunction".into()),
                limit: Some(Limit {
                    rate: 100.0,
                    burst: 100
                })
            })
        );
        assert_eq!("lambda=none".parse::<Rule>().map(|r| r.limit), Ok(None));
        assert!(matches!("lambda".parse::<Rule>(), Err(RuleError::Shape(_))));
        assert!(matches!(
            "lambda:=3".parse::<Rule>(),
            Err(RuleError::Shape(_))
        ));
        assert!(matches!(
            "lambda=0".parse::<Rule>(),
            Err(RuleError::Rate(_))
        ));
        assert!(matches!(
            "lambda=fast".parse::<Rule>(),
            Err(RuleError::Rate(_))
        ));
        assert!(matches!(
            "lambda=15/0".parse::<Rule>(),
            Err(RuleError::Burst(_))
        ));
    }
}
