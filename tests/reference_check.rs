//! The float64 references and the host-side checks, end to end on the CPU: outputs encoded from
//! the reference pass every gate; one wrong, unwritten or NaN element is caught and located.

use kpilot::check::{self, POISON};
use kpilot::dtype::DType;
use kpilot::reference::{self, Inputs};
use kpilot::task::spec::Tolerance;
use kpilot::task::{Row, Task};
use std::path::PathBuf;

fn task() -> Task {
    Task::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tasks"),
        "fuse_scale_shift",
    )
    .unwrap()
}

fn row<'a>(t: &'a Task, name: &str) -> &'a Row {
    t.rows.iter().find(|r| r.name == name).unwrap()
}

fn encode(dtype: DType, v: f64) -> Vec<u8> {
    match dtype {
        DType::Bf16 => half::bf16::from_f64(v).to_bits().to_le_bytes().to_vec(),
        DType::Fp16 => half::f16::from_f64(v).to_bits().to_le_bytes().to_vec(),
        DType::Fp32 => (v as f32).to_le_bytes().to_vec(),
        _ => unreachable!(),
    }
}

/// What a perfect kernel would write: every written tensor from the reference, rounded to its dtype.
fn perfect_outputs(t: &Task, r: &Row, seed: u64) -> Vec<Vec<u8>> {
    let rf = reference::lookup(&t.spec.entries[r.entry].reference).unwrap();
    let written = reference::written(r);
    let inputs = Inputs::new(r, seed);
    let mut outs: Vec<Vec<u8>> = vec![Vec::new(); written.len()];
    let mut bufs = vec![Vec::new(); written.len()];
    for u in 0..rf.units(r) {
        rf.compute(r, &inputs, u, &mut bufs);
        for (k, &i) in written.iter().enumerate() {
            let dt = r.tensors[i].as_ref().unwrap().dtype;
            for &v in &bufs[k] {
                outs[k].extend(encode(dt, v));
            }
        }
    }
    outs
}

fn run_check(t: &Task, r: &Row, seed: u64, outs: &[Vec<u8>]) -> check::Check {
    let rf = reference::lookup(&t.spec.entries[r.entry].reference).unwrap();
    let written = reference::written(r);
    let pairs: Vec<_> = written
        .iter()
        .zip(outs)
        .map(|(&i, b)| (r.tensors[i].as_ref().unwrap(), b.as_slice()))
        .collect();
    let units: Vec<usize> = (0..rf.units(r)).collect();
    let tol = |d: DType| {
        t.tolerance(d).unwrap_or(Tolerance {
            atol: 0.0,
            rtol: 0.0,
        })
    };
    let mut k = check::compare(r, rf, seed, &pairs, &units, &tol, POISON[0]);
    for (d, b) in &pairs {
        k = k.merge(check::scan(d, b, POISON[0]));
    }
    k
}

#[test]
fn ep1_reference_is_x_times_k_plus_scale_plus_shift_with_broadcast() {
    let t = task();
    let r = row(&t, "reg_fss_odd_B3_L33_C1001_bf16"); // scale [3, 1, C]
    let rf = reference::lookup("fuse_scale_shift").unwrap();
    let inp = Inputs::new(r, 11);
    let mut out = vec![Vec::new()];
    let u = 2 * 33 + 5; // b = 2, l = 5
    rf.compute(r, &inp, u, &mut out);
    let c = 1001u64;
    for ci in [0u64, 500, 1000] {
        let x = inp.at(0, u as u64 * c + ci);
        let s = inp.at(1, 2 * c + ci); // broadcast over L
        let h = inp.at(2, u as u64 * c + ci);
        assert_eq!(out[0][ci as usize], x * (0.0 + s) + h);
    }
}

#[test]
fn the_scalar_zero_fast_path_copies_x_whatever_scale_constant_says() {
    let t = task();
    let r = row(&t, "reg_fss_scalar_zero_fast_path_k0");
    let rf = reference::lookup("fuse_scale_shift").unwrap();
    let inp = Inputs::new(r, 3);
    let mut out = vec![Vec::new()];
    rf.compute(r, &inp, 7, &mut out);
    assert_eq!(
        out[0][10],
        inp.at(0, 7 * 768 + 10),
        "out = x, not x * (0 + 0) + 0"
    );
}

#[test]
fn layernorm_reference_normalizes_and_selects_by_index() {
    let t = task();
    let r = row(&t, "reg_ln_select01_odd_L17_C999_bf16");
    let rf = reference::lookup("fuse_layernorm_scale_shift_gate_select01").unwrap();
    let inp = Inputs::new(r, 5);
    let mut out = vec![Vec::new(), Vec::new()];
    for u in 0..17 {
        rf.compute(r, &inp, u, &mut out);
        let sel = inp.at(9, u as u64) != 0.0;
        let (sc, sh, g) = if sel { (6, 7, 8) } else { (3, 4, 5) };
        // Restate the op for one row: LayerNorm in float64, then the selected modulation.
        let x: Vec<f64> = (0..999).map(|c| inp.at(0, u as u64 * 999 + c)).collect();
        let mean = x.iter().sum::<f64>() / 999.0;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 999.0;
        for c in [0usize, 500, 998] {
            let want = (x[c] - mean) / (var + 1e-5).sqrt() * (1.0 + inp.at(sc, c as u64))
                + inp.at(sh, c as u64);
            assert!(
                (out[0][c] - want).abs() < 1e-12,
                "unit {u}, c {c}: {} vs {want}",
                out[0][c]
            );
        }
        assert_eq!(
            out[1][3],
            inp.at(g, 3),
            "gate_out passes the selected gate through"
        );
    }
}

#[test]
fn perfect_outputs_pass_and_every_kind_of_defect_is_caught_and_located() {
    let t = task();
    for name in [
        "reg_fss_fp16_scale2d_B2_L257_C1536_k1",
        "reg_fss_fp32_L6_C512_k1",
        "reg_residual_ln_select01_L33_C512_fp16_weight",
        "reg_fss_strided_fp32_scale_L64_C256",
        "reg_fss_frames4d_B2_L96_C512_bf16",
    ] {
        let r = row(&t, name);
        let mut outs = perfect_outputs(&t, r, 42);
        let k = run_check(&t, r, 42, &outs);
        assert_eq!(
            (k.mismatches, k.unwritten, k.nonfinite),
            (0, 0, 0),
            "{name}: {:?}",
            k.first
        );
        assert!(k.compared > 0 && k.compared == k.scanned);
        let dt = r.tensors[reference::written(r)[0]].as_ref().unwrap().dtype;
        let s = dt.size();
        // Another seed's inputs give other outputs: the check is not vacuous.
        assert!(run_check(&t, r, 43, &outs).mismatches > 0, "{name}");
        // One wrong element.
        let good = outs[0][17 * s..18 * s].to_vec();
        outs[0][17 * s..18 * s].copy_from_slice(&encode(dt, 1000.0));
        let k = run_check(&t, r, 42, &outs);
        assert_eq!(k.mismatches, 1, "{name}");
        assert!(k.first.unwrap().contains("[17]"));
        // One unwritten element (poison left).
        let p = check::pattern_bits(POISON[0], dt).to_le_bytes();
        outs[0][17 * s..18 * s].copy_from_slice(&p[..s]);
        let k = run_check(&t, r, 42, &outs);
        assert_eq!((k.unwritten, k.mismatches), (1, 0), "{name}");
        outs[0][17 * s..18 * s].copy_from_slice(&good);
        // One infinity.
        outs[0][3 * s..4 * s].copy_from_slice(&encode(dt, f64::INFINITY));
        assert_eq!(run_check(&t, r, 42, &outs).nonfinite, 1, "{name}");
    }
}

#[test]
fn the_reference_reads_only_units_it_is_asked_for() {
    // Checking a sample must cost in proportion to the sample: compare 3 units of the largest
    // production row against a fake output without touching the other 37797 units' inputs.
    let t = task();
    let r = t
        .rows
        .iter()
        .find(|r| r.name.starts_with("wan-t2v"))
        .unwrap();
    let rf = reference::lookup("fuse_scale_shift").unwrap();
    let d = r.tensors[3].as_ref().unwrap();
    let bytes = vec![0u8; (d.numel() * 2) as usize];
    let t0 = std::time::Instant::now();
    let k = check::compare(
        r,
        rf,
        1,
        &[(d, &bytes)],
        &[0, 1, 37799],
        &|_| Tolerance {
            atol: 1.0,
            rtol: 0.0,
        },
        POISON[0],
    );
    assert_eq!(k.compared, 3 * 5120);
    assert!(t0.elapsed().as_secs_f64() < 5.0);
}
