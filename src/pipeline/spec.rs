//! What a pipeline is: its nodes, their dependencies and its failure
//! policy, checked once on submission and turned into a [`Graph`].

use crate::config::{MAX_ATTEMPTS_LIMIT, MAX_JSON_DEPTH};
use crate::error::{InvalidKind, QueueError, Result};
use crate::model::{exceeds_depth, validate_segment_name};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// Most nodes of one pipeline.
pub const MAX_PIPELINE_NODES: usize = 1_000;

/// What a dead-lettered node does to its descendants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Its descendants are `Skipped`; independent branches keep running.
    #[default]
    SkipDependents,
    /// Its children start anyway and see `{"error": …}` as its output.
    Continue,
}

/// One node of a pipeline to submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Unique in the pipeline (the rules of a task's `node_name`).
    pub name: String,
    /// Route key the worker finds the executor by; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// The node's own input (a root's executor receives it unchanged).
    #[serde(default)]
    pub input: Value,
    /// Names of the nodes that must complete before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Delivery attempts before dead-lettering; defaults to the queue's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

impl NodeSpec {
    /// A node named `name` with `input`, depending on `depends_on`.
    pub fn new(name: impl Into<String>, input: Value, depends_on: &[&str]) -> Self {
        Self {
            name: name.into(),
            executor: None,
            input,
            depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
            max_attempts: None,
        }
    }

    /// The same node run by the executor at route key `executor`.
    pub fn with_executor(mut self, executor: impl Into<String>) -> Self {
        self.executor = Some(executor.into());
        self
    }

    /// The route key of its executor.
    pub fn route_key(&self) -> &str {
        self.executor.as_deref().unwrap_or(&self.name)
    }
}

/// A pipeline to submit (`POST /v1/pipelines`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewPipeline {
    /// The pipeline's id (a task's `pipeline_id`); generated (a ULID)
    /// when absent. Submitting the same id and spec again is a no-op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The nodes, 1..=[`MAX_PIPELINE_NODES`].
    pub nodes: Vec<NodeSpec>,
    /// What a dead-lettered node does to its descendants.
    #[serde(default)]
    pub on_failure: OnFailure,
}

impl NewPipeline {
    /// A pipeline of `nodes` with the default failure policy and a
    /// generated id.
    pub fn new(nodes: Vec<NodeSpec>) -> Self {
        Self {
            id: None,
            nodes,
            on_failure: OnFailure::default(),
        }
    }

    /// The same pipeline under `id`.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The same pipeline with failure policy `on_failure`.
    pub fn with_on_failure(mut self, on_failure: OnFailure) -> Self {
        self.on_failure = on_failure;
        self
    }

    /// Check every rule; the message names the node. Returns the graph.
    pub fn validate(&self) -> Result<Graph> {
        if let Some(id) = &self.id {
            validate_segment_name("id", id).map_err(pipeline_error)?;
        }
        Graph::build(&self.nodes)
    }
}

/// The spec as stored and compared: the nodes and the policy, without
/// the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineSpec {
    /// The nodes, in submission order.
    pub nodes: Vec<NodeSpec>,
    /// What a dead-lettered node does to its descendants.
    #[serde(default)]
    pub on_failure: OnFailure,
}

/// A broken pipeline rule, as [`QueueError::Invalid`] of kind
/// [`InvalidKind::Pipeline`].
fn invalid(message: String) -> QueueError {
    QueueError::invalid(InvalidKind::Pipeline, message)
}

/// A task rule broken by a node, reported as a pipeline rule.
fn pipeline_error(e: QueueError) -> QueueError {
    match e {
        QueueError::Invalid(i) => invalid(i.message),
        other => other,
    }
}

/// The nodes as a DAG: parents, children and waves by node index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// Parents of each node, in `depends_on` order.
    pub parents: Vec<Vec<usize>>,
    /// Children of each node, in node order.
    pub children: Vec<Vec<usize>>,
    /// Each node's depth: the longest path from a root (roots are 0).
    pub waves: Vec<u32>,
    /// The nodes in an order where every parent comes before its children.
    pub order: Vec<usize>,
}

impl Graph {
    /// The graph of `nodes`, or the first broken rule (naming the node).
    pub fn build(nodes: &[NodeSpec]) -> Result<Graph> {
        if nodes.is_empty() || nodes.len() > MAX_PIPELINE_NODES {
            return Err(invalid(format!(
                "nodes must hold 1..={MAX_PIPELINE_NODES} nodes, got {}",
                nodes.len()
            )));
        }
        let mut index = BTreeMap::new();
        for (i, n) in nodes.iter().enumerate() {
            check_node(i, n)?;
            if index.insert(n.name.as_str(), i).is_some() {
                return Err(invalid(format!("duplicate node name {:?}", n.name)));
            }
        }
        let mut parents = vec![Vec::new(); nodes.len()];
        let mut children = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            for dep in &n.depends_on {
                if *dep == n.name {
                    return Err(invalid(format!("node {:?} depends on itself", n.name)));
                }
                let Some(&p) = index.get(dep.as_str()) else {
                    return Err(invalid(format!(
                        "node {:?} depends on unknown node {dep:?}",
                        n.name
                    )));
                };
                if parents[i].contains(&p) {
                    return Err(invalid(format!(
                        "node {:?} depends on {dep:?} twice",
                        n.name
                    )));
                }
                parents[i].push(p);
                children[p].push(i);
            }
        }
        for c in &mut children {
            c.sort_unstable();
        }
        let (order, waves) = topological(&parents, &children)
            .ok_or_else(|| invalid(format!("cycle: {}", describe_cycle(nodes, &parents))))?;
        Ok(Graph {
            parents,
            children,
            waves,
            order,
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.parents.len()
    }

    /// True for a graph without nodes (never built by [`Graph::build`]).
    pub fn is_empty(&self) -> bool {
        self.parents.is_empty()
    }
}

fn check_node(i: usize, n: &NodeSpec) -> Result<()> {
    let at = |e: QueueError| match e {
        QueueError::Invalid(inv) => invalid(format!("nodes[{i}] ({:?}): {}", n.name, inv.message)),
        other => other,
    };
    validate_segment_name("name", &n.name).map_err(at)?;
    if let Some(executor) = &n.executor {
        validate_segment_name("executor", executor).map_err(at)?;
    }
    if let Some(m) = n.max_attempts {
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&m) {
            return Err(at(invalid(format!(
                "max_attempts must be 1..={MAX_ATTEMPTS_LIMIT}, got {m}"
            ))));
        }
    }
    if exceeds_depth(&n.input, MAX_JSON_DEPTH) {
        return Err(at(invalid(format!(
            "input nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"
        ))));
    }
    Ok(())
}

/// Kahn's algorithm: a topological order and each node's depth, or `None`
/// when the graph has a cycle.
fn topological(parents: &[Vec<usize>], children: &[Vec<usize>]) -> Option<(Vec<usize>, Vec<u32>)> {
    let mut missing: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut waves = vec![0u32; parents.len()];
    let mut ready: VecDeque<usize> = (0..parents.len()).filter(|&i| missing[i] == 0).collect();
    let mut order = Vec::with_capacity(parents.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &c in &children[i] {
            waves[c] = waves[c].max(waves[i] + 1);
            missing[c] -= 1;
            if missing[c] == 0 {
                ready.push_back(c);
            }
        }
    }
    (order.len() == parents.len()).then_some((order, waves))
}

/// One cycle of a graph that has one, as `a → b → a`: walk parents from a
/// node left over by Kahn's algorithm until a node repeats.
fn describe_cycle(nodes: &[NodeSpec], parents: &[Vec<usize>]) -> String {
    // Nodes on a cycle or downstream of one: those Kahn's algorithm left.
    let mut indegree: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut children = vec![Vec::new(); parents.len()];
    for (i, ps) in parents.iter().enumerate() {
        for &p in ps {
            children[p].push(i);
        }
    }
    let mut queue: VecDeque<usize> = (0..parents.len()).filter(|&i| indegree[i] == 0).collect();
    let mut removed = vec![false; parents.len()];
    while let Some(i) = queue.pop_front() {
        removed[i] = true;
        for &c in &children[i] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                queue.push_back(c);
            }
        }
    }
    let Some(start) = (0..parents.len()).find(|&i| !removed[i]) else {
        return "none".into();
    };
    // Every left-over node has a left-over parent: walking them repeats.
    let mut seen = vec![usize::MAX; parents.len()];
    let mut path = Vec::new();
    let mut at = start;
    while seen[at] == usize::MAX {
        seen[at] = path.len();
        path.push(at);
        at = *parents[at]
            .iter()
            .find(|&&p| !removed[p])
            .expect("a node on or after a cycle has a parent on or after it");
    }
    let mut cycle: Vec<usize> = path[seen[at]..].to_vec();
    cycle.reverse(); // parent → child
    cycle.push(cycle[0]);
    cycle
        .iter()
        .map(|&i| nodes[i].name.as_str())
        .collect::<Vec<_>>()
        .join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, deps: &[&str]) -> NodeSpec {
        NodeSpec::new(name, Value::Null, deps)
    }

    fn message(nodes: Vec<NodeSpec>) -> String {
        match Graph::build(&nodes) {
            Err(QueueError::Invalid(i)) => {
                assert_eq!(i.kind, InvalidKind::Pipeline);
                i.message
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_diamond_has_waves_by_longest_path() {
        let g = Graph::build(&[
            node("d", &["b", "c"]),
            node("a", &[]),
            node("b", &["a"]),
            node("c", &["a", "b"]),
        ])
        .unwrap();
        assert_eq!(g.waves, vec![3, 0, 1, 2]);
        assert_eq!(g.children[1], vec![2, 3]);
        assert_eq!(g.parents[0], vec![2, 3]);
        assert_eq!(g.order, vec![1, 2, 3, 0]);
    }

    #[test]
    fn each_broken_rule_names_the_node() {
        assert!(message(vec![]).contains("1..=1000"));
        assert!(message(vec![node("a", &["zz"])]).contains("\"a\" depends on unknown node \"zz\""));
        assert!(message(vec![node("a", &["a"])]).contains("\"a\" depends on itself"));
        assert!(message(vec![node("a", &[]), node("a", &[])]).contains("duplicate node name \"a\""));
        assert!(message(vec![node("a", &[]), node("b", &["a", "a"])]).contains("twice"));
        assert!(message(vec![node("..", &[])]).contains("nodes[0]"));
        let deep = (0..70).fold(json!(1), |v, _| json!([v]));
        assert!(message(vec![NodeSpec::new("x", deep, &[])]).contains("deeper"));
        let too_many: Vec<NodeSpec> = (0..1001).map(|i| node(&format!("n{i}"), &[])).collect();
        assert!(message(too_many).contains("got 1001"));
    }

    #[test]
    fn a_cycle_is_named_in_dependency_order() {
        let m = message(vec![
            node("root", &[]),
            node("a", &["root", "c"]),
            node("b", &["a"]),
            node("c", &["b"]),
            node("after", &["c"]),
        ]);
        assert!(m.starts_with("cycle: "), "{m}");
        let names: Vec<&str> = m["cycle: ".len()..].split(" → ").collect();
        assert_eq!(names.first(), names.last());
        let ring: Vec<&str> = names[..names.len() - 1].to_vec();
        assert_eq!(ring.len(), 3, "{m}");
        for w in names.windows(2) {
            // each step goes from a parent to its child
            let child = ["a", "b", "c"].iter().position(|n| *n == w[1]).unwrap();
            let parent_of = ["c", "a", "b"][child];
            assert_eq!(w[0], parent_of, "{m}");
        }
    }
}
