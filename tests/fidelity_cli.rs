//! `kpilot fidelity` before it needs a GPU: the pinned upstream files are checked by sha256 (a
//! tampered or missing file is bad input, exit 3, named), the [fidelity] section must say how to
//! run upstream, and with everything right a machine without a driver exits 4. The driver script
//! and the task adapters are valid Python.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn has_driver() -> bool {
    [
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/usr/lib64/libcuda.so.1",
        "/usr/lib/libcuda.so.1",
    ]
    .iter()
    .any(|p| Path::new(p).exists())
}

fn hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A scratch root with a copy of fuse_scale_shift whose [upstream] pins one file of a fake wheel,
/// and whose [fidelity] section is `fidelity`.
fn scratch(fidelity: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let task = d.path().join("tasks/fuse_scale_shift");
    std::fs::create_dir_all(task.join("upstream")).unwrap();
    for f in ["rows.toml", "baseline.cu", "upstream/adapter.py"] {
        std::fs::copy(repo().join("tasks/fuse_scale_shift").join(f), task.join(f)).unwrap();
    }
    let toml = std::fs::read_to_string(repo().join("tasks/fuse_scale_shift/task.toml")).unwrap();
    let start = toml.find("files = [").unwrap();
    let end = start + toml[start..].find("]\n").unwrap() + 2;
    let fid_start = toml.find("[fidelity]").unwrap();
    let fid_end = fid_start + toml[fid_start..].find("\n[build]").unwrap();
    let pinned = format!(
        "files = [{{ path = \"pkg/kernel.py\", sha256 = \"{}\" }}]\n",
        hex(b"the pinned bytes\n")
    );
    let edited = format!(
        "{}{}{}{}{}",
        &toml[..start],
        pinned,
        &toml[end..fid_start],
        fidelity,
        &toml[fid_end..]
    );
    std::fs::write(task.join("task.toml"), edited).unwrap();
    let wheel = d.path().join("wheel/pkg");
    std::fs::create_dir_all(&wheel).unwrap();
    std::fs::write(wheel.join("kernel.py"), "the pinned bytes\n").unwrap();
    let out = kp(
        d.path(),
        &["freeze", "fuse_scale_shift", "--reason", "test"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (d, task)
}

fn kp(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

fn fidelity(root: &Path) -> Output {
    kp(
        root,
        &[
            "fidelity",
            "fuse_scale_shift",
            "--upstream",
            root.join("wheel").to_str().unwrap(),
        ],
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_tampered_upstream_file_is_refused_by_name() {
    let (d, _) = scratch("[fidelity]\nadapter = \"upstream/adapter.py\"\n");
    std::fs::write(d.path().join("wheel/pkg/kernel.py"), "an edited copy\n").unwrap();
    let out = fidelity(d.path());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("pkg/kernel.py")
            && err.contains("pins")
            && err.contains("not the pinned sglang 0.5.23"),
        "{err}"
    );
}

#[test]
fn a_missing_upstream_is_bad_input_that_says_how_to_get_it() {
    let (d, _) = scratch("[fidelity]\nadapter = \"upstream/adapter.py\"\n");
    std::fs::remove_file(d.path().join("wheel/pkg/kernel.py")).unwrap();
    let out = fidelity(d.path());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("scripts/fetch_upstream.sh"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_fidelity_section_must_name_exactly_one_way_to_run_upstream() {
    for bad in [
        "[fidelity]\n",
        "[fidelity]\nadapter = \"upstream/adapter.py\"\nshim = \"upstream/shim.cu\"\n",
        "[fidelity]\nadapter = \"upstream/nope.py\"\n",
    ] {
        let (d, _) = scratch(bad);
        let out = fidelity(d.path());
        assert_eq!(out.status.code(), Some(3), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("task.toml:") && stderr(&out).contains("[fidelity]"),
            "{bad}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn with_the_pinned_files_and_no_driver_it_exits_4() {
    if has_driver() {
        eprintln!("SKIPPED: a CUDA driver is present; this test checks the no-driver path");
        return;
    }
    let (d, _) = scratch("[fidelity]\nadapter = \"upstream/adapter.py\"\n");
    let out = fidelity(d.path());
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("no CUDA driver"), "{}", stderr(&out));
}

#[test]
fn the_driver_and_every_adapter_are_valid_python() {
    let mut files = vec![repo().join("harness/fidelity/driver.py")];
    for t in std::fs::read_dir(repo().join("tasks")).unwrap().flatten() {
        let a = t.path().join("upstream/adapter.py");
        if a.exists() {
            files.push(a);
        }
    }
    for f in files {
        let out = Command::new("python3")
            .arg("-c")
            .arg("import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])")
            .arg(&f)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
