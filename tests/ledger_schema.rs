//! ledger/schema.json is generated from the record types and cannot drift from them, and every
//! line of every ledger in the repository validates against it and parses into a typed record.

use kpilot::record::{schema_json, Record};
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ledgers() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("ledger"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no ledger/*.jsonl");
    v
}

#[test]
fn the_checked_in_schema_is_the_generated_one() {
    let file = std::fs::read_to_string(repo().join("ledger/schema.json")).unwrap();
    assert!(
        file == schema_json(),
        "ledger/schema.json is out of date: regenerate it with `kpilot ledger schema > ledger/schema.json`"
    );
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

#[test]
fn every_ledger_line_validates_against_the_schema_and_parses() {
    let v = validator();
    let mut lines = 0;
    for path in ledgers() {
        // The sealed segments (ledger/archive/<task>/*.jsonl.gz) and the live file.
        let parts = kpilot::ledger::load(&path).unwrap();
        for (file, n, l) in parts.lines() {
            if l.trim().is_empty() {
                continue;
            }
            let at = format!("{}:{}", file.display(), n);
            let value: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{at}: not JSON: {e}"));
            let errors: Vec<String> = v
                .iter_errors(&value)
                .take(5)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{at}: {}", errors.join("; "));
            let rec: Record = serde_json::from_value(value)
                .unwrap_or_else(|e| panic!("{at}: does not parse as a record: {e}"));
            // What the types write back is valid too (the writers serialize these types).
            let again = serde_json::to_value(&rec).unwrap();
            let errors: Vec<String> = v
                .iter_errors(&again)
                .take(5)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "{at} as re-written: {}",
                errors.join("; ")
            );
            lines += 1;
        }
    }
    assert!(lines > 0);
}

#[test]
fn the_schema_catches_a_wrong_type_a_missing_field_and_an_unknown_field() {
    let v = validator();
    let text = kpilot::ledger::load(&repo().join("ledger/fuse_scale_shift.jsonl"))
        .unwrap()
        .joined();
    let run: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|r| r["kind"] == "run")
        .unwrap();
    assert!(v.is_valid(&run));
    let mut wrong = run.clone();
    wrong["rows"][0]["speedup"] = serde_json::json!("fast");
    assert!(!v.is_valid(&wrong));
    assert!(serde_json::from_value::<Record>(wrong).is_err());
    let mut missing = run.clone();
    missing["gate"].as_object_mut().unwrap().remove("pass");
    assert!(!v.is_valid(&missing));
    assert!(serde_json::from_value::<Record>(missing).is_err());
    let mut unknown = run.clone();
    unknown["headline"]["bogus"] = serde_json::json!(1);
    assert!(!v.is_valid(&unknown));
    assert!(serde_json::from_value::<Record>(unknown).is_err());
    let mut kind = run;
    kind["kind"] = serde_json::json!("walk");
    assert!(!v.is_valid(&kind));
}
