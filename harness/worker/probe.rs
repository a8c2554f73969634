//! The process `kpilot ncu` runs under Nsight Compute: one side of one row, the way the worker
//! calls it (same buffers, seeded inputs, poisoned outputs, the harness's stream), with the
//! profiler on only around the measured calls, so warm-up launches and kpilot's own support
//! kernels are never profiled.

use super::{Buffers, RowRunner};
use crate::check::POISON;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::library::{Implementation, Support};
use crate::protocol::Plan;
use crate::task::Task;
use std::path::Path;

/// What to profile.
pub struct Probe<'a> {
    pub task_dir: &'a Path,
    pub row: &'a str,
    pub support_so: &'a Path,
    pub so: &'a Path,
    pub side: &'static str,
    pub device: i32,
    pub warmups: u32,
    pub launches: u32,
}

fn profiler(start: bool) -> Result<()> {
    use cudarc::driver::sys;
    // SAFETY: plain driver calls on the current context.
    let r = unsafe {
        if start {
            sys::cuProfilerStart()
        } else {
            sys::cuProfilerStop()
        }
    };
    if r == sys::CUresult::CUDA_SUCCESS {
        Ok(())
    } else {
        Err(Error::Cuda(format!(
            "cuProfiler{}: {r:?}",
            if start { "Start" } else { "Stop" }
        )))
    }
}

pub fn run(p: &Probe) -> Result<()> {
    let gpu = Gpu::open(p.device)?;
    let task = Task::load_dir(p.task_dir)?;
    let row = task
        .rows
        .iter()
        .find(|r| r.name == p.row)
        .ok_or_else(|| Error::Cli(format!("no row '{}'", p.row)))?;
    let names: Vec<String> = task.spec.entries.iter().map(|e| e.name.clone()).collect();
    let support = Support::load(p.support_so)?;
    // Both slots hold the profiled side; only slot 0 is called.
    let sides = [
        Implementation::load(p.so, &names, p.side)?,
        Implementation::load(p.so, &names, p.side)?,
    ];
    let plan = Plan {
        task_dir: p.task_dir.to_path_buf(),
        support_so: p.support_so.to_path_buf(),
        baseline_so: p.so.to_path_buf(),
        candidate_so: p.so.to_path_buf(),
        rows: vec![row.index],
        seed: crate::run::fresh_seed(),
        trials: 1,
        min_sample_ms: 1.0,
        cache: "warm".into(),
        device: p.device,
        measure_copy: false,
        sample_units: 0,
        trial_units: None,
    };
    let runner = RowRunner {
        gpu: &gpu,
        support: &support,
        sides: &sides,
        task: &task,
        row,
        plan: &plan,
    };
    let mut b: Buffers = runner.allocate()?;
    runner.fill(&b, plan.seed)?;
    let stream = runner.stream();
    let call = |b: &mut Buffers| -> Result<()> {
        runner.prepare(b, POISON[0], plan.seed)?;
        let code = sides[0].call(row.entry, &mut b.calls[0][0], stream);
        gpu.drain()?;
        if code != 0 {
            return Err(Error::Cuda(format!(
                "the {} returned status {code} on row '{}'",
                p.side, row.name
            )));
        }
        Ok(())
    };
    for _ in 0..p.warmups {
        call(&mut b)?;
    }
    for _ in 0..p.launches {
        // The profiler sees the implementation's launches only: the poison fill runs outside.
        runner.prepare(&b, POISON[0], plan.seed)?;
        gpu.drain()?;
        profiler(true)?;
        let code = sides[0].call(row.entry, &mut b.calls[0][0], stream);
        gpu.drain()?;
        profiler(false)?;
        if code != 0 {
            return Err(Error::Cuda(format!(
                "the {} returned status {code} on row '{}'",
                p.side, row.name
            )));
        }
    }
    gpu.check_async("profiled calls")
}
