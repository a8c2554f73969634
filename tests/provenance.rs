//! What a record says about the code that ran: the commit, whether the tree differed from it
//! (untracked sources included, the ledger excluded), and a frozen.toml only `kpilot freeze` wrote.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn an_untracked_candidate_makes_the_tree_dirty_and_a_ledger_append_does_not() {
    if std::env::var("KPILOT_GIT_COMMIT").is_ok() {
        eprintln!("SKIPPED: KPILOT_GIT_COMMIT is set, which wins over git by design");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    std::fs::create_dir_all(r.join("tasks/t/candidates")).unwrap();
    std::fs::create_dir_all(r.join("ledger")).unwrap();
    std::fs::write(r.join("tasks/t/candidates/v1.cu"), "// v1\n").unwrap();
    std::fs::write(r.join("ledger/t.jsonl"), "{}\n").unwrap();
    git(r, &["init", "-q"]);
    git(r, &["add", "-A"]);
    git(r, &["commit", "-qm", "init"]);
    let info = kpilot::judge::git_info(r);
    assert_eq!(info.dirty, Some(false), "{info:?}");
    assert_eq!(info.commit.as_deref().unwrap().len(), 40, "{info:?}");
    // A run appended to the tracked ledger: still clean.
    std::fs::write(r.join("ledger/t.jsonl"), "{}\n{}\n").unwrap();
    assert_eq!(kpilot::judge::git_info(r).dirty, Some(false));
    // A new, untracked candidate: dirty, and named.
    std::fs::write(r.join("tasks/t/candidates/v2.cu"), "// v2\n").unwrap();
    let info = kpilot::judge::git_info(r);
    assert_eq!(info.dirty, Some(true), "{info:?}");
    assert!(
        info.changed
            .as_deref()
            .unwrap_or_default()
            .contains(&"tasks/t/candidates/v2.cu".to_string()),
        "a new candidate is named: {info:?}"
    );
}

#[test]
fn a_hand_edited_frozen_toml_is_caught_and_named() {
    let d = tempfile::tempdir().unwrap();
    let task = d.path().join("tasks/causal_conv3d_cat_pad");
    std::fs::create_dir_all(task.join("candidates")).unwrap();
    let src = repo().join("tasks/causal_conv3d_cat_pad");
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        if e.path().is_file() && e.file_name() != "frozen.toml" {
            std::fs::copy(e.path(), task.join(e.file_name())).unwrap();
        }
    }
    let kp = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kpilot"))
            .arg("--root")
            .arg(d.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = kp(&["freeze", "causal_conv3d_cat_pad", "--reason", "test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Trim the rows, then paste the new hash into frozen.toml by hand instead of freezing.
    let rows = std::fs::read_to_string(task.join("rows.toml")).unwrap();
    let cut = rows.rfind("[[row]]").unwrap();
    std::fs::write(task.join("rows.toml"), &rows[..cut]).unwrap();
    let new_hash = kpilot::task::sha256_hex(&rows.as_bytes()[..cut]);
    let frozen = std::fs::read_to_string(task.join("frozen.toml")).unwrap();
    let old_hash = frozen
        .lines()
        .find_map(|l| l.strip_prefix("rows_sha256 = \""))
        .and_then(|h| h.strip_suffix('"'))
        .unwrap()
        .to_string();
    std::fs::write(
        task.join("frozen.toml"),
        frozen.replace(&old_hash, &new_hash),
    )
    .unwrap();
    let out = kp(&["check", "causal_conv3d_cat_pad"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("frozen.toml:") && err.contains("does not match the last freeze record"),
        "{err}"
    );
    // No ledger at all: a frozen.toml nobody recorded.
    std::fs::remove_dir_all(d.path().join("ledger")).unwrap();
    let out = kp(&["check", "causal_conv3d_cat_pad"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("has no freeze record"), "{err}");
}
