//! The ledger's records as types: one source of truth for what `kpilot task`, `kpilot fidelity`
//! and `kpilot freeze` append to ledger/<task>.jsonl, for what `kpilot check` and `kpilot ledger`
//! read back, and for ledger/schema.json (generated from these types by `kpilot ledger schema`).
//!
//! Lines written by older versions lack some fields: those are `Option` or `#[serde(default)]`
//! here, so every line ever appended still parses. Unknown fields are refused, so a field the
//! writer adds without adding it here fails the schema test instead of going undocumented.

use crate::check::Check;
use crate::fidelity::rule::FidelityRecord;
use crate::gpu::DeviceInfo;
use crate::protocol::Gate;
use crate::stats::{Comparison, Verdict};
use crate::task::rows::RowKind;
use crate::task::spec::ScanAllow;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// One line of a ledger, told apart by `kind`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    /// One `kpilot task <name>` run.
    Run(Box<RunRecord>),
    /// One `kpilot fidelity <name>` run: the baseline against the upstream release it ports.
    Fidelity(Box<FidelityRecord>),
    /// One `kpilot freeze <name> --reason ...`.
    Freeze(Box<FreezeRecord>),
    /// One `kpilot ncu <name> --row ...`: Nsight Compute digests of one row, both sides.
    Ncu(Box<NcuRecord>),
    /// One task of one `kpilot regress` invocation: every row against the accepted anchor.
    Regress(Box<RegressRecord>),
}

impl Record {
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Run(_) => "run",
            Record::Fidelity(_) => "fidelity",
            Record::Freeze(_) => "freeze",
            Record::Ncu(_) => "ncu",
            Record::Regress(_) => "regress",
        }
    }

    /// The run id (a freeze has none: its time stands in).
    pub fn id(&self) -> &str {
        match self {
            Record::Run(r) => &r.run_id,
            Record::Fidelity(r) => &r.run_id,
            Record::Freeze(r) => &r.time_utc,
            Record::Ncu(r) => &r.run_id,
            Record::Regress(r) => &r.run_id,
        }
    }

    pub fn time_utc(&self) -> &str {
        match self {
            Record::Run(r) => &r.time_utc,
            Record::Fidelity(r) => &r.time_utc,
            Record::Freeze(r) => &r.time_utc,
            Record::Ncu(r) => &r.time_utc,
            Record::Regress(r) => &r.time_utc,
        }
    }

    pub fn task(&self) -> &str {
        match self {
            Record::Run(r) => &r.task,
            Record::Fidelity(r) => &r.task,
            Record::Freeze(r) => &r.task,
            Record::Ncu(r) => &r.task,
            Record::Regress(r) => &r.task,
        }
    }
}

/// The JSON Schema of a ledger line, as checked in at ledger/schema.json.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Record);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    s.push('\n');
    s
}

/// serde_json writes a NaN as null; read null back as NaN.
pub fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Which code ran (see `judge::git_info`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitInfo {
    /// Null when there was neither a git repository nor KPILOT_GIT_COMMIT.
    pub commit: Option<String>,
    /// The tree differs from the commit: tracked files modified or untracked files present
    /// (the ledger excluded: every run appends to it); null when unknown.
    pub dirty: Option<bool>,
    /// What differs (up to 20 paths), when git said; absent in early records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<Vec<String>>,
    /// Where `commit` came from: "git", "KPILOT_GIT_COMMIT / KPILOT_GIT_DIRTY", or why none.
    pub source: String,
    /// sha256 of the running kpilot binary (absent in early records).
    #[serde(default)]
    pub kpilot_sha256: Option<String>,
}

/// A `kind: "run"` line: one `kpilot task` run. ledger/README.md says what each field means.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub schema: u32,
    pub run_id: String,
    pub time_utc: String,
    pub task: String,
    pub candidate: String,
    /// An A/A run (`--aa`, candidate `baseline-aa`); absent in early records.
    #[serde(default)]
    pub aa: bool,
    pub git: GitInfo,
    pub hashes: Hashes,
    pub build: Build,
    pub device: DeviceInfo,
    pub copy_bandwidth: CopyBandwidth,
    /// What is checked after every timed sample, in words (absent in early records).
    #[serde(default)]
    pub timed_checks: Option<String>,
    pub timing: Timing,
    /// The `--row` names of a partial run; empty for a full run.
    pub row_filter: Vec<String>,
    pub worker_restarts: u32,
    #[serde(default)]
    pub protocol_violations: u32,
    /// Workers that failed after reporting every row left to them (a crash, an error exit or a
    /// hang in teardown), in words; each fails the gate with exit 2. Absent when none (and in early records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exit_failures: Vec<String>,
    pub rows: Vec<RunRow>,
    pub headline: Headline,
    pub gate: GateVerdict,
    pub wall_seconds: f64,
    /// Options that weaken the run against the frozen task.toml, in words (absent in early records).
    #[serde(default)]
    pub deviations: Vec<String>,
    /// The fidelity standing of the baseline on this card (absent in early records).
    #[serde(default)]
    pub fidelity: Option<FidelityStanding>,
    /// The `[[scan.allow]]` exceptions this candidate used (absent in early records).
    #[serde(default)]
    pub scan_allowed: Vec<ScanAllow>,
    /// A `--quick` run (production rows, minimum trials): never gate evidence.
    #[serde(default)]
    pub quick: bool,
    /// The candidate's parent, from the header `kpilot candidate new` writes (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Where the run's wall time went, in order (absent in early records): what `kpilot` did
    /// before and after the worker, and what the parent saw of the worker (start, copy
    /// bandwidth, rows, exit). The rows' own phases are in each row's `phases`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
}

/// One phase of a run or of a row and its wall time by the host clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
}

/// Adds `seconds` to phase `name` (appended the first time: the order is the order first seen).
pub fn add_phase(phases: &mut Vec<Phase>, name: &str, seconds: f64) {
    match phases.iter_mut().find(|p| p.name == name) {
        Some(p) => p.seconds += seconds,
        None => phases.push(Phase {
            name: name.to_string(),
            seconds,
        }),
    }
}

/// Why a run's numbers cannot stand as evidence (`RunRecord::distrust`).
#[derive(Debug, Clone, PartialEq)]
pub enum Distrust {
    /// `--row`: only these many rows were asked for.
    Partial(usize),
    /// `--quick`: production rows only, fewer trials, a sample of units compared.
    Quick,
    /// Options that weakened the run against the frozen task.toml.
    Deviations(Vec<String>),
    /// Rows that failed a correctness gate or did not finish.
    Incorrect(usize),
    /// Messages on the result channel that broke the protocol: a forgery was attempted.
    ProtocolViolations(u32),
    /// Workers that died and were replaced mid-run.
    WorkerRestarts(u32),
    /// Workers that crashed, exited with an error or hung after their last report.
    ExitFailures(usize),
}

impl std::fmt::Display for Distrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Distrust::Partial(n) => write!(f, "partial ({n} row(s), --row)"),
            Distrust::Quick => write!(f, "a --quick run"),
            Distrust::Deviations(d) => write!(f, "{} deviation(s): {}", d.len(), d.join("; ")),
            Distrust::Incorrect(n) => write!(f, "{n} row(s) incorrect or unfinished"),
            Distrust::ProtocolViolations(n) => write!(f, "{n} protocol violation(s)"),
            Distrust::WorkerRestarts(n) => write!(f, "{n} worker restart(s)"),
            Distrust::ExitFailures(n) => write!(f, "{n} worker exit failure(s)"),
        }
    }
}

impl RunRecord {
    /// Why this run cannot stand as evidence of what it measured, empty when it can: it must
    /// have run every row with the task's frozen settings (no `--row`, not `--quick`, no
    /// deviation), found every row correct, and seen nothing go wrong with its workers (no
    /// protocol violation, no restart, no failed exit). The one test behind everything that
    /// takes a run as evidence: `ledger best`, `ledger lineage`, `brief`, `accept` and the A/A
    /// run an anchor takes its noise floor from. Whether the run is A/A is not part of it: an
    /// A/A run can be trustworthy, as a noise floor, and is never a candidate's evidence.
    pub fn distrust(&self) -> Vec<Distrust> {
        let mut why = Vec::new();
        if !self.row_filter.is_empty() {
            why.push(Distrust::Partial(self.row_filter.len()));
        }
        if self.quick {
            why.push(Distrust::Quick);
        }
        if !self.deviations.is_empty() {
            why.push(Distrust::Deviations(self.deviations.clone()));
        }
        // The gate's count and the rows' own flags: either one failing is enough.
        let incorrect = self
            .gate
            .correctness_failures
            .max(self.rows.iter().filter(|r| !r.correct).count());
        if incorrect > 0 {
            why.push(Distrust::Incorrect(incorrect));
        }
        if self.protocol_violations > 0 {
            why.push(Distrust::ProtocolViolations(self.protocol_violations));
        }
        if self.worker_restarts > 0 {
            why.push(Distrust::WorkerRestarts(self.worker_restarts));
        }
        if !self.exit_failures.is_empty() {
            why.push(Distrust::ExitFailures(self.exit_failures.len()));
        }
        why
    }

    /// Nothing in `distrust`: see there.
    pub fn is_trustworthy(&self) -> bool {
        self.distrust().is_empty()
    }

    /// Evidence for a candidate: a trustworthy run that is not A/A.
    pub fn is_full_evidence(&self) -> bool {
        self.is_trustworthy() && !self.aa
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hashes {
    pub task_toml: String,
    pub rows: String,
    pub baseline: String,
    pub candidate: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub nvcc: String,
    pub nvcc_version: String,
    pub arch: String,
    pub flags: Vec<String>,
    pub flag_line: String,
    /// The shared objects as loaded (absent in early records).
    #[serde(default)]
    pub so_sha256: Option<Sides<Option<String>>>,
    /// Every file nvcc read, per side (absent in early records).
    #[serde(default)]
    pub includes: Option<Sides<SideIncludes>>,
}

/// One value per built library.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sides<T> {
    pub support: T,
    pub baseline: T,
    pub candidate: T,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SideIncludes {
    /// One hash over every file nvcc read.
    pub all_sha256: String,
    pub files: usize,
    /// The project's own files (not the toolchain's or the system's), one by one.
    pub project: Vec<IncludedFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncludedFile {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyBandwidth {
    pub tbps: Option<f64>,
    pub method: Option<String>,
}

/// How the run was timed; most fields are the method in words.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    pub device_mode: String,
    pub eager_mode: String,
    pub order: String,
    /// "cold" or "warm".
    pub cache: String,
    pub cache_note: String,
    pub trials: u32,
    pub warmup: String,
    pub min_sample_ms: f64,
    pub launches: String,
    pub seed: u64,
    /// Units requested for comparison with the float64 reference after each timed sample, across
    /// all buffer sets (the task's `timing.sample_units`, or `--sample-units`); what each row
    /// actually compared is its `units_per_set` in every one of its `buffer_sets`. Absent in
    /// early records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_units: Option<usize>,
    /// Seconds a row could go without news from the worker before it was killed as hung (the
    /// task's `timing.row_timeout_s`, or `--row-timeout`). Absent in early records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_timeout_s: Option<f64>,
    pub bootstrap_resamples: usize,
    pub ci: String,
    /// Absent in early records.
    #[serde(default)]
    pub speedup: Option<String>,
    pub verdict_rule: String,
}

/// One row of the rows file in a run record.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRow {
    pub name: String,
    pub entry: String,
    pub kind: RowKind,
    pub production: bool,
    pub model: Option<String>,
    pub duplicate_of: Option<String>,
    pub ran: bool,
    pub bytes: u64,
    pub launches_per_sample: Option<u32>,
    pub buffer_sets: Option<u32>,
    /// Absent in early records.
    #[serde(default)]
    pub units_per_set: Option<u32>,
    /// Absent in early records.
    #[serde(default)]
    pub rotated_bytes: u64,
    /// Absent in early records.
    #[serde(default)]
    pub cold: bool,
    pub trial_seeds: Option<Vec<u64>>,
    /// A `--quick` run's draw of the correctness call's units, made after both calls returned
    /// (the OS generator, so no candidate can predict it): `check::pick_units(units, Some(n),
    /// seed)` with the row's unit count and the run's `--quick` sample size gives the units it
    /// compared. Absent when every unit was compared (every full run) and in early records.
    /// Written by the worker, where candidate host code runs (like `stream_us`): a record of what
    /// was checked, not a verdict; the verdict is the row's gates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_units_seed: Option<u64>,
    pub correct: bool,
    pub problems: Vec<String>,
    pub error: Option<String>,
    /// Absent in early records.
    #[serde(default)]
    pub output_tail: Option<Vec<String>>,
    pub baseline: Option<SideRecord>,
    pub candidate: Option<SideRecord>,
    pub device: Option<Comparison>,
    pub eager: Option<Comparison>,
    pub speedup: Option<f64>,
    pub verdict: Option<Verdict>,
    pub pct_of_copy_bandwidth: Option<f64>,
    /// Median per-launch device time (µs) of the stream reference: a plain kernel (one 16-byte
    /// vector a thread, streaming loads and stores) reading this row's inputs and writing its
    /// outputs once, over the same buffer sets, launch count and cache state as the sides, in
    /// the same worker, timed once per trial after all of the sides' trials. A reference for
    /// the row's size and read/write mix, not a bound (a kernel may beat it, e.g. on
    /// launch-bound rows); absent in early records, for rows that were not timed, for rows with
    /// more than 16 tensors, and where the reference itself failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_us: Option<f64>,
    /// Bytes one launch of the stream reference moved (its reads plus its writes), to set
    /// against the row's `bytes`: they differ where a tensor is too small for a 16-byte vector,
    /// ends in a partial one or starts unaligned (left out of the reference). Measured in the
    /// worker, like `stream_us`, so no more trustworthy than it: informational. Absent where
    /// `stream_us` is, and in records made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_bytes: Option<u64>,
    /// stream_us / the candidate's median device time, in percent: how close the candidate is
    /// to that limit (above 100 when it beats the plain stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pct_of_stream: Option<f64>,
    pub impossible_bandwidth: bool,
    pub seconds: Option<f64>,
    /// Where the row's `seconds` went, in the worker's order (absent in early records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
}

/// One side (baseline or candidate) of one row.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SideRecord {
    pub status: String,
    pub dispatch_path: String,
    pub gates: Vec<Gate>,
    /// Absent in early records.
    #[serde(default)]
    pub lingering_us: f64,
    pub max_abs_err: f64,
    pub max_rel_err: f64,
    pub checked: Checked,
    pub device_us: Option<Dist>,
    pub eager_us: Option<Dist>,
    pub achieved_tbps: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checked {
    pub correctness_trial: Check,
    pub timed_outputs: Check,
}

/// Per-launch times of the samples, microseconds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dist {
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub samples: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Headline {
    pub device_geomean: Option<f64>,
    pub eager_geomean: Option<f64>,
    /// Absent in early records.
    #[serde(default)]
    pub device_ci: Option<[f64; 2]>,
    #[serde(default)]
    pub eager_ci: Option<[f64; 2]>,
    #[serde(default)]
    pub ci_method: Option<String>,
    pub production_rows: usize,
    pub weighting: String,
}

/// The task's gate as this run met it or not.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateVerdict {
    /// The gate in words (absent in early records).
    #[serde(default)]
    pub rule: Option<String>,
    pub min_geomean: f64,
    pub min_row_speedup: f64,
    pub pass: bool,
    pub correctness_failures: usize,
    pub reasons: Vec<String>,
}

/// Whether the baseline had a passing fidelity record on this card when the run was made.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FidelityStanding {
    pub card: String,
    /// The passing fidelity record `check` would use, or null.
    pub run_id: Option<String>,
    /// Why there is none, or null.
    pub why_not: Option<String>,
}

/// A `kind: "freeze"` line.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeRecord {
    pub schema: u32,
    pub time_utc: String,
    pub task: String,
    pub reason: String,
    pub rows_sha256: String,
    pub baseline_sha256: String,
    /// Absent in records made before task.toml was frozen.
    #[serde(default)]
    pub task_toml_sha256: Option<String>,
    /// The hashes this freeze replaced (null for the first).
    pub previous: Option<PreviousFreeze>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviousFreeze {
    pub rows_sha256: String,
    pub baseline_sha256: String,
    /// Empty when the replaced freeze predates freezing task.toml.
    #[serde(default)]
    pub task_toml_sha256: String,
    pub frozen_at: String,
}

/// A `kind: "ncu"` line: where a row's Nsight Compute digest and raw CSVs are, and what they say.
/// A profiled run is no timing evidence; the digest explains the times `run` records measure.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NcuRecord {
    pub schema: u32,
    pub run_id: String,
    pub time_utc: String,
    pub task: String,
    pub row: String,
    pub candidate: String,
    pub card: String,
    pub git: GitInfo,
    /// `ncu --version`'s last line.
    pub ncu_version: String,
    /// The ncu command line (the metric list abbreviated).
    pub method: String,
    /// The markdown digest, relative to the repository root.
    pub digest: String,
    /// Raw CSV per side, relative to the repository root: [baseline, candidate].
    pub csv: [String; 2],
    pub compulsory_bytes: u64,
    /// The run record whose per-launch device times the digest shows beside ncu's (the latest run
    /// of the candidate on this card that timed the row, of the task as it is now and trustworthy;
    /// its record has the commit). Absent when there was none, and in records written before it
    /// was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_run_id: Option<String>,
    pub baseline: crate::ncu::digest::SideDigest,
    #[serde(rename = "candidate_digest")]
    pub candidate_side: crate::ncu::digest::SideDigest,
    pub hashes: Hashes,
}

/// A `kind: "regress"` line: one task of one `kpilot regress` invocation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegressRecord {
    pub schema: u32,
    pub run_id: String,
    pub time_utc: String,
    pub task: String,
    pub card: String,
    /// "i/n" when the invocation ran one shard.
    pub shard: Option<String>,
    /// The GPUs the rows were spread over (absent in early records: one GPU).
    #[serde(default)]
    pub devices: Vec<i32>,
    /// The accepted run compared against (None: no anchor for this card).
    pub anchor_run_id: Option<String>,
    pub candidate: Option<String>,
    /// The run records this invocation made: the timing run, then the confirming reruns.
    pub run_ids: Vec<String>,
    pub rerun_ids: Vec<String>,
    /// ok, regression, incorrect, missing, no_anchor or stale_anchor.
    pub status: String,
    /// Why, when the status is not about rows.
    pub note: String,
    pub rows: Vec<RegressRow>,
    pub git: GitInfo,
}

/// One row of a regress record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegressRow {
    pub name: String,
    pub production: bool,
    /// The candidate's median device time per launch in the anchor and now, microseconds.
    pub anchor_us: f64,
    pub now_us: f64,
    /// now / anchor (above 1: slower now), with its 95% bootstrap CI.
    #[serde(deserialize_with = "nan_if_null")]
    #[schemars(with = "Option<f64>")]
    pub ratio: f64,
    #[schemars(with = "[Option<f64>; 2]")]
    pub ci: [f64; 2],
    /// The baseline's now / anchor: when it moved as much as the candidate, the card, driver or
    /// compiler changed, not the candidate.
    #[serde(deserialize_with = "nan_if_null")]
    #[schemars(with = "Option<f64>")]
    pub baseline_ratio: f64,
    /// max(2%, 3x the row's A/A half-width).
    pub threshold: f64,
    /// regression, improved, same, incorrect or missing.
    pub verdict: String,
    /// The confirming rerun's verdict and ratio, for rows first flagged.
    pub rerun_verdict: Option<String>,
    pub rerun_ratio: Option<f64>,
    pub detail: String,
}

/// Synthetic run records for unit tests: what a clean full run records, to be spoiled one field
/// at a time.
#[cfg(test)]
pub(crate) mod fixture {
    use super::RunRecord;

    /// A clean full run of `task` by `candidate` on an H200, headline `geomean`, one correct
    /// production row, hashes "toml", "rows", "base", "cand".
    pub fn run(task: &str, id: &str, candidate: &str, geomean: f64) -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "schema": 1, "run_id": id, "time_utc": id, "task": task, "candidate": candidate,
            "aa": candidate == crate::run::AA_CANDIDATE,
            "git": {"commit": "abc", "dirty": false, "source": "git"},
            "hashes": {"task_toml": "toml", "rows": "rows", "baseline": "base", "candidate": "cand"},
            "build": {"nvcc": "nvcc", "nvcc_version": "13.0", "arch": "sm_90a", "flags": [], "flag_line": ""},
            "device": {"name": "NVIDIA H200", "uuid": "u", "compute_capability": [9, 0], "sm_count": 132,
                       "l2_bytes": 1, "total_mem_bytes": 1, "driver_version": "x"},
            "copy_bandwidth": {"tbps": 4.0, "method": "copy"},
            "timing": {"device_mode": "", "eager_mode": "", "order": "", "cache": "cold", "cache_note": "",
                       "trials": 30, "warmup": "", "min_sample_ms": 1.0, "launches": "", "seed": 1,
                       "bootstrap_resamples": 1000, "ci": "", "verdict_rule": ""},
            "row_filter": [], "worker_restarts": 0,
            "rows": [{"name": "r", "entry": "e", "kind": "production", "production": true, "ran": true,
                      "bytes": 1, "correct": true, "problems": [], "impossible_bandwidth": false}],
            "headline": {"device_geomean": geomean, "eager_geomean": geomean, "device_ci": [geomean, geomean],
                         "production_rows": 1, "weighting": "equal"},
            "gate": {"min_geomean": 1.0, "min_row_speedup": 0.97, "pass": geomean > 1.0,
                     "correctness_failures": 0, "reasons": []},
            "wall_seconds": 1.0,
        }))
        .expect("the fixture is a run record")
    }

    /// A scratch root holding a copy of the repository's `tasks/<task>` and a ledger of `runs`,
    /// each given the hashes of that task as it is (so every one is a run of the task now).
    pub fn root_with(task: &str, runs: &[RunRecord]) -> (tempfile::TempDir, crate::task::Task) {
        root_with_edited(task, runs, |_, _, _| {})
    }

    /// `root_with`, then `edit(i, run, task)` applied to the i-th run before it is written (to
    /// give one run the hashes of another row set or task.toml, say).
    pub fn root_with_edited(
        task: &str,
        runs: &[RunRecord],
        edit: impl Fn(usize, &mut RunRecord, &crate::task::Task),
    ) -> (tempfile::TempDir, crate::task::Task) {
        fn copy(from: &std::path::Path, to: &std::path::Path) {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap().flatten() {
                if e.path().is_dir() {
                    copy(&e.path(), &to.join(e.file_name()));
                } else {
                    std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
                }
            }
        }
        let d = tempfile::tempdir().unwrap();
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        copy(
            &repo.join("tasks").join(task),
            &d.path().join("tasks").join(task),
        );
        let t = crate::task::Task::load(&d.path().join("tasks"), task).unwrap();
        let mut text = String::new();
        for (i, r) in runs.iter().enumerate() {
            let mut r = r.clone();
            r.task = task.to_string();
            r.hashes.task_toml = t.hashes.task_toml.clone();
            r.hashes.rows = t.hashes.rows.clone();
            r.hashes.baseline = t.hashes.baseline.clone();
            edit(i, &mut r, &t);
            text += &serde_json::to_string(&super::Record::Run(Box::new(r))).unwrap();
            text.push('\n');
        }
        std::fs::create_dir_all(d.path().join("ledger")).unwrap();
        std::fs::write(d.path().join("ledger").join(format!("{task}.jsonl")), text).unwrap();
        (d, t)
    }

    /// Gives a run of the task as it is (`t`) other hashes one way.
    pub type Elsewhere = fn(&mut RunRecord, &crate::task::Task);

    /// One way each for a run to be of another task than `t` as it is now, named: an earlier
    /// row set, other task.toml settings (tolerances, gate, timing), another baseline. None of
    /// them may stand as the task's best evidence or anchor.
    pub fn elsewhere() -> Vec<(&'static str, Elsewhere)> {
        vec![
            ("other rows", |r, _| {
                r.hashes.rows = "an earlier row set".into()
            }),
            ("other task.toml settings", |r, _| {
                r.hashes.task_toml = "a looser tolerance".into()
            }),
            ("other baseline", |r, _| {
                r.hashes.baseline = "an older baseline".into()
            }),
        ]
    }

    /// Spoils a clean run one way.
    pub type Spoil = fn(&mut RunRecord);

    /// One way each to spoil a clean run, named: every one must make it untrustworthy.
    pub fn spoilers() -> Vec<(&'static str, Spoil)> {
        vec![
            ("partial", |r| r.row_filter = vec!["r".into()]),
            ("quick", |r| r.quick = true),
            ("deviation", |r| r.deviations = vec!["--trials 7".into()]),
            ("correctness failure", |r| r.gate.correctness_failures = 1),
            ("incorrect row", |r| r.rows[0].correct = false),
            ("protocol violation", |r| r.protocol_violations = 1),
            ("worker restart", |r| r.worker_restarts = 1),
            ("exit failure", |r| {
                r.exit_failures = vec!["the worker exited (signal 6) after its last row".into()]
            }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{run, spoilers};

    #[test]
    fn a_clean_full_run_is_trustworthy_and_every_spoiler_makes_it_not() {
        let clean = run("t", "1", "v1", 1.2);
        assert_eq!(clean.distrust(), vec![]);
        assert!(clean.is_trustworthy() && clean.is_full_evidence());
        for (name, spoil) in spoilers() {
            let mut r = clean.clone();
            spoil(&mut r);
            assert_eq!(r.distrust().len(), 1, "{name}: {:?}", r.distrust());
            assert!(!r.is_trustworthy(), "{name}");
            assert!(!r.is_full_evidence(), "{name}");
        }
        // An A/A run may be trustworthy (a noise floor) but is never a candidate's evidence.
        let aa = run("t", "2", crate::run::AA_CANDIDATE, 1.0);
        assert!(aa.aa && aa.is_trustworthy() && !aa.is_full_evidence());
    }
}
