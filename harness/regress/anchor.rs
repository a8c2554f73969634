//! Anchors: per task and card model, the accepted run `regress` compares against, kept in the
//! repository at anchors/<card>/<task>.toml and reviewed like code. `kpilot accept` writes one.

use crate::error::{Error, Result};
use crate::record::{Distrust, Record, RunRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    pub task: String,
    /// The card model, as the driver names it (e.g. "NVIDIA H200").
    pub card: String,
    pub run_id: String,
    pub commit: Option<String>,
    pub candidate: String,
    pub reason: String,
    pub accepted_at: String,
    /// The A/A run the per-row noise floors come from ("" when the card had none).
    pub aa_run_id: String,
    /// Hashes of what the accepted run ran: a regress run of other rows or another baseline is
    /// refused until a new anchor is accepted.
    pub rows_sha256: String,
    pub baseline_sha256: String,
    pub candidate_sha256: String,
    /// Every project file the candidate's build read (the candidate, what it #includes, the
    /// baseline it wraps), from the run's record: `regress` names any that changed since, not
    /// only the candidate's own file. Empty in anchors accepted before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_files: Vec<crate::record::IncludedFile>,
    #[serde(rename = "row")]
    pub rows: Vec<AnchorRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnchorRow {
    pub name: String,
    pub production: bool,
    /// The candidate's per-launch device time of each sample, microseconds.
    pub device_us: Vec<f64>,
    /// The candidate's per-launch launch-inclusive time of each sample, microseconds.
    pub eager_us: Vec<f64>,
    /// The baseline's per-launch device time of each sample (to tell a card or driver change,
    /// which moves both, from a candidate change).
    pub baseline_device_us: Vec<f64>,
    /// Half-width of the row's 95% CI in the A/A run, in ln units (0 when there was none).
    pub aa_half_width: f64,
    /// Seconds the row took in the accepted run (to balance shards).
    pub seconds: f64,
}

/// The card model as a folder name: "NVIDIA H200" -> "nvidia-h200".
pub fn card_slug(card: &str) -> String {
    let mut s = String::new();
    for c in card.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_string()
}

/// The files of `files` whose content differs from the recorded hash now (a missing file counts),
/// joined for a message; None when all are unchanged.
pub fn changed_files(root: &Path, files: &[crate::record::IncludedFile]) -> Option<String> {
    let changed: Vec<&str> = files
        .iter()
        .filter(|f| {
            std::fs::read(root.join(&f.path))
                .map(|b| crate::task::sha256_hex(&b) != f.sha256)
                .unwrap_or(true)
        })
        .map(|f| f.path.as_str())
        .collect();
    (!changed.is_empty()).then(|| changed.join(", "))
}

pub fn path(root: &Path, card: &str, task: &str) -> PathBuf {
    root.join("anchors")
        .join(card_slug(card))
        .join(format!("{task}.toml"))
}

pub fn load(root: &Path, card: &str, task: &str) -> Result<Option<Anchor>> {
    let p = path(root, card, task);
    let Ok(text) = std::fs::read_to_string(&p) else {
        return Ok(None);
    };
    toml::from_str(&text).map(Some).map_err(|e| {
        Error::input(
            &p,
            e.span()
                .map(|s| crate::error::line_of(&text, s.start))
                .unwrap_or(0),
            e.message().to_string(),
        )
    })
}

/// Every record of a task's ledger, typed; a line that is not one is named by file and line.
pub fn records(root: &Path, task: &str) -> Result<Vec<Record>> {
    let p = root.join("ledger").join(format!("{task}.jsonl"));
    let parts = crate::ledger::load(&p)?;
    if parts.0.is_empty() {
        return Err(Error::Usage(format!(
            "cannot read {}: no such file, and no sealed segments in {}",
            p.display(),
            crate::ledger::archive_dir(&p).display()
        )));
    }
    parts
        .lines()
        .filter(|(_, _, l)| !l.trim().is_empty())
        .map(|(f, n, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::input(f, n, format!("not a ledger record: {e}")))
        })
        .collect()
}

/// Every run record of a task's ledger.
pub fn runs(root: &Path, task: &str) -> Result<Vec<RunRecord>> {
    Ok(records(root, task)?
        .into_iter()
        .filter_map(|r| match r {
            Record::Run(r) => Some(*r),
            _ => None,
        })
        .collect())
}

fn half_width(c: &crate::stats::Comparison) -> f64 {
    if c.ci_low > 0.0 && c.ci_high > 0.0 {
        (c.ci_high.ln() - c.ci_low.ln()) / 2.0
    } else {
        0.0
    }
}

/// The latest A/A run that can stand as the run's noise floor: of the same task and card, with
/// the same rows, baseline and task.toml settings (`settings`: the task.toml hashes that count as
/// today's, `Task::same_settings`; two hashes in it are the same settings, any other only
/// itself), and trustworthy (`RunRecord::distrust`): a partial, quick, deviating, incorrect or
/// disturbed A/A run would set a wrong threshold for every row of the anchor.
pub fn latest_aa<'a>(
    all: &'a [RunRecord],
    run: &RunRecord,
    settings: &BTreeSet<String>,
) -> Option<&'a RunRecord> {
    let same_settings = |a: &str, b: &str| a == b || (settings.contains(a) && settings.contains(b));
    all.iter().rev().find(|r| {
        r.aa && r.task == run.task
            && r.device.name == run.device.name
            && r.hashes.rows == run.hashes.rows
            && r.hashes.baseline == run.hashes.baseline
            && same_settings(&r.hashes.task_toml, &run.hashes.task_toml)
            && r.is_trustworthy()
    })
}

/// A run's timed rows as anchor rows, with each row's A/A half-width from `aa`.
pub fn rows_of(run: &RunRecord, aa: Option<&RunRecord>) -> Vec<AnchorRow> {
    let mut rows = Vec::new();
    for r in run.rows.iter().filter(|r| r.ran) {
        let Some(c) = &r.candidate else { continue };
        let (Some(d), Some(e)) = (&c.device_us, &c.eager_us) else {
            continue;
        };
        let aa_half_width = aa
            .and_then(|a| a.rows.iter().find(|x| x.name == r.name))
            .and_then(|x| x.device.as_ref())
            .map(half_width)
            .unwrap_or(0.0);
        rows.push(AnchorRow {
            name: r.name.clone(),
            production: r.production,
            device_us: d.samples.clone(),
            eager_us: e.samples.clone(),
            baseline_device_us: r
                .baseline
                .as_ref()
                .and_then(|b| b.device_us.as_ref())
                .map(|x| x.samples.clone())
                .unwrap_or_default(),
            aa_half_width,
            seconds: r.seconds.unwrap_or(0.0),
        });
    }
    rows
}

/// The one run whose id starts with `id` in a task's ledger.
pub fn find_run<'a>(all: &'a [RunRecord], task: &str, id: &str) -> Result<&'a RunRecord> {
    let matches: Vec<&RunRecord> = all.iter().filter(|r| r.run_id.starts_with(id)).collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::Cli(format!("no run '{id}' in ledger/{task}.jsonl"))),
        _ => Err(Error::Cli(format!(
            "run id '{id}' is ambiguous in ledger/{task}.jsonl ({} runs)",
            matches.len()
        ))),
    }
}

/// Why a run of the candidate cannot be an anchor, in words with what to do; empty when it can.
/// The one trust test (`RunRecord::distrust`), with --allow-partial waiving only `--row`.
fn why_not_an_anchor(run: &RunRecord, allow_partial: bool) -> Vec<String> {
    run.distrust()
        .into_iter()
        .filter_map(|d| match d {
            Distrust::Partial(_) if allow_partial => None,
            Distrust::Partial(n) => Some(format!(
                "it timed only {n} row(s) (--row): accept a full run, or pass --allow-partial to anchor just those rows"
            )),
            Distrust::Quick => Some("it is a --quick run: accept a full run".into()),
            Distrust::Deviations(d) => Some(format!(
                "it deviated from the task's settings ({}): regress times with the task's settings, so it would compare different measurements",
                d.join("; ")
            )),
            other => Some(format!(
                "{other}: an anchor must be correct everywhere, from workers nothing disturbed"
            )),
        })
        .collect()
}

/// `kpilot accept <task> --run <id> --reason "..."`: writes the anchor of the run's card.
pub fn accept(
    root: &Path,
    task: &str,
    run_id: &str,
    reason: &str,
    allow_partial: bool,
) -> Result<PathBuf> {
    if reason.trim().is_empty() {
        return Err(Error::Cli(
            "accept needs --reason \"...\": say why this run is the new reference".into(),
        ));
    }
    let t = crate::task::Task::load(&root.join("tasks"), task)?;
    let all = runs(root, task)?;
    let run = find_run(&all, task, run_id)?;
    if run.aa {
        return Err(Error::Cli(format!(
            "run {} is an A/A run: accept a run of the candidate",
            run.run_id
        )));
    }
    let why = why_not_an_anchor(run, allow_partial);
    if !why.is_empty() {
        return Err(Error::Cli(format!(
            "run {} cannot be an anchor: {}",
            run.run_id,
            why.join("; ")
        )));
    }
    // The anchor pins what regress compares with: a run of another baseline, row set or
    // task.toml (tolerances, gate, timing) measured something else. The same test as `ledger
    // best` (`Task::of_now`); bad input (exit 3), like any task file changed since frozen.
    if let Some(d) = t.of_now(&all).why_not(run) {
        return Err(Error::Usage(format!(
            "run {} is not of {task} as it is now: its {} is {}, the task's now is {}{}: accept a run of the task as it is",
            run.run_id,
            d.field,
            d.run,
            d.now,
            if d.field == "hashes.task_toml" {
                " (nor today's with another default-candidate line)"
            } else {
                ""
            }
        )));
    }
    let card = run.device.name.clone();
    let aa = latest_aa(&all, run, &t.same_settings(&all));
    let rows = rows_of(run, aa);
    if rows.is_empty() {
        return Err(Error::Cli(format!(
            "run {} timed no row: nothing to anchor",
            run.run_id
        )));
    }
    let anchor = Anchor {
        task: task.to_string(),
        card: card.clone(),
        run_id: run.run_id.clone(),
        commit: run.git.commit.clone(),
        candidate: run.candidate.clone(),
        reason: reason.to_string(),
        accepted_at: crate::ledger::utc_now(),
        aa_run_id: aa.map(|a| a.run_id.clone()).unwrap_or_default(),
        rows_sha256: run.hashes.rows.clone(),
        baseline_sha256: run.hashes.baseline.clone(),
        candidate_sha256: run.hashes.candidate.clone(),
        candidate_files: run
            .build
            .includes
            .as_ref()
            .map(|i| i.candidate.project.clone())
            .unwrap_or_default(),
        rows,
    };
    let p = path(root, &card, task);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    let text = format!(
        "# Written by `kpilot accept`; reviewed like code. `kpilot regress` on a {card} compares\n# every row with this run.\n{}",
        toml::to_string(&anchor).map_err(|e| Error::Internal(e.to_string()))?
    );
    std::fs::write(&p, text).map_err(|e| Error::io(format!("cannot write {}", p.display()), e))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_files_names_an_edited_or_missing_file_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(d.path().join(name), text).unwrap();
        write("parent.cu", "int a;");
        write("child.cu", "#include \"parent.cu\"");
        let rec = |name: &str, text: &str| crate::record::IncludedFile {
            path: name.to_string(),
            sha256: crate::task::sha256_hex(text.as_bytes()),
        };
        let files = vec![
            rec("child.cu", "#include \"parent.cu\""),
            rec("parent.cu", "int a;"),
        ];
        assert_eq!(changed_files(d.path(), &files), None);
        write("parent.cu", "int b;");
        assert_eq!(
            changed_files(d.path(), &files).as_deref(),
            Some("parent.cu")
        );
        std::fs::remove_file(d.path().join("child.cu")).unwrap();
        assert_eq!(
            changed_files(d.path(), &files).as_deref(),
            Some("child.cu, parent.cu")
        );
    }

    #[test]
    fn the_noise_floor_comes_only_from_a_trustworthy_aa_run_of_the_same_task_as_it_is() {
        use crate::record::fixture::{run, spoilers};
        let aa = |id: &str| run("t", id, crate::run::AA_CANDIDATE, 1.0);
        let cand = run("t", "9", "v1", 1.2);
        let settings: BTreeSet<String> = ["toml".to_string(), "toml-v0".to_string()].into();
        let pick = |all: &[RunRecord]| latest_aa(all, &cand, &settings).map(|r| r.run_id.clone());
        let good = aa("1");
        assert_eq!(pick(&[good.clone(), cand.clone()]).as_deref(), Some("1"));
        // Every way an A/A run can be spoiled, and every way it can measure something else: the
        // later, spoiled or foreign A/A run is passed over for the earlier good one.
        let mut others: Vec<(&str, RunRecord)> = spoilers()
            .into_iter()
            .map(|(name, spoil)| {
                let mut r = aa("2");
                spoil(&mut r);
                (name, r)
            })
            .collect();
        let mut foreign = |name: &'static str, f: fn(&mut RunRecord)| {
            let mut r = aa("2");
            f(&mut r);
            others.push((name, r));
        };
        foreign("another task", |r| r.task = "other".into());
        foreign("another card", |r| r.device.name = "NVIDIA H100".into());
        foreign("other rows", |r| r.hashes.rows = "rows2".into());
        foreign("another baseline", |r| r.hashes.baseline = "base2".into());
        foreign("other settings", |r| r.hashes.task_toml = "toml2".into());
        foreign("not A/A", |r| r.aa = false);
        for (name, later) in &others {
            assert_eq!(
                pick(&[good.clone(), later.clone(), cand.clone()]).as_deref(),
                Some("1"),
                "{name}"
            );
            assert_eq!(pick(&[later.clone(), cand.clone()]), None, "{name}");
        }
        // A task.toml that differs only in its default candidate line is the same settings.
        let mut renamed = aa("3");
        renamed.hashes.task_toml = "toml-v0".into();
        assert_eq!(pick(&[good, renamed]).as_deref(), Some("3"));
    }

    #[test]
    fn accept_refuses_every_untrustworthy_run_and_allow_partial_waives_only_the_row_filter() {
        use crate::record::fixture::{run, spoilers};
        assert_eq!(
            why_not_an_anchor(&run("t", "1", "v1", 1.2), false),
            Vec::<String>::new()
        );
        for (name, spoil) in spoilers() {
            let mut r = run("t", "1", "v1", 1.2);
            spoil(&mut r);
            assert_eq!(why_not_an_anchor(&r, false).len(), 1, "{name}");
            let waived = why_not_an_anchor(&r, true);
            assert_eq!(waived.is_empty(), name == "partial", "{name}: {waived:?}");
        }
    }

    #[test]
    fn card_names_become_folder_names() {
        assert_eq!(card_slug("NVIDIA H200"), "nvidia-h200");
        assert_eq!(card_slug("NVIDIA H100 80GB HBM3"), "nvidia-h100-80gb-hbm3");
        assert_eq!(card_slug("  weird//name "), "weird-name");
    }

    /// A recorded run of the anchored candidate of `task` (the repository's H200 anchor's run),
    /// with its timing samples, to accept in a scratch root.
    fn anchored_run(task: &str) -> RunRecord {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let a = load(repo, "NVIDIA H200", task).unwrap().unwrap();
        runs(repo, task)
            .unwrap()
            .into_iter()
            .find(|r| r.run_id == a.run_id)
            .unwrap()
    }

    /// A run made under other task.toml settings (a looser tolerance, another gate or timing),
    /// other rows or another baseline cannot be pinned as the anchor: refused as bad input (exit
    /// 3) naming the run, the field and both hashes, and no anchor is written. A run whose
    /// task.toml differed only in its default-candidate line is accepted.
    #[test]
    fn accept_refuses_a_run_of_other_settings_rows_or_baseline() {
        use crate::record::fixture::{elsewhere, root_with_edited};
        let task = "causal_conv3d_cat_pad";
        let run = anchored_run(task);
        for (name, move_it) in elsewhere() {
            let (d, t) =
                root_with_edited(task, std::slice::from_ref(&run), |_, r, t| move_it(r, t));
            let e = accept(d.path(), task, &run.run_id, "x", false).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::INPUT, "{name}: {e}");
            let msg = e.to_string();
            let (field, theirs, ours) = match name {
                "other rows" => ("hashes.rows", "an earlier row set", &t.hashes.rows),
                "other task.toml settings" => (
                    "hashes.task_toml",
                    "a looser tolerance",
                    &t.hashes.task_toml,
                ),
                _ => ("hashes.baseline", "an older baseline", &t.hashes.baseline),
            };
            for want in [run.run_id.as_str(), field, theirs, ours.as_str()] {
                assert!(msg.contains(want), "{name}: {want} in {msg}");
            }
            assert!(!path(d.path(), "NVIDIA H200", task).exists(), "{name}");
        }
        // The same run as recorded, and with task.toml naming another default candidate: pinned.
        let (d, _) = root_with_edited(task, std::slice::from_ref(&run), |_, _, _| {});
        accept(d.path(), task, &run.run_id, "x", false).unwrap();
        let (d, _) = root_with_edited(task, std::slice::from_ref(&run), |_, r, t| {
            let other = t.task_toml_shas_with_candidates(&["v1".to_string()]);
            assert_ne!(other[0], t.hashes.task_toml, "today's default is not v1");
            r.hashes.task_toml = other[0].clone();
        });
        let p = accept(d.path(), task, &run.run_id, "x", false).unwrap();
        let a: Anchor = toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        assert_eq!(a.run_id, run.run_id);
    }
}
