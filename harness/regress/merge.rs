//! `kpilot merge <task> <regress id>...`: the shard records of one nightly (CI matrix legs, Slurm
//! array tasks, indexed Jobs) as one: the same anchor everywhere, no row in two shards, and every
//! anchored row covered, or it says which are missing (exit 3).

use super::anchor;
use crate::error::{Error, Result};
use crate::record::{Record, RegressRecord};
use std::path::Path;

pub fn regress_records(root: &Path, task: &str) -> Result<Vec<RegressRecord>> {
    Ok(anchor::records(root, task)?
        .into_iter()
        .filter_map(|r| match r {
            Record::Regress(r) => Some(*r),
            _ => None,
        })
        .collect())
}

/// The merged record (rows of every shard, status the worst) and what is missing.
pub fn merge(root: &Path, task: &str, ids: &[String]) -> Result<(RegressRecord, Vec<String>)> {
    if ids.is_empty() {
        return Err(Error::Cli(
            "merge needs the regress record ids of the shards".into(),
        ));
    }
    let all = regress_records(root, task)?;
    let mut parts = Vec::new();
    for id in ids {
        let m: Vec<&RegressRecord> = all
            .iter()
            .filter(|r| r.run_id.starts_with(id.as_str()))
            .collect();
        match m.as_slice() {
            [one] => parts.push((*one).clone()),
            [] => {
                return Err(Error::Cli(format!(
                    "no regress record '{id}' in ledger/{task}.jsonl"
                )))
            }
            _ => {
                return Err(Error::Cli(format!(
                    "regress id '{id}' is ambiguous in ledger/{task}.jsonl"
                )))
            }
        }
    }
    let first = parts[0].clone();
    for p in &parts[1..] {
        if p.anchor_run_id != first.anchor_run_id || p.card != first.card {
            return Err(Error::Usage(format!(
                "regress {} compared with anchor {:?} on {}, regress {} with {:?} on {}: shards of one nightly share one anchor",
                first.run_id, first.anchor_run_id, first.card, p.run_id, p.anchor_run_id, p.card
            )));
        }
    }
    let mut merged = first.clone();
    merged.rows.clear();
    merged.run_ids.clear();
    merged.rerun_ids.clear();
    merged.shard = Some(format!("merged from {}", ids.join(", ")));
    for p in &parts {
        for r in &p.rows {
            if merged.rows.iter().any(|x| x.name == r.name) {
                return Err(Error::Usage(format!(
                    "row '{}' is in more than one shard (regress {}): shards must not overlap",
                    r.name, p.run_id
                )));
            }
            merged.rows.push(r.clone());
        }
        merged.run_ids.extend(p.run_ids.clone());
        merged.rerun_ids.extend(p.rerun_ids.clone());
    }
    let worst = [
        "incorrect",
        "regression",
        "missing",
        "no_anchor",
        "stale_anchor",
    ]
    .into_iter()
    .find(|s| parts.iter().any(|p| p.status == *s))
    .unwrap_or("ok");
    merged.status = worst.into();
    let mut missing = Vec::new();
    // Coverage is judged against the anchor the shards compared with, and nothing else.
    let a = anchor::load(root, &first.card, task)?.ok_or_else(|| {
        Error::Usage(format!(
            "no anchor for {} at {}: coverage cannot be checked",
            first.card,
            anchor::path(root, &first.card, task).display()
        ))
    })?;
    if first.anchor_run_id.as_deref() != Some(a.run_id.as_str()) {
        return Err(Error::Usage(format!(
            "the shards compared with anchor {:?}, the anchor now is {}: merge the shards of one nightly against the anchor they ran with",
            first.anchor_run_id, a.run_id
        )));
    }
    for r in &a.rows {
        if !merged.rows.iter().any(|x| x.name == r.name) {
            missing.push(r.name.clone());
        }
    }
    if !missing.is_empty() && merged.status == "ok" {
        merged.status = "missing".into();
    }
    if !missing.is_empty() {
        merged.note = format!(
            "{} anchored row(s) in no shard: {}",
            missing.len(),
            missing.join(", ")
        );
    }
    Ok((merged, missing))
}
