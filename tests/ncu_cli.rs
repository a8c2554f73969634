//! `kpilot ncu` without a GPU: its command-line mistakes and a missing ncu are named, with their
//! exit codes, before anything is built or profiled.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kp(args: &[&str], ncu: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .current_dir(repo())
        .env("KPILOT_NCU", ncu)
        .env("PATH", "/usr/bin:/bin")
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn an_unknown_row_a_rejection_row_and_zero_calls_are_usage_errors() {
    let (code, err) = kp(
        &["ncu", "fuse_scale_shift", "--row", "nope"],
        "/nonexistent/ncu",
    );
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("names no row"), "{err}");
    let (code, err) = kp(
        &[
            "ncu",
            "fuse_scale_shift",
            "--row",
            "rej_fss_shape_mismatch_shift",
        ],
        "/nonexistent/ncu",
    );
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("rejection row"), "{err}");
    let (code, err) = kp(
        &[
            "ncu",
            "fuse_scale_shift",
            "--row",
            "qwen-edit_ln_select01_S8424",
            "--calls",
            "0",
        ],
        "/nonexistent/ncu",
    );
    assert_eq!(code, 7, "{err}");
}

#[test]
fn without_ncu_it_says_so_and_exits_4() {
    if std::path::Path::new("/usr/local/cuda/bin/ncu").exists() {
        eprintln!("SKIPPED: this machine has ncu at /usr/local/cuda/bin/ncu");
        return;
    }
    let before = std::fs::read(repo().join("ledger/fuse_scale_shift.jsonl")).unwrap();
    let (code, err) = kp(
        &[
            "ncu",
            "fuse_scale_shift",
            "--row",
            "qwen-edit_ln_select01_S8424",
        ],
        "/nonexistent/ncu",
    );
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("ncu) not found") && err.contains("KPILOT_NCU"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(repo().join("ledger/fuse_scale_shift.jsonl")).unwrap(),
        before,
        "nothing recorded"
    );
}
