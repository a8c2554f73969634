//! DType::round_f64 rounds to nearest even the way a float32 result stored with `__float2*_rn`
//! is: the cases here are values just above a tie whose difference sits in the f32's last bits,
//! which `half`'s own from_f64 rounds as ties (it looks at the top 20 bits of the f64 mantissa).
use kpilot::dtype::DType;

fn f32b(bits: u32) -> f64 {
    f32::from_bits(bits) as f64
}

#[test]
fn bf16_rounds_just_above_a_tie_up() {
    let bf = |bits: u16| half::bf16::from_bits(bits).to_f64();
    // 1.0 + 2^-8 + 2^-23: above the tie between 0x3F80 and 0x3F81 by the f32's last bit.
    assert_eq!(DType::Bf16.round_f64(f32b(0x3F80_8001)), bf(0x3F81));
    // Exact ties go to even, either way.
    assert_eq!(DType::Bf16.round_f64(f32b(0x3F80_8000)), bf(0x3F80));
    assert_eq!(DType::Bf16.round_f64(f32b(0x3F81_8000)), bf(0x3F82));
    // Just below a tie rounds down; negative values mirror.
    assert_eq!(DType::Bf16.round_f64(f32b(0x3F80_7FFF)), bf(0x3F80));
    assert_eq!(DType::Bf16.round_f64(-f32b(0x3F80_8001)), -bf(0x3F81));
}

#[test]
fn fp16_rounds_just_above_a_tie_up() {
    let h = |bits: u16| half::f16::from_bits(bits).to_f64();
    // 1.0 + 2^-11 + 2^-23: above the tie between 1.0 (0x3C00) and 1.0 + 2^-10 (0x3C01).
    assert_eq!(DType::Fp16.round_f64(f32b(0x3F80_1001)), h(0x3C01));
    assert_eq!(DType::Fp16.round_f64(f32b(0x3F80_1000)), h(0x3C00));
    assert_eq!(DType::Fp16.round_f64(f32b(0x3F80_3000)), h(0x3C02));
}

#[test]
fn fp32_results_are_what_a_float32_computation_stores() {
    // A float64 value is first rounded to float32 (the kernel's arithmetic), then to 16 bits.
    let v = 1.0 + 2f64.powi(-8) + 2f64.powi(-30); // rounds to the exact tie in f32, then to even
    assert_eq!(DType::Fp32.round_f64(v), f32b(0x3F80_8000));
    assert_eq!(
        DType::Bf16.round_f64(v),
        half::bf16::from_bits(0x3F80).to_f64()
    );
}
