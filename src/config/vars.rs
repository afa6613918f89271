//! Settings read from Spin variables through a lookup function, so that
//! tests pass a map; [`ConfigError`] for what is refused.

use std::str::FromStr;

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A variable's value does not parse as its type.
    #[error("variable {name} has an invalid value {value:?}")]
    Unparsable {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
    },
    /// A setting breaks a rule (its range, its format, its relation to
    /// another setting): the rule, as a sentence.
    #[error("{0}")]
    Rule(String),
}

/// Spin variables, through a lookup (`Some(value)` when set). A value is
/// trimmed; an empty one counts as unset, so its default applies.
pub struct Vars<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    /// Variables read through `lookup`.
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The raw value of `name` (`None` when unset), not trimmed.
    pub fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// The trimmed value of `name`; `None` when unset or empty.
    pub fn text(&self, name: &str) -> Option<String> {
        self.raw(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// `name` parsed with `FromStr`, or `default` when unset.
    ///
    /// ```
    /// use spin_work_queue::config::{ConfigError, Vars};
    /// let vars = Vars::new(|k: &str| match k { "n" => Some(" 7 ".into()), "bad" => Some("x".into()), _ => None });
    /// assert_eq!(vars.parse_or("n", 1u32), Ok(7));
    /// assert_eq!(vars.parse_or("unset", 1u32), Ok(1));
    /// assert!(matches!(vars.parse_or("bad", 1u32), Err(ConfigError::Unparsable { .. })));
    /// ```
    pub fn parse_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.text(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|_| ConfigError::Unparsable {
                name: name.to_string(),
                value,
            }),
        }
    }
}
