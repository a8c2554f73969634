//! AGENTS.md is short and true: every `kpilot <command>` it names exists, and so does every path.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_command_and_file_agents_md_names_exists() {
    let text = std::fs::read_to_string(repo().join("AGENTS.md")).unwrap();
    assert!(text.lines().count() < 60, "keep it short");
    let mut named = 0;
    for part in text.split("`kpilot ").skip(1) {
        let cmd: Vec<&str> = part.split('`').next().unwrap().split_whitespace().collect();
        let sub: Vec<&str> = cmd
            .iter()
            .take_while(|w| !w.starts_with('<') && !w.starts_with('-'))
            .copied()
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_kpilot"))
            .args(&sub)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`kpilot {}` does not exist",
            sub.join(" ")
        );
        let help = String::from_utf8_lossy(&out.stdout);
        for flag in cmd.iter().filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(flag),
                "`kpilot {}` has no {flag}",
                sub.join(" ")
            );
        }
        named += 1;
    }
    assert!(named >= 8, "{named}");
    for path in ["kernels/README.md", "tasks", "ncu"] {
        assert!(repo().join(path).exists(), "{path}");
    }
}

#[test]
fn candidate_new_copies_with_a_parent_header_and_never_overwrites() {
    let d = tempfile::tempdir().unwrap();
    let copy = |from: &str, to: &std::path::Path| {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(repo().join(from)).unwrap().flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    };
    let t = d.path().join("tasks/causal_conv3d_cat_pad");
    copy("tasks/causal_conv3d_cat_pad", &t);
    copy(
        "tasks/causal_conv3d_cat_pad/candidates",
        &t.join("candidates"),
    );
    // The ledger as stored: its sealed segments and its live file.
    kpilot::ledger::copy(
        &repo().join("ledger/causal_conv3d_cat_pad.jsonl"),
        &d.path().join("ledger/causal_conv3d_cat_pad.jsonl"),
    )
    .unwrap();
    let kp = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kpilot"))
            .arg("--root")
            .arg(d.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = kp(&[
        "candidate",
        "new",
        "causal_conv3d_cat_pad",
        "v9",
        "--from",
        "v1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(t.join("candidates/v9.cu")).unwrap();
    let parent = kpilot::candidate_cmd::parent_of(&text).unwrap();
    let v1 = std::fs::read(t.join("candidates/v1.cu")).unwrap();
    assert_eq!(
        parent,
        ("v1".to_string(), Some(kpilot::task::sha256_hex(&v1)))
    );
    assert!(text.ends_with(&String::from_utf8_lossy(&v1).to_string()));
    // The tree puts v9 under v1.
    let out = kp(&["ledger", "lineage", "causal_conv3d_cat_pad"]);
    let tree = String::from_utf8_lossy(&out.stdout).into_owned();
    let (i1, i9) = (tree.find("- v1:").unwrap(), tree.find("- v9:").unwrap());
    assert!(i9 > i1, "{tree}");
    let v9_line = tree.lines().find(|l| l.contains("- v9:")).unwrap();
    assert!(
        v9_line.starts_with("    - v9"),
        "v9 is indented under v1: {tree}"
    );
    // Never overwrites, and names what is wrong.
    let out = kp(&[
        "candidate",
        "new",
        "causal_conv3d_cat_pad",
        "v9",
        "--from",
        "baseline",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("never overwritten"));
    let out = kp(&[
        "candidate",
        "new",
        "causal_conv3d_cat_pad",
        "v10",
        "--from",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(7));
    let out = kp(&[
        "candidate",
        "new",
        "causal_conv3d_cat_pad",
        "../x",
        "--from",
        "v1",
    ]);
    assert_eq!(out.status.code(), Some(7));
    // A name the ledger knows is refused even where its file is gone (v3a was dropped): a new
    // file under it would inherit the old version's results.
    assert!(!t.join("candidates/v3a.cu").exists());
    let out = kp(&[
        "candidate",
        "new",
        "causal_conv3d_cat_pad",
        "v3a",
        "--from",
        "v1",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in ledger/"));
    // Dropped versions (files removed, runs recorded) stay in the tree, marked, under the
    // parent their runs recorded; children of a removed file stay under it.
    std::fs::remove_file(t.join("candidates/v1.cu")).unwrap();
    let out = kp(&["ledger", "lineage", "causal_conv3d_cat_pad"]);
    let tree = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |name: &str| {
        tree.lines()
            .find(|l| {
                l.trim_start().starts_with(&format!("- {name} "))
                    || l.trim_start().starts_with(&format!("- {name}:"))
            })
            .unwrap_or_else(|| panic!("{name} missing: {tree}"))
            .to_string()
    };
    assert!(
        line("v1").starts_with("  - v1 (file removed): NVIDIA H200"),
        "{tree}"
    );
    assert!(
        line("v3a").starts_with("    - v3a (file removed): NVIDIA H200"),
        "{tree}"
    );
    assert!(line("v9").starts_with("    - v9:"), "{tree}");
}

#[test]
fn brief_has_the_abi_the_rows_production_first_and_the_rules() {
    let out = Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .current_dir(repo())
        .args(["brief", "causal_conv3d_cat_pad", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["brief_schema"], kpilot::brief::BRIEF_SCHEMA);
    assert!(b["abi"]["symbols"][0]
        .as_str()
        .unwrap()
        .contains("kp_fused_causal_conv3d_cat_pad"));
    let rows = b["rows"].as_array().unwrap();
    let first_other = rows.iter().position(|r| r["kind"] != "production").unwrap();
    assert!(rows[..first_other]
        .iter()
        .all(|r| r["kind"] == "production"));
    assert!(rows[first_other..]
        .iter()
        .all(|r| r["kind"] != "production"));
    assert!(rows[0]["speed_of_light_us"].as_f64().unwrap() > 0.0);
    assert!(b["rules"].as_array().unwrap().len() >= 8);
    let md = Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .current_dir(repo())
        .args(["brief", "causal_conv3d_cat_pad"])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.contains("## Rules") && md.contains("cudaDeviceSynchronize"),
        "{md}"
    );
}

/// docs/brief-<task>.md is `kpilot brief <task>` as committed (regenerate: `for t in $(ls tasks);
/// do target/release/kpilot brief $t > docs/brief-$t.md; done`). The ledger moves the numbers, so
/// only what the binary fixes is compared: the first line and the section headings.
#[test]
fn every_task_has_its_brief_under_docs_from_this_binary() {
    let headings = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("## "))
            .map(str::to_string)
            .collect()
    };
    let tasks = kpilot::task::names(&repo()).unwrap();
    assert!(tasks.len() >= 3, "{tasks:?}");
    for task in tasks {
        let path = repo().join(format!("docs/brief-{task}.md"));
        let doc = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (kpilot brief {task} > it)", path.display()));
        let out = Command::new(env!("CARGO_BIN_EXE_kpilot"))
            .current_dir(repo())
            .args(["brief", &task])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let now = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            doc.lines().next(),
            now.lines().next(),
            "{}: regenerate with kpilot brief {task}",
            path.display()
        );
        assert_eq!(
            headings(&doc),
            headings(&now),
            "{}: regenerate with kpilot brief {task}",
            path.display()
        );
    }
}
