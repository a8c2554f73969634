//! `kpilot brief <task> [--json]`: everything an agent needs to write a candidate, in one document
//! with a versioned schema: what each entry point computes and its ABI, the rows (production
//! first) with their compulsory bytes and speed-of-light time on the card of the latest run, the
//! tolerances and the gate, the rules a candidate must keep, the best candidate per card with its
//! per-row standing, and the latest ncu bottleneck class per row.

use crate::error::Result;
use crate::record::Record;
use crate::task::rows::RowKind;
use crate::task::Task;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// The brief's JSON schema version: 2 added `best[].in_tree` (dropped versions are listed,
/// marked); 3 added each row's % of the stream reference (`best[].rows[4]`).
pub const BRIEF_SCHEMA: u32 = 3;

#[derive(Serialize)]
pub struct Brief {
    pub brief_schema: u32,
    pub task: String,
    pub description: String,
    pub abi: Abi,
    pub entries: Vec<Entry>,
    pub tolerances: BTreeMap<String, (f64, f64)>,
    pub gate: (f64, f64),
    pub trials: u32,
    pub cache: String,
    /// The card the speed-of-light times are for (the latest run's), with its copy bandwidth.
    pub card: Option<(String, f64, String)>,
    pub rows: Vec<BriefRow>,
    pub rules: Vec<(Vec<String>, String)>,
    pub host_rules: Vec<String>,
    pub best: Vec<Best>,
}

#[derive(Serialize)]
pub struct Abi {
    pub header: String,
    pub symbols: Vec<String>,
    pub statuses: Vec<String>,
}

#[derive(Serialize)]
pub struct Entry {
    pub name: String,
    pub reference: String,
    pub scalars: Vec<String>,
    /// (name, role, optional, dist)
    pub tensors: Vec<(String, String, bool, Option<String>)>,
}

#[derive(Serialize)]
pub struct BriefRow {
    pub name: String,
    pub kind: String,
    pub entry: String,
    pub bytes: u64,
    pub duplicate_of: Option<String>,
    /// bytes / the copy bandwidth of the latest run on the card, microseconds.
    pub speed_of_light_us: Option<f64>,
    /// The latest ncu digest's bottleneck class of each side (baseline, candidate), if any.
    pub ncu: Option<(String, String, String)>,
}

#[derive(Serialize)]
pub struct Best {
    pub card: String,
    pub candidate: String,
    /// Whether `tasks/<task>/candidates/<candidate>.cu` exists now: a dropped version keeps its
    /// runs in the ledger after its file left the tree (its source is in git history).
    pub in_tree: bool,
    pub run_id: String,
    pub headline: f64,
    /// (row, speedup over the baseline, verdict, % of copy bandwidth, % of the stream
    /// reference: the time a plain kernel moving the row's bytes takes / the candidate's)
    pub rows: Vec<BestRow>,
}

/// One production row of a best run: (row, speedup, verdict, % of copy, % of stream).
pub type BestRow = (String, f64, String, Option<f64>, Option<f64>);

pub fn build(root: &Path, task: &str) -> Result<Brief> {
    let t = Task::load(&root.join("tasks"), task)?;
    let path = root.join("ledger").join(format!("{task}.jsonl"));
    // A damaged ledger is an error here, not an empty history an agent would act on.
    let records: Vec<Record> = crate::ledger::load(&path)?
        .joined()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let runs: Vec<&crate::record::RunRecord> = records
        .iter()
        .filter_map(|r| match r {
            Record::Run(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect();
    let card = runs.iter().rev().find_map(|r| {
        r.copy_bandwidth
            .tbps
            .map(|b| (r.device.name.clone(), b, r.run_id.clone()))
    });
    let mut ncu: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for r in &records {
        if let Record::Ncu(n) = r {
            ncu.insert(
                n.row.clone(),
                (
                    n.baseline.bottleneck.clone(),
                    n.candidate_side.bottleneck.clone(),
                    n.digest.clone(),
                ),
            );
        }
    }
    let mut rows: Vec<BriefRow> = t
        .rows
        .iter()
        .map(|r| BriefRow {
            name: r.name.clone(),
            kind: match r.kind {
                RowKind::Production => "production",
                RowKind::Regression => "regression",
                RowKind::Rejection => "rejection",
            }
            .into(),
            entry: t.spec.entries[r.entry].name.clone(),
            bytes: r.bytes,
            duplicate_of: r.duplicate_of.clone(),
            speed_of_light_us: card
                .as_ref()
                .filter(|_| r.kind != RowKind::Rejection)
                .map(|(_, tbps, _)| r.bytes as f64 / (tbps * 1e12) * 1e6),
            ncu: ncu.get(&r.name).cloned(),
        })
        .collect();
    rows.sort_by_key(|r| match r.kind.as_str() {
        "production" => 0,
        "regression" => 1,
        _ => 2,
    });
    // The best evidence run per card and candidate of the task as it is now: what `ledger best`
    // admits (its baseline, rows and task.toml settings), no run it refuses.
    let of_now = t.of_now(runs.iter().copied());
    let best = crate::ledger_cmd::best_evidence(runs.iter().copied(), |r| of_now.admits(r));
    Ok(Brief {
        brief_schema: BRIEF_SCHEMA,
        task: task.to_string(),
        description: t.spec.task.description.clone(),
        abi: Abi {
            header: "kernels/kpilot_abi.h (documented in kernels/README.md)".into(),
            symbols: t
                .spec
                .entries
                .iter()
                .map(|e| format!("extern \"C\" int32_t kp_{}(kp_call *call, void *stream)", e.name))
                .collect(),
            statuses: vec![
                "KP_OK (0): computed; write the dispatch path into call->path".into(),
                "KP_NOT_SUPPORTED (1): refuses the input, writes nothing".into(),
                "KP_INVALID (2): malformed descriptor".into(),
                "KP_CUDA_ERROR (3): a launch failed".into(),
            ],
        },
        entries: t
            .spec
            .entries
            .iter()
            .map(|e| Entry {
                name: e.name.clone(),
                reference: e.reference.clone(),
                scalars: e.scalars.clone(),
                tensors: e
                    .tensors
                    .iter()
                    .map(|x| {
                        (
                            x.name.clone(),
                            format!("{:?}", x.role).to_lowercase(),
                            x.optional,
                            x.dist.clone(),
                        )
                    })
                    .collect(),
            })
            .collect(),
        tolerances: t
            .spec
            .tolerance
            .iter()
            .map(|(k, v)| (k.clone(), (v.atol, v.rtol)))
            .collect(),
        gate: (t.spec.gate.min_geomean, t.spec.gate.min_row_speedup),
        trials: t.spec.timing.trials,
        cache: t.spec.timing.cache.clone(),
        card,
        rows,
        rules: crate::scan::rules(),
        host_rules: vec![
            "launch only on the stream passed to the call".into(),
            "never synchronize, allocate or free: calls are captured into CUDA graphs".into(),
            "a call is repeatable and leaves inputs unchanged (unless the entry is in-place)".into(),
            "all work of a call ends on its stream before the next sample; work left running fails idle_after".into(),
            "refuse what you do not support with KP_NOT_SUPPORTED; never compute garbage".into(),
        ],
        best: best
            .into_iter()
            .map(|((card, cand), r)| Best {
                card,
                in_tree: t.candidate_path(&cand).exists(),
                candidate: cand,
                run_id: r.run_id.clone(),
                headline: r.headline.device_geomean.unwrap_or(f64::NAN),
                rows: r
                    .rows
                    .iter()
                    .filter(|x| x.production)
                    .filter_map(|x| {
                        let d = x.device.as_ref()?;
                        Some((
                            x.name.clone(),
                            d.speedup,
                            d.verdict.as_str().to_string(),
                            x.pct_of_copy_bandwidth,
                            x.pct_of_stream,
                        ))
                    })
                    .collect(),
            })
            .collect(),
    })
}

pub fn markdown(b: &Brief) -> String {
    let mut s = format!(
        "# Brief: {} (brief schema {})\n\n{}\n\n## ABI ({})\n\n",
        b.task, b.brief_schema, b.description, b.abi.header
    );
    for x in &b.abi.symbols {
        let _ = writeln!(s, "- `{x}`");
    }
    for x in &b.abi.statuses {
        let _ = writeln!(s, "- {x}");
    }
    s += "\n## Entry points\n\n";
    for e in &b.entries {
        let _ = writeln!(
            s,
            "- `{}` (reference `{}`), scalars [{}], tensors: {}",
            e.name,
            e.reference,
            e.scalars.join(", "),
            e.tensors
                .iter()
                .map(|(n, r, o, d)| format!(
                    "{n} ({r}{}{})",
                    if *o { ", optional" } else { "" },
                    d.as_ref().map(|d| format!(", {d}")).unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let _ = writeln!(
        s,
        "\n## Gate\n\nheadline CI lower bound > {}, every production row >= {} (point and CI upper bound), every correctness gate; {} trials, cache {}. Tolerances (atol, rtol): {}\n",
        b.gate.0,
        b.gate.1,
        b.trials,
        b.cache,
        b.tolerances
            .iter()
            .map(|(k, (a, r))| format!("{k} ({a}, {r})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    match &b.card {
        Some((c, t, id)) => {
            let _ = writeln!(
                s,
                "## Rows\n\nSpeed of light on {c}: bytes / {t:.2} TB/s (the copy bandwidth of run {id}).\n"
            );
        }
        None => s += "## Rows\n\nNo run yet: no speed of light.\n\n",
    }
    s += "| row | kind | entry | MB | speed of light µs | ncu (baseline / candidate) |\n|---|---|---|---|---|---|\n";
    for r in &b.rows {
        let _ = writeln!(
            s,
            "| {}{} | {} | {} | {:.2} | {} | {} |",
            r.name,
            r.duplicate_of
                .as_ref()
                .map(|d| format!(" (= {d})"))
                .unwrap_or_default(),
            r.kind,
            r.entry,
            r.bytes as f64 / 1e6,
            r.speed_of_light_us
                .map(|x| format!("{x:.2}"))
                .unwrap_or_else(|| "-".into()),
            r.ncu
                .as_ref()
                .map(|(a, c, _)| format!("{a} / {c}"))
                .unwrap_or_else(|| "-".into())
        );
    }
    s += "\n## Best so far (full runs of the current baseline)\n\n";
    if b.best.is_empty() {
        s += "none\n";
    }
    for x in &b.best {
        let _ = writeln!(
            s,
            "- {}{} on {}: {:.4}x (run {}); production rows: {}",
            x.candidate,
            if x.in_tree {
                ""
            } else {
                " (file removed; its source is in git history)"
            },
            x.card,
            x.headline,
            x.run_id,
            x.rows
                .iter()
                .map(|(n, sp, v, p, st)| format!(
                    "{n} {sp:.3}x {v}{}{}",
                    p.map(|p| format!(" {p:.0}% of copy")).unwrap_or_default(),
                    st.map(|p| format!(", {p:.0}% of stream"))
                        .unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    s += "\n## Rules\n\n";
    for r in &b.host_rules {
        let _ = writeln!(s, "- {r}");
    }
    s += "\nThe static scan refuses (with file:line) these calls in candidate sources:\n\n";
    for (names, why) in &b.rules {
        let _ = writeln!(s, "- {}: {why}", names.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::record::fixture::{root_with, run, spoilers};

    /// The brief's best per card and candidate is never a spoiled run, however fast.
    #[test]
    fn a_spoiled_run_is_never_the_briefs_best() {
        let task = "fuse_scale_shift";
        for (name, spoil) in spoilers() {
            let clean = run(task, "20260101T000001Z-clean", "v1", 1.1);
            let mut fast = run(task, "20260101T000002Z-spoiled", "v1", 2.0);
            spoil(&mut fast);
            let (d, _) = root_with(task, &[clean, fast.clone()]);
            let b = super::build(d.path(), task).unwrap();
            let best: Vec<(&str, f64)> = b
                .best
                .iter()
                .map(|x| (x.run_id.as_str(), x.headline))
                .collect();
            assert_eq!(best, vec![("20260101T000001Z-clean", 1.1)], "{name}");
            let (d, _) = root_with(task, &[fast]);
            assert!(
                super::build(d.path(), task).unwrap().best.is_empty(),
                "{name}"
            );
        }
    }
}
