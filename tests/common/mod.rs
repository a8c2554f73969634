//! Helpers the tests share: the repository's root, nvcc (or why there is none), a task of this
//! repository, one of its rows by name, and one unit of a row's output from a registered float64
//! reference.
#![allow(dead_code)] // each test binary uses its own subset

use kpilot::reference::{self, Inputs};
use kpilot::task::{Row, Task};
use std::path::PathBuf;

/// The repository's root (the crate's manifest folder).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// nvcc as kpilot finds it; without one the test fails saying how to get it.
pub fn nvcc_or_explain() -> PathBuf {
    match kpilot::nvcc::Nvcc::find(&repo()) {
        Ok(n) => n.path,
        Err(e) => panic!(
            "{e}\n(run the tests with scripts/test.sh, which installs the pinned nvcc wheels)"
        ),
    }
}

/// The task `name` as checked in (tasks/<name>).
pub fn task(name: &str) -> Task {
    Task::load(&repo().join("tasks"), name).unwrap()
}

/// The row `name` of `t`; a missing row fails the test naming it.
pub fn row<'a>(t: &'a Task, name: &str) -> &'a Row {
    t.rows
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

/// Unit `u` of the row's (first) output from the reference registered as `reference`, on the
/// inputs of `seed`.
pub fn unit(reference: &str, r: &Row, seed: u64, u: usize) -> Vec<f64> {
    let rf = reference::lookup(reference).unwrap();
    let mut out = vec![Vec::new()];
    rf.compute(r, &Inputs::new(r, seed), u, &mut out);
    out.pop().unwrap()
}
