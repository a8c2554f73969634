//! tasks/rotary_embedding: its rows load as captured (every production call, duplicates marked),
//! and the float64 references compute upstream's two functions: adjacent-pair RoPE with cos/sin per
//! token (full-width cos subsampled only when interleaved), and LTX-2 split RoPE with x*cos rounded
//! to bf16 first, cos/sin read through their strides. Hand-computed cases, the rounding point,
//! strides.

mod common;
use common::row;
use kpilot::dtype::DType;
use kpilot::inputs::Dist;
use kpilot::reference::{self, Inputs};
use kpilot::task::rows::RowKind;
use kpilot::task::{Row, Task};

const X: usize = 0;
const COS: usize = 1;
const SIN: usize = 2;

fn task() -> Task {
    common::task("rotary_embedding")
}

fn refname(r: &Row) -> &'static str {
    if r.tensor("x").unwrap().shape.len() == 3 && r.tensor("cos").unwrap().shape.len() == 4 {
        "ltx2_split_rotary_emb"
    } else {
        "rotary_embedding"
    }
}

fn unit(r: &Row, u: usize) -> Vec<f64> {
    common::unit(refname(r), r, 11, u)
}

fn with(r: &Row, dists: [Dist; 3]) -> Row {
    let mut r = r.clone();
    for (i, d) in dists.into_iter().enumerate() {
        r.tensors[i].as_mut().unwrap().dist = Some(d);
    }
    r
}

fn c(v: f64) -> Dist {
    Dist::Const { value: v }
}

#[test]
fn rows_are_every_production_call_with_duplicates_marked() {
    let t = task();
    let prod: Vec<&Row> = t
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::Production)
        .collect();
    assert_eq!(prod.len(), 20);
    assert_eq!(prod.iter().filter(|r| r.duplicate_of.is_none()).count(), 11);
    for r in &prod {
        assert_eq!(r.tensor("x").unwrap().dtype, DType::Bf16, "{}", r.name);
        if let Some(d) = &r.duplicate_of {
            let orig = row(&t, d);
            assert!(orig.duplicate_of.is_none(), "{} -> {d}", r.name);
            for n in ["x", "cos", "sin"] {
                assert_eq!(
                    r.tensor(n).unwrap().shape,
                    orig.tensor(n).unwrap().shape,
                    "{}",
                    r.name
                );
            }
        }
    }
    // x read + written, cos and sin read once (bytes_min of the data).
    assert_eq!(
        row(&t, "ltx23-two-stage_ltx2_split_rope_1x24576x4096_half64").bytes,
        603_979_776
    );
    assert_eq!(
        row(&t, "hunyuanvideo_rope_std_1x27030x24x128_call1").bytes,
        345_984_000
    );
    // The second hunyuan call is a view into a longer buffer (outer stride 27085 * 3072).
    let call41 = row(&t, "hunyuanvideo_rope_std_1x27030x24x128_call41");
    assert_eq!(call41.tensor("x").unwrap().stride[0], 83_205_120);
    assert!(call41.duplicate_of.is_some());
    // LTX cos/sin are permuted views: strides (S*H*half, half, H*half, 1).
    let l = row(&t, "ltx23-two-stage_ltx2_split_rope_2x6144x4096_half64");
    assert_eq!(
        l.tensor("cos").unwrap().stride,
        vec![12_582_912, 64, 2048, 1]
    );
    let names: Vec<&str> = t
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::Regression)
        .map(|r| r.name.as_str())
        .collect();
    for want in [
        "std_fp16",
        "std_fp32",
        "rank3",
        "fullwidth_interleaved",
        "fullwidth_plain",
        "std_odd",
        "b2_",
        "ltx_fp16",
        "ltx_fp32",
        "ltx_contig_cos",
        "ltx_odd",
    ] {
        assert!(
            names.iter().any(|n| n.contains(want)),
            "no regression row for {want}"
        );
    }
}

#[test]
fn reference_refuses_what_upstream_refuses_and_accepts_the_rest() {
    let t = task();
    for r in &t.rows {
        let rf = reference::lookup(refname(r)).unwrap();
        match r.kind {
            RowKind::Rejection => {
                let e = rf.validate(r).expect_err(&r.name);
                assert!(
                    e.contains("ValueError")
                        || e.contains("odd")
                        || e.contains("merge")
                        || e.contains("unpacks"),
                    "{}: {e}",
                    r.name
                );
            }
            _ => rf.validate(r).unwrap_or_else(|e| panic!("{}: {e}", r.name)),
        }
    }
}

/// x = 2 everywhere, cos = 0.5, sin = 0.25: o1 = 2*0.5 - 2*0.25 = 0.5, o2 = 2*0.5 + 2*0.25 = 1.5.
#[test]
fn standard_matches_hand_computed_constants() {
    let t = task();
    for name in [
        "hunyuanvideo_rope_std_1x27030x24x128_call1",
        "std_fp32_b2_s100_h4_d128",
        "std_bf16_rank3_s300_h12_d128",
        "std_odd_b1_s37_h5_d48",
    ] {
        let r = with(row(&t, name), [c(2.0), c(0.5), c(0.25)]);
        let rf = reference::lookup("rotary_embedding").unwrap();
        let units = rf.units(&r);
        let d = *r.tensor("x").unwrap().shape.last().unwrap() as usize;
        for u in [0, units / 2, units - 1] {
            let o = unit(&r, u);
            assert_eq!(o.len(), d, "{name}");
            for p in o.chunks(2) {
                assert_eq!(p, [0.5, 1.5], "{name} unit {u}");
            }
        }
    }
}

/// cos holds its own storage offset (arange), sin 0, x 1: out[2j] = out[2j+1] = the offset of the
/// cos element upstream reads for pair j of token s.
fn cos_offsets(name: &str, want: impl Fn(i64, i64) -> i64) {
    let t = task();
    let r = with(row(&t, name), [c(1.0), Dist::Arange, c(0.0)]);
    let x = r.tensor("x").unwrap();
    let (s, h) = (x.shape[x.shape.len() - 3], x.shape[x.shape.len() - 2]);
    let units = reference::lookup("rotary_embedding").unwrap().units(&r);
    for u in [0, 1, (h + 1) as usize, units - 1] {
        let tok = (u as i64 / h) % s;
        let o = unit(&r, u);
        for (j, p) in o.chunks(2).enumerate() {
            let w = want(tok, j as i64) as f64;
            assert_eq!(p, [w, w], "{name} unit {u} pair {j}");
        }
    }
}

#[test]
fn standard_reads_cos_as_upstream_does() {
    // [S, D/2]: cos[s, j].
    cos_offsets("std_fp16_b1_s512_h8_d64", |s, j| s * 32 + j);
    // Full width, interleaved: cos[..., ::2] -> cos[s, 2j].
    cos_offsets("std_fullwidth_interleaved_s256_h8_d128", |s, j| {
        s * 128 + 2 * j
    });
    // Full width, not interleaved: the first D/2 columns, cos[s, j] with row stride D.
    cos_offsets("std_fullwidth_plain_s256_h8_d128", |s, j| s * 128 + j);
    // Half width, interleaved: no subsampling.
    cos_offsets("std_halfwidth_interleaved_s256_h8_d128", |s, j| s * 64 + j);
    // A strided cos view: row stride 64 for 32 columns.
    cos_offsets("std_cos_strided_s128_h8_d64", |s, j| s * 64 + j);
    // B = 2: the token is bt % S, both batches read the same cos row.
    cos_offsets("std_fp32_b2_s100_h4_d128", |s, j| s * 64 + j);
}

/// x holds its storage offset, cos 1, sin 0: out is x as read, so it names the x elements used.
#[test]
fn standard_honours_x_strides_and_rotates_adjacent_pairs() {
    let t = task();
    let r = with(
        row(&t, "std_x_head_strided_s64_h8_d128"),
        [Dist::Arange, c(1.0), c(0.0)],
    );
    // Unit (s = 3, h = 5): base 3*1280 + 5*160; bf16 keeps integers to 256 exactly, so compare
    // with the stored (rounded) value.
    let o = unit(&r, 3 * 8 + 5);
    for (k, v) in o.iter().enumerate() {
        let want = DType::Bf16.round_f64((3 * 1280 + 5 * 160 + k) as f64);
        assert_eq!(*v, want, "element {k}");
    }
    // cos 0, sin 1: o1 = -x2, o2 = x1 (adjacent pairs, not halves).
    let r = with(
        row(&t, "std_bf16_rank3_s300_h12_d128"),
        [Dist::Arange, c(0.0), c(1.0)],
    );
    let o = unit(&r, 0);
    for j in 0..64 {
        assert_eq!(o[2 * j], -((2 * j + 1) as f64), "pair {j}");
        assert_eq!(o[2 * j + 1], (2 * j) as f64, "pair {j}");
    }
}

/// The LTX-2 rounding point: a = c = 1 + 2^-7, so a*c = 1 + 2^-6 + 2^-14; x*cos is rounded to
/// bf16 (1 + 2^-6) before the sine term is added, for bf16, fp16 and fp32 rows alike.
#[test]
fn ltx_rounds_x_cos_to_bf16_first() {
    let t = task();
    let a = 1.0 + 2f64.powi(-7);
    for name in [
        "ltx23-two-stage_ltx2_split_rope_1x24576x4096_half64",
        "ltx_fp16_b1_s64_h8_half32",
        "ltx_fp32_b2_s33_h4_half16",
    ] {
        let r = with(row(&t, name), [c(a), c(a), c(0.0)]);
        let o = unit(&r, 1);
        assert!(
            o.iter().all(|&v| v == 1.0 + 2f64.powi(-6)),
            "{name}: {:?}",
            &o[..2]
        );
        // Not the unrounded product.
        assert_ne!(o[0], a * a);
    }
    // x = 1 (both halves get 1), cos = 1, sin = 0.5: out_a = 1 - 0.5 = 0.5, out_b = 1 + 0.5.
    let r = with(
        row(&t, "ltx_odd_b3_s37_h5_half24"),
        [c(1.0), c(1.0), c(0.5)],
    );
    let o = unit(&r, 17);
    assert_eq!(o.len(), 48);
    assert!(o[..24].iter().all(|&v| v == 0.5));
    assert!(o[24..].iter().all(|&v| v == 1.5));
}

/// cos as its storage offset, sin 0, x 1: out_a[j] = out_b[j] = the offset of cos[b, h, t, j].
#[test]
fn ltx_reads_cos_through_its_strides() {
    let t = task();
    for (name, off) in [
        // [B, H, S, half] = [2, 1, 16, 8], a permuted view: strides (128, 8, 8, 1).
        (
            "ltx_h1_b2_s16_half8",
            Box::new(|b: i64, _h: i64, t: i64| b * 128 + t * 8)
                as Box<dyn Fn(i64, i64, i64) -> i64>,
        ),
        // [3, 5, 37, 24] permuted: strides (37*5*24, 24, 5*24, 1); offsets stay below 256 for
        // the units read (bf16 holds them exactly).
        (
            "ltx_odd_b3_s37_h5_half24",
            Box::new(|b: i64, h: i64, t: i64| b * 4440 + h * 24 + t * 120),
        ),
    ] {
        let r = with(row(&t, name), [c(1.0), Dist::Arange, c(0.0)]);
        let cs = r.tensor("cos").unwrap();
        let (h, s, half) = (cs.shape[1], cs.shape[2], cs.shape[3]);
        for (b, hh, tt) in [(0, 0, 0), (0, h - 1, 1), (0, 0, 1)] {
            let u = ((b * s + tt) * h + hh) as usize;
            let o = unit(&r, u);
            for j in 0..half {
                let want = DType::Bf16.round_f64((off(b, hh, tt) + j) as f64);
                assert_eq!(o[j as usize], want, "{name} ({b},{hh},{tt}) a{j}");
                assert_eq!(o[(half + j) as usize], want, "{name} ({b},{hh},{tt}) b{j}");
            }
        }
    }
}

/// Upstream's fp32 fma with one rounding to bf16 stays within the task's bf16 tolerance of the
/// float64 reference on random inputs of a production row.
#[test]
fn upstream_rounding_is_within_the_bf16_tolerance() {
    let t = task();
    let tol = t.tolerance(DType::Bf16).unwrap();
    let r = row(&t, "hunyuanvideo_rope_std_1x27030x24x128_call1");
    let inp = Inputs::new(r, 11);
    let x = r.tensor("x").unwrap();
    for u in [0usize, 777, 648_719] {
        let o = unit(r, u);
        let (h, s) = ((u % 24) as i64, (u / 24) as i64);
        let base = s * x.stride[1] + h * x.stride[2];
        for j in 0..64i64 {
            let x1 = inp.at(X, (base + 2 * j) as u64) as f32;
            let x2 = inp.at(X, (base + 2 * j + 1) as u64) as f32;
            let cv = inp.at(COS, (s * 64 + j) as u64) as f32;
            let sv = inp.at(SIN, (s * 64 + j) as u64) as f32;
            let o1 = DType::Bf16.round_f32((-x2).mul_add(sv, x1 * cv));
            let o2 = DType::Bf16.round_f32(x1.mul_add(sv, x2 * cv));
            for (got, want) in [(o1, o[2 * j as usize]), (o2, o[2 * j as usize + 1])] {
                assert!(
                    (got - want).abs() <= tol.atol + tol.rtol * want.abs(),
                    "unit {u} pair {j}: {got} vs {want}"
                );
            }
        }
    }
}
