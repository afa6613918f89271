//! Every key the store-only engine writes, under the prefix `{p}`:
//!
//! | key | what |
//! | --- | --- |
//! | `{p}/o/{id}` | an open task: pending, delayed, leased, waiting for its retry |
//! | `{p}/d/{id}` | a finished task: completed (with its output) or dead-lettered |
//! | `{p}/k/{key}` | idempotency key → task id, when the key is not the id |
//!
//! One key per task (two while its idempotency key differs from its id):
//! the engine finds its tasks by listing keys, never through an index it
//! would have to update atomically.

/// Which kind of key a listed key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Listed {
    /// `o/{id}`.
    Open(String),
    /// `d/{id}`.
    Done(String),
    /// `k/{key}`.
    Key(String),
    /// Not one of the queue's keys.
    Other,
}

/// Builds and reads the key names of one queue.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// `{p}/o/{id}`.
    pub(crate) fn open(&self, id: &str) -> String {
        format!("{}/o/{id}", self.prefix)
    }

    /// `{p}/d/{id}`.
    pub(crate) fn done(&self, id: &str) -> String {
        format!("{}/d/{id}", self.prefix)
    }

    /// `{p}/k/{key}`.
    pub(crate) fn idempotency(&self, key: &str) -> String {
        format!("{}/k/{key}", self.prefix)
    }

    /// What a listed key names.
    pub(crate) fn parse(&self, key: &str) -> Listed {
        let Some(rest) = key
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return Listed::Other;
        };
        match rest.split_once('/') {
            Some(("o", id)) => Listed::Open(id.to_string()),
            Some(("d", id)) => Listed::Done(id.to_string()),
            Some(("k", k)) => Listed::Key(k.to_string()),
            _ => Listed::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_as_what_they_name() {
        let k = Keys::new("wq");
        assert_eq!(k.parse(&k.open("a")), Listed::Open("a".into()));
        assert_eq!(k.parse(&k.done("a")), Listed::Done("a".into()));
        assert_eq!(k.parse(&k.idempotency("x/y")), Listed::Key("x/y".into()));
        assert_eq!(k.parse("wqx/o/a"), Listed::Other);
        assert_eq!(k.parse("other/o/a"), Listed::Other);
    }
}
