//! tasks/residual_gate_add: its rows load as captured, and its float64 reference computes
//! out = residual + update * gate with update and gate broadcast to residual's shape (hand-computed
//! cases, every gate layout, strided sources), within the task's tolerance of upstream's rounding.

mod common;
use common::row;
use kpilot::dtype::DType;
use kpilot::inputs::Dist;
use kpilot::reference::{self, Inputs};
use kpilot::task::rows::RowKind;
use kpilot::task::{Row, Task};

const RES: usize = 0;
const UPD: usize = 1;
const GATE: usize = 2;

fn task() -> Task {
    common::task("residual_gate_add")
}

/// Unit u of the row's output, from the registered reference.
fn unit(r: &Row, seed: u64, u: usize) -> Vec<f64> {
    common::unit("residual_gate_add", r, seed, u)
}

#[test]
fn rows_are_the_seven_production_calls_with_their_bytes() {
    let t = task();
    let prod: Vec<&Row> = t
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::Production)
        .collect();
    assert_eq!(prod.len(), 7);
    assert_eq!(prod.iter().filter(|r| r.duplicate_of.is_none()).count(), 7);
    assert!(prod
        .iter()
        .all(|r| r.tensor("residual").unwrap().dtype == DType::Bf16));
    // residual + update read, out written at 267.4 MB each; the [1, 1, 4096] gate once (8 KB).
    assert_eq!(row(&t, "ltx2_bcast_s32640_c4096").bytes, 802_168_832);
    assert_eq!(row(&t, "ltx2_full_s8160_c4096").bytes, 267_386_880);
    assert_eq!(row(&t, "flux2_bcast_s512_c3072").bytes, 9_443_328);
    assert!(!t.rows.iter().any(|r| r.name.contains("broadcast_add_4d")));
    let names: Vec<&str> = t.rows.iter().map(|r| r.name.as_str()).collect();
    for want in [
        "fp16",
        "fp32",
        "d1001",
        "d1000",
        "b2_",
        "batchrow",
        "pertoken",
        "tiny",
        "rank2",
        "rank4",
        "strided",
        "transposed",
        "rank1",
    ] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("reg_") && n.contains(want)),
            "no regression row for {want}"
        );
    }
    assert_eq!(
        t.rows
            .iter()
            .filter(|r| r.kind == RowKind::Rejection)
            .count(),
        3
    );
}

#[test]
fn reference_refuses_the_rejection_rows_shapes() {
    let t = task();
    let rf = reference::lookup("residual_gate_add").unwrap();
    for r in t.rows.iter().filter(|r| r.kind == RowKind::Rejection) {
        let e = rf.validate(r).expect_err(&r.name);
        assert!(e.contains("does not broadcast"), "{}: {e}", r.name);
    }
}

/// residual, update and gate set to constants: out = 1.5 + 0.75 * -2 = 0, 3 + 0.5 * 0.25 = 3.125.
#[test]
fn reference_matches_hand_computed_constants() {
    let t = task();
    for (name, r0, u0, g0, want) in [
        ("ltx2_full_s126_c2048", 1.5, 0.75, -2.0, 0.0),
        ("reg_bf16_b2_batchrow_s512_d3072", 3.0, 0.5, 0.25, 3.125),
        ("reg_fp32_bcast_s512_d3072", -1.0, 0.125, 4.0, -0.5),
        ("reg_bf16_tiny_s3_d5", 2.0, -1.0, -1.0, 3.0),
    ] {
        let mut r = row(&t, name).clone();
        for (i, v) in [(RES, r0), (UPD, u0), (GATE, g0)] {
            r.tensors[i].as_mut().unwrap().dist = Some(Dist::Const { value: v });
        }
        let rf = reference::lookup("residual_gate_add").unwrap();
        let units = rf.units(&r);
        let d = *r.tensor("residual").unwrap().shape.last().unwrap() as usize;
        for u in [0, units / 2, units - 1] {
            let o = unit(&r, 7, u);
            assert_eq!(o.len(), d, "{name}");
            assert!(
                o.iter().all(|&x| x == want),
                "{name} unit {u}: {:?}",
                &o[..4.min(d)]
            );
        }
    }
}

/// Each element against residual + update * gate read at the offsets the layout implies.
fn check_layout(name: &str, offs: impl Fn(i64, i64, i64) -> (u64, u64, u64)) {
    let t = task();
    let r = row(&t, name);
    let inp = Inputs::new(r, 11);
    let shape = &r.tensor("residual").unwrap().shape;
    let d = shape[shape.len() - 1];
    let s = if shape.len() >= 2 {
        shape[shape.len() - 2]
    } else {
        1
    };
    let rf = reference::lookup("residual_gate_add").unwrap();
    rf.validate(r).unwrap();
    let units = rf.units(r);
    for u in [0, 1, units / 3, units - 1] {
        let o = unit(r, 11, u);
        let (b, tok) = ((u as i64) / s, (u as i64) % s);
        for c in [0, 1, d / 2, d - 1] {
            let (ro, uo, go) = offs(b, tok, c);
            let want = inp.at(RES, ro) + inp.at(UPD, uo) * inp.at(GATE, go);
            assert_eq!(o[c as usize], want, "{name} unit {u} col {c}");
        }
    }
}

#[test]
fn reference_reads_every_gate_layout() {
    // full gate [1, 126, 2048]
    check_layout("ltx2_full_s126_c2048", |_, t, c| {
        let o = (t * 2048 + c) as u64;
        (o, o, o)
    });
    // shared row [1, 1, 4608]
    check_layout("ideogram4_bcast_s4096_c4608", |_, t, c| {
        let o = (t * 4608 + c) as u64;
        (o, o, c as u64)
    });
    // one row per batch [2, 1, 3072]
    check_layout("reg_bf16_b2_batchrow_s512_d3072", |b, t, c| {
        let o = ((b * 512 + t) * 3072 + c) as u64;
        (o, o, (b * 3072 + c) as u64)
    });
    // one scalar per token [2, 256, 1]
    check_layout("reg_bf16_b2_pertoken_s256_d3072", |b, t, c| {
        let o = ((b * 256 + t) * 3072 + c) as u64;
        (o, o, (b * 256 + t) as u64)
    });
    // gate [1, 256, 1024] repeated over batch 2
    check_layout("reg_bf16_b2_gate_tokens_s256_d1024", |b, t, c| {
        let o = ((b * 256 + t) * 1024 + c) as u64;
        (o, o, (t * 1024 + c) as u64)
    });
    // rank-1 gate [1024]
    check_layout("reg_bf16_gate_rank1_s256_d1024", |_, t, c| {
        let o = (t * 1024 + c) as u64;
        (o, o, c as u64)
    });
}

#[test]
fn reference_honours_source_strides() {
    // residual rows 2048 apart
    check_layout("reg_bf16_residual_strided_s256_d1024", |_, t, c| {
        ((t * 2048 + c) as u64, (t * 1024 + c) as u64, c as u64)
    });
    // transposed-dense residual, strides (T*H, 1, T)
    check_layout("reg_bf16_residual_transposed_s256_d1024", |_, t, c| {
        ((t + c * 256) as u64, (t * 1024 + c) as u64, c as u64)
    });
    // gate row read with stride 2
    check_layout("reg_bf16_gate_strided_s256_d1024", |_, t, c| {
        let o = (t * 1024 + c) as u64;
        (o, o, (c * 2) as u64)
    });
    // [B, 1, D] gate with batch stride 3072
    check_layout("reg_bf16_b2_batchrow_gaps_s256_d1024", |b, t, c| {
        let o = ((b * 256 + t) * 1024 + c) as u64;
        (o, o, (b * 3072 + c) as u64)
    });
    // update [1, 1, 1024] broadcast over tokens
    check_layout("reg_bf16_update_bcast_s256_d1024", |_, t, c| {
        ((t * 1024 + c) as u64, c as u64, c as u64)
    });
}

/// Upstream (CUDA kernel and eager alike) rounds the product to bf16, then the sum: that answer is
/// within the task's bf16 tolerance of the one-rounding float64 reference on every production row.
#[test]
fn upstream_rounding_is_within_the_bf16_tolerance() {
    let t = task();
    let tol = t.tolerance(DType::Bf16).unwrap();
    let rf = reference::lookup("residual_gate_add").unwrap();
    let bf = |x: f64| half::bf16::from_f64(x).to_f64();
    let mut worst = 0.0f64;
    for r in t.rows.iter().filter(|r| r.kind == RowKind::Production) {
        let inp = Inputs::new(r, 3);
        let res = r.tensor("residual").unwrap();
        let d = *res.shape.last().unwrap();
        let gate = r.tensor("gate").unwrap();
        let full = gate.shape == res.shape;
        let units = rf.units(r);
        for u in [0, units / 2, units - 1] {
            let o = unit(r, 3, u);
            for c in 0..d {
                let off = u as u64 * d as u64 + c as u64;
                let g = inp.at(GATE, if full { off } else { c as u64 });
                let got = bf(inp.at(RES, off) + bf(inp.at(UPD, off) * g));
                let want = o[c as usize];
                let err = (got - want).abs();
                assert!(
                    err <= tol.atol + tol.rtol * want.abs(),
                    "{}: {got} vs {want}",
                    r.name
                );
                worst = worst.max(err);
            }
        }
    }
    assert!(worst > 0.0, "bf16 rounding shows somewhere");
}
