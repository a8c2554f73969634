//! `kpilot task <name>`: load, build, run rows in a watched worker process, judge, record, report.

use crate::error::{exit, Error, Result};
use crate::gpu::DeviceInfo;
use crate::nvcc::{Arch, Nvcc};
use crate::protocol::{Event, Plan, RowResult};
use crate::task::rows::RowKind;
use crate::task::spec::ScanAllow;
use crate::task::{sha256_hex, Task};
use crate::{freeze, judge, ledger, report};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub root: PathBuf,
    pub task: String,
    pub candidate: Option<String>,
    pub seed: Option<u64>,
    pub trials: Option<u32>,
    pub cache: Option<String>,
    pub rows: Vec<String>,
    pub device: i32,
    pub json: bool,
    /// None: the task's timing.sample_units.
    pub sample_units: Option<usize>,
    /// A/A: the baseline against a separately loaded copy of itself (the noise floor; must fail the performance gate).
    pub aa: bool,
    /// Print nothing (neither table nor JSON): a caller such as `regress` reads the record.
    pub quiet: bool,
    /// Production rows only, the minimum trials; never gate evidence.
    pub quick: bool,
    /// None: the task's timing.row_timeout_s.
    pub row_timeout_s: Option<f64>,
}

/// What the worker reported, gathered over restarts.
#[derive(Default)]
pub struct Collected {
    pub device: Option<DeviceInfo>,
    pub copy_tbps: Option<f64>,
    pub copy_method: Option<String>,
    pub rows: Vec<RowResult>,
    pub worker_restarts: u32,
    /// Messages on the result channel that broke the protocol (each failed its row).
    pub protocol_violations: u32,
    /// A worker that failed after reporting every row left to it (a crash, an error exit or a
    /// hang in teardown, e.g. a candidate's destructor): fails the gate.
    pub exit_failures: Vec<String>,
    /// What the parent saw of the workers' wall time, summed over restarts: start (process,
    /// driver, context), setup (task and kernel libraries loaded), copy bandwidth, rows, exit.
    pub phases: Vec<crate::record::Phase>,
}

/// The compute capability of GPU `ordinal`, without creating a context.
pub fn probe_arch(ordinal: i32) -> Result<Arch> {
    use cudarc::driver::{result, sys};
    // SAFETY: only probes whether the driver library loads.
    if !unsafe { sys::is_culib_present() } {
        return Err(Error::Environment(
            "no CUDA driver: libcuda.so could not be loaded, so there is no GPU to run on. `kpilot build` compiles without one; `cargo test` checks the rest".into(),
        ));
    }
    let e = |what: &str, err: result::DriverError| {
        Error::Environment(format!(
            "{what} failed ({err:?}): is an NVIDIA GPU visible to this process?"
        ))
    };
    result::init().map_err(|x| e("cuInit", x))?;
    let n = result::device::get_count().map_err(|x| e("cuDeviceGetCount", x))?;
    if ordinal >= n {
        return Err(Error::Environment(format!(
            "GPU {ordinal} requested, but the driver sees {n}"
        )));
    }
    let dev = result::device::get(ordinal).map_err(|x| e("cuDeviceGet", x))?;
    // SAFETY: valid device handle.
    let (ma, mi) = unsafe {
        (
            result::device::get_attribute(
                dev,
                sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
            )
            .map_err(|x| e("cuDeviceGetAttribute", x))?,
            result::device::get_attribute(
                dev,
                sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
            )
            .map_err(|x| e("cuDeviceGetAttribute", x))?,
        )
    };
    Ok(Arch::from_cc(ma, mi))
}

pub struct BuiltSet {
    pub nvcc: Nvcc,
    pub arch: Arch,
    pub flags: Vec<String>,
    pub support: PathBuf,
    pub baseline: PathBuf,
    pub candidate: PathBuf,
    /// What nvcc read for each side's build: [support, baseline, candidate].
    pub includes: [Vec<crate::nvcc::Include>; 3],
    /// The `[[scan.allow]]` that admitted code the candidate's library runs at load or unload.
    pub allowed: Option<ScanAllow>,
}

/// Builds the support kernels, the baseline and one candidate source with the task's one flag line.
pub fn build_all(
    root: &Path,
    task: &Task,
    candidate: &str,
    source: &Path,
    arch: Arch,
    say: &(dyn Fn(&str) + Sync),
) -> Result<BuiltSet> {
    let mut sets = build_many(
        root,
        task,
        &[(candidate.to_string(), source.to_path_buf())],
        arch,
        say,
    )?;
    Ok(sets.pop().expect("one candidate, one set"))
}

/// Builds the support kernels, the baseline and every named candidate, in parallel (nvcc is
/// single-threaded and a templated kernel file takes tens of seconds).
pub fn build_many(
    root: &Path,
    task: &Task,
    candidates: &[(String, PathBuf)],
    arch: Arch,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Vec<BuiltSet>> {
    let nvcc = Nvcc::find(root)?;
    let include = root.join("kernels");
    let flags = nvcc.flag_line(&task.spec.build.flags, &arch, &include);
    let cache = build_cache_dir(root);
    let mut jobs: Vec<(String, PathBuf)> = vec![
        ("support".into(), root.join("kernels/kpilot_support.cu")),
        ("baseline".into(), task.baseline_path.clone()),
    ];
    jobs.extend(candidates.iter().cloned());
    let entries: Vec<String> = task.spec.entries.iter().map(|e| e.name.clone()).collect();
    let results: Vec<Result<(crate::nvcc::Built, Option<ScanAllow>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(what, src)| {
                let (nvcc, flags, include, cache) = (&nvcc, &flags, &include, &cache);
                let entries = &entries;
                s.spawn(move || {
                    if !nvcc.is_cached(src, flags, include, cache) {
                        say(&format!("{:>9} {what} (nvcc {})", "building", src.display()));
                    }
                    let b = nvcc.build(src, flags, include, cache)?;
                    let mut allowed = None;
                    if what != "support" {
                        let extra = crate::symbols::require_entries(&b.so, src, entries)?;
                        allowed = crate::load_code::require_none(task, what, &b.so, src)?;
                        if !extra.is_empty() {
                            say(&format!(
                                "{:>9} {what} exports kp_ symbols that are no entry of the task: {}",
                                "note",
                                extra.join(", ")
                            ));
                        }
                    }
                    say(&format!(
                        "{:>9} {what} ({})",
                        if b.cached { "cached" } else { "built" },
                        if b.cached {
                            "hash match".to_string()
                        } else {
                            format!("{:.1} s", b.seconds)
                        }
                    ));
                    Ok((b, allowed))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal("a build thread panicked".into())))
            })
            .collect()
    });
    let mut sos = Vec::new();
    for r in results {
        sos.push(r?);
    }
    let (support, baseline) = (sos[0].0.clone(), sos[1].0.clone());
    Ok(sos[2..]
        .iter()
        .map(|(c, allowed)| BuiltSet {
            nvcc: nvcc.clone(),
            arch: arch.clone(),
            flags: flags.clone(),
            support: support.so.clone(),
            baseline: baseline.so.clone(),
            candidate: c.so.clone(),
            includes: [
                support.includes.clone(),
                baseline.includes.clone(),
                c.includes.clone(),
            ],
            allowed: allowed.clone(),
        })
        .collect())
}

/// Where built shared objects are kept. KPILOT_CACHE_DIR lets scratch roots (tests) share one cache.
pub fn build_cache_dir(root: &Path) -> PathBuf {
    std::env::var_os("KPILOT_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".kpilot-cache/build"))
}

/// Units compared with the reference after each timed sample unless the task's timing.sample_units
/// or --sample-units says otherwise.
pub const DEFAULT_SAMPLE_UNITS: usize = 64;

/// Options that weaken what a run checks or change how it measures, against the frozen task.toml.
/// Such a run is recorded (with these lines) but can never pass the gate.
fn deviations(task: &Task, opts: &RunOptions, trials: u32, cache: &str) -> Vec<String> {
    let t = &task.spec.timing;
    let mut d = Vec::new();
    if let Some(n) = opts.sample_units.filter(|&n| n < t.sample_units) {
        d.push(format!("--sample-units {n} compares fewer units after each timed sample than the frozen timing.sample_units = {}", t.sample_units));
    }
    if trials < t.trials {
        d.push(format!(
            "--trials {trials} is fewer than the frozen timing.trials = {}",
            t.trials
        ));
    }
    if cache != t.cache {
        d.push(format!(
            "--cache {cache} differs from the frozen timing.cache = \"{}\"",
            t.cache
        ));
    }
    if let Some(s) = opts.row_timeout_s.filter(|&s| s > t.row_timeout_s) {
        // A longer watchdog lets a row that the frozen task calls hung finish and be timed.
        d.push(format!(
            "--row-timeout {s} is longer than the frozen timing.row_timeout_s = {}",
            t.row_timeout_s
        ));
    }
    d
}

/// The fewest timed trials a run may have (and what --quick uses).
pub const MIN_TRIALS: u32 = 7;

/// Units of each row's correctness call that a `--quick` run compares with the float64
/// reference (drawn after the call; a full run compares every unit). The comparison of every
/// unit of the largest rows was a third of a quick run's wall time.
pub const QUICK_TRIAL_UNITS: usize = 2048;

/// The candidate name an A/A run records: the baseline against a separately loaded copy of itself.
pub const AA_CANDIDATE: &str = "baseline-aa";

pub fn run(opts: &RunOptions) -> Result<i32> {
    execute(opts).map(|(_, code)| code)
}

/// One run: build, time, judge, append the record to the ledger; returns the record and the exit
/// code.
pub fn execute(opts: &RunOptions) -> Result<(crate::record::RunRecord, i32)> {
    let wall = Instant::now();
    let task = Task::load(&opts.root.join("tasks"), &opts.task)?;
    freeze::verify(&task)?;
    if opts.candidate.as_deref() == Some(AA_CANDIDATE) {
        return Err(Error::Cli(format!("'{AA_CANDIDATE}' is the name A/A runs record: use --aa, or name the candidate otherwise")));
    }
    if opts.aa && opts.candidate.is_some() {
        return Err(Error::Cli(
            "--aa times the baseline against a copy of itself: it takes no --candidate".into(),
        ));
    }
    let (cand_name, cand_path) = if opts.aa {
        (AA_CANDIDATE.to_string(), task.baseline_path.clone())
    } else {
        let name = opts
            .candidate
            .clone()
            .unwrap_or_else(|| task.spec.task.candidate.clone());
        let path = task.candidate_path(&name);
        (name, path)
    };
    if !opts.aa {
        crate::scan::check_name(&task, &cand_name)?;
    }
    if !cand_path.exists() {
        return Err(Error::Cli(format!(
            "no candidate '{cand_name}' ({} does not exist; candidates: {})",
            cand_path.display(),
            task.candidates().join(", ")
        )));
    }
    // The static scan, before the GPU is touched or anything is built (A/A runs the baseline).
    let scan_allowed = if opts.aa {
        Vec::new()
    } else {
        crate::scan::require_clean(&task, &cand_name)?
    };
    let mut chosen: Vec<usize> = task
        .rows
        .iter()
        .filter(|r| r.runs())
        .map(|r| r.index)
        .collect();
    if opts.quick {
        if !opts.rows.is_empty() {
            return Err(Error::Cli(
                "--quick runs the production rows: it takes no --row".into(),
            ));
        }
        chosen.retain(|&i| {
            task.rows[i].kind == crate::task::rows::RowKind::Production
                && task.rows[i].duplicate_of.is_none()
        });
    }
    if !opts.rows.is_empty() {
        for want in &opts.rows {
            if !task.rows.iter().any(|r| &r.name == want) {
                return Err(Error::Cli(format!(
                    "--row '{want}' names no row of task '{}'",
                    task.name()
                )));
            }
        }
        chosen.retain(|&i| opts.rows.contains(&task.rows[i].name));
    }
    // Every option is checked before anything touches the GPU or nvcc.
    let trials = if opts.quick {
        opts.trials.unwrap_or(MIN_TRIALS)
    } else {
        opts.trials.unwrap_or(task.spec.timing.trials)
    };
    if trials < MIN_TRIALS {
        return Err(Error::Cli(format!(
            "--trials {trials}: at least 7 trials are required"
        )));
    }
    let cache = opts
        .cache
        .clone()
        .unwrap_or_else(|| task.spec.timing.cache.clone());
    if cache != "cold" && cache != "warm" {
        return Err(Error::Cli(format!("--cache {cache}: use cold or warm")));
    }
    let mut phases = Vec::new();
    let mut mark = Instant::now();
    let mut lap = |name: &str, phases: &mut Vec<crate::record::Phase>| {
        crate::record::add_phase(phases, name, mark.elapsed().as_secs_f64());
        mark = Instant::now();
    };
    lap("load_and_scan", &mut phases);
    let arch = match task.spec.build.arch.as_str() {
        "native" => probe_arch(opts.device)?,
        explicit => {
            probe_arch(opts.device)?;
            Arch(explicit.to_string())
        }
    };
    let quiet = opts.json || opts.quiet;
    let say = move |s: &str| {
        if !quiet {
            eprintln!("{s}");
        }
    };
    if opts.quick && !opts.quiet {
        // The first line says it, whatever else is printed (the table or --json).
        eprintln!(
            "QUICK RUN: production rows only, {trials} trials; not gate evidence (exit 8 when correct)"
        );
    }
    say(&format!(
        "kpilot: task {} — baseline vs {cand_name}, {} row(s)",
        task.name(),
        chosen.len()
    ));
    lap("probe_gpu", &mut phases);
    let mut built = build_all(&opts.root, &task, &cand_name, &cand_path, arch, &say)?;
    if opts.aa {
        // The same bytes under another file name: dlopen loads a second, separate copy, so the
        // two sides share no library state (the loader would hand back one handle for one file).
        let copy = built.candidate.with_file_name(format!(
            "aa-{}",
            built
                .candidate
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("baseline.so")
        ));
        std::fs::copy(&built.candidate, &copy)
            .map_err(|e| Error::io(format!("cannot copy the baseline to {}", copy.display()), e))?;
        built.candidate = copy;
    }
    let cand_src = std::fs::read(&cand_path)
        .map_err(|e| Error::io(format!("cannot read {}", cand_path.display()), e))?;
    let seed = opts.seed.unwrap_or_else(fresh_seed);
    let deviations = deviations(&task, opts, trials, &cache);
    let sample_units = opts.sample_units.unwrap_or(task.spec.timing.sample_units);
    let plan = Plan {
        task_dir: task
            .dir
            .canonicalize()
            .map_err(|e| Error::io("task folder", e))?,
        support_so: built.support.clone(),
        baseline_so: built.baseline.clone(),
        candidate_so: built.candidate.clone(),
        rows: chosen.clone(),
        seed,
        trials,
        min_sample_ms: task.spec.timing.min_sample_ms,
        cache: cache.clone(),
        device: opts.device,
        measure_copy: true,
        sample_units,
        trial_units: opts.quick.then_some(QUICK_TRIAL_UNITS),
    };
    lap("build", &mut phases);
    let row_timeout_s = opts.row_timeout_s.unwrap_or(task.spec.timing.row_timeout_s);
    let collected = drive(&task, plan, row_timeout_s, quiet)?;
    phases.extend(collected.phases.iter().cloned());
    lap("", &mut Vec::new()); // the workers' time is in their phases
    let Some(device) = collected.device.clone() else {
        let why = collected
            .rows
            .iter()
            .find_map(|r| r.error.clone())
            .unwrap_or_else(|| "the worker reported nothing".into());
        return Err(Error::Environment(format!(
            "the worker could not open the GPU: {why}"
        )));
    };
    let mut judged = judge::judge(&task, &collected, &chosen);
    for d in &deviations {
        judged.reasons.push(format!("not gate evidence: {d}"));
        judged.gate_pass = false;
    }
    // A speedup is only as honest as its baseline: without a passing fidelity record of this
    // baseline on this card, the run is recorded but is no gate evidence.
    // A ledger that cannot be read now costs this run its standing as evidence, not its record.
    let fidelity = crate::fidelity::rule::standing(&task, &opts.root.join("ledger"), &device.name)
        .unwrap_or_else(|e| {
            Err(format!(
                "the task's fidelity records could not be read: {e}"
            ))
        });
    if let Err(why) = &fidelity {
        judged.reasons.push(format!("not gate evidence: {why}"));
        judged.gate_pass = false;
    }
    lap("judge", &mut phases);
    let mut record = judge::record(
        &task,
        &built,
        &cand_name,
        &sha256_hex(&cand_src),
        &device,
        &collected,
        &judged,
        seed,
        trials,
        &cache,
        &opts.rows,
        wall.elapsed().as_secs_f64(),
        &opts.root,
    );
    record.deviations = deviations;
    record.phases = phases;
    record.timing.sample_units = Some(sample_units);
    record.timing.row_timeout_s = Some(row_timeout_s);
    record.fidelity = Some(crate::record::FidelityStanding {
        card: device.name.clone(),
        run_id: fidelity.as_ref().ok().cloned(),
        why_not: fidelity.as_ref().err().cloned(),
    });
    record.scan_allowed = scan_allowed;
    if let Some(a) = built.allowed.take() {
        if !record.scan_allowed.contains(&a) {
            record.scan_allowed.push(a);
        }
    }
    record.quick = opts.quick;
    record.parent = std::fs::read_to_string(&cand_path)
        .ok()
        .and_then(|s| crate::candidate_cmd::parent_of(&s))
        .map(|(name, sha)| match sha {
            Some(sha) => format!("{name} (sha256 {sha})"),
            None => name,
        });
    if opts.quick {
        record.gate.pass = false;
        record.gate.reasons.insert(
            0,
            format!("a --quick run (production rows, minimum trials, the correctness call compared on up to {QUICK_TRIAL_UNITS} drawn units a row): never gate evidence"),
        );
    }
    let run_id = record.run_id.clone();
    let kept = record.clone();
    let record = crate::record::Record::Run(Box::new(record));
    let ledger_path = opts
        .root
        .join("ledger")
        .join(format!("{}.jsonl", task.name()));
    ledger::append(&ledger_path, &record)?;
    if opts.quiet {
    } else if opts.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&record).map_err(|e| Error::Internal(e.to_string()))?
        );
    } else {
        let mut out = std::io::stdout().lock();
        if opts.quick {
            let _ = writeln!(out, "QUICK RUN (not gate evidence)");
        }
        let _ = write!(
            out,
            "{}",
            report::table(&task, &judged, &collected, &device)
        );
        let _ = writeln!(out, "recorded: {} (run {})", ledger_path.display(), run_id);
        let _ = writeln!(out, "wall clock: {:.1} s", wall.elapsed().as_secs_f64());
    }
    let code = if judged.correctness_failures > 0
        || collected.protocol_violations > 0
        || !collected.exit_failures.is_empty()
    {
        exit::CORRECTNESS
    } else if opts.quick {
        exit::QUICK
    } else if !judged.gate_pass {
        exit::PERF_GATE
    } else {
        exit::OK
    };
    Ok((kept, code))
}

pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    crate::inputs::mix64(t ^ std::process::id() as u64)
}

/// The protocol of the result channel, as the parent enforces it: every message carries the
/// run's secret and the next sequence number; rows start in plan order, one at a time; a row is
/// reported once, by the worker that started it; the copy bandwidth is reported once per run.
/// Anything else is a violation, and the row in flight fails with it.
pub struct Protocol {
    secret: String,
    seq: u64,
    current: Option<usize>,
    copy_seen: bool,
    reported: Vec<usize>,
}

impl Protocol {
    pub fn new(secret: String) -> Protocol {
        Protocol {
            secret,
            seq: 0,
            current: None,
            copy_seen: false,
            reported: Vec::new(),
        }
    }

    /// A fresh worker: sequence numbers start again, nothing is in flight.
    pub fn restart(&mut self) {
        self.seq = 0;
        self.current = None;
    }

    /// The row in flight, if any.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// Checks one line of the channel; `next` is the row the plan runs next.
    pub fn accept(
        &mut self,
        line: &str,
        next: Option<usize>,
    ) -> std::result::Result<Event, String> {
        let env: crate::protocol::Envelope = serde_json::from_str(line)
            .map_err(|e| format!("a message that is not the protocol's ({e})"))?;
        if env.secret != self.secret {
            return Err("a message without the run's secret (something other than the worker wrote to the result channel)".into());
        }
        if env.seq != self.seq {
            return Err(format!(
                "message {} arrived where {} was due",
                env.seq, self.seq
            ));
        }
        self.seq += 1;
        match &env.event {
            Event::Device { .. } if self.seq != 1 => return Err("a second device report".into()),
            Event::CopyBandwidth { .. } if self.copy_seen => {
                return Err("a second copy-bandwidth report".into())
            }
            Event::CopyBandwidth { .. } => self.copy_seen = true,
            Event::RowStart { row } => {
                if let Some(c) = self.current {
                    return Err(format!("row {row} started while row {c} was in flight"));
                }
                if Some(*row) != next {
                    return Err(format!("row {row} started out of the plan's order"));
                }
                self.current = Some(*row);
            }
            Event::Progress { row, .. } if Some(*row) != self.current => {
                return Err(format!("progress of row {row}, which is not in flight"))
            }
            Event::Row { result } => {
                if Some(result.row) != self.current {
                    return Err(format!(
                        "a result for row {}, which is not in flight",
                        result.row
                    ));
                }
                if self.reported.contains(&result.row) {
                    return Err(format!("a second result for row {}", result.row));
                }
                self.reported.push(result.row);
                self.current = None;
            }
            _ => {}
        }
        Ok(env.event)
    }
}

/// A fresh random secret for a run's result channel (OS-seeded), never written to a file,
/// argument or environment variable.
fn channel_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Keeps the last lines a worker printed on stdout and stderr, for the run as a whole and for
/// the row in flight.
#[derive(Default)]
struct Printed {
    all: VecDeque<String>,
    row: VecDeque<String>,
}

const PRINTED_LINES: usize = 30;

fn keep(
    printed: &Arc<Mutex<Printed>>,
    stream: &'static str,
    r: impl std::io::Read + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let printed = printed.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(|l| l.ok()) {
            let line: String = format!("{stream}: {line}").chars().take(400).collect();
            let mut guard = printed.lock().unwrap_or_else(|e| e.into_inner());
            let p = &mut *guard;
            for q in [&mut p.all, &mut p.row] {
                q.push_back(line.clone());
                if q.len() > PRINTED_LINES {
                    q.pop_front();
                }
            }
        }
    })
}

/// Starts a worker with its result channel on descriptor 3 and sends it the hello on stdin.
fn spawn_worker(plan: &Plan, secret: &str) -> Result<(std::process::Child, std::io::PipeReader)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    const FD: i32 = 3;
    let (reader, writer) =
        std::io::pipe().map_err(|e| Error::io("cannot create the result channel", e))?;
    let wfd = writer.as_raw_fd();
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find the kpilot binary", e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("worker")
        .env("CUDA_MODULE_LOADING", "EAGER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) on descriptors
    // this process owns.
    unsafe {
        cmd.pre_exec(move || {
            if wfd == FD {
                // Already in place: only clear close-on-exec.
                if libc::fcntl(FD, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(wfd, FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io("cannot start the worker process", e))?;
    drop(writer); // the worker holds the only write end now: EOF when it exits
    let hello = crate::protocol::Hello {
        plan: plan.clone(),
        secret: secret.to_string(),
        fd: FD,
    };
    let mut stdin = child.stdin.take().expect("piped");
    let text = serde_json::to_string(&hello).map_err(|e| Error::Internal(e.to_string()))?;
    // A worker that died at once shows up as a silent channel below, not here.
    let _ = writeln!(stdin, "{text}");
    drop(stdin);
    Ok((child, reader))
}

/// Runs the plan in worker processes, restarting after a crash or hang with the rows left.
fn drive(task: &Task, plan: Plan, row_timeout_s: f64, quiet: bool) -> Result<Collected> {
    let mut got = Collected::default();
    let mut remaining: VecDeque<usize> = plan.rows.iter().copied().collect();
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(remaining.len() as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} rows {elapsed} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let timeout = Duration::from_secs_f64(row_timeout_s);
    let mut protocol = Protocol::new(channel_secret());
    while !remaining.is_empty() {
        let mut p = plan.clone();
        p.rows = remaining.iter().copied().collect();
        // Until a worker has reported it: a worker that died first leaves it to the next.
        p.measure_copy = got.copy_tbps.is_none();
        protocol.restart();
        let mut mark = Instant::now();
        // The phase the worker is in, by the events seen so far; closed at each event.
        let mut phase = "worker_start";
        let (mut child, reader) = spawn_worker(&p, &protocol.secret)?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let printed = Arc::new(Mutex::new(Printed::default()));
        let out_thread = keep(&printed, "stdout", child.stdout.take().expect("piped"));
        let err_thread = keep(&printed, "stderr", child.stderr.take().expect("piped"));
        let mut stage = String::from("starting");
        let mut reported = false;
        let mut last_row_failed = false;
        let failure: Option<String> = loop {
            match rx.recv_timeout(timeout) {
                Ok(line) => {
                    let ev = match protocol.accept(&line, remaining.front().copied()) {
                        Ok(ev) => ev,
                        Err(why) => {
                            let _ = child.kill();
                            got.protocol_violations += 1;
                            break Some(format!("protocol violation on the result channel: {why}; the worker was killed"));
                        }
                    };
                    // (the phase that ends here, the next one, the copy's own seconds)
                    let closes = match &ev {
                        Event::Device { .. } => Some(("worker_setup", 0.0)),
                        // The worker's own measure of the copy; the rest was setup.
                        Event::CopyBandwidth { seconds, .. } => Some(("worker_setup", *seconds)),
                        Event::RowStart { .. } if phase != "rows" => Some(("rows", 0.0)),
                        Event::Row { .. } => Some(("rows", 0.0)),
                        _ => None,
                    };
                    if let Some((next, copy_s)) = closes {
                        let now = Instant::now();
                        let s = (now - mark).as_secs_f64();
                        crate::record::add_phase(&mut got.phases, phase, (s - copy_s).max(0.0));
                        if copy_s > 0.0 {
                            crate::record::add_phase(&mut got.phases, "copy_bandwidth", copy_s);
                        }
                        phase = next;
                        mark = now;
                    }
                    match ev {
                        Event::Device { info } => got.device = Some(info),
                        Event::CopyBandwidth { tbps, method, .. } => {
                            got.copy_tbps = Some(tbps);
                            got.copy_method = Some(method);
                        }
                        Event::RowStart { row } => {
                            printed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .row
                                .clear();
                            bar.set_message(task.rows[row].name.clone());
                        }
                        Event::Progress { row, stage: st } => {
                            bar.set_message(format!("{} — {st}", task.rows[row].name));
                            stage = st;
                        }
                        Event::Row { mut result } => {
                            remaining.retain(|&r| r != result.row);
                            reported = true;
                            last_row_failed = result.error.is_some();
                            bar.inc(1);
                            if let Some(e) = &result.error {
                                bar.println(format!("row {}: {e}", result.name));
                            }
                            result.output_tail = printed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .row
                                .iter()
                                .cloned()
                                .collect();
                            got.rows.push(*result);
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    if remaining.is_empty() {
                        // Every row reported, then silence: what it did after was not checked.
                        got.exit_failures.push(format!(
                            "the worker made no progress for {} s after reporting its last row and was killed",
                            timeout.as_secs_f64()
                        ));
                        break None;
                    }
                    break Some(format!("no progress for {} s during the {stage}: the worker was killed (a hung kernel?)", timeout.as_secs_f64()));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // The channel can close before the process ends (a candidate may close it):
                    // the exit is awaited under the same watchdog, never forever.
                    let (waited, hung) = wait_bounded(&mut child, timeout);
                    let status_ok = !hung && matches!(&waited, Ok(s) if s.success());
                    let status = if hung {
                        format!(
                            "no exit {} s after its result channel closed; killed",
                            timeout.as_secs_f64()
                        )
                    } else {
                        waited
                            .map(|s| describe_exit(&s))
                            .unwrap_or_else(|e| format!("unknown exit ({e})"))
                    };
                    break if remaining.is_empty() {
                        // A worker that reported an error on its last row exits non-zero on purpose
                        // (a CUDA fault ends it); that row has already failed the run.
                        if !status_ok && !last_row_failed {
                            got.exit_failures.push(format!(
                                "the worker exited ({status}) after reporting its last row"
                            ));
                        }
                        None
                    } else {
                        Some(format!("the worker exited ({status}) during the {stage}"))
                    };
                }
            }
        };
        let _ = child.wait();
        let _ = out_thread.join();
        let _ = err_thread.join();
        // After the last row: the worker's exit (buffers, context and process torn down).
        let name = if phase == "rows" && failure.is_none() {
            "worker_exit"
        } else {
            phase
        };
        crate::record::add_phase(&mut got.phases, name, mark.elapsed().as_secs_f64());
        if let Some(why) = failure {
            let tail: Vec<String> = printed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .all
                .iter()
                .cloned()
                .collect();
            let detail = if tail.is_empty() {
                why.clone()
            } else {
                format!("{why}; its last words: {}", tail.join(" | "))
            };
            let current = protocol.current();
            if got.device.is_none()
                && current.is_none()
                && got.rows.is_empty()
                && got.protocol_violations == 0
            {
                // It never got as far as the GPU: no point in retrying.
                bar.finish_and_clear();
                return Err(Error::Environment(format!(
                    "the worker could not start: {detail}"
                )));
            }
            // The row in flight gets the verdict. A worker that died between rows after reporting
            // one (a CUDA fault ends it on purpose) is simply replaced; one that died before
            // reporting anything charges the next row, so a worker that keeps dying cannot loop.
            let victim = current.or_else(|| {
                if reported {
                    None
                } else {
                    remaining.front().copied()
                }
            });
            if let Some(r) = victim {
                remaining.retain(|&x| x != r);
                bar.inc(1);
                bar.println(format!("row {}: {detail}", task.rows[r].name));
                got.rows.retain(|x| x.row != r);
                got.rows.push(RowResult {
                    row: r,
                    name: task.rows[r].name.clone(),
                    error: Some(format!(
                        "task '{}', row '{}': {detail}",
                        task.name(),
                        task.rows[r].name
                    )),
                    output_tail: tail,
                    ..Default::default()
                });
            }
            got.worker_restarts += 1;
        }
    }
    bar.finish_and_clear();
    got.rows.sort_by_key(|r| r.row);
    Ok(got)
}

/// The worker's exit, awaited for at most `timeout`; past it the worker is killed (then reaped)
/// and the second value is true.
fn wait_bounded(
    child: &mut std::process::Child,
    timeout: Duration,
) -> (std::io::Result<std::process::ExitStatus>, bool) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return (Ok(s), false),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                return (child.wait(), true);
            }
            Err(e) => return (Err(e), false),
        }
    }
}

fn describe_exit(s: &std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            return format!("killed by signal {sig}");
        }
    }
    match s.code() {
        Some(c) => format!("exit code {c}"),
        None => "no exit code".into(),
    }
}

/// Rows by kind, for the summary line.
pub fn count_kinds(task: &Task) -> (usize, usize, usize) {
    let c = |k: RowKind| task.rows.iter().filter(|r| r.kind == k).count();
    (
        c(RowKind::Production),
        c(RowKind::Regression),
        c(RowKind::Rejection),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(sample_units: Option<usize>) -> RunOptions {
        RunOptions {
            root: PathBuf::new(),
            task: String::new(),
            candidate: None,
            seed: None,
            trials: None,
            cache: None,
            rows: vec![],
            device: 0,
            json: false,
            sample_units,
            aa: false,
            quiet: false,
            quick: false,
            row_timeout_s: None,
        }
    }

    fn msg(secret: &str, seq: u64, event: Event) -> String {
        serde_json::to_string(&crate::protocol::Envelope {
            secret: secret.into(),
            seq,
            event,
        })
        .unwrap()
    }

    fn row(r: usize) -> Event {
        Event::Row {
            result: Box::new(RowResult {
                row: r,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_result_channel_takes_only_the_workers_messages_in_order() {
        let mut p = Protocol::new("s3cret".into());
        assert!(p
            .accept(
                &msg(
                    "s3cret",
                    0,
                    Event::CopyBandwidth {
                        tbps: 4.0,
                        bytes: 1,
                        method: String::new(),
                        seconds: 0.0
                    }
                ),
                Some(5)
            )
            .is_ok());
        assert!(p
            .accept(&msg("s3cret", 1, Event::RowStart { row: 5 }), Some(5))
            .is_ok());
        assert!(p.accept(&msg("s3cret", 2, row(5)), Some(5)).is_ok());
        // A forged line: no secret, or a guessed one.
        assert!(p
            .accept("{\"event\":\"row\",\"result\":{\"row\":6}}", Some(6))
            .unwrap_err()
            .contains("not the protocol's"));
        assert!(p
            .accept(&msg("guess", 3, Event::RowStart { row: 6 }), Some(6))
            .unwrap_err()
            .contains("secret"));
        // Replayed or skipped sequence numbers.
        assert!(p
            .accept(&msg("s3cret", 2, Event::RowStart { row: 6 }), Some(6))
            .unwrap_err()
            .contains("due"));
        // A second copy-bandwidth report, a row out of order, a result for a row not in flight.
        let mut p = Protocol::new("k".into());
        p.accept(
            &msg(
                "k",
                0,
                Event::CopyBandwidth {
                    tbps: 4.0,
                    bytes: 1,
                    method: String::new(),
                    seconds: 0.0,
                },
            ),
            Some(1),
        )
        .unwrap();
        assert!(p
            .accept(
                &msg(
                    "k",
                    1,
                    Event::CopyBandwidth {
                        tbps: 9.0,
                        bytes: 1,
                        method: String::new(),
                        seconds: 0.0
                    }
                ),
                Some(1)
            )
            .unwrap_err()
            .contains("second copy-bandwidth"));
        let mut p = Protocol::new("k".into());
        assert!(p
            .accept(&msg("k", 0, Event::RowStart { row: 2 }), Some(1))
            .unwrap_err()
            .contains("order"));
        let mut p = Protocol::new("k".into());
        assert!(p
            .accept(&msg("k", 0, row(1)), Some(1))
            .unwrap_err()
            .contains("not in flight"));
        // A second result for a row, even from a fresh worker.
        let mut p = Protocol::new("k".into());
        p.accept(&msg("k", 0, Event::RowStart { row: 1 }), Some(1))
            .unwrap();
        p.accept(&msg("k", 1, row(1)), Some(1)).unwrap();
        p.restart();
        p.accept(&msg("k", 0, Event::RowStart { row: 1 }), Some(1))
            .unwrap();
        assert!(p
            .accept(&msg("k", 1, row(1)), Some(1))
            .unwrap_err()
            .contains("second result"));
    }

    #[test]
    fn options_that_weaken_a_run_are_deviations() {
        let task = Task::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tasks"),
            "fuse_scale_shift",
        )
        .unwrap();
        let t = task.spec.timing.clone();
        assert!(deviations(&task, &opts(None), t.trials, &t.cache).is_empty());
        assert!(
            deviations(&task, &opts(None), t.trials + 4, &t.cache).is_empty(),
            "more trials weaken nothing"
        );
        assert!(deviations(&task, &opts(Some(t.sample_units)), t.trials, &t.cache).is_empty());
        assert_eq!(
            deviations(&task, &opts(Some(t.sample_units - 1)), t.trials, &t.cache).len(),
            1,
            "fewer units than the frozen timing.sample_units"
        );
        let d = deviations(&task, &opts(Some(0)), t.trials - 1, "warm");
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(
            d[0].contains("--sample-units 0")
                && d[1].contains("--trials")
                && d[2].contains("--cache warm")
        );
        // The watchdog: shorter than the frozen one can only fail rows; longer lets a row the
        // frozen task calls hung finish and be timed.
        let with_timeout = |s: f64| RunOptions {
            row_timeout_s: Some(s),
            ..opts(None)
        };
        assert!(deviations(&task, &with_timeout(t.row_timeout_s), t.trials, &t.cache).is_empty());
        assert!(deviations(&task, &with_timeout(1.5), t.trials, &t.cache).is_empty());
        let d = deviations(
            &task,
            &with_timeout(t.row_timeout_s + 0.5),
            t.trials,
            &t.cache,
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].contains(&format!("--row-timeout {}", t.row_timeout_s + 0.5))
                && d[0].contains("frozen timing.row_timeout_s"),
            "{d:?}"
        );
    }
}
