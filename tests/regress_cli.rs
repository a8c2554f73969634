//! accept, merge and compare on the repository's recorded ledgers (no GPU): anchors, shard merging
//! with its coverage and overlap rules, and offline comparison of two runs.

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

fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for x in ["ledger", "tasks", "anchors", "kernels"] {
        copy_dir(&repo().join(x), &d.path().join(x));
    }
    d
}

fn kp(root: &Path, args: &[&str]) -> (i32, String, String) {
    let o: Output = Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        err,
    )
}

/// The ids of the recorded regress records of a task: (shard, run id, rows).
fn regress_ids(task: &str) -> Vec<(Option<String>, String, usize)> {
    kpilot::ledger::load(&repo().join("ledger").join(format!("{task}.jsonl")))
        .unwrap()
        .joined()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "regress")
        .map(|r| {
            (
                r["shard"].as_str().map(str::to_string),
                r["run_id"].as_str().unwrap().to_string(),
                r["rows"].as_array().unwrap().len(),
            )
        })
        .collect()
}

/// The H200 anchor the recorded causal_conv3d_cat_pad shards and their unsharded run compared
/// with (v1's, accepted 2026-11-30; the task's anchor has since moved to v4), kept as a fixture so
/// the tests below keep exercising those records.
fn v1_anchor() -> String {
    std::fs::read_to_string(repo().join("tests/fixtures/anchors/causal_conv3d_cat_pad-v1.toml"))
        .unwrap()
}

/// A scratch root whose causal_conv3d_cat_pad anchor is v1's again.
fn root_with_v1_anchor() -> tempfile::TempDir {
    let d = root();
    std::fs::write(
        d.path()
            .join("anchors/nvidia-h200/causal_conv3d_cat_pad.toml"),
        v1_anchor(),
    )
    .unwrap();
    d
}

#[test]
fn two_shards_merge_to_the_coverage_of_an_unsharded_run() {
    let d = root_with_v1_anchor();
    let ids = regress_ids("causal_conv3d_cat_pad");
    let shards: Vec<&(Option<String>, String, usize)> =
        ids.iter().filter(|x| x.0.is_some()).collect();
    let whole = ids.iter().find(|x| x.0.is_none()).unwrap();
    assert_eq!(shards.len(), 2);
    let (code, md, err) = kp(
        d.path(),
        &["merge", "causal_conv3d_cat_pad", &shards[0].1, &shards[1].1],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        shards[0].2 + shards[1].2,
        whole.2,
        "the shards cover what the whole run covered"
    );
    assert_eq!(md.matches("| SAME").count(), whole.2, "{md}");
    // One shard alone leaves rows uncovered: named, exit 3.
    let (code, md, _) = kp(d.path(), &["merge", "causal_conv3d_cat_pad", &shards[0].1]);
    assert_eq!(code, 3);
    assert!(md.contains("MISSING") && md.contains("in no shard"), "{md}");
    // A shard with the whole run overlaps it: refused.
    let (code, _, err) = kp(
        d.path(),
        &["merge", "causal_conv3d_cat_pad", &shards[0].1, &whole.1],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("more than one shard"), "{err}");
    let (code, _, _) = kp(d.path(), &["merge", "causal_conv3d_cat_pad", "nope"]);
    assert_eq!(code, 7);
}

#[test]
fn compare_two_recorded_runs_row_by_row() {
    let d = root();
    // v1's anchor run against the timing run of a regress of that same anchor.
    let anchor = v1_anchor();
    let then = anchor
        .lines()
        .find_map(|l| l.strip_prefix("run_id = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let ids = regress_ids("causal_conv3d_cat_pad");
    let ledger = kpilot::ledger::load(&repo().join("ledger/causal_conv3d_cat_pad.jsonl"))
        .unwrap()
        .joined();
    // The timing run the first unsharded regress made.
    let whole = ids.iter().find(|x| x.0.is_none()).unwrap();
    let rec: serde_json::Value = ledger
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["run_id"] == whole.1.as_str())
        .unwrap();
    let now = rec["run_ids"][0].as_str().unwrap().to_string();
    let (code, md, err) = kp(d.path(), &["compare", "causal_conv3d_cat_pad", &then, &now]);
    assert_eq!(code, 0, "{err}");
    assert!(
        md.contains("| prod_c256_t4_h240_w416__cache2 | prod |"),
        "{md}"
    );
    assert!(md.contains("Headline speedup over the baseline"), "{md}");
    let (code, _, err) = kp(
        d.path(),
        &["compare", "causal_conv3d_cat_pad", "2026", &now],
    );
    assert_eq!(code, 7, "an ambiguous id: {err}");
}

#[test]
fn accept_writes_the_anchor_and_refuses_what_cannot_be_one() {
    let d = root();
    let p = d
        .path()
        .join("anchors/nvidia-h200/causal_conv3d_cat_pad.toml");
    let before = std::fs::read_to_string(&p).unwrap();
    let run = before
        .lines()
        .find_map(|l| l.strip_prefix("run_id = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    std::fs::remove_file(&p).unwrap();
    let (code, _, err) = kp(
        d.path(),
        &[
            "accept",
            "causal_conv3d_cat_pad",
            "--run",
            &run,
            "--reason",
            "again",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let after = std::fs::read_to_string(&p).unwrap();
    let parse = |t: &str| -> kpilot::regress::anchor::Anchor { toml::from_str(t).unwrap() };
    let (b, a) = (parse(&before), parse(&after));
    assert_eq!(
        (&b.run_id, &b.aa_run_id, &b.candidate_sha256),
        (&a.run_id, &a.aa_run_id, &a.candidate_sha256)
    );
    assert_eq!(b.rows.len(), a.rows.len());
    // The anchor keeps every project file the candidate's build read, so regress can name an
    // edited parent: causal_conv3d_cat_pad's v5 includes v4.
    let files: Vec<&str> = a.candidate_files.iter().map(|f| f.path.as_str()).collect();
    for want in [
        format!("tasks/causal_conv3d_cat_pad/candidates/{}.cu", a.candidate),
        "tasks/causal_conv3d_cat_pad/candidates/v4.cu".to_string(),
    ] {
        assert!(files.contains(&want.as_str()), "{want} in {files:?}");
    }
    assert_eq!(
        kpilot::regress::anchor::changed_files(d.path(), &a.candidate_files),
        None
    );
    for (x, y) in b.rows.iter().zip(&a.rows) {
        assert_eq!(
            (&x.name, &x.device_us, &x.eager_us),
            (&y.name, &y.device_us, &y.eager_us)
        );
        // The A/A half-width is recomputed from the same record: equal up to rounding.
        approx::assert_relative_eq!(x.aa_half_width, y.aa_half_width, max_relative = 1e-9);
    }
    let (code, _, err) = kp(
        d.path(),
        &[
            "accept",
            "causal_conv3d_cat_pad",
            "--run",
            &run,
            "--reason",
            " ",
        ],
    );
    assert_eq!(code, 7, "{err}");
    let aa = before
        .lines()
        .find_map(|l| l.strip_prefix("aa_run_id = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let (code, _, err) = kp(
        d.path(),
        &[
            "accept",
            "causal_conv3d_cat_pad",
            "--run",
            &aa,
            "--reason",
            "x",
        ],
    );
    assert_eq!(code, 7);
    assert!(err.contains("A/A"), "{err}");
}

/// Every anchor in the repository could be accepted again today: its run is still of the task as
/// it is (baseline, rows and task.toml settings, the test `accept` applies), trustworthy, and
/// pins the same rows. Run against a scratch copy; anchors/ itself is not touched.
#[test]
fn every_anchor_in_the_repository_is_accepted_again() {
    let d = root();
    let mut n = 0;
    for card in std::fs::read_dir(d.path().join("anchors"))
        .unwrap()
        .flatten()
    {
        for f in std::fs::read_dir(card.path()).unwrap().flatten() {
            let p = f.path();
            if p.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let parse = |t: &str| -> kpilot::regress::anchor::Anchor { toml::from_str(t).unwrap() };
            let before = parse(&std::fs::read_to_string(&p).unwrap());
            std::fs::remove_file(&p).unwrap();
            let (code, _, err) = kp(
                d.path(),
                &[
                    "accept",
                    &before.task,
                    "--run",
                    &before.run_id,
                    "--reason",
                    "again",
                ],
            );
            assert_eq!(code, 0, "{}: {err}", p.display());
            let after = parse(&std::fs::read_to_string(&p).unwrap());
            assert_eq!(
                (
                    &after.run_id,
                    &after.candidate,
                    &after.rows_sha256,
                    &after.baseline_sha256,
                    &after.candidate_sha256
                ),
                (
                    &before.run_id,
                    &before.candidate,
                    &before.rows_sha256,
                    &before.baseline_sha256,
                    &before.candidate_sha256
                ),
                "{}",
                p.display()
            );
            let names = |a: &kpilot::regress::anchor::Anchor| -> Vec<String> {
                a.rows.iter().map(|r| r.name.clone()).collect()
            };
            assert_eq!(names(&after), names(&before), "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 7, "{n} anchors");
}
