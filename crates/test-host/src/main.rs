//! `wq-test-host`: serve a Spin application from its `spin.toml` (tests and
//! benchmarks only). Prints `wq-test-host listening on http://ADDR` once ready.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;

/// Serve a Spin application (manifest v2) with wasmtime.
#[derive(Parser, Debug)]
#[command(name = "wq-test-host", version)]
struct Args {
    /// Path of the application manifest.
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// SQLite file for the key-value store (default: a temporary file).
    #[arg(long, conflicts_with = "kv_redis")]
    kv_sqlite: Option<PathBuf>,
    /// Use Redis at this URL for the key-value store.
    #[arg(long)]
    kv_redis: Option<String>,
    /// File with a millisecond offset added to the components' wall clock.
    #[arg(long)]
    clock_file: Option<PathBuf>,
    /// Application variable `NAME=VALUE` (NAME may carry a SPIN_VARIABLE_ prefix); repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Emulate a platform: spin, fermyon-cloud or akamai-functions.
    #[arg(long, default_value = "spin", value_parser = wq_test_host::platform::Platform::parse)]
    platform: wq_test_host::platform::Platform,
    /// Emulate replication: another host's writes to the shared SQLite
    /// store are seen this many milliseconds late.
    #[arg(long)]
    replication_lag_ms: Option<u64>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut variables = HashMap::new();
    for kv in &args.env {
        let Some((name, value)) = kv.split_once('=') else {
            bail!("--env expects NAME=VALUE, got `{kv}`");
        };
        let name = name.strip_prefix("SPIN_VARIABLE_").unwrap_or(name);
        variables.insert(name.to_lowercase(), value.to_string());
    }
    let config = wq_test_host::HostConfig {
        manifest: args.manifest,
        listen: args.listen,
        kv_sqlite: args.kv_sqlite,
        kv_redis: args.kv_redis,
        clock_file: args.clock_file,
        variables,
        platform: args.platform,
        replication_lag_ms: args.replication_lag_ms,
    };
    let host = wq_test_host::serve(config)
        .await
        .context("starting wq-test-host")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "wq-test-host listening on {}", host.url())?;
        out.flush()?;
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
    }
    host.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await
}
