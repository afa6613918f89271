//! Platform profiles: what a hosted Spin platform offers and enforces, as
//! its documentation states (2025–2026), so that the app can be tried here
//! as it would run there.
//!
//! | | `spin` | `fermyon-cloud` | `akamai-functions` |
//! | --- | --- | --- | --- |
//! | `wasi:keyvalue` linked | `store`, `atomics`, `batch` | `store` | `store`, `batch` |
//! | keys in the store | no cap | 1,024 | no cap |
//! | key / value size | — | 255 B / 1 MiB | 8 KiB / 1 MiB |
//! | handler time | — | 30 s | 30 s |
//! | outbound requests | — | 500 per hour | counted |
//! | service chaining | yes | no | yes |
//! | key writes | — | — | 50 per second (later ones wait) |
//!
//! With `--replication-lag-ms`, two hosts sharing one SQLite file see each
//! other's writes that late ([`crate::replica`]).
//!
//! A component that imports more than its platform links fails to
//! instantiate, as there. Every outbound request is counted
//! ([`crate::RunningHost::outbound_requests`]).

use std::time::Duration;

/// The platform a host emulates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Platform {
    /// `spin up`: everything Spin offers, no limits.
    #[default]
    Spin,
    /// Fermyon Cloud.
    FermyonCloud,
    /// Akamai Functions.
    AkamaiFunctions,
}

/// What a platform offers and enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `wasi:keyvalue/atomics` is linked.
    pub atomics: bool,
    /// `wasi:keyvalue/batch` is linked.
    pub batch: bool,
    /// Most keys in a store.
    pub max_keys: Option<usize>,
    /// Longest key, in bytes.
    pub max_key_bytes: Option<usize>,
    /// Largest value, in bytes.
    pub max_value_bytes: Option<usize>,
    /// Longest a handler may run (its response and what it does after).
    pub handler: Option<Duration>,
    /// Most outbound requests per hour.
    pub outbound_per_hour: Option<u64>,
    /// `http://<component>.spin.internal` is served.
    pub service_chaining: bool,
    /// Most key writes per second (writes past it wait).
    pub writes_per_s: Option<u32>,
}

impl Platform {
    /// Parse `spin`, `fermyon-cloud` or `akamai-functions`.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "spin" => Ok(Self::Spin),
            "fermyon-cloud" => Ok(Self::FermyonCloud),
            "akamai-functions" => Ok(Self::AkamaiFunctions),
            other => Err(format!(
                "unknown platform {other:?} (spin, fermyon-cloud, akamai-functions)"
            )),
        }
    }

    /// Its limits.
    pub fn limits(self) -> Limits {
        const MIB: usize = 1024 * 1024;
        match self {
            Self::Spin => Limits {
                atomics: true,
                batch: true,
                max_keys: None,
                max_key_bytes: None,
                max_value_bytes: None,
                handler: None,
                outbound_per_hour: None,
                service_chaining: true,
                writes_per_s: None,
            },
            Self::FermyonCloud => Limits {
                atomics: false,
                batch: false,
                max_keys: Some(1_024),
                max_key_bytes: Some(255),
                max_value_bytes: Some(MIB),
                handler: Some(Duration::from_secs(30)),
                outbound_per_hour: Some(500),
                service_chaining: false,
                writes_per_s: None,
            },
            Self::AkamaiFunctions => Limits {
                atomics: false,
                batch: true,
                max_keys: None,
                max_key_bytes: Some(8 * 1024),
                max_value_bytes: Some(MIB),
                handler: Some(Duration::from_secs(30)),
                outbound_per_hour: None,
                service_chaining: true,
                writes_per_s: Some(50),
            },
        }
    }
}
