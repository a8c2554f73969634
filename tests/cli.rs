//! The command line as a user and an agent loop meet it on a machine without a GPU.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kpilot() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kpilot"));
    c.current_dir(repo());
    c
}

fn has_driver() -> bool {
    // SAFETY: only probes whether libcuda loads.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

#[test]
fn help_is_the_manual_and_lists_exit_codes() {
    let out = kpilot().arg("--help").output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for want in [
        "task",
        "fidelity",
        "build",
        "check",
        "freeze",
        "Exit codes",
        "ledger/README.md",
    ] {
        assert!(s.contains(want), "--help lacks {want}");
    }
}

#[test]
fn without_a_driver_the_main_job_says_what_is_missing_and_exits_4() {
    if has_driver() {
        eprintln!(
            "SKIPPED: this machine has a CUDA driver; this test is about machines without one"
        );
        return;
    }
    let before = std::fs::read(repo().join("ledger/fuse_scale_shift.jsonl")).ok();
    let out = kpilot()
        .args(["task", "fuse_scale_shift"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no CUDA driver"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        std::fs::read(repo().join("ledger/fuse_scale_shift.jsonl")).ok(),
        before,
        "nothing recorded is touched"
    );
}

#[test]
fn an_unknown_task_or_candidate_is_a_usage_error() {
    let out = kpilot().args(["task", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no task 'nope'"));
    let out = kpilot()
        .args(["task", "fuse_scale_shift", "--candidate", "v999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no candidate 'v999'"));
}

#[test]
fn check_validates_every_task_without_a_gpu() {
    let out = kpilot().arg("check").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fuse_scale_shift: ok"));
}

#[test]
fn a_changed_row_set_is_refused_until_frozen_again() {
    let d = tempfile::tempdir().unwrap();
    let task = d.path().join("tasks/fuse_scale_shift");
    std::fs::create_dir_all(task.join("candidates")).unwrap();
    // The task's files and its candidates (the default one, which check requires, may #include
    // another).
    for f in ["task.toml", "rows.toml", "baseline.cu"] {
        std::fs::copy(repo().join("tasks/fuse_scale_shift").join(f), task.join(f)).unwrap();
    }
    for e in std::fs::read_dir(repo().join("tasks/fuse_scale_shift/candidates")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, task.join("candidates").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::create_dir_all(d.path().join("kernels")).unwrap();
    std::fs::copy(
        repo().join("kernels/kpilot_abi.h"),
        d.path().join("kernels/kpilot_abi.h"),
    )
    .unwrap();
    let kp = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kpilot"))
            .arg("--root")
            .arg(d.path())
            .args(args)
            .output()
            .unwrap()
    };
    // Without a freeze a run refuses to start, and says how to freeze.
    let out = kp(&["check", "fuse_scale_shift"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kpilot freeze fuse_scale_shift"));
    assert!(kp(&[
        "freeze",
        "fuse_scale_shift",
        "--reason",
        "test: first freeze"
    ])
    .status
    .success());
    // Frozen now; what is left is the fidelity rule: this scratch ledger has no fidelity record.
    let unmeasured = |out: std::process::Output| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("fidelity of the current baseline") && err.contains("was never measured"),
            "{err}"
        );
    };
    unmeasured(kp(&["check", "fuse_scale_shift"]));
    let rows = std::fs::read_to_string(task.join("rows.toml")).unwrap();
    // Trim the rows after "seeing results": drop the last row.
    let cut = rows.rfind("[[row]]").unwrap();
    std::fs::write(task.join("rows.toml"), &rows[..cut]).unwrap();
    let out = kp(&["check", "fuse_scale_shift"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("frozen.toml:") && err.contains("the rows file changed since it was frozen"),
        "{err}"
    );
    // Freezing is the deliberate, recorded act.
    let out = kp(&["freeze", "fuse_scale_shift", "--reason", "test: drop a row"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ledger = std::fs::read_to_string(d.path().join("ledger/fuse_scale_shift.jsonl")).unwrap();
    assert!(ledger.contains("\"kind\":\"freeze\"") && ledger.contains("test: drop a row"));
    unmeasured(kp(&["check", "fuse_scale_shift"]));
    // Loosening a tolerance after seeing results is refused like a trimmed row set.
    let toml = std::fs::read_to_string(task.join("task.toml")).unwrap();
    let loose = toml.replacen("atol = 5e-2", "atol = 5e-1", 1);
    assert_ne!(toml, loose);
    std::fs::write(task.join("task.toml"), loose).unwrap();
    let out = kp(&["check", "fuse_scale_shift"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("frozen.toml:")
            && err.contains(
                "task.toml (tolerances, gate, timing, build, entries) changed since it was frozen"
            ),
        "{err}"
    );
}

#[test]
fn a_reader_that_stops_early_changes_neither_the_exit_code_nor_panics() {
    // `kpilot ... | head -1`: the reader closes the pipe before kpilot is done. The command must
    // end with its own exit code (for most commands a verdict), not a panic or a signal.
    use std::process::Stdio;
    for args in [
        vec!["ledger", "list", "group_norm_silu"],
        vec!["check"],
        vec!["list"],
    ] {
        let mut child = kpilot()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the first line
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}
