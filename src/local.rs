//! [`LocalWorkQueue`]: the queue in process memory.

/// An in-process work queue (placeholder, being written).
#[derive(Debug, Default)]
pub struct LocalWorkQueue;

impl LocalWorkQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self
    }
}
