//! float64 reference for SGLang's fused_causal_conv3d_cat_pad (tasks/causal_conv3d_cat_pad):
//! out = F.pad(cat([cache_x, x], dim=2), [wl, wr, ht, hb, dl - cache_t, dr]), zero fill. Pure
//! data movement: with a zero tolerance the check is bit-exact for every dtype.

use super::{need_dtype_of, Inputs, Reference};
use crate::task::Row;

pub struct CatPad;

const X: usize = 0;
const CACHE: usize = 1;
const OUT: usize = 2;

struct Geo {
    n: i64,
    c: i64,
    h: i64,
    w: i64,
    cache_t: i64,
    wl: i64,
    ht: i64,
    d0: i64,
    t_out: i64,
    h_out: i64,
    w_out: i64,
}

fn geo(row: &Row) -> Result<Geo, String> {
    let x = row.tensors[X].as_ref().ok_or("x is missing")?;
    let &[n, c, t, h, w] = x.shape.as_slice() else {
        return Err(format!("x must be [N, C, T, H, W], not {:?}", x.shape));
    };
    let cache_t = match &row.tensors[CACHE] {
        Some(cx) => match cx.shape.as_slice() {
            &[cn, cc, ct, ch, cw] if (cn, cc, ch, cw) == (n, c, h, w) => ct,
            s => {
                return Err(format!(
                    "cache_x must be [{n}, {c}, cache_t, {h}, {w}], not {s:?}"
                ))
            }
        },
        None => 0,
    };
    let p: Vec<i64> = row.scalars.iter().map(|&v| v as i64).collect();
    if row.scalars.iter().any(|v| v.fract() != 0.0 || *v < 0.0) {
        return Err("paddings must be non-negative integers".into());
    }
    let (wl, wr, ht, hb, dl, dr) = (p[0], p[1], p[2], p[3], p[4], p[5]);
    if wl != wr || ht != hb || dr != 0 || dl < cache_t {
        return Err(format!("padding {p:?} with cache_t {cache_t}: needs w_left == w_right, h_top == h_bottom, d_right == 0 and d_left >= cache_t"));
    }
    let d0 = dl - cache_t;
    Ok(Geo {
        n,
        c,
        h,
        w,
        cache_t,
        wl,
        ht,
        d0,
        t_out: d0 + cache_t + t + dr,
        h_out: h + ht + hb,
        w_out: w + wl + wr,
    })
}

impl Reference for CatPad {
    fn validate(&self, row: &Row) -> Result<(), String> {
        let g = geo(row)?;
        let x = row.tensors[X].as_ref().expect("geo checked x");
        if let Some(cx) = &row.tensors[CACHE] {
            need_dtype_of(cx, x)?;
        }
        let out = row.tensors[OUT].as_ref().ok_or("out is missing")?;
        need_dtype_of(out, x)?;
        let want = [g.n, g.c, g.t_out, g.h_out, g.w_out];
        if out.shape != want {
            return Err(format!(
                "out must be {want:?} for these paddings, not {:?}",
                out.shape
            ));
        }
        Ok(())
    }

    fn units(&self, row: &Row) -> usize {
        let g = geo(row).expect("validated");
        (g.n * g.c * g.t_out) as usize
    }

    fn compute(&self, row: &Row, inp: &Inputs, u: usize, out: &mut [Vec<f64>]) {
        let g = geo(row).expect("validated");
        let u = u as i64;
        let (to, nc) = (u % g.t_out, u / g.t_out);
        let (ci, ni) = (nc % g.c, nc / g.c);
        let o = &mut out[0];
        o.clear();
        let s = to - g.d0;
        for ho in 0..g.h_out {
            for wo in 0..g.w_out {
                let (hi, wi) = (ho - g.ht, wo - g.wl);
                let inside = s >= 0 && (0..g.h).contains(&hi) && (0..g.w).contains(&wi);
                o.push(if !inside {
                    0.0
                } else if s < g.cache_t {
                    let d = inp
                        .desc(CACHE)
                        .expect("cache_t > 0 means cache_x is present");
                    inp.at(CACHE, d.offset(&[ni, ci, s, hi, wi]))
                } else {
                    let d = inp.desc(X).expect("x is present");
                    inp.at(X, d.offset(&[ni, ci, s - g.cache_t, hi, wi]))
                });
            }
        }
    }
}
