//! The application: compiled components, the router, and request dispatch
//! (from the HTTP listener and from components' self requests).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http_body_util::BodyExt;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{
    Error as HttpError, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpView,
};

use crate::clock::{ClockFile, OffsetWallClock};
use crate::compile::{compile, engine};
use crate::manifest::AppManifest;
use crate::outbound::{full_body, AllowedHosts, OutboundHooks};
use crate::platform::Limits;
use crate::router::{RouteMatch, Router};
use crate::storage::{KvBackend, Storage, StorageCtx};
use crate::HostError;
use std::sync::atomic::{AtomicU64, Ordering};

/// Everything one component instance (one request) owns.
pub struct RequestState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    storage: StorageCtx,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// A component ready to be instantiated.
struct LoadedComponent {
    name: String,
    pre: ProxyPre<RequestState>,
    environment: Vec<(String, String)>,
    kv_labels: Arc<Vec<String>>,
    config: Arc<HashMap<String, String>>,
    allowed_hosts: AllowedHosts,
}

/// A served application.
pub struct App {
    engine: Engine,
    components: Vec<LoadedComponent>,
    by_name: HashMap<String, usize>,
    router: Router,
    kv: Arc<KvBackend>,
    clock: Option<Arc<ClockFile>>,
    local_addr: SocketAddr,
    limits: Arc<Limits>,
    emulation: Arc<crate::storage::Emulation>,
    outbound: AtomicU64,
}

impl App {
    /// Compiles and pre-instantiates every component of `manifest`.
    pub fn new(
        manifest: &AppManifest,
        kv: Arc<KvBackend>,
        clock: Option<Arc<ClockFile>>,
        local_addr: SocketAddr,
        limits: Limits,
        emulation: crate::storage::Emulation,
    ) -> Result<Self, HostError> {
        let engine = engine()?;
        let mut linker: Linker<RequestState> = Linker::new(&engine);
        let wasm_err = |e: wasmtime::Error| HostError::Wasm(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(wasm_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(wasm_err)?;
        fn storage(s: &mut RequestState) -> &mut StorageCtx {
            &mut s.storage
        }
        if limits.atomics && limits.batch {
            Storage::add_to_linker::<_, HasSelf<StorageCtx>>(&mut linker, storage)
                .map_err(wasm_err)?;
        } else {
            // Only what the platform offers: a component importing more
            // fails to instantiate, as there.
            use crate::storage::{atomics, batch, config, store};
            store::add_to_linker::<_, HasSelf<StorageCtx>>(&mut linker, storage)
                .map_err(wasm_err)?;
            config::add_to_linker::<_, HasSelf<StorageCtx>>(&mut linker, storage)
                .map_err(wasm_err)?;
            if limits.batch {
                batch::add_to_linker::<_, HasSelf<StorageCtx>>(&mut linker, storage)
                    .map_err(wasm_err)?;
            }
            if limits.atomics {
                atomics::add_to_linker::<_, HasSelf<StorageCtx>>(&mut linker, storage)
                    .map_err(wasm_err)?;
            }
        }
        let spin = limits.atomics;

        let mut components = Vec::new();
        let mut by_name = HashMap::new();
        for (name, c) in &manifest.components {
            let component = compile(&engine, &c.source)?;
            let instance_pre = match linker.instantiate_pre(&component) {
                Ok(pre) => pre,
                Err(first) if !spin => {
                    return Err(HostError::Wasm(format!(
                        "component `{name}` imports what the platform does not offer: {first:#}"
                    )))
                }
                Err(first) => {
                    // Imports this host does not provide (e.g. Spin-specific
                    // interfaces) trap when called instead of failing here.
                    let mut lenient = linker.clone();
                    lenient
                        .define_unknown_imports_as_traps(&component)
                        .and_then(|()| lenient.instantiate_pre(&component))
                        .map_err(|_| HostError::Wasm(format!("component `{name}`: {first:#}")))?
                }
            };
            let pre = ProxyPre::new(instance_pre).map_err(|e| {
                HostError::Wasm(format!(
                    "component `{name}` is not a wasi:http handler: {e:#}"
                ))
            })?;
            let allowed_hosts = AllowedHosts::parse(&c.allowed_outbound_hosts).map_err(|m| {
                HostError::Manifest {
                    path: manifest.base_dir.join("spin.toml"),
                    message: format!("component `{name}` allowed_outbound_hosts: {m}"),
                }
            })?;
            by_name.insert(name.clone(), components.len());
            components.push(LoadedComponent {
                name: name.clone(),
                pre,
                environment: c.environment.clone(),
                kv_labels: Arc::new(c.key_value_stores.clone()),
                config: Arc::new(c.variables.clone()),
                allowed_hosts,
            });
        }
        let router = Router::new(manifest.routes.iter().filter_map(|r| {
            r.route
                .as_deref()
                .map(|route| (route, by_name[&r.component]))
        }));
        Ok(App {
            engine,
            components,
            by_name,
            router,
            kv,
            clock,
            local_addr,
            limits: Arc::new(limits),
            emulation: Arc::new(emulation),
            outbound: AtomicU64::new(0),
        })
    }

    /// The platform's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Count one outbound request; `false` when the platform's budget for
    /// the hour is spent (the request is then refused).
    pub fn count_outbound(&self) -> bool {
        let n = self.outbound.fetch_add(1, Ordering::SeqCst) + 1;
        match self.limits.outbound_per_hour {
            Some(budget) if n > budget => {
                eprintln!("wq-test-host: outbound request {n} refused: {budget} per hour");
                false
            }
            _ => true,
        }
    }

    /// Outbound requests the components sent so far.
    pub fn outbound_requests(&self) -> u64 {
        self.outbound.load(Ordering::SeqCst)
    }

    /// The allowed outbound hosts of component number `component`.
    pub fn allowed_hosts(&self, component: usize) -> &AllowedHosts {
        &self.components[component].allowed_hosts
    }

    /// Serves a request that arrived on the listener.
    pub async fn handle_external(
        self: &Arc<Self>,
        req: http::Request<hyper::body::Incoming>,
        client: SocketAddr,
    ) -> http::Response<WasiBody> {
        let req = req.map(|b| b.map_err(HttpError::from).boxed_unsync());
        match self.router.route(req.uri().path()) {
            Some(m) => self.invoke_or_500(m, req, client).await,
            None => text_response(404, "Not Found"),
        }
    }

    /// A self request from a component: routed through this host.
    pub async fn dispatch_self(
        self: &Arc<Self>,
        req: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        match self.router.route(req.uri().path()) {
            Some(m) => Ok(self.invoke_or_500(m, req, self.loopback_client()).await),
            None => Ok(text_response(404, "Not Found")),
        }
    }

    /// Service chaining: `http://<name>.spin.internal/...`.
    pub async fn dispatch_component(
        self: &Arc<Self>,
        name: &str,
        req: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let idx = *self
            .by_name
            .get(name)
            .ok_or(HttpError::DestinationNotFound)?;
        let m = self.router.route_for_component(idx, req.uri().path());
        Ok(self.invoke_or_500(m, req, self.loopback_client()).await)
    }

    fn loopback_client(&self) -> SocketAddr {
        SocketAddr::new(self.local_addr.ip(), 0)
    }

    async fn invoke_or_500(
        self: &Arc<Self>,
        m: RouteMatch,
        req: http::Request<WasiBody>,
        client: SocketAddr,
    ) -> http::Response<WasiBody> {
        let name = self.components[m.component].name.clone();
        match Box::pin(self.invoke(m, req, client)).await {
            Ok(resp) => resp,
            Err(e) => {
                eprintln!("wq-test-host: component `{name}` failed: {e}");
                text_response(500, "Internal Server Error")
            }
        }
    }

    /// Runs one request through a fresh instance of the routed component.
    async fn invoke(
        self: &Arc<Self>,
        m: RouteMatch,
        mut req: http::Request<WasiBody>,
        client: SocketAddr,
    ) -> Result<http::Response<WasiBody>, String> {
        let comp = &self.components[m.component];
        self.set_spin_headers(&m, &mut req, client);

        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(std::io::stderr())
            .stderr(std::io::stderr())
            .envs(&comp.environment)
            .wall_clock(OffsetWallClock::new(self.clock.clone()));
        let state = RequestState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks::new(self.clone(), m.component),
            storage: StorageCtx::new(
                self.kv.clone(),
                comp.kv_labels.clone(),
                comp.config.clone(),
                self.limits.clone(),
                self.emulation.clone(),
            ),
        };
        let mut store = Store::new(&self.engine, state);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .map_err(|e| format!("{e:#}"))?;
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam(tx)
            .map_err(|e| format!("{e:#}"))?;
        let pre = comp.pre.clone();
        let name = comp.name.clone();
        let handler = self.limits.handler;
        let task = tokio::spawn(async move {
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
            };
            match handler {
                None => run.await,
                // The platform ends the handler, answered or not.
                Some(limit) => tokio::time::timeout(limit, run)
                    .await
                    .unwrap_or_else(|_| Err(wasmtime::format_err!("handler ran past {limit:?}"))),
            }
        });
        match rx.await {
            Ok(Ok(resp)) => {
                // The guest may keep running (streaming the body); report a
                // later trap without blocking the response.
                tokio::spawn(async move {
                    if let Ok(Err(e)) = task.await {
                        eprintln!(
                            "wq-test-host: component `{name}` trapped after responding: {e:#}"
                        );
                    }
                });
                Ok(resp)
            }
            Ok(Err(code)) => Err(format!("component returned error code {code:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => Err("guest never set a response".into()),
                Ok(Err(e)) => Err(format!("{e:?}")),
                Err(e) => Err(format!("request task failed: {e}")),
            },
        }
    }

    fn set_spin_headers(
        &self,
        m: &RouteMatch,
        req: &mut http::Request<WasiBody>,
        client: SocketAddr,
    ) {
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        let authority = self.local_addr.to_string();
        let full_url = format!("http://{authority}{path_and_query}");
        if let Ok(uri) = full_url.parse() {
            *req.uri_mut() = uri;
        }
        let headers = req.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&authority) {
            headers.insert(http::header::HOST, v);
        }
        let pairs = [
            ("spin-full-url", full_url.as_str()),
            ("spin-path-info", m.path_info.as_str()),
            ("spin-matched-route", m.raw_route.as_str()),
            ("spin-component-route", m.component_route.as_str()),
            ("spin-raw-component-route", m.raw_route.as_str()),
            ("spin-base-path", "/"),
        ];
        for (k, v) in pairs {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.insert(HeaderName::from_static(k), v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&client.to_string()) {
            headers.insert(HeaderName::from_static("spin-client-addr"), v);
        }
    }
}

/// A plain-text response.
pub(crate) fn text_response(status: u16, text: &'static str) -> http::Response<WasiBody> {
    let mut resp = http::Response::new(full_body(Bytes::from_static(text.as_bytes())));
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    resp
}
