//! `wq-kv-probe`: a test fixture component for `wq-test-host`.
//!
//! Each endpoint exercises one host capability and reports the outcome in a
//! plain-text body, so the host's tests can assert on it. The operation is
//! chosen by the `spin-path-info` header (the path below the matched route);
//! parameters come from the query string. Values are passed and returned as
//! text; errors are answered with status 500 and the error's debug form.
//!
//! | path info | query / body | response |
//! | --- | --- | --- |
//! | `/whoami` (also empty, or any path ending in `/whoami`) | | `component=<name> path_info=<..> matched=<..> component_route=<..>` |
//! | `/kv/get` | `store`, `key` | the value, or 404 |
//! | `/kv/get-hex` | `store`, `key` | the value in hex, or 404 |
//! | `/kv/set` | `store`, `key`; body = value | `ok` |
//! | `/kv/delete` | `store`, `key` | `ok` |
//! | `/kv/exists` | `store`, `key` | `true` / `false` |
//! | `/kv/incr` | `store`, `key`, `delta` | the new value |
//! | `/kv/get-many` | `store`, `keys` (comma separated) | `key=value` lines |
//! | `/kv/set-many` | `store`; body = `key=value` lines | `ok` |
//! | `/kv/delete-many` | `store`, `keys` | `ok` |
//! | `/kv/list` | `store` | sorted key lines |
//! | `/kv/cas` | `store`, `key`, `value`, `read` (`1` = call `current` first) | `swapped` or `cas-failed current=<..>` |
//! | `/config` | `key` | the value, or 404 |
//! | `/config-all` | | `key=value` lines |
//! | `/clock` | | wall-clock milliseconds since the epoch |
//! | `/outbound` | `url`, `method` (`GET` default) ; body forwarded | `status=<n>\n<body>`, or 502 with the error |
//! | `/echo` | | `method=<..> path_info=<..> body=<..>` |
//!
//! The crate is empty on other targets than wasm32 so that workspace-wide
//! native builds (`cargo test --workspace`) can link it.

#![cfg(target_arch = "wasm32")]

use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;

wit_bindgen::generate!({
    path: "../../wit",
    world: "spin-work-queue:app/storage",
    generate_all,
});

use wasi::config::store as config;
use wasi::keyvalue::{atomics, batch, store};

fn query(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.query().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn text(status: u16, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body.into())
        .build()
}

fn err(e: impl std::fmt::Debug) -> Response {
    text(500, format!("error: {e:?}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn open(q: &[(String, String)]) -> Result<store::Bucket, Response> {
    store::open(param(q, "store").unwrap_or("default")).map_err(err)
}

#[http_component]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let path_info = req
        .header("spin-path-info")
        .and_then(|h| h.as_str())
        .unwrap_or("")
        .to_string();
    let q = query(&req);
    Ok(match route(&path_info, &q, &req).await {
        Ok(r) | Err(r) => r,
    })
}

async fn route(
    path_info: &str,
    q: &[(String, String)],
    req: &Request,
) -> Result<Response, Response> {
    let key = param(q, "key").unwrap_or("").to_string();
    let keys = || -> Vec<String> {
        param(q, "keys")
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    Ok(match path_info {
        p if p.is_empty() || p == "/" || p.ends_with("/whoami") => {
            let h = |n: &str| {
                req.header(n)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let name = config::get("component_name")
                .ok()
                .flatten()
                .unwrap_or_default();
            text(
                200,
                format!(
                    "component={name} path_info={} matched={} component_route={}",
                    h("spin-path-info"),
                    h("spin-matched-route"),
                    h("spin-component-route")
                ),
            )
        }
        "/kv/get" | "/kv/get-hex" => match open(q)?.get(&key).map_err(err)? {
            Some(v) if path_info == "/kv/get-hex" => text(200, hex(&v)),
            Some(v) => text(200, String::from_utf8_lossy(&v).into_owned()),
            None => text(404, "missing"),
        },
        "/kv/set" => {
            open(q)?.set(&key, req.body()).map_err(err)?;
            text(200, "ok")
        }
        "/kv/delete" => {
            open(q)?.delete(&key).map_err(err)?;
            text(200, "ok")
        }
        "/kv/exists" => text(200, open(q)?.exists(&key).map_err(err)?.to_string()),
        "/kv/incr" => {
            let delta = param(q, "delta").and_then(|d| d.parse().ok()).unwrap_or(1);
            let v = atomics::increment(&open(q)?, &key, delta).map_err(err)?;
            text(200, v.to_string())
        }
        "/kv/get-many" => {
            let got = batch::get_many(&open(q)?, &keys()).map_err(err)?;
            let lines: Vec<String> = got
                .into_iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={}", String::from_utf8_lossy(&v)),
                    None => format!("{k}=<none>"),
                })
                .collect();
            text(200, lines.join("\n"))
        }
        "/kv/set-many" => {
            let body = String::from_utf8_lossy(req.body()).into_owned();
            let pairs: Vec<(String, Vec<u8>)> = body
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect();
            batch::set_many(&open(q)?, &pairs).map_err(err)?;
            text(200, "ok")
        }
        "/kv/delete-many" => {
            batch::delete_many(&open(q)?, &keys()).map_err(err)?;
            text(200, "ok")
        }
        "/kv/list" => {
            let mut listed = open(q)?.list_keys(None).map_err(err)?.keys;
            listed.sort();
            text(200, listed.join("\n"))
        }
        "/kv/cas" => {
            let bucket = open(q)?;
            let cas = atomics::Cas::new(&bucket, &key).map_err(err)?;
            if param(q, "read") == Some("1") {
                cas.current().map_err(err)?;
            }
            let value = param(q, "value").unwrap_or("").as_bytes().to_vec();
            match atomics::swap(cas, &value) {
                Ok(()) => text(200, "swapped"),
                Err(atomics::CasError::CasFailed(fresh)) => {
                    let cur = fresh.current().map_err(err)?;
                    let cur = cur.map(|v| String::from_utf8_lossy(&v).into_owned());
                    text(
                        200,
                        format!(
                            "cas-failed current={}",
                            cur.unwrap_or_else(|| "<none>".into())
                        ),
                    )
                }
                Err(e) => err(e),
            }
        }
        "/config" => match config::get(&key).map_err(err)? {
            Some(v) => text(200, v),
            None => text(404, "missing"),
        },
        "/config-all" => {
            let all = config::get_all().map_err(err)?;
            let lines: Vec<String> = all.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            text(200, lines.join("\n"))
        }
        "/clock" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            text(200, now.to_string())
        }
        "/outbound" => {
            let url = param(q, "url").unwrap_or("").to_string();
            let method = match param(q, "method").unwrap_or("GET") {
                "POST" => Method::Post,
                _ => Method::Get,
            };
            let out = Request::builder()
                .method(method)
                .uri(url)
                .body(req.body().to_vec())
                .build();
            match spin_sdk::http::send::<_, Response>(out).await {
                Ok(resp) => text(
                    200,
                    format!(
                        "status={}\n{}",
                        resp.status(),
                        String::from_utf8_lossy(resp.body())
                    ),
                ),
                Err(e) => text(502, format!("send error: {e:?}")),
            }
        }
        "/echo" => text(
            200,
            format!(
                "method={:?} path_info={path_info} body={}",
                req.method(),
                String::from_utf8_lossy(req.body())
            ),
        ),
        _ => text(404, format!("probe: unknown path info `{path_info}`")),
    })
}
