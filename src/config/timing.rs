//! [`Timing`]: the store engine's time bounds, fractions of the grace
//! period.

/// The time bounds of the store engine, all fractions of one unit, the
/// grace period `G` ([`QueueConfig::grace_ms`](crate::QueueConfig::grace_ms)). Two are **assumed** —
/// nothing inside a request can check them — and the others are
/// **enforced** by the engine and chosen so that the assumptions suffice:
///
/// | bound | value | kind |
/// | --- | --- | --- |
/// | [`clock_skew_ms`](Self::clock_skew_ms): any two hosts' clocks differ by at most | `G/10` | assumed |
/// | [`store_call_ms`](Self::store_call_ms): a write lands at most this long after the clock check before it | `G/10` | assumed |
/// | [`deadline_ms`](Self::deadline_ms): a request (or maintenance run) issues its last write within this of its first reservation | `2G/5` | enforced |
/// | [`late_finish_ms`](Self::late_finish_ms): ack and fail are accepted until a lease's expiry plus this | `G/5` | enforced |
/// | [`rescue_after_ms`](Self::rescue_after_ms): an expired lease is rescued once its expiry plus this has passed | `G/2` | enforced |
/// | [`abandon_after_ms`](Self::abandon_after_ms): a reserved entry still empty this long after it was seen reserved belongs to a dead request | `G` | enforced |
/// | [`takeover_after_ms`](Self::takeover_after_ms): maintenance whose holder went silent is taken over this long after a contender saw it held | `4G/5` | enforced |
///
/// Why they are enough ([`Timing::check`] tests each inequality):
/// a holder's last write lands before any rescuer can read the record
/// (`late + call + skew < rescue`); a request's writes land before any
/// maintenance run may treat its reservations as abandoned
/// (`deadline + call + 2·skew ≤ abandon`); a maintenance holder's commit
/// lands before a takeover (`deadline + call + 2·skew < takeover`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The unit, `G`.
    pub grace_ms: u64,
    /// Assumed bound on the difference between two hosts' clocks.
    pub clock_skew_ms: u64,
    /// Assumed bound on the time from a clock check to the write after it
    /// landing in the store.
    pub store_call_ms: u64,
    /// Time from a request's first reservation to its last write.
    pub deadline_ms: u64,
    /// Time after a lease's expiry during which its holder may still
    /// acknowledge or fail the task.
    pub late_finish_ms: u64,
    /// Time after a lease's expiry from which maintenance rescues it.
    pub rescue_after_ms: u64,
    /// Age after which a reserved, unwritten entry is abandoned.
    pub abandon_after_ms: u64,
    /// Time after a contender saw the maintenance lock held from which it
    /// may take the run over.
    pub takeover_after_ms: u64,
}

impl Timing {
    /// The bounds for a grace period of `grace_ms`.
    ///
    /// ```
    /// use spin_work_queue::config::Timing;
    /// let t = Timing::from_grace(10_000);
    /// assert_eq!((t.clock_skew_ms, t.late_finish_ms, t.rescue_after_ms), (1_000, 2_000, 5_000));
    /// assert!(t.check().is_ok());
    /// ```
    pub fn from_grace(grace_ms: u64) -> Self {
        Self {
            grace_ms,
            clock_skew_ms: grace_ms / 10,
            store_call_ms: grace_ms / 10,
            deadline_ms: grace_ms * 2 / 5,
            late_finish_ms: grace_ms / 5,
            rescue_after_ms: grace_ms / 2,
            abandon_after_ms: grace_ms,
            takeover_after_ms: grace_ms * 4 / 5,
        }
    }

    /// Check the inequalities the engine's safety rests on; `Err` names
    /// the first that fails.
    pub fn check(&self) -> std::result::Result<(), &'static str> {
        let (skew, call) = (self.clock_skew_ms, self.store_call_ms);
        if self.late_finish_ms + call + skew >= self.rescue_after_ms {
            return Err("late_finish + store_call + clock_skew < rescue_after");
        }
        if self.deadline_ms + call + 2 * skew > self.abandon_after_ms {
            return Err("deadline + store_call + 2 clock_skew <= abandon_after");
        }
        if self.deadline_ms + call + 2 * skew >= self.takeover_after_ms {
            return Err("deadline + store_call + 2 clock_skew < takeover_after");
        }
        if skew == 0 || call == 0 {
            return Err("clock_skew and store_call must be positive");
        }
        Ok(())
    }
}
