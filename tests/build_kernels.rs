//! Every kernel of every task compiles (compile only, no GPU), with the task's one flag set.
//! Needs nvcc: scripts/test.sh installs the pinned nvcc 13.0 wheels where there is none.

mod common;

use common::{nvcc_or_explain, repo};
use std::process::Command;

#[test]
fn every_kernel_of_every_task_compiles_for_hopper() {
    nvcc_or_explain();
    let out = Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .current_dir(repo())
        .args(["build", "--arch", "sm_90a"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kpilot build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const FSS_ENTRIES: &[&str] = &[
    "fuse_scale_shift_kernel",
    "fuse_layernorm_scale_shift_gate_select01_kernel",
    "fuse_residual_layernorm_scale_shift_gate_select01_kernel",
];

/// An implementation that refuses everything, exporting `entries` with C linkage or not.
fn stub(entries: &[&str], c_linkage: bool) -> String {
    let mut s = String::from("#include \"kpilot_abi.h\"\n");
    for e in entries {
        s += &format!(
            "{}int32_t kp_{e}(kp_call *, void *) {{ return KP_NOT_SUPPORTED; }}\n",
            if c_linkage { "extern \"C\" " } else { "" }
        );
    }
    s
}

/// A scratch fuse_scale_shift task with a stub baseline and the given candidates.
fn scratch(cands: &[(&str, String)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let task = d.path().join("tasks/fuse_scale_shift");
    std::fs::create_dir_all(task.join("candidates")).unwrap();
    for f in ["task.toml", "rows.toml"] {
        std::fs::copy(repo().join("tasks/fuse_scale_shift").join(f), task.join(f)).unwrap();
    }
    std::fs::write(task.join("baseline.cu"), stub(FSS_ENTRIES, true)).unwrap();
    std::fs::create_dir_all(d.path().join("kernels")).unwrap();
    for f in ["kpilot_abi.h", "kpilot_support.cu"] {
        std::fs::copy(
            repo().join("kernels").join(f),
            d.path().join("kernels").join(f),
        )
        .unwrap();
    }
    for (name, src) in cands {
        std::fs::write(task.join("candidates").join(format!("{name}.cu")), src).unwrap();
    }
    d
}

fn build(d: &tempfile::TempDir, nvcc: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .env("KPILOT_CACHE_DIR", d.path().join("cache"))
        .env("KPILOT_NVCC", nvcc)
        .arg("--root")
        .arg(d.path())
        .args(["build", "fuse_scale_shift", "--arch", "sm_90a"])
        .output()
        .unwrap()
}

#[test]
fn a_build_that_misses_the_abi_names_each_symbol_and_exits_5() {
    let nvcc = nvcc_or_explain();
    // C++ linkage: the entry is exported mangled.
    let d = scratch(&[("mangled", stub(FSS_ENTRIES, false))]);
    let out = build(&d, &nvcc);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains("mangled.cu") && err.contains("C++-mangled") && err.contains("extern \"C\""),
        "{err}"
    );
    // One entry missing, one misspelt: both named.
    let d = scratch(&[(
        "short",
        stub(
            &[FSS_ENTRIES[0], FSS_ENTRIES[1], "fuse_residual_typo"],
            true,
        ),
    )]);
    let out = build(&d, &nvcc);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains(&format!("`kp_{}` is not exported", FSS_ENTRIES[2]))
            && err.contains("kp_fuse_residual_typo"),
        "{err}"
    );
    // Every entry with C linkage: it builds, and says what it builds while nvcc runs.
    let d = scratch(&[("fine", stub(FSS_ENTRIES, true))]);
    let out = build(&d, &nvcc);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("building fine"), "{err}");
}

#[test]
fn an_nvcc_error_names_file_and_line_and_exits_5() {
    let nvcc = nvcc_or_explain();
    let d = tempfile::tempdir().unwrap();
    let task = d.path().join("tasks/fuse_scale_shift");
    std::fs::create_dir_all(task.join("candidates")).unwrap();
    for f in ["task.toml", "rows.toml"] {
        std::fs::copy(repo().join("tasks/fuse_scale_shift").join(f), task.join(f)).unwrap();
    }
    // A small baseline keeps this test quick: only the candidate's error matters here.
    std::fs::write(task.join("baseline.cu"), stub(FSS_ENTRIES, true)).unwrap();
    std::fs::create_dir_all(d.path().join("kernels")).unwrap();
    for f in ["kpilot_abi.h", "kpilot_support.cu"] {
        std::fs::copy(
            repo().join("kernels").join(f),
            d.path().join("kernels").join(f),
        )
        .unwrap();
    }
    std::fs::write(
        task.join("candidates/broken.cu"),
        "#include \"kpilot_abi.h\"\n\nint f() { return undefined_name; }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .env("KPILOT_CACHE_DIR", d.path().join("cache"))
        .env("KPILOT_NVCC", &nvcc)
        .arg("--root")
        .arg(d.path())
        .args(["build", "fuse_scale_shift", "--arch", "sm_90a"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.cu:3: error"), "{err}");
}
