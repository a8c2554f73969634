//! The fidelity record (one typed structure, written by `kpilot fidelity`, read by `kpilot check`)
//! and the rule that judges it: a baseline is faithful on a card when, in the latest complete
//! fidelity record of that card for the current baseline, every production row of at least
//! `MIN_US` upstream microseconds runs within `BAND` of upstream, and both sides' outputs pass
//! the float64 reference on every row, except rows task.toml's `[fidelity] explained` names.

use crate::check::Check;
use crate::error::{Error, Result};
use crate::task::rows::RowKind;
use crate::task::spec::UpstreamFile;
use crate::task::Task;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Largest relative difference of baseline and upstream device time that counts as faithful.
pub const BAND: f64 = 0.05;
/// Rows faster than this (upstream device time, microseconds) are launch-bound and not gated.
pub const MIN_US: f64 = 10.0;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FidelityRecord {
    pub schema: u32,
    /// Always "fidelity".
    pub kind: String,
    pub run_id: String,
    pub time_utc: String,
    pub task: String,
    /// The card's name as the driver reports it (e.g. "NVIDIA H200"): records are judged per card.
    pub card: String,
    pub device: serde_json::Value,
    pub git: serde_json::Value,
    pub upstream: UpstreamUsed,
    pub baseline_sha256: String,
    pub rows_sha256: String,
    pub build: serde_json::Value,
    /// Versions of python, torch, triton on the machine that ran upstream.
    pub env: serde_json::Value,
    pub method: Method,
    pub seed: u64,
    /// A run restricted with --row: shown, never used by the rule.
    pub partial: bool,
    pub rows: Vec<FidelityRow>,
    pub band: f64,
    pub min_us: f64,
    pub verdict: Verdict,
    pub wall_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamUsed {
    pub package: String,
    pub version: String,
    pub wheel_sha256: String,
    /// Every wheel file used, with the sha256 checked before the run.
    pub files: Vec<UpstreamFile>,
    /// "adapter <path>" (Python, through torch) or "shim <path>" (CUDA, built standalone).
    pub how: String,
    pub shim_flags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Method {
    pub launches_per_graph: u32,
    pub replays: u32,
    pub description: String,
    /// Units per row compared with the float64 reference (every element is scanned for poison and NaN/Inf).
    pub check_units: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SideFidelity {
    /// ok, not_supported, or error: ...
    pub status: String,
    /// Median per-launch device time, microseconds.
    pub us: Option<f64>,
    pub samples_us: Vec<f64>,
    pub dispatch_path: String,
    /// The output check against the float64 reference (None when the side did not run).
    pub check: Option<Check>,
    pub correct: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FidelityRow {
    pub name: String,
    pub kind: RowKind,
    pub entry: String,
    pub bytes: u64,
    pub upstream: SideFidelity,
    pub baseline: SideFidelity,
    /// baseline us / upstream us: above 1 the baseline is slower than upstream.
    pub ratio: Option<f64>,
    /// A production row whose upstream time is at least MIN_US.
    pub gated: bool,
    pub within_band: Option<bool>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Verdict {
    pub pass: bool,
    /// Gated rows within the band.
    pub within: usize,
    pub gated: usize,
    /// One line per row that fails the rule (and is not explained).
    pub failures: Vec<String>,
    /// One line per row that would fail but task.toml explains.
    pub explained: Vec<String>,
    /// Production rows not gated, with the reason.
    pub not_gated: Vec<String>,
}

/// Judges rows against the band, the reference checks and the task's explanations.
pub fn judge(task: &Task, rows: &[FidelityRow], partial: bool) -> Verdict {
    let explained: BTreeMap<&str, &str> = task
        .spec
        .fidelity
        .explained
        .iter()
        .map(|e| (e.row.as_str(), e.reason.as_str()))
        .collect();
    let mut v = Verdict::default();
    let fail = |row: &str, what: String, v: &mut Verdict| match explained.get(row) {
        Some(why) => v
            .explained
            .push(format!("{row}: {what} (explained: {why})")),
        None => v.failures.push(format!("{row}: {what}")),
    };
    for r in rows {
        if let Some(e) = &r.error {
            fail(&r.name, format!("did not run: {e}"), &mut v);
            continue;
        }
        for (side, s) in [("upstream", &r.upstream), ("baseline", &r.baseline)] {
            if s.correct == Some(false) {
                let first = s
                    .check
                    .as_ref()
                    .and_then(|c| c.first.clone())
                    .unwrap_or_default();
                fail(
                    &r.name,
                    format!("{side} output fails the float64 reference: {first}"),
                    &mut v,
                );
            }
        }
        if r.kind != RowKind::Production {
            continue;
        }
        if r.upstream.status != "ok" || r.baseline.status != "ok" {
            fail(
                &r.name,
                format!(
                    "production row not timed (upstream {}, baseline {})",
                    r.upstream.status, r.baseline.status
                ),
                &mut v,
            );
            continue;
        }
        match (r.gated, r.ratio) {
            (true, Some(ratio)) => {
                v.gated += 1;
                if (ratio - 1.0).abs() <= BAND {
                    v.within += 1;
                } else {
                    let us = |s: &SideFidelity| s.us.map(|u| format!("{u:.2}")).unwrap_or_default();
                    fail(
                        &r.name,
                        format!(
                            "baseline {} us vs upstream {} us: ratio {ratio:.3}, outside ±{:.0}%",
                            us(&r.baseline),
                            us(&r.upstream),
                            BAND * 100.0
                        ),
                        &mut v,
                    );
                }
            }
            _ => v.not_gated.push(format!(
                "{}: upstream {:.2} us, under {MIN_US} us (launch-bound; reported, not gated)",
                r.name,
                r.upstream.us.unwrap_or(0.0)
            )),
        }
    }
    if !partial {
        for row in task
            .rows
            .iter()
            .filter(|r| r.kind == RowKind::Production && r.runs())
        {
            if !rows.iter().any(|r| r.name == row.name) {
                fail(
                    &row.name,
                    "production row missing from the fidelity record".into(),
                    &mut v,
                );
            }
        }
    }
    v.pass = v.failures.is_empty();
    v
}

/// `kpilot check`'s fidelity rule. Returns one line per card judged; an error when no complete
/// fidelity record of the current baseline exists, or when a card's latest one fails.
pub fn verify(task: &Task, ledger_dir: &Path) -> Result<Vec<String>> {
    let path = ledger_dir.join(format!("{}.jsonl", task.name()));
    let records = if path.exists() {
        crate::ledger::read(&path)?.0
    } else {
        Vec::new()
    };
    let mut latest: BTreeMap<String, FidelityRecord> = BTreeMap::new();
    for v in records {
        if v.get("kind").and_then(|k| k.as_str()) != Some("fidelity") {
            continue;
        }
        let r: FidelityRecord = serde_json::from_value(v).map_err(|e| {
            Error::Internal(format!(
                "{}: a fidelity record does not parse: {e}",
                path.display()
            ))
        })?;
        if r.task == task.name() && r.baseline_sha256 == task.hashes.baseline && !r.partial {
            latest.insert(r.card.clone(), r);
        }
    }
    if latest.is_empty() {
        return Err(Error::Gate(format!(
            "{}: fidelity of the current baseline ({}...) was never measured: run `kpilot fidelity {} --upstream <unpacked {} {} wheel>` on a GPU",
            task.name(),
            &task.hashes.baseline[..12],
            task.name(),
            task.spec.upstream.package,
            task.spec.upstream.version
        )));
    }
    let mut lines = Vec::new();
    let mut failed = Vec::new();
    for (card, r) in &latest {
        // Judged again with today's explanations, so an explanation added later is reviewed like code.
        let v = judge(task, &r.rows, false);
        lines.push(format!(
            "fidelity on {card}: {}/{} production rows of >= {MIN_US} us within ±{:.0}% of {} {} (run {}){}",
            v.within,
            v.gated,
            BAND * 100.0,
            r.upstream.package,
            r.upstream.version,
            r.run_id,
            if v.explained.is_empty() { String::new() } else { format!(", {} explained", v.explained.len()) }
        ));
        if !v.pass {
            failed.push(format!(
                "{card} (run {}): {}",
                r.run_id,
                v.failures.join("; ")
            ));
        }
    }
    if !failed.is_empty() {
        return Err(Error::Gate(format!(
            "{}: the fidelity rule fails on {}",
            task.name(),
            failed.join(" | ")
        )));
    }
    Ok(lines)
}
