//! The table a person reads at the end of a run.

use crate::gpu::DeviceInfo;
use crate::judge::Judged;
use crate::run::Collected;
use crate::task::rows::RowKind;
use crate::task::Task;
use std::fmt::Write;

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}"))
        .unwrap_or_else(|| "-".into())
}

pub fn table(task: &Task, j: &Judged, got: &Collected, dev: &DeviceInfo) -> String {
    let mut s = String::new();
    let copy = got.copy_tbps;
    let _ = writeln!(
        s,
        "\ndevice: {} ({} SMs, L2 {} MiB, driver {}), copy bandwidth {} TB/s",
        dev.name,
        dev.sm_count,
        dev.l2_bytes >> 20,
        dev.driver_version,
        opt(copy, 2)
    );
    let w = task
        .rows
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(10)
        .min(64);
    let _ = writeln!(
        s,
        "{:<w$}  {:<4} {:>9} {:>10} {:>10} {:>6} {:>6} {:>6}  {:<24} {:<7} {:>7}",
        "row",
        "kind",
        "MB",
        "base us",
        "cand us",
        "TB/s",
        "%copy",
        "%strm",
        "speedup [95% CI]",
        "verdict",
        "eager"
    );
    for rj in &j.rows {
        let row = &task.rows[rj.row];
        let kind = match row.kind {
            RowKind::Production => "prod",
            RowKind::Regression => "reg",
            RowKind::Rejection => "rej",
        };
        let name: String = row.name.chars().take(w).collect();
        let (speed, verdict) = match (&rj.device, rj.correct, rj.ran) {
            (_, _, false) => (
                row.duplicate_of
                    .as_ref()
                    .map(|d| format!("duplicate of {}", d.chars().take(12).collect::<String>()))
                    .unwrap_or_else(|| "not run".into()),
                String::new(),
            ),
            (_, false, _) => ("FAILED (see below)".to_string(), String::new()),
            (None, true, _) if row.kind == RowKind::Rejection => {
                ("refused by both".to_string(), String::new())
            }
            (None, true, _) => ("-".to_string(), String::new()),
            (Some(c), true, _) => (
                format!("{:.3}x [{:.3}, {:.3}]", c.speedup, c.ci_low, c.ci_high),
                c.verdict.as_str().to_string(),
            ),
        };
        let pct = rj.cand_tbps.zip(copy).map(|(t, c)| 100.0 * t / c);
        let pct_stream = rj.pct_of_stream();
        let _ = writeln!(
            s,
            "{:<w$}  {:<4} {:>9.2} {:>10} {:>10} {:>6} {:>6} {:>6}  {:<24} {:<7} {:>7}{}",
            name,
            kind,
            row.bytes as f64 / 1e6,
            opt(rj.base_device_us, 2),
            opt(rj.cand_device_us, 2),
            opt(rj.cand_tbps, 2),
            opt(pct, 1),
            opt(pct_stream, 1),
            speed,
            verdict,
            rj.eager
                .as_ref()
                .map(|c| format!("{:.3}x", c.speedup))
                .unwrap_or_else(|| "-".into()),
            if rj.impossible {
                "  IMPOSSIBLE BANDWIDTH".to_string()
            } else if rj.device.is_some() && !rj.cold {
                // Said per row: the record's cache mode alone would overstate it.
                format!(
                    "  (rotated {:.0} MB < 2x L2: partly from L2)",
                    rj.rotated_bytes as f64 / 1e6
                )
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(s, "\nus = median device time per launch (CUDA graph replay); eager = speedup of launch-inclusive time; TB/s and %copy for the candidate; %strm = the stream reference's time (a plain kernel moving the row's bytes over the same buffers) / the candidate's");
    let _ = writeln!(
        s,
        "headline (geomean over {} production rows): device {}  eager {}",
        j.production_rows,
        j.device_headline
            .map(|h| format!(
                "{:.4}x [95% CI {:.4}, {:.4}]",
                h.geomean, h.ci_low, h.ci_high
            ))
            .unwrap_or_else(|| "-".into()),
        j.eager_headline
            .map(|h| format!("{:.4}x [{:.4}, {:.4}]", h.geomean, h.ci_low, h.ci_high))
            .unwrap_or_else(|| "-".into())
    );
    let problems: Vec<String> = j
        .rows
        .iter()
        .flat_map(|rj| {
            rj.problems
                .iter()
                .map(move |p| format!("  {}: {p}", task.rows[rj.row].name))
        })
        .collect();
    if !problems.is_empty() {
        let _ = writeln!(s, "problems:");
        for p in problems.iter().take(40) {
            let _ = writeln!(s, "{p}");
        }
        if problems.len() > 40 {
            let _ = writeln!(
                s,
                "  ... and {} more (all are in the ledger record)",
                problems.len() - 40
            );
        }
    }
    let g = &task.spec.gate;
    if j.gate_pass && j.correctness_failures == 0 {
        let _ = writeln!(s, "gate: PASS (headline CI lower bound > {}, every production row's CI upper bound >= {}, every correctness gate on every row)", g.min_geomean, g.min_row_speedup);
    } else {
        let _ = writeln!(s, "gate: FAIL");
        for r in &j.reasons {
            let _ = writeln!(s, "  - {r}");
        }
    }
    s
}
