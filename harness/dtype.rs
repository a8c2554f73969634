//! Element types as the ABI and the task files name them.

use crate::abi;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Bf16,
    Fp16,
    Fp32,
    I32,
    I64,
}

impl DType {
    pub const ALL: [DType; 5] = [
        DType::Bf16,
        DType::Fp16,
        DType::Fp32,
        DType::I32,
        DType::I64,
    ];

    pub fn parse(s: &str) -> Option<DType> {
        match s {
            "bf16" | "bfloat16" => Some(DType::Bf16),
            "fp16" | "f16" | "float16" => Some(DType::Fp16),
            "fp32" | "f32" | "float32" => Some(DType::Fp32),
            "i32" | "int32" => Some(DType::I32),
            "i64" | "int64" => Some(DType::I64),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::Bf16 => "bf16",
            DType::Fp16 => "fp16",
            DType::Fp32 => "fp32",
            DType::I32 => "i32",
            DType::I64 => "i64",
        }
    }

    pub fn size(self) -> usize {
        match self {
            DType::Bf16 | DType::Fp16 => 2,
            DType::Fp32 | DType::I32 => 4,
            DType::I64 => 8,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::Bf16 | DType::Fp16 | DType::Fp32)
    }

    pub fn abi_code(self) -> i32 {
        (match self {
            DType::Bf16 => abi::KP_BF16,
            DType::Fp16 => abi::KP_F16,
            DType::Fp32 => abi::KP_F32,
            DType::I32 => abi::KP_I32,
            DType::I64 => abi::KP_I64,
        }) as i32
    }

    /// Decodes element `i` of a little-endian buffer of this type.
    #[inline]
    pub fn decode(self, bytes: &[u8], i: usize) -> f64 {
        let s = self.size();
        let b = &bytes[i * s..i * s + s];
        match self {
            DType::Bf16 => half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f64(),
            DType::Fp16 => half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f64(),
            DType::Fp32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            DType::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            DType::I64 => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
        }
    }

    /// Raw bits of element `i` (for poison comparisons), zero-extended.
    #[inline]
    pub fn bits(self, bytes: &[u8], i: usize) -> u64 {
        let s = self.size();
        let mut w = [0u8; 8];
        w[..s].copy_from_slice(&bytes[i * s..i * s + s]);
        u64::from_le_bytes(w)
    }

    /// Rounds an f32 to this type the way the GPU's `__float2*_rn` does, returned as f64.
    #[inline]
    pub fn round_f32(self, v: f32) -> f64 {
        match self {
            DType::Bf16 => half::bf16::from_f32(v).to_f64(),
            DType::Fp16 => half::f16::from_f32(v).to_f64(),
            DType::Fp32 => v as f64,
            DType::I32 => (v as i32) as f64,
            DType::I64 => (v as i64) as f64,
        }
    }

    /// Rounds an f64 to this type the way a float32 computation stored with `__float2*_rn` is:
    /// for the 16-bit types, first to f32, then to nearest even (two roundings, so not the
    /// correctly rounded 16-bit value of an f64 that f32 cannot hold exactly; the references
    /// model float32 arithmetic, so that is what they need).
    #[inline]
    pub fn round_f64(self, v: f64) -> f64 {
        match self {
            // Through f32 on purpose: `half`'s own from_f64 looks at only the top 20 bits of
            // the f64 mantissa when it rounds, so a value just above a tie (the difference in
            // the f32's last 3 bits) is rounded as a tie, to even: one 16-bit ulp off, about
            // once in 2^13 values (found by the rotary_embedding task's fp32 rows on an H200).
            DType::Bf16 => half::bf16::from_f32(v as f32).to_f64(),
            DType::Fp16 => half::f16::from_f32(v as f32).to_f64(),
            DType::Fp32 => v as f32 as f64,
            DType::I32 => (v as i32) as f64,
            DType::I64 => (v as i64) as f64,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
