//! From raw samples to judgements: per-row medians, speedups with CIs and verdicts, the headline
//! geomeans, the task's gate; and the self-describing ledger record of the whole run.

use crate::gpu::DeviceInfo;
use crate::protocol::{RowResult, SideResult};
use crate::record::{
    Build, Checked, CopyBandwidth, Dist, GateVerdict, GitInfo, Hashes, Headline, IncludedFile,
    RunRecord, RunRow, SideIncludes, SideRecord, Sides, Timing,
};
use crate::run::{BuiltSet, Collected};
use crate::stats::{self, Comparison};
use crate::task::rows::RowKind;
use crate::task::Task;

use std::path::Path;

#[derive(Debug, Clone)]
pub struct RowJudgement {
    pub row: usize,
    /// False for duplicates and rows left out by --row.
    pub ran: bool,
    pub correct: bool,
    pub device: Option<Comparison>,
    pub eager: Option<Comparison>,
    pub base_device_us: Option<f64>,
    pub cand_device_us: Option<f64>,
    pub base_eager_us: Option<f64>,
    pub cand_eager_us: Option<f64>,
    /// Candidate's achieved bandwidth on device time, TB/s.
    pub cand_tbps: Option<f64>,
    pub base_tbps: Option<f64>,
    /// Median per-launch time of the row's stream reference (kps_stream), µs.
    pub stream_us: Option<f64>,
    /// Moved its bytes faster than the card can: flagged, never celebrated.
    pub impossible: bool,
    /// Distinct bytes one sample reads and writes across its rotated buffer sets.
    pub rotated_bytes: u64,
    /// The sample rotated through at least twice the L2: every launch's data comes from memory.
    pub cold: bool,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Judged {
    pub rows: Vec<RowJudgement>,
    pub device_geomean: Option<f64>,
    pub eager_geomean: Option<f64>,
    /// The device headline with its bootstrap CI (the gate reads the CI's lower bound).
    pub device_headline: Option<stats::Headline>,
    pub eager_headline: Option<stats::Headline>,
    pub production_rows: usize,
    pub gate_pass: bool,
    pub reasons: Vec<String>,
    pub correctness_failures: usize,
}

fn side_problems(side: &SideResult, label: &str) -> Vec<String> {
    side.gates
        .iter()
        .filter(|g| !g.pass)
        .map(|g| format!("{label}: {} gate failed: {}", g.name, g.detail))
        .collect()
}

impl RowJudgement {
    /// The stream reference's time over the candidate's, in percent.
    pub fn pct_of_stream(&self) -> Option<f64> {
        self.stream_us
            .zip(self.cand_device_us)
            .map(|(s, c)| 100.0 * s / c)
    }
}

pub fn judge(task: &Task, got: &Collected, chosen: &[usize]) -> Judged {
    let mut rows = Vec::new();
    let mut failures = 0;
    let mut reasons = Vec::new();
    for row in &task.rows {
        let result = got.rows.iter().find(|r| r.row == row.index);
        let ran = chosen.contains(&row.index);
        let mut j = RowJudgement {
            row: row.index,
            ran,
            correct: true,
            device: None,
            eager: None,
            base_device_us: None,
            cand_device_us: None,
            base_eager_us: None,
            cand_eager_us: None,
            cand_tbps: None,
            stream_us: None,
            base_tbps: None,
            impossible: false,
            rotated_bytes: 0,
            cold: false,
            problems: Vec::new(),
        };
        if !ran {
            rows.push(j);
            continue;
        }
        match result {
            None => {
                j.correct = false;
                j.problems
                    .push("no result (the worker never reported this row)".into());
            }
            Some(r) => {
                if let Some(e) = &r.error {
                    j.correct = false;
                    j.problems.push(e.clone());
                }
                j.problems.extend(side_problems(&r.baseline, "baseline"));
                j.problems.extend(side_problems(&r.candidate, "candidate"));
                // A measurement of the card, kept whatever the sides did.
                j.stream_us = (!r.stream_us.is_empty()).then(|| stats::median(&r.stream_us));
                if r.error.is_none() && (!r.baseline.passed() || !r.candidate.passed()) {
                    j.correct = false;
                }
                if j.correct && row.kind != RowKind::Rejection {
                    let set_bytes: u64 = row
                        .tensors
                        .iter()
                        .flatten()
                        .map(|t| t.storage_elems() * t.dtype.size() as u64)
                        .sum();
                    j.rotated_bytes =
                        set_bytes.saturating_mul(r.launches.min(r.buffer_sets) as u64);
                    fill_timing(&mut j, r, row.bytes, got.copy_tbps, task_l2(got));
                }
            }
        }
        if !j.correct {
            failures += 1;
        }
        rows.push(j);
    }
    let prod: Vec<&RowJudgement> = rows
        .iter()
        .filter(|j| task.rows[j.row].kind == RowKind::Production && task.rows[j.row].runs())
        .collect();
    let complete = prod.iter().all(|j| j.ran && j.device.is_some());
    // Paired per-trial log-ratios of every production row, for the headline and its CI.
    let ratios = |eager: bool| -> Vec<Vec<f64>> {
        prod.iter()
            .filter_map(|j| got.rows.iter().find(|r| r.row == j.row))
            .map(|r| {
                let (b, c) = if eager {
                    (&r.baseline.eager_us, &r.candidate.eager_us)
                } else {
                    (&r.baseline.device_us, &r.candidate.device_us)
                };
                stats::log_ratios(b, c)
            })
            .collect()
    };
    let hseed = got
        .rows
        .iter()
        .filter_map(|r| r.trial_seeds.first())
        .fold(0x4EAD_u64, |a, s| crate::inputs::mix64(a ^ s));
    let device_headline = if complete {
        stats::headline(&ratios(false), hseed)
    } else {
        None
    };
    let eager_headline = if complete {
        stats::headline(&ratios(true), hseed ^ 1)
    } else {
        None
    };
    let device_geomean = device_headline.map(|h| h.geomean);
    let eager_geomean = eager_headline.map(|h| h.geomean);
    let g = &task.spec.gate;
    if failures > 0 {
        reasons.push(format!(
            "{failures} row(s) failed a correctness gate or did not finish"
        ));
    }
    if !complete {
        reasons.push(
            "not every production row produced a timing (partial run or failures): no headline"
                .into(),
        );
    }
    // On confidence, not point estimates: noise (an A/A run) leaves 1 inside the CI and fails.
    // Written as !(x > y) so that a NaN bound fails too.
    match device_headline {
        Some(h) if !above(h.ci_low, g.min_geomean) => reasons.push(format!(
            "headline device geomean {:.4} [95% CI {:.4}, {:.4}]: the CI's lower bound is not > {}",
            h.geomean, h.ci_low, h.ci_high, g.min_geomean
        )),
        None if complete => {
            reasons.push("no headline: a production row has no valid timing pair".into())
        }
        _ => {}
    }
    // A row fails when its point estimate is below the floor (a bimodal row cannot hide behind a
    // wide interval) or when even its CI's upper bound is.
    for j in &prod {
        if let Some(c) = &j.device {
            if !at_least(c.speedup, g.min_row_speedup) || !at_least(c.ci_high, g.min_row_speedup) {
                reasons.push(format!(
                    "production row '{}' is at {:.4}x [95% CI {:.4}, {:.4}], below {}",
                    task.rows[j.row].name, c.speedup, c.ci_low, c.ci_high, g.min_row_speedup
                ));
            }
        }
    }
    if got.copy_tbps.is_none() {
        reasons
            .push("no copy bandwidth was measured: the speed-of-light check could not run".into());
    }
    if got.protocol_violations > 0 {
        reasons.push(format!(
            "{} protocol violation(s) on the result channel: the run's results cannot be trusted",
            got.protocol_violations
        ));
    }
    for why in &got.exit_failures {
        reasons.push(format!(
            "{why}: what it did after its last report (teardown) was not checked"
        ));
    }
    // A worker that died was replaced and the run went on; a death between rows charges no row
    // (the code that killed it may have run after the last report), so the death itself fails
    // the gate, as `RunRecord::distrust` already keeps such a run out of the evidence.
    if got.worker_restarts > 0 {
        reasons.push(format!(
            "the worker died {} time(s) and was replaced: what ran in it before it died was not checked",
            got.worker_restarts
        ));
    }
    for j in rows.iter().filter(|j| j.impossible) {
        reasons.push(format!(
            "row '{}' moved its bytes faster than the card's measured copy bandwidth allows",
            task.rows[j.row].name
        ));
    }
    let production_rows = prod.len();
    Judged {
        gate_pass: reasons.is_empty(),
        rows,
        device_geomean,
        eager_geomean,
        device_headline,
        eager_headline,
        production_rows,
        reasons,
        correctness_failures: failures,
    }
}

fn task_l2(got: &Collected) -> u64 {
    got.device
        .as_ref()
        .map(|d| d.l2_bytes.max(0) as u64)
        .unwrap_or(0)
}

fn fill_timing(j: &mut RowJudgement, r: &RowResult, bytes: u64, copy_tbps: Option<f64>, l2: u64) {
    let (b, c) = (&r.baseline, &r.candidate);
    if b.device_us.is_empty() || c.device_us.is_empty() {
        return;
    }
    let seed = r.trial_seeds.first().copied().unwrap_or(0);
    j.device = Some(stats::compare(&b.device_us, &c.device_us, seed));
    j.eager = Some(stats::compare(&b.eager_us, &c.eager_us, seed ^ 1));
    j.base_device_us = Some(stats::median(&b.device_us));
    j.cand_device_us = Some(stats::median(&c.device_us));
    j.base_eager_us = Some(stats::median(&b.eager_us));
    j.cand_eager_us = Some(stats::median(&c.eager_us));
    j.base_tbps = j.base_device_us.map(|us| bytes as f64 / (us * 1e-6) / 1e12);
    j.cand_tbps = j.cand_device_us.map(|us| bytes as f64 / (us * 1e-6) / 1e12);
    j.cold = l2 > 0 && j.rotated_bytes >= 2 * l2;
    if let Some(copy) = copy_tbps {
        // Data that cannot sit in L2 (a row larger than L2, or a sample that rotated through at
        // least twice the L2) cannot move faster than memory, in device or launch-inclusive time:
        // 5% above the measured copy bandwidth is beyond measurement noise.
        let too_fast =
            |us: Option<f64>| us.is_some_and(|us| bytes as f64 / (us * 1e-6) / 1e12 > 1.05 * copy);
        let from_memory = bytes > l2 || j.cold;
        j.impossible = from_memory
            && [
                j.cand_device_us,
                j.base_device_us,
                j.cand_eager_us,
                j.base_eager_us,
            ]
            .into_iter()
            .any(too_fast);
    }
}

fn dist(xs: &[f64]) -> Option<Dist> {
    (!xs.is_empty()).then(|| Dist {
        median: stats::median(xs),
        p10: stats::percentile(xs, 10),
        p90: stats::percentile(xs, 90),
        samples: xs.to_vec(),
    })
}

fn side_record(s: &SideResult, bytes: u64) -> SideRecord {
    let med = (!s.device_us.is_empty()).then(|| stats::median(&s.device_us));
    SideRecord {
        status: s.status.clone(),
        dispatch_path: s.path.clone(),
        gates: s.gates.clone(),
        lingering_us: s.lingering_us,
        max_abs_err: s.check.max_abs,
        max_rel_err: s.check.max_rel,
        checked: Checked {
            correctness_trial: s.check.clone(),
            timed_outputs: s.timed_check.clone(),
        },
        device_us: dist(&s.device_us),
        eager_us: dist(&s.eager_us),
        achieved_tbps: med.map(|us| bytes as f64 / (us * 1e-6) / 1e12),
    }
}

/// Which code ran. KPILOT_GIT_COMMIT (and KPILOT_GIT_DIRTY), when set, win over git: a copy of
/// the tree on a GPU machine may carry a stale .git that names another commit. The sha256 of the
/// running kpilot binary is recorded either way.
pub fn git_info(root: &Path) -> GitInfo {
    let kpilot_sha256 = std::env::current_exe()
        .ok()
        .and_then(|p| std::fs::read(p).ok())
        .map(|b| crate::task::sha256_hex(&b));
    if let Ok(commit) = std::env::var("KPILOT_GIT_COMMIT") {
        return GitInfo {
            commit: Some(commit),
            dirty: std::env::var("KPILOT_GIT_DIRTY")
                .ok()
                .map(|v| v == "1" || v == "true"),
            changed: None,
            source: "KPILOT_GIT_COMMIT / KPILOT_GIT_DIRTY".into(),
            kpilot_sha256,
        };
    }
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(commit) => {
            // Untracked files count (a new candidates/v2.cu is a change); the ledger does not
            // (every run appends to it).
            let changed: Option<Vec<String>> = run(&[
                "status",
                "--porcelain",
                "--untracked-files=all",
                "--",
                ".",
                ":(exclude)ledger",
            ])
            .map(|s| {
                s.lines()
                    .map(|l| l.get(3..).unwrap_or(l).to_string())
                    .collect()
            });
            GitInfo {
                commit: Some(commit.trim().to_string()),
                dirty: changed.as_ref().map(|c| !c.is_empty()),
                changed: changed.map(|c| c.into_iter().take(20).collect()),
                source: "git".into(),
                kpilot_sha256,
            }
        }
        None => GitInfo {
            commit: None,
            dirty: None,
            changed: None,
            source: "no git repository and no KPILOT_GIT_COMMIT".into(),
            kpilot_sha256,
        },
    }
}

/// Per side: one hash over every file nvcc read, and the project's own files one by one (the
/// toolchain's and the system's headers are covered by the hash and the nvcc version).
fn includes_record(incs: &[Vec<crate::nvcc::Include>; 3]) -> Sides<SideIncludes> {
    let side = |v: &Vec<crate::nvcc::Include>| SideIncludes {
        all_sha256: crate::nvcc::includes_sha256(v),
        files: v.len(),
        project: v
            .iter()
            .filter(|i| !i.system)
            .map(|i| IncludedFile {
                path: i.path.clone(),
                sha256: i.sha256.clone(),
            })
            .collect(),
    };
    Sides {
        support: side(&incs[0]),
        baseline: side(&incs[1]),
        candidate: side(&incs[2]),
    }
}

/// sha256 of a built shared object, as loaded: the source hash alone does not show a cached
/// library that was replaced on disk.
fn so_sha256(p: &Path) -> Option<String> {
    std::fs::read(p).ok().map(|b| crate::task::sha256_hex(&b))
}

/// The run's ledger record; `run` adds `deviations`, `fidelity` and `scan_allowed`.
#[allow(clippy::too_many_arguments)]
pub fn record(
    task: &Task,
    built: &BuiltSet,
    candidate: &str,
    candidate_sha: &str,
    device: &DeviceInfo,
    got: &Collected,
    judged: &Judged,
    seed: u64,
    trials: u32,
    cache: &str,
    row_filter: &[String],
    wall_s: f64,
    root: &Path,
) -> RunRecord {
    let now = crate::ledger::utc_now();
    let run_id = format!(
        "{}-{:08x}",
        now.replace([':', '-'], ""),
        (crate::inputs::mix64(seed) >> 32) as u32
    );
    let rows: Vec<RunRow> = judged
        .rows
        .iter()
        .map(|j| {
            let row = &task.rows[j.row];
            let r = got.rows.iter().find(|r| r.row == j.row);
            RunRow {
                name: row.name.clone(),
                entry: task.spec.entries[row.entry].name.clone(),
                kind: row.kind,
                production: row.kind == RowKind::Production,
                model: row.model.clone(),
                duplicate_of: row.duplicate_of.clone(),
                ran: j.ran,
                bytes: row.bytes,
                launches_per_sample: r.map(|r| r.launches),
                buffer_sets: r.map(|r| r.buffer_sets),
                units_per_set: r.map(|r| r.units_per_set),
                rotated_bytes: j.rotated_bytes,
                cold: j.cold,
                trial_seeds: r.map(|r| r.trial_seeds.clone()),
                trial_units_seed: r.and_then(|r| r.trial_units_seed),
                correct: j.correct,
                problems: j.problems.clone(),
                error: r.and_then(|r| r.error.clone()),
                output_tail: r.map(|r| r.output_tail.clone()),
                baseline: r.map(|r| side_record(&r.baseline, row.bytes)),
                candidate: r.map(|r| side_record(&r.candidate, row.bytes)),
                device: j.device.clone(),
                eager: j.eager.clone(),
                speedup: j.device.as_ref().map(|c| c.speedup),
                verdict: j.device.as_ref().map(|c| c.verdict),
                pct_of_copy_bandwidth: j.cand_tbps.zip(got.copy_tbps).map(|(t, c)| 100.0 * t / c),
                stream_us: j.stream_us,
                stream_bytes: j.stream_us.and(r.and_then(|r| r.stream_bytes)),
                pct_of_stream: j.pct_of_stream(),
                impossible_bandwidth: j.impossible,
                seconds: r.map(|r| r.seconds),
                phases: r.map(|r| r.phases.clone()).unwrap_or_default(),
            }
        })
        .collect();
    RunRecord {
        schema: crate::ledger::SCHEMA,
        run_id,
        time_utc: now,
        task: task.name().to_string(),
        candidate: candidate.to_string(),
        aa: candidate == crate::run::AA_CANDIDATE,
        git: git_info(root),
        hashes: Hashes {
            task_toml: task.hashes.task_toml.clone(),
            rows: task.hashes.rows.clone(),
            baseline: task.hashes.baseline.clone(),
            candidate: candidate_sha.to_string(),
        },
        build: Build {
            nvcc: built.nvcc.path.display().to_string(),
            nvcc_version: built.nvcc.version.clone(),
            arch: built.arch.0.clone(),
            flags: built.flags.clone(),
            flag_line: built.flags.join(" "),
            so_sha256: Some(Sides {
                support: so_sha256(&built.support),
                baseline: so_sha256(&built.baseline),
                candidate: so_sha256(&built.candidate),
            }),
            includes: Some(includes_record(&built.includes)),
        },
        device: device.clone(),
        copy_bandwidth: CopyBandwidth {
            tbps: got.copy_tbps,
            method: got.copy_method.clone(),
        },
        timed_checks: Some("every buffer set holds its own inputs (its own seed) and every launch of a sample writes its own set, poisoned since anything last wrote it; after every sample, on both sides and in both modes: every set scanned on the GPU for poison, NaN/Inf, guard-band damage and input checksums, and units_per_set units of every set, drawn after the sample ran from the OS generator, compared with the float64 reference under that set's seed".into()),
        timing: Timing {
            device_mode: "CUDA graph of N launches (rotating buffer sets) replayed between two CUDA events; per-launch time = elapsed / N".into(),
            eager_mode: "N eager calls through the C ABI between two CUDA events (host call path and launch overhead included)".into(),
            order: "per trial: both sides' graph samples, then both sides' eager samples; AB on even trials, BA on odd (ABBA...)".into(),
            cache: cache.to_string(),
            cache_note: if cache == "cold" { "each launch reads a different buffer set; the sets together exceed 2x L2 where memory allows" } else { "one buffer set, reused: small rows run from L2" }.into(),
            trials,
            warmup: "correctness trial, calibration and one replay of each graph, all excluded".into(),
            min_sample_ms: task.spec.timing.min_sample_ms,
            launches: "calibrated once per row from the slower side's graph time; the same N for both sides and both modes".into(),
            seed,
            sample_units: None,
            row_timeout_s: None,
            bootstrap_resamples: stats::BOOTSTRAP_RESAMPLES,
            ci: "95% percentile bootstrap over trials, pairs kept together; ChaCha8 (rand_chacha) seeded from the row's first trial seed".into(),
            speedup: Some("exp(median over trials of ln(baseline / candidate)): each trial's A/B pair taken back to back".into()),
            verdict_rule: "faster/slower when the CI excludes 1 and the speedup is beyond the noise floor (max of both sides' relative MAD and 1%)".into(),
        },
        row_filter: row_filter.to_vec(),
        worker_restarts: got.worker_restarts,
        protocol_violations: got.protocol_violations,
        exit_failures: got.exit_failures.clone(),
        rows,
        headline: Headline {
            device_geomean: judged.device_geomean,
            eager_geomean: judged.eager_geomean,
            device_ci: judged.device_headline.map(|h| [h.ci_low, h.ci_high]),
            eager_ci: judged.eager_headline.map(|h| [h.ci_low, h.ci_high]),
            ci_method: judged.device_headline.map(|h| format!("{:.0}% bootstrap: trials resampled within each production row (A/B pairs kept), row medians of ln(baseline/candidate), geomean recomputed; {} resamples, ChaCha8 seed {}", h.level * 100.0, h.resamples, h.seed)),
            production_rows: judged.production_rows,
            weighting: "equal weight per unique production signature (duplicate_of rows excluded)".into(),
        },
        gate: GateVerdict {
            rule: Some("the headline device geomean's 95% CI lower bound > min_geomean; every production row's 95% CI upper bound >= min_row_speedup; every correctness gate on every row".into()),
            min_geomean: task.spec.gate.min_geomean,
            min_row_speedup: task.spec.gate.min_row_speedup,
            pass: judged.gate_pass && judged.correctness_failures == 0,
            correctness_failures: judged.correctness_failures,
            reasons: judged.reasons.clone(),
        },
        wall_seconds: wall_s,
        deviations: Vec::new(),
        fidelity: None,
        scan_allowed: Vec::new(),
        quick: false,
        parent: None,
        phases: Vec::new(),
    }
}

/// a > b, false when either is NaN.
fn above(a: f64, b: f64) -> bool {
    a.partial_cmp(&b) == Some(std::cmp::Ordering::Greater)
}

/// a >= b, false when either is NaN.
fn at_least(a: f64, b: f64) -> bool {
    matches!(
        a.partial_cmp(&b),
        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::DeviceInfo;
    use crate::protocol::{Gate, RowResult, SideResult};

    fn side(us: f64) -> SideResult {
        SideResult {
            status: "ok".into(),
            gates: vec![Gate {
                name: "written".into(),
                pass: true,
                detail: String::new(),
            }],
            device_us: vec![us; 9],
            eager_us: vec![us + 2.0; 9],
            ..Default::default()
        }
    }

    /// The S19 row (0.36 MB) with a candidate at `cand_us`, its sample rotated over `sets` sets.
    fn judged(sets: u32, cand_us: f64) -> RowJudgement {
        let (task, got, row) = collected(sets, cand_us);
        judge(&task, &got, &[row])
            .rows
            .into_iter()
            .find(|j| j.row == row)
            .unwrap()
    }

    #[test]
    fn a_worker_that_died_fails_the_gate_even_when_no_row_was_charged() {
        let (task, mut got, row) = collected(1000, 1.0);
        let clean = judge(&task, &got, &[row]);
        assert!(
            !clean.reasons.iter().any(|r| r.contains("worker died")),
            "{:?}",
            clean.reasons
        );
        got.worker_restarts = 1;
        let j = judge(&task, &got, &[row]);
        assert!(
            j.reasons
                .iter()
                .any(|r| r.contains("the worker died 1 time(s) and was replaced")),
            "{:?}",
            j.reasons
        );
        assert!(!j.gate_pass);
    }

    /// The S19 row's task, a run that timed only it, and its index.
    fn collected(sets: u32, cand_us: f64) -> (Task, Collected, usize) {
        let task = Task::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tasks"),
            "fuse_scale_shift",
        )
        .unwrap();
        let row = task
            .rows
            .iter()
            .find(|r| r.name.starts_with("qwen_fss_S19_"))
            .unwrap();
        let device = DeviceInfo {
            name: "test".into(),
            uuid: String::new(),
            compute_capability: (9, 0),
            sm_count: 132,
            l2_bytes: 60 << 20,
            total_mem_bytes: 0,
            driver_version: String::new(),
            sm_clock_khz: None,
            mem_clock_khz: None,
            smi: None,
        };
        let result = RowResult {
            row: row.index,
            name: row.name.clone(),
            launches: 1000,
            buffer_sets: sets,
            trial_seeds: vec![1],
            baseline: side(2.0),
            candidate: side(cand_us),
            ..Default::default()
        };
        let got = Collected {
            device: Some(device),
            copy_tbps: Some(4.0),
            rows: vec![result],
            ..Default::default()
        };
        let index = row.index;
        (task, got, index)
    }

    #[test]
    fn a_small_row_is_cold_only_when_its_sample_rotated_twice_the_l2_and_then_has_a_speed_limit() {
        // 0.36 MB x 256 sets = 92 MB < 2 x 60 MiB: partly from L2, so no speed-of-light verdict.
        let warmish = judged(256, 0.05);
        assert!(
            !warmish.cold && !warmish.impossible,
            "{} bytes",
            warmish.rotated_bytes
        );
        // x 400 sets = 144 MB: every launch reads memory; 0.05 us for 0.36 MB is 7 TB/s: impossible.
        let cold = judged(400, 0.05);
        assert!(cold.cold && cold.impossible, "{} bytes", cold.rotated_bytes);
        // A plausible time on the same cold sample is fine.
        assert!(!judged(400, 1.0).impossible);
    }
}
