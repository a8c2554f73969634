//! scripts/agent_loop.sh, the reference agent loop, drives one iteration through the CLI on a
//! scratch root without a GPU: brief, candidate new, the EDIT hook, build, then the quick run's
//! exit 4, reported and passed through. Needs nvcc for the build (scripts/test.sh provides one).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const TASK: &str = "causal_conv3d_cat_pad";

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

/// A scratch root: one task, the kernels, the task's ledger (its freeze record).
fn scratch() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(
        &repo().join("tasks").join(TASK),
        &d.path().join("tasks").join(TASK),
    );
    copy_dir(&repo().join("kernels"), &d.path().join("kernels"));
    let ledger = format!("ledger/{TASK}.jsonl");
    // The ledger as stored: its sealed segments and its live file.
    kpilot::ledger::copy(&repo().join(&ledger), &d.path().join(&ledger)).unwrap();
    d
}

fn agent_loop(root: &Path, args: &[&str], edit: Option<&str>) -> Output {
    let mut c = Command::new(repo().join("scripts/agent_loop.sh"));
    c.env("KPILOT", env!("CARGO_BIN_EXE_kpilot"))
        // Built objects shared between runs of this test: only a changed candidate recompiles.
        .env(
            "KPILOT_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("agent-loop-cache"),
        )
        // No GPU, even on a machine that has one: the loop must stop after the build with 4.
        .env("CUDA_VISIBLE_DEVICES", "")
        .env_remove("EDIT")
        .arg("--root")
        .arg(root)
        .args(args);
    if let Some(e) = edit {
        c.env("EDIT", e);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn one_iteration_without_a_gpu_stops_after_the_build_with_exit_4() {
    if let Err(e) = kpilot::nvcc::Nvcc::find(&repo()) {
        eprintln!(
            "SKIPPED one_iteration_without_a_gpu_stops_after_the_build_with_exit_4: the build step needs nvcc ({e}); scripts/test.sh installs the pinned nvcc wheels"
        );
        return;
    }
    let d = scratch();
    let out = agent_loop(
        d.path(),
        &[TASK, "iter_a", "--from", "v1"],
        Some("printf '// edited by the EDIT hook\\n' >>"),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // One verdict line per step, in order, and the stop said plainly.
    let steps: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("agent_loop: "))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(steps, ["brief", "new", "edit", "build", "quick"], "{all}");
    assert!(stdout.contains("build: ok"), "{all}");
    assert!(
        stdout.contains("quick: exit 4, no GPU") && stdout.contains("stopped"),
        "{all}"
    );
    assert!(!stdout.contains("full:"), "{all}");
    // The brief, saved as JSON.
    let dir = d.path().join(".agent-loop").join(TASK).join("iter_a");
    let brief: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("brief.json")).unwrap()).unwrap();
    assert_eq!(brief["task"], TASK);
    assert_eq!(brief["brief_schema"], kpilot::brief::BRIEF_SCHEMA);
    // The candidate: the parent's header, the parent's body, then the edit.
    let file = d
        .path()
        .join("tasks")
        .join(TASK)
        .join("candidates/iter_a.cu");
    let src = std::fs::read_to_string(&file).unwrap();
    let v1 = std::fs::read(d.path().join("tasks").join(TASK).join("candidates/v1.cu")).unwrap();
    assert_eq!(
        kpilot::candidate_cmd::parent_of(&src),
        Some(("v1".to_string(), Some(kpilot::task::sha256_hex(&v1))))
    );
    assert!(src.ends_with("// edited by the EDIT hook\n"), "{src}");
    // The quick run's log says why it stopped.
    let log = std::fs::read_to_string(dir.join("quick.log")).unwrap();
    assert!(log.contains("GPU") || log.contains("driver"), "{log}");
}

#[test]
fn a_failing_edit_stops_the_loop_with_9_and_bad_usage_with_7() {
    let d = scratch();
    let out = agent_loop(d.path(), &[TASK, "loop2"], Some("false"));
    let all = text(&out);
    assert_eq!(out.status.code(), Some(9), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("new: ok") && stdout.contains("edit: exit 9"),
        "{all}"
    );
    assert!(!stdout.contains("build:"), "{all}");
    // Started from the baseline by default.
    let src = std::fs::read_to_string(
        d.path()
            .join("tasks")
            .join(TASK)
            .join("candidates/loop2.cu"),
    )
    .unwrap();
    assert!(
        src.starts_with("// kpilot-parent: baseline sha256 "),
        "{src}"
    );
    // A name that exists is kpilot's command-line error (7), passed through.
    let out = agent_loop(d.path(), &[TASK, "v1"], None);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("new: exit 7"));
    // The script's own usage.
    let out = agent_loop(d.path(), &[TASK], None);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
}
