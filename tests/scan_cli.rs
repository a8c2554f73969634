//! The static scan of candidate sources, end to end without a GPU: each fixture in
//! tests/fixtures/scan attempts one trick a hostile candidate's host code could play inside the
//! worker; `check`, `build` and `task` must refuse it as bad input (exit 3) naming file, line and
//! the call, before nvcc or the GPU is touched. An exception in task.toml lets one call through.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kp(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

/// A scratch root: fuse_scale_shift with `fixture` as its only candidate, task.toml extended by
/// `extra`, frozen.
fn scratch(fixture: &str, extra: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let task = d.path().join("tasks/fuse_scale_shift");
    std::fs::create_dir_all(task.join("candidates")).unwrap();
    std::fs::create_dir_all(d.path().join("kernels")).unwrap();
    std::fs::copy(
        repo().join("kernels/kpilot_abi.h"),
        d.path().join("kernels/kpilot_abi.h"),
    )
    .unwrap();
    for f in ["rows.toml", "baseline.cu"] {
        std::fs::copy(repo().join("tasks/fuse_scale_shift").join(f), task.join(f)).unwrap();
    }
    let toml = std::fs::read_to_string(repo().join("tasks/fuse_scale_shift/task.toml")).unwrap();
    std::fs::write(task.join("task.toml"), format!("{toml}\n{extra}")).unwrap();
    for e in std::fs::read_dir(repo().join("tests/fixtures/scan"))
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".h") || name == format!("{fixture}.cu") {
            std::fs::copy(e.path(), task.join("candidates").join(&name)).unwrap();
        }
    }
    let out = kp(
        d.path(),
        &["freeze", "fuse_scale_shift", "--reason", "test"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn refused(out: &Output, file_line: &str, call: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(file_line)
            && err.contains(&format!("`{call}`"))
            && err.contains("[[scan.allow]]"),
        "want {file_line} and `{call}`: {err}"
    );
}

#[test]
fn every_trick_is_refused_by_check_build_and_task_with_file_and_line() {
    for (fixture, file_line, call) in [
        (
            "forges_a_result",
            "candidates/forges_a_result.cu:5:",
            "printf",
        ),
        (
            "side_stream",
            "candidates/side_stream.cu:6:",
            "cudaStreamCreateWithFlags",
        ),
        (
            "reads_the_seed",
            "candidates/reads_the_seed.cu:5:",
            "getenv",
        ),
        (
            "watches_the_clock",
            "candidates/watches_the_clock.cu:3:",
            "%globaltimer",
        ),
        (
            "includes_a_sync",
            "candidates/hides_it_in_a_header.h:3:",
            "cudaDeviceSynchronize",
        ),
        (
            "exits_after_its_last_report",
            "candidates/exits_after_its_last_report.cu:4:",
            "_Exit",
        ),
        (
            "closes_the_result_channel",
            "candidates/closes_the_result_channel.cu:6:",
            "close",
        ),
        (
            "runs_at_unload",
            "candidates/runs_at_unload.cu:3:",
            "destructor",
        ),
    ] {
        let d = scratch(fixture, "");
        // The file the outside include names exists (at the scratch root), so only the scan objects.
        std::fs::write(d.path().join("outside.h"), "static void settle() {}\n").unwrap();
        refused(
            &kp(d.path(), &["check", "fuse_scale_shift"]),
            file_line,
            call,
        );
        refused(
            &kp(d.path(), &["build", "fuse_scale_shift"]),
            file_line,
            call,
        );
        refused(
            &kp(
                d.path(),
                &["task", "fuse_scale_shift", "--candidate", fixture],
            ),
            file_line,
            call,
        );
    }
}

#[test]
fn an_exception_with_a_reason_lets_one_call_through() {
    let allow = "[[scan.allow]]\ncandidate = \"forges_a_result\"\ncall = \"printf\"\nreason = \"test: a debugging print\"\n";
    let d = scratch("forges_a_result", allow);
    let out = kp(
        d.path(),
        &["task", "fuse_scale_shift", "--candidate", "forges_a_result"],
    );
    // Past the scan: without a GPU the run stops at the driver (4); with one it runs.
    assert_ne!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The exception names one call of one candidate: another candidate is still refused.
    let d = scratch("reads_the_seed", allow);
    refused(
        &kp(d.path(), &["check", "fuse_scale_shift"]),
        "candidates/reads_the_seed.cu:5:",
        "getenv",
    );
}

#[test]
fn a_candidate_is_a_plain_file_of_the_task_folder() {
    let d = scratch("side_stream", "");
    let outside = d.path().join("elsewhere.cu");
    std::fs::write(&outside, "#include \"kpilot_abi.h\"\n").unwrap();
    for name in ["../../../elsewhere", outside.to_str().unwrap()] {
        let out = kp(d.path(), &["task", "fuse_scale_shift", "--candidate", name]);
        assert_eq!(
            out.status.code(),
            Some(7),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let link = d.path().join("tasks/fuse_scale_shift/candidates/linked.cu");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let out = kp(
        d.path(),
        &["task", "fuse_scale_shift", "--candidate", "linked"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("symbolic link"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
