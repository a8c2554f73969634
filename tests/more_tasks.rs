//! The in-place (qknorm_rope) and bit-exact (causal_conv3d_cat_pad) tasks: their rows load as
//! captured, and their float64 references compute what the upstream semantics say.

mod common;
use common::{row, task};
use kpilot::reference::{self, Inputs};
use kpilot::task::rows::RowKind;
use kpilot::task::spec::Role;

#[test]
fn qknorm_rope_rows_are_in_place_and_complete() {
    let t = task("qknorm_rope");
    let prod: Vec<_> = t
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::Production)
        .collect();
    assert_eq!(prod.len(), 13);
    assert_eq!(prod.iter().filter(|r| r.duplicate_of.is_none()).count(), 10);
    let joy = row(&t, "joyai-edit_qknorm_rope_T7904_H32");
    assert_eq!(
        joy.bytes, 263_108_864,
        "q and k count twice (read and written in place)"
    );
    assert_eq!(joy.tensor("q").unwrap().role, Role::Inout);
    assert_eq!(joy.tensor("k").unwrap().role, Role::Inout);
    let names: Vec<&str> = t.rows.iter().map(|r| r.name.as_str()).collect();
    for want in [
        "D64",
        "D128",
        "D256",
        "partial",
        "neox",
        "interleaved",
        "i32",
        "i64",
        "N1025",
        "N4097",
    ] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("reg_") && n.contains(want)),
            "no regression row for {want}"
        );
    }
    assert!(
        t.rows
            .iter()
            .filter(|r| r.kind == RowKind::Rejection)
            .count()
            >= 3
    );
}

#[test]
fn qknorm_rope_reference_normalizes_then_rotates_pairs() {
    let t = task("qknorm_rope");
    for (name, neox) in [
        ("reg_qk_D64_full_interleaved_N257_H8_i64", false),
        ("reg_qk_D64_full_neox_N257_H8_i64", true),
    ] {
        let r = row(&t, name);
        let rf = reference::lookup("qknorm_rope").unwrap();
        let inp = Inputs::new(r, 9);
        let mut out = vec![Vec::new(), Vec::new()];
        let tok = 100usize;
        rf.compute(r, &inp, tok, &mut out);
        assert_eq!(out[0].len(), 8 * 64);
        assert_eq!(out[1].len(), 8 * 64);
        // Restate head 3 of k by hand.
        let (d, h) = (64u64, 3u64);
        let x: Vec<f64> = (0..d)
            .map(|i| inp.at(1, tok as u64 * 8 * d + h * d + i))
            .collect();
        let rms = 1.0 / (x.iter().map(|v| v * v).sum::<f64>() / d as f64 + 1e-6).sqrt();
        let n: Vec<f64> = (0..d).map(|i| x[i as usize] * rms * inp.at(3, i)).collect();
        let p = inp.at(5, tok as u64) as u64;
        let (c, s) = (inp.at(4, p * 64 + 5), inp.at(4, p * 64 + 32 + 5));
        let (i0, i1) = if neox { (5, 37) } else { (10, 11) };
        let got = &out[1][(h * d) as usize..((h + 1) * d) as usize];
        assert!((got[i0] - (n[i0] * c - n[i1] * s)).abs() < 1e-12, "{name}");
        assert!((got[i1] - (n[i1] * c + n[i0] * s)).abs() < 1e-12, "{name}");
    }
}

#[test]
fn partial_rotary_leaves_the_tail_normalized_but_unrotated() {
    let t = task("qknorm_rope");
    let r = row(&t, "reg_qk_D128_partial64_interleaved_N1025_H16_i32");
    let rf = reference::lookup("qknorm_rope").unwrap();
    let inp = Inputs::new(r, 1);
    let mut out = vec![Vec::new(), Vec::new()];
    rf.compute(r, &inp, 7, &mut out);
    let x: Vec<f64> = (0..128u64).map(|i| inp.at(0, 7 * 16 * 128 + i)).collect();
    let rms = 1.0 / (x.iter().map(|v| v * v).sum::<f64>() / 128.0 + 1e-6).sqrt();
    for i in [64usize, 100, 127] {
        assert!((out[0][i] - x[i] * rms * inp.at(2, i as u64)).abs() < 1e-12);
    }
}

#[test]
fn conv3d_rows_and_bytes_match_the_capture() {
    let t = task("causal_conv3d_cat_pad");
    let prod: Vec<_> = t
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::Production)
        .collect();
    assert_eq!(prod.len(), 8);
    assert_eq!(row(&t, "prod_c256_t4_h240_w416__cache2").bytes, 617_459_712);
    assert_eq!(
        t.tolerance(kpilot::dtype::DType::Bf16).unwrap().atol,
        0.0,
        "bit-exact"
    );
    assert!(t
        .rows
        .iter()
        .any(|r| r.name.contains("noncontig") && !r.tensor("x").unwrap().is_contiguous()));
    assert!(
        t.rows
            .iter()
            .any(|r| r.kind == RowKind::Regression && r.tensor("cache_x").is_none()),
        "a cache-less row"
    );
}

#[test]
fn conv3d_reference_pads_with_zeros_and_places_cache_before_x() {
    let t = task("causal_conv3d_cat_pad");
    let r = row(&t, "prod_c1024_t1_h30_w52__cache1"); // d' = 1: plane 0 zero, plane 1 cache, plane 2 x
    let rf = reference::lookup("causal_conv3d_cat_pad").unwrap();
    assert_eq!(rf.units(r), 1024 * 3);
    let inp = Inputs::new(r, 4);
    let mut out = vec![Vec::new()];
    let c = 17usize;
    rf.compute(r, &inp, c * 3, &mut out);
    assert!(
        out[0].iter().all(|&v| v == 0.0),
        "the leading pad plane is zero"
    );
    rf.compute(r, &inp, c * 3 + 1, &mut out);
    assert_eq!(out[0].len(), 32 * 54);
    assert_eq!(out[0][0], 0.0, "top-left corner is spatial padding");
    assert_eq!(
        out[0][54 + 1],
        inp.at(1, (c * 30 * 52) as u64),
        "cache_x[0, c, 0, 0, 0] lands at (1, 1)"
    );
    rf.compute(r, &inp, c * 3 + 2, &mut out);
    assert_eq!(
        out[0][54 * 30 + 52],
        inp.at(0, (c * 1560 + 29 * 52 + 51) as u64),
        "x[0, c, 0, 29, 51] lands at (30, 52)"
    );
    assert_eq!(out[0][54 * 31 + 53], 0.0);
}

#[test]
fn conv3d_reference_honours_source_strides() {
    let t = task("causal_conv3d_cat_pad");
    let r = row(&t, "reg_cp_noncontig_w_stride");
    let rf = reference::lookup("causal_conv3d_cat_pad").unwrap();
    let inp = Inputs::new(r, 2);
    let mut out = vec![Vec::new()];
    // Unit (n=0, c=3, t_out=2 -> s=2-0=2 >= cache_t=2 -> x plane 0), element (h_out=4, w_out=6).
    rf.compute(r, &inp, 3 * 4 + 2, &mut out);
    let x = r.tensor("x").unwrap();
    assert_eq!(out[0][4 * 22 + 6], inp.at(0, x.offset(&[0, 3, 0, 3, 5])));
}
