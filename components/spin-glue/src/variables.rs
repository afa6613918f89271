//! Spin variables, read through `wasi:config/store`.
//!
//! A component declares each variable it reads in `spin.toml`
//! (`[component.<id>.variables]`); an undeclared or unreadable variable
//! reads as absent, so its default applies.

use crate::bindings::wasi::config::store;

/// The value of Spin variable `name`, `None` when unset or unreadable.
pub fn variable(name: &str) -> Option<String> {
    match store::get(name) {
        Ok(value) => value,
        Err(e) => {
            eprintln!("spin-work-queue: cannot read variable {name}: {e:?}");
            None
        }
    }
}
