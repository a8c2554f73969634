//! Rows, the baseline and task.toml (tolerances, gate, timing, build flags, entry points, fidelity
//! explanations: everything that decides a verdict) are frozen by hash in tasks/<task>/frozen.toml.
//! A run refuses to start when one changed; `kpilot freeze` records the change deliberately, with
//! a reason, in the ledger, so that no row set is trimmed and no tolerance or gate is loosened
//! quietly after seeing results.

use crate::error::{line_of, Error, Result};
use crate::record::{FreezeRecord, PreviousFreeze, Record};
use crate::task::Task;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frozen {
    pub rows_sha256: String,
    pub baseline_sha256: String,
    /// Empty in files written before task.toml was frozen: such a file must be frozen again.
    #[serde(default)]
    pub task_toml_sha256: String,
    pub frozen_at: String,
    pub reason: String,
}

pub fn path(task: &Task) -> std::path::PathBuf {
    task.dir.join("frozen.toml")
}

pub fn verify(task: &Task) -> Result<()> {
    let p = path(task);
    let text = std::fs::read_to_string(&p).map_err(|_| {
        Error::Usage(format!("{} is missing: freeze the rows and baseline first with `kpilot freeze {} --reason \"...\"`", p.display(), task.name()))
    })?;
    let f: Frozen = toml::from_str(&text).map_err(|e| {
        Error::input(
            &p,
            e.span().map(|s| line_of(&text, s.start)).unwrap_or(0),
            e.message().to_string(),
        )
    })?;
    let check = |key: &str, want: &str, have: &str, what: &str| -> Result<()> {
        if want == have {
            return Ok(());
        }
        let line = text.find(key).map(|o| line_of(&text, o)).unwrap_or(1);
        Err(Error::input(
            &p,
            line,
            format!("{what} changed since it was frozen ({}...) and is now {}...: changing them is a deliberate act; run `kpilot freeze {} --reason \"why\"` to record it", &want[..12.min(want.len())], &have[..12], task.name()),
        ))
    };
    if f.task_toml_sha256.is_empty() {
        return Err(Error::input(
            &p,
            1,
            format!("frozen.toml freezes the rows and the baseline but not task.toml (it predates freezing the verdict settings): run `kpilot freeze {} --reason \"why\"` to record it", task.name()),
        ));
    }
    check(
        "rows_sha256",
        &f.rows_sha256,
        &task.hashes.rows,
        "the rows file",
    )?;
    check(
        "baseline_sha256",
        &f.baseline_sha256,
        &task.hashes.baseline,
        "the baseline",
    )?;
    check(
        "task_toml_sha256",
        &f.task_toml_sha256,
        &task.hashes.task_toml,
        "task.toml (tolerances, gate, timing, build, entries)",
    )?;
    agrees_with_ledger(task, &p, &f)
}

/// frozen.toml must be the one the last `freeze` record of the task's ledger wrote: a file edited
/// by hand (new hashes pasted in) has no such record.
fn agrees_with_ledger(task: &Task, p: &std::path::Path, f: &Frozen) -> Result<()> {
    let ledger = ledger_path(task);
    let text = crate::ledger::load(&ledger)?.joined();
    let last = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|r| r["kind"] == "freeze" && r["task"] == task.name());
    let Some(r) = last else {
        return Err(Error::input(
            p,
            1,
            format!(
                "{} has no freeze record of task '{}': frozen.toml is written by `kpilot freeze`, which records why; run `kpilot freeze {} --reason \"why\"`",
                ledger.display(),
                task.name(),
                task.name()
            ),
        ));
    };
    let agree = r["rows_sha256"] == f.rows_sha256.as_str()
        && r["baseline_sha256"] == f.baseline_sha256.as_str()
        && r["task_toml_sha256"] == f.task_toml_sha256.as_str();
    if !agree {
        return Err(Error::input(
            p,
            1,
            format!(
                "frozen.toml does not match the last freeze record in {} (made {}): it was edited by hand or the ledger lost the record; run `kpilot freeze {} --reason \"why\"`",
                ledger.display(),
                r["time_utc"].as_str().unwrap_or("?"),
                task.name()
            ),
        ));
    }
    Ok(())
}

/// The task's ledger: <root>/ledger/<task>.jsonl, the root being the folder above tasks/.
pub fn ledger_path(task: &Task) -> std::path::PathBuf {
    task.dir
        .parent()
        .and_then(|t| t.parent())
        .unwrap_or(std::path::Path::new("."))
        .join("ledger")
        .join(format!("{}.jsonl", task.name()))
}

/// Writes frozen.toml and appends a freeze record to the task's ledger.
pub fn freeze(task: &Task, ledger_dir: &std::path::Path, reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(Error::Usage(
            "freeze needs --reason \"...\": say why the rows or the baseline changed".into(),
        ));
    }
    let previous = std::fs::read_to_string(path(task))
        .ok()
        .and_then(|t| toml::from_str::<Frozen>(&t).ok());
    let f = Frozen {
        rows_sha256: task.hashes.rows.clone(),
        baseline_sha256: task.hashes.baseline.clone(),
        task_toml_sha256: task.hashes.task_toml.clone(),
        frozen_at: crate::ledger::utc_now(),
        reason: reason.to_string(),
    };
    let text = format!(
        "# Written by `kpilot freeze`; do not edit by hand. A run refuses to start when the rows, the\n# baseline or task.toml no longer match these hashes.\n{}",
        toml::to_string(&f).map_err(|e| Error::Internal(e.to_string()))?
    );
    std::fs::write(path(task), text)
        .map_err(|e| Error::io(format!("cannot write {}", path(task).display()), e))?;
    let rec = Record::Freeze(Box::new(FreezeRecord {
        schema: crate::ledger::SCHEMA,
        time_utc: f.frozen_at,
        task: task.name().to_string(),
        reason: reason.to_string(),
        rows_sha256: f.rows_sha256,
        baseline_sha256: f.baseline_sha256,
        task_toml_sha256: Some(f.task_toml_sha256),
        previous: previous.map(|p| PreviousFreeze {
            rows_sha256: p.rows_sha256,
            baseline_sha256: p.baseline_sha256,
            task_toml_sha256: p.task_toml_sha256,
            frozen_at: p.frozen_at,
        }),
    }));
    crate::ledger::append(&ledger_dir.join(format!("{}.jsonl", task.name())), &rec)
}
