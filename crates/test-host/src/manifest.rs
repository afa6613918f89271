//! Reading a Spin application manifest (`spin.toml`, manifest version 2).
//!
//! Only the parts the test host needs are read: HTTP triggers, each
//! component's `source`, `key_value_stores`, `allowed_outbound_hosts`,
//! `environment` and `variables`, and the application-level `[variables]`.
//! Every other field (`[component.x.build]`, `description`, `files`, …) is
//! accepted and ignored.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::HostError;

/// A parsed and resolved application: what the host serves.
#[derive(Debug, Clone)]
pub struct AppManifest {
    /// The directory holding the manifest; component sources are relative to it.
    pub base_dir: PathBuf,
    /// Components by name, in manifest order of their names.
    pub components: BTreeMap<String, ComponentManifest>,
    /// HTTP routes in manifest order.
    pub routes: Vec<HttpTrigger>,
}

/// One `[component.<name>]` section with its variables already resolved.
#[derive(Debug, Clone)]
pub struct ComponentManifest {
    /// The component's name (the `<name>` in `[component.<name>]`).
    pub name: String,
    /// Absolute (or manifest-relative resolved) path of the `.wasm` file.
    pub source: PathBuf,
    /// Key-value store labels the component may open.
    pub key_value_stores: Vec<String>,
    /// `allowed_outbound_hosts` entries, with `{{ variable }}` templates resolved.
    pub allowed_outbound_hosts: Vec<String>,
    /// Environment variables given to the component (`environment = { .. }`).
    pub environment: Vec<(String, String)>,
    /// The component's resolved variables, served through `wasi:config/store`.
    pub variables: HashMap<String, String>,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone)]
pub struct HttpTrigger {
    /// The route as written (`/exact`, `/prefix/...`); `None` for a private
    /// route (`route = { private = true }`), reachable only by service chaining.
    pub route: Option<String>,
    /// The component the route invokes.
    pub component: String,
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: Option<toml::Value>,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    component: RawComponentRef,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private {
        #[allow(dead_code)]
        private: bool,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawComponentRef {
    Name(String),
    Inline(#[allow(dead_code)] toml::Table),
}

#[derive(Deserialize, Default)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

/// Reads and resolves a manifest.
///
/// `overrides` maps application variable names (lower case, as in the
/// manifest) to values; they win over `SPIN_VARIABLE_<NAME>` environment
/// variables, which win over `default`s.
pub fn load(path: &Path, overrides: &HashMap<String, String>) -> Result<AppManifest, HostError> {
    let text = std::fs::read_to_string(path).map_err(|e| HostError::Manifest {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    })?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&text, &base_dir, overrides, |name| std::env::var(name).ok()).map_err(|message| {
        HostError::Manifest {
            path: path.to_path_buf(),
            message,
        }
    })
}

/// Parses manifest text; `env` looks up process environment variables.
pub(crate) fn parse(
    text: &str,
    base_dir: &Path,
    overrides: &HashMap<String, String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<AppManifest, String> {
    let raw: RawManifest = toml::from_str(text).map_err(|e| e.to_string())?;
    match raw.spin_manifest_version.as_ref() {
        Some(toml::Value::Integer(2)) => {}
        Some(toml::Value::String(s)) if s == "2" => {}
        other => {
            return Err(format!(
                "unsupported spin_manifest_version {other:?} (only version 2 is supported)"
            ))
        }
    }

    let mut app_vars = HashMap::new();
    for (name, var) in &raw.variables {
        let env_name = format!("SPIN_VARIABLE_{}", name.to_uppercase());
        let value = overrides
            .get(name)
            .cloned()
            .or_else(|| env(&env_name))
            .or_else(|| var.default.clone());
        match value {
            Some(v) => {
                app_vars.insert(name.clone(), v);
            }
            None if var.required => {
                return Err(format!(
                    "required variable `{name}` has no value (set {env_name})"
                ))
            }
            None => {
                return Err(format!(
                    "variable `{name}` needs either `default` or `required = true`"
                ))
            }
        }
    }

    let mut components = BTreeMap::new();
    for (name, c) in raw.component {
        let source = match &c.source {
            toml::Value::String(s) => base_dir.join(s),
            _ => {
                return Err(format!(
                    "component `{name}`: only a local file `source` is supported"
                ))
            }
        };
        let mut variables = HashMap::new();
        for (k, template) in &c.variables {
            let v = resolve_template(template, &app_vars)
                .map_err(|e| format!("component `{name}` variable `{k}`: {e}"))?;
            variables.insert(k.clone(), v);
        }
        let allowed_outbound_hosts = c
            .allowed_outbound_hosts
            .iter()
            .map(|h| resolve_template(h, &app_vars))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("component `{name}` allowed_outbound_hosts: {e}"))?;
        components.insert(
            name.clone(),
            ComponentManifest {
                name,
                source,
                key_value_stores: c.key_value_stores,
                allowed_outbound_hosts,
                environment: c.environment.into_iter().collect(),
                variables,
            },
        );
    }

    let mut routes = Vec::new();
    for t in raw.trigger.http {
        let component = match t.component {
            RawComponentRef::Name(n) => n,
            RawComponentRef::Inline(_) => {
                return Err("inline trigger components are not supported".into())
            }
        };
        if !components.contains_key(&component) {
            return Err(format!("trigger refers to unknown component `{component}`"));
        }
        let route = match t.route {
            RawRoute::Path(p) => Some(p),
            RawRoute::Private { .. } => None,
        };
        routes.push(HttpTrigger { route, component });
    }

    Ok(AppManifest {
        base_dir: base_dir.to_path_buf(),
        components,
        routes,
    })
}

/// Expands `{{ name }}` references to application variables in `template`.
pub(crate) fn resolve_template(
    template: &str,
    vars: &HashMap<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unterminated `{{{{` in {template:?}"))?;
        let name = after[..end].trim();
        let value = vars
            .get(name)
            .ok_or_else(|| format!("unknown application variable `{name}`"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2

[application]
name = "demo"
description = "ignored"

[variables]
api_token = { default = "" }
region = { required = true }
greeting = { default = "hello" }

[[trigger.http]]
route = "/api/..."
component = "queue"

[[trigger.http]]
route = { private = true }
component = "worker"

[component.queue]
source = "target/queue.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["http://self", "http://{{ region }}.example:8080"]
exclude_files = ["**/node_modules"]
[component.queue.variables]
api_token = "{{ api_token }}"
message = "{{greeting}}, {{ region }}!"
[component.queue.build]
command = "cargo build"

[component.worker]
source = "worker.wasm"
"#;

    #[test]
    fn parses_and_resolves() {
        let mut overrides = HashMap::new();
        overrides.insert("api_token".to_string(), "from-override".to_string());
        let env = |name: &str| (name == "SPIN_VARIABLE_REGION").then(|| "eu".to_string());
        let app = parse(MANIFEST, Path::new("/app"), &overrides, env).unwrap();
        let q = &app.components["queue"];
        assert_eq!(q.source, PathBuf::from("/app/target/queue.wasm"));
        assert_eq!(q.variables["api_token"], "from-override");
        assert_eq!(q.variables["message"], "hello, eu!");
        assert_eq!(q.allowed_outbound_hosts[1], "http://eu.example:8080");
        assert_eq!(app.routes.len(), 2);
        assert_eq!(app.routes[0].route.as_deref(), Some("/api/..."));
        assert_eq!(app.routes[1].route, None);
    }

    #[test]
    fn required_variable_missing_is_an_error() {
        let err = parse(MANIFEST, Path::new("/"), &HashMap::new(), |_| None).unwrap_err();
        assert!(err.contains("region"), "{err}");
    }
}
