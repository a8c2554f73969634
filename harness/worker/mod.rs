//! The worker process: owns the CUDA context, runs rows one by one and reports each as a JSON
//! line. Per row: allocate guarded buffer sets, run the correctness trial on both sides, calibrate
//! one launch count from the slower side, then time both sides interleaved (ABBA...) with fresh
//! inputs every trial, checking the outputs of the timed launches too.

use crate::abi::{self, kp_call, Status};
use crate::check::{self, Check, GUARD, GUARD_BYTES, POISON};
use crate::error::{Error, Result};
use crate::gpu::{DeviceBuffer, Gpu, Graph, Pinned};
use crate::inputs::{set_seed, trial_seed};
use crate::library::{Implementation, KpsStreamRegion, Stream, Support, KPS_STREAM_MAX_REGIONS};
use crate::protocol::{Envelope, Event, Hello, Plan, RowResult, SideResult};
use crate::reference::{self, Reference};
use crate::task::rows::RowKind;
use crate::task::spec::Role;
use crate::task::{Row, Task};
use std::ffi::c_void;
use std::io::{BufRead, Write};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

pub mod probe;
mod sets;

/// The result channel: the pipe the parent reads, the run's secret, the next sequence number.
struct Channel {
    out: std::fs::File,
    secret: String,
    seq: u64,
}

static CHANNEL: OnceLock<Mutex<Channel>> = OnceLock::new();

pub fn emit(e: &Event) {
    let Some(ch) = CHANNEL.get() else {
        eprintln!("kpilot worker: no result channel");
        std::process::exit(1);
    };
    let mut ch = ch.lock().unwrap_or_else(|p| p.into_inner());
    let env = Envelope {
        secret: ch.secret.clone(),
        seq: ch.seq,
        event: e.clone(),
    };
    ch.seq += 1;
    let line = serde_json::to_string(&env).expect("events serialize");
    if writeln!(ch.out, "{line}")
        .and_then(|_| ch.out.flush())
        .is_err()
    {
        // The parent is gone; nobody is left to report to.
        std::process::exit(1);
    }
}

/// Reads the parent's hello from stdin (one line), closes stdin and opens the result channel.
/// Runs before any kernel library is loaded.
pub fn hello_from_stdin() -> Result<Plan> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io("the worker cannot read its plan from stdin", e))?;
    let hello: Hello = serde_json::from_str(&line)
        .map_err(|e| Error::Internal(format!("the worker's hello does not parse: {e}")))?;
    // SAFETY: closes our own stdin, read in full above; nothing else uses it.
    unsafe { libc::close(0) };
    if hello.fd < 3 {
        return Err(Error::Internal(format!(
            "result channel fd {} is a standard stream",
            hello.fd
        )));
    }
    // SAFETY: the parent mapped the channel's write end to this descriptor before exec; we own it
    // from here. CLOEXEC keeps it out of any process the worker starts (nvidia-smi).
    let out = unsafe {
        libc::fcntl(hello.fd, libc::F_SETFD, libc::FD_CLOEXEC);
        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(hello.fd)
    };
    CHANNEL
        .set(Mutex::new(Channel {
            out,
            secret: hello.secret,
            seq: 0,
        }))
        .map_err(|_| Error::Internal("the result channel was opened twice".into()))?;
    Ok(hello.plan)
}

/// Entry of `kpilot worker`: returns the process exit code.
pub fn main(plan: Plan) -> i32 {
    match run(&plan) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kpilot worker: {e}");
            e.exit_code().max(2)
        }
    }
}

fn run(plan: &Plan) -> Result<()> {
    let gpu = Gpu::open(plan.device)?;
    emit(&Event::Device {
        info: gpu.info.clone(),
    });
    let task = Task::load_dir(&plan.task_dir)?;
    let names: Vec<String> = task.spec.entries.iter().map(|e| e.name.clone()).collect();
    let support = Support::load(&plan.support_so)?;
    let sides = [
        Implementation::load(&plan.baseline_so, &names, "baseline")?,
        Implementation::load(&plan.candidate_so, &names, "candidate")?,
    ];
    if plan.measure_copy {
        let t0 = Instant::now();
        let (tbps, bytes) = copy_bandwidth(&gpu, &support)?;
        emit(&Event::CopyBandwidth { tbps, bytes, method: format!("cuMemcpyDtoDAsync of {} MiB, 10 copies between events, (read+write bytes)/time, median of 5", bytes >> 20), seconds: t0.elapsed().as_secs_f64() });
    }
    for &r in &plan.rows {
        let row = task
            .rows
            .get(r)
            .ok_or_else(|| Error::Internal(format!("plan names row {r}, which does not exist")))?;
        emit(&Event::RowStart { row: r });
        let t0 = Instant::now();
        let mut runner = RowRunner {
            gpu: &gpu,
            support: &support,
            sides: &sides,
            task: &task,
            row,
            plan,
        };
        match runner.run() {
            Ok(mut res) => {
                res.seconds = t0.elapsed().as_secs_f64();
                emit(&Event::Row {
                    result: Box::new(res),
                });
            }
            Err(e) => {
                let res = RowResult {
                    row: r,
                    name: row.name.clone(),
                    error: Some(e.to_string()),
                    seconds: t0.elapsed().as_secs_f64(),
                    ..Default::default()
                };
                emit(&Event::Row {
                    result: Box::new(res),
                });
                if matches!(e, Error::Cuda(_)) {
                    // A fault poisons the context; a fresh worker takes the remaining rows.
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

fn copy_bandwidth(gpu: &Gpu, support: &Support) -> Result<(f64, u64)> {
    let bytes = ((1u64 << 30).min(gpu.free_mem()? / 4) >> 20 << 20).max(1 << 20) as usize;
    let a = gpu.alloc(bytes)?;
    let b = gpu.alloc(bytes)?;
    support.fill_pattern(
        a.ptr,
        bytes as u64,
        0x1234_5678,
        Stream(gpu.stream as *mut c_void),
    )?;
    let (e0, e1) = (gpu.event()?, gpu.event()?);
    let mut samples = Vec::new();
    for i in 0..6 {
        gpu.record(&e0)?;
        for _ in 0..10 {
            gpu.copy_d2d(b.ptr, a.ptr, bytes)?;
        }
        gpu.record(&e1)?;
        let ms = gpu.elapsed_ms(&e0, &e1)?;
        if i > 0 {
            samples.push(2.0 * bytes as f64 * 10.0 / (ms * 1e-3) / 1e12);
        }
    }
    gpu.check_async("copy bandwidth")?;
    Ok((crate::stats::median(&samples), bytes as u64))
}

thread_local! {
    /// Pinned staging buffers kept from row to row (the worker runs rows on one thread):
    /// page-locking hundreds of MB per row and freeing them again costs more than the copies.
    static PINNED: std::cell::RefCell<Vec<Pinned>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A pinned buffer of at least `len` bytes: the smallest kept one that fits, else a new one
/// (rounded up, so rows of nearly equal size share it; the largest kept one that is too small
/// is freed, so the pool holds about one buffer per staged tensor of the largest row).
fn take_pinned(len: usize) -> Result<Pinned> {
    PINNED.with(|p| {
        let mut p = p.borrow_mut();
        if let Some(i) = (0..p.len())
            .filter(|&i| p[i].len() >= len)
            .min_by_key(|&i| p[i].len())
        {
            return Ok(p.swap_remove(i));
        }
        if let Some(i) = (0..p.len()).max_by_key(|&i| p[i].len()) {
            drop(p.swap_remove(i));
        }
        const MIB: usize = 1 << 20;
        let round = if len >= 64 * MIB {
            len.div_ceil(64 * MIB) * 64 * MIB
        } else {
            len.next_power_of_two().max(64 << 10)
        };
        Pinned::new(round)
    })
}

impl Drop for Buffers {
    fn drop(&mut self) {
        let staged = std::mem::take(&mut self.staging)
            .into_iter()
            .chain(std::mem::take(&mut self.staging_other));
        PINNED.with(|p| p.borrow_mut().extend(staged.map(|(_, b)| b)));
    }
}

/// One side's correctness call, read back: the scan, the guards, the inputs.
struct TrialOutput {
    scan: Check,
    guard_fail: Option<String>,
    changed: Vec<String>,
}

/// Wall time per phase of a row, by the host clock (`RowResult::phases`).
struct Laps {
    mark: Instant,
    phases: Vec<crate::record::Phase>,
}

impl Laps {
    fn new() -> Laps {
        Laps {
            mark: Instant::now(),
            phases: Vec::new(),
        }
    }
    /// Charges the time since the last lap to `name`.
    fn lap(&mut self, name: &str) {
        let now = Instant::now();
        crate::record::add_phase(&mut self.phases, name, (now - self.mark).as_secs_f64());
        self.mark = now;
    }
}

struct TensorBuf {
    _buf: DeviceBuffer,
    base: u64,
    data: u64,
    data_bytes: u64,
}

struct RowRunner<'a> {
    gpu: &'a Gpu,
    support: &'a Support,
    sides: &'a [Implementation; 2],
    task: &'a Task,
    row: &'a Row,
    plan: &'a Plan,
}

struct Buffers {
    /// sets[s][t]: tensor t (declared order) of buffer set s.
    sets: Vec<Vec<Option<TensorBuf>>>,
    /// calls[side][set]
    calls: [Vec<kp_call>; 2],
    /// Host staging for each written tensor (declared index, buffer).
    staging: Vec<(usize, Pinned)>,
    /// The same for the candidate in the correctness trial: both sides' outputs are held at
    /// once, so the reference is computed once for the two.
    staging_other: Vec<(usize, Pinned)>,
    /// Device u64 for checksums.
    sum: DeviceBuffer,
}

impl<'a> RowRunner<'a> {
    fn stream(&self) -> Stream {
        Stream(self.gpu.stream as *mut c_void)
    }

    fn reference(&self) -> &'static dyn Reference {
        reference::lookup(&self.task.spec.entries[self.row.entry].reference)
            .expect("validated at load")
    }

    fn progress(&self, stage: impl Into<String>) {
        emit(&Event::Progress {
            row: self.row.index,
            stage: stage.into(),
        });
    }

    fn set_bytes(&self) -> u64 {
        self.row
            .tensors
            .iter()
            .flatten()
            .map(|t| {
                t.storage_elems() * t.dtype.size() as u64
                    + if t.role == Role::Input {
                        0
                    } else {
                        2 * GUARD_BYTES as u64
                    }
            })
            .sum()
    }

    fn allocate(&self) -> Result<Buffers> {
        let set_bytes = self.set_bytes().max(1);
        let free = self.gpu.free_mem()?;
        if set_bytes > free {
            return Err(Error::input(
                &self.task.rows_path,
                self.row.line,
                format!(
                    "row '{}' needs {} MiB of device memory ({set_bytes} bytes with guard bands), {} MiB are free on {}: it cannot run on this card",
                    self.row.name,
                    set_bytes >> 20,
                    free >> 20,
                    self.gpu.info.name
                ),
            ));
        }
        let want = if self.plan.cache == "cold" {
            (2 * self.gpu.info.l2_bytes.max(1) as u64)
                .div_ceil(set_bytes)
                .clamp(1, 256)
        } else {
            1
        };
        let nsets = want.min((free / 2 / set_bytes).max(1)) as usize;
        let mut sets = Vec::with_capacity(nsets);
        for _ in 0..nsets {
            sets.push(self.alloc_set()?);
        }
        let calls = [0, 1].map(|_| sets.iter().map(|s| self.make_call(s)).collect::<Vec<_>>());
        let staging = |side: usize| -> Result<Vec<(usize, Pinned)>> {
            let mut v = Vec::new();
            if side == 1 && self.row.kind == RowKind::Rejection {
                return Ok(v); // a refusal is checked in the first staging only
            }
            for (i, t) in self.row.tensors.iter().enumerate() {
                if let Some(t) = t.as_ref().filter(|t| t.role != Role::Input) {
                    v.push((
                        i,
                        take_pinned((t.storage_elems() * t.dtype.size() as u64) as usize)?,
                    ));
                }
            }
            Ok(v)
        };
        let (staging, staging_other) = (staging(0)?, staging(1)?);
        let sum = self.gpu.alloc(8)?;
        Ok(Buffers {
            sets,
            calls,
            staging,
            staging_other,
            sum,
        })
    }

    /// One buffer set: every present tensor, written ones between guard bands.
    fn alloc_set(&self) -> Result<Vec<Option<TensorBuf>>> {
        let mut ts = Vec::new();
        for t in &self.row.tensors {
            let Some(t) = t else {
                ts.push(None);
                continue;
            };
            let data_bytes = t.storage_elems() * t.dtype.size() as u64;
            let guard = if t.role == Role::Input {
                0
            } else {
                GUARD_BYTES as u64
            };
            let total = data_bytes + 2 * guard;
            let buf = self.gpu.alloc(total as usize)?;
            let base = buf.ptr;
            if guard > 0 {
                self.support
                    .fill_pattern(base, total, GUARD, self.stream())?;
            }
            ts.push(Some(TensorBuf {
                _buf: buf,
                base,
                data: base + guard,
                data_bytes,
            }));
        }
        Ok(ts)
    }

    /// Grows the buffer sets to one per launch of a sample (`n`), refilled before each sample.
    /// Returns how many sets there are now; fewer than `n` only when device memory runs short.
    fn grow_sets(&self, b: &mut Buffers, n: usize) -> Result<usize> {
        let set_bytes = self.set_bytes().max(1);
        while b.sets.len() < n && self.gpu.free_mem()? / 2 > set_bytes {
            let set = self.alloc_set()?;
            for side in 0..2 {
                let c = self.make_call(&set);
                b.calls[side].push(c);
            }
            b.sets.push(set);
        }
        Ok(b.sets.len())
    }

    fn make_call(&self, set: &[Option<TensorBuf>]) -> kp_call {
        let mut c = kp_call {
            abi_version: abi::KP_ABI_VERSION,
            n_tensors: self.row.tensors.len() as u32,
            n_scalars: self.row.scalars.len() as u32,
            ..Default::default()
        };
        for (i, t) in self.row.tensors.iter().enumerate() {
            let d = &mut c.tensors[i];
            match (t, &set[i]) {
                (Some(t), Some(b)) => {
                    d.data = b.data as *mut c_void;
                    d.dtype = t.dtype.abi_code();
                    d.rank = t.shape.len() as i32;
                    d.shape[..t.shape.len()].copy_from_slice(&t.shape);
                    d.stride[..t.stride.len()].copy_from_slice(&t.stride);
                }
                _ => {
                    d.data = std::ptr::null_mut();
                    d.dtype = abi::KP_ABSENT as i32;
                }
            }
        }
        c.scalars[..self.row.scalars.len()].copy_from_slice(&self.row.scalars);
        c
    }

    /// New values in every input and in-place tensor of every set.
    fn fill(&self, b: &Buffers, seed: u64) -> Result<()> {
        self.fill_where(b, seed, |r| r != Role::Output)
    }

    /// Every set gets its own values (`set_seed`): no two sets hold the same inputs, so no launch
    /// can take its answer from another set's output.
    fn fill_where(&self, b: &Buffers, seed: u64, which: impl Fn(Role) -> bool) -> Result<()> {
        for (s, set) in b.sets.iter().enumerate() {
            let seed = set_seed(seed, s);
            for (i, t) in self.row.tensors.iter().enumerate() {
                if let (Some(t), Some(buf)) = (t, &set[i]) {
                    if which(t.role) {
                        let dist = t.dist.expect("inputs have a dist").abi_args();
                        self.support.fill_random(
                            buf.data,
                            t.dtype.abi_code(),
                            t.storage_elems(),
                            seed,
                            i as u32,
                            dist,
                            self.stream(),
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Restores the guard bands of set `set` (the correctness trial's set 0) before a side's
    /// call, so damage found after the call is that call's and never the other side's leftover
    /// (the candidate's call comes first).
    fn restore_guards(&self, b: &Buffers, set: usize) -> Result<()> {
        for (i, t) in self.row.tensors.iter().enumerate() {
            if let (Some(t), Some(buf)) = (t, &b.sets[set][i]) {
                if t.role != Role::Input {
                    for at in [buf.base, buf.data + buf.data_bytes] {
                        self.support
                            .fill_pattern(at, GUARD_BYTES as u64, GUARD, self.stream())?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Poison in every output of every set; fresh values in in-place tensors.
    fn prepare(&self, b: &Buffers, pattern: u32, seed: u64) -> Result<()> {
        let has_inout = self
            .row
            .tensors
            .iter()
            .flatten()
            .any(|t| t.role == Role::Inout);
        for set in &b.sets {
            for (i, t) in self.row.tensors.iter().enumerate() {
                if let (Some(t), Some(buf)) = (t, &set[i]) {
                    if t.role == Role::Output {
                        self.support.fill_pattern(
                            buf.data,
                            buf.data_bytes,
                            pattern,
                            self.stream(),
                        )?;
                    }
                }
            }
        }
        if has_inout {
            // Only the in-place tensors changed since the trial's fill.
            self.fill_where(b, seed, |r| r == Role::Inout)?;
        }
        Ok(())
    }

    /// Checksums of the inputs of one set (and of the in-place tensors with `with_inout`).
    fn checksums(&self, b: &Buffers, set: usize) -> Result<Vec<(usize, u64)>> {
        self.checksums_of(b, set, false)
    }

    fn checksums_of(&self, b: &Buffers, set: usize, with_inout: bool) -> Result<Vec<(usize, u64)>> {
        let mut v = Vec::new();
        for (i, t) in self.row.tensors.iter().enumerate() {
            if let (Some(t), Some(buf)) = (t, &b.sets[set][i]) {
                if t.role == Role::Input || (with_inout && t.role == Role::Inout) {
                    self.gpu.upload(&0u64.to_le_bytes(), b.sum.ptr)?;
                    self.support
                        .checksum(buf.data, buf.data_bytes, b.sum.ptr, self.stream())?;
                    let mut out = [0u8; 8];
                    self.gpu.download(b.sum.ptr, &mut out)?;
                    v.push((i, u64::from_le_bytes(out)));
                }
            }
        }
        Ok(v)
    }

    /// The correctness call's output, read back (set 0, into side `s`'s staging): every output
    /// element scanned for poison and NaN/Inf, guards and inputs checked. The reference
    /// comparison of every unit follows for both sides at once (`judge_trial`).
    fn collect(
        &self,
        b: &mut Buffers,
        s: usize,
        pattern: u32,
        expect_inputs: &[(usize, u64)],
    ) -> Result<TrialOutput> {
        let set = 0;
        // The context was drained right after the call (the trial loop), so the outputs are
        // complete when read.
        let mut scan = Check::default();
        let staging = if s == 0 {
            &mut b.staging
        } else {
            &mut b.staging_other
        };
        for (i, stage) in staging.iter_mut() {
            let t = self.row.tensors[*i]
                .as_ref()
                .expect("staged tensors are present");
            let buf = b.sets[set][*i].as_ref().expect("present");
            let bytes = stage.as_mut_slice(buf.data_bytes as usize);
            self.gpu.download(buf.data, bytes)?;
            scan = scan.merge(check::scan(t, bytes, pattern));
        }
        let guard_fail = self.guards(b, set)?;
        let changed = self.changed(&self.checksums(b, set)?, expect_inputs);
        Ok(TrialOutput {
            scan,
            guard_fail,
            changed,
        })
    }

    /// Every unit of the sides that returned ok compared with one pass of the float64 reference,
    /// then each side's gates: written, finite, tolerance, guards, inputs unchanged. Returns the
    /// seed of a `--quick` run's draw of units (None when every unit was compared).
    fn judge_trial(
        &self,
        b: &mut Buffers,
        seed: u64,
        pattern: u32,
        collected: [Option<TrialOutput>; 2],
        sides: &mut [SideResult; 2],
    ) -> Result<Option<u64>> {
        let reference = self.reference();
        // Every unit, or (--quick) a sample drawn now, after both calls returned.
        let draw: u64 = rand::random();
        let total = reference.units(self.row);
        let units = check::pick_units(total, self.plan.trial_units, draw);
        // Fewer units than the row has: the seed chose them (else every unit was taken).
        let drawn = units.len() < total;
        let present: Vec<usize> = (0..2).filter(|&s| collected[s].is_some()).collect();
        let written: Vec<Vec<(&crate::task::TensorDesc, &[u8])>> = present
            .iter()
            .map(|&s| {
                let staging = if s == 0 { &b.staging } else { &b.staging_other };
                staging
                    .iter()
                    .map(|(i, stage)| {
                        let t = self.row.tensors[*i].as_ref().expect("present");
                        let len = b.sets[0][*i].as_ref().expect("present").data_bytes as usize;
                        (t, stage.as_slice(len))
                    })
                    .collect()
            })
            .collect();
        let tol = |d| {
            self.task
                .tolerance(d)
                .unwrap_or(crate::task::spec::Tolerance {
                    atol: 0.0,
                    rtol: 0.0,
                })
        };
        let compared =
            check::compare_sides(self.row, reference, seed, &written, &units, &tol, pattern);
        for (c, (s, found)) in compared.into_iter().zip(
            collected
                .into_iter()
                .enumerate()
                .filter_map(|(s, f)| f.map(|f| (s, f))),
        ) {
            let side = &mut sides[s];
            let check = found.scan.merge(c);
            side.gate(
                "written",
                check.unwritten == 0,
                format!(
                    "{} element(s) still hold poison{}",
                    check.unwritten,
                    first(&check)
                ),
            );
            side.gate(
                "finite",
                check.nonfinite == 0,
                format!("{} NaN/Inf element(s){}", check.nonfinite, first(&check)),
            );
            side.gate(
                "tolerance",
                check.mismatches == 0,
                format!(
                    "{} of {} compared element(s) outside tolerance{}",
                    check.mismatches,
                    check.compared,
                    first(&check)
                ),
            );
            side.gate(
                "guards",
                found.guard_fail.is_none(),
                found.guard_fail.unwrap_or_default(),
            );
            side.gate(
                "inputs_unchanged",
                found.changed.is_empty(),
                format!("input(s) modified: {}", found.changed.join(", ")),
            );
            side.check = check;
        }
        Ok(drawn.then_some(draw))
    }

    /// Names of the tensors whose checksum differs between two `checksums_of` results.
    fn changed(&self, now: &[(usize, u64)], before: &[(usize, u64)]) -> Vec<String> {
        now.iter()
            .zip(before)
            .filter(|(a, e)| a.1 != e.1)
            .map(|(a, _)| {
                self.row.tensors[a.0]
                    .as_ref()
                    .map(|t| t.name.clone())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// The first guard band of set `set` that is no longer intact, in words.
    fn guards(&self, b: &Buffers, set: usize) -> Result<Option<String>> {
        let mut g = vec![0u8; GUARD_BYTES];
        for (i, _) in &b.staging {
            let t = self.row.tensors[*i]
                .as_ref()
                .expect("staged tensors are present");
            let buf = b.sets[set][*i].as_ref().expect("present");
            for (label, at) in [("before", buf.base), ("after", buf.data + buf.data_bytes)] {
                self.gpu.download(at, &mut g)?;
                if let Some(k) = g.iter().position(|&x| x != (GUARD & 0xFF) as u8) {
                    return Ok(Some(format!(
                        "{} guard band {label} the buffer was written at byte {k} of {GUARD_BYTES}",
                        t.name
                    )));
                }
            }
        }
        Ok(None)
    }

    /// A call that refused must have written nothing: every output element still poison, every
    /// input and in-place tensor unchanged, guard bands intact.
    fn check_refusal(
        &self,
        b: &mut Buffers,
        before: &[(usize, u64)],
        side: &mut SideResult,
    ) -> Result<()> {
        let mut written = 0u64;
        let mut scanned = 0u64;
        for (i, stage) in b.staging.iter_mut() {
            let t = self.row.tensors[*i]
                .as_ref()
                .expect("staged tensors are present");
            let buf = b.sets[0][*i].as_ref().expect("present");
            let bytes = stage.as_mut_slice(buf.data_bytes as usize);
            if t.role == Role::Output {
                self.gpu.download(buf.data, bytes)?;
                let k = check::scan(t, bytes, POISON[0]);
                written += k.scanned - k.unwritten;
                scanned += k.scanned;
            }
        }
        let guard_fail = self.guards(b, 0)?;
        let changed = self.changed(&self.checksums_of(b, 0, true)?, before);
        side.gate(
            "refusal_wrote_nothing",
            written == 0,
            format!("{written} of {scanned} output element(s) written by a call that refused"),
        );
        side.gate(
            "guards",
            guard_fail.is_none(),
            guard_fail.unwrap_or_default(),
        );
        side.gate(
            "inputs_unchanged",
            changed.is_empty(),
            format!(
                "tensor(s) modified by a call that refused: {}",
                changed.join(", ")
            ),
        );
        side.check = Check {
            scanned,
            unwritten: scanned - written,
            ..Default::default()
        };
        Ok(())
    }

    fn run(&mut self) -> Result<RowResult> {
        let row = self.row;
        let mut res = RowResult {
            row: row.index,
            name: row.name.clone(),
            ..Default::default()
        };
        let mut laps = Laps::new();
        let mut b = self.allocate()?;
        laps.lap("allocate");
        let entry = row.entry;
        let stream = self.stream();
        let mut sides = [SideResult::default(), SideResult::default()];
        let mut outputs: [Option<TrialOutput>; 2] = [None, None];

        // Correctness trial: every unit compared, on both sides.
        let seed0 = trial_seed(self.plan.seed, row.index, 0);
        res.trial_seeds.push(seed0);
        // Both sides in turn, the candidate first: its output is read back before the trusted
        // baseline runs, and no candidate code runs between the baseline's read-back and the
        // comparison, so a candidate cannot touch the baseline's staged output. `s` indexes the
        // implementations, the calls and the results alike.
        for s in [1, 0] {
            // Stages name the side, so a hang is pinned on the side that was running.
            self.progress(format!("correctness trial, {}", self.sides[s].side));
            self.fill(&b, seed0)?;
            let inputs0 = self.checksums(&b, 0)?;
            self.restore_guards(&b, 0)?;
            self.prepare(&b, POISON[0], seed0)?;
            // For a refusal, in-place tensors must come back untouched as well.
            let before = if row.kind == RowKind::Rejection {
                self.checksums_of(&b, 0, true)?
            } else {
                Vec::new()
            };
            let code = self.sides[s].call(entry, &mut b.calls[s][0], stream);
            self.gpu.check_async(&format!(
                "task '{}', row '{}', {} call",
                self.task.name(),
                row.name,
                self.sides[s].side
            ))?;
            // Work still running once the call's own stream was done is this side's failure,
            // whatever the call returned, and none of it may reach the other side's call (the
            // candidate runs first).
            let waited = self.gpu.drain()?;
            lingered(&mut sides[s], waited, "the correctness call");
            let status = Status::from_code(code);
            sides[s].status = status_name(status);
            sides[s].path = b.calls[s][0].path_str();
            if row.kind == RowKind::Rejection {
                sides[s].gate(
                    "rejected",
                    status == Status::NotSupported,
                    format!("returned {} instead of not_supported", sides[s].status),
                );
                self.check_refusal(&mut b, &before, &mut sides[s])?;
                continue;
            }
            sides[s].gate(
                "status",
                status == Status::Ok,
                format!("returned {}", sides[s].status),
            );
            sides[s].gate(
                "dispatch_path",
                !sides[s].path.is_empty(),
                "the implementation reported no dispatch path",
            );
            if status == Status::Ok {
                outputs[s] = Some(self.collect(&mut b, s, POISON[0], &inputs0)?);
            }
        }
        laps.lap("correctness_trial");
        if row.kind != RowKind::Rejection {
            res.trial_units_seed =
                self.judge_trial(&mut b, seed0, POISON[0], outputs, &mut sides)?;
            laps.lap("correctness_reference");
        }
        if row.kind == RowKind::Rejection || !sides.iter().all(|s| s.passed()) {
            [res.baseline, res.candidate] = sides;
            drop(b);
            laps.lap("release");
            res.phases = laps.phases;
            return Ok(res);
        }

        // Calibrate one launch count from the slower side's device time.
        let (e0, e1) = (self.gpu.event()?, self.gpu.event()?);
        let probe_n = 10usize;
        let mut per_launch = 0.0f64;
        for s in 0..2 {
            self.progress(format!("calibration, {}", self.sides[s].side));
            let g = self.capture(&mut b, s, probe_n)?;
            self.gpu.launch_graph(&g)?;
            let mut best = f64::MAX;
            for _ in 0..3 {
                self.gpu.record(&e0)?;
                self.gpu.launch_graph(&g)?;
                self.gpu.record(&e1)?;
                best = best.min(self.gpu.elapsed_ms(&e0, &e1)? * 1e3 / probe_n as f64);
            }
            per_launch = per_launch.max(best);
        }
        self.gpu.check_async("calibration")?;
        laps.lap("calibration");
        let mut n = ((self.plan.min_sample_ms * 1e3 / per_launch.max(1e-3)).ceil() as usize)
            .clamp(1, 20_000);
        let has_inout = row.tensors.iter().flatten().any(|t| t.role == Role::Inout);
        if has_inout || self.plan.cache == "cold" {
            // One set per launch: every launch of a sample writes outputs poisoned since anything
            // last wrote them (a kernel cannot find the answer already there), and in-place
            // tensors are fresh. If memory caps the sets, cap the launches instead (the sample is
            // then shorter than min_sample_ms, and says so through `launches`).
            n = n.min(self.grow_sets(&mut b, n)?);
            // New sets hold whatever the allocator gave; the warm-up launches read them (positions
            // included), so give them valid values first.
            self.fill(&b, seed0)?;
        }
        let nsets = b.sets.len();
        res.buffer_sets = nsets as u32;
        res.launches = n as u32;
        let graphs = [self.capture(&mut b, 0, n)?, self.capture(&mut b, 1, n)?];
        for g in &graphs {
            self.gpu.launch_graph(g)?; // warm-up, excluded
        }
        self.gpu.check_async("warm-up")?;
        // In-place tensors were launched on once per set, so their timed outputs match the
        // reference; with too few sets they could not be, and only poison, NaN and guards are checked.
        let timed_sample = if has_inout && n > nsets {
            0
        } else {
            self.plan.sample_units
        };
        let mut checks = self.set_checks(&b, n.min(nsets), timed_sample)?;
        res.units_per_set = checks.units_per_set as u32;
        laps.lap("timing_setup");

        for t in 0..self.plan.trials {
            let seed = trial_seed(self.plan.seed, row.index, t + 1);
            res.trial_seeds.push(seed);
            self.fill(&b, seed)?;
            self.expect_inputs(&mut checks)?;
            laps.lap("trial_fill");
            let pattern = POISON[(t % 2) as usize];
            let order = if t % 2 == 0 { [0, 1] } else { [1, 0] };
            for &s in &order {
                self.progress(format!(
                    "trial {}/{}, {} graph sample",
                    t + 1,
                    self.plan.trials,
                    self.sides[s].side
                ));
                self.prepare(&b, pattern, seed)?;
                self.gpu.drain()?; // every sample starts with the whole context idle
                self.gpu.record(&e0)?;
                self.gpu.launch_graph(&graphs[s])?;
                self.gpu.record(&e1)?;
                let ms = self.gpu.elapsed_ms(&e0, &e1)?;
                self.gpu.check_async(&format!(
                    "task '{}', row '{}', {} graph sample",
                    self.task.name(),
                    row.name,
                    self.sides[s].side
                ))?;
                sides[s].device_us.push(ms * 1e3 / n as f64);
                laps.lap("graph_samples");
                self.check_sets(&mut checks, &b, seed, pattern, &mut sides[s])?;
                laps.lap("sample_checks");
            }
            for &s in &order {
                self.progress(format!(
                    "trial {}/{}, {} eager sample",
                    t + 1,
                    self.plan.trials,
                    self.sides[s].side
                ));
                self.prepare(&b, pattern, seed)?;
                self.gpu.drain()?; // every sample starts with the whole context idle
                let mut bad = 0;
                self.gpu.record(&e0)?;
                for i in 0..n {
                    bad |= self.sides[s].call(entry, &mut b.calls[s][i % nsets], stream);
                }
                self.gpu.record(&e1)?;
                let ms = self.gpu.elapsed_ms(&e0, &e1)?;
                self.gpu.check_async(&format!(
                    "task '{}', row '{}', {} eager sample",
                    self.task.name(),
                    row.name,
                    self.sides[s].side
                ))?;
                sides[s].gate(
                    "status",
                    bad == 0,
                    format!("an eager timed call returned a non-zero status ({bad})"),
                );
                sides[s].eager_us.push(ms * 1e3 / n as f64);
                laps.lap("eager_samples");
                self.check_sets(&mut checks, &b, seed, pattern, &mut sides[s])?;
                laps.lap("sample_checks");
            }
        }
        // The stream reference: a plain kernel moving this row's compulsory bytes over the same
        // buffer sets, launches and cache state, after every check (it overwrites outputs).
        // It is informational: its own failure leaves the row's results standing (only a broken
        // context, which check_async reports, ends the row). The check of the last sample has
        // already drained the context and charged any work left running to its side.
        self.progress("stream reference");
        res.stream_us = match self.stream_reference(&b, n, (&e0, &e1)) {
            Ok((us, bytes)) => {
                res.stream_bytes = bytes;
                us
            }
            Err(_) => {
                self.gpu.check_async(&format!(
                    "task '{}', row '{}', stream reference",
                    self.task.name(),
                    row.name
                ))?;
                Vec::new()
            }
        };
        laps.lap("stream_reference");
        [res.baseline, res.candidate] = sides;
        drop((graphs, checks, b));
        laps.lap("release");
        res.phases = laps.phases;
        Ok(res)
    }

    /// The stream regions of one buffer set: each input read at the size the row's bytes count
    /// it (its distinct or gathered size), each output written, each in-place tensor read and
    /// written, in 16-byte vectors (a tensor's last partial vector, and a tensor under 16 bytes,
    /// are left out). None when the row has more tensors than one launch takes (the row then has
    /// no stream reference).
    fn stream_regions(&self, set: &[Option<TensorBuf>]) -> Option<Vec<KpsStreamRegion>> {
        let mut v = Vec::new();
        for (i, (t, buf)) in self.row.tensors.iter().zip(set).enumerate() {
            let (Some(t), Some(buf)) = (t, buf) else {
                continue;
            };
            let size = t.dtype.size() as u64;
            let bytes = match t.role {
                Role::Input => self
                    .reference()
                    .gathered_bytes(self.row, i)
                    .unwrap_or(t.distinct_elems() * size),
                Role::Output | Role::Inout => t.numel() * size,
            }
            .min(buf.data_bytes);
            if bytes < 16 || buf.data % 16 != 0 {
                continue;
            }
            v.push(KpsStreamRegion {
                ptr: buf.data,
                n_vec: bytes / 16,
                read: u32::from(t.role != Role::Output),
                write: u32::from(t.role != Role::Input),
            });
        }
        (!v.is_empty() && v.len() <= KPS_STREAM_MAX_REGIONS).then_some(v)
    }

    /// Per-launch device time (µs) of the stream reference, one value per trial: `n` launches
    /// rotating through the buffer sets, captured into a graph like the sides' samples; and the
    /// bytes one launch moves (None, with no times, when the row has no stream reference).
    fn stream_reference(
        &self,
        b: &Buffers,
        n: usize,
        (e0, e1): (&crate::gpu::Event, &crate::gpu::Event),
    ) -> Result<(Vec<f64>, Option<u64>)> {
        let Some(regions) = b
            .sets
            .iter()
            .map(|s| self.stream_regions(s))
            .collect::<Option<Vec<_>>>()
        else {
            return Ok((Vec::new(), None));
        };
        let bytes = regions[0]
            .iter()
            .map(|g| g.n_vec * 16 * u64::from(g.read + g.write))
            .sum();
        let stream = self.stream();
        // One launch outside the graph first: the module loads here, not during the capture.
        self.support.stream(&regions[0], stream)?;
        self.gpu.begin_capture()?;
        for i in 0..n {
            if let Err(e) = self.support.stream(&regions[i % regions.len()], stream) {
                self.gpu.abort_capture();
                return Err(e);
            }
        }
        let g = self.gpu.end_capture()?;
        self.gpu.launch_graph(&g)?; // warm-up, excluded
        let mut us = Vec::new();
        for _ in 0..self.plan.trials {
            self.gpu.drain()?;
            self.gpu.record(e0)?;
            self.gpu.launch_graph(&g)?;
            self.gpu.record(e1)?;
            us.push(self.gpu.elapsed_ms(e0, e1)? * 1e3 / n as f64);
        }
        self.gpu.check_async("stream reference")?;
        Ok((us, Some(bytes)))
    }

    /// Captures `n` launches of one side, rotating through the buffer sets, into a graph.
    fn capture(&self, b: &mut Buffers, side: usize, n: usize) -> Result<Graph> {
        let nsets = b.sets.len();
        let stream = self.stream();
        self.gpu.begin_capture()?;
        for i in 0..n {
            let code = self.sides[side].call(self.row.entry, &mut b.calls[side][i % nsets], stream);
            if code != 0 {
                self.gpu.abort_capture();
                return Err(Error::Cuda(format!(
                    "row '{}': the {} returned {} while being captured into a CUDA graph (implementations must not synchronize, allocate or use the legacy stream)",
                    self.row.name,
                    self.sides[side].side,
                    status_name(Status::from_code(code))
                )));
            }
        }
        self.gpu.end_capture().map_err(|e| {
            Error::Cuda(format!(
                "row '{}', {}: graph capture: {e}",
                self.row.name, self.sides[side].side
            ))
        })
    }
}

/// Longer than this, work that outlived a call's own stream is no scheduling hiccup: the side
/// launched work elsewhere (another stream, the default stream) or left it running.
const LINGER_LIMIT_S: f64 = 1e-3;

/// Records how long the context took to drain after a call or sample had finished on the
/// harness's stream, and fails the side when that is beyond LINGER_LIMIT_S.
fn lingered(side: &mut SideResult, waited_s: f64, when: &str) {
    side.lingering_us = side.lingering_us.max(waited_s * 1e6);
    side.gate(
        "idle_after",
        waited_s < LINGER_LIMIT_S,
        format!("work was still running {:.0} us after {when} had finished on the harness's stream (launched on another stream or left behind): each side is timed alone, on an idle device", waited_s * 1e6),
    );
}

fn first(c: &Check) -> String {
    c.first
        .as_ref()
        .map(|f| format!("; first: {f}"))
        .unwrap_or_default()
}

fn status_name(s: Status) -> String {
    match s {
        Status::Ok => "ok".into(),
        Status::NotSupported => "not_supported".into(),
        Status::Invalid => "invalid".into(),
        Status::CudaError => "cuda_error".into(),
        Status::Unknown(c) => format!("unknown({c})"),
    }
}
