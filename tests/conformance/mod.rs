//! The conformance suite: the queue contract (`docs/semantics.md`) as
//! scenarios, written once against the [`LeasedQueue`] trait and
//! instantiated for every implementation with [`conformance_suite!`].
//!
//! ```ignore
//! mod conformance;
//! use conformance::Fixture;
//!
//! struct MyFixture { /* a queue built with conformance::suite_config()
//!                       on a ManualClock at SUITE_START_MS */ }
//! impl Fixture for MyFixture { /* … */ }
//!
//! conformance_suite!(MyFixture::new());
//! ```
//!
//! Rules the scenarios keep, so that any implementation can run them:
//! only the traits are used; time moves with [`Fixture::advance`], never by
//! sleeping, and `rescue()` is called after moving time before rescues or
//! promotions are expected (at least 1 ms apart); ids, idempotency keys and
//! pipeline ids are unique per test; exact counts of the whole store
//! (`stats`, `pending_count`, `RescueReport`) are asserted only when
//! [`Fixture::exclusive_store`] says no other test shares the store.

#![allow(dead_code)]

pub mod delivery;
pub mod enqueue;
pub mod leases;
pub mod pipelines;
pub mod results;
pub mod retry;
pub mod support;

use spin_work_queue::{LeasedQueue, QueueConfig, RetryPolicy};

/// What an implementation provides to run the suite: a fresh queue built
/// with [`suite_config`] whose clock starts at [`SUITE_START_MS`] and moves
/// only through [`advance`](Fixture::advance).
pub trait Fixture: Send + Sync + 'static {
    /// The implementation under test.
    type Queue: LeasedQueue + 'static;

    /// The queue under test.
    fn queue(&self) -> &Self::Queue;

    /// Move the queue's clock forward.
    fn advance(&self, ms: u64);

    /// True when no other test uses the same store, so store-wide counts
    /// (`stats`, `pending_count`, exact `RescueReport`s) can be asserted.
    /// A fixture sharing one server between tests returns false; the tests
    /// that need exclusive counts then skip (with a printed note) or check
    /// only what concerns their own tasks. Since `advance` then moves time
    /// for every test, such a fixture must run the suite serially
    /// (`--test-threads=1`).
    fn exclusive_store(&self) -> bool {
        true
    }

    /// Why this fixture cannot run the suite here — printed as `SKIPPED`,
    /// and the test ends — or `None` to run it.
    fn skip(&self) -> Option<String> {
        None
    }
}

/// The configuration every fixture builds its queue with: the defaults,
/// but maintenance allowed every millisecond and retries without jitter
/// (`1_000 · 2^attempt` ms, capped at 60 s).
pub fn suite_config() -> QueueConfig {
    QueueConfig {
        maintenance_period_ms: 1,
        retry: RetryPolicy {
            base_ms: 1_000,
            max_ms: 60_000,
            jitter: 0.0,
        },
        ..QueueConfig::default()
    }
}

/// How long after a lease's expiry its holder may still finish the task.
pub fn late_finish_ms() -> u64 {
    suite_config().timing().late_finish_ms
}

/// How long after a lease's expiry the task is rescued.
pub fn rescue_after_ms() -> u64 {
    suite_config().timing().rescue_after_ms
}

/// Where the fixture's `ManualClock` starts.
pub const SUITE_START_MS: u64 = 1_700_000_000_000;

/// Instantiate the whole suite: one `#[tokio::test]` per scenario, each
/// building a fresh fixture by evaluating `$fixture` (inside the async test,
/// so it may `.await`).
#[macro_export]
macro_rules! conformance_suite {
    ($fixture:expr) => {
        $crate::conformance_suite!(@tests $fixture;
            delivery::port_doc_example_flow_completes,
            delivery::tasks_are_delivered_in_fifo_order,
            delivery::retried_and_rescued_tasks_go_to_the_back_of_the_line,
            delivery::dequeue_returns_at_most_max_tasks,
            delivery::dequeue_rejects_invalid_requests,
            delivery::task_metadata_tracks_creation_and_updates,
            enqueue::batch_enqueue_generates_ids_and_reports_duplicates,
            enqueue::port_enqueue_of_a_known_key_is_a_no_op,
            enqueue::invalid_batches_are_rejected_whole,
            enqueue::delayed_tasks_are_not_delivered_before_their_delay,
            enqueue::an_id_equal_to_a_known_key_is_a_duplicate,
            enqueue::inputs_nested_too_deep_are_refused,
            enqueue::a_delay_ending_changes_no_timestamp,
            retry::retries_number_attempts_and_dead_letter_after_max_attempts,
            retry::retries_wait_for_the_backoff,
            retry::non_retryable_failure_dead_letters_immediately,
            retry::dead_letters_are_listed_newest_first,
            retry::redrive_requeues_a_dead_letter_at_the_back_with_attempts_reset,
            retry::redrive_of_a_task_that_is_not_dead_lettered_is_wrong_state,
            retry::expired_lease_on_the_last_attempt_dead_letters_the_task,
            leases::ack_completes_the_task_and_the_result_is_stable,
            leases::repeated_ack_with_the_same_lease_is_idempotent,
            leases::ack_with_a_wrong_lease_is_lease_lost,
            leases::unknown_task_ids_are_not_found,
            leases::stale_worker_ack_is_rejected,
            leases::finishing_shortly_after_expiry_is_accepted,
            leases::finishing_past_the_late_window_is_lease_lost_before_any_rescue,
            leases::heartbeat_extends_the_lease,
            leases::heartbeat_after_lease_expiry_is_rejected,
            leases::ack_batch_reports_each_item,
            leases::a_batch_with_a_stale_then_a_live_ack_of_one_task_completes_it,
            leases::outputs_nested_too_deep_are_refused,
            results::collect_results_lists_completed_tasks_in_completion_order,
            results::stats_count_tasks_by_state,
            results::port_acknowledge_and_fail_work_without_a_lease,
            results::port_acknowledge_is_fenced_by_the_remembered_lease,
        );
    };
    (@tests $fixture:expr; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let fixture = $fixture;
                if let Some(why) = $crate::conformance::Fixture::skip(&fixture) {
                    eprintln!("SKIPPED {}: {why}", stringify!($name));
                    return;
                }
                $crate::conformance::$module::$name(&fixture).await;
            }
        )*
    };
}
