use clap::{Parser, Subcommand};
use kpilot::error::{exit, Error, Result};
use kpilot::nvcc::Arch;
use kpilot::run::{self, RunOptions};
use kpilot::task::Task;
use std::path::{Path, PathBuf};

const AFTER_HELP: &str = "\
Exit codes (one meaning each):
  0  every correctness gate and the performance gate passed
  1  both sides correct, but the performance gate was not met (or a partial run: no headline)
  2  a correctness gate failed on some row and side, or a kernel crashed or hung
  3  bad input: task.toml, the rows file, a missing task file, or task files changed since frozen
  4  the machine lacks what the run needs (CUDA driver, GPU, nvcc)
  5  nvcc failed to build the baseline, a candidate or the support kernels
  6  a bug in kpilot, or an I/O failure
  7  the command line: unknown option or subcommand, bad value, unknown task, candidate or row
  8  a --quick run found correct (every element scanned, up to 2048 drawn units a row compared; never gate evidence)
`fidelity` exits 0 when every gated production row is within 5% of upstream, 1 on a miss (or a
partial run), 2 when either side's output fails the reference; `check` exits 1 when the fidelity
rule fails (no complete fidelity record of the current baseline, or an unexplained miss).

Every `task` and `fidelity` run appends one JSON line to ledger/<task>.jsonl (schema: ledger/README.md).";

/// Optimize GPU kernels one task at a time: a faithful baseline, candidates, the production
/// shapes real models call it with, correctness gates, and fair interleaved A/B timing, with
/// every result appended to a ledger.
#[derive(Parser)]
#[command(name = "kpilot", version, after_help = AFTER_HELP)]
struct Cli {
    /// Repository root (holds tasks/, kernels/, ledger/).
    #[arg(long, global = true, default_value = ".")]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum CandidateCmd {
    /// Copy an implementation to candidates/<name>.cu (never overwriting), its parent named in a
    /// header line.
    New {
        task: String,
        name: String,
        /// "baseline" or a candidate's name.
        #[arg(long)]
        from: String,
    },
}

#[derive(Subcommand)]
enum Cmd {
    /// Build, check and time the baseline against a candidate on every row; record the run.
    Task {
        /// Task name (a folder under tasks/).
        name: String,
        /// Candidate (candidates/<NAME>.cu); default: task.toml's `candidate`.
        #[arg(long)]
        candidate: Option<String>,
        /// Seed of the run (recorded); default: fresh.
        #[arg(long)]
        seed: Option<u64>,
        /// Timed trials per row (at least 7); default: task.toml.
        #[arg(long)]
        trials: Option<u32>,
        /// cold (rotate buffer sets larger than L2) or warm; default: task.toml.
        #[arg(long)]
        cache: Option<String>,
        /// Run only this row (repeatable). A partial run records no headline and cannot pass the gate.
        #[arg(long = "row")]
        rows: Vec<String>,
        /// GPU ordinal.
        #[arg(long, default_value_t = 0)]
        device: i32,
        /// Print the ledger record as JSON on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Units (e.g. token rows) compared with the reference after each timed sample (default:
        /// the task's timing.sample_units, itself 64 unless task.toml sets it). Fewer than that
        /// is recorded as a deviation and cannot pass the gate.
        #[arg(long)]
        sample_units: Option<usize>,
        /// A/A run: the baseline against a separately loaded copy of itself, to measure the
        /// noise floor. Recorded as candidate `baseline-aa`; it must fail the performance gate (exit 1).
        #[arg(long)]
        aa: bool,
        /// The fast inner loop: production rows only, the minimum trials; recorded with
        /// `quick: true`, never gate evidence (exit 8 when correct, 2 when not).
        #[arg(long)]
        quick: bool,
        /// Seconds a row may go without news from the worker before it is killed as hung
        /// (default: the task's timing.row_timeout_s; 1 to 86400). Recorded; a hung row fails its
        /// side, so a shorter limit can only fail a run, never pass one; a longer one than the
        /// frozen value is a deviation (the run cannot pass the gate).
        #[arg(long, value_parser = parse_row_timeout)]
        row_timeout: Option<f64>,
    },
    /// Time the pinned upstream release itself against the task's baseline on this GPU, the same
    /// way, check both against the float64 reference, and record a `fidelity` record.
    Fidelity {
        /// Task name (a folder under tasks/).
        name: String,
        /// The unpacked upstream wheel (the folder holding e.g. sglang/); scripts/fetch_upstream.sh makes it.
        #[arg(long)]
        upstream: PathBuf,
        /// Run only this row (repeatable). A partial run is recorded but never satisfies `check`.
        #[arg(long = "row")]
        rows: Vec<String>,
        /// GPU ordinal.
        #[arg(long, default_value_t = 0)]
        device: i32,
        /// Launches captured in each side's CUDA graph.
        #[arg(long, default_value_t = kpilot::fidelity::rule::MIN_LAUNCHES)]
        launches: u32,
        /// Graph replays per side (interleaved AB/BA); the median is reported.
        #[arg(long, default_value_t = kpilot::fidelity::rule::MIN_REPLAYS)]
        replays: u32,
        /// Units per row compared with the float64 reference (every element is scanned for poison and NaN/Inf).
        #[arg(long, default_value_t = kpilot::fidelity::rule::MIN_CHECK_UNITS)]
        check_units: usize,
        /// Seed of the inputs (recorded); default: fresh.
        #[arg(long)]
        seed: Option<u64>,
        /// Python with torch (and triton for Triton upstreams).
        #[arg(long, default_value = "python3")]
        python: String,
        /// Print the ledger record as JSON on stdout instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Compile a task's baseline and candidates (and the support kernels) without a GPU.
    Build {
        /// Task name; all tasks when omitted.
        name: Option<String>,
        /// Target architecture.
        #[arg(long, default_value = "sm_90a")]
        arch: String,
    },
    /// Load and validate task files (all tasks when no name is given), and apply the fidelity rule
    /// to the ledger (the latest complete fidelity record per card of the current baseline); needs no GPU.
    Check { name: Option<String> },
    /// List tasks, their rows and candidates.
    List,
    /// Freeze a task by hash (task.toml, its rows and its baseline), recording why in its ledger.
    Freeze {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Read a task's ledger: list its records, show one, the best headline per card and candidate,
    /// or print the JSON Schema of a ledger line.
    Ledger {
        #[command(subcommand)]
        cmd: kpilot::ledger_cmd::LedgerCmd,
    },
    /// Profile one row's calls of the baseline and a candidate with Nsight Compute (each side in
    /// its own process, warm-up excluded, only the implementation's launches), and write a
    /// side-by-side digest to ncu/<task>/ with an `ncu` ledger record pointing at it.
    Ncu {
        /// Task name (a folder under tasks/).
        name: String,
        /// The row to profile.
        #[arg(long)]
        row: String,
        /// Candidate (candidates/<NAME>.cu); default: task.toml's `candidate`.
        #[arg(long)]
        candidate: Option<String>,
        /// GPU ordinal.
        #[arg(long, default_value_t = 0)]
        device: i32,
        /// Profiled calls per side, after two warm-up calls.
        #[arg(long, default_value_t = 3)]
        calls: u32,
        /// Print the ledger record as JSON instead of the digest.
        #[arg(long)]
        json: bool,
    },
    /// Pin a run as the anchor `regress` compares with on that run's card model:
    /// anchors/<card>/<task>.toml (per-row samples, the A/A floor, the hashes), reviewed like code.
    /// Only a trustworthy run of the task as it is now (its baseline, rows and task.toml settings,
    /// as `ledger best` counts them) can be pinned: another is bad input (exit 3).
    Accept {
        name: String,
        /// The run id (a unique prefix is enough).
        #[arg(long)]
        run: String,
        /// Why this run is the new reference (kept in the anchor).
        #[arg(long)]
        reason: String,
        /// Accept a run of some rows only (--row); regress then checks just those.
        #[arg(long)]
        allow_partial: bool,
    },
    /// The nightly job: time each task's anchored candidate on this card and compare every row
    /// with the anchor (a regression must clear max(2%, 3x the row's A/A half-width) and be
    /// confirmed by a fresh worker re-timing it). Exit 0 no regression, 1 a confirmed regression,
    /// 2 a correctness failure or crash, 3 bad input or no anchor for this card, 4 no GPU, driver
    /// or nvcc.
    Regress {
        /// Tasks (all when none is given).
        names: Vec<String>,
        /// GPUs of this host to spread the rows over, e.g. 0,1 (one worker per GPU; each row's
        /// A/B stays on one GPU).
        #[arg(long, value_delimiter = ',', default_value = "0")]
        devices: Vec<i32>,
        /// Run only shard i of n (rows balanced by their time in the anchor), e.g. 2/4.
        #[arg(long)]
        shard: Option<String>,
        /// Write JUnit XML here (one testcase per task and row).
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write the markdown summary here too (e.g. "$GITHUB_STEP_SUMMARY").
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Append "<task> <regress record id>" lines here, for `kpilot merge`.
        #[arg(long)]
        ids_out: Option<PathBuf>,
    },
    /// Two recorded runs of a task, row by row with the rules of `regress` (offline, no GPU):
    /// markdown for a PR description. Exit 1 when a row regressed beyond its threshold.
    Compare {
        name: String,
        /// The earlier run (a unique prefix of its id).
        before: String,
        /// The later run.
        after: String,
    },
    /// Merge the `regress` records of one nightly's shards: one anchor, no overlap, every
    /// anchored row covered (else exit 3 naming what is missing); prints the merged summary.
    Merge {
        name: String,
        /// The shards' regress record ids (unique prefixes).
        #[arg(required = true)]
        ids: Vec<String>,
        /// Write JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// One recorded run as markdown (card, commit, flags, per-row table with CI and % of copy
    /// bandwidth), and with --svg a chart of each row's speedup with CI whiskers and % of copy.
    Report {
        name: String,
        /// The run (a unique prefix of its id).
        run: String,
        /// Write the chart here (SVG).
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Candidate files: `candidate new <task> <name> --from <baseline|candidate>` starts a new
    /// candidate from an existing implementation, with a header naming its parent.
    Candidate {
        #[command(subcommand)]
        cmd: CandidateCmd,
    },
    /// Everything an agent needs to write a candidate, in one document (versioned schema): entry
    /// points and ABI, rows with speed of light on the latest run's card, tolerances, gate, the
    /// rules, the best candidate per card, ncu bottlenecks. Markdown, or JSON with --json.
    Brief {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// (internal) The process `ncu` profiles: one side of one row.
    #[command(hide = true, name = "ncu-probe")]
    NcuProbe {
        #[arg(long)]
        task_dir: PathBuf,
        #[arg(long)]
        row: String,
        #[arg(long)]
        side: String,
        #[arg(long)]
        support: PathBuf,
        #[arg(long)]
        so: PathBuf,
        #[arg(long, default_value_t = 0)]
        device: i32,
        #[arg(long, default_value_t = 3)]
        calls: u32,
    },
    /// (internal) The worker process the `task` command drives: it reads its plan and the run's
    /// secret from stdin and reports on the result channel the parent mapped for it.
    #[command(hide = true)]
    Worker,
}

fn task_names(root: &Path) -> Result<Vec<String>> {
    kpilot::task::names(root)
}

/// `--row-timeout`: seconds within kpilot::task::ROW_TIMEOUT_RANGE_S.
fn parse_row_timeout(s: &str) -> std::result::Result<f64, String> {
    let range = kpilot::task::ROW_TIMEOUT_RANGE_S;
    match s.parse::<f64>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

fn real_main(cli: Cli) -> Result<i32> {
    let root = cli.root.clone();
    match cli.cmd {
        Cmd::Task {
            name,
            candidate,
            seed,
            trials,
            cache,
            rows,
            device,
            json,
            sample_units,
            aa,
            quick,
            row_timeout,
        } => run::run(&RunOptions {
            root,
            task: name,
            candidate,
            seed,
            trials,
            cache,
            rows,
            device,
            json,
            sample_units,
            aa,
            quiet: false,
            quick,
            row_timeout_s: row_timeout,
        }),
        Cmd::Fidelity {
            name,
            upstream,
            rows,
            device,
            launches,
            replays,
            check_units,
            seed,
            python,
            json,
        } => kpilot::fidelity::run(&kpilot::fidelity::FidelityOptions {
            root,
            task: name,
            upstream,
            rows,
            device,
            launches,
            replays,
            check_units,
            seed,
            python,
            json,
        }),
        Cmd::Build { name, arch } => {
            let arch = Arch::parse(&arch)
                .ok_or_else(|| Error::Cli(format!("--arch {arch}: expected sm_XX, e.g. sm_90a")))?;
            let names = match name {
                Some(n) => vec![n],
                None => task_names(&root)?,
            };
            for n in names {
                let task = Task::load(&root.join("tasks"), &n)?;
                let cands = task.candidates();
                if cands.is_empty() {
                    return Err(Error::Usage(format!("task '{n}' has no candidates/*.cu")));
                }
                for c in &cands {
                    kpilot::scan::require_clean(&task, c)?;
                }
                let cands: Vec<(String, PathBuf)> = cands
                    .iter()
                    .map(|c| (c.clone(), task.candidate_path(c)))
                    .collect();
                run::build_many(&root, &task, &cands, arch.clone(), &|s| {
                    eprintln!("{n}: {s}")
                })?;
            }
            Ok(exit::OK)
        }
        Cmd::Check { name } => {
            let names = match name {
                Some(n) => vec![n],
                None => task_names(&root)?,
            };
            for n in names {
                let task = Task::load(&root.join("tasks"), &n)?;
                kpilot::freeze::verify(&task)?;
                for c in task.candidates() {
                    kpilot::scan::require_clean(&task, &c)?;
                }
                let default = &task.spec.task.candidate;
                if !task.candidate_path(default).exists() {
                    let toml = task.dir.join("task.toml");
                    let text = std::fs::read_to_string(&toml).unwrap_or_default();
                    return Err(Error::input(
                        &toml,
                        kpilot::error::line_of(
                            &text,
                            text.find("\ncandidate").map_or(0, |o| o + 1),
                        ),
                        format!(
                            "the default candidate '{default}' does not exist ({}; candidates: {})",
                            task.candidate_path(default).display(),
                            task.candidates().join(", ")
                        ),
                    ));
                }
                let (p, r, j) = run::count_kinds(&task);
                kpilot::outln!(
                    "{n}: ok ({p} production, {r} regression, {j} rejection rows; candidates: {})",
                    task.candidates().join(", ")
                );
                for line in kpilot::fidelity::rule::verify(&task, &root.join("ledger"))? {
                    kpilot::outln!("{n}: {line}");
                }
            }
            Ok(exit::OK)
        }
        Cmd::List => {
            // Every task is listed; an invalid one is named with its error and the exit code is
            // that of the first error (bad input), so a loop cannot miss it.
            let mut first_err = None;
            for n in task_names(&root)? {
                match Task::load(&root.join("tasks"), &n) {
                    Ok(task) => {
                        let (p, r, j) = run::count_kinds(&task);
                        kpilot::outln!("{n}: {} entry point(s), rows {p} production / {r} regression / {j} rejection, candidates: {}", task.spec.entries.len(), task.candidates().join(", "));
                    }
                    Err(e) => {
                        kpilot::outln!("{n}: INVALID: {e}");
                        first_err.get_or_insert(e.exit_code());
                    }
                }
            }
            Ok(first_err.unwrap_or(exit::OK))
        }
        Cmd::Freeze { name, reason } => {
            let task = Task::load(&root.join("tasks"), &name)?;
            kpilot::freeze::freeze(&task, &root.join("ledger"), &reason)?;
            kpilot::outln!(
                "froze {name}: rows {}..., baseline {}...",
                &task.hashes.rows[..12],
                &task.hashes.baseline[..12]
            );
            Ok(exit::OK)
        }
        Cmd::Ledger { cmd } => kpilot::ledger_cmd::run(&root, &cmd),
        Cmd::Accept {
            name,
            run,
            reason,
            allow_partial,
        } => {
            let p = kpilot::regress::anchor::accept(&root, &name, &run, &reason, allow_partial)?;
            kpilot::outln!("accepted run {run} of {name}: {}", p.display());
            Ok(exit::OK)
        }
        Cmd::Regress {
            names,
            devices,
            shard,
            junit,
            markdown,
            ids_out,
        } => kpilot::regress::run(&kpilot::regress::RegressOptions {
            root,
            tasks: names,
            devices,
            shard: shard
                .as_deref()
                .map(kpilot::regress::parse_shard)
                .transpose()?,
            junit,
            markdown,
            ids_out,
        }),
        Cmd::Compare {
            name,
            before,
            after,
        } => {
            let (md, code) = kpilot::regress::compare::compare(&root, &name, &before, &after)?;
            kpilot::out!("{md}");
            Ok(code)
        }
        Cmd::Merge { name, ids, junit } => {
            let (merged, _missing) = kpilot::regress::merge::merge(&root, &name, &ids)?;
            let all = std::slice::from_ref(&merged);
            kpilot::out!("{}", kpilot::regress::output::markdown(all));
            if let Some(p) = junit {
                std::fs::write(&p, kpilot::regress::output::junit(all))
                    .map_err(|e| Error::io(format!("cannot write {}", p.display()), e))?;
            }
            Ok(kpilot::regress::exit_code(all))
        }
        Cmd::Report { name, run, svg } => {
            let all = kpilot::regress::anchor::runs(&root, &name)?;
            let r = kpilot::regress::anchor::find_run(&all, &name, &run)?;
            kpilot::out!("{}", kpilot::run_report::markdown(r));
            if let Some(p) = svg {
                kpilot::run_report::svg(r, &p)?;
            }
            Ok(exit::OK)
        }
        Cmd::Candidate {
            cmd: CandidateCmd::New { task, name, from },
        } => {
            let p = kpilot::candidate_cmd::new(&root, &task, &name, &from)?;
            kpilot::outln!(
                "wrote {} (from {from}); build it with `kpilot build {task}`",
                p.display()
            );
            Ok(exit::OK)
        }
        Cmd::Brief { name, json } => {
            let b = kpilot::brief::build(&root, &name)?;
            if json {
                kpilot::outln!(
                    "{}",
                    serde_json::to_string_pretty(&b).map_err(|e| Error::Internal(e.to_string()))?
                );
            } else {
                kpilot::out!("{}", kpilot::brief::markdown(&b));
            }
            Ok(exit::OK)
        }
        Cmd::Ncu {
            name,
            row,
            candidate,
            device,
            calls,
            json,
        } => kpilot::ncu::run(&kpilot::ncu::NcuOptions {
            root,
            task: name,
            row,
            candidate,
            device,
            calls,
            json,
        }),
        Cmd::NcuProbe {
            task_dir,
            row,
            side,
            support,
            so,
            device,
            calls,
        } => kpilot::ncu::probe(&task_dir, &row, &side, &support, &so, device, calls),
        Cmd::Worker => {
            let plan = kpilot::worker::hello_from_stdin()?;
            Ok(kpilot::worker::main(plan))
        }
    }
}

fn main() {
    // clap's own errors (unknown option, bad value, no subcommand) exit USAGE, not clap's 2,
    // which is kpilot's correctness failure; --help and --version exit 0.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match real_main(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kpilot: error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
