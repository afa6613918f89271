//! [`ExecutorRoutes`]: which URL executes which node (`executors` and
//! `executor_base` variables).

use std::collections::BTreeMap;

/// Default of `executor_base`: the example executors of this app, reached
/// as Spin self requests.
pub const EXECUTOR_BASE_DEFAULT: &str = "/executors";
/// Default of `executors`: the bundled executors, reached by Spin's
/// service chaining (in process, and private to the app).
pub const EXECUTORS_DEFAULT: &str =
    r#"{"echo": "http://echo.spin.internal/", "fetch": "http://fetch.spin.internal/"}"#;
/// The key of the fallback entry in `executors`.
pub const FALLBACK_KEY: &str = "*";
/// The placeholder replaced by the (percent-encoded) node name in an
/// `executors` URL.
pub const NODE_NAME_PLACEHOLDER: &str = "{node_name}";

/// Node name → executor URL.
///
/// Resolution: the node's own entry in `executors`, else its `"*"` entry,
/// else `{executor_base}/{node_name}`. `{node_name}` in a URL is replaced
/// by the percent-encoded node name.
///
/// ```
/// use spin_work_queue::worker::ExecutorRoutes;
/// let routes = ExecutorRoutes::parse(
///     r#"{"fetch": "https://exec.example/fetch", "*": "http://self.alt/run/{node_name}"}"#,
///     "/executors",
/// ).unwrap();
/// assert_eq!(routes.url_for("fetch"), "https://exec.example/fetch");
/// assert_eq!(routes.url_for("a b"), "http://self.alt/run/a%20b");
/// let plain = ExecutorRoutes::parse("", "").unwrap();
/// assert_eq!(plain.url_for("echo"), "/executors/echo");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorRoutes {
    by_node: BTreeMap<String, String>,
    base: String,
}

impl Default for ExecutorRoutes {
    /// The bundled executors ([`EXECUTORS_DEFAULT`]), then
    /// [`EXECUTOR_BASE_DEFAULT`].
    fn default() -> Self {
        Self::parse(EXECUTORS_DEFAULT, EXECUTOR_BASE_DEFAULT).expect("the default parses")
    }
}

impl ExecutorRoutes {
    /// Parse the `executors` JSON object (empty = `{}`) and the base URL
    /// (empty = [`EXECUTOR_BASE_DEFAULT`]).
    pub fn parse(executors: &str, base: &str) -> Result<Self, String> {
        let executors = executors.trim();
        let by_node = if executors.is_empty() {
            BTreeMap::new()
        } else {
            serde_json::from_str::<BTreeMap<String, String>>(executors).map_err(|e| {
                format!("executors must be a JSON object of node name to URL strings: {e}")
            })?
        };
        if let Some((node, _)) = by_node.iter().find(|(_, url)| url.trim().is_empty()) {
            return Err(format!("executors: the URL of {node:?} is empty"));
        }
        let base = base.trim().trim_end_matches('/');
        Ok(Self {
            by_node,
            base: if base.is_empty() {
                EXECUTOR_BASE_DEFAULT.to_string()
            } else {
                base.to_string()
            },
        })
    }

    /// Whether `url` is served by this app: a path (a self request), the
    /// host `self.alt`, or a `*.spin.internal` component. Only such URLs
    /// get the app's bearer token.
    ///
    /// ```
    /// use spin_work_queue::worker::ExecutorRoutes;
    /// assert!(ExecutorRoutes::is_in_app("/executors/echo"));
    /// assert!(ExecutorRoutes::is_in_app("http://echo.spin.internal/"));
    /// assert!(ExecutorRoutes::is_in_app("http://self.alt/x"));
    /// assert!(!ExecutorRoutes::is_in_app("https://exec.example/run"));
    /// assert!(!ExecutorRoutes::is_in_app("https://spin.internal.example/"));
    /// ```
    pub fn is_in_app(url: &str) -> bool {
        let Some((_, rest)) = url.split_once("://") else {
            return url.starts_with('/');
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        host == "self.alt" || host.ends_with(".spin.internal")
    }

    /// The URL that executes `node_name`.
    pub fn url_for(&self, node_name: &str) -> String {
        let encoded = crate::encode::percent_encode(node_name);
        match self
            .by_node
            .get(node_name)
            .or_else(|| self.by_node.get(FALLBACK_KEY))
        {
            Some(url) => url.replace(NODE_NAME_PLACEHOLDER, &encoded),
            None => format!("{}/{encoded}", self.base),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_entry_beats_the_fallback_which_beats_the_base() {
        let r = ExecutorRoutes::parse(
            r#"{"a":"https://x/a","*":"https://y/{node_name}/run"}"#,
            "/b/",
        )
        .unwrap();
        assert_eq!(r.url_for("a"), "https://x/a");
        assert_eq!(r.url_for("c/d"), "https://y/c%2Fd/run");
        let r = ExecutorRoutes::parse("{}", "http://self.alt/ex/").unwrap();
        assert_eq!(r.url_for("n"), "http://self.alt/ex/n");
    }

    #[test]
    fn malformed_executors_are_rejected() {
        for bad in ["[1]", "{\"a\":1}", "{", "{\"a\":\" \"}"] {
            assert!(ExecutorRoutes::parse(bad, "").is_err(), "{bad}");
        }
    }
}
