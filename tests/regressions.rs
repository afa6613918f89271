//! One test per defect found in the engine's protocol, each placing the
//! interleaving that exposed it exactly: several hosts (queue handles with
//! their own clocks) on one store, a hook running one host's request in
//! the middle of another's (`support::hook`).

mod support;

use serde_json::json;
use spin_work_queue::kv::{KeyValue, MemoryKv};
use spin_work_queue::*;
use std::sync::{Arc, Mutex};
use support::hook::{failing, when, HookKv};
use support::{block_on, config, START_MS};

type Store = Arc<MemoryKv>;
type Queue = KvWorkQueue<Arc<HookKv<Store>>>;

/// One host: a queue handle on the shared store, its hook, its clock.
struct Host {
    q: Arc<Queue>,
    kv: Arc<HookKv<Store>>,
}

/// A clock `skew` ms ahead of (or behind) the shared one.
struct Skewed(ManualClock, i64);

impl Clock for Skewed {
    fn now_ms(&self) -> u64 {
        self.0.now_ms().saturating_add_signed(self.1)
    }
}

fn host_with(store: &Store, clock: &ManualClock, skew: i64, config: QueueConfig) -> Host {
    let kv = Arc::new(HookKv::new(store.clone()));
    let q = KvWorkQueue::with_config(kv.clone(), config, Arc::new(Skewed(clock.clone(), skew)))
        .expect("valid config");
    Host { q: Arc::new(q), kv }
}

fn host(store: &Store, clock: &ManualClock) -> Host {
    host_with(store, clock, 0, config())
}

fn world() -> (Store, ManualClock) {
    (Arc::new(MemoryKv::new()), ManualClock::new(START_MS))
}

fn timing() -> config::Timing {
    config().timing()
}

fn task(id: &str) -> NewTask {
    NewTask {
        id: Some(id.into()),
        ..NewTask::new("reg", format!("n-{id}"), json!({ "id": id }))
    }
}

fn take(h: &Host, lease_ms: u64) -> LeasedTask {
    let req = DequeueRequest {
        lease_ms: Some(lease_ms),
        ..DequeueRequest::new("w", 1)
    };
    block_on(h.q.dequeue(&req)).unwrap().remove(0)
}

fn status(h: &Host, id: &str) -> TaskStatus {
    block_on(h.q.status(id)).unwrap().unwrap()
}

/// A heartbeat that read the record just before its lease ran out and
/// writes after a rescue used to write the old record back: the task was
/// `InProgress` under a dead lease, and the new lease was revoked. Now the
/// check is made at the write, and heartbeats never touch the record.
#[test]
fn a_heartbeat_that_read_before_a_rescue_revokes_nothing() {
    let (store, clock) = world();
    let (a, b) = (host(&store, &clock), host(&store, &clock));
    block_on(a.q.enqueue_batch(vec![task("t")])).unwrap();
    let first = take(&a, 1_000);
    let second = Arc::new(Mutex::new(None));
    let (c, bq, got) = (clock.clone(), b.q.clone(), second.clone());
    a.kv.arm(when("get_many", "wq/t/t", false), move || {
        c.advance(1_000 + timing().rescue_after_ms);
        assert_eq!(block_on(bq.rescue()).unwrap().rescued, 1);
        let req = DequeueRequest::new("w2", 1);
        *got.lock().unwrap() = block_on(bq.dequeue(&req)).unwrap().pop();
    });
    let beat = block_on(a.q.heartbeat("t", &first.lease.id, None));
    assert!(
        matches!(beat, Err(QueueError::LeaseLost { .. })),
        "{beat:?}"
    );
    let second = second.lock().unwrap().take().expect("redelivered");
    assert_eq!(second.task.attempt, 1);
    assert_eq!(
        status(&b, "t"),
        TaskStatus::InProgress {
            worker_id: "w2".into()
        }
    );
    let done = block_on(b.q.ack("t", &second.lease.id, json!("second"))).unwrap();
    assert_eq!(
        done,
        TaskStatus::Completed {
            output: json!("second")
        }
    );
}

/// A heartbeat landing after its own delivery's ack cannot undo the
/// completion (it writes the heartbeat key, never the record).
#[test]
fn a_heartbeat_racing_its_own_ack_leaves_the_task_completed() {
    let (store, clock) = world();
    let (a, b) = (host(&store, &clock), host(&store, &clock));
    block_on(a.q.enqueue_batch(vec![task("t")])).unwrap();
    let l = take(&a, 10_000);
    let (bq, lease) = (b.q.clone(), l.lease.id.clone());
    a.kv.arm(when("set_many", "wq/h/t", true), move || {
        block_on(bq.ack("t", &lease, json!("done"))).unwrap();
    });
    block_on(a.q.heartbeat("t", &l.lease.id, None)).unwrap();
    assert_eq!(
        status(&a, "t"),
        TaskStatus::Completed {
            output: json!("done")
        }
    );
    clock.advance(60_000);
    block_on(a.q.rescue()).unwrap();
    assert_eq!(
        status(&a, "t"),
        TaskStatus::Completed {
            output: json!("done")
        }
    );
}

/// Two maintenance runs used to overlap at a time-slot boundary and
/// re-queue the same task twice. Now a run that outlives its deadline
/// writes nothing, and another host takes over only after it.
#[test]
fn a_maintenance_run_that_outlived_its_deadline_writes_nothing() {
    let (store, clock) = world();
    let (a, b, w) = (
        host(&store, &clock),
        host(&store, &clock),
        host(&store, &clock),
    );
    block_on(w.q.enqueue_batch(vec![task("t")])).unwrap();
    take(&w, 1_000);
    clock.advance(1_000 + timing().rescue_after_ms);
    let (c, bq) = (clock.clone(), b.q.clone());
    let taken_over = Arc::new(Mutex::new(None));
    let report = taken_over.clone();
    // A stalls in the middle of its run (after reading its garbage list).
    a.kv.arm(when("get_many", "wq/m/garbage", false), move || {
        c.advance(timing().deadline_ms);
        // A's lock is held: B notes it, then takes over once A is surely done.
        assert_eq!(block_on(bq.rescue()).unwrap(), RescueReport::default());
        c.advance(timing().takeover_after_ms);
        *report.lock().unwrap() = Some(block_on(bq.rescue()).unwrap());
    });
    let late = block_on(a.q.rescue());
    assert!(matches!(late, Err(QueueError::TooSlow(_))), "{late:?}");
    assert_eq!(taken_over.lock().unwrap().unwrap().rescued, 1);
    let req = DequeueRequest::new("w", 10);
    let got = block_on(w.q.dequeue(&req)).unwrap();
    assert_eq!(got.len(), 1, "the task is in the ring once");
    assert!(block_on(w.q.dequeue(&req)).unwrap().is_empty());
}

/// A host whose clock runs ahead by the whole skew bound rescues no lease
/// its holder may still finish.
#[test]
fn a_host_ahead_by_the_skew_bound_rescues_no_live_lease() {
    let (store, clock) = world();
    let t = timing();
    let holder = host(&store, &clock);
    let ahead = host_with(&store, &clock, t.clock_skew_ms as i64, config());
    block_on(holder.q.enqueue_batch(vec![task("t")])).unwrap();
    let l = take(&holder, 10_000);
    // The last moment the holder may still finish, on its own clock.
    clock.advance(10_000 + t.late_finish_ms - 1);
    assert_eq!(block_on(ahead.q.rescue()).unwrap().rescued, 0);
    let done = block_on(holder.q.ack("t", &l.lease.id, json!(1))).unwrap();
    assert_eq!(done, TaskStatus::Completed { output: json!(1) });
}

/// One enqueue that died between its reservation and its write used to
/// block every dequeue behind the hole for up to two grace periods. Now a
/// dequeue takes the slots after it at once.
#[test]
fn a_dead_enqueue_does_not_hold_up_the_tasks_behind_it() {
    let (store, clock) = world();
    let (a, b) = (host(&store, &clock), host(&store, &clock));
    a.kv.arm(failing("set_many", "wq/q/"), || {});
    assert!(block_on(a.q.enqueue_batch(vec![task("lost")])).is_err());
    block_on(b.q.enqueue_batch(vec![task("next")])).unwrap();
    let got = block_on(b.q.dequeue(&DequeueRequest::new("w", 5))).unwrap();
    let ids: Vec<_> = got.iter().map(|l| l.task.id.as_str()).collect();
    assert_eq!(ids, ["next"], "delivered at once, with no time passing");
    assert_eq!(block_on(b.q.stats()).unwrap().pending, 0);
}

/// An ack whose writes would land after its deadline used to be redone,
/// and its redo never happened; now it writes nothing, says so, and the
/// task is rescued like any expired lease.
#[test]
fn an_ack_too_slow_to_write_is_refused_and_the_task_rescued() {
    let (store, clock) = world();
    let (a, b) = (host(&store, &clock), host(&store, &clock));
    block_on(a.q.enqueue_batch(vec![task("t")])).unwrap();
    let l = take(&a, 60_000);
    let c = clock.clone();
    // The ack stalls right after reserving its completion entry.
    a.kv.arm(when("increment", "wq/c/tail", false), move || {
        c.advance(timing().deadline_ms)
    });
    let slow = block_on(a.q.ack("t", &l.lease.id, json!("slow")));
    assert!(matches!(slow, Err(QueueError::TooSlow(_))), "{slow:?}");
    assert!(matches!(status(&b, "t"), TaskStatus::InProgress { .. }));
    clock.advance(60_000 + timing().rescue_after_ms);
    assert_eq!(block_on(b.q.rescue()).unwrap().rescued, 1);
    let again = take(&b, 10_000);
    block_on(b.q.ack("t", &again.lease.id, json!("ok"))).unwrap();
    let results = block_on(b.q.collect_results("reg")).unwrap();
    assert_eq!(results, vec![("n-t".to_string(), json!("ok"))]);
}

/// A late ack used to write its stale copy of the record after the
/// rescue, the redelivery and its ack: status and results disagreed. Now
/// it is refused, and both come from the one record.
#[test]
fn a_late_ack_after_the_redelivery_was_acked_changes_nothing() {
    let (store, clock) = world();
    let (a, b) = (host(&store, &clock), host(&store, &clock));
    block_on(a.q.enqueue_batch(vec![task("t")])).unwrap();
    let first = take(&a, 1_000);
    let (c, bq) = (clock.clone(), b.q.clone());
    a.kv.arm(when("get_many", "wq/t/t", false), move || {
        c.advance(1_000 + timing().rescue_after_ms);
        block_on(bq.rescue()).unwrap();
        let l = block_on(bq.dequeue(&DequeueRequest::new("w2", 1)))
            .unwrap()
            .remove(0);
        block_on(bq.ack("t", &l.lease.id, json!("second"))).unwrap();
    });
    let late = block_on(a.q.ack("t", &first.lease.id, json!("first")));
    assert!(
        matches!(late, Err(QueueError::LeaseLost { .. })),
        "{late:?}"
    );
    assert_eq!(
        status(&b, "t"),
        TaskStatus::Completed {
            output: json!("second")
        }
    );
    let results = block_on(b.q.collect_results("reg")).unwrap();
    assert_eq!(results, vec![("n-t".to_string(), json!("second"))]);
}

/// Completions indexed and expired by the same maintenance run used to
/// vanish from the results while `status` still showed them (their index
/// was dropped a run before their records).
#[test]
fn status_and_results_agree_while_completions_expire() {
    let (store, clock) = world();
    let cfg = QueueConfig {
        retention_ms: 60_000,
        ..config()
    };
    let a = host_with(&store, &clock, 0, cfg);
    block_on(a.q.enqueue_batch(vec![task("t")])).unwrap();
    let l = take(&a, 1_000);
    block_on(a.q.ack("t", &l.lease.id, json!("out"))).unwrap();
    // No maintenance until the completion has expired: the next run indexes
    // and expires it at once.
    clock.advance(61_000);
    block_on(a.q.rescue()).unwrap();
    let listed = block_on(a.q.collect_results("reg")).unwrap();
    let known = block_on(a.q.status("t")).unwrap();
    assert_eq!(
        known,
        Some(TaskStatus::Completed {
            output: json!("out")
        })
    );
    assert_eq!(listed, vec![("n-t".to_string(), json!("out"))]);
    clock.advance(1_000);
    block_on(a.q.rescue()).unwrap();
    assert_eq!(block_on(a.q.status("t")).unwrap(), None);
    assert!(block_on(a.q.collect_results("reg")).unwrap().is_empty());
}

/// A maintenance run whose read of the garbage list failed used to go on
/// and commit its own list over it: those keys were never deleted.
#[test]
fn garbage_survives_a_failed_read_of_its_list() {
    let (store, clock) = world();
    let cfg = QueueConfig {
        retention_ms: 60_000,
        ..config()
    };
    let a = host_with(&store, &clock, 0, cfg);
    block_on(a.q.enqueue_batch(vec![task("t")])).unwrap();
    let l = take(&a, 1_000);
    block_on(a.q.ack("t", &l.lease.id, json!(1))).unwrap();
    block_on(a.q.rescue()).unwrap();
    clock.advance(61_000);
    block_on(a.q.rescue()).unwrap(); // the record becomes garbage
    clock.advance(1_000);
    a.kv.arm(failing("get_many", "wq/m/garbage"), || {});
    assert!(block_on(a.q.rescue()).is_err());
    assert!(store.get("wq/t/t").unwrap().is_some(), "not deleted yet");
    clock.advance(1_000);
    block_on(a.q.rescue()).unwrap();
    assert_eq!(store.get("wq/t/t").unwrap(), None);
}

/// After its fourth holder in a row failed, maintenance used to be
/// locked for good. Holders that fail now release their attempt.
#[test]
fn maintenance_runs_again_after_many_failed_holders() {
    let (store, clock) = world();
    let a = host(&store, &clock);
    block_on(a.q.enqueue_batch(vec![NewTask {
        delay_ms: 1_000,
        ..task("later")
    }]))
    .unwrap();
    for _ in 0..6 {
        clock.advance(100);
        a.kv.arm(failing("set_many", "wq/m/state"), || {});
        assert!(block_on(a.q.rescue()).is_err());
    }
    clock.advance(1_000);
    assert_eq!(block_on(a.q.rescue()).unwrap().promoted, 1);
    assert_eq!(take(&a, 1_000).task.id, "later");
}

/// Redrives of one dead letter race: exactly one puts it back.
#[test]
fn concurrent_redrives_publish_the_task_once() {
    let (store, clock) = world();
    let (a, b) = (host(&store, &clock), host(&store, &clock));
    block_on(a.q.enqueue_batch(vec![NewTask {
        max_attempts: Some(1),
        ..task("d")
    }]))
    .unwrap();
    let l = take(&a, 1_000);
    block_on(a.q.fail_leased("d", &l.lease.id, "boom", true)).unwrap();
    let bq = b.q.clone();
    let other = Arc::new(Mutex::new(None));
    let seen = other.clone();
    a.kv.arm(when("get_many", "wq/t/d", false), move || {
        *seen.lock().unwrap() = Some(block_on(bq.redrive("d")));
    });
    let mine = block_on(a.q.redrive("d"));
    let theirs = other.lock().unwrap().take().unwrap();
    let wins = [&mine, &theirs].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{mine:?} {theirs:?}");
    let got = block_on(a.q.dequeue(&DequeueRequest::new("w", 10))).unwrap();
    assert_eq!(got.len(), 1);
}

/// Make task `id`'s record undecodable.
fn corrupt(store: &Store, id: &str) {
    store
        .set(&format!("wq/t/{id}"), b"\x00not json")
        .expect("corrupt");
}

/// A delayed task whose record became unreadable after maintenance filed
/// its timer used to count as pending for good: the timer dropped it
/// without a trace. Now the timer counts its entry as ended, set aside.
#[test]
fn a_delayed_task_set_aside_under_its_timer_leaves_nothing_pending() {
    let (store, clock) = world();
    let h = host(&store, &clock);
    let delayed = NewTask {
        delay_ms: 60_000,
        ..task("d")
    };
    block_on(h.q.enqueue_batch(vec![delayed])).unwrap();
    clock.advance(timing().abandon_after_ms + 1);
    block_on(h.q.rescue()).unwrap(); // files the timer
    assert_eq!(block_on(h.q.stats()).unwrap().pending, 1);
    corrupt(&store, "d");
    clock.advance(60_000);
    block_on(h.q.rescue()).unwrap(); // the timer fires
    let stats = block_on(h.q.stats()).unwrap();
    assert_eq!((stats.pending, stats.set_aside), (0, 1), "{stats:?}");
}

/// The same for a leased task: its lease timer ends the delivery, so it
/// is no longer counted in progress.
#[test]
fn a_leased_task_set_aside_under_its_timer_leaves_nothing_in_progress() {
    let (store, clock) = world();
    let h = host(&store, &clock);
    block_on(h.q.enqueue_batch(vec![task("l")])).unwrap();
    let _lease = take(&h, 60_000);
    clock.advance(timing().abandon_after_ms + 1);
    block_on(h.q.rescue()).unwrap(); // walks the slot, files the lease timer
    assert_eq!(block_on(h.q.stats()).unwrap().in_progress, 1);
    corrupt(&store, "l");
    clock.advance(60_000 + timing().rescue_after_ms);
    block_on(h.q.rescue()).unwrap(); // the timer fires
    let stats = block_on(h.q.stats()).unwrap();
    assert_eq!((stats.in_progress, stats.set_aside), (0, 1), "{stats:?}");
}

/// A store on which every node lock's `increment` takes a second.
struct SlowNodeLocks {
    inner: Store,
    clock: ManualClock,
}

impl KeyValue for SlowNodeLocks {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, kv::KvError> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), kv::KvError> {
        self.inner.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), kv::KvError> {
        self.inner.delete(key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, kv::KvError> {
        self.inner.get_many(keys)
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), kv::KvError> {
        self.inner.set_many(pairs)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), kv::KvError> {
        self.inner.delete_many(keys)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, kv::KvError> {
        if key.starts_with("wq/p/") && key.contains("/n/") {
            self.clock.advance(1_000);
        }
        self.inner.increment(key, delta)
    }
}

/// Found by the pipeline simulation: the children of a finished node were
/// created in one commit under the deadline of the first child's lock, so
/// with locks slow to take (a busy store) the commit came too late, the
/// locks were given up, and every retry failed the same way. Batches are
/// now written once half of their first lock's deadline has gone.
#[test]
fn children_whose_locks_are_slow_to_take_are_all_created() {
    use spin_work_queue::pipeline::PipelineQueue;
    let (store, clock) = world();
    let kv = SlowNodeLocks {
        inner: store,
        clock: clock.clone(),
    };
    let q = KvWorkQueue::with_config(kv, config(), Arc::new(clock.clone())).unwrap();
    let children: Vec<NodeSpec> = (0..12)
        .map(|i| NodeSpec::new(format!("c{i}"), json!(i), &["root"]))
        .collect();
    let mut nodes = vec![NodeSpec::new("root", json!(0), &[])];
    nodes.extend(children);
    block_on(q.submit_pipeline(NewPipeline::new(nodes).with_id("slow-locks"))).unwrap();
    let root = block_on(q.dequeue(&DequeueRequest::new("w", 10))).unwrap();
    assert_eq!(root.len(), 1);
    assert!(
        12_000 > timing().deadline_ms,
        "the twelve locks take longer than a deadline"
    );
    block_on(q.ack(&root[0].task.id, &root[0].lease.id, json!("ok"))).unwrap();
    let got = block_on(q.dequeue(&DequeueRequest::new("w", 100))).unwrap();
    assert_eq!(got.len(), 12, "every child was created at once");
}
