//! The fidelity rule `kpilot check` applies, on synthetic fidelity records (no GPU): a baseline
//! is faithful on a card only when that card's latest complete record of the current baseline
//! has every gated production row within 5% and both sides correct, unless task.toml explains.

use kpilot::error::{exit, Error};
use kpilot::fidelity::rule::{
    self, FidelityRecord, FidelityRow, Method, SideFidelity, UpstreamUsed,
};
use kpilot::task::rows::RowKind;
use kpilot::task::spec::Explained;
use kpilot::task::Task;
use std::path::PathBuf;

fn task() -> Task {
    Task::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tasks"),
        "fuse_scale_shift",
    )
    .expect("the shipped task loads")
}

fn side(us: f64, correct: bool) -> SideFidelity {
    SideFidelity {
        status: "ok".into(),
        us: Some(us),
        samples_us: vec![us],
        dispatch_path: "p".into(),
        check: None,
        correct: Some(correct),
    }
}

/// Every production row of the task with upstream at 20 us and the baseline at `base(name)`.
fn rows(t: &Task, base: impl Fn(&str) -> f64) -> Vec<FidelityRow> {
    t.rows
        .iter()
        .filter(|r| r.kind == RowKind::Production && r.runs())
        .map(|r| {
            let b = base(&r.name);
            FidelityRow {
                name: r.name.clone(),
                kind: r.kind,
                entry: t.spec.entries[r.entry].name.clone(),
                bytes: r.bytes,
                upstream: side(20.0, true),
                baseline: side(b, true),
                ratio: Some(b / 20.0),
                gated: true,
                within_band: Some((b / 20.0 - 1.0).abs() <= rule::BAND),
                error: None,
            }
        })
        .collect()
}

fn record(
    t: &Task,
    card: &str,
    rows: Vec<FidelityRow>,
    baseline_sha: &str,
    partial: bool,
) -> FidelityRecord {
    FidelityRecord {
        schema: 1,
        run_id: format!("run-{card}-{partial}"),
        time_utc: "2026-11-30T00:00:00Z".into(),
        task: t.name().into(),
        card: card.into(),
        device: kpilot::gpu::DeviceInfo {
            name: card.into(),
            uuid: String::new(),
            compute_capability: (9, 0),
            sm_count: 132,
            l2_bytes: 60 << 20,
            total_mem_bytes: 0,
            driver_version: String::new(),
            sm_clock_khz: None,
            mem_clock_khz: None,
            smi: None,
        },
        git: kpilot::record::GitInfo {
            commit: None,
            dirty: None,
            changed: None,
            source: "test".into(),
            kpilot_sha256: None,
        },
        upstream: UpstreamUsed {
            package: t.spec.upstream.package.clone(),
            version: t.spec.upstream.version.clone(),
            wheel_sha256: t.spec.upstream.wheel_sha256.clone(),
            files: t.spec.upstream.files.clone(),
            how: "adapter a.py".into(),
            shim_flags: vec![],
        },
        baseline_sha256: baseline_sha.into(),
        rows_sha256: t.hashes.rows.clone(),
        how_sha256: rule::how_sha256(t).unwrap(),
        build: rule::FidelityBuild {
            nvcc: "nvcc".into(),
            nvcc_version: String::new(),
            arch: "sm_90a".into(),
            flags: vec![],
        },
        env: serde_json::Value::Null,
        method: Method {
            launches_per_graph: 50,
            replays: 11,
            description: String::new(),
            check_units: 512,
        },
        seed: 1,
        partial,
        verdict: rule::judge(t, &rows, partial),
        rows,
        band: rule::BAND,
        min_us: rule::MIN_US,
        wall_seconds: 1.0,
    }
}

fn ledger_with(t: &Task, recs: &[FidelityRecord]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(format!("{}.jsonl", t.name()));
    // A run record in between: the rule reads only fidelity records.
    kpilot::ledger::append(&p, &serde_json::json!({"kind": "run", "task": t.name()})).unwrap();
    for r in recs {
        let rec = kpilot::record::Record::Fidelity(Box::new(r.clone()));
        kpilot::ledger::append(&p, &rec).unwrap();
    }
    d
}

#[test]
fn every_row_within_the_band_passes() {
    let t = task();
    let v = rule::judge(&t, &rows(&t, |_| 20.9), false);
    assert!(v.pass, "{:?}", v.failures);
    assert_eq!(v.within, v.gated);
    assert!(v.gated > 0);
}

#[test]
fn a_row_outside_the_band_fails_by_name_either_way() {
    let t = task();
    let victim = rows(&t, |_| 20.0)[0].name.clone();
    for slow in [24.0, 15.0] {
        let v = rule::judge(
            &t,
            &rows(&t, |n| if n == victim { slow } else { 20.0 }),
            false,
        );
        assert!(!v.pass);
        assert_eq!(v.failures.len(), 1);
        assert!(
            v.failures[0].starts_with(&victim) && v.failures[0].contains("outside ±5%"),
            "{}",
            v.failures[0]
        );
    }
}

#[test]
fn an_explained_row_passes_and_is_listed_with_its_reason() {
    let mut t = task();
    let victim = rows(&t, |_| 20.0)[0].name.clone();
    t.spec.fidelity.explained.push(Explained {
        row: victim.clone(),
        reason: "the reason".into(),
    });
    let v = rule::judge(
        &t,
        &rows(&t, |n| if n == victim { 30.0 } else { 20.0 }),
        false,
    );
    assert!(v.pass, "{:?}", v.failures);
    assert!(v.explained[0].contains("the reason"));
}

#[test]
fn wrong_upstream_output_fails_and_fast_rows_are_not_gated() {
    let t = task();
    let mut rs = rows(&t, |_| 20.0);
    rs[1].upstream.correct = Some(false);
    rs[2].upstream.us = Some(5.0);
    rs[2].baseline.us = Some(9.0);
    rs[2].ratio = Some(1.8);
    rs[2].gated = false;
    let v = rule::judge(&t, &rs, false);
    assert_eq!(v.failures.len(), 1, "{:?}", v.failures);
    assert!(v.failures[0].contains("upstream output fails the float64 reference"));
    assert!(v.not_gated.iter().any(|l| l.starts_with(&rs[2].name)));
}

#[test]
fn a_missing_production_row_fails_a_full_record() {
    let t = task();
    let mut rs = rows(&t, |_| 20.0);
    let gone = rs.pop().unwrap().name;
    let v = rule::judge(&t, &rs, false);
    assert!(
        v.failures
            .iter()
            .any(|f| f.starts_with(&gone) && f.contains("missing")),
        "{:?}",
        v.failures
    );
    assert!(
        rule::judge(&t, &rs, true).pass,
        "a partial record is not judged for completeness"
    );
}

#[test]
fn check_needs_a_complete_record_of_the_current_baseline() {
    let t = task();
    let gate = |r: Result<Vec<String>, Error>| match r {
        Err(e @ Error::Gate(_)) => {
            assert_eq!(e.exit_code(), exit::PERF_GATE);
            e.to_string()
        }
        other => panic!("expected the fidelity rule to fail, got {other:?}"),
    };
    // No record at all.
    let d = ledger_with(&t, &[]);
    assert!(gate(rule::verify(&t, d.path())).contains("never measured"));
    // A record of another baseline, and a partial one of this baseline: neither counts.
    let d = ledger_with(
        &t,
        &[
            record(&t, "NVIDIA H200", rows(&t, |_| 20.0), "0000", false),
            record(
                &t,
                "NVIDIA H200",
                rows(&t, |_| 20.0),
                &t.hashes.baseline,
                true,
            ),
        ],
    );
    assert!(gate(rule::verify(&t, d.path())).contains("never measured"));
    // A good record passes; a later bad one on the same card replaces it; another card is judged on its own.
    let good = record(
        &t,
        "NVIDIA H200",
        rows(&t, |_| 20.5),
        &t.hashes.baseline,
        false,
    );
    let d = ledger_with(&t, std::slice::from_ref(&good));
    let lines = rule::verify(&t, d.path()).expect("passes");
    assert!(
        lines[0].contains("NVIDIA H200") && lines[0].contains("within ±5%"),
        "{lines:?}"
    );
    let victim = good.rows[0].name.clone();
    let bad = record(
        &t,
        "NVIDIA H200",
        rows(&t, |n| if n == victim { 28.0 } else { 20.0 }),
        &t.hashes.baseline,
        false,
    );
    let d = ledger_with(&t, &[good.clone(), bad.clone()]);
    assert!(gate(rule::verify(&t, d.path())).contains(&victim));
    let d = ledger_with(
        &t,
        &[
            bad,
            good.clone(),
            record(
                &t,
                "NVIDIA H100 80GB HBM3",
                rows(&t, |_| 20.0),
                &t.hashes.baseline,
                false,
            ),
        ],
    );
    assert_eq!(
        rule::verify(&t, d.path())
            .expect("latest per card passes")
            .len(),
        2
    );
}

#[test]
fn records_of_another_pin_adapter_rows_or_a_weaker_method_do_not_count() {
    let t = task();
    let good = record(
        &t,
        "NVIDIA H200",
        rows(&t, |_| 20.0),
        &t.hashes.baseline,
        false,
    );
    let mut stale = Vec::new();
    let mut r = good.clone();
    r.upstream.version = "0.5.22".into();
    stale.push((r, "another upstream pin"));
    let mut r = good.clone();
    r.how_sha256 = "0".repeat(64);
    stale.push((r, "another adapter or shim"));
    let mut r = good.clone();
    r.rows_sha256 = "0".repeat(64);
    stale.push((r, "another rows file"));
    let mut r = good.clone();
    r.method.launches_per_graph = 1;
    stale.push((r, "a weaker method"));
    for (r, why) in stale {
        let d = ledger_with(&t, &[r]);
        match rule::verify(&t, d.path()) {
            Err(e) => assert!(e.to_string().contains(why), "{why}: {e}"),
            Ok(l) => panic!("{why}: a stale record was accepted: {l:?}"),
        }
    }
    let d = ledger_with(&t, &[good]);
    assert!(rule::verify(&t, d.path()).is_ok());
    assert!(rule::standing(&t, d.path(), "NVIDIA H200").unwrap().is_ok());
    assert!(rule::standing(&t, d.path(), "NVIDIA H100 80GB HBM3")
        .unwrap()
        .unwrap_err()
        .contains("no fidelity record"));
}

#[test]
fn an_explanation_excuses_a_timing_miss_never_a_wrong_output() {
    let mut t = task();
    let mut rs = rows(&t, |_| 20.0);
    let victim = rs[0].name.clone();
    rs[0].upstream.correct = Some(false);
    t.spec.fidelity.explained.push(Explained {
        row: victim.clone(),
        reason: "a reason".into(),
    });
    let v = rule::judge(&t, &rs, false);
    assert!(
        !v.pass && v.failures[0].starts_with(&victim),
        "{:?}",
        v.failures
    );
}

#[test]
fn a_slow_baseline_on_a_fast_upstream_row_is_gated() {
    assert!(rule::gated(RowKind::Production, Some(5.0), Some(12.0)));
    assert!(rule::gated(RowKind::Production, Some(12.0), Some(5.0)));
    assert!(!rule::gated(RowKind::Production, Some(5.0), Some(9.0)));
    assert!(!rule::gated(RowKind::Regression, Some(50.0), Some(50.0)));
}
