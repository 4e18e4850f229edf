//! When to start a backend again after it failed.
//!
//! The first restart after a failure is immediate (a crash mid-call should cost
//! one call, not the next one too). Failures in a row then wait
//! `backoff_base × 2ⁿ` (capped, with ±20% jitter so a fleet of clients does not
//! restart in step). `breaker_failures` failures within `breaker_window` open
//! the breaker: calls fail at once, saying when the server will be tried again;
//! after `breaker_cooldown` one probe start decides (half-open).
//!
//! What a run proved decides what its crash costs ([`Run`]):
//!
//! - A *stable* run (up for `stable_after`, like Kubernetes resetting its crash
//!   loop backoff after a quiet period) starts a fresh count: backoff and
//!   breaker forget the failures before it.
//! - A *healthy* run (it answered `initialize` and then a client's request
//!   with a result) proved that the server works, so its crash restarts at
//!   once, as a first crash does: the backoff counts failures in a row of
//!   starts that came to nothing, and this one did not. The crash still counts
//!   in the breaker window, which bounds restart intensity as an Erlang
//!   supervisor does (at most `breaker_failures` crashes in `breaker_window`),
//!   so a server that dies after every call is still stopped from churning.
//! - Anything else (a start that failed, an instance that died before serving
//!   anything) grows the backoff.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::BackendError;
use crate::config::Supervision;

/// The restart record of one backend slot.
#[derive(Debug, Default)]
pub struct Health {
    /// Failures since the last stable run.
    in_a_row: u32,
    /// When recent failures happened (within the breaker window).
    recent: VecDeque<Instant>,
    retry_at: Option<Instant>,
    open_until: Option<Instant>,
    half_open: bool,
    last_error: Option<String>,
    /// The delays chosen so far, for status and tests.
    pub last_delay: Option<Duration>,
}

/// How an instance that failed had run (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct Run {
    /// From its start to its failure; zero for a start that failed.
    pub uptime: Duration,
    /// It answered a client's request with a result.
    pub served: bool,
}

/// A small, good-enough jitter in [0.8, 1.2): no need for a random crate.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    0.8 + (hasher.finish() % 4000) as f64 / 10_000.0
}

impl Health {
    /// May an instance be started now? If not, the error says why and when.
    pub fn admit(&mut self, server: &str, now: Instant) -> Result<(), BackendError> {
        if let Some(until) = self.open_until {
            if now < until {
                return Err(BackendError::CircuitOpen {
                    server: server.to_string(),
                    failures: self.recent.len(),
                    retry_in_secs: (until - now).as_secs_f64().ceil() as u64,
                    last_error: self.last_error.clone().unwrap_or_default(),
                });
            }
            self.open_until = None;
            self.half_open = true;
        }
        if let Some(at) = self.retry_at
            && now < at
        {
            return Err(BackendError::BackingOff {
                server: server.to_string(),
                failures: self.in_a_row,
                retry_in_ms: (at - now).as_millis() as u64,
                last_error: self.last_error.clone().unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// An instance started and initialized: a half-open breaker closes.
    pub fn started(&mut self) {
        self.half_open = false;
        self.retry_at = None;
    }

    /// A start failed, or an instance died after `run`.
    pub fn failed(&mut self, policy: &Supervision, now: Instant, run: Run, error: String) {
        if run.uptime >= policy.stable_after {
            self.in_a_row = 0;
            self.recent.clear();
        } else if run.served {
            self.in_a_row = 0;
        }
        self.in_a_row += 1;
        self.recent.push_back(now);
        while self.recent.front().is_some_and(|t| now.duration_since(*t) > policy.breaker_window) {
            self.recent.pop_front();
        }
        self.last_error = Some(error);
        if self.half_open || self.recent.len() >= policy.breaker_failures {
            self.half_open = false;
            self.retry_at = None;
            self.open_until = Some(now + policy.breaker_cooldown);
            return;
        }
        let delay = if self.in_a_row <= 1 {
            Duration::ZERO
        } else {
            let exponent = (self.in_a_row - 2).min(20);
            policy.backoff_base.saturating_mul(1 << exponent).min(policy.backoff_cap).mul_f64(jitter())
        };
        self.last_delay = Some(delay);
        self.retry_at = Some(now + delay);
    }

    /// How the slot looks to `status` when no instance is running.
    pub fn state(&self, now: Instant) -> Option<&'static str> {
        match (self.open_until, self.retry_at) {
            (Some(until), _) if now < until => Some("open"),
            (Some(_), _) => Some("half-open"),
            (None, Some(at)) if now < at => Some("backing off"),
            _ if self.half_open => Some("half-open"),
            _ => None,
        }
    }

    /// Seconds until the next start is allowed, if it is not allowed now.
    pub fn next_retry_secs(&self, now: Instant) -> Option<f64> {
        let at = self.open_until.or(self.retry_at)?;
        (at > now).then(|| (at - now).as_secs_f64())
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Supervision {
        Supervision {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(1),
            breaker_failures: 5,
            breaker_window: Duration::from_secs(60),
            breaker_cooldown: Duration::from_secs(10),
            ..Supervision::default()
        }
    }

    #[test]
    fn first_restart_is_immediate_then_delays_grow_to_the_cap() {
        let policy = policy();
        let mut health = Health::default();
        let now = Instant::now();
        health.failed(&policy, now, Run::default(), "exit 1".into());
        assert_eq!(health.last_delay, Some(Duration::ZERO));
        assert!(health.admit("x", now).is_ok());
        let mut delays = Vec::new();
        for _ in 0..3 {
            health.failed(&policy, now, Run::default(), "exit 1".into());
            delays.push(health.last_delay.unwrap());
        }
        assert!(delays[0] >= Duration::from_millis(80) && delays[0] < Duration::from_millis(120), "{delays:?}");
        assert!(delays[1] > delays[0] && delays[2] > delays[1], "{delays:?}");
        let err = health.admit("x", now).unwrap_err().to_string();
        assert!(err.contains("after 4 failures") && err.contains("exit 1"), "{err}");
        assert_eq!(health.state(now), Some("backing off"));
    }

    #[test]
    fn the_breaker_opens_then_a_probe_decides() {
        let policy = policy();
        let mut health = Health::default();
        let now = Instant::now();
        for _ in 0..5 {
            health.failed(&policy, now, Run::default(), "exit 2".into());
        }
        assert_eq!(health.state(now), Some("open"));
        let err = health.admit("x", now).unwrap_err().to_string();
        assert!(err.contains("retried in 10 s"), "{err}");
        // After the cooldown one probe may start; if it fails the breaker opens again.
        let later = now + Duration::from_secs(11);
        assert!(health.admit("x", later).is_ok());
        health.failed(&policy, later, Run::default(), "exit 2".into());
        assert_eq!(health.state(later), Some("open"));
        // A probe that starts closes it.
        let much_later = later + Duration::from_secs(11);
        assert!(health.admit("x", much_later).is_ok());
        health.started();
        assert_eq!(health.state(much_later), None);
    }

    #[test]
    fn a_long_run_starts_a_fresh_count() {
        let policy = policy();
        let mut health = Health::default();
        let now = Instant::now();
        for _ in 0..3 {
            health.failed(&policy, now, Run::default(), "x".into());
        }
        health.failed(&policy, now, Run { uptime: Duration::from_secs(3600), served: false }, "x".into());
        assert_eq!(health.last_delay, Some(Duration::ZERO));
    }

    #[test]
    fn a_crash_after_a_healthy_run_restarts_at_once_but_still_counts_for_the_breaker() {
        let policy = policy();
        let mut health = Health::default();
        let now = Instant::now();
        // Failed starts in a row: the delays grow.
        for _ in 0..2 {
            health.failed(&policy, now, Run::default(), "exit 1".into());
        }
        assert!(health.last_delay.is_some_and(|d| d > Duration::ZERO));
        // Then it starts, serves a call and crashes a second later.
        let later = now + Duration::from_secs(1);
        health.started();
        health.failed(&policy, later, Run { uptime: Duration::from_secs(1), served: true }, "exit 3".into());
        assert_eq!(health.last_delay, Some(Duration::ZERO), "restarted at once, like a first crash");
        assert!(health.admit("x", later).is_ok());
        // A run that served nothing is no proof: the next crash backs off again.
        health.started();
        health.failed(&policy, later, Run { uptime: Duration::from_secs(1), served: false }, "exit 3".into());
        assert!(health.last_delay.is_some_and(|d| d > Duration::ZERO), "{:?}", health.last_delay);
        assert!(health.admit("x", later).is_err());
        // A server that dies after every call still opens the breaker.
        let mut churning = Health::default();
        for _ in 0..policy.breaker_failures {
            churning.failed(&policy, now, Run { uptime: Duration::from_millis(10), served: true }, "exit 3".into());
        }
        assert_eq!(churning.state(now), Some("open"));
    }
}
