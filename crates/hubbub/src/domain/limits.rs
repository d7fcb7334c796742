//! Rate limits (SPEC §10): GCRA buckets per user for sends and other writes, per IP
//! for guest sign-ups, and fixed 15-minute windows for failed logins.

use std::num::NonZeroU32;
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::{Error, Result};
use crate::config::Settings;

const LOGIN_WINDOW_MS: i64 = 15 * 60 * 1000;
const LOGIN_FAILS_PER_ACCOUNT: u32 = 10;
const LOGIN_FAILS_PER_IP: u32 = 30;

pub struct Limits {
    enabled: bool,
    sends: DefaultKeyedRateLimiter<String>,
    writes: DefaultKeyedRateLimiter<String>,
    signups: DefaultKeyedRateLimiter<String>,
    registrations: DefaultKeyedRateLimiter<String>,
    /// key → (window start ms, failures in the window)
    login_failures: DashMap<String, (i64, u32)>,
}

fn quota(per_min: u32, burst: u32) -> Quota {
    let per_min = NonZeroU32::new(per_min.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_min).allow_burst(burst)
}

fn check(limiter: &DefaultKeyedRateLimiter<String>, key: &str) -> Result<()> {
    match limiter.check_key(&key.to_string()) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Err(Error::RateLimited {
                retry_after_ms: (wait.as_millis() as u64).max(1),
            })
        }
    }
}

impl Limits {
    pub fn new(s: &Settings) -> Limits {
        Limits {
            enabled: !s.no_rate_limit,
            sends: RateLimiter::keyed(quota(s.send_rate_per_min, s.send_burst)),
            writes: RateLimiter::keyed(quota(s.write_rate_per_min, s.write_burst)),
            signups: RateLimiter::keyed(quota(s.guest_signups_per_min, s.guest_signups_per_min)),
            // Account sign-ups cost an Argon2 hash each; the cap only stops scripts.
            registrations: RateLimiter::keyed(quota(120, 120)),
            login_failures: DashMap::new(),
        }
    }

    pub fn send(&self, user_id: &str) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        check(&self.sends, user_id)
    }

    pub fn write(&self, user_id: &str) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        check(&self.writes, user_id)
    }

    pub fn signup(&self, ip: &str) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        check(&self.signups, ip)
    }

    pub fn registration(&self, ip: &str) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        check(&self.registrations, ip)
    }

    /// Refuses a login attempt while the account or the IP is locked out.
    pub fn login_allowed(&self, account: &str, ip: &str, now: i64) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        for (key, max) in [
            (
                format!("u:{}", account.to_lowercase()),
                LOGIN_FAILS_PER_ACCOUNT,
            ),
            (format!("ip:{ip}"), LOGIN_FAILS_PER_IP),
        ] {
            if let Some(e) = self.login_failures.get(&key) {
                let (start, count) = *e;
                if now < start + LOGIN_WINDOW_MS && count >= max {
                    return Err(Error::RateLimited {
                        retry_after_ms: (start + LOGIN_WINDOW_MS - now).max(1) as u64,
                    });
                }
            }
        }
        Ok(())
    }

    pub fn login_failed(&self, account: &str, ip: &str, now: i64) {
        if !self.enabled {
            return;
        }
        for key in [format!("u:{}", account.to_lowercase()), format!("ip:{ip}")] {
            let mut e = self.login_failures.entry(key).or_insert((now, 0));
            if now >= e.0 + LOGIN_WINDOW_MS {
                *e = (now, 0);
            }
            e.1 += 1;
        }
    }

    pub fn cleanup(&self) {
        self.sends.retain_recent();
        self.writes.retain_recent();
        self.signups.retain_recent();
        self.registrations.retain_recent();
        let now = crate::util::now_ms();
        self.login_failures
            .retain(|_, (start, _)| now < *start + LOGIN_WINDOW_MS);
        self.sends.shrink_to_fit();
    }
}

/// Retry hint for clients, rounded up to whole seconds for `Retry-After`.
pub fn retry_after_secs(ms: u64) -> u64 {
    Duration::from_millis(ms).as_secs() + u64::from(!ms.is_multiple_of(1000))
}
