//! tasks/group_norm_silu: its rows are the 160 production calls as captured (80 of them marked
//! duplicates), and its float64 reference computes y = silu(group_norm(x) * w + b) per
//! (batch, group): hand-computed cases (a constant group, a four-element group, a channels-last
//! x read through its strides), and upstream's fp32 arithmetic (emulated in Triton's reduction
//! order) within the task's tolerance of the reference on the production and the stress rows.

mod common;
use common::row;
use kpilot::dtype::DType;
use kpilot::reference::{self, Inputs};
use kpilot::task::rows::RowKind;
use kpilot::task::{Row, Task};

const X: usize = 0;
const W: usize = 1;
const B: usize = 2;

fn task() -> Task {
    common::task("group_norm_silu")
}

/// Unit u (one (batch, channel)) of the row's y, from the registered reference.
fn unit(r: &Row, seed: u64, u: usize) -> Vec<f64> {
    common::unit("group_norm_silu", r, seed, u)
}

/// Group g of batch b of the row's y: the units of its channels, in order.
fn group(r: &Row, seed: u64, b: usize, g: usize) -> Vec<f64> {
    let c = r.tensor("x").unwrap().shape[1] as usize;
    let cpg = c / r.scalars[0] as usize;
    (0..cpg)
        .flat_map(|k| unit(r, seed, b * c + g * cpg + k))
        .collect()
}

fn silu(z: f64) -> f64 {
    z / (1.0 + (-z).exp())
}

/// Storage offset of x[b, c, s] (s the row-major index over the spatial dims).
fn x_offset(r: &Row, b: i64, c: i64, s: i64) -> u64 {
    let x = r.tensors[X].as_ref().unwrap();
    let mut off = b * x.stride[0] + c * x.stride[1];
    let mut rem = s;
    for d in (2..x.shape.len()).rev() {
        off += (rem % x.shape[d]) * x.stride[d];
        rem /= x.shape[d];
    }
    off as u64
}

#[test]
fn rows_are_the_160_production_calls_with_80_duplicates() {
    let t = task();
    let prod: Vec<&Row> = t
        .rows
        .iter()
        .filter(|r| r.kind == RowKind::Production)
        .collect();
    assert_eq!(prod.len(), 160);
    let run: Vec<&&Row> = prod.iter().filter(|r| r.duplicate_of.is_none()).collect();
    assert_eq!(run.len(), 80);
    for r in prod.iter().filter(|r| r.duplicate_of.is_some()) {
        // Every duplicate is a triton_group_norm_silu frame of an apply_group_norm_silu call.
        assert!(r.name.starts_with("hunyuanvideo_triton_"), "{}", r.name);
        let twin = r.duplicate_of.as_deref().unwrap();
        assert_eq!(twin, r.name.replace("_triton_", "_apply_"));
    }
    for r in &prod {
        let x = r.tensor("x").unwrap();
        assert_eq!(x.dtype, DType::Fp16);
        assert_eq!(r.scalars, vec![32.0, 1e-6]);
        assert_eq!(r.tensor("y").unwrap().shape, x.shape);
        assert!(r.tensor("y").unwrap().is_contiguous());
    }
    let cl = run
        .iter()
        .filter(|r| !r.tensor("x").unwrap().is_contiguous())
        .count();
    assert_eq!(cl, 32);
    // x read once and y written once (570 MB each), weight and bias 512 B each.
    let big = row(&t, "hunyuanvideo_apply_1x256x17x256x256_C");
    assert_eq!(big.bytes, 1_140_851_712);
    let nc = row(
        &t,
        "hunyuanvideo_apply_1x128x17x256x256_NC_channels_last_3d",
    );
    assert_eq!(
        nc.tensor("x").unwrap().stride,
        vec![142_606_336, 1, 8_388_608, 32_768, 128]
    );
    let names: Vec<&str> = t.rows.iter().map(|r| r.name.as_str()).collect();
    for want in [
        "bf16", "fp32", "rank2", "rank3", "b2", "b8", "g8", "cl3d", "cl2d", "chunked", "scalar",
        "ragged", "offset", "nearzero", "zero_var",
    ] {
        assert!(
            names
                .iter()
                .any(|n| (n.starts_with("reg_") || n.starts_with("stress_")) && n.contains(want)),
            "no regression row for {want}"
        );
    }
    assert_eq!(
        t.rows
            .iter()
            .filter(|r| r.kind == RowKind::Rejection)
            .count(),
        2
    );
}

#[test]
fn reference_refuses_what_upstream_refuses() {
    let t = task();
    let rf = reference::lookup("group_norm_silu").unwrap();
    for r in t.rows.iter().filter(|r| r.kind == RowKind::Rejection) {
        assert!(rf.validate(r).is_err(), "{} validates", r.name);
    }
    for r in t.rows.iter().filter(|r| r.kind != RowKind::Rejection) {
        rf.validate(r).unwrap_or_else(|e| panic!("{}: {e}", r.name));
    }
}

#[test]
fn a_constant_group_gives_silu_of_the_bias() {
    let t = task();
    let r = row(&t, "stress_zero_var_onepass_1x64x4x16x16");
    let rf = reference::lookup("group_norm_silu").unwrap();
    // One unit per (batch, channel).
    assert_eq!(rf.units(r), 64);
    let inp = Inputs::new(r, 7);
    for u in [0usize, 13, 63] {
        let y = unit(r, 7, u);
        assert_eq!(y.len(), 4 * 16 * 16);
        let want = silu(inp.at(B, u as u64));
        assert!(y.iter().all(|&v| v == want), "channel {u}");
    }
}

#[test]
fn a_four_element_group_by_hand() {
    // [4, 128] with G = 32: each group is 4 channels of one batch row, spatial 1.
    let t = task();
    let r = row(&t, "reg_fp16_rank2_4x128");
    let inp = Inputs::new(r, 3);
    let (b, g) = (2i64, 5i64);
    let xs: Vec<f64> = (0..4)
        .map(|k| inp.at(X, (b * 128 + g * 4 + k) as u64))
        .collect();
    let mean = (xs[0] + xs[1] + xs[2] + xs[3]) / 4.0;
    let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
    let y = group(r, 3, b as usize, g as usize);
    assert_eq!(y.len(), 4);
    for k in 0..4 {
        let c = (g * 4 + k) as u64;
        let z = (xs[k as usize] - mean) / (var + 1e-5).sqrt() * inp.at(W, c) + inp.at(B, c);
        assert!((y[k as usize] - silu(z)).abs() < 1e-12, "{k}");
    }
}

#[test]
fn channels_last_x_is_read_through_its_strides() {
    let t = task();
    let r = row(&t, "reg_bf16_cl3d_b2_2x64x3x20x24");
    let inp = Inputs::new(r, 11);
    let (b, g, cpg, s) = (1i64, 9i64, 2i64, 3 * 20 * 24);
    let xs: Vec<f64> = (0..cpg)
        .flat_map(|k| (0..s).map(move |i| (k, i)))
        .map(|(k, i)| inp.at(X, x_offset(r, b, g * cpg + k, i)))
        .collect();
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let y = group(r, 11, b as usize, g as usize);
    assert_eq!(y.len(), xs.len());
    for (j, (&got, &x)) in y.iter().zip(&xs).enumerate() {
        let c = (g * cpg + j as i64 / s) as u64;
        let z = (x - mean) / (var + 1e-6).sqrt() * inp.at(W, c) + inp.at(B, c);
        assert!((got - silu(z)).abs() < 1e-12, "element {j}");
    }
}

/// Triton's block sum: per-thread sequential sums over its runs (squares as Triton's PTX has them:
/// fma(x0, x0, x1 * x1), then an fma chain), a butterfly over the 32 lanes, then over the warps.
fn triton_block_sums(v: &[f32], nt: usize, vec: usize) -> (f32, f32) {
    let block = v.len();
    let reps = (block / (nt * vec)).max(1);
    let mut ts = vec![0f32; nt];
    let mut tq = vec![0f32; nt];
    for t in 0..nt {
        let mut k = 0;
        let mut x0 = 0f32;
        for r in 0..reps {
            for i in 0..vec {
                let j = t * vec + r * nt * vec + i;
                let x = if j < block { v[j] } else { 0.0 };
                match k {
                    0 => x0 = x,
                    1 => {
                        ts[t] = x0 + x;
                        tq[t] = x0.mul_add(x0, x * x);
                    }
                    _ => {
                        ts[t] += x;
                        tq[t] = x.mul_add(x, tq[t]);
                    }
                }
                k += 1;
            }
        }
    }
    let tree = |mut a: Vec<f32>| -> f32 {
        let mut w: Vec<f32> = a
            .chunks_mut(32)
            .map(|lanes| {
                let mut o = 16;
                while o > 0 {
                    let prev = lanes.to_vec();
                    for (i, l) in lanes.iter_mut().enumerate() {
                        *l = prev[i] + prev[i ^ o];
                    }
                    o /= 2;
                }
                lanes[0]
            })
            .collect();
        let mut o = w.len() / 2;
        while o > 0 {
            let prev = w.clone();
            for (i, l) in w.iter_mut().enumerate() {
                *l = prev[i] + prev[i ^ o];
            }
            o /= 2;
        }
        w[0]
    };
    (tree(ts), tree(tq))
}

/// Upstream's one group in fp32 (one-pass kernel below 2^18 elements, the chunked stats above),
/// rounded to x's dtype: the GPU's approximate rsqrt and exp2 differ from these by about 1e-7
/// relative, far inside the tolerance.
fn upstream_group(r: &Row, seed: u64, u: usize) -> Vec<f64> {
    let x = r.tensors[X].as_ref().unwrap();
    let dt = x.dtype;
    let g = r.scalars[0] as usize;
    let eps = r.scalars[1] as f32;
    let cpg = x.shape[1] as usize / g;
    let s: i64 = x.shape[2..].iter().product();
    let (b, grp) = (u / g, u % g);
    let inp = Inputs::new(r, seed);
    let vals: Vec<f32> = (0..cpg as i64)
        .flat_map(|k| (0..s).map(move |i| (k, i)))
        .map(|(k, i)| inp.at(X, x_offset(r, b as i64, (grp * cpg) as i64 + k, i)) as f32)
        .collect();
    let n = vals.len();
    let vec = 16 / dt.size();
    let (mut sum, mut sq) = (0f32, 0f32);
    if n < (1 << 18) {
        let block = n.next_power_of_two().min(4096);
        for c in vals.chunks(block) {
            let mut blk = c.to_vec();
            blk.resize(block, 0.0);
            let (a, q) = triton_block_sums(&blk, 128, vec);
            sum += a;
            sq += q;
        }
    } else {
        // Partials per 8192 (two 4096 blocks, 8 warps), then the finalize's sum over them.
        let mut ps = Vec::new();
        let mut pq = Vec::new();
        for c in vals.chunks(8192) {
            let (mut a, mut q) = (0f32, 0f32);
            for h in c.chunks(4096) {
                let mut blk = h.to_vec();
                blk.resize(4096, 0.0);
                let (x1, x2) = triton_block_sums(&blk, 256, vec);
                a += x1;
                q += x2;
            }
            ps.push(a);
            pq.push(q);
        }
        let rb = ps.len().next_power_of_two().min(1024);
        for (cs, cq) in ps.chunks(rb).zip(pq.chunks(rb)) {
            sum += cs.iter().sum::<f32>();
            sq += cq.iter().sum::<f32>();
        }
    }
    let inv = 1.0f32 / n as f32;
    let mean = sum * inv;
    let var = sq.mul_add(inv, -(mean * mean));
    let rstd = 1.0 / (var + eps).sqrt();
    vals.iter()
        .enumerate()
        .map(|(j, &v)| {
            let c = (grp * cpg + j / s as usize) as u64;
            let (w, bb) = (inp.at(W, c) as f32, inp.at(B, c) as f32);
            let y = (rstd * (v - mean)).mul_add(w, bb);
            let sig = 1.0 / ((-y * std::f32::consts::LOG2_E).exp2() + 1.0);
            dt.round_f32(y * sig)
        })
        .collect()
}

fn assert_upstream_within_tolerance(t: &Task, name: &str, units: &[usize]) {
    let r = row(t, name);
    let tol = t.tolerance(r.tensor("x").unwrap().dtype).unwrap();
    let g = r.scalars[0] as usize;
    for &u in units {
        let want = group(r, 5, u / g, u % g);
        let got = upstream_group(r, 5, u);
        let worst = want
            .iter()
            .zip(&got)
            .map(|(w, g)| (g - w).abs() / (tol.atol + tol.rtol * w.abs()))
            .fold(0.0, f64::max);
        assert!(
            worst <= 1.0,
            "{name} unit {u}: worst error {worst:.2} of the tolerance"
        );
    }
}

#[test]
fn upstream_fp32_math_is_within_the_tolerance_on_production_and_stress_rows() {
    let t = task();
    for name in [
        "hunyuanvideo_apply_1x512x5x32x32_C",
        "hunyuanvideo_apply_1x128x5x96x80_NC_channels_last_3d",
        "stress_offset_onepass_1x128x4x32x32",
        "stress_nearzero_var_onepass_1x128x8x16x16",
        "stress_zero_var_onepass_1x64x4x16x16",
        "reg_fp32_onepass_1x64x4x16x16",
        "reg_bf16_onepass_b2_2x64x32x32",
        "reg_fp16_odd_1x96x3x7x9",
    ] {
        assert_upstream_within_tolerance(&t, name, &[0, 17, 31]);
    }
    // Chunked rows (one group each: 2^18 elements or more).
    for name in [
        "stress_offset_chunked_1x32x4x256x256",
        "stress_nearzero_var_chunked_1x32x4x256x256",
        "stress_zero_var_chunked_1x32x4x256x256",
        "reg_fp16_chunked_ragged_1x96x9x100x100",
        "reg_fp32_chunked_1x64x4x128x128",
    ] {
        assert_upstream_within_tolerance(&t, name, &[3]);
    }
}
