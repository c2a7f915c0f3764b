//! Reconnect delays: exponential backoff with jitter.
//!
//! Jitter spreads the reconnects of several accentd processes (or of the
//! AMI and ARI links of one) after an Asterisk restart; the cap keeps a long
//! outage from turning into minutes of blindness once Asterisk is back.

use std::time::Duration;

use rand::Rng;

/// How reconnect delays grow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// First delay after a failure.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Relative jitter: 0.2 gives delays within ±20 % of the nominal one.
    pub jitter: f64,
    /// A link that stayed up this long starts again from `initial`.
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            jitter: 0.2,
            reset_after: Duration::from_secs(30),
        }
    }
}

/// The running state of a [`BackoffPolicy`].
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    nominal: Duration,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Backoff {
        Backoff {
            policy,
            nominal: policy.initial,
        }
    }

    /// The delay to wait now; the next one doubles, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.nominal;
        self.nominal = nominal.saturating_mul(2).min(self.policy.max);
        let jitter = self.policy.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return nominal;
        }
        let factor = 1.0 + rand::rng().random_range(-jitter..=jitter);
        nominal.mul_f64(factor)
    }

    /// Back to the initial delay.
    pub fn reset(&mut self) {
        self.nominal = self.policy.initial;
    }

    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter_and_resets() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        let nominal = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0];
        for (d, n) in delays.iter().zip(nominal) {
            let s = d.as_secs_f64();
            assert!(s >= n * 0.8 - 1e-9 && s <= n * 1.2 + 1e-9, "{s} not within 20% of {n}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(600));
    }

    #[test]
    fn no_jitter_is_exact() {
        let mut b = Backoff::new(BackoffPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(25),
            jitter: 0.0,
            reset_after: Duration::from_secs(1),
        });
        let d: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, vec![10, 20, 25, 25]);
    }
}
