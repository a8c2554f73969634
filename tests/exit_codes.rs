//! One exit code per meaning (kpilot --help): every code a user or an agent loop can meet without
//! a GPU, each from the command line it comes from.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kp(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .current_dir(root)
        .args(args)
        .output()
        .unwrap()
}

fn code_and_stderr(o: &Output) -> (i32, String) {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (o.status.code().unwrap_or(-1), err)
}

/// A scratch repository with one task copied from this one.
fn scratch(task: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let from = repo().join("tasks").join(task);
    let to = d.path().join("tasks").join(task);
    std::fs::create_dir_all(to.join("candidates")).unwrap();
    for e in std::fs::read_dir(&from).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    for e in std::fs::read_dir(from.join("candidates"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), to.join("candidates").join(e.file_name())).unwrap();
    }
    // frozen.toml stands only with the freeze record that wrote it.
    let ledger = format!("ledger/{task}.jsonl");
    // The ledger as stored: its sealed segments and its live file.
    kpilot::ledger::copy(&repo().join(&ledger), &d.path().join(&ledger)).unwrap();
    std::fs::create_dir_all(d.path().join("kernels")).unwrap();
    std::fs::copy(
        repo().join("kernels/kpilot_abi.h"),
        d.path().join("kernels/kpilot_abi.h"),
    )
    .unwrap();
    d
}

#[test]
fn command_line_mistakes_exit_7_and_say_what_is_wrong() {
    let r = repo();
    for (args, says) in [
        (
            &["task", "fuse_scale_shift", "--tirals", "9"][..],
            "--tirals",
        ),
        (&["task", "fuse_scale_shift", "--trials", "abc"][..], "abc"),
        (&[][..], "Usage"),
        (&["frobnicate"][..], "frobnicate"),
        // Validated before the GPU is probed or nvcc runs: the same answer with or without a GPU.
        (
            &["task", "fuse_scale_shift", "--trials", "2"][..],
            "at least 7 trials",
        ),
        (
            &["task", "fuse_scale_shift", "--cache", "lukewarm"][..],
            "use cold or warm",
        ),
        (
            &["task", "fuse_scale_shift", "--row", "no_such_row"][..],
            "names no row",
        ),
        (
            &["task", "fuse_scale_shift", "--aa", "--candidate", "v1"][..],
            "takes no --candidate",
        ),
        (&["task", "nope"][..], "no task 'nope'"),
        // The watchdog's bounds: 1 s to a day (a value beyond a Duration's range would panic).
        (
            &["task", "fuse_scale_shift", "--row-timeout", "0"][..],
            "'0' is not a number of seconds from 1 to 86400",
        ),
        (
            &["task", "fuse_scale_shift", "--row-timeout", "0.5"][..],
            "'0.5' is not a number of seconds from 1 to 86400",
        ),
        (
            &["task", "fuse_scale_shift", "--row-timeout", "1e20"][..],
            "'1e20' is not a number of seconds from 1 to 86400",
        ),
        (
            &["task", "fuse_scale_shift", "--row-timeout", "inf"][..],
            "'inf' is not a number of seconds from 1 to 86400",
        ),
        (
            &["task", "fuse_scale_shift", "--row-timeout", "NaN"][..],
            "'NaN' is not a number of seconds from 1 to 86400",
        ),
        (
            &["build", "fuse_scale_shift", "--arch", "x86"][..],
            "--arch x86",
        ),
    ] {
        let (code, err) = code_and_stderr(&kp(&r, args));
        assert_eq!(code, 7, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says}: {err}");
    }
}

#[test]
fn help_and_version_exit_0() {
    for a in ["--help", "--version"] {
        assert_eq!(kp(&repo(), &[a]).status.code(), Some(0), "{a}");
    }
}

#[test]
fn a_missing_task_file_is_bad_input_naming_the_file() {
    let d = scratch("causal_conv3d_cat_pad");
    let t = d.path().join("tasks/causal_conv3d_cat_pad");
    std::fs::remove_file(t.join("baseline.cu")).unwrap();
    let (code, err) = code_and_stderr(&kp(d.path(), &["check", "causal_conv3d_cat_pad"]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("task.toml:") && err.contains("baseline.cu"),
        "{err}"
    );

    let d = scratch("causal_conv3d_cat_pad");
    let t = d.path().join("tasks/causal_conv3d_cat_pad");
    let toml = std::fs::read_to_string(t.join("task.toml")).unwrap();
    let rows = toml
        .lines()
        .find_map(|l| l.strip_prefix("rows = \""))
        .and_then(|r| r.strip_suffix('"'))
        .expect("task.toml names its rows file")
        .to_string();
    std::fs::remove_file(t.join(&rows)).unwrap();
    let (code, err) = code_and_stderr(&kp(d.path(), &["task", "causal_conv3d_cat_pad"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("task.toml:") && err.contains(&rows), "{err}");
}

#[test]
fn outside_a_repository_list_and_task_both_exit_3() {
    let d = tempfile::tempdir().unwrap();
    for args in [
        &["list"][..],
        &["task", "fuse_scale_shift"][..],
        &["check"][..],
    ] {
        let (code, err) = code_and_stderr(&kp(d.path(), args));
        assert!(code == 3 || code == 7, "{args:?}: {err}");
        assert!(err.contains("tasks"), "{args:?}: {err}");
    }
    let (code, err) = code_and_stderr(&kp(d.path(), &["list"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("--root"), "{err}");
}

#[test]
fn list_exits_3_when_a_task_is_invalid_and_still_lists_the_others() {
    let d = scratch("causal_conv3d_cat_pad");
    let bad = d.path().join("tasks/broken");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("task.toml"), "[task]\nname = \"broken\"\n").unwrap();
    let out = kp(d.path(), &["list"]);
    let (code, err) = code_and_stderr(&out);
    assert_eq!(code, 3, "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("broken: INVALID"), "{stdout}");
    assert!(stdout.contains("causal_conv3d_cat_pad: "), "{stdout}");
}

#[test]
fn check_refuses_a_default_candidate_that_does_not_exist() {
    let d = scratch("causal_conv3d_cat_pad");
    let t = d.path().join("tasks/causal_conv3d_cat_pad");
    let toml = std::fs::read_to_string(t.join("task.toml")).unwrap();
    let default = toml
        .lines()
        .find_map(|l| l.strip_prefix("candidate = \""))
        .and_then(|r| r.strip_suffix('"'))
        .expect("task.toml names its default candidate")
        .to_string();
    std::fs::remove_file(t.join("candidates").join(format!("{default}.cu"))).unwrap();
    let (code, err) = code_and_stderr(&kp(d.path(), &["check", "causal_conv3d_cat_pad"]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("task.toml:") && err.contains(&format!("default candidate '{default}'")),
        "{err}"
    );
}

#[test]
fn quick_takes_no_row_and_is_checked_before_the_gpu() {
    let (code, err) = code_and_stderr(&kp(
        &repo(),
        &["task", "fuse_scale_shift", "--quick", "--row", "x"],
    ));
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("--quick"), "{err}");
    let help = kp(&repo(), &["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("8  a --quick run"));
}
