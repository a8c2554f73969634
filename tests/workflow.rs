//! The nightly workflow and the Slurm script: valid YAML with the expected jobs, and every kpilot
//! command and script they name exists.

use std::path::PathBuf;
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_nightly_workflow_has_schedule_shards_gpu_runners_and_a_merge() {
    let text = std::fs::read_to_string(repo().join(".github/workflows/nightly.yml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).expect("valid YAML");
    let w = &docs[0];
    let on = &w["on"];
    assert!(
        on["schedule"][0]["cron"].as_str().is_some(),
        "a cron schedule"
    );
    assert!(!on["workflow_dispatch"].is_badvalue(), "manual dispatch");
    let jobs = &w["jobs"];
    for j in ["build", "regress", "merge"] {
        assert!(!jobs[j].is_badvalue(), "job {j}");
    }
    let regress = &jobs["regress"];
    assert_eq!(regress["needs"].as_str(), Some("build"));
    let shards = regress["strategy"]["matrix"]["shard"]
        .as_vec()
        .expect("a shard matrix");
    assert!(shards.len() >= 2);
    let runs_on: Vec<&str> = regress["runs-on"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        runs_on.contains(&"self-hosted") && runs_on.contains(&"gpu"),
        "{runs_on:?}"
    );
    let merge = &jobs["merge"];
    assert_eq!(merge["needs"].as_str(), Some("regress"));
    assert_eq!(
        merge["if"].as_str(),
        Some("always()"),
        "the merge runs when a shard fails"
    );
    assert!(text.contains("$GITHUB_STEP_SUMMARY") && text.contains("--junit"));
    assert!(text.contains("kpilot regress") && text.contains("kpilot merge"));
}

#[test]
fn the_commands_and_scripts_the_workflow_names_exist() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_kpilot"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for cmd in ["regress", "merge", "accept", "compare"] {
        assert!(help.contains(cmd), "kpilot {cmd}");
    }
    for s in ["scripts/stage_gpu_bins.sh", "scripts/slurm_nightly.sh"] {
        assert!(repo().join(s).exists(), "{s}");
    }
    let text = std::fs::read_to_string(repo().join(".github/workflows/nightly.yml")).unwrap();
    for flag in ["--shard", "--junit", "--markdown", "--ids-out"] {
        assert!(text.contains(flag), "{flag}");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kpilot"))
            .args(["regress", "--help"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(flag),
            "regress {flag}"
        );
    }
}
