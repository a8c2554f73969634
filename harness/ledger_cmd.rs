//! `kpilot ledger list|show|best|schema`: read a task's ledger through the typed records of
//! `crate::record`. Every line is parsed strictly; one that does not parse is an input error
//! naming the file and line (exit 3), never skipped in silence.

use crate::error::{exit, Error, Result};
use crate::record::{Record, RunRecord};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug, Clone)]
pub enum LedgerCmd {
    /// One line per record: id, kind, time, card, commit, candidate, headline [95% CI], gate, wall seconds.
    List {
        /// Task name (ledger/<TASK>.jsonl).
        task: String,
        /// Only records of this kind: run, fidelity, freeze, ncu or regress.
        #[arg(long)]
        kind: Option<String>,
        /// One JSON object per record (the summary), as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// One record: a summary and its rows, or the line as stored with --json.
    Show {
        /// Task name (ledger/<TASK>.jsonl).
        task: String,
        /// Run id (a unique prefix is enough); a freeze is named by its time.
        run_id: String,
        /// Print the record exactly as stored, pretty-printed.
        #[arg(long)]
        json: bool,
    },
    /// Per card and candidate, the best headline among runs that are gate evidence: full (no
    /// --row), not A/A, not --quick, no deviations, every row correct, no protocol violation,
    /// worker restart or exit failure.
    Best {
        /// Task name (ledger/<TASK>.jsonl).
        task: String,
        /// Only cards whose name contains this.
        #[arg(long)]
        card: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of a ledger line (generated from the record types; ledger/schema.json).
    Schema,
    /// The tree of a task's candidates (parents from the header `kpilot candidate new` writes),
    /// each with its best full-run headline per card (of the current baseline, rows and task.toml
    /// settings: the runs `ledger best` counts).
    Lineage { task: String },
    /// Moves every record of the live ledger/<TASK>.jsonl into a new gzip segment
    /// ledger/archive/<TASK>/NNNN.jsonl.gz (read back and compared before the live file is
    /// emptied); every reader sees the segments' records before the live file's. Refused, nothing
    /// changed, when any line of the ledger is not a valid record.
    Seal {
        /// Task names.
        #[arg(required = true)]
        tasks: Vec<String>,
    },
}

/// One line of a ledger: its file (a sealed segment or the live file), its number there (1-based),
/// the JSON as stored, and the typed record.
pub struct Line {
    pub file: PathBuf,
    pub line: usize,
    pub raw: serde_json::Value,
    pub record: Record,
}

/// Parses one ledger line strictly.
pub fn parse_line(text: &str) -> std::result::Result<(serde_json::Value, Record), String> {
    let raw: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let record = serde_json::from_value(raw.clone()).map_err(|e| {
        let kind = raw.get("kind").and_then(|k| k.as_str()).unwrap_or("?");
        format!("not a valid ledger record (kind {kind}): {e}")
    })?;
    Ok((raw, record))
}

/// Every line of a ledger (its sealed segments, then the live file `path`), typed; the first that
/// does not parse is an error naming its file and line.
pub fn read_file(path: &Path) -> Result<Vec<Line>> {
    // (No ledger at all reads as none: a task never run has an empty ledger.)
    typed_lines(&crate::ledger::load(path)?)
}

/// Every line of a ledger's parts, typed; the first that does not parse is an error naming it.
fn typed_lines(parts: &crate::ledger::Parts) -> Result<Vec<Line>> {
    let mut out = Vec::new();
    for (file, n, l) in parts.lines() {
        if l.trim().is_empty() {
            continue;
        }
        let (raw, record) = parse_line(l).map_err(|msg| Error::input(file, n, msg))?;
        out.push(Line {
            file: file.to_path_buf(),
            line: n,
            raw,
            record,
        });
    }
    Ok(out)
}

/// The run records among a ledger's lines, in ledger order.
fn run_records(lines: &[Line]) -> Vec<&RunRecord> {
    lines
        .iter()
        .filter_map(|l| match &l.record {
            Record::Run(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect()
}

fn ledger_path(root: &Path, task: &str) -> Result<PathBuf> {
    let ok_name = !task.is_empty()
        && task
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !task.starts_with('.');
    let path = root.join("ledger").join(format!("{task}.jsonl"));
    if ok_name
        && (path.exists()
            || crate::ledger::archive_dir(&path).exists()
            || root.join("tasks").join(task).join("task.toml").exists())
    {
        return Ok(path);
    }
    let mut known: Vec<String> = std::fs::read_dir(root.join("ledger"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".jsonl"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    known.sort();
    Err(Error::Usage(format!(
        "unknown task '{task}': no {} and no tasks/{task}/task.toml (ledgers: {})",
        path.display(),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )))
}

fn load(root: &Path, task: &str) -> Result<(PathBuf, Vec<Line>)> {
    let path = ledger_path(root, task)?;
    // A task that has never been run has an empty ledger.
    let mut lines = read_file(&path)?;
    for l in &mut lines {
        if let Ok(rel) = l.file.strip_prefix(root) {
            l.file = rel.to_path_buf();
        }
    }
    Ok((path, lines))
}

/// The first run recorded for `candidate` in the task's ledger (its run id), if any: a name the
/// ledger knows stays that version's, also after its file left the tree.
pub fn recorded_run_of(root: &Path, task: &str, candidate: &str) -> Result<Option<String>> {
    let (_, lines) = load(root, task)?;
    Ok(lines.iter().find_map(|l| match &l.record {
        Record::Run(r) if r.candidate == candidate => Some(r.run_id.clone()),
        _ => None,
    }))
}

fn short(commit: Option<&str>) -> String {
    commit
        .map(|c| c.chars().take(7).collect())
        .unwrap_or_else(|| "-".into())
}

fn headline_text(r: &RunRecord) -> String {
    match (r.headline.device_geomean, r.headline.device_ci) {
        (Some(g), Some([lo, hi])) => format!("{g:.4}x [{lo:.4}, {hi:.4}]"),
        (Some(g), None) => format!("{g:.4}x"),
        (None, _) => "-".into(),
    }
}

/// What a list line says about a record.
#[derive(serde::Serialize)]
struct Summary {
    /// The file the record is in: a sealed segment (`ledger/archive/<task>/NNNN.jsonl.gz`) or the
    /// live `ledger/<task>.jsonl`.
    file: String,
    line: usize,
    id: String,
    kind: &'static str,
    time_utc: String,
    card: Option<String>,
    commit: Option<String>,
    candidate: Option<String>,
    device_geomean: Option<f64>,
    device_ci: Option<[f64; 2]>,
    /// Runs: the gate; fidelity: the fidelity rule's verdict.
    pass: Option<bool>,
    /// Runs: a candidate's evidence (`RunRecord::is_full_evidence`): every row with the task's
    /// settings, not A/A, every row correct, nothing wrong with the workers. Fidelity: not partial.
    full: Option<bool>,
    wall_seconds: Option<f64>,
    /// A short note: the freeze's reason, a fidelity record's rows within the band, a partial run.
    note: String,
}

fn summary(l: &Line) -> Summary {
    let base = Summary {
        file: l.file.display().to_string(),
        line: l.line,
        id: l.record.id().to_string(),
        kind: l.record.kind(),
        time_utc: l.record.time_utc().to_string(),
        card: None,
        commit: None,
        candidate: None,
        device_geomean: None,
        device_ci: None,
        pass: None,
        full: None,
        wall_seconds: None,
        note: String::new(),
    };
    match &l.record {
        Record::Run(r) => {
            // Why the run is no evidence, in the words of the one trust test.
            let mut note = Vec::new();
            if r.aa {
                note.push("A/A".to_string());
            }
            for d in r.distrust() {
                note.push(match d {
                    crate::record::Distrust::Deviations(d) => format!("{} deviation(s)", d.len()),
                    d => d.to_string(),
                });
            }
            Summary {
                card: Some(r.device.name.clone()),
                commit: r.git.commit.clone(),
                candidate: Some(r.candidate.clone()),
                device_geomean: r.headline.device_geomean,
                device_ci: r.headline.device_ci,
                pass: Some(r.gate.pass),
                full: Some(r.is_full_evidence()),
                wall_seconds: Some(r.wall_seconds),
                note: note.join(", "),
                ..base
            }
        }
        Record::Fidelity(r) => Summary {
            card: Some(r.card.clone()),
            commit: r.git.commit.clone(),
            candidate: Some("upstream".into()),
            pass: Some(r.verdict.pass),
            full: Some(!r.partial),
            wall_seconds: Some(r.wall_seconds),
            note: format!(
                "{}/{} gated rows within {:.0}% of upstream {} {}{}",
                r.verdict.within,
                r.verdict.gated,
                r.band * 100.0,
                r.upstream.package,
                r.upstream.version,
                if r.partial { ", partial" } else { "" }
            ),
            ..base
        },
        Record::Freeze(r) => Summary {
            note: format!("freeze: {}", r.reason),
            ..base
        },
        Record::Regress(r) => Summary {
            card: Some(r.card.clone()),
            commit: r.git.commit.clone(),
            candidate: r.candidate.clone(),
            note: format!(
                "regress {}: {} row(s) against anchor {}{}",
                r.status,
                r.rows.len(),
                r.anchor_run_id.as_deref().unwrap_or("-"),
                r.shard
                    .as_ref()
                    .map(|x| format!(", shard {x}"))
                    .unwrap_or_default()
            ),
            ..base
        },
        Record::Ncu(r) => Summary {
            card: Some(r.card.clone()),
            commit: r.git.commit.clone(),
            candidate: Some(r.candidate.clone()),
            note: format!(
                "ncu {}: baseline {:.2} us, {} {:.2} us; {}",
                r.row, r.baseline.duration_us, r.candidate, r.candidate_side.duration_us, r.digest
            ),
            ..base
        },
    }
}

fn json_out<T: serde::Serialize>(v: &T) -> Result<()> {
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| Error::Internal(e.to_string()))?
    );
    Ok(())
}

fn pass_text(p: Option<bool>) -> &'static str {
    match p {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "-",
    }
}

fn list(root: &Path, task: &str, kind: Option<&str>, json: bool) -> Result<()> {
    if let Some(k) = kind.filter(|k| !["run", "fidelity", "freeze", "ncu", "regress"].contains(k)) {
        return Err(Error::Usage(format!(
            "--kind {k}: expected run, fidelity, freeze, ncu or regress"
        )));
    }
    let (_, lines) = load(root, task)?;
    let sums: Vec<Summary> = lines
        .iter()
        .filter(|l| kind.is_none_or(|k| l.record.kind() == k))
        .map(summary)
        .collect();
    if json {
        return json_out(&sums);
    }
    let mut s = String::new();
    for m in &sums {
        let headline = match (m.device_geomean, m.device_ci) {
            (Some(g), Some([lo, hi])) => format!("{g:.4}x [{lo:.4}, {hi:.4}]"),
            (Some(g), None) => format!("{g:.4}x"),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "{:<26} {:<8} {:<20} {:<21} {:<7} {:<14} {:<26} {:<4} {:>6}  {}",
            m.id,
            m.kind,
            m.time_utc,
            m.card.as_deref().unwrap_or("-"),
            short(m.commit.as_deref()),
            m.candidate.as_deref().unwrap_or("-"),
            headline,
            pass_text(m.pass),
            m.wall_seconds
                .map(|w| format!("{w:.0}s"))
                .unwrap_or_else(|| "-".into()),
            if m.note.chars().count() > 80 {
                format!("{}...", m.note.chars().take(77).collect::<String>())
            } else {
                m.note.clone()
            }
        );
    }
    crate::out!("{s}");
    Ok(())
}

fn find<'a>(lines: &'a [Line], path: &Path, id: &str) -> Result<&'a Line> {
    if let Some(l) = lines.iter().find(|l| l.record.id() == id) {
        return Ok(l);
    }
    let hits: Vec<&Line> = lines
        .iter()
        .filter(|l| !id.is_empty() && l.record.id().starts_with(id))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::Usage(format!(
            "no record '{id}' in {} (see `kpilot ledger list`)",
            path.display()
        ))),
        many => Err(Error::Usage(format!(
            "run id '{id}' is ambiguous in {}: it starts {} records ({})",
            path.display(),
            many.len(),
            many.iter()
                .map(|l| l.record.id())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}"))
        .unwrap_or_else(|| "-".into())
}

fn show_run(r: &RunRecord) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "run {} of {} at {}: candidate {}{}",
        r.run_id,
        r.task,
        r.time_utc,
        r.candidate,
        if r.aa { " (A/A)" } else { "" }
    );
    let _ = writeln!(
        s,
        "device: {}, copy bandwidth {} TB/s; git {}{}; cache {}, {} trials, seed {}",
        r.device.name,
        opt(r.copy_bandwidth.tbps, 2),
        r.git.commit.as_deref().unwrap_or("-"),
        if r.git.dirty == Some(true) {
            " (dirty)"
        } else {
            ""
        },
        r.timing.cache,
        r.timing.trials,
        r.timing.seed
    );
    if !r.row_filter.is_empty() {
        let _ = writeln!(s, "partial run: {}", r.row_filter.join(", "));
    }
    for d in &r.deviations {
        let _ = writeln!(s, "deviation: {d}");
    }
    let w = r
        .rows
        .iter()
        .map(|x| x.name.len())
        .max()
        .unwrap_or(3)
        .clamp(3, 64);
    let _ = writeln!(
        s,
        "{:<w$}  {:<10} {:>10} {:>10}  {:<24} {:<7} problems",
        "row", "kind", "base us", "cand us", "speedup [95% CI]", "verdict"
    );
    for x in &r.rows {
        let med = |side: &Option<crate::record::SideRecord>| {
            side.as_ref()
                .and_then(|s| s.device_us.as_ref())
                .map(|d| d.median)
        };
        let speed = match (&x.device, x.ran, x.correct) {
            (_, false, _) => x
                .duplicate_of
                .as_ref()
                .map(|d| format!("duplicate of {}", d.chars().take(12).collect::<String>()))
                .unwrap_or_else(|| "not run".into()),
            (_, true, false) => "FAILED".into(),
            (Some(c), true, true) => {
                format!("{:.3}x [{:.3}, {:.3}]", c.speedup, c.ci_low, c.ci_high)
            }
            (None, true, true) => "-".into(),
        };
        let name: String = x.name.chars().take(w).collect();
        let _ = writeln!(
            s,
            "{:<w$}  {:<10} {:>10} {:>10}  {:<24} {:<7} {}",
            name,
            format!("{:?}", x.kind).to_lowercase(),
            opt(med(&x.baseline), 2),
            opt(med(&x.candidate), 2),
            speed,
            x.verdict.map(|v| v.as_str()).unwrap_or(""),
            x.problems.len()
        );
    }
    let _ = writeln!(
        s,
        "headline (geomean over {} production rows): device {}",
        r.headline.production_rows,
        headline_text(r)
    );
    let _ = writeln!(s, "gate: {}", if r.gate.pass { "PASS" } else { "FAIL" });
    for why in &r.gate.reasons {
        let _ = writeln!(s, "  - {why}");
    }
    if let Some(f) = &r.fidelity {
        let _ = writeln!(
            s,
            "fidelity on {}: {}",
            f.card,
            f.run_id
                .as_deref()
                .map(|id| format!("record {id}"))
                .or(f.why_not.clone())
                .unwrap_or_else(|| "-".into())
        );
    }
    let _ = writeln!(s, "wall clock: {:.1} s", r.wall_seconds);
    s
}

fn show(root: &Path, task: &str, id: &str, json: bool) -> Result<()> {
    let (path, lines) = load(root, task)?;
    let l = find(&lines, &path, id)?;
    if json {
        return json_out(&l.raw);
    }
    match &l.record {
        Record::Run(r) => crate::out!("{}", show_run(r)),
        Record::Fidelity(r) => {
            let mut s = String::new();
            let _ = writeln!(
                s,
                "fidelity {} of {} at {} on {}: upstream {} {} ({})",
                r.run_id,
                r.task,
                r.time_utc,
                r.card,
                r.upstream.package,
                r.upstream.version,
                r.upstream.how
            );
            let _ = writeln!(
                s,
                "{:<48} {:>12} {:>12} {:>8}  {:<6} band",
                "row", "upstream us", "baseline us", "ratio", "gated"
            );
            for x in &r.rows {
                let _ = writeln!(
                    s,
                    "{:<48} {:>12} {:>12} {:>8}  {:<6} {}",
                    x.name.chars().take(48).collect::<String>(),
                    opt(x.upstream.us, 2),
                    opt(x.baseline.us, 2),
                    opt(x.ratio, 3),
                    x.gated,
                    match x.within_band {
                        Some(true) => "within",
                        Some(false) => "MISS",
                        None => "-",
                    }
                );
            }
            let _ = writeln!(
                s,
                "verdict: {} ({}/{} gated rows within {:.0}%){}",
                if r.verdict.pass { "PASS" } else { "FAIL" },
                r.verdict.within,
                r.verdict.gated,
                r.band * 100.0,
                if r.partial { ", partial" } else { "" }
            );
            for f in &r.verdict.failures {
                let _ = writeln!(s, "  - {f}");
            }
            crate::out!("{s}");
        }
        Record::Regress(r) => crate::out!(
            "{}",
            crate::regress::output::markdown(std::slice::from_ref(r))
        ),
        Record::Ncu(r) => {
            crate::outln!(
                "ncu {} of {}, row {}, on {}: digest {}\n  baseline: {}\n  {}: {}",
                r.run_id,
                r.task,
                r.row,
                r.card,
                r.digest,
                r.baseline.bottleneck,
                r.candidate,
                r.candidate_side.bottleneck
            );
        }
        Record::Freeze(r) => {
            crate::outln!(
                "freeze of {} at {}: {}\n  rows {}\n  baseline {}\n  task.toml {}",
                r.task,
                r.time_utc,
                r.reason,
                r.rows_sha256,
                r.baseline_sha256,
                r.task_toml_sha256.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Best {
    card: String,
    candidate: String,
    run_id: String,
    time_utc: String,
    device_geomean: f64,
    device_ci: Option<[f64; 2]>,
    gate_pass: bool,
    /// Evidence runs of this card and candidate with a headline.
    runs: usize,
    /// The most recent of those runs (the harness improves; the latest is the current truth).
    latest_run_id: String,
    latest_geomean: f64,
}

/// The device headline of a run that is a candidate's evidence (`RunRecord::is_full_evidence`)
/// and has a finite one; None otherwise.
fn evidence_headline(r: &RunRecord) -> Option<f64> {
    r.headline
        .device_geomean
        .filter(|g| g.is_finite() && r.is_full_evidence())
}

/// Per (card, candidate), the run with the highest device headline among the runs that are a
/// candidate's evidence (`RunRecord::is_full_evidence`, a finite headline) and that `admit` lets
/// in; the earliest of equal ones. `ledger best`, `ledger lineage` and `brief` all rank through
/// it, so no run that one of them refuses can stand as another's best.
pub fn best_evidence<'a>(
    runs: impl IntoIterator<Item = &'a RunRecord>,
    admit: impl Fn(&RunRecord) -> bool,
) -> BTreeMap<(String, String), &'a RunRecord> {
    let mut by: BTreeMap<(String, String), (f64, &RunRecord)> = BTreeMap::new();
    for r in runs {
        let Some(g) = evidence_headline(r).filter(|_| admit(r)) else {
            continue;
        };
        let k = (r.device.name.clone(), r.candidate.clone());
        if by.get(&k).is_none_or(|b| g > b.0) {
            by.insert(k, (g, r));
        }
    }
    by.into_iter().map(|(k, (_, r))| (k, r)).collect()
}

/// `ledger best`'s selection: only runs of the task as it is now count (`Task::of_now`: its
/// baseline, rows and task.toml settings), on a card whose name contains `card`; of those, the
/// best evidence per card and candidate with how many evidence runs there were and the latest one.
fn best_of(
    runs: &[&RunRecord],
    of_now: &crate::task::OfNow,
    card: Option<&str>,
) -> (Vec<Best>, usize) {
    let other = runs.iter().filter(|r| !of_now.admits(r)).count();
    let admit = |r: &RunRecord| of_now.admits(r) && card.is_none_or(|c| r.device.name.contains(c));
    let top = best_evidence(runs.iter().copied(), admit);
    let all = top
        .into_iter()
        .map(|((card, candidate), b)| {
            let evidence: Vec<&&RunRecord> = runs
                .iter()
                .filter(|r| {
                    r.device.name == card
                        && r.candidate == candidate
                        && admit(r)
                        && evidence_headline(r).is_some()
                })
                .collect();
            let latest = evidence.last().copied().copied().unwrap_or(b);
            Best {
                card,
                candidate,
                run_id: b.run_id.clone(),
                time_utc: b.time_utc.clone(),
                device_geomean: evidence_headline(b).unwrap_or(f64::NAN),
                device_ci: b.headline.device_ci,
                gate_pass: b.gate.pass,
                runs: evidence.len(),
                latest_run_id: latest.run_id.clone(),
                latest_geomean: evidence_headline(latest).unwrap_or(f64::NAN),
            }
        })
        .collect();
    (all, other)
}

fn best(root: &Path, task: &str, card: Option<&str>, json: bool) -> Result<()> {
    let (_, lines) = load(root, task)?;
    // Only runs of the task as it is now count: a run against another baseline, other rows or
    // other verdict settings measured something else. task.toml's default candidate is no
    // verdict setting: a task.toml that differs from today's only in that line counts as today's.
    let now = crate::task::Task::load(&root.join("tasks"), task)?;
    let runs = run_records(&lines);
    let (all, other) = best_of(&runs, &now.of_now(runs.iter().copied()), card);
    if json {
        return json_out(&all);
    }
    for b in &all {
        crate::outln!(
            "{:<14} {:<16} {}  gate {}  run {} ({}, best of {} evidence run(s); latest {:.4}x, run {})",
            b.card,
            b.candidate,
            match b.device_ci {
                Some([lo, hi]) => format!("{:.4}x [{lo:.4}, {hi:.4}]", b.device_geomean),
                None => format!("{:.4}x", b.device_geomean),
            },
            if b.gate_pass { "PASS" } else { "FAIL" },
            b.run_id,
            b.time_utc,
            b.runs,
            b.latest_geomean,
            b.latest_run_id
        );
    }
    if all.is_empty() {
        crate::outln!("no full run with a headline that is evidence (every row, not A/A, not --quick, no deviation, every row correct, no protocol violation, worker restart or exit failure) of the current baseline, rows and task.toml in the ledger of {task}");
    }
    if other > 0 {
        crate::outln!("({other} run(s) of an earlier baseline, rows or task.toml not considered)");
    }
    Ok(())
}

pub fn run(root: &Path, cmd: &LedgerCmd) -> Result<i32> {
    match cmd {
        LedgerCmd::List { task, kind, json } => list(root, task, kind.as_deref(), *json)?,
        LedgerCmd::Show { task, run_id, json } => show(root, task, run_id, *json)?,
        LedgerCmd::Best { task, card, json } => best(root, task, card.as_deref(), *json)?,
        LedgerCmd::Lineage { task } => crate::out!("{}", lineage(root, task)?),
        LedgerCmd::Schema => crate::out!("{}", crate::record::schema_json()),
        LedgerCmd::Seal { tasks } => {
            // Every named ledger checked before any is sealed: a bad line anywhere changes nothing.
            for t in tasks {
                read_file(&ledger_path(root, t)?)?;
            }
            for t in tasks {
                crate::outln!("{}", seal(root, t)?);
            }
        }
    }
    Ok(exit::OK)
}

/// `kpilot ledger seal <task>`: `ledger::seal`, which checks every line as a record under the
/// live file's lock before it moves anything.
fn seal(root: &Path, task: &str) -> Result<String> {
    let path = ledger_path(root, task)?;
    let before = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let records = std::cell::Cell::new(0usize);
    let check = |parts: &crate::ledger::Parts| -> Result<()> {
        records.set(typed_lines(parts)?.len());
        Ok(())
    };
    Ok(match crate::ledger::seal(&path, &check)? {
        None => format!(
            "{task}: nothing to seal ({} records, all sealed)",
            records.get()
        ),
        Some((seg, n)) => {
            let after = std::fs::metadata(&seg).map(|m| m.len()).unwrap_or(0);
            format!(
                "{task}: sealed {n} records ({before} bytes) into {} ({after} bytes); {} now empty",
                rel(&seg),
                rel(&path)
            )
        }
    })
}

/// Per candidate, its best evidence run of the task as it is now (`Task::of_now`, as `ledger
/// best` admits) per card, as the tree prints it ("<card> <headline>x (<run id>)"), cards in order.
fn lineage_best<'a>(
    runs: impl IntoIterator<Item = &'a RunRecord>,
    of_now: &crate::task::OfNow,
) -> BTreeMap<String, Vec<String>> {
    let mut best: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((card, c), r) in best_evidence(runs, |r| of_now.admits(r)) {
        best.entry(c).or_default().push(format!(
            "{card} {:.4}x ({})",
            evidence_headline(r).unwrap_or(f64::NAN),
            r.run_id
        ));
    }
    best
}

/// The candidates of a task as a tree (the baseline at the root; a candidate without a parent
/// header hangs from the root too), each with its best full-run headline per card.
pub fn lineage(root: &Path, task: &str) -> Result<String> {
    let t = crate::task::Task::load(&root.join("tasks"), task)?;
    let (_, lines) = load(root, task)?;
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    for c in t.candidates() {
        let text = std::fs::read_to_string(t.candidate_path(&c)).unwrap_or_default();
        let p = crate::candidate_cmd::parent_of(&text)
            .map(|(n, _)| n)
            .unwrap_or_else(|| "baseline".into());
        parent.insert(c, p);
    }
    // Candidates recorded in the ledger whose files have left the tree (dropped versions): their
    // parent from their latest record, marked.
    let files: Vec<String> = parent.keys().cloned().collect();
    let mut gone: Vec<String> = Vec::new();
    for l in &lines {
        let Record::Run(r) = &l.record else { continue };
        if r.candidate == crate::run::AA_CANDIDATE || files.contains(&r.candidate) {
            continue;
        }
        let p = r
            .parent
            .as_deref()
            .and_then(|p| p.split_whitespace().next())
            .unwrap_or("baseline")
            .to_string();
        parent.insert(r.candidate.clone(), p);
        if !gone.contains(&r.candidate) {
            gone.push(r.candidate.clone());
        }
    }
    let runs = run_records(&lines);
    let best = lineage_best(runs.iter().copied(), &t.of_now(runs.iter().copied()));
    let mut out = format!("{task}: baseline\n");
    /// One candidate's line of the tree: its name, marks, and best runs per card.
    fn node_line(
        c: &str,
        note: &str,
        depth: usize,
        best: &BTreeMap<String, Vec<String>>,
        gone: &[String],
    ) -> String {
        let runs = best
            .get(c)
            .map(|v| v.join("; "))
            .unwrap_or_else(|| "no full run of the current baseline, rows and task.toml".into());
        let mark = if gone.iter().any(|g| g == c) {
            " (file removed)"
        } else {
            ""
        };
        format!("{}- {c}{mark}{note}: {runs}\n", "  ".repeat(depth + 1))
    }
    fn walk(
        node: &str,
        depth: usize,
        parent: &BTreeMap<String, String>,
        best: &BTreeMap<String, Vec<String>>,
        gone: &[String],
        out: &mut String,
        seen: &mut Vec<String>,
    ) {
        for (c, _) in parent.iter().filter(|(_, p)| p.as_str() == node) {
            if seen.contains(c) {
                continue;
            }
            seen.push(c.clone());
            out.push_str(&node_line(c, "", depth, best, gone));
            walk(c, depth + 1, parent, best, gone, out, seen);
        }
    }
    let mut seen = Vec::new();
    walk("baseline", 0, &parent, &best, &gone, &mut out, &mut seen);
    // Parents neither in the tree nor in the ledger: their children hang from the root, marked,
    // each with its runs and its own children.
    let orphans: Vec<(String, String)> = parent
        .iter()
        .filter(|(c, p)| !seen.contains(c) && !parent.contains_key(p.as_str()))
        .map(|(c, p)| (c.clone(), p.clone()))
        .collect();
    for (c, p) in orphans {
        if seen.contains(&c) {
            continue;
        }
        seen.push(c.clone());
        out.push_str(&node_line(
            &c,
            &format!(" (parent {p} is gone)"),
            0,
            &best,
            &gone,
        ));
        walk(&c, 1, &parent, &best, &gone, &mut out, &mut seen);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::fixture::{root_with, run, spoilers};

    /// However fast a spoiled run is, `ledger best` and `ledger lineage` take the clean, slower
    /// run of the same card and candidate; a spoiled run alone leaves the candidate without one.
    #[test]
    fn a_spoiled_run_is_never_the_best_nor_in_the_lineage_however_fast() {
        let task = "fuse_scale_shift";
        for (name, spoil) in spoilers() {
            let clean = run(task, "20260101T000001Z-clean", "v1", 1.1);
            let mut fast = run(task, "20260101T000002Z-spoiled", "v1", 2.0);
            spoil(&mut fast);
            let (d, t) = root_with(task, &[clean, fast.clone()]);
            let (_, lines) = load(d.path(), task).unwrap();
            let runs = run_records(&lines);
            let (best, other) = best_of(&runs, &t.of_now(runs.iter().copied()), None);
            assert_eq!(other, 0, "{name}: both runs are of the task as it is");
            assert_eq!(best.len(), 1, "{name}");
            let b = &best[0];
            assert_eq!(
                (
                    b.run_id.as_str(),
                    b.runs,
                    b.latest_run_id.as_str(),
                    b.device_geomean
                ),
                ("20260101T000001Z-clean", 1, "20260101T000001Z-clean", 1.1),
                "{name}"
            );
            let tree = lineage(d.path(), task).unwrap();
            assert!(
                tree.contains("- v1: NVIDIA H200 1.1000x (20260101T000001Z-clean)")
                    && !tree.contains("spoiled"),
                "{name}: {tree}"
            );
            // The spoiled run alone: nothing to show.
            let (d, t) = root_with(task, &[fast]);
            let (_, lines) = load(d.path(), task).unwrap();
            let runs = run_records(&lines);
            let (best, _) = best_of(&runs, &t.of_now(runs.iter().copied()), None);
            assert!(best.is_empty(), "{name}");
            let tree = lineage(d.path(), task).unwrap();
            assert!(
                tree.contains("- v1: no full run of the current baseline, rows and task.toml"),
                "{name}: {tree}"
            );
            // `ledger list` says why it is no evidence.
            let s = summary(&lines[0]);
            assert_eq!(s.full, Some(false), "{name}");
            assert!(!s.note.is_empty(), "{name}");
        }
    }

    /// What `ledger best`, `ledger lineage` and `brief` each take as v1's best on the H200 in a
    /// scratch root: (best's run id, lineage's tree, brief's run ids).
    fn the_three_bests(d: &Path, t: &crate::task::Task) -> (Vec<String>, String, Vec<String>) {
        let task = t.name();
        let (_, lines) = load(d, task).unwrap();
        let runs = run_records(&lines);
        let (best, _) = best_of(&runs, &t.of_now(runs.iter().copied()), None);
        let brief = crate::brief::build(d, task).unwrap();
        (
            best.into_iter().map(|b| b.run_id).collect(),
            lineage(d, task).unwrap(),
            brief.best.into_iter().map(|b| b.run_id).collect(),
        )
    }

    /// A faster run of an earlier row set, of other task.toml settings or of another baseline is
    /// never the best in `ledger best`, `ledger lineage` or `brief`: all three admit the same
    /// runs. A run whose task.toml differed only in its default-candidate line still counts.
    #[test]
    fn a_run_of_other_rows_or_settings_is_never_the_best_in_best_lineage_or_brief() {
        use crate::record::fixture::{elsewhere, root_with_edited};
        let task = "fuse_scale_shift";
        let now = "20260101T000001Z-now";
        for (name, move_it) in elsewhere() {
            let clean = run(task, now, "v1", 1.1);
            let fast = run(task, "20260101T000002Z-elsewhere", "v1", 2.0);
            let (d, t) = root_with_edited(task, &[clean, fast.clone()], |i, r, t| {
                if i == 1 {
                    move_it(r, t)
                }
            });
            let (best, tree, brief) = the_three_bests(d.path(), &t);
            assert_eq!(best, vec![now.to_string()], "{name}: ledger best");
            assert!(
                tree.contains(&format!("- v1: NVIDIA H200 1.1000x ({now})"))
                    && !tree.contains("elsewhere"),
                "{name}: lineage {tree}"
            );
            assert_eq!(brief, vec![now.to_string()], "{name}: brief");
            // That run alone: no best anywhere.
            let (d, t) = root_with_edited(task, &[fast], |_, r, t| move_it(r, t));
            let (best, tree, brief) = the_three_bests(d.path(), &t);
            assert!(best.is_empty() && brief.is_empty(), "{name}");
            assert!(
                tree.contains("- v1: no full run of the current baseline, rows and task.toml"),
                "{name}: {tree}"
            );
        }
        // task.toml then named another default candidate (v1, not today's v6): nothing the verdict
        // depends on changed, so the faster run is the best in all three.
        let clean = run(task, now, "v1", 1.1);
        let fast = run(task, "20260101T000002Z-oldcandidate", "v1", 2.0);
        let (d, t) = root_with_edited(task, &[clean, fast], |i, r, t| {
            if i == 1 {
                let shas = t.task_toml_shas_with_candidates(&["v1".to_string()]);
                assert_eq!(shas.len(), 1);
                assert_ne!(shas[0], t.hashes.task_toml, "today's default is not v1");
                r.hashes.task_toml = shas[0].clone();
            }
        });
        let (best, tree, brief) = the_three_bests(d.path(), &t);
        let want = "20260101T000002Z-oldcandidate".to_string();
        assert_eq!(best, vec![want.clone()]);
        assert!(
            tree.contains(&format!("- v1: NVIDIA H200 2.0000x ({want})")),
            "{tree}"
        );
        assert_eq!(brief, vec![want]);
    }

    #[test]
    fn best_evidence_keeps_the_first_of_equal_headlines_and_skips_aa() {
        let a = run("t", "1", "v1", 1.2);
        let b = run("t", "2", "v1", 1.2);
        let aa = run("t", "3", crate::run::AA_CANDIDATE, 5.0);
        let mut nan = run("t", "4", "v1", 1.0);
        nan.headline.device_geomean = Some(f64::NAN);
        let best = best_evidence([&a, &b, &aa, &nan], |_| true);
        assert_eq!(best.len(), 1);
        assert_eq!(best.values().next().unwrap().run_id, "1");
        assert!(best_evidence([&a], |_| false).is_empty());
    }
}
