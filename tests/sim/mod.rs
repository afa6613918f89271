//! A deterministic simulation of the store engine: many virtual hosts —
//! producers, workers, admins — interleaved at every store operation by
//! one seeded scheduler, each with its own skewed clock, under injected
//! faults, stalled requests, poison inputs and a store that refuses new
//! keys past a cap; the safety invariants checked after every step, then
//! liveness and bounded storage at the end. A failing seed prints its
//! trace and the command that replays it.

#![allow(dead_code)]

pub mod differential;
pub mod dispatch;
pub mod hosted;
pub mod hosts;
pub mod oracle;
pub mod pipelines;
pub mod rng;
pub mod sched;
pub mod store;
pub mod trace;
pub mod world;
