//! Code a candidate's library runs at load or unload, seen in the built ELF (no GPU): a
//! namespace-scope object with a constructor or only a destructor passes the static scan but not
//! `kpilot build`, which refuses it as bad input (exit 3) naming the file, what was found and the
//! `[[scan.allow]]` that admits it; a function-local static builds. Needs nvcc: scripts/test.sh
//! installs the pinned nvcc 13.0 wheels where there is none.

mod common;

use common::{nvcc_or_explain, repo};
use std::path::Path;
use std::process::{Command, Output};

/// A scratch fuse_scale_shift with a stub baseline (a quick build), `fixture` from
/// tests/fixtures/scan as its only candidate and task.toml extended by `extra`.
fn scratch(fixture: &str, extra: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let task = d.path().join("tasks/fuse_scale_shift");
    std::fs::create_dir_all(task.join("candidates")).unwrap();
    std::fs::copy(
        repo().join("tasks/fuse_scale_shift/rows.toml"),
        task.join("rows.toml"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(repo().join("tasks/fuse_scale_shift/task.toml")).unwrap();
    std::fs::write(task.join("task.toml"), format!("{toml}\n{extra}")).unwrap();
    // The passing fixture exports every entry and refuses every call: a baseline as quick to build.
    std::fs::copy(
        repo().join("tests/fixtures/scan/constructs_on_first_call.cu"),
        task.join("baseline.cu"),
    )
    .unwrap();
    std::fs::copy(
        repo().join(format!("tests/fixtures/scan/{fixture}.cu")),
        task.join(format!("candidates/{fixture}.cu")),
    )
    .unwrap();
    std::fs::create_dir_all(d.path().join("kernels")).unwrap();
    for f in ["kpilot_abi.h", "kpilot_support.cu"] {
        std::fs::copy(
            repo().join("kernels").join(f),
            d.path().join("kernels").join(f),
        )
        .unwrap();
    }
    d
}

fn build(root: &Path, cache: &Path, nvcc: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .env("KPILOT_CACHE_DIR", cache)
        .env("KPILOT_NVCC", nvcc)
        .arg("--root")
        .arg(root)
        .args(["build", "fuse_scale_shift", "--arch", "sm_90a"])
        .output()
        .unwrap()
}

/// Builds `fixture` as the only candidate of a scratch task: the text scan sees nothing to refuse,
/// and the build is refused as bad input (exit 3) naming the candidate's file. Returns stderr.
fn refused_after_build(fixture: &str, cache: &Path, nvcc: &Path) -> String {
    let d = scratch(fixture, "");
    let src = repo().join(format!("tests/fixtures/scan/{fixture}.cu"));
    let text = std::fs::read_to_string(&src).unwrap();
    assert_eq!(kpilot::scan::scan_text(&src, &text), vec![], "{fixture}");
    let out = build(d.path(), cache, nvcc);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{fixture}: {err}");
    assert!(
        err.contains(&format!("candidates/{fixture}.cu")),
        "{fixture}: {err}"
    );
    err
}

#[test]
fn a_global_object_with_a_constructor_or_destructor_is_refused_after_the_build() {
    let nvcc = nvcc_or_explain();
    // One cache for every scratch root: the support kernels and the baseline are built once.
    let cache = tempfile::tempdir().unwrap();
    for fixture in ["constructs_at_load", "destructs_at_unload"] {
        let err = refused_after_build(fixture, cache.path(), &nvcc);
        assert!(
            err.contains("_GLOBAL__sub_I")
                && err.contains(".init_array")
                && err.contains("namespace-scope object")
                && err.contains("[[scan.allow]]")
                && err.contains(&format!("candidate = \"{fixture}\""))
                && err.contains("call = \"global constructor\""),
            "{fixture}: {err}"
        );
        // An exception with a reason admits it (the run records it with the scan's).
        let allow = format!("[[scan.allow]]\ncandidate = \"{fixture}\"\ncall = \"global constructor\"\nreason = \"test: a table built at load\"\n");
        let d = scratch(fixture, &allow);
        let out = build(d.path(), cache.path(), &nvcc);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{fixture}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_look_alike_init_entry_or_an_ifunc_resolver_is_refused_after_the_build() {
    let nvcc = nvcc_or_explain();
    let cache = tempfile::tempdir().unwrap();
    for (fixture, why) in [
        (
            "init_entry_under_an_admitted_name",
            "one libcudart_static_* entry more than a plain nvcc build has",
        ),
        ("ifunc_resolver", "indirect function (ifunc)"),
    ] {
        let err = refused_after_build(fixture, cache.path(), &nvcc);
        assert!(err.contains(why), "{fixture}: {err}");
    }
}

#[test]
fn a_function_local_static_builds() {
    let nvcc = nvcc_or_explain();
    let cache = tempfile::tempdir().unwrap();
    let d = scratch("constructs_on_first_call", "");
    let out = build(d.path(), cache.path(), &nvcc);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Exactly what a plain nvcc-built library runs at load and unload, nothing refused.
    let so = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "so"))
        .collect::<Vec<_>>();
    assert!(!so.is_empty());
    for p in so {
        assert_eq!(
            kpilot::load_code::foreign_hooks(&p).unwrap(),
            vec![],
            "{}",
            p.display()
        );
    }
}
