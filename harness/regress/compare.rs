//! `kpilot compare <task> <run> <run>`: two recorded runs, offline, row by row with the rules of
//! `regress` (the ratio of the candidate's median device times, its bootstrap CI, the threshold
//! max(2%, 3x the A/A half-width of the later run's card)); no rerun is possible offline, so a
//! flagged row says "unconfirmed". Markdown for a PR description.

use super::anchor::{find_run, latest_aa, rows_of, runs};
use crate::error::{exit, Result};
use crate::record::RegressRow;
use std::fmt::Write;
use std::path::Path;

pub fn compare(root: &Path, task: &str, before: &str, after: &str) -> Result<(String, i32)> {
    let all = runs(root, task)?;
    let a = find_run(&all, task, before)?;
    let b = find_run(&all, task, after)?;
    // Without the task (removed since), an A/A run counts only with the later run's task.toml.
    let settings = crate::task::Task::load(&root.join("tasks"), task)
        .map(|t| t.same_settings(&all))
        .unwrap_or_default();
    let then = rows_of(a, latest_aa(&all, b, &settings));
    let seed = crate::inputs::mix64(a.run_id.len() as u64 ^ 0xC0);
    let rows: Vec<RegressRow> = then
        .iter()
        .map(|r| {
            let mut x = super::compare_row(r, b, seed, 0.0);
            if matches!(x.verdict.as_str(), "regression" | "improved") {
                x.detail = "unconfirmed (offline: no rerun)".into();
            }
            x
        })
        .collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## {task}: run {} ({}, {} on {}) -> run {} ({}, {} on {})\n",
        a.run_id,
        a.candidate,
        a.git
            .commit
            .as_deref()
            .map(|c| &c[..c.len().min(7)])
            .unwrap_or("?"),
        a.device.name,
        b.run_id,
        b.candidate,
        b.git
            .commit
            .as_deref()
            .map(|c| &c[..c.len().min(7)])
            .unwrap_or("?"),
        b.device.name
    );
    if a.device.name != b.device.name {
        let _ = writeln!(s, "The runs are on different cards: the changes mix the cards' difference with the code's.\n");
    }
    let head = |h: &crate::record::Headline| {
        h.device_geomean
            .map(|g| format!("{g:.4}x"))
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(
        s,
        "Headline speedup over the baseline: {} -> {}.\n",
        head(&a.headline),
        head(&b.headline)
    );
    s += "| row | kind | before µs | after µs | change [95% CI] | baseline change | threshold | verdict |\n|---|---|---|---|---|---|---|---|\n";
    for x in &rows {
        s += &super::output::row_line(x);
        if !x.detail.is_empty() {
            s.pop();
            let _ = write!(s, " {} |", x.detail);
        }
        s.push('\n');
    }
    let code = if rows.iter().any(|r| r.verdict == "regression") {
        exit::PERF_GATE
    } else {
        exit::OK
    };
    Ok((s, code))
}
