//! [`ApiConfig`]: the queue component's settings, read from Spin variables
//! (through any `Fn(&str) -> Option<String>` lookup, so tests pass a map).

use crate::config::{self, ConfigError, QueueConfig, Vars};

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

/// Default of `max_drains`: drains in flight at once for the whole app.
pub const MAX_DRAINS_DEFAULT: u32 = 2;
/// Largest accepted `max_drains`.
pub const MAX_DRAINS_LIMIT: u32 = 64;

/// Settings of the HTTP API: the queue's own, and the API's.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// The engine's settings.
    pub queue: QueueConfig,
    /// Bearer token required on every `/v1` call; `None` disables auth.
    pub api_token: Option<String>,
    /// Largest accepted request body (413 beyond).
    pub max_body_bytes: usize,
    /// Push dispatch: how the queue tells workers about new work.
    pub dispatch: DispatchConfig,
}

/// Push dispatch: after accepting work the queue component POSTs
/// `worker_url`, unless `max_drains` drains are in flight already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchConfig {
    /// Where to push (`worker_url`); `None` disables push dispatch.
    pub worker_url: Option<String>,
    /// Most drains in flight at once for the whole app (`max_drains`).
    pub max_drains: u32,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            worker_url: Some(WORKER_URL_DEFAULT.to_string()),
            max_drains: MAX_DRAINS_DEFAULT,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            queue: QueueConfig::default(),
            api_token: None,
            max_body_bytes: MAX_BODY_BYTES_DEFAULT,
            dispatch: DispatchConfig::default(),
        }
    }
}

impl ApiConfig {
    /// Read every setting through `var` (a Spin variable lookup; `None` or
    /// an empty string means "use the default", except for `worker_url`
    /// where an empty value disables push dispatch), see
    /// [`QueueConfig::from_vars`] for the queue's.
    ///
    /// ```
    /// use spin_work_queue::api::ApiConfig;
    /// use std::collections::HashMap;
    /// let vars = HashMap::from([("api_token", "s3cret"), ("worker_url", "")]);
    /// let config = ApiConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap();
    /// assert_eq!(config.api_token.as_deref(), Some("s3cret"));
    /// assert_eq!(config.dispatch.worker_url, None);
    /// assert_eq!(config.queue.default_lease_ms, 30_000);
    /// ```
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_vars(&Vars::new(var))
    }

    /// [`ApiConfig::from_lookup`] on variables already wrapped.
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Self, ConfigError> {
        let worker_url = match vars.raw("worker_url") {
            None => Some(WORKER_URL_DEFAULT.to_string()),
            Some(_) => vars.text("worker_url"),
        };
        let config = Self {
            queue: QueueConfig::from_vars(vars)?,
            api_token: vars.text("api_token"),
            max_body_bytes: vars.parse_or("max_body_bytes", MAX_BODY_BYTES_DEFAULT)?,
            dispatch: DispatchConfig {
                worker_url,
                max_drains: vars.parse_or("max_drains", MAX_DRAINS_DEFAULT)?,
            },
        };
        config.validated()
    }

    /// Check every field; returns the config unchanged when it is valid.
    pub fn validated(self) -> Result<Self, ConfigError> {
        if self.max_body_bytes < MIN_BODY_BYTES {
            return Err(ConfigError::Rule(format!(
                "max_body_bytes must be at least {MIN_BODY_BYTES}"
            )));
        }
        if !(1..=MAX_DRAINS_LIMIT).contains(&self.dispatch.max_drains) {
            return Err(ConfigError::Rule(format!(
                "max_drains must be 1..={MAX_DRAINS_LIMIT}, got {}",
                self.dispatch.max_drains
            )));
        }
        let queue = self.queue.validated()?;
        Ok(Self { queue, ..self })
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
        assert_eq!(c.queue.default_lease_ms, DEFAULT_LEASE_MS_DEFAULT);
        assert_eq!(c.dispatch.worker_url, None);
    }

    #[test]
    fn variables_override_the_defaults() {
        let c = ApiConfig::from_lookup(lookup(&[
            ("default_max_attempts", "5"),
            ("default_lease_ms", "1000"),
            ("max_body_bytes", "2048"),
            ("key_prefix", "app1"),
            ("worker_url", "http://self.alt/worker/drain"),
            ("max_drains", "4"),
        ]))
        .unwrap();
        assert_eq!(c.queue.default_max_attempts, 5);
        assert_eq!(c.queue.default_lease_ms, 1000);
        assert_eq!(c.max_body_bytes, 2048);
        assert_eq!(c.queue.key_prefix, "app1");
        assert_eq!(
            c.dispatch.worker_url.as_deref(),
            Some("http://self.alt/worker/drain")
        );
        assert_eq!(c.dispatch.max_drains, 4);
    }

    #[test]
    fn bad_values_are_config_errors() {
        for pairs in [
            [("default_lease_ms", "soon")],
            [("default_max_attempts", "0")],
            [("key_prefix", "a b")],
            [("max_body_bytes", "10")],
            [("max_drains", "0")],
        ] {
            assert!(ApiConfig::from_lookup(lookup(&pairs)).is_err(), "{pairs:?}");
        }
    }
}
