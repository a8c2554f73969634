//! float64 references for SGLang's inference norms (tasks/norm_infer), one family, two entry
//! points, written from the semantics, not from the kernels:
//!   * `norm_infer(x, weight, bias, eps, is_rms_norm)`: per row of a 2-D x, LayerNorm
//!     y = (x - mean) / sqrt(var + eps) (population variance) or RMSNorm y = x / sqrt(mean(x^2) + eps),
//!     then * weight and + bias when given;
//!   * `triton_one_pass_rms_norm(x, w, eps)`: RMSNorm over x's last dim, any rank, times w, no bias.
//!
//! One unit is one row (the last dim); the output has x's shape and dtype.

use super::{need_dtype_of, need_float, present, Inputs, Reference};
use crate::task::{Row, TensorDesc};

/// Storage offset of x's element (row u, column c) for an x of any rank (row-major over the
/// leading dims, strides honoured).
fn x_offset(x: &TensorDesc, u: u64, c: i64) -> u64 {
    let rank = x.shape.len();
    let mut rem = u as i64;
    let mut off = c * x.stride[rank - 1];
    for k in (0..rank - 1).rev() {
        let i = rem % x.shape[k];
        rem /= x.shape[k];
        off += i * x.stride[k];
    }
    off as u64
}

/// LayerNorm or RMSNorm of one row in float64: (x - mean) * rstd or x * rstd.
fn normalise(v: &[f64], eps: f64, rms: bool) -> Vec<f64> {
    let n = v.len() as f64;
    let mean = if rms { 0.0 } else { v.iter().sum::<f64>() / n };
    let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / n;
    let rstd = 1.0 / (var + eps).sqrt();
    v.iter().map(|a| (a - mean) * rstd).collect()
}

fn need_eps(row: &Row) -> Result<f64, String> {
    match row.scalars.first() {
        Some(&e) if e > 0.0 => Ok(e),
        _ => Err("eps must be > 0".into()),
    }
}

fn need_affine(t: &TensorDesc, n: i64) -> Result<(), String> {
    need_float(t)?;
    if t.shape != [n] {
        return Err(format!(
            "'{}' must be [{n}] (x's last dim), not {:?}",
            t.name, t.shape
        ));
    }
    Ok(())
}

/// `norm_infer`. Tensors: x [M, N], weight [N]?, bias [N]?, out. Scalars: eps, is_rms_norm (0/1).
pub struct NormInfer;

const NI_X: usize = 0;
const NI_W: usize = 1;
const NI_B: usize = 2;
const NI_OUT: usize = 3;

impl Reference for NormInfer {
    fn validate(&self, row: &Row) -> Result<(), String> {
        let x = present(row, NI_X)?;
        need_float(x)?;
        if x.shape.len() != 2 {
            return Err(format!(
                "x must be 2-D [M, N] (upstream unpacks `M, N = x.shape`), not {:?}",
                x.shape
            ));
        }
        let n = x.shape[1];
        for i in [NI_W, NI_B] {
            if let Some(t) = &row.tensors[i] {
                need_affine(t, n)?;
            }
        }
        let out = present(row, NI_OUT)?;
        need_dtype_of(out, x)?;
        if out.shape != x.shape {
            return Err(format!(
                "out has shape {:?} but x has {:?}",
                out.shape, x.shape
            ));
        }
        need_eps(row)?;
        match row.scalars.get(1) {
            Some(&b) if b == 0.0 || b == 1.0 => Ok(()),
            _ => Err("is_rms_norm must be 0 or 1".into()),
        }
    }

    fn units(&self, row: &Row) -> usize {
        let x = row.tensors[NI_X].as_ref().expect("validated");
        x.shape[0] as usize
    }

    fn compute(&self, row: &Row, inp: &Inputs, u: usize, out: &mut [Vec<f64>]) {
        let x = inp.desc(NI_X).expect("validated");
        let n = x.shape[1];
        let v: Vec<f64> = (0..n)
            .map(|c| inp.at(NI_X, x_offset(x, u as u64, c)))
            .collect();
        let rms = row.scalars[1] != 0.0;
        let mut y = normalise(&v, row.scalars[0], rms);
        let affine = |t: usize, c: i64| inp.desc(t).map(|d| inp.at(t, d.offset(&[c])));
        for (c, yc) in y.iter_mut().enumerate() {
            if let Some(w) = affine(NI_W, c as i64) {
                *yc *= w;
            }
            if let Some(b) = affine(NI_B, c as i64) {
                *yc += b;
            }
        }
        out[0] = y;
    }
}

/// `triton_one_pass_rms_norm`. Tensors: x (any rank >= 1, last dim D), w [D], out. Scalars: eps.
pub struct OnePassRms;

const OP_X: usize = 0;
const OP_W: usize = 1;
const OP_OUT: usize = 2;

impl Reference for OnePassRms {
    fn validate(&self, row: &Row) -> Result<(), String> {
        let x = present(row, OP_X)?;
        need_float(x)?;
        if x.shape.is_empty() {
            return Err("x must have at least one dim".into());
        }
        let d = *x.shape.last().expect("rank >= 1");
        need_affine(present(row, OP_W)?, d)?;
        let out = present(row, OP_OUT)?;
        need_dtype_of(out, x)?;
        if out.shape != x.shape {
            return Err(format!(
                "out has shape {:?} but x has {:?}",
                out.shape, x.shape
            ));
        }
        need_eps(row)?;
        Ok(())
    }

    fn units(&self, row: &Row) -> usize {
        let x = row.tensors[OP_X].as_ref().expect("validated");
        let d = *x.shape.last().expect("validated");
        if d == 0 {
            0
        } else {
            (x.numel() / d as u64) as usize
        }
    }

    fn compute(&self, row: &Row, inp: &Inputs, u: usize, out: &mut [Vec<f64>]) {
        let x = inp.desc(OP_X).expect("validated");
        let w = inp.desc(OP_W).expect("validated");
        let d = *x.shape.last().expect("validated");
        let v: Vec<f64> = (0..d)
            .map(|c| inp.at(OP_X, x_offset(x, u as u64, c)))
            .collect();
        let mut y = normalise(&v, row.scalars[0], true);
        for (c, yc) in y.iter_mut().enumerate() {
            *yc *= inp.at(OP_W, w.offset(&[c as i64]));
        }
        out[0] = y;
    }
}
