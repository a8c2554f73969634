//! `kpilot ledger list|show|best|schema` on a temporary copy of the repository's ledgers and on
//! broken fixture ledgers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Moves a ledger's sealed segments back into its live file (one file of every line).
fn unseal(live: &Path) {
    let all = kpilot::ledger::load(live).unwrap().joined();
    let dir = kpilot::ledger::archive_dir(live);
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    std::fs::write(live, all).unwrap();
}

/// A root holding a copy of the repository's ledger/ and tasks/ (`best` compares runs with the
/// task as it is now).
fn copy_root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("ledger"), &d.path().join("ledger"));
    copy_dir(&repo().join("tasks"), &d.path().join("tasks"));
    d
}

fn kpilot(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .arg("--root")
        .arg(root)
        .arg("ledger")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    stdout(o)
}

fn bad_input(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(3), "stdout: {}", stdout(o));
    let e = stderr(o);
    assert!(!e.contains("panicked"), "{e}");
    e
}

fn lines_of(task: &str) -> Vec<serde_json::Value> {
    kpilot::ledger::load(&repo().join("ledger").join(format!("{task}.jsonl")))
        .unwrap()
        .joined()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn list_prints_one_line_per_record_and_filters_by_kind() {
    let d = copy_root();
    let all = lines_of("fuse_scale_shift");
    let out = ok(&kpilot(d.path(), &["list", "fuse_scale_shift"]));
    assert_eq!(out.lines().count(), all.len());
    let last_run = all.iter().rev().find(|r| r["kind"] == "run").unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with(last_run["run_id"].as_str().unwrap()))
        .unwrap();
    let g = last_run["headline"]["device_geomean"].as_f64().unwrap();
    assert!(line.contains(&format!("{g:.4}x")), "{line}");
    assert!(
        line.contains(&last_run["git"]["commit"].as_str().unwrap()[..7]),
        "{line}"
    );
    assert!(
        line.contains(if last_run["gate"]["pass"].as_bool().unwrap() {
            "PASS"
        } else {
            "FAIL"
        })
    );

    let runs = ok(&kpilot(
        d.path(),
        &["list", "fuse_scale_shift", "--kind", "run"],
    ));
    let n_runs = all.iter().filter(|r| r["kind"] == "run").count();
    assert_eq!(runs.lines().count(), n_runs);
    assert!(runs
        .lines()
        .all(|l| l.split_whitespace().nth(1) == Some("run")));

    let json: Vec<serde_json::Value> = serde_json::from_str(&ok(&kpilot(
        d.path(),
        &["list", "fuse_scale_shift", "--kind", "fidelity", "--json"],
    )))
    .unwrap();
    assert_eq!(
        json.len(),
        all.iter().filter(|r| r["kind"] == "fidelity").count()
    );
    assert!(json
        .iter()
        .all(|s| s["kind"] == "fidelity" && s["card"].is_string()));
}

#[test]
fn show_takes_a_unique_prefix_and_prints_the_record_as_stored() {
    let d = copy_root();
    let all = lines_of("fuse_scale_shift");
    let run = all.iter().rev().find(|r| r["kind"] == "run").unwrap();
    let id = run["run_id"].as_str().unwrap();
    // The id without its last hex digits still names one record.
    let prefix = &id[..id.len() - 3];
    let shown: serde_json::Value = serde_json::from_str(&ok(&kpilot(
        d.path(),
        &["show", "fuse_scale_shift", prefix, "--json"],
    )))
    .unwrap();
    assert_eq!(&shown, run);
    let human = ok(&kpilot(d.path(), &["show", "fuse_scale_shift", id]));
    assert!(human.contains(id) && human.contains("headline"), "{human}");
    let rows_ran = run["rows"].as_array().unwrap().len();
    assert!(human.lines().count() > rows_ran, "{human}");
    // A fidelity record and a freeze (named by its time) show too.
    let fid = all.iter().find(|r| r["kind"] == "fidelity").unwrap();
    let out = ok(&kpilot(
        d.path(),
        &["show", "fuse_scale_shift", fid["run_id"].as_str().unwrap()],
    ));
    assert!(out.contains("verdict:"), "{out}");
    let fr = all.iter().find(|r| r["kind"] == "freeze").unwrap();
    let out = ok(&kpilot(
        d.path(),
        &["show", "fuse_scale_shift", fr["time_utc"].as_str().unwrap()],
    ));
    assert!(out.contains("freeze of fuse_scale_shift"), "{out}");
}

#[test]
fn best_is_per_card_and_candidate_over_full_evidence_runs_only() {
    let d = copy_root();
    let all = lines_of("fuse_scale_shift");
    let got: Vec<serde_json::Value> = serde_json::from_str(&ok(&kpilot(
        d.path(),
        &["best", "fuse_scale_shift", "--json"],
    )))
    .unwrap();
    assert!(!got.is_empty());
    // Only runs of the task as it is now: the same baseline, rows and task.toml, where a
    // task.toml that differs only in its default candidate (`[task] candidate`) is the same.
    let now = kpilot::task::Task::load(&repo().join("tasks"), "fuse_scale_shift").unwrap();
    assert_eq!(
        now.task_toml_shas_with_candidates(std::slice::from_ref(&now.spec.task.candidate)),
        vec![now.hashes.task_toml.clone()],
        "naming the current default changes nothing"
    );
    let names: Vec<String> = all
        .iter()
        .filter_map(|r| r["candidate"].as_str().map(str::to_string))
        .collect();
    let same_settings: std::collections::BTreeSet<String> = now
        .task_toml_shas_with_candidates(&names)
        .into_iter()
        .chain([now.hashes.task_toml.clone()])
        .collect();
    // The default moved from v1 (to v5c, then v6) with freezes: runs made under v1 still count.
    assert!(
        got.iter().any(|b| b["candidate"] == "v1"),
        "runs recorded while v1 was the default are still the task as it is: {got:?}"
    );
    for b in &got {
        assert_ne!(
            b["candidate"], "baseline-aa",
            "an A/A run is never the best"
        );
        let evidence: Vec<&serde_json::Value> = all
            .iter()
            .filter(|r| {
                r["kind"] == "run"
                    && r["device"]["name"] == b["card"]
                    && r["candidate"] == b["candidate"]
                    && r["row_filter"].as_array().unwrap().is_empty()
                    && !r["aa"].as_bool().unwrap_or(false)
                    && r["deviations"].as_array().is_none_or(|d| d.is_empty())
                    && r["headline"]["device_geomean"].is_f64()
                    && r["hashes"]["baseline"] == now.hashes.baseline.as_str()
                    && r["hashes"]["rows"] == now.hashes.rows.as_str()
                    && r["hashes"]["task_toml"]
                        .as_str()
                        .is_some_and(|h| same_settings.contains(h))
            })
            .collect();
        let latest = evidence.last().unwrap();
        assert_eq!(b["latest_run_id"], latest["run_id"], "{b}");
        let max = evidence
            .iter()
            .map(|r| r["headline"]["device_geomean"].as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        assert_eq!(b["device_geomean"].as_f64().unwrap(), max, "{b}");
        let run = all.iter().find(|r| r["run_id"] == b["run_id"]).unwrap();
        assert_eq!(run["headline"]["device_geomean"], b["device_geomean"]);
    }
    let h200 = ok(&kpilot(
        d.path(),
        &["best", "fuse_scale_shift", "--card", "H200"],
    ));
    assert!(
        !h200.is_empty()
            && h200
                .lines()
                .all(|l| l.contains("H200") || l.contains("not considered")),
        "{h200}"
    );
    let none = ok(&kpilot(
        d.path(),
        &["best", "fuse_scale_shift", "--card", "no such card"],
    ));
    assert!(none.contains("no full run"), "{none}");
}

#[test]
fn schema_prints_the_checked_in_schema() {
    let d = copy_root();
    let out = ok(&kpilot(d.path(), &["schema"]));
    assert_eq!(
        out,
        std::fs::read_to_string(repo().join("ledger/schema.json")).unwrap()
    );
}

#[test]
fn unknown_task_and_unknown_or_ambiguous_run_ids_are_bad_input() {
    let d = copy_root();
    let e = bad_input(&kpilot(d.path(), &["list", "no_such_task"]));
    assert!(
        e.contains("unknown task 'no_such_task'") && e.contains("fuse_scale_shift"),
        "{e}"
    );
    let e = bad_input(&kpilot(d.path(), &["list", "../ledger/fuse_scale_shift"]));
    assert!(e.contains("unknown task"), "{e}");
    let e = bad_input(&kpilot(d.path(), &["show", "fuse_scale_shift", "19990101"]));
    assert!(e.contains("no record '19990101'"), "{e}");
    // Every run id of the day starts with 2026: ambiguous.
    let e = bad_input(&kpilot(d.path(), &["show", "fuse_scale_shift", "2026"]));
    assert!(e.contains("ambiguous"), "{e}");
    let e = bad_input(&kpilot(
        d.path(),
        &["list", "fuse_scale_shift", "--kind", "walk"],
    ));
    assert!(e.contains("walk"), "{e}");
}

#[test]
fn a_malformed_line_is_named_by_file_and_line() {
    let d = copy_root();
    let p = d.path().join("ledger/fuse_scale_shift.jsonl");
    unseal(&p);
    let n = std::fs::read_to_string(&p).unwrap().lines().count();
    // A torn write: half a line.
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str("{\"kind\": \"run\", \"run_id\": \n");
    std::fs::write(&p, &text).unwrap();
    let e = bad_input(&kpilot(d.path(), &["list", "fuse_scale_shift"]));
    assert!(
        e.contains(&format!("fuse_scale_shift.jsonl:{}:", n + 1)),
        "{e}"
    );
    assert!(e.contains("not JSON"), "{e}");

    // Valid JSON of the wrong shape: a speedup that is a string.
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let i = lines.iter().rposition(|r| r["kind"] == "run").unwrap();
    lines[i]["rows"][0]["speedup"] = serde_json::json!("fast");
    let body: String = lines.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&p, body).unwrap();
    let e = bad_input(&kpilot(d.path(), &["best", "fuse_scale_shift"]));
    assert!(
        e.contains(&format!("fuse_scale_shift.jsonl:{}:", i + 1)),
        "{e}"
    );
    assert!(e.contains("not a valid ledger record (kind run)"), "{e}");

    // A line of an unknown kind.
    std::fs::write(&p, "{\"kind\": \"walk\"}\n").unwrap();
    let e = bad_input(&kpilot(d.path(), &["show", "fuse_scale_shift", "x"]));
    assert!(e.contains("fuse_scale_shift.jsonl:1:"), "{e}");
}

#[test]
fn only_the_default_candidate_line_may_differ_for_a_run_to_count_as_the_task_now() {
    let d = copy_root();
    let toml = d.path().join("tasks/fuse_scale_shift/task.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let load = || kpilot::task::Task::load(&d.path().join("tasks"), "fuse_scale_shift").unwrap();
    let now = load();
    let as_v1 = now.task_toml_shas_with_candidates(&["v1".to_string()]);
    assert_eq!(as_v1.len(), 1);
    assert_ne!(as_v1[0], now.hashes.task_toml);
    // The same task.toml with v1 as its default hashes to exactly what the substitution gave.
    let line = format!("candidate = \"{}\"", now.spec.task.candidate);
    assert!(text.contains(&format!("\n{line}\n")), "{line}");
    std::fs::write(&toml, text.replace(&line, "candidate = \"v1\"")).unwrap();
    assert_eq!(load().hashes.task_toml, as_v1[0]);
    // A verdict setting changed as well: no substitution of the candidate line reaches it.
    let loosened = text
        .replace(&line, "candidate = \"v1\"")
        .replace("min_row_speedup = 0.97", "min_row_speedup = 0.5");
    assert_ne!(loosened, text.replace(&line, "candidate = \"v1\""));
    std::fs::write(&toml, &loosened).unwrap();
    let other = load().hashes.task_toml;
    assert!(!now
        .task_toml_shas_with_candidates(&["v1".to_string(), now.spec.task.candidate.clone()])
        .contains(&other));
}

#[test]
fn seal_moves_the_live_records_into_a_segment_that_every_reader_reads_first() {
    let d = copy_root();
    let p = d.path().join("ledger/fuse_scale_shift.jsonl");
    unseal(&p);
    let ids = |o: &Output| -> Vec<(String, String)> {
        let v: Vec<serde_json::Value> = serde_json::from_str(&ok(o)).unwrap();
        v.iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["file"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let before = ids(&kpilot(d.path(), &["list", "fuse_scale_shift", "--json"]));
    assert!(before.len() > 10);
    assert!(before
        .iter()
        .all(|(_, f)| f == "ledger/fuse_scale_shift.jsonl"));
    let best = ok(&kpilot(d.path(), &["best", "fuse_scale_shift"]));

    // A line that is not a record: refused, nothing changed.
    let good = std::fs::read(&p).unwrap();
    let mut torn = good.clone();
    torn.extend_from_slice(b"{\"kind\": \"run\", \"run_id\": \n");
    std::fs::write(&p, &torn).unwrap();
    let e = bad_input(&kpilot(d.path(), &["seal", "fuse_scale_shift"]));
    assert!(
        e.contains(&format!("fuse_scale_shift.jsonl:{}:", before.len() + 1)),
        "{e}"
    );
    assert_eq!(std::fs::read(&p).unwrap(), torn);
    assert!(!kpilot::ledger::archive_dir(&p).exists());
    std::fs::write(&p, &good).unwrap();

    let said = ok(&kpilot(d.path(), &["seal", "fuse_scale_shift"]));
    assert!(
        said.contains(&format!("sealed {} records", before.len()))
            && said.contains("ledger/archive/fuse_scale_shift/0001.jsonl.gz"),
        "{said}"
    );
    assert_eq!(std::fs::read(&p).unwrap(), b"");
    let after = ids(&kpilot(d.path(), &["list", "fuse_scale_shift", "--json"]));
    assert_eq!(
        after.iter().map(|x| &x.0).collect::<Vec<_>>(),
        before.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    assert!(after
        .iter()
        .all(|(_, f)| f == "ledger/archive/fuse_scale_shift/0001.jsonl.gz"));
    assert_eq!(ok(&kpilot(d.path(), &["best", "fuse_scale_shift"])), best);
    // Two ledgers named, one with a bad line: neither is sealed.
    let q = d.path().join("ledger/qknorm_rope.jsonl");
    unseal(&q);
    let q_before = std::fs::read(&q).unwrap();
    std::fs::write(&p, b"{\"kind\": \"walk\"}\n").unwrap();
    bad_input(&kpilot(
        d.path(),
        &["seal", "qknorm_rope", "fuse_scale_shift"],
    ));
    assert_eq!(std::fs::read(&q).unwrap(), q_before);
    assert!(!kpilot::ledger::archive_dir(&q).exists());
    std::fs::write(&p, b"").unwrap();
    // A stray file in the archive: `brief` says so (exit 3) instead of printing an empty history.
    let stray = kpilot::ledger::archive_dir(&p).join("notes.txt");
    std::fs::write(&stray, "x").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .arg("--root")
        .arg(d.path())
        .args(["brief", "fuse_scale_shift"])
        .output()
        .unwrap();
    assert!(bad_input(&o).contains("notes.txt"));
    std::fs::remove_file(&stray).unwrap();
    // Show finds a sealed record; a second seal has nothing to do.
    let first = &before[0].0;
    assert!(ok(&kpilot(d.path(), &["show", "fuse_scale_shift", first])).contains(first.as_str()));
    assert!(ok(&kpilot(d.path(), &["seal", "fuse_scale_shift"])).contains("nothing to seal"));
}
