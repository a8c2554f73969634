//! scripts/gpu_candidates.sh, the spec runner every GPU lease script goes through: each spec
//! becomes exactly one kpilot command, the summary names every spec with its exit code, and the
//! script exits with the worst code. A stand-in kpilot (KPILOT_BIN) logs its arguments, so this
//! runs without a GPU.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_spec_becomes_one_kpilot_command_and_the_worst_exit_code_wins() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("argv.txt");
    let fake = dir.path().join("kpilot");
    // Exits 1 for an A/A run (as kpilot does: the gate must fail), 0 otherwise.
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$*\" in *--aa*) exit 1;; esac\nexit 0\n",
            log.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out_dir = dir.path().join("out");
    let res_dir = dir.path().join("res");
    let specs = [
        "rotary_embedding",
        "norm_infer:v4c",
        "norm_infer:v4c:quick",
        "qknorm_rope:aa",
        "ncu:qknorm_rope:joyai-edit_qknorm_rope_T7904_H32",
        "ncu:qknorm_rope:joyai-edit_qknorm_rope_T7904_H32:v4b",
        "regress",
        "regress:norm_infer,rotary_embedding",
    ];
    let out = Command::new("bash")
        .arg(repo().join("scripts/gpu_candidates.sh"))
        .args(specs)
        .env("KPILOT_BIN", &fake)
        .env("OUT", &out_dir)
        .env("KPILOT_RES", &res_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the A/A run's exit 1 is the worst"
    );
    let argv = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = argv.lines().collect();
    let md = |n: usize| format!("--markdown {}/{n}-regress.md", res_dir.display());
    let junit = |n: usize| format!("--junit {}/{n}-regress.junit.xml", res_dir.display());
    let want = [
        "task rotary_embedding".to_string(),
        "task norm_infer --candidate v4c".into(),
        "task norm_infer --candidate v4c --quick".into(),
        "task qknorm_rope --aa".into(),
        "ncu qknorm_rope --row joyai-edit_qknorm_rope_T7904_H32".into(),
        "ncu qknorm_rope --row joyai-edit_qknorm_rope_T7904_H32 --candidate v4b".into(),
        format!("regress {} {}", md(7), junit(7)),
        format!("regress norm_infer rotary_embedding {} {}", md(8), junit(8)),
    ];
    assert_eq!(lines, want);
    let summary = std::fs::read_to_string(res_dir.join("summary.txt")).unwrap();
    for (spec, code) in specs.iter().zip([0, 0, 0, 1, 0, 0, 0, 0]) {
        assert!(
            summary.contains(&format!("{spec}: exit {code}, wall ")),
            "{spec} in\n{summary}"
        );
    }
    assert!(out_dir.join("results.tgz").exists(), "the archive");
}

#[test]
fn task_args_reach_every_task_run_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("argv.txt");
    let fake = dir.path().join("kpilot");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\nexit 0\n", log.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let res_dir = dir.path().join("res");
    let specs = [
        "rotary_embedding",
        "norm_infer:v4c",
        "norm_infer:v4c:quick",
        "qknorm_rope:aa",
        "ncu:qknorm_rope:joyai-edit_qknorm_rope_T7904_H32",
        "regress:norm_infer",
    ];
    let out = Command::new("bash")
        .arg(repo().join("scripts/gpu_candidates.sh"))
        .args(specs)
        .env("KPILOT_BIN", &fake)
        .env("OUT", dir.path().join("out"))
        .env("KPILOT_RES", &res_dir)
        .env("TASK_ARGS", "--row-timeout 20")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let argv = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = argv.lines().collect();
    let md = format!("--markdown {}/6-regress.md", res_dir.display());
    let junit = format!("--junit {}/6-regress.junit.xml", res_dir.display());
    let want = [
        "task rotary_embedding --row-timeout 20".to_string(),
        "task norm_infer --candidate v4c --row-timeout 20".into(),
        "task norm_infer --candidate v4c --quick --row-timeout 20".into(),
        "task qknorm_rope --aa --row-timeout 20".into(),
        "ncu qknorm_rope --row joyai-edit_qknorm_rope_T7904_H32".into(),
        format!("regress norm_infer {md} {junit}"),
    ];
    assert_eq!(lines, want);
}

#[test]
fn a_fidelity_spec_without_the_upstream_folder_says_so_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo().join("scripts/gpu_candidates.sh"))
        .arg("fidelity:no_such_task")
        .env("KPILOT_BIN", "/bin/false")
        .env("OUT", dir.path().join("out"))
        .env("KPILOT_RES", dir.path().join("res"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let log = std::fs::read_to_string(dir.path().join("res/1-fidelity-no_such_task.txt")).unwrap();
    assert!(log.contains("scripts/fetch_upstream.sh"), "{log}");
}

#[test]
fn the_lease_script_refuses_to_run_without_the_commit() {
    let out = Command::new("bash")
        .arg(repo().join("scripts/gpu_lease.sh"))
        .env_remove("KPILOT_GIT_COMMIT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KPILOT_GIT_COMMIT"));
}

#[test]
fn a_scratch_folder_that_is_not_empty_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let res = dir.path().join("res");
    std::fs::create_dir_all(&res).unwrap();
    std::fs::write(res.join("keep.txt"), "mine").unwrap();
    let out = Command::new("bash")
        .arg(repo().join("scripts/gpu_candidates.sh"))
        .arg("rotary_embedding")
        .env("KPILOT_BIN", "/bin/true")
        .env("OUT", dir.path().join("out"))
        .env("KPILOT_RES", &res)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(res.join("keep.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn a_lease_whose_gpu_tests_fail_exits_with_their_code() {
    // A copy of the scripts in a scratch tree whose GPU test binary fails (exit 101, as a failed
    // cargo test binary does): the lease must not hide it behind its specs' success.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("scripts")).unwrap();
    std::fs::create_dir_all(root.join(".gpu-bin")).unwrap();
    std::fs::copy(
        repo().join("scripts/gpu_lease.sh"),
        root.join("scripts/gpu_lease.sh"),
    )
    .unwrap();
    let fake = root.join(".gpu-bin/gpu-tests");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'test result: FAILED. 0 passed; 1 failed'\nexit 101\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = Command::new("bash")
        .arg(root.join("scripts/gpu_lease.sh"))
        .env("KPILOT_GIT_COMMIT", "x")
        .env("TESTS", "all")
        .env("CACHE", "none")
        .env("OUT", root.join("out"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(101),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("gpu tests: exit 101"));
    assert!(root.join("out/gputests.txt").exists());
}
