//! The HTTP trigger: one engine, one pre-instantiated component per manifest component, and
//! a fresh instance per request (as Spin does with WASIp2 components).

use crate::bindings;
use crate::key_value::KeyValueFile;
use crate::manifest::{ComponentDecl, LoadedManifest};
use crate::mysql::MysqlPools;
use crate::observe::Observer;
use crate::outbound::{AllowedHost, OutboundPolicy};
use crate::postgres::PostgresPools;
use crate::routes::{RoutePattern, Router};
use crate::runtime_config::RuntimeConfig;
use crate::sqlite::SqliteDatabase;
use crate::variables::{Resolver, VariableError};
use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::bindings::ProxyPre;
use wasmtime_wasi_http::body::HyperOutgoingBody;
use wasmtime_wasi_http::types::{HostFutureIncomingResponse, OutgoingRequestConfig};
use wasmtime_wasi_http::{HttpResult, WasiHttpCtx, WasiHttpView};

/// Instances that may be alive at once; requests beyond this wait for a free slot.
const MAX_CONCURRENT_INSTANCES: u32 = 256;
/// Per slot, what stays resident between requests (see `engine`): a request of a small
/// component touches about this much.
const KEEP_RESIDENT_MEMORY_BYTES: usize = 2 << 20;
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;
const KEEP_RESIDENT_STACK_BYTES: usize = 64 << 10;
/// Freed slots whose remaining pages are returned to the kernel together.
const DECOMMIT_BATCH: usize = 16;
/// Spin's cap on a component's linear memory.
const MAX_MEMORY_BYTES: usize = 4 << 30;

/// Everything shared by all requests: stores, variables, routes and compiled components.
pub struct App {
    pub sqlite_databases: HashMap<String, Arc<SqliteDatabase>>,
    pub postgres: Arc<PostgresPools>,
    pub mysql: MysqlPools,
    pub key_value_stores: HashMap<String, Arc<KeyValueFile>>,
    pub variables: Resolver,
    pub observer: Arc<Observer>,
    client_tls: crate::tls::ClientTls,
    request_timeout: Option<std::time::Duration>,
    max_instance_memory: usize,
    router: Router,
    components: HashMap<String, Arc<ComponentRuntime>>,
}

/// One manifest component: its capabilities and its pre-instantiated code.
pub struct ComponentRuntime {
    pub id: String,
    pub decl: ComponentDecl,
    pub sqlite_databases: HashSet<String>,
    pub key_value_stores: HashSet<String>,
    pub outbound: OutboundPolicy,
    pre: ProxyPre<InstanceState>,
}

/// The per-request store data.
pub struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    limits: wasmtime::StoreLimits,
    pub table: ResourceTable,
    pub app: Arc<App>,
    pub component: Arc<ComponentRuntime>,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Outbound requests go only to the hosts in the component's `allowed_outbound_hosts`; any
/// other is refused with `HttpRequestDenied`, as Spin refuses it.
impl WasiHttpView for InstanceState {
    fn ctx(&mut self) -> &mut WasiHttpCtx {
        &mut self.http
    }

    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    fn send_request(
        &mut self,
        request: hyper::Request<HyperOutgoingBody>,
        config: OutgoingRequestConfig,
    ) -> HttpResult<HostFutureIncomingResponse> {
        if !self.component.outbound.allows(request.uri()) {
            tracing::warn!(
                "component {:?}: outbound request to {} refused: not in allowed_outbound_hosts",
                self.component.id,
                redact_uri(request.uri())
            );
            return Err(ErrorCode::HttpRequestDenied.into());
        }
        if config.use_tls {
            let host = request.uri().host().unwrap_or_default();
            let tls = self.app.client_tls.config(&self.component.id, host);
            return Ok(crate::tls::send(request, config, tls));
        }
        Ok(wasmtime_wasi_http::types::default_send_request(
            request, config,
        ))
    }
}

/// Scheme, host and port only: query strings may carry signatures.
fn redact_uri(uri: &http::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map(|a| a.as_str()).unwrap_or("")
    )
}

impl bindings::variables::Host for InstanceState {
    async fn get(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<String, bindings::variables::Error>> {
        Ok(self
            .app
            .variables
            .component(&self.component.decl, &name)
            .map_err(|e| match e {
                VariableError::InvalidName(n) => bindings::variables::Error::InvalidName(n),
                VariableError::Undefined(n) => bindings::variables::Error::Undefined(n),
            }))
    }
}

pub struct UpOptions {
    pub manifest: PathBuf,
    pub runtime_config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub variables: BTreeMap<String, String>,
    /// One JSON line per request on stdout.
    pub access_log: bool,
    /// How long one request may run; `None`: as long as it takes.
    pub request_timeout: Option<std::time::Duration>,
    /// The most linear memory one instance may have (`--max-instance-memory`).
    pub max_instance_memory: Option<usize>,
}

/// How often the engine's epoch advances when requests have a timeout: a looping instance is
/// stopped within this much of its deadline.
const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

fn engine(interruptible: bool) -> Result<Engine> {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(MAX_CONCURRENT_INSTANCES)
        .total_core_instances(MAX_CONCURRENT_INSTANCES * 4)
        .total_memories(MAX_CONCURRENT_INSTANCES * 2)
        .total_tables(MAX_CONCURRENT_INSTANCES * 4)
        .max_memory_size(MAX_MEMORY_BYTES)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_core_instances_per_component(64)
        // Every request gets a fresh instance in a recycled slot. Resetting a slot's first
        // pages with memset instead of returning them to the kernel (madvise, then page faults
        // and TLB shootdowns on reuse) is what makes a small request cheap.
        .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY_BYTES)
        .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES)
        .async_stack_keep_resident(KEEP_RESIDENT_STACK_BYTES)
        .decommit_batch_size(DECOMMIT_BATCH)
        // Where the kernel can say which pages an instance touched (Linux 6.7+), only those
        // are reset: memsetting all the resident bytes took a fifth of a small request.
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        // Checks of the epoch cost a little in every loop: only when a timeout asks for them.
        .epoch_interruption(interruptible)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    let engine = Engine::new(&config)?;
    if interruptible {
        let ticking = engine.weak();
        std::thread::spawn(move || {
            while let Some(engine) = ticking.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    }
    Ok(engine)
}

/// Compiles a component, or loads the machine code compiled for these exact bytes and this
/// engine on an earlier start.
fn load_component(engine: &Engine, wasm_path: &Path, cache_dir: &Path) -> Result<Component> {
    let wasm = std::fs::read(wasm_path)
        .with_context(|| format!("cannot read component file {}", wasm_path.display()))?;
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let mut key = blake3::Hasher::new();
    key.update(&wasm);
    key.update(&engine_hash.finish().to_le_bytes());
    key.update(env!("CARGO_PKG_VERSION").as_bytes());
    let cached = cache_dir.join(format!("{}.cwasm", &key.finalize().to_hex()[..32]));
    if cached.exists() {
        // SAFETY: the file was written by `Component::serialize` of this same engine
        // configuration (its name hashes the engine and the source bytes).
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &cached) } {
            return Ok(component);
        }
    }
    let component = Component::new(engine, &wasm)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot compile component {}", wasm_path.display()))?;
    std::fs::create_dir_all(cache_dir)?;
    let tmp = cached.with_extension("tmp");
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, &cached)?;
    Ok(component)
}

impl App {
    pub fn load(options: &UpOptions) -> Result<Arc<Self>> {
        let loaded = LoadedManifest::load(&options.manifest)?;
        let state_dir = options
            .state_dir
            .clone()
            .unwrap_or_else(|| loaded.dir.join(".spin"));
        let runtime_config = RuntimeConfig::load(
            options.runtime_config.as_deref(),
            &state_dir,
            options.variables.clone(),
        )?;
        let variables = Resolver::new(loaded.manifest.variables.clone(), runtime_config.providers);
        variables.check_required()?;

        let sqlite_databases = runtime_config
            .sqlite_databases
            .iter()
            .map(|(label, path)| Ok((label.clone(), SqliteDatabase::open(path)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        let key_value_stores = runtime_config
            .key_value_stores
            .iter()
            .map(|(label, path)| Ok((label.clone(), KeyValueFile::open(path)?)))
            .collect::<Result<HashMap<_, _>>>()?;

        let engine = engine(options.request_timeout.is_some())?;
        let max_instance_memory = options
            .max_instance_memory
            .or(runtime_config.max_instance_memory)
            .unwrap_or(MAX_MEMORY_BYTES);
        let mut linker = Linker::<InstanceState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::add_only_http_to_linker_async(&mut linker)?;
        bindings::LocalHost::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;

        let cache_dir = state_dir.join("compiled");
        let mut components = HashMap::new();
        for (id, decl) in &loaded.manifest.component {
            let where_ = || format!("{}: component.{id}", loaded.path.display());
            for label in &decl.sqlite_databases {
                anyhow::ensure!(
                    sqlite_databases.contains_key(label),
                    "{}.sqlite_databases: no database {label:?} in the runtime config",
                    where_()
                );
            }
            for label in &decl.key_value_stores {
                anyhow::ensure!(
                    key_value_stores.contains_key(label),
                    "{}.key_value_stores: no store {label:?} in the runtime config",
                    where_()
                );
            }
            let mut allowed = Vec::new();
            for entry in &decl.allowed_outbound_hosts {
                let expanded = crate::variables::expand(entry, |name| variables.application(name))
                    .map_err(|e| anyhow::anyhow!("{}.allowed_outbound_hosts: {e}", where_()))?;
                allowed.push(
                    AllowedHost::parse(&expanded)
                        .with_context(|| format!("{}.allowed_outbound_hosts", where_()))?,
                );
            }
            let source = loaded.component_source(id)?;
            let component = load_component(&engine, &source, &cache_dir)
                .with_context(|| format!("{}.source", where_()))?;
            let pre = ProxyPre::new(
                linker
                    .instantiate_pre(&component)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!(
                            "{}: {} imports something this host does not provide",
                            where_(),
                            source.display()
                        )
                    })?,
            )?;
            components.insert(
                id.clone(),
                Arc::new(ComponentRuntime {
                    id: id.clone(),
                    decl: decl.clone(),
                    sqlite_databases: decl.sqlite_databases.iter().cloned().collect(),
                    key_value_stores: decl.key_value_stores.iter().cloned().collect(),
                    outbound: OutboundPolicy::new(allowed),
                    pre,
                }),
            );
        }
        let router = Router::new(
            loaded
                .manifest
                .trigger
                .http
                .iter()
                .map(|t| Ok((RoutePattern::parse(&t.route)?, t.component.clone())))
                .collect::<Result<Vec<_>>>()?,
        )?;
        Ok(Arc::new(Self {
            sqlite_databases,
            postgres: Arc::default(),
            mysql: MysqlPools::default(),
            key_value_stores,
            variables,
            observer: Arc::new(Observer::new(options.access_log)),
            client_tls: runtime_config.client_tls,
            request_timeout: options.request_timeout,
            max_instance_memory,
            router,
            components,
        }))
    }

    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.router.iter()
    }

    pub async fn handle(
        self: Arc<Self>,
        mut req: hyper::Request<Incoming>,
        client: SocketAddr,
        listen: SocketAddr,
    ) -> Result<hyper::Response<HyperOutgoingBody>> {
        let path = req.uri().path().to_string();
        let method = req.method().to_string();
        let Some((pattern, component_id, matched)) = self.router.route(&path) else {
            let trace = self.observer.start(&method, &path, "", "", client);
            return Ok(trace.finish(plain_response(404, "Not Found")));
        };
        let trace = self
            .observer
            .start(&method, &path, pattern.raw(), component_id, client);
        let component = self.components[component_id].clone();
        let full_url = format!(
            "http://{}{}",
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
                .unwrap_or_else(|| listen.to_string()),
            req.uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
        );
        let headers = req.headers_mut();
        let mut set = |name: &str, value: &str| {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                headers.insert(n, v);
            }
        };
        set("spin-full-url", &full_url);
        set("spin-path-info", &matched.path_info);
        set("spin-matched-route", pattern.raw());
        set("spin-raw-component-route", pattern.raw());
        set("spin-component-route", &matched.base_route);
        set("spin-base-path", "/");
        set("spin-client-addr", &client.to_string());
        for (name, value) in &matched.params {
            set(&format!("spin-path-match-{name}"), value);
        }
        // Requests arrive with an absolute-form URI so the guest sees scheme and authority.
        if req.uri().authority().is_none() {
            if let Ok(uri) = full_url.parse() {
                *req.uri_mut() = uri;
            }
        }

        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr();
        for (k, v) in &component.decl.environment {
            wasi.env(k, v);
        }
        let state = InstanceState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(self.max_instance_memory)
                .build(),
            table: ResourceTable::new(),
            app: self.clone(),
            component: component.clone(),
        };
        let mut store = Store::new(component.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        if let Some(timeout) = self.request_timeout {
            // Code that never waits on the host is stopped by the epoch, the rest below.
            store.set_epoch_deadline(timeout.div_duration_f64(EPOCH_TICK).ceil() as u64 + 1);
            store.epoch_deadline_trap();
        }
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = req.map(|body| trace.count_in(body));
        let incoming = store.data_mut().new_incoming_request(Scheme::Http, req)?;
        let outparam = store.data_mut().new_response_outparam(sender)?;
        let pre = component.pre.clone();
        let in_use = self.observer.instance();
        let task = tokio::task::spawn(async move {
            let _in_use = in_use;
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
        });
        let abort = task.abort_handle();
        let answered = async {
            match receiver.await {
                Ok(Ok(response)) => response,
                Ok(Err(code)) => {
                    tracing::error!(
                        "component {component_id:?} answered {path} with error {code:?}"
                    );
                    plain_response(500, "Internal Server Error")
                }
                Err(_) => {
                    match task.await {
                        Ok(Ok(())) => {
                            tracing::error!("component {component_id:?} set no response for {path}")
                        }
                        Ok(Err(e)) => {
                            tracing::error!("component {component_id:?} failed on {path}: {e:?}")
                        }
                        Err(e) => {
                            tracing::error!("component {component_id:?} task failed on {path}: {e}")
                        }
                    }
                    plain_response(500, "Internal Server Error")
                }
            }
        };
        let response = match self.request_timeout {
            None => answered.await,
            Some(timeout) => match tokio::time::timeout(timeout, answered).await {
                Ok(response) => response,
                Err(_) => {
                    abort.abort();
                    tracing::error!(
                        "component {component_id:?} did not answer {path} within the request timeout ({timeout:?}); stopped"
                    );
                    plain_response(500, "Internal Server Error")
                }
            },
        };
        Ok(trace.finish(response))
    }
}

fn plain_response(status: u16, text: &'static str) -> hyper::Response<HyperOutgoingBody> {
    let body = http_body_util::Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never: std::convert::Infallible| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = http::StatusCode::from_u16(status).expect("valid status");
    response
}

/// Accepts connections until `shutdown` completes; each connection and each request runs on
/// its own task, so requests are served concurrently. Then it stops accepting, lets each
/// connection finish the request it is serving (idle keep-alive connections close at once),
/// and returns when all have, or after `drain` with whatever is still running cut off: an
/// upload cut off that way was never committed, so nothing of it is visible.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
    drain: std::time::Duration,
) -> Result<()> {
    let listen = listener.local_addr()?;
    let (stopping, stop_signal) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => break,
        };
        // Finished connections' results are not kept.
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop_signal = stop_signal.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { app.handle(req, client, listen).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = async { let _ = stop_signal.wait_for(|stop| *stop).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                if !e.is_incomplete_message() {
                    tracing::warn!("connection from {client}: {e}");
                }
            }
        });
    }
    // Not ready from now on: a probe sees that before it sees the listener gone.
    app.observer
        .stopping
        .store(true, std::sync::atomic::Ordering::Relaxed);
    drop(listener);
    let in_flight = connections.len();
    tracing::info!("Stopping: no new connections; waiting up to {drain:?} for {in_flight} open");
    let _ = stopping.send(true);
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    match drained {
        Ok(()) => tracing::info!("Stopped: every request finished"),
        Err(_) => tracing::warn!(
            "Stopped: {} connection(s) still busy after {drain:?} were cut off",
            connections.len()
        ),
    }
    Ok(())
}
