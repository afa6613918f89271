//! The trace of a run: every store operation and every request outcome,
//! the latest ones kept, printed when a seed fails.

use super::sched::Fault;
use std::collections::VecDeque;

/// Lines kept for the report (`SIM_TRACE_LINES` to change).
const KEPT: usize = 600;

/// The latest events of a run.
#[derive(Debug, Default)]
pub struct Trace {
    lines: VecDeque<String>,
    total: u64,
}

impl Trace {
    fn push(&mut self, line: String) {
        self.total += 1;
        let kept = std::env::var("SIM_TRACE_LINES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(KEPT);
        if self.lines.len() >= kept {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// A store operation.
    pub fn op(&mut self, step: u64, now: u64, host: usize, op: &str, fault: Fault, outcome: &str) {
        let fault = match fault {
            Fault::None => String::new(),
            f => format!(" [{f:?}]"),
        };
        self.push(format!("#{step} t={now} h{host} {op}{fault} -> {outcome}"));
    }

    /// A request and what it answered.
    pub fn request(&mut self, now: u64, host: usize, what: &str) {
        self.push(format!("  t={now} h{host} {what}"));
    }

    /// A note from the world (faults injected from outside, phases).
    pub fn note(&mut self, now: u64, what: &str) {
        self.push(format!("== t={now} {what}"));
    }

    /// The kept lines, oldest first, and how many were dropped before them.
    pub fn render(&self) -> String {
        let dropped = self.total - self.lines.len() as u64;
        let mut out = format!("(… {dropped} earlier events)\n");
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}
