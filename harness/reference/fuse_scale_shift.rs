//! float64 references for SGLang's scale_shift.py (tasks/fuse_scale_shift): what the three Triton
//! entry points compute, written from the semantics, not from their code.

use super::{need_dtype_of, need_float, Inputs, Reference};
use crate::task::{Row, TensorDesc};

/// `fuse_scale_shift_kernel`: out = x * (scale_constant + scale) + shift, broadcast scale/shift.
/// Tensors: x, scale, shift, out. Scalars: scale_constant.
pub struct ScaleShift;

const X: usize = 0;
const SCALE: usize = 1;
const SHIFT: usize = 2;
const OUT: usize = 3;

/// How a modulation tensor is indexed from (b, l, c).
#[derive(Debug, Clone, Copy)]
enum Bcast {
    Scalar,
    /// Offset = b*sb + l*sl + c*sc (broadcast dims have their stride zeroed).
    Grid {
        sb: i64,
        sl: i64,
        sc: i64,
    },
    /// [B, F, 1, C]: frame f = l / (L / F).
    Frames {
        sb: i64,
        sf: i64,
        sc: i64,
        frame_len: i64,
    },
}

impl Bcast {
    fn of(t: &TensorDesc, b: i64, l: i64, c: i64) -> Result<Bcast, String> {
        let n = t.numel();
        if t.shape.is_empty() || n == 1 {
            return Ok(Bcast::Scalar);
        }
        let fit = |size: i64, full: i64, stride: i64, what: &str| -> Result<i64, String> {
            if size == full {
                Ok(if size == 1 { 0 } else { stride })
            } else if size == 1 {
                Ok(0)
            } else {
                Err(format!("tensor '{}' has {what} size {size}, which neither equals {full} nor broadcasts (1)", t.name))
            }
        };
        match *t.shape.as_slice() {
            [bs, cs] => Ok(Bcast::Grid { sb: fit(bs, b, t.stride[0], "batch")?, sl: 0, sc: fit(cs, c, t.stride[1], "channel")? }),
            [bs, ls, cs] => Ok(Bcast::Grid { sb: fit(bs, b, t.stride[0], "batch")?, sl: fit(ls, l, t.stride[1], "length")?, sc: fit(cs, c, t.stride[2], "channel")? }),
            [bs, f, one, cs] => {
                if one != 1 || f < 1 || l % f != 0 {
                    return Err(format!("tensor '{}' is 4-D {:?}: it must be [B, F, 1, C] with L % F == 0", t.name, t.shape));
                }
                Ok(Bcast::Frames { sb: fit(bs, b, t.stride[0], "batch")?, sf: t.stride[1], sc: fit(cs, c, t.stride[3], "channel")?, frame_len: l / f })
            }
            _ => Err(format!("tensor '{}' has shape {:?}: use a scalar, [B, C], [B, L, C] (with broadcast) or [B, F, 1, C]", t.name, t.shape)),
        }
    }

    #[inline]
    fn offset(&self, b: i64, l: i64, c: i64) -> u64 {
        match *self {
            Bcast::Scalar => 0,
            Bcast::Grid { sb, sl, sc } => (b * sb + l * sl + c * sc) as u64,
            Bcast::Frames {
                sb,
                sf,
                sc,
                frame_len,
            } => (b * sb + (l / frame_len) * sf + c * sc) as u64,
        }
    }
}

fn blc(row: &Row) -> Result<(i64, i64, i64), String> {
    let x = row.tensors[X].as_ref().ok_or("x is missing")?;
    match x.shape.as_slice() {
        &[b, l, c] => Ok((b, l, c)),
        s => Err(format!("x must be [B, L, C], not {s:?}")),
    }
}

impl Reference for ScaleShift {
    fn validate(&self, row: &Row) -> Result<(), String> {
        let (b, l, c) = blc(row)?;
        let t = |i: usize| {
            row.tensors[i]
                .as_ref()
                .ok_or_else(|| format!("tensor #{i} is missing"))
        };
        let (x, scale, shift, out) = (t(X)?, t(SCALE)?, t(SHIFT)?, t(OUT)?);
        for v in [x, scale, shift, out] {
            need_float(v)?;
        }
        if !x.is_contiguous() {
            return Err("x must be contiguous (upstream requires it)".into());
        }
        need_dtype_of(out, x)?;
        if out.shape != x.shape {
            return Err(format!(
                "out has shape {:?} but x has {:?}",
                out.shape, x.shape
            ));
        }
        let sc = Bcast::of(scale, b, l, c)?;
        let sh = Bcast::of(shift, b, l, c)?;
        if matches!(sc, Bcast::Frames { .. })
            && !matches!(sh, Bcast::Frames { .. })
            && shift.shape != x.shape
        {
            return Err(
                "with a 4-D frame-wise scale the shift must be per-token [B, L, C] (or 4-D)".into(),
            );
        }
        if !matches!(row.scalars.first(), Some(&k) if k == 0.0 || k == 1.0) {
            return Err("scale_constant must be 0 or 1 (a compile-time constant upstream)".into());
        }
        Ok(())
    }

    fn units(&self, row: &Row) -> usize {
        let (b, l, _) = blc(row).expect("validated");
        (b * l) as usize
    }

    fn compute(&self, row: &Row, inp: &Inputs, u: usize, out: &mut [Vec<f64>]) {
        let (b, l, c) = blc(row).expect("validated");
        let scale = inp.desc(SCALE).expect("validated");
        let shift = inp.desc(SHIFT).expect("validated");
        let sc = Bcast::of(scale, b, l, c).expect("validated");
        let sh = Bcast::of(shift, b, l, c).expect("validated");
        let k = row.scalars[0];
        let (bi, li) = ((u as i64) / l, (u as i64) % l);
        // Upstream quirk: scalar scale and shift that are both zero return a copy of x,
        // whatever scale_constant is (the wrapper syncs and calls out.copy_(x)).
        let copy = matches!((sc, sh), (Bcast::Scalar, Bcast::Scalar))
            && inp.at(SCALE, 0) == 0.0
            && inp.at(SHIFT, 0) == 0.0;
        let o = &mut out[0];
        o.clear();
        let xbase = (u as u64) * c as u64;
        for ci in 0..c {
            let x = inp.at(X, xbase + ci as u64);
            if copy {
                o.push(x);
            } else {
                let s = inp.at(SCALE, sc.offset(bi, li, ci));
                let t = inp.at(SHIFT, sh.offset(bi, li, ci));
                o.push(x * (k + s) + t);
            }
        }
    }
}

/// `fuse_layernorm_scale_shift_gate_select01_kernel` (residual = false) and
/// `fuse_residual_layernorm_scale_shift_gate_select01_kernel` (residual = true).
/// Tensors (EP2): x, weight?, bias?, scale0, shift0, gate0, scale1, shift1, gate1, index, out, gate_out.
/// Tensors (EP3): x, residual, residual_gate, then the EP2 list from weight on, with residual_out
/// between out and gate_out. Scalars: eps.
pub struct LnSelect01 {
    pub residual: bool,
}

struct Layout {
    x: usize,
    residual: Option<(usize, usize)>,
    weight: usize,
    bias: usize,
    mods: [usize; 6],
    index: usize,
}

impl LnSelect01 {
    fn layout(&self) -> Layout {
        let o = if self.residual { 2 } else { 0 };
        Layout {
            x: 0,
            residual: self.residual.then_some((1, 2)),
            weight: 1 + o,
            bias: 2 + o,
            mods: [3 + o, 4 + o, 5 + o, 6 + o, 7 + o, 8 + o],
            index: 9 + o,
        }
    }
}

impl Reference for LnSelect01 {
    fn validate(&self, row: &Row) -> Result<(), String> {
        let (b, l, c) = blc(row)?;
        let lay = self.layout();
        let x = row.tensors[lay.x].as_ref().ok_or("x is missing")?;
        need_float(x)?;
        if !x.is_contiguous() {
            return Err("x must be contiguous".into());
        }
        if let Some((r, g)) = lay.residual {
            for i in [r, g] {
                let t = row.tensors[i]
                    .as_ref()
                    .ok_or("residual tensors are required")?;
                need_dtype_of(t, x)?;
                if t.shape != x.shape || !t.is_contiguous() {
                    return Err(format!(
                        "'{}' must be contiguous with x's shape {:?}",
                        t.name, x.shape
                    ));
                }
            }
        }
        for i in [lay.weight, lay.bias] {
            if let Some(t) = &row.tensors[i] {
                need_float(t)?;
                if t.shape != [c] {
                    return Err(format!("'{}' must be [{c}], not {:?}", t.name, t.shape));
                }
            }
        }
        for i in lay.mods {
            let t = row.tensors[i]
                .as_ref()
                .ok_or("modulation tensors are required")?;
            need_float(t)?;
            if t.shape.len() != 2 || (t.shape[0] != b && t.shape[0] != 1) || t.shape[1] != c {
                return Err(format!(
                    "'{}' must be [B or 1, {c}], not {:?}",
                    t.name, t.shape
                ));
            }
        }
        let idx = row.tensors[lay.index].as_ref().ok_or("index is missing")?;
        if idx.dtype.is_float() || idx.shape != [b, l] {
            return Err(format!(
                "index must be an integer [{b}, {l}], not {} {:?}",
                idx.dtype, idx.shape
            ));
        }
        match row.scalars.first() {
            Some(&e) if e > 0.0 => {}
            _ => return Err("eps must be > 0".into()),
        }
        Ok(())
    }

    fn units(&self, row: &Row) -> usize {
        let (b, l, _) = blc(row).expect("validated");
        (b * l) as usize
    }

    fn compute(&self, row: &Row, inp: &Inputs, u: usize, out: &mut [Vec<f64>]) {
        let (_, l, c) = blc(row).expect("validated");
        let lay = self.layout();
        let eps = row.scalars[0];
        let (bi, li) = ((u as i64) / l, (u as i64) % l);
        let base = u as u64 * c as u64;
        let v: Vec<f64> = (0..c as u64)
            .map(|ci| {
                let x = inp.at(lay.x, base + ci);
                match lay.residual {
                    Some((r, g)) => inp.at(r, base + ci) + inp.at(g, base + ci) * x,
                    None => x,
                }
            })
            .collect();
        let n = c as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / n;
        let rstd = 1.0 / (var + eps).sqrt();
        let idx = inp.desc(lay.index).expect("validated");
        let sel = inp.at(lay.index, idx.offset(&[bi, li])) != 0.0;
        let pick = if sel { 3 } else { 0 };
        let (ms, mh, mg) = (lay.mods[pick], lay.mods[pick + 1], lay.mods[pick + 2]);
        let modrow = |t: usize, ci: i64| {
            let d = inp.desc(t).expect("validated");
            let bb = if d.shape[0] == 1 { 0 } else { bi };
            inp.at(t, d.offset(&[bb, ci]))
        };
        let affine = |t: usize, ci: i64| inp.desc(t).map(|d| inp.at(t, d.offset(&[ci])));
        // Written tensors in declared order: out, [residual_out], gate_out.
        let (o_out, rest) = out.split_first_mut().expect("out");
        let (o_res, o_gate) = if self.residual {
            let (r, g) = rest.split_first_mut().expect("residual_out");
            (Some(r), &mut g[0])
        } else {
            (None, &mut rest[0])
        };
        o_out.clear();
        o_gate.clear();
        for ci in 0..c {
            let mut xh = (v[ci as usize] - mean) * rstd;
            if let Some(w) = affine(lay.weight, ci) {
                xh *= w;
            }
            if let Some(bb) = affine(lay.bias, ci) {
                xh += bb;
            }
            o_out.push(xh * (1.0 + modrow(ms, ci)) + modrow(mh, ci));
            o_gate.push(modrow(mg, ci));
        }
        if let Some(r) = o_res {
            r.clear();
            r.extend_from_slice(&v);
        }
    }
}
