//! What the parent and its worker process say to each other: a plan in, JSON lines out. The
//! worker is the same binary (`kpilot worker`), so a kernel that crashes, traps or hangs takes
//! down only the worker; the parent records a verdict for that row and starts a new worker for
//! the rows left.

use crate::check::Check;
use crate::gpu::DeviceInfo;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub task_dir: PathBuf,
    pub support_so: PathBuf,
    pub baseline_so: PathBuf,
    pub candidate_so: PathBuf,
    /// Row indices (into the rows file) to run, in order.
    pub rows: Vec<usize>,
    pub seed: u64,
    pub trials: u32,
    pub min_sample_ms: f64,
    pub cache: String,
    pub device: i32,
    /// Measure device-to-device copy bandwidth before the rows (once per run, in the first worker).
    pub measure_copy: bool,
    /// Units compared with the reference after each timed sample (all units in the correctness trial).
    pub sample_units: usize,
    /// Units of the correctness call compared with the reference: `None` every unit (a full
    /// run); `Some(n)` n units drawn from the OS generator after the call, the first and last
    /// among them (a `--quick` run, never gate evidence).
    #[serde(default)]
    pub trial_units: Option<usize>,
}

/// What the parent hands its worker on stdin, read in full before any kernel library is loaded
/// (then stdin is closed): the plan (so no plan file or argument holds the seed) and the run's
/// secret, which every message on the result channel must carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub plan: Plan,
    pub secret: String,
    /// The file descriptor of the result channel in the worker (a pipe only the parent reads;
    /// stdout and stderr are the kernels' to print on and are only kept as text).
    pub fd: i32,
}

/// One message on the result channel: the secret, a sequence number from 0, the event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub secret: String,
    pub seq: u64,
    pub event: Event,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Device {
        info: DeviceInfo,
    },
    CopyBandwidth {
        tbps: f64,
        bytes: u64,
        method: String,
        /// Wall time of the measurement in the worker (allocation and fill included).
        #[serde(default)]
        seconds: f64,
    },
    RowStart {
        row: usize,
    },
    Progress {
        row: usize,
        stage: String,
    },
    Row {
        result: Box<RowResult>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub name: String,
    pub pass: bool,
    /// What failed; empty when the gate passed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SideResult {
    /// Status code of the correctness call: ok, not_supported, invalid, cuda_error.
    pub status: String,
    /// Dispatch path the implementation reported.
    pub path: String,
    pub gates: Vec<Gate>,
    /// The correctness trial's full check (every unit compared).
    pub check: Check,
    /// Checks of the outputs of timed launches (sampled units), merged over trials.
    pub timed_check: Check,
    /// Longest wait, after a call or a sample had finished on the harness's stream, for the rest
    /// of the context to drain (work launched elsewhere or left running), microseconds.
    #[serde(default)]
    pub lingering_us: f64,
    /// Per-launch device time of each sample (graph replays), microseconds.
    pub device_us: Vec<f64>,
    /// Per-launch time of each sample of eager launches (host call path included), microseconds.
    pub eager_us: Vec<f64>,
}

impl SideResult {
    pub fn passed(&self) -> bool {
        !self.gates.is_empty() && self.gates.iter().all(|g| g.pass)
    }

    /// Records a gate; a gate given twice keeps its first failure. A passing gate carries no
    /// detail: the detail says what failed.
    pub fn gate(&mut self, name: &str, pass: bool, detail: impl Into<String>) {
        let detail = if pass { String::new() } else { detail.into() };
        match self.gates.iter_mut().find(|g| g.name == name) {
            Some(g) => {
                if g.pass && !pass {
                    g.pass = false;
                    g.detail = detail;
                }
            }
            None => self.gates.push(Gate {
                name: name.to_string(),
                pass,
                detail,
            }),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RowResult {
    pub row: usize,
    pub name: String,
    /// Launches per sample, the same for both sides, calibrated from the slower side.
    pub launches: u32,
    /// Buffer sets rotated through (cold cache), 1 when warm. Each holds its own inputs.
    pub buffer_sets: u32,
    /// Units of every buffer set compared with the reference after each timed sample (drawn
    /// after the sample ran); 0 when only poison, NaN/Inf, guards and inputs are checked.
    #[serde(default)]
    pub units_per_set: u32,
    pub trial_seeds: Vec<u64>,
    /// A `--quick` run's draw of the correctness call's units (drawn after both calls returned):
    /// `check::pick_units(units, Some(trial_units), seed)` gives them back. None when every unit
    /// was compared.
    #[serde(default)]
    pub trial_units_seed: Option<u64>,
    pub baseline: SideResult,
    pub candidate: SideResult,
    /// A failure of the row as a whole (the worker crashed or hung, a CUDA fault, out of memory,
    /// a protocol violation on the result channel).
    pub error: Option<String>,
    /// The last lines the worker's stdout and stderr carried while this row ran (kernels' host
    /// code may print; nothing printed there is ever read as a result). Filled by the parent.
    #[serde(default)]
    pub output_tail: Vec<String>,
    /// Per-launch device time (µs, one value per trial) of the stream reference: a plain kernel
    /// reading the row's inputs and writing its outputs once, over the same buffer sets and
    /// launches (`kps_stream`). Empty when the row was not timed.
    #[serde(default)]
    pub stream_us: Vec<f64>,
    /// Bytes one launch of the stream reference moves (its regions' reads plus writes); None
    /// when it did not run.
    #[serde(default)]
    pub stream_bytes: Option<u64>,
    pub seconds: f64,
    /// Where `seconds` went (allocation, correctness trial, reference, calibration, ...).
    #[serde(default)]
    pub phases: Vec<crate::record::Phase>,
}
