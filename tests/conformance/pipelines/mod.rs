//! The pipeline conformance suite: `docs/semantics.md` § Pipelines as
//! scenarios against [`PipelineQueue`], instantiated for every
//! implementation with [`pipeline_suite!`]. The tests play the workers:
//! they dequeue, check that every parent of a delivered node completed,
//! and ack or fail.

pub mod failure;
pub mod scheduling;
pub mod submission;

use super::support::unique;
use super::Fixture;
use serde_json::{json, Value};
use spin_work_queue::pipeline::PipelineQueue;
use spin_work_queue::{
    Ack, DequeueRequest, LeasedQueue, LeasedTask, NewPipeline, NodeSpec, NodeState, PipelineState,
    PipelineView, TaskStatus,
};
use std::collections::{BTreeMap, BTreeSet};

/// Instantiate the pipeline suite: one `#[tokio::test]` per scenario.
#[macro_export]
macro_rules! pipeline_suite {
    ($fixture:expr) => {
        $crate::pipeline_suite!(@tests $fixture;
            submission::a_diamond_runs_each_node_after_its_parents_with_their_outputs,
            submission::roots_get_their_input_unchanged_and_tasks_carry_the_executor,
            submission::invalid_pipelines_are_refused_naming_the_node,
            submission::submission_is_idempotent_by_id,
            submission::unknown_pipelines_are_not_found,
            submission::a_settled_pipeline_is_forgotten_after_retention,
            scheduling::a_layered_dag_acked_in_batches_runs_in_dependency_order,
            scheduling::parents_acked_together_start_their_child_once,
            scheduling::a_node_retried_shows_failed_then_completes,
            failure::a_dead_letter_skips_its_descendants_and_other_branches_finish,
            failure::continue_starts_children_with_the_parent_error,
            failure::redrive_resumes_the_skipped_descendants,
            failure::cancel_stops_what_has_not_started,
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
                $crate::conformance::pipelines::$module::$name(&fixture).await;
            }
        )*
    };
}

/// A node named `name` depending on `deps`, its input `{"n": name}`.
pub fn node(name: &str, deps: &[&str]) -> NodeSpec {
    NodeSpec::new(name, json!({ "n": name }), deps)
}

/// A pipeline of `nodes` under a fresh id starting with `label`.
pub fn pipeline(label: &str, nodes: Vec<NodeSpec>) -> NewPipeline {
    NewPipeline::new(nodes).with_id(format!("{label}-{}", unique()))
}

/// What the test's worker does with a node.
pub enum Outcome {
    /// Ack with this output.
    Ok(Value),
    /// Fail, not retryable, with this error.
    Fail(String),
}

/// The output a node completed with in [`Run::drive`]: its name and input.
pub fn output_of(l: &LeasedTask) -> Value {
    json!({ "node": l.task.node_name, "input": l.task.input })
}

/// The test's workers for one pipeline: dequeue, check every delivered
/// node's parents completed, finish as `decide` says.
pub struct Run<'a, F: Fixture>
where
    F::Queue: PipelineQueue,
{
    /// The fixture.
    pub fx: &'a F,
    /// The pipeline's id.
    pub id: String,
    /// Parents of each node, by name.
    pub parents: BTreeMap<String, Vec<String>>,
    /// Nodes completed, in completion order.
    pub completed: Vec<String>,
    /// Nodes delivered, in delivery order (repeats included).
    pub delivered: Vec<String>,
}

impl<'a, F: Fixture> Run<'a, F>
where
    F::Queue: PipelineQueue,
{
    /// Submit `p` (must be new).
    pub async fn submit(fx: &'a F, p: NewPipeline) -> Self {
        let parents = p
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.depends_on.clone()))
            .collect();
        let submitted = fx.queue().submit_pipeline(p).await.expect("submit");
        assert!(!submitted.duplicate);
        Run {
            fx,
            id: submitted.id,
            parents,
            completed: Vec::new(),
            delivered: Vec::new(),
        }
    }

    /// The queue.
    pub fn q(&self) -> &F::Queue {
        self.fx.queue()
    }

    /// One dequeue of up to `max` tasks, each checked against the DAG.
    pub async fn take(&mut self, max: u32) -> Vec<LeasedTask> {
        let got = self
            .q()
            .dequeue(&DequeueRequest::new("pipeline-worker", max))
            .await
            .expect("dequeue");
        for l in &got {
            assert_eq!(l.task.pipeline_id, self.id, "a foreign task was delivered");
            let name = &l.task.node_name;
            for p in &self.parents[name] {
                assert!(
                    self.completed.contains(p),
                    "{name} was delivered before its parent {p} completed"
                );
            }
            self.delivered.push(name.clone());
        }
        got
    }

    /// Finish `l` as `outcome` says.
    pub async fn finish(&mut self, l: &LeasedTask, outcome: Outcome) {
        match outcome {
            Outcome::Ok(output) => {
                self.q()
                    .ack(&l.task.id, &l.lease.id, output)
                    .await
                    .expect("ack");
                self.completed.push(l.task.node_name.clone());
            }
            Outcome::Fail(error) => {
                self.q()
                    .fail_leased(&l.task.id, &l.lease.id, &error, false)
                    .await
                    .expect("fail");
            }
        }
    }

    /// Dequeue and finish until nothing is delivered; the nodes in
    /// `failing` fail, the others complete with [`output_of`].
    pub async fn drive(&mut self, failing: &[&str]) {
        loop {
            let batch = self.take(10).await;
            if batch.is_empty() {
                return;
            }
            for l in batch {
                let outcome = if failing.contains(&l.task.node_name.as_str()) {
                    Outcome::Fail(format!("{} failed", l.task.node_name))
                } else {
                    Outcome::Ok(output_of(&l))
                };
                self.finish(&l, outcome).await;
            }
        }
    }

    /// Ack a whole batch in one `ack_batch`.
    pub async fn ack_all(&mut self, batch: &[LeasedTask]) {
        let acks = batch
            .iter()
            .map(|l| Ack {
                id: l.task.id.clone(),
                lease_id: l.lease.id.clone(),
                output: output_of(l),
            })
            .collect();
        for r in self.q().ack_batch(acks).await.expect("ack_batch") {
            r.expect("every ack of the batch");
        }
        self.completed
            .extend(batch.iter().map(|l| l.task.node_name.clone()));
    }

    /// The pipeline's view (it must exist).
    pub async fn view(&self) -> PipelineView {
        self.q()
            .pipeline(&self.id)
            .await
            .expect("pipeline")
            .expect("the pipeline exists")
    }

    /// Assert each node's state.
    pub async fn assert_states(&self, want: &[(&str, NodeState)]) -> PipelineView {
        let v = self.view().await;
        for (name, state) in want {
            let n = v.node(name).unwrap_or_else(|| panic!("node {name}"));
            assert_eq!(n.state, *state, "state of {name} in {v:#?}");
        }
        v
    }
}

/// The parents of a delivered node as its input shows them.
pub fn parents_in(l: &LeasedTask) -> BTreeSet<String> {
    l.task.input["parents"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// True for a completed status.
pub fn is_completed(s: &TaskStatus) -> bool {
    matches!(s, TaskStatus::Completed { .. })
}

/// The pipeline state must be `want`.
#[track_caller]
pub fn assert_pipeline(v: &PipelineView, want: PipelineState) {
    assert_eq!(v.state, want, "{v:#?}");
}
