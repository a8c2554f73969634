//! tasks/norm_infer: its rows load as captured, and its two float64 references compute LayerNorm /
//! RMSNorm (norm_infer) and the one-pass RMSNorm (triton_one_pass_rms_norm) as hand-computed
//! cases say, reading x through its shape and strides and the affine tensors when present.

mod common;
use common::{row, unit};
use kpilot::dtype::DType;
use kpilot::inputs::Dist;
use kpilot::reference::{self, Inputs};
use kpilot::task::rows::RowKind;
use kpilot::task::{Row, Task};

fn task() -> Task {
    common::task("norm_infer")
}

fn set(r: &mut Row, name: &str, d: Dist) {
    let i = r
        .tensors
        .iter()
        .position(|t| t.as_ref().is_some_and(|t| t.name == name))
        .unwrap();
    r.tensors[i].as_mut().unwrap().dist = Some(d);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

#[test]
fn rows_are_the_six_production_calls_with_their_bytes() {
    let t = task();
    let prod: Vec<&Row> = t
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::Production)
        .collect();
    assert_eq!(prod.len(), 6);
    assert_eq!(prod.iter().filter(|r| r.duplicate_of.is_none()).count(), 6);
    let helios = row(&t, "helios_norm_infer_M8640_N5120");
    assert_eq!(helios.bytes, 353_935_360);
    assert_eq!(helios.tensor("x").unwrap().dtype, DType::Fp32);
    assert_eq!(helios.scalars, vec![1e-6, 0.0]);
    assert_eq!(
        row(&t, "hunyuanvideo_triton_one_pass_rms_norm_M650040_N128").bytes,
        332_820_736
    );
    assert_eq!(
        row(&t, "hunyuanvideo_triton_one_pass_rms_norm_M648720_N128").bytes,
        332_144_896
    );
    assert_eq!(
        row(&t, "zimage_triton_one_pass_rms_norm_M4096_N128").bytes,
        2_097_408
    );
    let kinds = |k: RowKind| t.rows.iter().filter(|r| r.kind == k).count();
    assert!(kinds(RowKind::Regression) >= 20);
    assert_eq!(kinds(RowKind::Rejection), 7);
}

#[test]
fn references_refuse_what_upstream_refuses() {
    let t = task();
    let ni = reference::lookup("norm_infer").unwrap();
    assert!(ni
        .validate(row(&t, "rej_ni_rank3"))
        .unwrap_err()
        .contains("2-D"));
    assert!(ni
        .validate(row(&t, "rej_ni_weight_mismatch"))
        .unwrap_err()
        .contains("[1024]"));
    assert!(ni
        .validate(row(&t, "rej_ni_bias_mismatch"))
        .unwrap_err()
        .contains("[1024]"));
}

/// x = 0, 1, 2, 3, 4 (arange), N 5: mean 2, var 2, y = (c - 2) / sqrt(2 + eps).
#[test]
fn layernorm_matches_hand_computed_arange() {
    let t = task();
    let mut r = row(&t, "reg_ni_fp32_ln_M1_N5").clone();
    set(&mut r, "x", Dist::Arange);
    let o = unit("norm_infer", &r, 3, 0);
    let rstd = 1.0 / (2.0f64 + 1e-6).sqrt();
    for (c, v) in o.iter().enumerate() {
        assert!(close(*v, (c as f64 - 2.0) * rstd), "col {c}: {v}");
    }
    // The same row as RMSNorm: mean(x^2) = 30 / 5 = 6.
    r.scalars[1] = 1.0;
    let o = unit("norm_infer", &r, 3, 0);
    let rstd = 1.0 / (6.0f64 + 1e-6).sqrt();
    for (c, v) in o.iter().enumerate() {
        assert!(close(*v, c as f64 * rstd), "rms col {c}: {v}");
    }
}

/// weight 2 and bias -1 as constants: y = 2 * x_hat - 1; row u of an arange x is offset by u * N,
/// which LayerNorm removes.
#[test]
fn layernorm_applies_weight_then_bias() {
    let t = task();
    let mut r = row(&t, "reg_ni_fp16_rms_wb_M3_N24").clone();
    r.scalars[1] = 0.0;
    set(&mut r, "x", Dist::Arange);
    set(&mut r, "weight", Dist::Const { value: 2.0 });
    set(&mut r, "bias", Dist::Const { value: -1.0 });
    // 0..23: mean 11.5, var (24^2 - 1) / 12 = 47.9166..
    let var = (24.0f64 * 24.0 - 1.0) / 12.0;
    let rstd = 1.0 / (var + 1e-6).sqrt();
    for u in 0..3 {
        let o = unit("norm_infer", &r, 5, u);
        assert_eq!(o.len(), 24);
        for (c, v) in o.iter().enumerate() {
            let want = 2.0 * (c as f64 - 11.5) * rstd - 1.0;
            // fp16 stores 24 * u + c exactly (below 2048).
            assert!(close(*v, want), "unit {u} col {c}: {v} vs {want}");
        }
    }
}

/// Absent weight and bias: each row has mean 0 and variance var / (var + eps) after the norm.
#[test]
fn layernorm_rows_are_normalised_without_affine() {
    let t = task();
    let r = row(&t, "reg_ni_fp32_ln_M300_N1000");
    let inp = Inputs::new(r, 9);
    for u in [0usize, 150, 299] {
        let o = unit("norm_infer", r, 9, u);
        let n = o.len() as f64;
        let mean = o.iter().sum::<f64>() / n;
        assert!(mean.abs() < 1e-12, "unit {u}: mean {mean}");
        // Against the inputs read directly.
        let xs: Vec<f64> = (0..1000)
            .map(|c| inp.at(0, (u * 1000 + c) as u64))
            .collect();
        let m = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / n;
        for c in [0usize, 1, 999] {
            let want = (xs[c] - m) / (var + 1e-6).sqrt();
            assert!(close(o[c], want), "unit {u} col {c}");
        }
    }
}

/// One-pass RMSNorm with x constant 3 and w arange: y[c] = 3 / sqrt(9 + eps) * c; rank-3 x splits
/// into T * H units of D.
#[test]
fn one_pass_matches_hand_computed_constants() {
    let t = task();
    let mut r = row(&t, "reg_op_bf16_rank3_T100_H24_D128").clone();
    set(&mut r, "x", Dist::Const { value: 3.0 });
    set(&mut r, "w", Dist::Arange);
    let rf = reference::lookup("triton_one_pass_rms_norm").unwrap();
    rf.validate(&r).unwrap();
    assert_eq!(rf.units(&r), 2400);
    let k = 3.0 / (9.0f64 + 1e-6).sqrt();
    for u in [0usize, 1, 2399] {
        let o = unit("triton_one_pass_rms_norm", &r, 1, u);
        assert_eq!(o.len(), 128);
        for (c, v) in o.iter().enumerate() {
            assert!(close(*v, k * c as f64), "unit {u} col {c}: {v}");
        }
    }
}

/// One-pass on drawn inputs: each element against x * w / sqrt(mean(x^2) + eps) from the inputs
/// read at the row's offsets.
#[test]
fn one_pass_reads_each_row() {
    let t = task();
    let r = row(&t, "reg_op_fp16_S3000_D100");
    let inp = Inputs::new(r, 4);
    for u in [0usize, 1, 1234, 2999] {
        let o = unit("triton_one_pass_rms_norm", r, 4, u);
        let xs: Vec<f64> = (0..100).map(|c| inp.at(0, (u * 100 + c) as u64)).collect();
        let ms = xs.iter().map(|a| a * a).sum::<f64>() / 100.0;
        for c in [0usize, 50, 99] {
            let want = xs[c] / (ms + 1e-6).sqrt() * inp.at(1, c as u64);
            assert!(close(o[c], want), "unit {u} col {c}");
        }
    }
}

/// The fp32 LayerNorm tolerance (1e-5 + 1e-5 |ref|) against float64 leaves room for fp32's
/// two-pass formula: simulate it in f32 (sequential sums, 1 / sqrt) on the helios shape's rows.
#[test]
fn fp32_two_pass_layernorm_holds_the_fp32_tolerance() {
    let t = task();
    let r = row(&t, "helios_norm_infer_M8640_N5120");
    let inp = Inputs::new(r, 21);
    let n = 5120usize;
    let mut worst = 0.0f64;
    for u in [0usize, 4321, 8639] {
        let want = unit("norm_infer", r, 21, u);
        let xs: Vec<f32> = (0..n)
            .map(|c| inp.at(0, (u * n + c) as u64) as f32)
            .collect();
        let mean = xs.iter().fold(0.0f32, |a, b| a + b) / n as f32;
        let var = xs
            .iter()
            .fold(0.0f32, |a, b| (b - mean).mul_add(b - mean, a))
            / n as f32;
        let rstd = 1.0f32 / (var + 1e-6f32).sqrt();
        for c in 0..n {
            let w = inp.at(1, c as u64) as f32;
            let b = inp.at(2, c as u64) as f32;
            let got = ((xs[c] - mean) * rstd).mul_add(w, b) as f64;
            let err = (got - want[c]).abs() / (1e-5 + 1e-5 * want[c].abs());
            worst = worst.max(err);
        }
    }
    assert!(worst < 0.5, "worst error is {worst} of the tolerance");
}
