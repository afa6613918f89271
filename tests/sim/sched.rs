//! The scheduler: every virtual host runs on its own thread, but only the
//! one holding the baton runs; a host gives the baton back at every store
//! operation (and when it sleeps or ends), and the scheduler — one seeded
//! generator — decides who goes next, whether time moves, and what fault
//! the operation meets. So a seed replays exactly.
//!
//! Why threads and not an async executor: the engine and its `KeyValue`
//! seam are synchronous by design (every backend answers without
//! awaiting), so a store operation can only yield by blocking its thread.
//!
//! Time: one global virtual clock; each host reads it plus its own fixed
//! skew. Time moves only between steps, and never so far that a host
//! parked at a store operation has read its clock more than the assumed
//! store-call bound ago (`Timing::store_call_ms`) — the one timing
//! assumption the engine cannot check itself. Everywhere else a host may
//! be held back for as long as the generator likes (a stalled request).

use super::rng::Rng;
use std::sync::{Condvar, Mutex, MutexGuard};

/// What the scheduler decided for one store operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The operation applies and answers.
    None,
    /// The operation does not apply and answers an error.
    Before,
    /// The operation applies and answers an error.
    After,
    /// The request dies here: this operation applies or not (`applied`),
    /// and every later one of the same request fails without reaching the
    /// store.
    Crash { applied: bool },
}

/// Where a host is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum At {
    /// Holding the baton.
    Running,
    /// Parked at a store operation.
    Op(String),
    /// Sleeping until the given time.
    Sleep(u64),
    /// Its workload is over.
    Done,
}

#[derive(Debug)]
struct Host {
    at: At,
    /// Global time of the first clock read since the last store operation.
    fresh_read: Option<u64>,
    skew: i64,
    /// Held back until this time (only while parked without a fresh read).
    stalled_until: u64,
    grant: Fault,
    /// Global time of its last store operation that wrote.
    last_write_at: u64,
}

/// How wild a run is.
#[derive(Debug, Clone, Copy)]
pub struct Chaos {
    /// Per operation: a transient fault (before or after it applies).
    pub fault: f64,
    /// Per operation: the request dies.
    pub crash: f64,
    /// Per step: time moves.
    pub tick: f64,
    /// Per step: one parked host is stalled.
    pub stall: f64,
    /// The assumed store-call bound: time never moves past a parked
    /// host's fresh clock read by more than this.
    pub store_call_ms: u64,
}

impl Chaos {
    /// No faults, no stalls (the settle phase).
    pub fn calm(store_call_ms: u64) -> Self {
        Self {
            fault: 0.0,
            crash: 0.0,
            tick: 0.3,
            stall: 0.0,
            store_call_ms,
        }
    }
}

struct Inner {
    now: u64,
    /// `None`: the scheduler's turn; `Some(h)`: host `h` runs.
    turn: Option<usize>,
    hosts: Vec<Host>,
    rng: Rng,
    chaos: Chaos,
    steps: u64,
}

/// The shared scheduler.
pub struct Sched {
    inner: Mutex<Inner>,
    cv: Condvar,
}

/// What one scheduling decision did (for the trace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Host `host` was granted its operation `op` with `fault`.
    Granted {
        host: usize,
        op: String,
        fault: Fault,
    },
    /// Host `host` woke up.
    Woke { host: usize },
    /// Every host is done.
    AllDone,
}

/// A clock offset for each of `hosts` hosts, uniform within
/// `±clock_skew_ms / 2`.
pub fn skews(rng: &mut Rng, hosts: usize, clock_skew_ms: u64) -> Vec<i64> {
    let half = clock_skew_ms / 2;
    (0..hosts)
        .map(|_| rng.range(0, 2 * half) as i64 - half as i64)
        .collect()
}

impl Sched {
    /// A scheduler for hosts with these skews, at time `start`.
    pub fn new(start: u64, skews: &[i64], seed: u64, chaos: Chaos) -> Self {
        let hosts = skews
            .iter()
            .map(|&skew| Host {
                // Every host starts parked, so the first decision does not
                // depend on which threads happened to start first.
                at: At::Op("start".into()),
                fresh_read: None,
                skew,
                stalled_until: 0,
                grant: Fault::None,
                last_write_at: 0,
            })
            .collect();
        Self {
            inner: Mutex::new(Inner {
                now: start,
                turn: None,
                hosts,
                rng: Rng::new(seed),
                chaos,
                steps: 0,
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The global virtual time.
    pub fn now(&self) -> u64 {
        self.lock().now
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.lock().steps
    }

    /// Host `h` reads its clock.
    pub fn clock(&self, h: usize) -> u64 {
        let mut s = self.lock();
        let now = s.now;
        let host = &mut s.hosts[h];
        host.fresh_read.get_or_insert(now);
        now.saturating_add_signed(host.skew)
    }

    /// Host `h`'s clock, read for the record (not as a check before a
    /// write).
    pub fn peek_clock(&self, h: usize) -> u64 {
        let s = self.lock();
        s.now.saturating_add_signed(s.hosts[h].skew)
    }

    /// Host `h` waits for its first turn.
    pub fn start(&self, h: usize) {
        let mut s = self.lock();
        while s.turn != Some(h) {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.hosts[h].at = At::Running;
    }

    /// Host `h` is about to perform store operation `op`: give the baton
    /// back and wait to be granted it. `writes`: whether it may change
    /// the store.
    pub fn park(&self, h: usize, op: String, writes: bool) -> Fault {
        let mut s = self.lock();
        s.hosts[h].at = At::Op(op);
        s.turn = None;
        self.cv.notify_all();
        while s.turn != Some(h) {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        let now = s.now;
        let host = &mut s.hosts[h];
        host.at = At::Running;
        host.fresh_read = None;
        if writes {
            host.last_write_at = now;
        }
        host.grant
    }

    /// Host `h` sleeps `ms` of virtual time (work done outside the
    /// store, or a pause between requests).
    pub fn sleep(&self, h: usize, ms: u64) {
        let mut s = self.lock();
        let until = s.now + ms;
        s.hosts[h].at = At::Sleep(until);
        s.hosts[h].fresh_read = None;
        s.turn = None;
        self.cv.notify_all();
        while s.turn != Some(h) {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.hosts[h].at = At::Running;
    }

    /// Host `h` finished one request: its clock reads are no longer
    /// followed by a store operation of that request.
    pub fn request_done(&self, h: usize) {
        self.lock().hosts[h].fresh_read = None;
    }

    /// When host `h` last wrote to the store.
    pub fn last_write_at(&self, h: usize) -> u64 {
        self.lock().hosts[h].last_write_at
    }

    /// Host `h` is done for good.
    pub fn done(&self, h: usize) {
        let mut s = self.lock();
        s.hosts[h].at = At::Done;
        s.turn = None;
        self.cv.notify_all();
    }

    /// Change how wild the rest of the run is.
    pub fn set_chaos(&self, chaos: Chaos) {
        self.lock().chaos = chaos;
    }

    /// Wait for the scheduler's turn, then make one decision and hand the
    /// baton over. Returns what was decided.
    pub fn step(&self) -> Decision {
        let mut s = self.lock();
        while s.turn.is_some() {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if s.hosts.iter().all(|h| h.at == At::Done) {
            return Decision::AllDone;
        }
        loop {
            let s = &mut *s;
            // How far time may move: no parked host's fresh read may grow
            // older than the store-call bound.
            let bound = s.chaos.store_call_ms;
            let limit = s
                .hosts
                .iter()
                .filter(|h| matches!(h.at, At::Op(_)))
                .filter_map(|h| h.fresh_read.map(|r| (r + bound).saturating_sub(s.now)))
                .min()
                .unwrap_or(u64::MAX);
            let runnable: Vec<usize> = (0..s.hosts.len())
                .filter(|&i| match &s.hosts[i].at {
                    At::Op(_) => {
                        s.hosts[i].fresh_read.is_some() || s.hosts[i].stalled_until <= s.now
                    }
                    At::Sleep(until) => *until <= s.now,
                    _ => false,
                })
                .collect();
            if runnable.is_empty() {
                // Everyone sleeps or is stalled: time moves to the next wake.
                let next = s
                    .hosts
                    .iter()
                    .filter_map(|h| match h.at {
                        At::Sleep(until) => Some(until),
                        At::Op(_) => Some(h.stalled_until),
                        _ => None,
                    })
                    .min()
                    .expect("a host that is not done");
                s.now = s.now.max(next.min(s.now.saturating_add(limit)));
                continue;
            }
            if limit > 0 && s.rng.chance(s.chaos.tick) {
                let tick = if s.rng.chance(0.05) {
                    s.rng.range(1_000, 30_000)
                } else {
                    s.rng.range(1, 400)
                };
                s.now += tick.min(limit);
            }
            if s.rng.chance(s.chaos.stall) {
                // Hold back a parked host that read no clock since its
                // last operation: a request stalled mid-way.
                let victims: Vec<usize> = runnable
                    .iter()
                    .copied()
                    .filter(|&i| {
                        matches!(s.hosts[i].at, At::Op(_)) && s.hosts[i].fresh_read.is_none()
                    })
                    .collect();
                if !victims.is_empty() {
                    let v = victims[s.rng.below(victims.len() as u64) as usize];
                    s.hosts[v].stalled_until = s.now + s.rng.range(500, 20_000);
                    continue;
                }
            }
            let h = runnable[s.rng.below(runnable.len() as u64) as usize];
            s.steps += 1;
            let decision = match s.hosts[h].at.clone() {
                At::Sleep(_) => Decision::Woke { host: h },
                At::Op(op) => {
                    let fault = if op == "start" {
                        Fault::None
                    } else if s.rng.chance(s.chaos.crash) {
                        Fault::Crash {
                            applied: s.rng.chance(0.5),
                        }
                    } else if s.rng.chance(s.chaos.fault) {
                        if s.rng.chance(0.5) {
                            Fault::Before
                        } else {
                            Fault::After
                        }
                    } else {
                        Fault::None
                    };
                    s.hosts[h].grant = fault;
                    Decision::Granted { host: h, op, fault }
                }
                _ => unreachable!("only parked or sleeping hosts are runnable"),
            };
            s.turn = Some(h);
            self.cv.notify_all();
            return decision;
        }
    }

    /// Wait until no host holds the baton.
    pub fn wait_idle(&self) {
        let mut s = self.lock();
        while s.turn.is_some() {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Move time forward (between steps, with every host parked).
    pub fn advance(&self, ms: u64) {
        self.lock().now += ms;
    }
}
