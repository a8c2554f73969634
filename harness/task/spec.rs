//! `tasks/<name>/task.toml`: what a task is (entry points, tolerances, gate, build flags, timing,
//! upstream lineage). Unknown keys are errors, so a typo cannot silently change a run.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub task: TaskMeta,
    pub upstream: Upstream,
    pub build: BuildSpec,
    /// Per output dtype ("bf16", "fp16", "fp32", ...).
    pub tolerance: BTreeMap<String, Tolerance>,
    pub gate: GateSpec,
    pub timing: TimingSpec,
    #[serde(rename = "entry")]
    pub entries: Vec<EntrySpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskMeta {
    pub name: String,
    pub description: String,
    /// Rows file, relative to the task folder.
    pub rows: String,
    /// Baseline source, relative to the task folder.
    pub baseline: String,
    /// Candidate run when none is named on the command line (candidates/<name>.cu).
    pub candidate: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub repository: String,
    pub commit: String,
    pub files: Vec<String>,
    pub entry_points: Vec<String>,
    pub language: String,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// The ONE flag set for every implementation of this task. There is no per-side flag.
    pub flags: Vec<String>,
    /// "native" (the GPU's own architecture, with the `a` suffix on 9.0 and 10.0) or an explicit sm_XX.
    pub arch: String,
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSpec {
    /// The headline (equal-weight geomean of device-time speedups over production rows) must exceed this.
    pub min_geomean: f64,
    /// Every production row's device-time speedup must be at least this.
    pub min_row_speedup: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimingSpec {
    /// Timed trials per row (each trial: new input values, one sample of each side, ABBA order).
    pub trials: u32,
    /// Launch count per sample is calibrated so the slower side's sample lasts at least this long.
    pub min_sample_ms: f64,
    /// "cold": rotate through buffer sets larger than L2; "warm": one buffer set.
    pub cache: String,
    /// Seconds a worker may stay silent before it is killed and the row marked hung.
    pub row_timeout_s: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntrySpec {
    /// The upstream entry point's name; implementations export `kp_<name>`.
    pub name: String,
    /// Which CPU float64 reference computes it (harness/reference).
    pub reference: String,
    /// Scalar parameters, in ABI order.
    #[serde(default)]
    pub scalars: Vec<String>,
    /// Tensors, in ABI order.
    #[serde(rename = "tensor")]
    pub tensors: Vec<TensorDecl>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only: checked unchanged after every call.
    Input,
    /// Written by the call: poisoned before every call, guarded on both sides.
    Output,
    /// Read and written in place: fresh values before every call, checked against the reference.
    Inout,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorDecl {
    pub name: String,
    pub role: Role,
    /// An optional tensor may be absent from a row (passed as KP_ABSENT).
    #[serde(default)]
    pub optional: bool,
    /// Default value distribution for inputs, e.g. "uniform(-1, 1)"; rows may override.
    pub dist: Option<String>,
    /// For outputs: same shape and dtype as this tensor (contiguous), unless the row gives its own.
    pub like: Option<String>,
}
