//! The shared wasmtime engine and component compilation with caches.
//!
//! Compiling a component is the bulk of the host's startup time, and tests
//! start many hosts, so compiled components are cached twice:
//! - in memory, per process, keyed by file path, modification time and size
//!   (hosts started in process by [`crate::serve`] reuse them);
//! - on disk, keyed by a hash of the wasm bytes and the engine's settings, in
//!   `$WQ_TEST_HOST_CACHE_DIR` or `<temp dir>/wq-test-host-cache`
//!   (`WQ_TEST_HOST_CACHE_DIR=off` disables it). Files are written atomically;
//!   one that cannot be loaded is simply recompiled.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use wasmtime::component::Component;
use wasmtime::Engine;

use crate::HostError;

/// The process-wide engine.
pub fn engine() -> Result<Engine, HostError> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e.clone());
    }
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).map_err(|e| HostError::Wasm(format!("engine: {e:#}")))?;
    Ok(ENGINE.get_or_init(|| engine).clone())
}

type MemoryKey = (PathBuf, Option<SystemTime>, u64);

fn disk_cache_dir() -> Option<PathBuf> {
    match std::env::var_os("WQ_TEST_HOST_CACHE_DIR") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => Some(std::env::temp_dir().join("wq-test-host-cache")),
    }
}

/// Compiles the component at `path`, using the caches described above.
pub fn compile(engine: &Engine, path: &Path) -> Result<Component, HostError> {
    static MEMORY: OnceLock<Mutex<HashMap<MemoryKey, Component>>> = OnceLock::new();
    let io_err = |e: std::io::Error| HostError::Wasm(format!("{}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(io_err)?;
    let key = (path.to_path_buf(), meta.modified().ok(), meta.len());
    let memory = MEMORY.get_or_init(Default::default);
    if let Some(c) = memory.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(c.clone());
    }
    let bytes = std::fs::read(path).map_err(io_err)?;
    let component = compile_bytes(engine, &bytes, disk_cache_dir().as_deref())
        .map_err(|e| HostError::Wasm(format!("compiling {}: {e:#}", path.display())))?;
    memory
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, component.clone());
    Ok(component)
}

fn compile_bytes(
    engine: &Engine,
    bytes: &[u8],
    cache: Option<&Path>,
) -> wasmtime::Result<Component> {
    let Some(dir) = cache else {
        return Component::new(engine, bytes);
    };
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    let file = dir.join(format!("{:016x}-{}.cwasm", h.finish(), bytes.len()));
    if file.exists() {
        // SAFETY: the file was produced by `Engine::precompile_component` of
        // this program (the name carries a hash of the input and of the
        // engine's settings), and wasmtime checks the engine compatibility
        // header before using it; a file that fails to load is recompiled.
        if let Ok(c) = unsafe { Component::deserialize_file(engine, &file) } {
            return Ok(c);
        }
    }
    let compiled = engine.precompile_component(bytes)?;
    // SAFETY: the bytes were just produced by `precompile_component` of the
    // same engine.
    let component = unsafe { Component::deserialize(engine, &compiled)? };
    if std::fs::create_dir_all(dir).is_ok() {
        let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), h.finish()));
        if std::fs::write(&tmp, &compiled).is_ok() && std::fs::rename(&tmp, &file).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(component)
}
