//! The engine against `LocalWorkQueue`, where their semantics are the
//! same: one request at a time (no races, no faults), the same seeded
//! script on both, on one manual clock, every answer compared. The order
//! of tasks made due by the same maintenance run may differ, so dequeues
//! take everything that is due and are compared as sets of deliveries;
//! everything else exactly (errors by their code).

use super::hosts::nested;
use super::rng::Rng;
use serde_json::json;
use spin_work_queue::ids::SequentialIds;
use spin_work_queue::kv::MemoryKv;
use spin_work_queue::{
    Ack, DequeueRequest, KvWorkQueue, LeasedQueue, LeasedTask, LocalWorkQueue, ManualClock,
    NewTask, QueueConfig, QueueError,
};
use std::fmt::Debug;
use std::sync::Arc;

/// An answer, with errors reduced to their code.
fn norm<T: Debug>(r: Result<T, QueueError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {}", e.code()),
    }
}

/// Run `ops` operations of seed `seed` on both; `Err` describes the first
/// difference with the script so far.
pub fn run(seed: u64, ops: usize) -> Result<(), String> {
    let config = QueueConfig {
        maintenance_period_ms: 1,
        retention_ms: 0,
        ..super::world::config()
    };
    let clock = ManualClock::new(super::world::START_MS);
    let local = LocalWorkQueue::with_config(config.clone(), Arc::new(clock.clone()))
        .expect("valid")
        .with_ids(Arc::new(SequentialIds::new("L")));
    let kv = KvWorkQueue::with_config(MemoryKv::new(), config, Arc::new(clock.clone()))
        .expect("valid")
        .with_ids(Arc::new(SequentialIds::new("L")));
    let mut rng = Rng::new(seed);
    let mut script = Vec::new();
    let mut held: Vec<LeasedTask> = Vec::new();
    let mut made = 0u64;
    let mut ids: Vec<String> = Vec::new();
    for step in 0..ops {
        clock.advance(if rng.chance(0.2) {
            rng.range(1_000, 15_000)
        } else {
            rng.range(1, 300)
        });
        let (what, a, b) = match rng.below(12) {
            0 | 1 => {
                let mut tasks = Vec::new();
                for _ in 0..rng.range(1, 3) {
                    made += 1;
                    let id = format!("d{made}");
                    let mut t = NewTask {
                        id: Some(id.clone()),
                        max_attempts: Some(rng.range(1, 3) as u32),
                        ..NewTask::new(format!("p{}", rng.below(2)), format!("n{id}"), json!(made))
                    };
                    if rng.chance(0.25) {
                        t.delay_ms = rng.range(1, 10_000);
                    }
                    if !ids.is_empty() && rng.chance(0.1) {
                        t.idempotency_key = Some(rng.pick(&ids).clone());
                    }
                    if rng.chance(0.03) {
                        t.input = nested(70);
                    }
                    ids.push(id);
                    tasks.push(t);
                }
                let what = format!(
                    "enqueue {:?}",
                    tasks.iter().map(|t| &t.id).collect::<Vec<_>>()
                );
                let a = super::oracle::block_on(local.enqueue_batch(tasks.clone()));
                let b = super::oracle::block_on(kv.enqueue_batch(tasks));
                (what, norm(a), norm(b))
            }
            2 | 3 => {
                let req = DequeueRequest {
                    worker_id: "w".into(),
                    max: 100,
                    lease_ms: Some(*rng.pick(&[1_000u64, 4_000, 20_000])),
                };
                let a = super::oracle::block_on(local.dequeue(&req));
                let b = super::oracle::block_on(kv.dequeue(&req));
                let sorted = |r: &Result<Vec<LeasedTask>, QueueError>| match r {
                    Ok(v) => {
                        let mut v = v.clone();
                        v.sort_by(|x, y| x.task.id.cmp(&y.task.id));
                        // Lease ids are handed out in delivery order.
                        format!(
                            "{:?}",
                            v.iter()
                                .map(|l| (&l.task, l.lease.expires_at))
                                .collect::<Vec<_>>()
                        )
                    }
                    Err(e) => format!("error {}", e.code()),
                };
                let (sa, sb) = (sorted(&a), sorted(&b));
                if let (Ok(got), true) = (&b, sa == sb) {
                    // Keep both sides' lease ids in step: take the engine's
                    // order, and the local lease ids by task.
                    let local_leases = a.unwrap();
                    for l in got {
                        let mut l = l.clone();
                        let la = local_leases
                            .iter()
                            .find(|x| x.task.id == l.task.id)
                            .unwrap();
                        l.lease.id = format!("{}|{}", la.lease.id, l.lease.id);
                        held.push(l);
                    }
                }
                ("dequeue".to_string(), sa, sb)
            }
            4 | 5 if !held.is_empty() => {
                let l = held.remove(rng.below(held.len() as u64) as usize);
                let (la, lb) = l.lease.id.split_once('|').unwrap();
                let out = json!(step);
                let a = super::oracle::block_on(local.ack(&l.task.id, la, out.clone()));
                let b = super::oracle::block_on(kv.ack(&l.task.id, lb, out));
                (format!("ack {}", l.task.id), norm(a), norm(b))
            }
            6 if !held.is_empty() => {
                let acks = |side: usize| -> Vec<Ack> {
                    held.iter()
                        .map(|l| {
                            let (la, lb) = l.lease.id.split_once('|').unwrap();
                            Ack {
                                id: l.task.id.clone(),
                                lease_id: if side == 0 { la } else { lb }.to_string(),
                                output: json!(step),
                            }
                        })
                        .collect()
                };
                let a = super::oracle::block_on(local.ack_batch(acks(0)));
                let b = super::oracle::block_on(kv.ack_batch(acks(1)));
                held.clear();
                let norm_all = |r: Result<Vec<Result<_, QueueError>>, QueueError>| match r {
                    Ok(v) => format!("{:?}", v.into_iter().map(norm).collect::<Vec<_>>()),
                    Err(e) => format!("error {}", e.code()),
                };
                ("ack_batch".to_string(), norm_all(a), norm_all(b))
            }
            7 if !held.is_empty() => {
                let i = rng.below(held.len() as u64) as usize;
                let retryable = rng.chance(0.7);
                let l = if rng.chance(0.8) {
                    held.remove(i)
                } else {
                    held[i].clone()
                };
                let (la, lb) = l.lease.id.split_once('|').unwrap();
                let a =
                    super::oracle::block_on(local.fail_leased(&l.task.id, la, "boom", retryable));
                let b = super::oracle::block_on(kv.fail_leased(&l.task.id, lb, "boom", retryable));
                (format!("fail {}", l.task.id), norm(a), norm(b))
            }
            8 if !held.is_empty() => {
                let l = &held[rng.below(held.len() as u64) as usize];
                let (la, lb) = l.lease.id.split_once('|').unwrap();
                let ms = Some(rng.range(1_000, 8_000));
                let a = super::oracle::block_on(local.heartbeat(&l.task.id, la, ms));
                let b = super::oracle::block_on(kv.heartbeat(&l.task.id, lb, ms));
                (format!("heartbeat {}", l.task.id), norm(a), norm(b))
            }
            9 => {
                let a = super::oracle::block_on(local.rescue());
                let b = super::oracle::block_on(kv.rescue());
                ("rescue".to_string(), norm(a), norm(b))
            }
            10 => {
                let a = super::oracle::block_on(local.stats());
                let b = super::oracle::block_on(kv.stats());
                ("stats".to_string(), norm(a), norm(b))
            }
            _ if !ids.is_empty() => {
                let id = rng.pick(&ids).clone();
                match rng.below(3) {
                    0 => {
                        // Lease ids follow delivery order, which may differ.
                        let unleased =
                            |r: Result<Option<spin_work_queue::TaskInfo>, QueueError>| {
                                norm(r.map(|i| {
                                    i.map(|mut i| {
                                        if let Some(l) = i.lease.as_mut() {
                                            l.id.clear();
                                        }
                                        i
                                    })
                                }))
                            };
                        let a = super::oracle::block_on(local.task(&id));
                        let b = super::oracle::block_on(kv.task(&id));
                        (format!("task {id}"), unleased(a), unleased(b))
                    }
                    1 => {
                        let a = super::oracle::block_on(local.redrive(&id));
                        let b = super::oracle::block_on(kv.redrive(&id));
                        (format!("redrive {id}"), norm(a), norm(b))
                    }
                    _ => {
                        let p = format!("p{}", rng.below(2));
                        let a = super::oracle::block_on(local.results(&p));
                        let b = super::oracle::block_on(kv.results(&p));
                        // Dead letters of one maintenance run share their time.
                        let by_time =
                            |r: Result<Vec<spin_work_queue::DeadLetterEntry>, QueueError>| {
                                r.map(|mut v| {
                                    v.sort_by(|x, y| {
                                        (y.failed_at, &x.task.id).cmp(&(x.failed_at, &y.task.id))
                                    });
                                    v
                                })
                            };
                        let dl_a = by_time(super::oracle::block_on(local.dead_letters(1_000)));
                        let dl_b = by_time(super::oracle::block_on(kv.dead_letters(1_000)));
                        (
                            format!("results {p} + dead letters"),
                            format!("{} {}", norm(a), norm(dl_a)),
                            format!("{} {}", norm(b), norm(dl_b)),
                        )
                    }
                }
            }
            _ => continue,
        };
        let now = spin_work_queue::Clock::now_ms(&clock);
        script.push(format!("#{step} t={now} {what}"));
        if a != b {
            let tail: Vec<&String> = script.iter().rev().take(40).rev().collect();
            return Err(format!(
                "differs at step {step} ({what}):\n  local: {a}\n  kv:    {b}\nlast steps:\n{}",
                tail.iter()
                    .map(|s| format!("  {s}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    Ok(())
}
