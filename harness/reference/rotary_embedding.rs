//! float64 references for SGLang's Triton rotary embeddings (tasks/rotary_embedding).
//!
//! Standard RoPE (apply_rotary_embedding): x [B, S, H, D] or [S, H, D]; per row (b, s, h) and pair
//! j < D/2, with c = cos[s, j'] and s_ = sin[s, j'] (j' = 2j when `interleaved` and cos has full
//! width D, else j):
//!     out[2j]   = x[2j] * c - x[2j+1] * s_
//!     out[2j+1] = x[2j+1] * c + x[2j] * s_
//! in float64; upstream's fp32 fma and its one rounding to x's dtype are what the tolerance covers.
//! The pairs are ADJACENT whatever `interleaved` is (the flag only subsamples a full-width cos).
//!
//! LTX-2 split RoPE (apply_ltx2_split_rotary_emb): x [B, S, H*D] contiguous, cos/sin [B, H, S, D/2]
//! through their strides; per head, a = the first half, b = the second:
//!     out_a = r(a*c) - b*s_,  out_b = r(b*c) + a*s_
//! where r is the kernel's deliberate rounding point, kept here because it is part of the function
//! upstream defines (it mirrors PyTorch's bf16 `x * cos` before `addcmul_`): the product rounded to
//! x's dtype, then to bf16. Everything else in float64.

use super::{present, Inputs, Reference};
use crate::dtype::DType;
use crate::task::{Row, TensorDesc};

const X: usize = 0;
const COS: usize = 1;
const SIN: usize = 2;

fn io_dtype(t: &TensorDesc) -> Result<(), String> {
    if matches!(t.dtype, DType::Bf16 | DType::Fp16 | DType::Fp32) {
        Ok(())
    } else {
        Err(format!(
            "tensor '{}' has dtype {}; the kernels take bf16, fp16 or fp32",
            t.name, t.dtype
        ))
    }
}

/// Standard RoPE's view of a row: (B, S, H, D) and x's strides for (b, s, h, d).
struct StdDims {
    b: i64,
    s: i64,
    h: i64,
    d: i64,
    xs: [i64; 4],
}

fn std_dims(x: &TensorDesc) -> Result<StdDims, String> {
    match (x.shape.as_slice(), x.stride.as_slice()) {
        (&[b, s, h, d], &[sb, ss, sh, sd]) => Ok(StdDims {
            b,
            s,
            h,
            d,
            xs: [sb, ss, sh, sd],
        }),
        (&[s, h, d], &[ss, sh, sd]) => Ok(StdDims {
            b: 1,
            s,
            h,
            d,
            xs: [0, ss, sh, sd],
        }),
        _ => Err(format!(
            "x has shape {:?}; upstream unpacks it as [B, S, H, D] or [S, H, D] (ValueError otherwise)",
            x.shape
        )),
    }
}

/// x, cos, sin and out of a row (both entry points take these four), each of a dtype upstream
/// accepts.
fn four_tensors(row: &Row) -> Result<[&TensorDesc; 4], String> {
    let t = [
        present(row, X)?,
        present(row, COS)?,
        present(row, SIN)?,
        present(row, 3)?,
    ];
    for d in t {
        io_dtype(d)?;
    }
    Ok(t)
}

pub struct StdRope;

impl Reference for StdRope {
    fn validate(&self, row: &Row) -> Result<(), String> {
        let [x, c, s, o] = four_tensors(row)?;
        let dm = std_dims(x)?;
        if dm.d % 2 != 0 {
            return Err(format!(
                "head_size {} is odd (upstream asserts head_size % 2 == 0)",
                dm.d
            ));
        }
        if x.shape.len() == 4 && dm.b > 1 && dm.s > 1 && dm.xs[0] != dm.s * dm.xs[1] {
            return Err(format!(
                "x strides {:?} do not let x.view(B*S, H, D) merge B and S (PyTorch raises)",
                x.stride
            ));
        }
        if o.dtype != x.dtype || o.shape != x.shape {
            return Err("out must have x's shape and dtype".into());
        }
        if c.shape.len() != 2 || s.shape != c.shape || s.dtype != c.dtype {
            return Err(format!(
                "cos and sin must be 2-D [rows, width] of one shape and dtype, not {:?} and {:?}",
                c.shape, s.shape
            ));
        }
        if c.shape[0] < dm.s {
            return Err(format!(
                "cos has {} rows but x has {} tokens (upstream would read past it)",
                c.shape[0], dm.s
            ));
        }
        if c.shape[1] != dm.d / 2 && c.shape[1] != dm.d {
            return Err(format!(
                "cos width {} must be head_size/2 = {} or head_size = {}",
                c.shape[1],
                dm.d / 2,
                dm.d
            ));
        }
        Ok(())
    }

    /// One unit: one (b, s, h) row of D.
    fn units(&self, row: &Row) -> usize {
        let dm = std_dims(row.tensors[X].as_ref().expect("validated")).expect("validated");
        (dm.b * dm.s * dm.h) as usize
    }

    fn compute(&self, row: &Row, inp: &Inputs, u: usize, out: &mut [Vec<f64>]) {
        let x = inp.desc(X).expect("validated");
        let c = inp.desc(COS).expect("validated");
        let sn = inp.desc(SIN).expect("validated");
        let dm = std_dims(x).expect("validated");
        let interleaved = row.scalars[0] != 0.0;
        let u = u as i64;
        let (h, s, b) = (u % dm.h, (u / dm.h) % dm.s, u / (dm.h * dm.s));
        let base = b * dm.xs[0] + s * dm.xs[1] + h * dm.xs[2];
        let step = if interleaved && c.shape[1] == dm.d {
            2
        } else {
            1
        };
        let o = &mut out[0];
        o.clear();
        for j in 0..dm.d / 2 {
            let x1 = inp.at(X, (base + 2 * j * dm.xs[3]) as u64);
            let x2 = inp.at(X, (base + (2 * j + 1) * dm.xs[3]) as u64);
            let cv = inp.at(COS, (s * c.stride[0] + step * j * c.stride[1]) as u64);
            let sv = inp.at(SIN, (s * sn.stride[0] + step * j * sn.stride[1]) as u64);
            o.push(x1 * cv - x2 * sv);
            o.push(x2 * cv + x1 * sv);
        }
    }
}

pub struct Ltx2SplitRope;

/// The LTX-2 kernel's rounding of x*cos: to x's dtype (the product in x's arithmetic), then bf16.
pub(crate) fn ltx_product(a: f64, c: f64, dtype: DType) -> f64 {
    DType::Bf16.round_f64(dtype.round_f64(a * c))
}

impl Reference for Ltx2SplitRope {
    fn validate(&self, row: &Row) -> Result<(), String> {
        let [x, c, s, o] = four_tensors(row)?;
        let (&[b, sq, inner], &[cb, h, cs, half]) = (x.shape.as_slice(), c.shape.as_slice()) else {
            return Err(format!(
                "x must be [B, S, H*D] and cos [B, H, S, D/2], not {:?} and {:?} (upstream unpacks them)",
                x.shape, c.shape
            ));
        };
        if cb != b || cs != sq || inner != h * 2 * half || s.shape != c.shape {
            return Err(format!(
                "LTX2 split RoPE shape mismatch: x={:?}, cos={:?}, sin={:?} (upstream raises ValueError)",
                x.shape, c.shape, s.shape
            ));
        }
        if c.dtype != x.dtype || s.dtype != x.dtype || o.dtype != x.dtype || o.shape != x.shape {
            return Err("cos, sin and out must have x's dtype, out x's shape".into());
        }
        if !x.is_contiguous() {
            return Err("x must be contiguous (the kernel indexes it densely)".into());
        }
        if half > 1 && (c.stride[3] != 1 || s.stride[3] != 1) {
            return Err("cos and sin need a unit last stride (the kernel assumes it)".into());
        }
        Ok(())
    }

    /// One unit: one (b, s, h) head of D = 2*half.
    fn units(&self, row: &Row) -> usize {
        let x = row.tensors[X].as_ref().expect("validated");
        let c = row.tensors[COS].as_ref().expect("validated");
        (x.shape[0] * x.shape[1] * c.shape[1]) as usize
    }

    fn compute(&self, _row: &Row, inp: &Inputs, u: usize, out: &mut [Vec<f64>]) {
        let x = inp.desc(X).expect("validated");
        let c = inp.desc(COS).expect("validated");
        let sn = inp.desc(SIN).expect("validated");
        let (sq, h, half) = (x.shape[1], c.shape[1], c.shape[3]);
        let u = u as i64;
        let (hh, bt) = (u % h, u / h);
        let (b, t) = (bt / sq, bt % sq);
        let xb = u * 2 * half;
        let cb = b * c.stride[0] + hh * c.stride[1] + t * c.stride[2];
        let sb = b * sn.stride[0] + hh * sn.stride[1] + t * sn.stride[2];
        let o = &mut out[0];
        o.clear();
        o.resize((2 * half) as usize, 0.0);
        for j in 0..half {
            let a = inp.at(X, (xb + j) as u64);
            let bv = inp.at(X, (xb + half + j) as u64);
            let cv = inp.at(COS, (cb + j) as u64);
            let sv = inp.at(SIN, (sb + j) as u64);
            o[j as usize] = ltx_product(a, cv, x.dtype) - bv * sv;
            o[(half + j) as usize] = ltx_product(bv, cv, x.dtype) + a * sv;
        }
    }
}
