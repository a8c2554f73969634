//! float64 reference for SGLang's fused_inplace_qknorm_rope (tasks/qknorm_rope): per token and
//! head, RMSNorm with a weight (kept unrounded) then RoPE from a cos/sin cache, written in place.

use super::{Inputs, Reference};
use crate::dtype::DType;
use crate::task::Row;

pub struct QkNormRope;

const Q: usize = 0;
const K: usize = 1;
const QW: usize = 2;
const KW: usize = 3;
const CACHE: usize = 4;
const POS: usize = 5;

struct Dims {
    n: i64,
    hq: i64,
    hk: i64,
    d: i64,
    r: i64,
}

fn dims(row: &Row) -> Result<Dims, String> {
    let t = |i: usize| {
        row.tensors[i]
            .as_ref()
            .ok_or_else(|| format!("tensor #{i} is missing"))
    };
    let (q, k, cache) = (t(Q)?, t(K)?, t(CACHE)?);
    match (q.shape.as_slice(), k.shape.as_slice(), cache.shape.as_slice()) {
        (&[n, hq, d], &[nk, hk, dk], &[_, r]) if n == nk && d == dk => Ok(Dims { n, hq, hk, d, r }),
        _ => Err(format!("q {:?} and k {:?} must be [N, H, D] with the same N and D, and the cache [P, R], not {:?}", q.shape, k.shape, cache.shape)),
    }
}

impl Reference for QkNormRope {
    fn validate(&self, row: &Row) -> Result<(), String> {
        let dm = dims(row)?;
        let t = |i: usize| row.tensors[i].as_ref().expect("checked by dims");
        let (q, k) = (t(Q), t(K));
        if !matches!(q.dtype, DType::Bf16 | DType::Fp16) || k.dtype != q.dtype {
            return Err(format!(
                "q and k must both be bf16 or fp16, not {} and {}",
                q.dtype, k.dtype
            ));
        }
        if ![64, 128, 256].contains(&dm.d) {
            return Err(format!("head_dim {} is not one of 64, 128, 256", dm.d));
        }
        if !(dm.r > 0 && dm.r <= dm.d && dm.r % (dm.d / 32) == 0) {
            return Err(format!(
                "rope_dim {} must be in (0, {}] and divisible by head_dim/32 = {}",
                dm.r,
                dm.d,
                dm.d / 32
            ));
        }
        let neox = row.scalars[0] != 0.0;
        if neox && !((dm.r / (dm.d / 32)) as u64).is_power_of_two() {
            return Err(format!(
                "NeoX needs rope_dim/(head_dim/32) = {} to be a power of two",
                dm.r / (dm.d / 32)
            ));
        }
        for (i, w) in [(QW, q), (KW, k)] {
            let wt = t(i);
            if wt.shape != [dm.d] || wt.dtype != w.dtype {
                return Err(format!(
                    "'{}' must be [{}] {}, not {:?} {}",
                    wt.name, dm.d, w.dtype, wt.shape, wt.dtype
                ));
            }
        }
        let cache = t(CACHE);
        if cache.dtype != DType::Fp32 || !cache.is_contiguous() {
            return Err("cos_sin_cache must be a contiguous fp32 [P, R] tensor".into());
        }
        let pos = t(POS);
        if pos.dtype.is_float() || pos.shape != [dm.n] {
            return Err(format!("positions must be an integer [{}] tensor", dm.n));
        }
        match pos.dist {
            Some(crate::inputs::Dist::Randint { lo, hi }) if lo >= 0 && hi <= cache.shape[0] => {}
            Some(crate::inputs::Dist::Arange) if dm.n <= cache.shape[0] => {}
            _ => {
                return Err(format!(
                    "positions must lie in [0, {}) (randint(0, P) or arange())",
                    cache.shape[0]
                ))
            }
        }
        if !matches!(row.scalars.get(1), Some(&e) if e > 0.0) {
            return Err("eps must be > 0".into());
        }
        Ok(())
    }

    fn gathered_bytes(&self, row: &Row, tensor: usize) -> Option<u64> {
        // Only the cache rows that positions name are read: at most N of the P rows.
        let dm = dims(row).ok()?;
        let p = row.tensors[CACHE].as_ref()?.shape[0];
        (tensor == CACHE).then(|| (dm.n.min(p) * dm.r * 4) as u64)
    }

    fn units(&self, row: &Row) -> usize {
        dims(row).expect("validated").n as usize
    }

    fn compute(&self, row: &Row, inp: &Inputs, u: usize, out: &mut [Vec<f64>]) {
        let dm = dims(row).expect("validated");
        let neox = row.scalars[0] != 0.0;
        let eps = row.scalars[1];
        let tok = u as i64;
        let pos_desc = inp.desc(POS).expect("validated");
        let p = inp.at(POS, pos_desc.offset(&[tok])) as i64;
        let cache = inp.desc(CACHE).expect("validated");
        let half = dm.r / 2;
        let cs: Vec<(f64, f64)> = (0..half)
            .map(|j| {
                (
                    inp.at(CACHE, cache.offset(&[p, j])),
                    inp.at(CACHE, cache.offset(&[p, half + j])),
                )
            })
            .collect();
        for (slot, (t, w, heads)) in [(Q, QW, dm.hq), (K, KW, dm.hk)].into_iter().enumerate() {
            let desc = inp.desc(t).expect("validated");
            let wd = inp.desc(w).expect("validated");
            let o = &mut out[slot];
            o.clear();
            for h in 0..heads {
                let x: Vec<f64> = (0..dm.d)
                    .map(|i| inp.at(t, desc.offset(&[tok, h, i])))
                    .collect();
                let ms = x.iter().map(|v| v * v).sum::<f64>() / dm.d as f64;
                let r = 1.0 / (ms + eps).sqrt();
                let n: Vec<f64> = (0..dm.d)
                    .map(|i| x[i as usize] * r * inp.at(w, wd.offset(&[i])))
                    .collect();
                let mut y = n.clone();
                for j in 0..half {
                    let (c, s) = cs[j as usize];
                    if neox {
                        let (a, b) = (n[j as usize], n[(j + half) as usize]);
                        y[j as usize] = a * c - b * s;
                        y[(j + half) as usize] = b * c + a * s;
                    } else {
                        let (a, b) = (n[2 * j as usize], n[2 * j as usize + 1]);
                        y[2 * j as usize] = a * c - b * s;
                        y[2 * j as usize + 1] = b * c + a * s;
                    }
                }
                o.extend_from_slice(&y);
            }
        }
    }
}
