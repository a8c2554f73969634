//! `kpilot fidelity <task> --upstream <dir>`: is the baseline as fast as the upstream release it
//! ports, on this card? Times the pinned upstream implementation itself (its files checked by
//! sha256 against task.toml) and the task's baseline the same way, in one process (driver.py):
//! same buffers, same seeded inputs, CUDA graphs of N launches, replays interleaved. Both sides'
//! outputs are checked against the task's float64 reference here, from dumps the driver writes.
//! One `fidelity` record goes to the ledger; `kpilot check` judges the latest one per card.

pub mod rule;

use crate::check::{self, POISON};
use crate::error::{exit, Error, Result};
use crate::nvcc::{Arch, Nvcc};
use crate::task::rows::RowKind;
use crate::task::spec::Role;
use crate::task::{sha256_hex, Row, Task};
use crate::{freeze, ledger, reference, run};
use rule::{FidelityRecord, FidelityRow, Method, SideFidelity, UpstreamUsed};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const DRIVER: &str = include_str!("driver.py");

/// Before its first results line the driver imports torch, loads upstream and compiles its kernels:
/// it gets this much longer than a row's watchdog for that line.
pub const FIRST_LINE_GRACE: Duration = Duration::from_secs(300);

/// The number of complete lines in a results file the driver appends to, re-read only when the
/// file's length changed since the last look: an idle poll costs a stat, not a read. (A file
/// rewritten to the same length between two looks would go unseen: the driver only appends.)
#[derive(Debug, Default)]
struct LineCount {
    /// The length of the bytes last counted (None before the file was first read).
    len: Option<u64>,
    lines: usize,
    /// How many times the file was read (for the tests).
    reads: usize,
}

impl LineCount {
    /// The file's newlines now (0 while it is missing or unreadable).
    fn poll(&mut self, path: &Path) -> usize {
        let len = std::fs::metadata(path).ok().map(|m| m.len());
        if len.is_some() && len == self.len {
            return self.lines;
        }
        self.reads += 1;
        match std::fs::read(path) {
            Ok(b) => {
                // The length of what was counted, not the stat's: a read that saw bytes appended
                // after the stat counted them, and the next poll need not read again for them.
                self.len = Some(b.len() as u64);
                self.lines = b.iter().filter(|&&c| c == b'\n').count();
            }
            Err(_) => (self.len, self.lines) = (None, 0),
        }
        self.lines
    }
}

/// Waits for the driver, which appends one results line per row to `results`; kills it (then
/// reaps it) when no new line arrives for `per_line` (`per_line + FIRST_LINE_GRACE` for the
/// first). The second value is how long it had been silent when killed. The file is polled every
/// 50 ms, and re-read only when its length changed (`LineCount`).
pub fn wait_watched(
    child: &mut Child,
    results: &Path,
    per_line: Duration,
) -> (std::io::Result<ExitStatus>, Option<Duration>) {
    let mut count = LineCount::default();
    let (mut seen, mut since) = (count.poll(results), Instant::now());
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (Ok(st), None),
            Ok(None) => {}
            Err(e) => return (Err(e), None),
        }
        let now = count.poll(results);
        if now > seen {
            (seen, since) = (now, Instant::now());
        }
        let limit = if seen == 0 {
            per_line + FIRST_LINE_GRACE
        } else {
            per_line
        };
        if since.elapsed() >= limit {
            let _ = child.kill();
            return (child.wait(), Some(since.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Debug, Clone)]
pub struct FidelityOptions {
    pub root: PathBuf,
    pub task: String,
    /// The unpacked wheel (the folder holding the package, e.g. `sglang/`).
    pub upstream: PathBuf,
    pub rows: Vec<String>,
    pub device: i32,
    pub launches: u32,
    pub replays: u32,
    pub check_units: usize,
    pub seed: Option<u64>,
    pub python: String,
    pub json: bool,
}

/// Checks every pinned wheel file against its sha256; returns the file list as used.
pub fn verify_upstream_files(task: &Task, upstream: &Path) -> Result<()> {
    let toml = task.dir.join("task.toml");
    if task.spec.upstream.files.is_empty() {
        return Err(Error::input(&toml, 1, "[upstream] files is empty: pin every wheel file the baseline ports or the fidelity run loads"));
    }
    for f in &task.spec.upstream.files {
        let p = upstream.join(&f.path);
        let bytes = std::fs::read(&p).map_err(|e| {
            Error::Usage(format!(
                "upstream file {} cannot be read ({e}): --upstream must be the unpacked {} {} wheel ({}; scripts/fetch_upstream.sh fetches it)",
                p.display(),
                task.spec.upstream.package,
                task.spec.upstream.version,
                task.spec.upstream.wheel
            ))
        })?;
        let have = sha256_hex(&bytes);
        if have != f.sha256 {
            return Err(Error::Usage(format!(
                "{}: sha256 {have}, but {} pins {} for it: this is not the pinned {} {}",
                p.display(),
                toml.display(),
                f.sha256,
                task.spec.upstream.package,
                task.spec.upstream.version
            )));
        }
    }
    Ok(())
}

enum How {
    Adapter(PathBuf),
    Shim(PathBuf),
}

fn how(task: &Task) -> Result<How> {
    let toml = task.dir.join("task.toml");
    let f = &task.spec.fidelity;
    let existing = |rel: &str| -> Result<PathBuf> {
        let p = task.dir.join(rel);
        if p.is_file() {
            Ok(p)
        } else {
            Err(Error::input(
                &toml,
                1,
                format!("[fidelity] names {rel}, but {} does not exist", p.display()),
            ))
        }
    };
    match (&f.adapter, &f.shim) {
        (Some(a), None) => Ok(How::Adapter(existing(a)?)),
        (None, Some(s)) => Ok(How::Shim(existing(s)?)),
        _ => Err(Error::input(&toml, 1, "[fidelity] must name exactly one of adapter = \"<file>.py\" (Python through torch) or shim = \"<file>.cu\" (CUDA built standalone)")),
    }
}

pub fn run(o: &FidelityOptions) -> Result<i32> {
    let wall = Instant::now();
    let task = Task::load(&o.root.join("tasks"), &o.task)?;
    freeze::verify(&task)?;
    if o.launches == 0 || o.replays < 3 {
        return Err(Error::Cli(format!(
            "--launches {} --replays {}: need at least 1 launch and 3 replays",
            o.launches, o.replays
        )));
    }
    for want in &o.rows {
        if !task.rows.iter().any(|r| &r.name == want) {
            return Err(Error::Cli(format!(
                "--row '{want}' names no row of task '{}'",
                task.name()
            )));
        }
    }
    let chosen: Vec<&Row> = task
        .rows
        .iter()
        .filter(|r| {
            r.runs()
                && r.kind != RowKind::Rejection
                && (o.rows.is_empty() || o.rows.contains(&r.name))
        })
        .collect();
    let how = how(&task)?;
    let upstream = o
        .upstream
        .canonicalize()
        .map_err(|e| Error::Cli(format!("--upstream {}: {e}", o.upstream.display())))?;
    verify_upstream_files(&task, &upstream)?;
    let arch = match task.spec.build.arch.as_str() {
        "native" => run::probe_arch(o.device)?,
        explicit => {
            run::probe_arch(o.device)?;
            Arch(explicit.to_string())
        }
    };
    let gpu = crate::gpu::Gpu::open(o.device)?;
    let device = gpu.info.clone();
    let say = |s: &str| {
        if !o.json {
            eprintln!("{s}");
        }
    };
    say(&format!(
        "kpilot: fidelity of {}'s baseline against {} {} on {}, {} row(s)",
        task.name(),
        task.spec.upstream.package,
        task.spec.upstream.version,
        device.name,
        chosen.len()
    ));

    // Builds: support kernels and baseline exactly as `task` builds them; a shim with upstream's flags.
    let nvcc = Nvcc::find(&o.root)?;
    let include = o.root.join("kernels");
    let flags = nvcc.flag_line(&task.spec.build.flags, &arch, &include);
    let cache = run::build_cache_dir(&o.root);
    let support = nvcc
        .build(&include.join("kpilot_support.cu"), &flags, &include, &cache)?
        .so;
    let baseline = nvcc
        .build(&task.baseline_path, &flags, &include, &cache)?
        .so;
    say("    built support kernels and baseline");
    let files_key = sha256_hex(
        task.spec
            .upstream
            .files
            .iter()
            .map(|f| f.sha256.as_str())
            .collect::<Vec<_>>()
            .join(",")
            .as_bytes(),
    );
    let (upstream_json, how_text, shim_flags) = match &how {
        How::Adapter(p) => (
            json!({"adapter": p, "root": upstream}),
            format!("adapter {}", rel(&task, p)),
            Vec::new(),
        ),
        How::Shim(p) => {
            let mut f = nvcc.flag_line(&task.spec.fidelity.shim_flags, &arch, &include);
            for inc in &task.spec.fidelity.shim_includes {
                let dir = match inc.strip_prefix("wheel:") {
                    Some(w) => upstream.join(w),
                    None => o.root.join(inc),
                };
                f.push(format!("-I{}", dir.display()));
            }
            // Headers reached through <...> are not hashed by the build key; the pinned file
            // hashes stand for them (they were just verified).
            f.push(format!(
                "-DKPILOT_UPSTREAM_FILES_SHA256={}",
                &files_key[..16]
            ));
            let so = nvcc.build(p, &f, &include, &cache)?.so;
            say(&format!("    built upstream shim {}", rel(&task, p)));
            (
                json!({"shim_so": so, "root": upstream}),
                format!("shim {}", rel(&task, p)),
                f,
            )
        }
    };

    let seed = o.seed.unwrap_or_else(run::fresh_seed);
    let now = ledger::utc_now();
    let run_id = format!(
        "{}-{:08x}",
        now.replace([':', '-'], ""),
        (crate::inputs::mix64(seed ^ 0xF1DE) >> 32) as u32
    );
    let work = o.root.join(".kpilot-cache/fidelity").join(&run_id);
    std::fs::create_dir_all(&work)
        .map_err(|e| Error::io(format!("cannot create {}", work.display()), e))?;
    let driver = work.join("driver.py");
    std::fs::write(&driver, DRIVER)
        .map_err(|e| Error::io(format!("cannot write {}", driver.display()), e))?;
    let results = work.join("results.jsonl");
    let plan = json!({
        "device": o.device,
        "support_so": support,
        "baseline_so": baseline,
        "upstream": upstream_json,
        "seed": seed,
        "launches": o.launches,
        "replays": o.replays,
        "dump_dir": work,
        "results": results,
        "rows": chosen.iter().map(|r| row_plan(&task, r)).collect::<Vec<_>>(),
    });
    let plan_path = work.join("plan.json");
    std::fs::write(
        &plan_path,
        serde_json::to_vec_pretty(&plan).map_err(|e| Error::Internal(e.to_string()))?,
    )
    .map_err(|e| Error::io(format!("cannot write {}", plan_path.display()), e))?;
    drop(gpu);
    let mut child = Command::new(&o.python)
        .arg(&driver)
        .arg(&plan_path)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(if o.json {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .stderr(if o.json {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .map_err(|e| {
            Error::Environment(format!(
                "cannot run {} (python3 with torch is needed to run upstream): {e}",
                o.python
            ))
        })?;
    // The driver is trusted code, but upstream's kernels run in it: a hang is bounded by the
    // task's row watchdog per results line, and the rows it never reported fail with the reason.
    let per_line = Duration::from_secs_f64(task.spec.timing.row_timeout_s);
    let (waited, killed) = wait_watched(&mut child, &results, per_line);
    let status = waited.map_err(|e| {
        Error::Environment(format!(
            "cannot wait for the fidelity driver ({}): {e}",
            o.python
        ))
    })?;
    let status = match killed {
        Some(d) => format!(
            "killed by kpilot's watchdog after {:.0} s without a results line (timing.row_timeout_s = {} a row)",
            d.as_secs_f64(),
            task.spec.timing.row_timeout_s
        ),
        None => status.to_string(),
    };
    let text = std::fs::read_to_string(&results).unwrap_or_default();
    let mut lines = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok());
    let Some(env) = lines.next().and_then(|v| v.get("env").cloned()) else {
        return Err(Error::Environment(format!(
            "the fidelity driver ({} {}) reported nothing ({status}): is torch installed for {}?",
            o.python,
            driver.display(),
            o.python
        )));
    };
    let reported: Vec<Value> = lines.collect();
    let mut rows = Vec::new();
    for r in &chosen {
        let got = reported
            .iter()
            .find(|v| v.get("row").and_then(Value::as_u64) == Some(r.index as u64));
        rows.push(judge_row(&task, r, got, seed, o.check_units, &status));
    }
    let _ = std::fs::remove_dir_all(&work);
    let partial = !o.rows.is_empty();
    let verdict = rule::judge(&task, &rows, partial);
    let record = FidelityRecord {
        schema: ledger::SCHEMA,
        run_id: run_id.clone(),
        time_utc: now,
        task: task.name().to_string(),
        card: device.name.clone(),
        device: device.clone(),
        git: crate::judge::git_info(&o.root),
        upstream: UpstreamUsed {
            package: task.spec.upstream.package.clone(),
            version: task.spec.upstream.version.clone(),
            wheel_sha256: task.spec.upstream.wheel_sha256.clone(),
            files: task.spec.upstream.files.clone(),
            how: how_text,
            shim_flags,
        },
        baseline_sha256: task.hashes.baseline.clone(),
        rows_sha256: task.hashes.rows.clone(),
        how_sha256: rule::how_sha256(&task)?,
        build: rule::FidelityBuild {
            nvcc: nvcc.path.display().to_string(),
            nvcc_version: nvcc.version.clone(),
            arch: arch.0.clone(),
            flags: flags.clone(),
        },
        env,
        method: Method {
            launches_per_graph: o.launches,
            replays: o.replays,
            description: "one process (driver.py): both sides on the same buffers (warm L2 where a row fits), inputs from kpilot's seeded fill; a CUDA graph of N launches per side replayed between two CUDA events, replays interleaved AB/BA; per-launch time = elapsed / N; median over replays".into(),
            check_units: o.check_units,
        },
        seed,
        partial,
        rows,
        band: rule::BAND,
        min_us: rule::MIN_US,
        verdict,
        wall_seconds: wall.elapsed().as_secs_f64(),
    };
    let value = serde_json::to_value(crate::record::Record::Fidelity(Box::new(record.clone())))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let ledger_path = o.root.join("ledger").join(format!("{}.jsonl", task.name()));
    ledger::append(&ledger_path, &value)?;
    if o.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| Error::Internal(e.to_string()))?
        );
    } else {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}", table(&record));
        let _ = writeln!(out, "recorded: {} (run {run_id})", ledger_path.display());
    }
    let broken = record
        .rows
        .iter()
        .any(|r| r.upstream.correct == Some(false) || r.baseline.correct == Some(false));
    Ok(if broken {
        exit::CORRECTNESS
    } else if !record.verdict.pass || partial {
        exit::PERF_GATE
    } else {
        exit::OK
    })
}

fn rel(task: &Task, p: &Path) -> String {
    p.strip_prefix(&task.dir).unwrap_or(p).display().to_string()
}

/// What the driver needs of one row.
fn row_plan(task: &Task, r: &Row) -> Value {
    let entry = &task.spec.entries[r.entry];
    let tensors: Vec<Value> = entry
        .tensors
        .iter()
        .zip(&r.tensors)
        .map(|(decl, t)| match t {
            None => json!({"name": decl.name, "present": false}),
            Some(t) => json!({
                "name": t.name,
                "present": true,
                "role": t.role,
                "code": t.dtype.abi_code(),
                "shape": t.shape,
                "stride": t.stride,
                "storage_elems": t.storage_elems(),
                "dist": t.dist.map(|d| { let (c, p) = d.abi_args(); json!([c, p[0], p[1], p[2], p[3]]) }),
            }),
        })
        .collect();
    let scalars: Vec<Value> = entry
        .scalars
        .iter()
        .zip(&r.scalars)
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    json!({"index": r.index, "name": r.name, "entry": entry.name, "tensors": tensors, "scalars": scalars, "poison": POISON[0]})
}

/// Reads one side's report and checks its dumps against the reference.
fn side(task: &Task, row: &Row, v: Option<&Value>, seed: u64, units: usize) -> SideFidelity {
    let Some(v) = v else {
        return SideFidelity {
            status: "not reported".into(),
            ..Default::default()
        };
    };
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut out = SideFidelity {
        status: s("status"),
        us: v.get("us").and_then(Value::as_f64),
        samples_us: v
            .get("samples_us")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default(),
        dispatch_path: s("path"),
        ..Default::default()
    };
    let dumps: Vec<PathBuf> = v
        .get("dumps")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    if out.status != "ok" {
        return out;
    }
    match check_dumps(task, row, &dumps, seed, units) {
        Ok(k) => {
            out.correct = Some(k.unwritten == 0 && k.nonfinite == 0 && k.mismatches == 0);
            out.check = Some(k);
        }
        Err(e) => {
            out.status = format!("error: {e}");
            out.correct = Some(false);
        }
    }
    out
}

fn check_dumps(
    task: &Task,
    row: &Row,
    dumps: &[PathBuf],
    seed: u64,
    units: usize,
) -> Result<check::Check> {
    let written: Vec<_> = row
        .tensors
        .iter()
        .flatten()
        .filter(|t| t.role != Role::Input)
        .collect();
    if written.len() != dumps.len() {
        return Err(Error::Internal(format!(
            "{} output dump(s) for {} written tensor(s)",
            dumps.len(),
            written.len()
        )));
    }
    let mut bytes = Vec::new();
    for (t, p) in written.iter().zip(dumps) {
        let b =
            std::fs::read(p).map_err(|e| Error::io(format!("cannot read {}", p.display()), e))?;
        let want = (t.storage_elems() * t.dtype.size() as u64) as usize;
        if b.len() != want {
            return Err(Error::Internal(format!(
                "dump of {} has {} bytes, expected {want}",
                t.name,
                b.len()
            )));
        }
        bytes.push(b);
    }
    let mut k = check::Check::default();
    for (t, b) in written.iter().zip(&bytes) {
        k = k.merge(check::scan(t, b, POISON[0]));
    }
    let reference = reference::lookup(&task.spec.entries[row.entry].reference)
        .ok_or_else(|| Error::Internal("no reference".into()))?;
    let picked = check::pick_units(reference.units(row), Some(units), seed ^ 0xF1DE);
    let pairs: Vec<(&crate::task::TensorDesc, &[u8])> = written
        .iter()
        .copied()
        .zip(bytes.iter().map(|b| b.as_slice()))
        .collect();
    let tol = |d| {
        task.tolerance(d).unwrap_or(crate::task::spec::Tolerance {
            atol: 0.0,
            rtol: 0.0,
        })
    };
    Ok(k.merge(check::compare(
        row, reference, seed, &pairs, &picked, &tol, POISON[0],
    )))
}

fn judge_row(
    task: &Task,
    r: &Row,
    got: Option<&Value>,
    seed: u64,
    units: usize,
    status: &str,
) -> FidelityRow {
    let error = match got {
        None => Some(format!(
            "the driver reported nothing for this row (driver exit: {status})"
        )),
        Some(v) => v.get("error").and_then(Value::as_str).map(str::to_string),
    };
    let upstream = side(task, r, got.and_then(|v| v.get("upstream")), seed, units);
    let baseline = side(task, r, got.and_then(|v| v.get("baseline")), seed, units);
    let ratio = baseline
        .us
        .zip(upstream.us)
        .filter(|(_, u)| *u > 0.0)
        .map(|(b, u)| b / u);
    let gated = rule::gated(r.kind, upstream.us, baseline.us);
    FidelityRow {
        name: r.name.clone(),
        kind: r.kind,
        entry: task.spec.entries[r.entry].name.clone(),
        bytes: r.bytes,
        within_band: ratio
            .filter(|_| gated)
            .map(|x| (x - 1.0).abs() <= rule::BAND),
        upstream,
        baseline,
        ratio,
        gated,
        error,
    }
}

fn table(rec: &FidelityRecord) -> String {
    let mut s = format!(
        "{:<60} {:<10} {:>10} {:>10} {:>7}  {:<9} {:>10} {:>10}\n",
        "row", "kind", "upstr us", "base us", "ratio", "band", "upstr err", "base err"
    );
    let us = |x: Option<f64>| x.map(|u| format!("{u:.2}")).unwrap_or_else(|| "-".into());
    let err = |x: &SideFidelity| match (&x.check, x.correct) {
        (Some(k), Some(true)) => format!("{:.1e}", k.max_abs),
        (_, Some(false)) => "FAIL".into(),
        _ => x.status.chars().take(10).collect(),
    };
    for r in &rec.rows {
        let band = match (r.gated, r.within_band) {
            (true, Some(true)) => "within",
            (true, _) => "MISS",
            _ => "not gated",
        };
        let kind = match r.kind {
            RowKind::Production => "production",
            RowKind::Regression => "regression",
            RowKind::Rejection => "rejection",
        };
        s.push_str(&format!(
            "{:<60} {:<10} {:>10} {:>10} {:>7}  {:<9} {:>10} {:>10}\n",
            r.name.chars().take(60).collect::<String>(),
            kind,
            us(r.upstream.us),
            us(r.baseline.us),
            r.ratio
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "-".into()),
            band,
            err(&r.upstream),
            err(&r.baseline)
        ));
        if let Some(e) = &r.error {
            s.push_str(&format!("    error: {e}\n"));
        }
    }
    let v = &rec.verdict;
    s.push_str(&format!(
        "card {}: {}/{} gated production rows within ±{:.0}% of {} {}; {}\n",
        rec.card,
        v.within,
        v.gated,
        rec.band * 100.0,
        rec.upstream.package,
        rec.upstream.version,
        if v.pass {
            "PASS".to_string()
        } else {
            format!("FAIL: {}", v.failures.join("; "))
        }
    ));
    for e in &v.explained {
        s.push_str(&format!("  explained: {e}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Child {
        Command::new("sh").arg("-c").arg(script).spawn().unwrap()
    }

    #[test]
    fn a_driver_silent_past_its_row_watchdog_is_killed() {
        let d = tempfile::tempdir().unwrap();
        let results = d.path().join("results.jsonl");
        // Two lines, then silence: the watchdog measures from the last line.
        let script = format!(
            "echo env >> {0}; echo row0 >> {0}; sleep 30",
            results.display()
        );
        let mut child = sh(&script);
        let t = Instant::now();
        let (st, killed) = wait_watched(&mut child, &results, Duration::from_millis(600));
        assert!(st.is_ok());
        let silent = killed.expect("the silent driver is killed");
        assert!(silent >= Duration::from_millis(600), "{silent:?}");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    }

    #[test]
    fn a_driver_that_keeps_reporting_is_not_killed() {
        let d = tempfile::tempdir().unwrap();
        let results = d.path().join("results.jsonl");
        // Six lines 0.3 s apart: longer than the 0.6 s watchdog in all, never silent that long.
        let script = format!(
            "for i in 1 2 3 4 5 6; do echo line >> {0}; sleep 0.3; done",
            results.display()
        );
        let mut child = sh(&script);
        let (st, killed) = wait_watched(&mut child, &results, Duration::from_millis(600));
        assert!(killed.is_none());
        assert!(st.unwrap().success());
    }

    /// The count re-reads the file only when its length changed, and a line that arrives in
    /// pieces counts once complete: an unchanged length costs no read, a grown one is read.
    #[test]
    fn the_line_count_reads_only_a_file_whose_length_changed() {
        let d = tempfile::tempdir().unwrap();
        let results = d.path().join("results.jsonl");
        let append = |s: &str| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&results)
                .unwrap();
            f.write_all(s.as_bytes()).unwrap();
        };
        let mut c = LineCount::default();
        assert_eq!(
            (c.poll(&results), c.reads),
            (0, 1),
            "missing: nothing to count"
        );
        append("env\nrow0\n");
        assert_eq!((c.poll(&results), c.reads), (2, 2));
        assert_eq!((c.poll(&results), c.reads), (2, 2), "idle: a stat, no read");
        append("{\"row\": 1");
        assert_eq!(
            (c.poll(&results), c.reads),
            (2, 3),
            "half a line is no line"
        );
        assert_eq!((c.poll(&results), c.reads), (2, 3));
        append("}\n");
        assert_eq!((c.poll(&results), c.reads), (3, 4), "its end is noticed");
        assert_eq!((c.poll(&results), c.reads), (3, 4));
    }

    #[test]
    fn a_driver_whose_lines_arrive_in_pieces_is_not_killed() {
        let d = tempfile::tempdir().unwrap();
        let results = d.path().join("results.jsonl");
        // Each line written in two halves 0.15 s apart, a line every 0.3 s, 1.5 s in all against
        // a 0.6 s watchdog: the file grows at every half, and every line's end resets the timer.
        let script = format!(
            "echo env >> {0}; for i in 1 2 3 4 5; do printf row >> {0}; sleep 0.15; echo $i >> {0}; sleep 0.15; done",
            results.display()
        );
        let mut child = sh(&script);
        let (st, killed) = wait_watched(&mut child, &results, Duration::from_millis(600));
        assert!(killed.is_none(), "{killed:?}");
        assert!(st.unwrap().success());
        assert_eq!(
            std::fs::read_to_string(&results).unwrap().lines().count(),
            6
        );
    }

    #[test]
    fn the_first_line_gets_the_grace() {
        // Silent for 1 s before any line, with a 0.5 s row watchdog: within the first-line grace.
        let d = tempfile::tempdir().unwrap();
        let results = d.path().join("results.jsonl");
        let script = format!("sleep 1; echo env >> {0}", results.display());
        let mut child = sh(&script);
        let (st, killed) = wait_watched(&mut child, &results, Duration::from_millis(500));
        assert!(killed.is_none());
        assert!(st.unwrap().success());
    }
}
