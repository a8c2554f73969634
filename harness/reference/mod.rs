//! Independent float64 references, on the CPU, one per upstream entry point. A reference reads
//! its inputs by regenerating them from the seed (inputs.rs) and computes outputs unit by unit
//! (a unit is e.g. one token row), so a check can cover every unit or a seeded sample of them.

mod causal_conv3d_cat_pad;
mod fuse_scale_shift;
mod group_norm_silu;
mod norm_infer;
mod qknorm_rope;
mod residual_gate_add;
mod rotary_embedding;

use crate::dtype::DType;
use crate::inputs::{stream_key, Dist};
use crate::task::spec::Role;
use crate::task::{Row, TensorDesc};

pub trait Reference: Sync + Send {
    /// Whether the row is one the upstream op defines (rejection rows are not asked).
    fn validate(&self, row: &Row) -> Result<(), String>;
    /// Independent units; every written tensor (outputs and in-place tensors, in declared order)
    /// splits into `units` equal contiguous chunks.
    fn units(&self, row: &Row) -> usize;
    /// Computes unit `u`: `out[k]` receives the chunk of the k-th written tensor.
    fn compute(&self, row: &Row, inputs: &Inputs, u: usize, out: &mut [Vec<f64>]);
    /// Bytes the op must read from input `tensor` when it reads only part of it (a gather such as
    /// a cache indexed by position); None: all of its distinct elements.
    fn gathered_bytes(&self, _row: &Row, _tensor: usize) -> Option<u64> {
        None
    }
}

static FUSE_SCALE_SHIFT: fuse_scale_shift::ScaleShift = fuse_scale_shift::ScaleShift;
static FUSE_LN_SELECT01: fuse_scale_shift::LnSelect01 =
    fuse_scale_shift::LnSelect01 { residual: false };
static FUSE_RESIDUAL_LN_SELECT01: fuse_scale_shift::LnSelect01 =
    fuse_scale_shift::LnSelect01 { residual: true };
static QKNORM_ROPE: qknorm_rope::QkNormRope = qknorm_rope::QkNormRope;
static NORM_INFER: norm_infer::NormInfer = norm_infer::NormInfer;
static ONE_PASS_RMS: norm_infer::OnePassRms = norm_infer::OnePassRms;
static CAUSAL_CONV3D_CAT_PAD: causal_conv3d_cat_pad::CatPad = causal_conv3d_cat_pad::CatPad;
static RESIDUAL_GATE_ADD: residual_gate_add::ResidualGateAdd = residual_gate_add::ResidualGateAdd;
static ROTARY_EMBEDDING: rotary_embedding::StdRope = rotary_embedding::StdRope;
static LTX2_SPLIT_ROTARY_EMB: rotary_embedding::Ltx2SplitRope = rotary_embedding::Ltx2SplitRope;
static GROUP_NORM_SILU: group_norm_silu::GroupNormSilu = group_norm_silu::GroupNormSilu;

const REFERENCES: &[(&str, &dyn Reference)] = &[
    ("fuse_scale_shift", &FUSE_SCALE_SHIFT),
    (
        "fuse_layernorm_scale_shift_gate_select01",
        &FUSE_LN_SELECT01,
    ),
    (
        "fuse_residual_layernorm_scale_shift_gate_select01",
        &FUSE_RESIDUAL_LN_SELECT01,
    ),
    ("qknorm_rope", &QKNORM_ROPE),
    ("norm_infer", &NORM_INFER),
    ("triton_one_pass_rms_norm", &ONE_PASS_RMS),
    ("causal_conv3d_cat_pad", &CAUSAL_CONV3D_CAT_PAD),
    ("residual_gate_add", &RESIDUAL_GATE_ADD),
    ("rotary_embedding", &ROTARY_EMBEDDING),
    ("ltx2_split_rotary_emb", &LTX2_SPLIT_ROTARY_EMB),
    ("group_norm_silu", &GROUP_NORM_SILU),
];

pub fn lookup(name: &str) -> Option<&'static dyn Reference> {
    REFERENCES.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

pub fn names() -> Vec<&'static str> {
    REFERENCES.iter().map(|(n, _)| *n).collect()
}

/// The values a row's tensors hold before the call, under one seed, read without a GPU.
pub struct Inputs<'a> {
    row: &'a Row,
    keys: Vec<u64>,
}

impl<'a> Inputs<'a> {
    pub fn new(row: &'a Row, seed: u64) -> Inputs<'a> {
        let keys = (0..row.tensors.len())
            .map(|i| stream_key(seed, i as u32))
            .collect();
        Inputs { row, keys }
    }

    /// Value of declared tensor `t` at storage offset `offset`.
    #[inline]
    pub fn at(&self, t: usize, offset: u64) -> f64 {
        let desc = self.row.tensors[t]
            .as_ref()
            .expect("reference reads a present tensor");
        let dist: &Dist = desc.dist.as_ref().expect("an input has a dist");
        dist.value(self.keys[t], offset, desc.dtype)
    }

    pub fn desc(&self, t: usize) -> Option<&TensorDesc> {
        self.row.tensors[t].as_ref()
    }

    /// The generator key of declared tensor `t` under this seed: two `Inputs` of one row with the
    /// same key hold the same values, so a reference may cache what it derives from them.
    pub fn key(&self, t: usize) -> u64 {
        self.keys[t]
    }
}

/// Indices (in declared order) of the tensors a call writes.
pub fn written(row: &Row) -> Vec<usize> {
    row.tensors
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.as_ref().filter(|t| t.role != Role::Input).map(|_| i))
        .collect()
}

/// Tensor `i` of the row, or which one is missing.
pub(crate) fn present(row: &Row, i: usize) -> Result<&TensorDesc, String> {
    row.tensors[i]
        .as_ref()
        .ok_or_else(|| format!("tensor #{i} is missing"))
}

/// Shared shape checks.
pub(crate) fn need_float(t: &TensorDesc) -> Result<(), String> {
    if t.dtype.is_float() {
        Ok(())
    } else {
        Err(format!(
            "tensor '{}' has dtype {} but must be a float type",
            t.name, t.dtype
        ))
    }
}

pub(crate) fn need_dtype_of(t: &TensorDesc, like: &TensorDesc) -> Result<(), String> {
    if t.dtype == like.dtype {
        Ok(())
    } else {
        Err(format!(
            "tensor '{}' has dtype {} but must match '{}' ({})",
            t.name, t.dtype, like.name, like.dtype
        ))
    }
}

#[allow(dead_code)]
pub(crate) fn is_int(d: DType) -> bool {
    !d.is_float()
}
