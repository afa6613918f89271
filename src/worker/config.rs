//! [`WorkerConfig`]: the worker component's settings, read from Spin
//! variables through a lookup function.

use super::drain::EXECUTOR_TIMEOUT_MS_DEFAULT;
use super::routes::{ExecutorRoutes, EXECUTORS_DEFAULT, EXECUTOR_BASE_DEFAULT};
use crate::api::ApiConfig;
use crate::config::MAX_LEASE_MS;
use crate::config::{ConfigError, Vars};

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
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(var);
        let api = ApiConfig::from_vars(&vars)?;
        let routes = ExecutorRoutes::parse(
            &vars
                .text("executors")
                .unwrap_or_else(|| EXECUTORS_DEFAULT.to_string()),
            &vars
                .text("executor_base")
                .unwrap_or_else(|| EXECUTOR_BASE_DEFAULT.to_string()),
        )
        .map_err(ConfigError::Rule)?;
        let executor_timeout_ms =
            vars.parse_or("executor_timeout_ms", EXECUTOR_TIMEOUT_MS_DEFAULT)?;
        if !(MIN_EXECUTOR_TIMEOUT_MS..=MAX_LEASE_MS).contains(&executor_timeout_ms) {
            return Err(ConfigError::Rule(format!(
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
        assert_eq!(c.routes.url_for("echo"), "http://echo.spin.internal/");
        assert_eq!(c.routes.url_for("fetch"), "http://fetch.spin.internal/");
        assert_eq!(c.routes.url_for("other"), "/executors/other");
    }

    #[test]
    fn bad_executor_settings_are_config_errors() {
        let bad_json = WorkerConfig::from_lookup(|k| (k == "executors").then(|| "nope".into()));
        assert!(matches!(bad_json, Err(ConfigError::Rule(_))));
        let bad_timeout =
            WorkerConfig::from_lookup(|k| (k == "executor_timeout_ms").then(|| "5".into()));
        assert!(matches!(bad_timeout, Err(ConfigError::Rule(_))));
    }
}
