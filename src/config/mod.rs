//! Configuration: [`QueueConfig`], a plain struct with documented
//! defaults, validated once when a queue is built; its [`Timing`]; and
//! reading settings from Spin variables ([`Vars`]), with [`ConfigError`]
//! for what is refused.

mod timing;
mod vars;

pub use timing::Timing;
pub use vars::{ConfigError, Vars};

/// Default number of delivery attempts before a task is dead-lettered.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Upper bound for `max_attempts` on a task.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;
/// Default lease length handed to a dequeuer.
pub const DEFAULT_LEASE_MS: u64 = 30_000;
/// Shortest lease a dequeuer may ask for.
pub const MIN_LEASE_MS: u64 = 100;
/// Longest lease a dequeuer may ask for (12 hours); heartbeats extend it.
pub const MAX_LEASE_MS: u64 = 12 * 3_600_000;
/// Most tasks accepted by one enqueue call.
pub const MAX_ENQUEUE_BATCH: usize = 1_000;
/// Most tasks handed out by one dequeue call.
pub const MAX_DEQUEUE_BATCH: u32 = 100;
/// Longest `delay_ms` accepted on enqueue (7 days).
pub const MAX_DELAY_MS: u64 = 7 * 24 * 3_600_000;
/// Default namespace of every key the queue writes.
pub const DEFAULT_KEY_PREFIX: &str = "wq";
/// Default interval between two maintenance runs (rescue, promotion).
pub const DEFAULT_MAINTENANCE_PERIOD_MS: u64 = 1_000;
/// Default time after which work taken but not recorded is presumed lost
/// by a crashed request and recovered.
pub const DEFAULT_GRACE_MS: u64 = 10_000;
/// Shortest accepted `grace_ms`.
pub const MIN_GRACE_MS: u64 = 1_000;
/// Longest accepted `grace_ms` (10 minutes).
pub const MAX_GRACE_MS: u64 = 600_000;
/// Default time finished tasks are kept before the retention sweep deletes
/// them (7 days); `0` keeps them forever.
pub const DEFAULT_RETENTION_MS: u64 = 7 * 24 * 3_600_000;
/// Shortest non-zero `retention_ms` (1 minute).
pub const MIN_RETENTION_MS: u64 = 60_000;
/// Deepest nesting of arrays and objects accepted in a task's input or
/// output (the store's JSON decoder stops at 128; records add a few levels).
pub const MAX_JSON_DEPTH: usize = 64;
/// Default worker id used by the [`WorkQueuePort`](crate::WorkQueuePort)
/// methods, which carry none.
pub const DEFAULT_PORT_WORKER_ID: &str = "port";

/// Exponential backoff with deterministic jitter for retries after `fail`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the first retry, before jitter.
    pub base_ms: u64,
    /// Cap on any retry delay.
    pub max_ms: u64,
    /// Fraction (0.0..=1.0) of the delay that jitter may remove.
    pub jitter: f64,
}

/// Default first retry delay.
pub const DEFAULT_RETRY_BASE_MS: u64 = 1_000;
/// Default cap on retry delays (10 minutes).
pub const DEFAULT_RETRY_MAX_MS: u64 = 600_000;
/// Default jitter fraction.
pub const DEFAULT_RETRY_JITTER: f64 = 0.2;

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_ms: DEFAULT_RETRY_BASE_MS,
            max_ms: DEFAULT_RETRY_MAX_MS,
            jitter: DEFAULT_RETRY_JITTER,
        }
    }
}

impl RetryPolicy {
    /// Delay before retrying `task_id` after attempt `failed_attempt` failed:
    /// `base · 2^attempt`, capped at `max_ms`, minus a jitter derived from
    /// the task id and attempt (deterministic, so every replica agrees).
    ///
    /// ```
    /// use spin_work_queue::RetryPolicy;
    /// let p = RetryPolicy { base_ms: 1_000, max_ms: 60_000, jitter: 0.0 };
    /// assert_eq!(p.backoff_ms("t", 0), 1_000);
    /// assert_eq!(p.backoff_ms("t", 3), 8_000);
    /// assert_eq!(p.backoff_ms("t", 30), 60_000);
    /// ```
    pub fn backoff_ms(&self, task_id: &str, failed_attempt: u32) -> u64 {
        let exp = self
            .base_ms
            .saturating_mul(1u64 << failed_attempt.min(40))
            .min(self.max_ms);
        let unit = (fnv1a(task_id.as_bytes(), failed_attempt) % 10_000) as f64 / 10_000.0;
        let cut = (exp as f64 * self.jitter.clamp(0.0, 1.0) * unit) as u64;
        exp - cut
    }
}

fn fnv1a(bytes: &[u8], salt: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes.iter().chain(salt.to_le_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Settings of a queue. Build with struct update syntax over
/// [`QueueConfig::default`] and check with [`QueueConfig::validated`].
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// Namespace of every key in the store (`[A-Za-z0-9_.-]{1,64}`).
    pub key_prefix: String,
    /// `max_attempts` of a task that does not set one.
    pub default_max_attempts: u32,
    /// Lease length when a dequeue does not ask for one.
    pub default_lease_ms: u64,
    /// Backoff between attempts after `fail`.
    pub retry: RetryPolicy,
    /// Minimum interval between two maintenance runs.
    pub maintenance_period_ms: u64,
    /// The time unit every safety bound of the store engine is derived
    /// from ([`Timing`]): clocks of all hosts agree within `grace_ms / 10`,
    /// a store call lands within `grace_ms / 10` of the check before it, a
    /// request finishes its writes within `2 × grace_ms / 5`.
    pub grace_ms: u64,
    /// How long finished tasks (completed or dead-lettered), their
    /// idempotency keys and results are kept; `0` keeps them forever.
    pub retention_ms: u64,
    /// Worker id recorded for tasks taken through
    /// [`WorkQueuePort::try_dequeue`](crate::WorkQueuePort::try_dequeue).
    pub port_worker_id: String,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            key_prefix: DEFAULT_KEY_PREFIX.to_string(),
            default_max_attempts: DEFAULT_MAX_ATTEMPTS,
            default_lease_ms: DEFAULT_LEASE_MS,
            retry: RetryPolicy::default(),
            maintenance_period_ms: DEFAULT_MAINTENANCE_PERIOD_MS,
            grace_ms: DEFAULT_GRACE_MS,
            retention_ms: DEFAULT_RETENTION_MS,
            port_worker_id: DEFAULT_PORT_WORKER_ID.to_string(),
        }
    }
}

impl QueueConfig {
    /// The time bounds derived from [`grace_ms`](Self::grace_ms).
    pub fn timing(&self) -> Timing {
        Timing::from_grace(self.grace_ms)
    }

    /// The settings named by Spin variables (`key_prefix`,
    /// `default_max_attempts`, `default_lease_ms`, `retry_base_ms`,
    /// `retry_max_ms`, `retry_jitter`, `maintenance_period_ms`, `grace_ms`,
    /// `retention_ms`), the defaults for those unset; validated.
    ///
    /// ```
    /// use spin_work_queue::config::{QueueConfig, Vars};
    /// let vars = Vars::new(|k: &str| (k == "grace_ms").then(|| "20000".to_string()));
    /// assert_eq!(QueueConfig::from_vars(&vars).unwrap().grace_ms, 20_000);
    /// let bad = Vars::new(|k: &str| (k == "grace_ms").then(|| "soon".to_string()));
    /// assert!(QueueConfig::from_vars(&bad).is_err());
    /// ```
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Self, ConfigError> {
        Self {
            key_prefix: vars
                .text("key_prefix")
                .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_string()),
            default_max_attempts: vars.parse_or("default_max_attempts", DEFAULT_MAX_ATTEMPTS)?,
            default_lease_ms: vars.parse_or("default_lease_ms", DEFAULT_LEASE_MS)?,
            retry: RetryPolicy {
                base_ms: vars.parse_or("retry_base_ms", DEFAULT_RETRY_BASE_MS)?,
                max_ms: vars.parse_or("retry_max_ms", DEFAULT_RETRY_MAX_MS)?,
                jitter: vars.parse_or("retry_jitter", DEFAULT_RETRY_JITTER)?,
            },
            maintenance_period_ms: vars
                .parse_or("maintenance_period_ms", DEFAULT_MAINTENANCE_PERIOD_MS)?,
            grace_ms: vars.parse_or("grace_ms", DEFAULT_GRACE_MS)?,
            retention_ms: vars.parse_or("retention_ms", DEFAULT_RETENTION_MS)?,
            ..Self::default()
        }
        .validated()
    }

    /// Check every field; returns the config unchanged when it is valid.
    pub fn validated(self) -> Result<Self, ConfigError> {
        let bad = |m: String| Err(ConfigError::Rule(m));
        let prefix_ok = !self.key_prefix.is_empty()
            && self.key_prefix.len() <= 64
            && self
                .key_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !prefix_ok {
            return bad(format!(
                "key_prefix must match [A-Za-z0-9_.-]{{1,64}}, got {:?}",
                self.key_prefix
            ));
        }
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&self.default_max_attempts) {
            return bad(format!(
                "default_max_attempts must be 1..={MAX_ATTEMPTS_LIMIT}"
            ));
        }
        if !(MIN_LEASE_MS..=MAX_LEASE_MS).contains(&self.default_lease_ms) {
            return bad(format!(
                "default_lease_ms must be {MIN_LEASE_MS}..={MAX_LEASE_MS}"
            ));
        }
        if self.retry.base_ms == 0 || self.retry.max_ms < self.retry.base_ms {
            return bad("retry needs 0 < base_ms <= max_ms".into());
        }
        if !(0.0..=1.0).contains(&self.retry.jitter) {
            return bad("retry.jitter must be within 0.0..=1.0".into());
        }
        if self.maintenance_period_ms == 0 {
            return bad("maintenance_period_ms must be positive".into());
        }
        if !(MIN_GRACE_MS..=MAX_GRACE_MS).contains(&self.grace_ms) {
            return bad(format!(
                "grace_ms must be {MIN_GRACE_MS}..={MAX_GRACE_MS}, got {}",
                self.grace_ms
            ));
        }
        if let Err(broken) = self.timing().check() {
            return bad(format!("grace_ms {} breaks {broken}", self.grace_ms));
        }
        if self.maintenance_period_ms > self.grace_ms {
            return bad("maintenance_period_ms must not exceed grace_ms".into());
        }
        let retention_floor = MIN_RETENTION_MS.max(2 * self.grace_ms);
        if self.retention_ms != 0 && self.retention_ms < retention_floor {
            return bad(format!(
                "retention_ms must be 0 (keep forever) or at least {retention_floor}, got {}",
                self.retention_ms
            ));
        }
        if self.port_worker_id.is_empty() {
            return bad("port_worker_id must not be empty".into());
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_grace_period_gives_consistent_bounds() {
        for grace in (MIN_GRACE_MS..=MAX_GRACE_MS)
            .step_by(997)
            .chain([MAX_GRACE_MS])
        {
            assert_eq!(Timing::from_grace(grace).check(), Ok(()), "grace {grace}");
        }
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        let bad = [
            QueueConfig {
                grace_ms: 999,
                ..QueueConfig::default()
            },
            QueueConfig {
                retention_ms: 1,
                ..QueueConfig::default()
            },
            QueueConfig {
                maintenance_period_ms: 20_000,
                ..QueueConfig::default()
            },
        ];
        for c in bad {
            assert!(matches!(c.validated(), Err(ConfigError::Rule(_))));
        }
        let ok = QueueConfig {
            retention_ms: 0,
            ..QueueConfig::default()
        };
        assert!(ok.validated().is_ok());
    }
}
