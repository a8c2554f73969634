//! Checks of every buffer set after a timed sample. One support launch (`kps_batch`) scans every
//! written tensor of every set for poison and NaN/Inf, every guard band for damage and checksums
//! every set's inputs; a second gathers, from every set, units drawn after the sample ran from the
//! OS's generator (nothing the implementations could read while they ran), which the float64
//! reference then checks under that set's own seed.

use super::{Buffers, RowRunner};
use crate::check::{self, Check, GUARD, GUARD_BYTES};
use crate::dtype::DType;
use crate::error::Result;
use crate::gpu::{DeviceBuffer, Pinned};
use crate::inputs::set_seed;
use crate::library::{KpsRange, KPS_CHECKSUM, KPS_GATHER, KPS_NOT_BYTE, KPS_SCAN};
use crate::protocol::SideResult;
use crate::task::spec::Role;
use rayon::prelude::*;

/// Where one set's results sit in the slot array.
struct SetSlots {
    /// (declared tensor index, first of 4 slots: poison count, NaN/Inf count, first poison,
    /// first NaN/Inf) per written tensor.
    scans: Vec<(usize, usize)>,
    /// (declared tensor index, "before"/"after", first of 2 slots: damaged bytes, first offset).
    guards: Vec<(usize, &'static str, usize)>,
    /// (declared tensor index, slot) per input tensor: its checksum.
    inputs: Vec<(usize, usize)>,
}

pub(super) struct SetChecks {
    ranges: DeviceBuffer,
    n_ranges: u32,
    max_bytes: u64,
    slots: DeviceBuffer,
    init: Vec<u64>,
    layout: Vec<SetSlots>,
    /// Input checksums of each set since the trial's fill, in `inputs` order.
    expect: Vec<Vec<u64>>,
    /// Units compared per set after each sample (0: none).
    pub units_per_set: usize,
    /// Bytes of one unit of each written tensor, in staging order.
    unit_bytes: Vec<usize>,
    gather_ranges: DeviceBuffer,
    gather: DeviceBuffer,
    gather_host: Pinned,
}

fn exp_mask(d: DType) -> u64 {
    match d {
        DType::Bf16 => 0x7F80,
        DType::Fp16 => 0x7C00,
        DType::Fp32 => 0x7F80_0000,
        DType::I32 | DType::I64 => 0,
    }
}

fn as_bytes(r: &[KpsRange]) -> &[u8] {
    // SAFETY: KpsRange is repr(C), plain integers, no padding (4 x u64 + 2 x u32).
    unsafe { std::slice::from_raw_parts(r.as_ptr() as *const u8, std::mem::size_of_val(r)) }
}

fn u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

impl RowRunner<'_> {
    /// Lays out the checks of the first `used` sets of `b` (those a sample launches on: sets
    /// beyond the launch count are never written); `sample` units are compared per sample in
    /// all, at least one in every set (0: none, as for in-place outputs that could not be fresh).
    pub(super) fn set_checks(&self, b: &Buffers, used: usize, sample: usize) -> Result<SetChecks> {
        let mut ranges = Vec::new();
        let mut init = Vec::new();
        let mut layout = Vec::new();
        let mut max_bytes = 0u64;
        for set in &b.sets[..used] {
            let mut l = SetSlots {
                scans: Vec::new(),
                guards: Vec::new(),
                inputs: Vec::new(),
            };
            for (i, t) in self.row.tensors.iter().enumerate() {
                let (Some(t), Some(buf)) = (t, &set[i]) else {
                    continue;
                };
                if t.role == Role::Input {
                    l.inputs.push((i, init.len()));
                    ranges.push(KpsRange {
                        ptr: buf.data,
                        n: buf.data_bytes,
                        slot: init.len() as u64,
                        kind: KPS_CHECKSUM,
                        ..Default::default()
                    });
                    init.push(0);
                    max_bytes = max_bytes.max(buf.data_bytes);
                    continue;
                }
                l.scans.push((i, init.len()));
                ranges.push(KpsRange {
                    ptr: buf.data,
                    n: t.numel(),
                    aux: exp_mask(t.dtype),
                    slot: init.len() as u64,
                    kind: KPS_SCAN,
                    elem_size: t.dtype.size() as u32,
                });
                init.extend([0, 0, u64::MAX, u64::MAX]);
                max_bytes = max_bytes.max(buf.data_bytes);
                for (label, at) in [("before", buf.base), ("after", buf.data + buf.data_bytes)] {
                    l.guards.push((i, label, init.len()));
                    ranges.push(KpsRange {
                        ptr: at,
                        n: GUARD_BYTES as u64,
                        aux: (GUARD & 0xFF) as u64,
                        slot: init.len() as u64,
                        kind: KPS_NOT_BYTE,
                        elem_size: 1,
                    });
                    init.extend([0, u64::MAX]);
                }
            }
            layout.push(l);
        }
        let dev_ranges = self.gpu.alloc(std::mem::size_of_val(&ranges[..]))?;
        self.gpu.upload(as_bytes(&ranges), dev_ranges.ptr)?;
        let slots = self.gpu.alloc(init.len() * 8)?;

        let total = self.reference().units(self.row).max(1);
        let nsets = used;
        let units_per_set = if sample == 0 {
            0
        } else {
            sample.div_ceil(nsets).clamp(1, total)
        };
        let unit_bytes: Vec<usize> = b
            .staging
            .iter()
            .map(|(i, _)| {
                let t = self.row.tensors[*i]
                    .as_ref()
                    .expect("staged tensors are present");
                t.numel() as usize / total * t.dtype.size()
            })
            .collect();
        let per_set: usize = unit_bytes.iter().sum::<usize>() * units_per_set;
        let n_gather = nsets * units_per_set * unit_bytes.len();
        let gather_ranges = self
            .gpu
            .alloc(n_gather.max(1) * std::mem::size_of::<KpsRange>())?;
        let gather = self.gpu.alloc((per_set * nsets).max(1))?;
        let gather_host = Pinned::new((per_set * nsets).max(1))?;
        Ok(SetChecks {
            ranges: dev_ranges,
            n_ranges: ranges.len() as u32,
            max_bytes,
            slots,
            init,
            expect: Vec::new(),
            layout,
            units_per_set,
            unit_bytes,
            gather_ranges,
            gather,
            gather_host,
        })
    }

    /// Runs the batch and returns every slot.
    fn run_batch(&self, c: &SetChecks, pattern: u32) -> Result<Vec<u64>> {
        let init: Vec<u8> = c.init.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.gpu.upload(&init, c.slots.ptr)?;
        self.support.batch(
            c.ranges.ptr,
            c.n_ranges,
            c.max_bytes,
            pattern,
            c.slots.ptr,
            0,
            self.stream(),
        )?;
        let mut out = vec![0u8; init.len()];
        self.gpu.download(c.slots.ptr, &mut out)?;
        Ok(u64s(&out))
    }

    /// Remembers every set's input checksums (after a fill).
    pub(super) fn expect_inputs(&self, c: &mut SetChecks) -> Result<()> {
        let v = self.run_batch(c, 0)?;
        c.expect = c
            .layout
            .iter()
            .map(|l| l.inputs.iter().map(|&(_, s)| v[s]).collect())
            .collect();
        Ok(())
    }

    /// After a timed sample: every set scanned (poison, NaN/Inf, guards, inputs) and compared
    /// with the reference on units drawn now, in every set, each under its own seed.
    pub(super) fn check_sets(
        &self,
        c: &mut SetChecks,
        b: &Buffers,
        trial_seed: u64,
        pattern: u32,
        side: &mut SideResult,
    ) -> Result<()> {
        // Outputs are read only after all work of the context ended, and work still running once
        // the sample was done on the harness's stream is that side's failure.
        let waited = self.gpu.drain()?;
        super::lingered(side, waited, "a timed sample");
        let v = self.run_batch(c, pattern)?;
        let name = |i: usize| {
            self.row.tensors[i]
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default()
        };
        let mut scan = Check::default();
        let mut guard_fail: Option<String> = None;
        let mut changed: Vec<String> = Vec::new();
        for (s, l) in c.layout.iter().enumerate() {
            for &(i, k) in &l.scans {
                let t = self.row.tensors[i].as_ref().expect("present");
                scan.scanned += t.numel();
                scan.unwritten += v[k];
                scan.nonfinite += v[k + 1];
                if scan.first.is_none() && v[k] > 0 {
                    scan.first = Some(format!(
                        "set {s}: {}[{}] still holds poison",
                        t.name,
                        v[k + 2]
                    ));
                }
                if scan.first.is_none() && v[k + 1] > 0 {
                    scan.first = Some(format!("set {s}: {}[{}] is NaN/Inf", t.name, v[k + 3]));
                }
            }
            for &(i, label, k) in &l.guards {
                if guard_fail.is_none() && v[k] > 0 {
                    guard_fail = Some(format!(
                        "set {s}: {} guard band {label} the buffer was written ({} byte(s), first at byte {} of {GUARD_BYTES})",
                        name(i),
                        v[k],
                        v[k + 1]
                    ));
                }
            }
            for (j, &(i, k)) in l.inputs.iter().enumerate() {
                if c.expect.get(s).and_then(|e| e.get(j)) != Some(&v[k]) {
                    let what = format!("{} (set {s})", name(i));
                    if changed.len() < 4 {
                        changed.push(what);
                    }
                }
            }
        }
        let compared = self.compare_sets(c, b, trial_seed, pattern)?;
        let check = scan.merge(compared);
        side.gate(
            "written",
            check.unwritten == 0,
            format!(
                "after a timed sample: {} element(s) still hold poison{}",
                check.unwritten,
                super::first(&check)
            ),
        );
        side.gate(
            "finite",
            check.nonfinite == 0,
            format!(
                "after a timed sample: {} NaN/Inf element(s){}",
                check.nonfinite,
                super::first(&check)
            ),
        );
        side.gate(
            "tolerance",
            check.mismatches == 0,
            format!(
                "after a timed sample: {} of {} compared element(s) outside tolerance{}",
                check.mismatches,
                check.compared,
                super::first(&check)
            ),
        );
        side.gate(
            "guards",
            guard_fail.is_none(),
            format!("after a timed sample: {}", guard_fail.unwrap_or_default()),
        );
        side.gate(
            "inputs_unchanged",
            changed.is_empty(),
            format!(
                "after a timed sample: input(s) modified: {}",
                changed.join(", ")
            ),
        );
        side.timed_check = std::mem::take(&mut side.timed_check).merge(check);
        Ok(())
    }

    /// Gathers `units_per_set` units drawn now from every set and compares them with the
    /// reference under each set's seed.
    fn compare_sets(
        &self,
        c: &mut SetChecks,
        b: &Buffers,
        trial_seed: u64,
        pattern: u32,
    ) -> Result<Check> {
        if c.units_per_set == 0 || c.unit_bytes.is_empty() {
            return Ok(Check::default());
        }
        let reference = self.reference();
        let total = reference.units(self.row).max(1);
        let mut rng = rand::rng();
        let units: Vec<Vec<usize>> = (0..c.layout.len())
            .map(|_| {
                let mut u: Vec<usize> = (0..c.units_per_set)
                    .map(|_| rand::Rng::random_range(&mut rng, 0..total))
                    .collect();
                u.sort_unstable();
                u
            })
            .collect();
        // Gathered layout: set, then unit, then written tensor.
        let per_unit: usize = c.unit_bytes.iter().sum();
        let mut ranges = Vec::new();
        let mut off = 0u64;
        for (s, us) in units.iter().enumerate() {
            for &u in us {
                for (w, (i, _)) in b.staging.iter().enumerate() {
                    let buf = b.sets[s][*i].as_ref().expect("present");
                    let len = c.unit_bytes[w] as u64;
                    ranges.push(KpsRange {
                        ptr: buf.data + u as u64 * len,
                        n: len,
                        aux: off,
                        kind: KPS_GATHER,
                        ..Default::default()
                    });
                    off += len;
                }
            }
        }
        self.gpu.upload(as_bytes(&ranges), c.gather_ranges.ptr)?;
        self.support.batch(
            c.gather_ranges.ptr,
            ranges.len() as u32,
            per_unit as u64,
            pattern,
            c.slots.ptr,
            c.gather.ptr,
            self.stream(),
        )?;
        let host = c.gather_host.as_mut_slice(off as usize);
        self.gpu.download(c.gather.ptr, host)?;
        let host: &[u8] = host;
        let descs: Vec<&crate::task::TensorDesc> = b
            .staging
            .iter()
            .map(|(i, _)| self.row.tensors[*i].as_ref().expect("present"))
            .collect();
        let tol = |d| {
            self.task
                .tolerance(d)
                .unwrap_or(crate::task::spec::Tolerance {
                    atol: 0.0,
                    rtol: 0.0,
                })
        };
        let set_bytes = c.units_per_set * per_unit;
        let unit_bytes = &c.unit_bytes;
        Ok(units
            .par_iter()
            .enumerate()
            .map(|(s, us)| {
                let base = s * set_bytes;
                check::compare_units(
                    self.row,
                    reference,
                    set_seed(trial_seed, s),
                    &descs,
                    us,
                    &tol,
                    pattern,
                    &format!("set {s}: "),
                    &|k, w| {
                        let at = base + k * per_unit + unit_bytes[..w].iter().sum::<usize>();
                        &host[at..at + unit_bytes[w]]
                    },
                )
            })
            .reduce(Check::default, Check::merge))
    }
}
