//! The conformance suite against the KV engine on each store: in memory
//! (with Spin's SQLite and Redis counter encodings) and on SQLite laid out
//! like Spin's default store.

mod conformance;

use conformance::{suite_config, Fixture, SUITE_START_MS};
use spin_work_queue::kv::{CounterEncoding, KeyValue, MemoryKv, SqliteKv};
use spin_work_queue::{KvWorkQueue, ManualClock};
use std::sync::Arc;

struct KvFixture<K> {
    queue: KvWorkQueue<K>,
    clock: ManualClock,
}

impl<K: KeyValue + Send + Sync + 'static> KvFixture<K> {
    fn new(kv: K) -> Self {
        let clock = ManualClock::new(SUITE_START_MS);
        let queue = KvWorkQueue::with_config(kv, suite_config(), Arc::new(clock.clone()))
            .expect("suite config is valid");
        Self { queue, clock }
    }
}

impl<K: KeyValue + Send + Sync + 'static> Fixture for KvFixture<K> {
    type Queue = KvWorkQueue<K>;
    fn queue(&self) -> &Self::Queue {
        &self.queue
    }
    fn advance(&self, ms: u64) {
        self.clock.advance(ms);
    }
}

mod memory {
    use super::*;
    conformance_suite!(KvFixture::new(MemoryKv::new()));
}

mod memory_pipelines {
    use super::*;
    pipeline_suite!(KvFixture::new(MemoryKv::new()));
}

mod memory_decimal_counters {
    use super::*;
    conformance_suite!(KvFixture::new(MemoryKv::with_counters(
        CounterEncoding::Decimal
    )));
}

mod sqlite {
    use super::*;
    conformance_suite!(KvFixture::new(SqliteKv::in_memory().expect("sqlite")));
}

mod sqlite_pipelines {
    use super::*;
    pipeline_suite!(KvFixture::new(SqliteKv::in_memory().expect("sqlite")));
}
