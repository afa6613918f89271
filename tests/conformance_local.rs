//! The conformance suite against [`LocalWorkQueue`].

mod conformance;

use conformance::{suite_config, Fixture, SUITE_START_MS};
use spin_work_queue::{LocalWorkQueue, ManualClock};
use std::sync::Arc;

/// A fresh in-process queue on a manual clock.
struct LocalFixture {
    queue: LocalWorkQueue,
    clock: ManualClock,
}

impl LocalFixture {
    fn new() -> Self {
        let clock = ManualClock::new(SUITE_START_MS);
        let queue = LocalWorkQueue::with_config(suite_config(), Arc::new(clock.clone()))
            .expect("the suite config is valid");
        Self { queue, clock }
    }
}

impl Fixture for LocalFixture {
    type Queue = LocalWorkQueue;

    fn queue(&self) -> &LocalWorkQueue {
        &self.queue
    }

    fn advance(&self, ms: u64) {
        self.clock.advance(ms);
    }
}

conformance_suite!(LocalFixture::new());

mod pipelines {
    use super::*;
    pipeline_suite!(LocalFixture::new());
}
