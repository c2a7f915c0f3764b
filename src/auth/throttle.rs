//! Failed-login throttling, per login name and per source address.
//!
//! A fixed window per key: after `max` failures inside `window`, further
//! attempts are refused with 429 until the window that started with the first
//! failure has passed. Successful logins do not reset the address counter
//! (a spraying client should not be able to launder it with one good login).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::config::ThrottleConfig;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

pub struct Throttle {
    config: ThrottleConfig,
    by_login: DashMap<String, Window>,
    by_addr: DashMap<IpAddr, Window>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Self {
        Throttle {
            config,
            by_login: DashMap::new(),
            by_addr: DashMap::new(),
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.config.window)
    }

    fn blocked_for(&self, w: Option<Window>, max: u32, now: Instant) -> Option<u64> {
        let w = w?;
        let elapsed = now.saturating_duration_since(w.started);
        if elapsed >= self.window() || w.failures < max {
            return None;
        }
        Some((self.window() - elapsed).as_secs().max(1))
    }

    /// Seconds to wait when this login or address is locked out.
    pub fn check(&self, login: &str, addr: Option<IpAddr>) -> Option<u64> {
        let now = Instant::now();
        let login_key = login.to_lowercase();
        let by_login = self.blocked_for(
            self.by_login.get(&login_key).map(|w| *w),
            self.config.max_failures_per_login,
            now,
        );
        let by_addr = addr.and_then(|a| {
            self.blocked_for(
                self.by_addr.get(&a).map(|w| *w),
                self.config.max_failures_per_address,
                now,
            )
        });
        by_login.max(by_addr)
    }

    pub fn record_failure(&self, login: &str, addr: Option<IpAddr>) {
        let now = Instant::now();
        let window = self.window();
        let bump = |w: &mut Window| {
            if now.saturating_duration_since(w.started) >= window {
                *w = Window {
                    started: now,
                    failures: 0,
                };
            }
            w.failures = w.failures.saturating_add(1);
        };
        bump(&mut self.by_login.entry(login.to_lowercase()).or_insert(Window {
            started: now,
            failures: 0,
        }));
        if let Some(a) = addr {
            bump(&mut self.by_addr.entry(a).or_insert(Window {
                started: now,
                failures: 0,
            }));
        }
    }

    pub fn record_success(&self, login: &str) {
        self.by_login.remove(&login.to_lowercase());
    }

    /// Drops finished windows so the maps don't grow with every guessed login.
    pub fn purge(&self) {
        let now = Instant::now();
        let window = self.window();
        self.by_login
            .retain(|_, w| now.saturating_duration_since(w.started) < window);
        self.by_addr
            .retain(|_, w| now.saturating_duration_since(w.started) < window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleConfig {
            max_failures_per_login: 3,
            max_failures_per_address: 5,
            window: 60,
        })
    }

    #[test]
    fn locks_login_after_max_failures() {
        let t = throttle();
        for _ in 0..3 {
            assert!(t.check("Alice", None).is_none());
            t.record_failure("alice", None);
        }
        let wait = t.check("ALICE", None).expect("locked");
        assert!((1..=60).contains(&wait));
        assert!(t.check("bob", None).is_none());
    }

    #[test]
    fn locks_address_across_logins() {
        let t = throttle();
        let addr: IpAddr = "10.0.0.1".parse().expect("ip");
        for i in 0..5 {
            t.record_failure(&format!("user{i}"), Some(addr));
        }
        assert!(t.check("someone-else", Some(addr)).is_some());
        assert!(t.check("someone-else", Some("10.0.0.2".parse().expect("ip"))).is_none());
    }

    #[test]
    fn success_clears_login_counter() {
        let t = throttle();
        t.record_failure("a", None);
        t.record_failure("a", None);
        t.record_success("a");
        t.record_failure("a", None);
        assert!(t.check("a", None).is_none());
    }
}
