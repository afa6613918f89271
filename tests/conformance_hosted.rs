//! The conformance suite against the store-only engine (`HostedWorkQueue`)
//! on memory and on SQLite, uncapped and capped at Fermyon Cloud's 1,024
//! keys.
//!
//! The suite runs one request at a time, so a claim's settle wait is zero
//! here (`with_settle_ms(0)`): scenarios move time only through `advance`,
//! as the suite requires. The waits are exercised for real by the
//! simulator (`tests/simulation.rs`, `hosted_*`), where they matter.

mod conformance;

use conformance::{suite_config, Fixture, SUITE_START_MS};
use spin_work_queue::kv::{MemoryKv, SqliteKv, StoreKv};
use spin_work_queue::{HostedConfig, HostedWorkQueue, ManualClock};
use std::sync::Arc;

struct HostedFixture<S> {
    queue: HostedWorkQueue<S>,
    clock: ManualClock,
}

impl<S: StoreKv + Send + Sync + 'static> HostedFixture<S> {
    fn new(kv: S, max_keys: Option<u64>) -> Self {
        let clock = ManualClock::new(SUITE_START_MS);
        let config = HostedConfig {
            queue: suite_config(),
            max_keys,
            replication_lag_ms: 0,
        };
        let queue = HostedWorkQueue::with_config(kv, config, Arc::new(clock.clone()))
            .expect("suite config is valid")
            .with_settle_ms(0);
        Self { queue, clock }
    }
}

impl<S: StoreKv + Send + Sync + 'static> Fixture for HostedFixture<S> {
    type Queue = HostedWorkQueue<S>;
    fn queue(&self) -> &Self::Queue {
        &self.queue
    }
    fn advance(&self, ms: u64) {
        self.clock.advance(ms);
    }
}

mod memory {
    use super::*;
    conformance_suite!(HostedFixture::new(MemoryKv::new(), None));
}

mod memory_capped {
    use super::*;
    conformance_suite!(HostedFixture::new(MemoryKv::new(), Some(1_024)));
}

mod sqlite {
    use super::*;
    conformance_suite!(HostedFixture::new(
        SqliteKv::in_memory().expect("sqlite"),
        None
    ));
}
