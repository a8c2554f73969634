//! Every kernel of every task compiles (compile only, no GPU), with the task's one flag set.
//! Needs nvcc: scripts/test.sh installs the pinned nvcc 13.0 wheels where there is none.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn nvcc_or_explain() -> PathBuf {
    match kpilot::nvcc::Nvcc::find(&repo()) {
        Ok(n) => n.path,
        Err(e) => panic!(
            "{e}\n(run the tests with scripts/test.sh, which installs the pinned nvcc wheels)"
        ),
    }
}

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
    std::fs::write(task.join("baseline.cu"), "#include \"kpilot_abi.h\"\n").unwrap();
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
