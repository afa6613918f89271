//! [`ApiConfig`]: the queue component's settings, read from Spin variables
//! (through any `Fn(&str) -> Option<String>` lookup, so tests pass a map).

use super::error::ApiError;
use crate::config::{self, QueueConfig, RetryPolicy};

/// Default of `max_body_bytes` (1 MiB).
pub const MAX_BODY_BYTES_DEFAULT: usize = 1_048_576;
/// Default of `default_max_attempts`.
pub const DEFAULT_MAX_ATTEMPTS_DEFAULT: u32 = config::DEFAULT_MAX_ATTEMPTS;
/// Default of `default_lease_ms`.
pub const DEFAULT_LEASE_MS_DEFAULT: u64 = config::DEFAULT_LEASE_MS;
/// Default of `key_prefix`.
pub const KEY_PREFIX_DEFAULT: &str = config::DEFAULT_KEY_PREFIX;
/// Default of `worker_url`: the worker component's drain route, reached as a
/// Spin self request.
pub const WORKER_URL_DEFAULT: &str = "/worker/drain";
/// Smallest accepted `max_body_bytes`.
pub const MIN_BODY_BYTES: usize = 1_024;

/// Settings of the HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// Bearer token required on every `/v1` call; `None` disables auth.
    pub api_token: Option<String>,
    /// `max_attempts` of a task that does not set one.
    pub default_max_attempts: u32,
    /// Lease length of a dequeue that does not ask for one.
    pub default_lease_ms: u64,
    /// Largest accepted request body (413 beyond).
    pub max_body_bytes: usize,
    /// Namespace of the queue's keys in the store.
    pub key_prefix: String,
    /// Where the queue component POSTs after accepting new work (push
    /// dispatch); `None` disables it.
    pub worker_url: Option<String>,
    /// Retry backoff (`retry_base_ms`, `retry_max_ms`, `retry_jitter`).
    pub retry: RetryPolicy,
    /// Minimum interval between maintenance runs (`maintenance_period_ms`).
    pub maintenance_period_ms: u64,
    /// The unit of the engine's time bounds (`grace_ms`, see
    /// [`Timing`](crate::config::Timing)).
    pub grace_ms: u64,
    /// How long finished tasks are kept (`retention_ms`; `0` = forever).
    pub retention_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            api_token: None,
            default_max_attempts: DEFAULT_MAX_ATTEMPTS_DEFAULT,
            default_lease_ms: DEFAULT_LEASE_MS_DEFAULT,
            max_body_bytes: MAX_BODY_BYTES_DEFAULT,
            key_prefix: KEY_PREFIX_DEFAULT.to_string(),
            worker_url: Some(WORKER_URL_DEFAULT.to_string()),
            retry: RetryPolicy::default(),
            maintenance_period_ms: config::DEFAULT_MAINTENANCE_PERIOD_MS,
            grace_ms: config::DEFAULT_GRACE_MS,
            retention_ms: config::DEFAULT_RETENTION_MS,
        }
    }
}

impl ApiConfig {
    /// Read every setting through `var` (a Spin variable lookup; `None` or
    /// an empty string means "use the default", except for `worker_url`
    /// where an empty value disables push dispatch).
    ///
    /// ```
    /// use spin_work_queue::api::ApiConfig;
    /// use std::collections::HashMap;
    /// let vars = HashMap::from([("api_token", "s3cret"), ("worker_url", "")]);
    /// let config = ApiConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap();
    /// assert_eq!(config.api_token.as_deref(), Some("s3cret"));
    /// assert_eq!(config.worker_url, None);
    /// assert_eq!(config.default_lease_ms, 30_000);
    /// ```
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        let set = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let worker_url = match var("worker_url") {
            None => Some(WORKER_URL_DEFAULT.to_string()),
            Some(v) => Some(v.trim().to_string()).filter(|v| !v.is_empty()),
        };
        let config = Self {
            api_token: set("api_token"),
            default_max_attempts: parse_or(
                &set,
                "default_max_attempts",
                DEFAULT_MAX_ATTEMPTS_DEFAULT,
            )?,
            default_lease_ms: parse_or(&set, "default_lease_ms", DEFAULT_LEASE_MS_DEFAULT)?,
            max_body_bytes: parse_or(&set, "max_body_bytes", MAX_BODY_BYTES_DEFAULT)?,
            key_prefix: set("key_prefix").unwrap_or_else(|| KEY_PREFIX_DEFAULT.to_string()),
            worker_url,
            retry: RetryPolicy {
                base_ms: parse_or(&set, "retry_base_ms", config::DEFAULT_RETRY_BASE_MS)?,
                max_ms: parse_or(&set, "retry_max_ms", config::DEFAULT_RETRY_MAX_MS)?,
                jitter: parse_or(&set, "retry_jitter", config::DEFAULT_RETRY_JITTER)?,
            },
            maintenance_period_ms: parse_or(
                &set,
                "maintenance_period_ms",
                config::DEFAULT_MAINTENANCE_PERIOD_MS,
            )?,
            grace_ms: parse_or(&set, "grace_ms", config::DEFAULT_GRACE_MS)?,
            retention_ms: parse_or(&set, "retention_ms", config::DEFAULT_RETENTION_MS)?,
        };
        config.validated()
    }

    /// Check every field; returns the config unchanged when it is valid.
    pub fn validated(self) -> Result<Self, ApiError> {
        if self.max_body_bytes < MIN_BODY_BYTES {
            return Err(ApiError::Config(format!(
                "max_body_bytes must be at least {MIN_BODY_BYTES}"
            )));
        }
        self.queue_config()
            .validated()
            .map_err(|e| ApiError::Config(e.to_string()))?;
        Ok(self)
    }

    /// The engine's configuration for these settings.
    pub fn queue_config(&self) -> QueueConfig {
        QueueConfig {
            key_prefix: self.key_prefix.clone(),
            default_max_attempts: self.default_max_attempts,
            default_lease_ms: self.default_lease_ms,
            retry: self.retry.clone(),
            maintenance_period_ms: self.maintenance_period_ms,
            grace_ms: self.grace_ms,
            retention_ms: self.retention_ms,
            ..QueueConfig::default()
        }
    }
}

/// Parse variable `name` with `FromStr`, or `default` when unset.
pub(crate) fn parse_or<T: std::str::FromStr>(
    set: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T, ApiError> {
    match set(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::Config(format!("variable {name} has an invalid value {v:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn no_variables_give_the_defaults() {
        assert_eq!(
            ApiConfig::from_lookup(|_| None).unwrap(),
            ApiConfig::default()
        );
    }

    #[test]
    fn empty_variables_give_the_defaults_except_worker_url() {
        let c = ApiConfig::from_lookup(lookup(&[
            ("api_token", ""),
            ("default_lease_ms", " "),
            ("worker_url", ""),
        ]))
        .unwrap();
        assert_eq!(c.api_token, None);
        assert_eq!(c.default_lease_ms, DEFAULT_LEASE_MS_DEFAULT);
        assert_eq!(c.worker_url, None);
    }

    #[test]
    fn variables_override_the_defaults() {
        let c = ApiConfig::from_lookup(lookup(&[
            ("default_max_attempts", "5"),
            ("default_lease_ms", "1000"),
            ("max_body_bytes", "2048"),
            ("key_prefix", "app1"),
            ("worker_url", "http://self.alt/worker/drain"),
        ]))
        .unwrap();
        assert_eq!(c.default_max_attempts, 5);
        assert_eq!(c.default_lease_ms, 1000);
        assert_eq!(c.max_body_bytes, 2048);
        assert_eq!(c.queue_config().key_prefix, "app1");
        assert_eq!(
            c.worker_url.as_deref(),
            Some("http://self.alt/worker/drain")
        );
    }

    #[test]
    fn bad_values_are_config_errors() {
        for pairs in [
            [("default_lease_ms", "soon")],
            [("default_max_attempts", "0")],
            [("key_prefix", "a b")],
            [("max_body_bytes", "10")],
        ] {
            let err = ApiConfig::from_lookup(lookup(&pairs)).unwrap_err();
            assert_eq!(err.code(), "invalid_config", "{pairs:?}");
        }
    }
}
