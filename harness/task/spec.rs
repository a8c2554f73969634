//! `tasks/<name>/task.toml`: what a task is (entry points, tolerances, gate, build flags, timing,
//! upstream lineage). Unknown keys are errors, so a typo cannot silently change a run.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub task: TaskMeta,
    pub upstream: Upstream,
    #[serde(default)]
    pub fidelity: FidelitySpec,
    /// Exceptions to the static scan of candidate sources (harness/scan.rs).
    #[serde(default)]
    pub scan: ScanSpec,
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

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ScanSpec {
    #[serde(default)]
    pub allow: Vec<ScanAllow>,
}

/// One call the static scan lets one candidate make, with the reason (frozen with task.toml and
/// recorded in every run of that candidate).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanAllow {
    pub candidate: String,
    pub call: String,
    pub reason: String,
}

/// Lineage: the released upstream package the baseline is a port of, pinned by hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Package on PyPI, e.g. "sglang".
    pub package: String,
    /// The pinned release, e.g. "0.5.23".
    pub version: String,
    /// The wheel's file name as `pip download --no-deps` saves it.
    pub wheel: String,
    /// sha256 (hex) of that wheel.
    pub wheel_sha256: String,
    /// Every file of the wheel that the baseline ports or `kpilot fidelity` runs, with its sha256.
    pub files: Vec<UpstreamFile>,
    /// `module:function` the production caller reaches, one per entry point.
    pub entry_points: Vec<String>,
    pub language: String,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    /// Path inside the wheel (the folder holding `sglang/`).
    pub path: String,
    /// sha256 (hex) of the file's bytes.
    pub sha256: String,
}

/// How `kpilot fidelity` runs the pinned upstream: a Python adapter (Triton through torch) or a
/// CUDA shim (the wheel's own .cuh compiled standalone behind kpilot_abi.h), and which production
/// rows may miss the 5% fidelity band, each with its reason.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FidelitySpec {
    /// Python adapter, relative to the task folder (exports load() and launcher()).
    pub adapter: Option<String>,
    /// CUDA shim, relative to the task folder (exports kp_<entry> like any implementation).
    pub shim: Option<String>,
    /// nvcc flags upstream's own JIT build uses for the shim (the harness adds the architecture,
    /// -shared, -fPIC, the static runtime and the include paths).
    #[serde(default)]
    pub shim_flags: Vec<String>,
    /// Include folders for the shim: relative to the wheel root when they start with `wheel:`,
    /// else to the repository root.
    #[serde(default)]
    pub shim_includes: Vec<String>,
    /// Production rows whose miss of the band is understood, each with the reason.
    #[serde(default)]
    pub explained: Vec<Explained>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Explained {
    pub row: String,
    pub reason: String,
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
    /// Units compared with the float64 reference after each timed sample, spread over the
    /// sample's buffer sets (at least one unit of every set, always). Default 64; a task whose
    /// reference unit is costly (group_norm_silu: a unit's group statistics read a whole group of
    /// up to 8.9M elements) sets fewer here, frozen with the rest of task.toml. A run asking for
    /// fewer with --sample-units is a deviation.
    #[serde(default = "default_sample_units")]
    pub sample_units: usize,
}

fn default_sample_units() -> usize {
    crate::run::DEFAULT_SAMPLE_UNITS
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
