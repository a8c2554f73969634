//! `kpilot ncu <task> --row <row> [--candidate NAME]`: Nsight Compute on exactly one row's calls
//! of both sides, side by side. Each side runs in its own `kpilot ncu-probe` process under ncu
//! (built with the task's one flag line, called the way the worker calls it, warm-up launches and
//! kpilot's support kernels outside the profiled range). The raw CSVs and a markdown digest go to
//! ncu/<task>/, and an `ncu` record in the task's ledger points at them.

pub mod csv;
pub mod digest;

use crate::error::{Error, Result};
use crate::record::{Distrust, Hashes, NcuRecord, Record, RunRecord};
use crate::run;
use crate::task::Task;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The metric set, one per line (ncu/metrics.txt, built in).
pub const METRICS: &str = include_str!("../../ncu/metrics.txt");

pub fn metric_list() -> String {
    METRICS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(",")
}

pub struct NcuOptions {
    pub root: PathBuf,
    pub task: String,
    pub row: String,
    pub candidate: Option<String>,
    pub device: i32,
    /// Profiled calls per side (after warm-up).
    pub calls: u32,
    pub json: bool,
}

/// ncu: KPILOT_NCU, else `ncu` on PATH, else /usr/local/cuda/bin/ncu; its version line.
fn find_ncu() -> Result<(PathBuf, String)> {
    let mut tries: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("KPILOT_NCU") {
        tries.push(PathBuf::from(p));
    }
    tries.push(PathBuf::from("ncu"));
    tries.push(PathBuf::from("/usr/local/cuda/bin/ncu"));
    for p in &tries {
        if let Ok(o) = Command::new(p).arg("--version").output() {
            if o.status.success() {
                let v = String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                return Ok((p.clone(), v));
            }
        }
    }
    Err(Error::Environment(format!(
        "Nsight Compute (ncu) not found: tried {} (set KPILOT_NCU to its path)",
        tries
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The harness's device time per launch of this row on this card, for each side, from the latest
/// run of the same candidate that timed the row and that stands: it measured the task as it is
/// now (`Task::of_now`: its baseline, rows and task.toml settings, the test `ledger best`,
/// `lineage`, `brief` and `accept` use) and can be trusted (`RunRecord::distrust`, a partial run
/// excepted: `--row` only chose which rows ran, and this row was one of them). With that run's id
/// and commit; when none stands, why, in words, naming the latest run that timed the row and was
/// passed over. `ledger` is the task's ledger text; lines that are no run record are skipped.
fn harness_times(
    task: &Task,
    ledger: &str,
    cand: &str,
    cand_sha: &str,
    card: &str,
    row: &str,
) -> std::result::Result<digest::HarnessTimes, String> {
    let records: Vec<Record> = ledger
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let runs: Vec<&RunRecord> = records
        .iter()
        .filter_map(|r| match r {
            Record::Run(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect();
    let of_now = task.of_now(runs.iter().copied());
    let why_not = |r: &RunRecord| -> Option<String> {
        let short = |h: &str| h.chars().take(12).collect::<String>();
        // The same name is not the same kernel: an edited candidate file is another candidate.
        if r.hashes.candidate != cand_sha {
            return Some(format!(
                "it timed another version of {cand}: its candidate sha256 {} is not today's {}",
                short(&r.hashes.candidate),
                short(cand_sha)
            ));
        }
        if let Some(n) = of_now.why_not(r) {
            return Some(format!(
                "it is not of the task as it is now: its {} {} is not today's {}",
                n.field,
                short(&n.run),
                short(&n.now)
            ));
        }
        let distrust: Vec<String> = r
            .distrust()
            .iter()
            .filter(|d| !matches!(d, Distrust::Partial(_)))
            .map(ToString::to_string)
            .collect();
        (!distrust.is_empty()).then(|| format!("it cannot be trusted: {}", distrust.join("; ")))
    };
    let timed: Vec<(&RunRecord, [f64; 2])> = runs
        .iter()
        .filter(|r| r.candidate == cand && r.device.name == card)
        .filter_map(|r| {
            let x = r.rows.iter().find(|x| x.name == row)?;
            let us = |s: &Option<crate::record::SideRecord>| {
                s.as_ref()?.device_us.as_ref().map(|d| d.median)
            };
            Some((*r, [us(&x.baseline)?, us(&x.candidate)?]))
        })
        .collect();
    if let Some((r, device_us)) = timed.iter().rev().find(|(r, _)| why_not(r).is_none()) {
        return Ok(digest::HarnessTimes {
            run_id: r.run_id.clone(),
            commit: r.git.commit.clone(),
            dirty: r.git.dirty.unwrap_or(false),
            device_us: *device_us,
        });
    }
    Err(match timed.last() {
        None => format!("no run of {cand} on {card} in the ledger timed row {row}"),
        Some((latest, _)) => format!(
            "none of the {} run(s) of {cand} on {card} that timed row {row} is of the task as it is now (its baseline, rows and task.toml settings) and trustworthy; the latest, run {}, is left out: {}",
            timed.len(),
            latest.run_id,
            why_not(latest).unwrap_or_default()
        ),
    })
}

pub fn run(o: &NcuOptions) -> Result<i32> {
    let task = Task::load(&o.root.join("tasks"), &o.task)?;
    crate::freeze::verify(&task)?;
    let row = task.rows.iter().find(|r| r.name == o.row).ok_or_else(|| {
        Error::Cli(format!(
            "--row '{}' names no row of task '{}'",
            o.row,
            task.name()
        ))
    })?;
    if row.kind == crate::task::rows::RowKind::Rejection {
        return Err(Error::Cli(format!(
            "--row '{}' is a rejection row: both sides refuse it, there is nothing to profile",
            row.name
        )));
    }
    if o.calls == 0 {
        return Err(Error::Cli("--calls 0: profile at least one call".into()));
    }
    let cand = o
        .candidate
        .clone()
        .unwrap_or_else(|| task.spec.task.candidate.clone());
    crate::scan::check_name(&task, &cand)?;
    let cand_path = task.candidate_path(&cand);
    if !cand_path.exists() {
        return Err(Error::Cli(format!(
            "no candidate '{cand}' ({} does not exist)",
            cand_path.display()
        )));
    }
    crate::scan::require_clean(&task, &cand)?;
    let (ncu, ncu_version) = find_ncu()?;
    let arch = match task.spec.build.arch.as_str() {
        "native" => run::probe_arch(o.device)?,
        explicit => {
            run::probe_arch(o.device)?;
            crate::nvcc::Arch(explicit.to_string())
        }
    };
    let say = |s: &str| eprintln!("{s}");
    let built = run::build_all(&o.root, &task, &cand, &cand_path, arch, &say)?;
    let card = {
        let gpu = crate::gpu::Gpu::open(o.device)?;
        gpu.info.name.clone()
    };
    let now = crate::ledger::utc_now();
    let run_id = format!(
        "{}-{:08x}",
        now.replace([':', '-'], ""),
        (crate::inputs::mix64(run::fresh_seed()) >> 32) as u32
    );
    let rel_dir = PathBuf::from("ncu").join(task.name());
    let dir = o.root.join(&rel_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let stem = format!("{}__{run_id}", file_safe(&row.name));
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find the kpilot binary", e))?;
    let metrics = metric_list();
    let method = format!(
        "{} --csv --print-units base --profile-from-start off --clock-control none --target-processes all --metrics <ncu/metrics.txt> --log-file <csv> kpilot ncu-probe (one side; {} warm-up call(s), {} profiled call(s))",
        ncu.display(),
        2,
        o.calls
    );
    let mut digests = Vec::new();
    let mut csvs = Vec::new();
    for (side, so) in [
        ("baseline", &built.baseline),
        ("candidate", &built.candidate),
    ] {
        let rel_csv = rel_dir.join(format!("{stem}__{side}.csv"));
        let csv_path = o.root.join(&rel_csv);
        say(&format!("ncu: profiling the {side} on row {}", row.name));
        let out = Command::new(&ncu)
            .args([
                "--csv",
                "--print-units",
                "base",
                "--profile-from-start",
                "off",
                "--clock-control",
                "none",
                "--target-processes",
                "all",
                "--metrics",
                &metrics,
                "--log-file",
            ])
            .arg(&csv_path)
            .arg(&exe)
            .arg("--root")
            .arg(&o.root)
            .arg("ncu-probe")
            .arg("--task-dir")
            .arg(&task.dir)
            .args(["--row", &row.name, "--side", side])
            .arg("--support")
            .arg(&built.support)
            .arg("--so")
            .arg(so)
            .args([
                "--device",
                &o.device.to_string(),
                "--calls",
                &o.calls.to_string(),
            ])
            .output()
            .map_err(|e| Error::io(format!("cannot run {}", ncu.display()), e))?;
        let log = std::fs::read_to_string(&csv_path).unwrap_or_default();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let errors: Vec<&str> = log
            .lines()
            .chain(stderr.lines())
            .filter(|l| l.contains("==ERROR=="))
            .collect();
        if !errors.is_empty() || !out.status.success() {
            let all = format!("{}\n{stderr}", errors.join("\n"));
            if all.contains("ERR_NVGPUCTRPERM") || all.contains("permission") {
                return Err(Error::Environment(format!(
                    "ncu cannot read the GPU's performance counters here (ERR_NVGPUCTRPERM): they need admin rights or NVreg_RestrictProfilingToAdminUsers=0\n{}",
                    errors.join("\n")
                )));
            }
            return Err(Error::Internal(format!(
                "ncu failed on the {side} of row '{}' (exit {:?}); its log is {}:\n{}",
                row.name,
                out.status.code(),
                csv_path.display(),
                all.trim()
            )));
        }
        let launches = csv::parse(&log)
            .map_err(|e| Error::Internal(format!("{}: {e}", csv_path.display())))?;
        digests.push(digest::digest(&launches, o.calls, row.bytes));
        csvs.push(rel_csv.display().to_string());
    }
    let cand_src = std::fs::read(&cand_path)
        .map_err(|e| Error::io(format!("cannot read {}", cand_path.display()), e))?;
    let ledger_text =
        // A ledger damaged while ncu ran costs the digest its harness times, not its record.
        crate::ledger::load(&o.root.join("ledger").join(format!("{}.jsonl", task.name())))
            .map(|p| p.joined())
            .unwrap_or_default();
    let harness = harness_times(
        &task,
        &ledger_text,
        &cand,
        &crate::task::sha256_hex(&cand_src),
        &card,
        &row.name,
    );
    let title = format!(
        "{} row {} on {}: baseline vs {cand} (ncu run {run_id})",
        task.name(),
        row.name,
        card
    );
    let md = digest::markdown(
        &title,
        row.bytes,
        harness.as_ref().map_err(String::as_str),
        &[("baseline", &digests[0]), (cand.as_str(), &digests[1])],
    );
    let rel_md = rel_dir.join(format!("{stem}.md"));
    std::fs::write(o.root.join(&rel_md), &md)
        .map_err(|e| Error::io(format!("cannot write {}", rel_md.display()), e))?;
    let record = NcuRecord {
        schema: crate::ledger::SCHEMA,
        run_id: run_id.clone(),
        time_utc: now,
        task: task.name().to_string(),
        row: row.name.clone(),
        candidate: cand.clone(),
        card,
        git: crate::judge::git_info(&o.root),
        ncu_version,
        method,
        digest: rel_md.display().to_string(),
        csv: [csvs[0].clone(), csvs[1].clone()],
        compulsory_bytes: row.bytes,
        harness_run_id: harness.as_ref().ok().map(|h| h.run_id.clone()),
        baseline: digests[0].clone(),
        candidate_side: digests[1].clone(),
        hashes: Hashes {
            task_toml: task.hashes.task_toml.clone(),
            rows: task.hashes.rows.clone(),
            baseline: task.hashes.baseline.clone(),
            candidate: crate::task::sha256_hex(&cand_src),
        },
    };
    let ledger_path = o.root.join("ledger").join(format!("{}.jsonl", task.name()));
    crate::ledger::append(&ledger_path, &Record::Ncu(Box::new(record.clone())))?;
    if o.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&Record::Ncu(Box::new(record)))
                .map_err(|e| Error::Internal(e.to_string()))?
        );
    } else {
        crate::out!("{md}");
        crate::outln!("\nrecorded: {} (ncu run {run_id})", ledger_path.display());
    }
    Ok(crate::error::exit::OK)
}

/// The probe's command line, parsed by main.rs and handed to `worker::probe`.
pub fn probe(
    task_dir: &Path,
    row: &str,
    side: &str,
    support: &Path,
    so: &Path,
    device: i32,
    calls: u32,
) -> Result<i32> {
    let side: &'static str = if side == "baseline" {
        "baseline"
    } else {
        "candidate"
    };
    crate::worker::probe::run(&crate::worker::probe::Probe {
        task_dir,
        row,
        support_so: support,
        so,
        side,
        device,
        warmups: 2,
        launches: calls,
    })?;
    Ok(crate::error::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::record::fixture::{elsewhere, root_with_edited, run, spoilers};

    /// `run`'s fixture with row r timed: [baseline, candidate] median device µs.
    fn timed(id: &str, cand: &str, card: &str, us: [f64; 2]) -> RunRecord {
        let side = |m: f64| crate::record::SideRecord {
            status: "ok".into(),
            dispatch_path: String::new(),
            gates: vec![],
            lingering_us: 0.0,
            max_abs_err: 0.0,
            max_rel_err: 0.0,
            checked: crate::record::Checked {
                correctness_trial: Default::default(),
                timed_outputs: Default::default(),
            },
            device_us: Some(crate::record::Dist {
                median: m,
                p10: m,
                p90: m,
                samples: vec![m],
            }),
            eager_us: None,
            achieved_tbps: None,
        };
        let mut r = run("fuse_scale_shift", id, cand, 1.1);
        r.device.name = card.into();
        r.git.commit = Some(format!("{id}-commit"));
        r.rows[0].baseline = Some(side(us[0]));
        r.rows[0].candidate = Some(side(us[1]));
        r
    }

    /// What `harness_times` picks for v1's row r on the H200 from a scratch ledger of `runs`
    /// (each given the hashes of fuse_scale_shift as it is, then `edit`ed).
    fn pick(
        runs: &[RunRecord],
        edit: impl Fn(usize, &mut RunRecord, &Task),
    ) -> std::result::Result<digest::HarnessTimes, String> {
        let (d, t) = root_with_edited("fuse_scale_shift", runs, edit);
        let ledger =
            std::fs::read_to_string(d.path().join("ledger/fuse_scale_shift.jsonl")).unwrap();
        harness_times(&t, &ledger, "v1", "cand", "NVIDIA H200", "r")
    }

    /// The times beside ncu's come from the latest run of the candidate on the card that timed the
    /// row, of the task as it is now and trustworthy (a partial run that timed the row counts),
    /// and that run is named with its commit. Another candidate's or card's later run, or a later
    /// run of other rows, settings or baseline, or one spoiled any way but by `--row`, is passed
    /// over; when nothing stands the digest is told why, naming the latest run left out.
    #[test]
    fn harness_times_come_from_the_latest_run_of_the_task_now_that_can_be_trusted() {
        let mut partial = timed("2-mine", "v1", "NVIDIA H200", [10.0, 8.0]);
        partial.row_filter = vec!["r".into()];
        let base = vec![
            timed("1-old", "v1", "NVIDIA H200", [10.0, 9.0]),
            partial,
            timed("3-other-cand", "v2", "NVIDIA H200", [10.0, 1.0]),
            timed("4-other-card", "v1", "NVIDIA H100", [20.0, 2.0]),
            run("fuse_scale_shift", "5-untimed", "v1", 1.1),
        ];
        let want = digest::HarnessTimes {
            run_id: "2-mine".into(),
            commit: Some("2-mine-commit".into()),
            dirty: false,
            device_us: [10.0, 8.0],
        };
        assert_eq!(pick(&base, |_, _, _| {}), Ok(want.clone()));
        let late = timed("6-late", "v1", "NVIDIA H200", [10.0, 0.5]);
        let with_late = || {
            base.iter()
                .cloned()
                .chain([late.clone()])
                .collect::<Vec<_>>()
        };
        for (name, move_it) in elsewhere() {
            let got = pick(&with_late(), |i, r, t| {
                if i == 5 {
                    move_it(r, t)
                }
            });
            assert_eq!(got, Ok(want.clone()), "{name}");
            let why = pick(std::slice::from_ref(&late), |_, r, t| move_it(r, t)).unwrap_err();
            assert!(
                why.starts_with("none of the 1 run(s) of v1 on NVIDIA H200 that timed row r is of the task as it is now")
                    && why.contains("the latest, run 6-late, is left out: it is not of the task as it is now: its hashes."),
                "{name}: {why}"
            );
        }
        for (name, spoil) in spoilers() {
            let got = pick(&with_late(), |i, r, _| {
                if i == 5 {
                    spoil(r)
                }
            });
            let why = pick(std::slice::from_ref(&late), |_, r, _| spoil(r));
            if name == "partial" {
                assert_eq!(got.unwrap().run_id, "6-late", "{name}");
                assert_eq!(why.unwrap().run_id, "6-late", "{name}");
                continue;
            }
            assert_eq!(got, Ok(want.clone()), "{name}");
            let why = why.unwrap_err();
            assert!(
                why.contains("the latest, run 6-late, is left out: it cannot be trusted: "),
                "{name}: {why}"
            );
        }
        // A task.toml that differed only in its default-candidate line is today's: the run stands.
        let got = pick(&with_late(), |i, r, t| {
            if i == 5 {
                r.hashes.task_toml = t.task_toml_shas_with_candidates(&["v1".into()])[0].clone();
            }
        });
        assert_eq!(got.unwrap().run_id, "6-late");
        // A later run of an earlier version of the candidate file is another kernel's time.
        let got = pick(&with_late(), |i, r, _| {
            if i == 5 {
                r.hashes.candidate = "an earlier v1".into()
            }
        });
        assert_eq!(got, Ok(want.clone()));
        let why = pick(std::slice::from_ref(&late), |_, r, _| {
            r.hashes.candidate = "an earlier v1".into()
        })
        .unwrap_err();
        assert!(
            why.contains("it timed another version of v1: its candidate sha256 an earlier v is not today's cand"),
            "{why}"
        );
        // No run of the candidate on the card timed the row at all.
        assert_eq!(
            pick(&base[2..], |_, _, _| {}),
            Err("no run of v1 on NVIDIA H200 in the ledger timed row r".into())
        );
        assert_eq!(
            want.label(),
            "device time per launch (harness, run 2-mine, commit 2-mine-)"
        );
    }
}
