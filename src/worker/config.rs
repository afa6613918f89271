//! [`WorkerConfig`]: the worker component's settings, read from Spin
//! variables through a lookup function.

use super::drain::EXECUTOR_TIMEOUT_MS_DEFAULT;
use super::routes::{ExecutorRoutes, EXECUTOR_BASE_DEFAULT};
use crate::api::{parse_or, ApiConfig, ApiError};
use crate::config::MAX_LEASE_MS;

/// Shortest accepted `executor_timeout_ms`.
pub const MIN_EXECUTOR_TIMEOUT_MS: u64 = 100;

/// Settings of the worker component.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// The queue's settings (store namespace, defaults, token, body limit):
    /// the worker runs the engine on the same store as the queue component.
    pub api: ApiConfig,
    /// Node name → executor URL (`executors`, `executor_base`).
    pub routes: ExecutorRoutes,
    /// Time allowed to one executor call (`executor_timeout_ms`).
    pub executor_timeout_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            api: ApiConfig::default(),
            routes: ExecutorRoutes::default(),
            executor_timeout_ms: EXECUTOR_TIMEOUT_MS_DEFAULT,
        }
    }
}

impl WorkerConfig {
    /// Read every setting through `var` (see [`ApiConfig::from_lookup`]),
    /// plus `executors`, `executor_base` and `executor_timeout_ms`.
    ///
    /// ```
    /// use spin_work_queue::worker::WorkerConfig;
    /// let config = WorkerConfig::from_lookup(|k| match k {
    ///     "executors" => Some(r#"{"*": "https://exec.example/{node_name}"}"#.into()),
    ///     _ => None,
    /// }).unwrap();
    /// assert_eq!(config.routes.url_for("n"), "https://exec.example/n");
    /// ```
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        let api = ApiConfig::from_lookup(&var)?;
        let set = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let routes = ExecutorRoutes::parse(
            &set("executors").unwrap_or_default(),
            &set("executor_base").unwrap_or_else(|| EXECUTOR_BASE_DEFAULT.to_string()),
        )
        .map_err(ApiError::Config)?;
        let executor_timeout_ms =
            parse_or(&set, "executor_timeout_ms", EXECUTOR_TIMEOUT_MS_DEFAULT)?;
        if !(MIN_EXECUTOR_TIMEOUT_MS..=MAX_LEASE_MS).contains(&executor_timeout_ms) {
            return Err(ApiError::Config(format!(
                "executor_timeout_ms must be {MIN_EXECUTOR_TIMEOUT_MS}..={MAX_LEASE_MS}"
            )));
        }
        Ok(Self {
            api,
            routes,
            executor_timeout_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_route_to_the_bundled_executors() {
        let c = WorkerConfig::from_lookup(|_| None).unwrap();
        assert_eq!(c, WorkerConfig::default());
        assert_eq!(c.routes.url_for("echo"), "/executors/echo");
    }

    #[test]
    fn bad_executor_settings_are_config_errors() {
        let bad_json = WorkerConfig::from_lookup(|k| (k == "executors").then(|| "nope".into()));
        assert_eq!(bad_json.unwrap_err().code(), "invalid_config");
        let bad_timeout =
            WorkerConfig::from_lookup(|k| (k == "executor_timeout_ms").then(|| "5".into()));
        assert_eq!(bad_timeout.unwrap_err().code(), "invalid_config");
    }
}
