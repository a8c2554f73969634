//! The fidelity record (one typed structure, written by `kpilot fidelity`, read by `kpilot check`)
//! and the rule that judges it: a baseline is faithful on a card when, in the latest complete
//! fidelity record of that card for the current baseline, every production row of at least
//! `MIN_US` upstream microseconds runs within `BAND` of upstream, and both sides' outputs pass
//! the float64 reference on every row, except rows task.toml's `[fidelity] explained` names.

use crate::check::Check;
use crate::error::{Error, Result};
use crate::gpu::DeviceInfo;
use crate::record::{GitInfo, Record};
use crate::task::rows::RowKind;
use crate::task::spec::UpstreamFile;
use crate::task::Task;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Largest relative difference of baseline and upstream device time that counts as faithful.
pub const BAND: f64 = 0.05;
/// Rows where both sides run faster than this (device time, microseconds) are launch-bound and
/// not gated.
pub const MIN_US: f64 = 10.0;
/// The method a record must have used to count for `check` (the command's defaults).
pub const MIN_LAUNCHES: u32 = 50;
pub const MIN_REPLAYS: u32 = 11;
pub const MIN_CHECK_UNITS: usize = 512;

/// A `kind: "fidelity"` ledger line (the tag is written by `crate::record::Record`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FidelityRecord {
    pub schema: u32,
    pub run_id: String,
    pub time_utc: String,
    pub task: String,
    /// The card's name as the driver reports it (e.g. "NVIDIA H200"): records are judged per card.
    pub card: String,
    pub device: DeviceInfo,
    pub git: GitInfo,
    pub upstream: UpstreamUsed,
    pub baseline_sha256: String,
    pub rows_sha256: String,
    /// sha256 over the adapter (or the shim and every header it includes from kernels/): what
    /// ran as "upstream" besides the pinned wheel files. Empty in records made before it was kept.
    #[serde(default)]
    pub how_sha256: String,
    pub build: FidelityBuild,
    /// Versions of python, torch, triton (and what else driver.py reports) on the machine that
    /// ran upstream: open-ended, as the driver writes it.
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

/// The baseline's (and support kernels') build.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FidelityBuild {
    pub nvcc: String,
    pub nvcc_version: String,
    pub arch: String,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Method {
    pub launches_per_graph: u32,
    pub replays: u32,
    pub description: String,
    /// Units per row compared with the float64 reference (every element is scanned for poison and NaN/Inf).
    pub check_units: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FidelityVerdict")]
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
    for r in rows {
        if let Some(e) = &r.error {
            v.failures.push(format!("{}: did not run: {e}", r.name));
            continue;
        }
        // Wrong output is never explained away: only a timing miss can be.
        for (side, s) in [("upstream", &r.upstream), ("baseline", &r.baseline)] {
            if s.correct == Some(false) {
                let first = s
                    .check
                    .as_ref()
                    .and_then(|c| c.first.clone())
                    .unwrap_or_default();
                v.failures.push(format!(
                    "{}: {side} output fails the float64 reference: {first}",
                    r.name
                ));
            }
        }
        if r.kind != RowKind::Production {
            continue;
        }
        if r.upstream.status != "ok" || r.baseline.status != "ok" {
            v.failures.push(format!(
                "{}: production row not timed (upstream {}, baseline {})",
                r.name, r.upstream.status, r.baseline.status
            ));
            continue;
        }
        match (r.gated, r.ratio) {
            (true, Some(ratio)) => {
                v.gated += 1;
                if (ratio - 1.0).abs() <= BAND {
                    v.within += 1;
                } else {
                    let us = |s: &SideFidelity| s.us.map(|u| format!("{u:.2}")).unwrap_or_default();
                    let what = format!("baseline {} us vs upstream {} us: ratio {ratio:.3}, outside ±{:.0}%", us(&r.baseline), us(&r.upstream), BAND * 100.0);
                    match explained.get(r.name.as_str()) {
                        Some(why) => v.explained.push(format!("{}: {what} (explained: {why})", r.name)),
                        None => v.failures.push(format!("{}: {what}", r.name)),
                    }
                }
            }
            _ => v.not_gated.push(format!(
                "{}: upstream {:.2} us, baseline {:.2} us, both under {MIN_US} us (launch-bound; reported, not gated)",
                r.name,
                r.upstream.us.unwrap_or(0.0),
                r.baseline.us.unwrap_or(0.0)
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
                v.failures.push(format!(
                    "{}: production row missing from the fidelity record",
                    row.name
                ));
            }
        }
    }
    v.pass = v.failures.is_empty();
    v
}

/// Whether a production row is gated: either side at MIN_US or more.
pub fn gated(kind: RowKind, upstream_us: Option<f64>, baseline_us: Option<f64>) -> bool {
    kind == RowKind::Production
        && (upstream_us.is_some_and(|u| u >= MIN_US) || baseline_us.is_some_and(|b| b >= MIN_US))
}

/// sha256 of what ran as upstream besides the wheel: the adapter file, or the shim with every
/// header it includes (quoted, from its folder or kernels/).
pub fn how_sha256(task: &Task) -> Result<String> {
    let f = &task.spec.fidelity;
    let kernels = task
        .dir
        .parent()
        .and_then(Path::parent)
        .map(|r| r.join("kernels"))
        .unwrap_or_default();
    match (&f.adapter, &f.shim) {
        (Some(a), None) => {
            let p = task.dir.join(a);
            std::fs::read(&p)
                .map(|b| crate::task::sha256_hex(&b))
                .map_err(|e| Error::io(format!("cannot read {}", p.display()), e))
        }
        (None, Some(sh)) => crate::nvcc::build_key(&task.dir.join(sh), &[], &kernels, ""),
        _ => Err(Error::input(
            task.dir.join("task.toml"),
            1,
            "[fidelity] must name exactly one of adapter = \"<file>.py\" or shim = \"<file>.cu\"",
        )),
    }
}

/// Why a record cannot stand for the task as it is now, if it cannot.
fn unusable(task: &Task, r: &FidelityRecord, how: &str) -> Option<String> {
    let up = &task.spec.upstream;
    if r.partial {
        return Some("a partial (--row) run".into());
    }
    if r.baseline_sha256 != task.hashes.baseline {
        return Some("another baseline".into());
    }
    if r.rows_sha256 != task.hashes.rows {
        return Some("another rows file".into());
    }
    if r.upstream.package != up.package
        || r.upstream.version != up.version
        || r.upstream.wheel_sha256 != up.wheel_sha256
        || r.upstream.files != up.files
    {
        return Some(format!(
            "another upstream pin ({} {})",
            r.upstream.package, r.upstream.version
        ));
    }
    if how.is_empty() || r.how_sha256 != how {
        return Some(
            "another adapter or shim (or a record made before their hash was kept)".into(),
        );
    }
    if r.method.launches_per_graph < MIN_LAUNCHES
        || r.method.replays < MIN_REPLAYS
        || r.method.check_units < MIN_CHECK_UNITS
    {
        return Some(format!(
            "a weaker method than the default ({} launches, {} replays, {} units checked)",
            r.method.launches_per_graph, r.method.replays, r.method.check_units
        ));
    }
    None
}

/// The latest usable fidelity record per card, and the reason the newest unusable one was set aside.
pub fn latest_per_card(
    task: &Task,
    ledger_dir: &Path,
) -> Result<(BTreeMap<String, FidelityRecord>, Option<String>)> {
    let path = ledger_dir.join(format!("{}.jsonl", task.name()));
    let records = crate::ledger::read(&path)?.0;
    // A task whose adapter or shim cannot be read has no usable record (said below), not an error.
    let how = how_sha256(task).unwrap_or_default();
    let mut latest: BTreeMap<String, FidelityRecord> = BTreeMap::new();
    let mut set_aside = None;
    for v in records {
        if v.get("kind").and_then(|k| k.as_str()) != Some("fidelity") {
            continue;
        }
        let r = match serde_json::from_value(v) {
            Ok(Record::Fidelity(r)) => *r,
            Ok(_) => continue,
            Err(e) => {
                return Err(Error::Internal(format!(
                    "{}: a fidelity record does not parse: {e}",
                    path.display()
                )))
            }
        };
        if r.task != task.name() {
            continue;
        }
        match unusable(task, &r, &how) {
            None => {
                latest.insert(r.card.clone(), r);
            }
            Some(why) => set_aside = Some(format!("run {} measured {why}", r.run_id)),
        }
    }
    Ok((latest, set_aside))
}

/// Whether this card has a passing fidelity record for the task as it is: Ok(run id) or Err(why not).
pub fn standing(
    task: &Task,
    ledger_dir: &Path,
    card: &str,
) -> Result<std::result::Result<String, String>> {
    let (latest, set_aside) = latest_per_card(task, ledger_dir)?;
    Ok(match latest.get(card) {
        None => Err(format!(
            "no fidelity record of this baseline on {card}{}",
            set_aside.map(|s| format!(" ({s})")).unwrap_or_default()
        )),
        Some(r) => {
            let v = judge(task, &r.rows, false);
            if v.pass {
                Ok(r.run_id.clone())
            } else {
                Err(format!(
                    "the fidelity record on {card} (run {}) fails: {}",
                    r.run_id,
                    v.failures.join("; ")
                ))
            }
        }
    })
}

/// `kpilot check`'s fidelity rule. Returns one line per card judged; an error when no usable
/// fidelity record of the task as it is exists, or when a card's latest one fails.
pub fn verify(task: &Task, ledger_dir: &Path) -> Result<Vec<String>> {
    let (latest, set_aside) = latest_per_card(task, ledger_dir)?;
    if latest.is_empty() {
        return Err(Error::Gate(format!(
            "{}: fidelity of the current baseline ({}...) was never measured with these rows, this upstream pin and adapter/shim{}: run `kpilot fidelity {} --upstream <unpacked {} {} wheel>` on a GPU",
            task.name(),
            &task.hashes.baseline[..12],
            set_aside.map(|s| format!(" (the newest record set aside: {s})")).unwrap_or_default(),
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
            "fidelity on {card}: {}/{} gated production rows within ±{:.0}% of {} {} (run {}){}",
            v.within,
            v.gated,
            BAND * 100.0,
            r.upstream.package,
            r.upstream.version,
            r.run_id,
            if v.explained.is_empty() {
                String::new()
            } else {
                format!(", {} explained", v.explained.len())
            }
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
