//! `kpilot regress [TASK...]`: the nightly job. For each task, times the anchor's candidate (and
//! the baseline, interleaved as always) on this card and compares every row with the accepted
//! anchor: the ratio of the candidate's median device time now to then, with a 95% bootstrap CI
//! (the two runs' samples resampled separately: trials of two runs are not pairs). A row is a
//! REGRESSION only when the whole CI lies beyond max(2%, 3x the row's A/A half-width) and a fresh
//! worker process re-timing that row agrees; IMPROVED likewise; else SAME. Correctness failures
//! always fail. Outputs: a markdown summary (stdout, or --markdown), JUnit XML (--junit), and one
//! `regress` record per task in its ledger.

pub mod anchor;
pub mod compare;
pub mod merge;
pub mod output;

use crate::error::{exit, Error, Result};
use crate::record::{Record, RegressRecord, RegressRow, RunRecord};
use crate::run::{self, RunOptions};
use anchor::{Anchor, AnchorRow};
use std::path::{Path, PathBuf};

/// The smallest change called a regression, whatever the A/A floor.
pub const MIN_THRESHOLD: f64 = 0.02;
/// How many A/A half-widths a change must clear.
pub const AA_FACTOR: f64 = 3.0;

pub struct RegressOptions {
    pub root: PathBuf,
    pub tasks: Vec<String>,
    /// GPUs of this host to spread rows over (one worker per GPU; a row's A/B stays on one GPU).
    pub devices: Vec<i32>,
    /// (i, n): this shard of n, 1-based.
    pub shard: Option<(usize, usize)>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    /// Append "<task> <regress record id>" lines here (what `kpilot merge` takes).
    pub ids_out: Option<PathBuf>,
}

/// Parses "i/n" (1 <= i <= n).
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::Cli(format!(
            "--shard {s}: expected i/n with 1 <= i <= n, e.g. 2/4"
        ))
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

/// The rows of shard i/n: rows sorted by their time in the anchor (longest first) and dealt to
/// the least-loaded shard (LPT), so the same anchor always gives the same, balanced split.
pub fn shard_rows(rows: &[AnchorRow], shard: Option<(usize, usize)>) -> Vec<String> {
    let Some((i, n)) = shard else {
        return rows.iter().map(|r| r.name.clone()).collect();
    };
    let mut order: Vec<&AnchorRow> = rows.iter().collect();
    order.sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then(a.name.cmp(&b.name)));
    let mut load = vec![0.0f64; n];
    let mut mine = Vec::new();
    for r in order {
        let k = (0..n)
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .expect("n >= 1");
        load[k] += r.seconds.max(0.001);
        if k == i - 1 {
            mine.push(r.name.clone());
        }
    }
    mine
}

/// A row's threshold: max(2%, 3x its A/A half-width), as a fraction.
pub fn threshold(aa_half_width: f64) -> f64 {
    MIN_THRESHOLD.max(AA_FACTOR * (aa_half_width.exp() - 1.0))
}

/// The verdict of a ratio CI (now / then) against a threshold.
pub fn verdict(lo: f64, hi: f64, thr: f64) -> &'static str {
    if lo > 1.0 + thr {
        "regression"
    } else if hi < 1.0 - thr {
        "improved"
    } else {
        "same"
    }
}

fn samples(r: &RunRecord, row: &str) -> Option<(Vec<f64>, Vec<f64>, bool)> {
    let x = r.rows.iter().find(|x| x.name == row)?;
    if x.ran && !x.correct {
        // Checked before the samples: a failed side has no timing, and it is INCORRECT, not
        // missing.
        return Some((Vec::new(), Vec::new(), false));
    }
    let d = x.candidate.as_ref()?.device_us.as_ref()?.samples.clone();
    let b = x
        .baseline
        .as_ref()
        .and_then(|b| b.device_us.as_ref())
        .map(|d| d.samples.clone())
        .unwrap_or_default();
    Some((d, b, x.correct))
}

pub(crate) fn compare_row(a: &AnchorRow, now: &RunRecord, seed: u64, floor: f64) -> RegressRow {
    let thr = threshold(a.aa_half_width).max(floor);
    let mut row = RegressRow {
        name: a.name.clone(),
        production: a.production,
        threshold: thr,
        anchor_us: crate::stats::median(&a.device_us),
        ..Default::default()
    };
    match samples(now, &a.name) {
        None => {
            row.verdict = "missing".into();
            row.detail = "the row was not timed in this run".into();
        }
        Some((_, _, false)) => {
            row.verdict = "incorrect".into();
            row.detail = now
                .rows
                .iter()
                .find(|x| x.name == a.name)
                .map(|x| x.problems.join("; "))
                .unwrap_or_default();
        }
        Some((d, b, true)) => {
            let (p, lo, hi) = crate::stats::ratio_of_medians(&a.device_us, &d, seed);
            if !(p.is_finite() && lo.is_finite() && hi.is_finite()) {
                row.verdict = "missing".into();
                row.detail = "no valid timing sample in the anchor or in this run".into();
                return row;
            }
            row.now_us = crate::stats::median(&d);
            row.ratio = p;
            row.ci = [lo, hi];
            row.verdict = verdict(lo, hi, thr).into();
            if !a.baseline_device_us.is_empty() && !b.is_empty() {
                row.baseline_ratio =
                    crate::stats::ratio_of_medians(&a.baseline_device_us, &b, seed).0;
            }
            with_the_baseline(&mut row);
        }
    }
    row
}

/// A card-wide shift smaller than this, seen on the baseline as much as on the candidate, is the
/// card (another physical GPU of the model, its clocks), not a change: on the H200s lent here,
/// small launch-bound rows of an unchanged build moved 2-2.6% together with the baseline between
/// leases (regress 20261130T210500Z..., commit 8ae48e3).
pub const CARD_SHIFT: f64 = 0.05;

/// The baseline is timed in the same run as a control. When the candidate moved with it (their
/// ratio within the row's threshold), the change is the card's: below CARD_SHIFT it is SAME, with
/// both numbers in the detail; beyond it (a driver or compiler that slows everything) the
/// verdict stands and says so.
pub fn with_the_baseline(row: &mut RegressRow) {
    let flagged = matches!(row.verdict.as_str(), "regression" | "improved");
    if !(flagged && row.baseline_ratio.is_finite() && row.baseline_ratio > 0.0) {
        return;
    }
    let relative = (row.ratio / row.baseline_ratio).ln().abs();
    if relative > (1.0 + row.threshold).ln() {
        return;
    }
    let (c, b) = (
        (row.ratio - 1.0) * 100.0,
        (row.baseline_ratio - 1.0) * 100.0,
    );
    if (row.baseline_ratio - 1.0).abs() < CARD_SHIFT {
        row.detail = format!(
            "moved with the baseline (candidate {c:+.1}%, baseline {b:+.1}%): the card, not the candidate"
        );
        row.verdict = "same".into();
    } else {
        row.detail = format!(
            "the baseline moved as much (candidate {c:+.1}%, baseline {b:+.1}%): the card, driver or compiler changed, not the candidate's code"
        );
    }
}

/// The between-run floor of a row: 1.5x the largest change an earlier regress run against the
/// same anchor measured for it, once at least three runs measured it (0 before that; the largest
/// of five or more is dropped as a possible real change). Runs of one card drift by more than
/// one run's A/A CI says (H200, small rows: up to about 2.5%).
pub fn floor(history: &[RegressRecord], row: &str) -> f64 {
    let mut seen: Vec<f64> = history
        .iter()
        .filter_map(|r| r.rows.iter().find(|x| x.name == row))
        .filter(|x| x.ratio.is_finite() && x.ratio > 0.0)
        .map(|x| x.ratio.ln().abs())
        .collect();
    if seen.len() < 3 {
        return 0.0;
    }
    seen.sort_by(|a, b| b.total_cmp(a));
    let top = if seen.len() >= 5 { seen[1] } else { seen[0] };
    (1.5 * top).exp() - 1.0
}

/// Settles a row the first run flagged with the confirming rerun: a wrong or untimed row in the
/// rerun stands (never SAME); a rerun that disagrees about the change makes the row SAME, with
/// both numbers in the detail; a rerun that agrees confirms it.
pub fn settle(r: &mut RegressRow, mut second: RegressRow, rerun_code: i32) {
    if rerun_code == exit::CORRECTNESS && second.verdict != "incorrect" {
        second.verdict = "incorrect".into();
    }
    r.rerun_verdict = Some(second.verdict.clone());
    r.rerun_ratio = Some(second.ratio);
    if matches!(second.verdict.as_str(), "incorrect" | "missing") {
        r.detail = format!(
            "the rerun found the row {}: {}",
            second.verdict, second.detail
        );
        r.verdict = second.verdict;
    } else if second.verdict != r.verdict {
        r.detail = format!(
            "first {:.4}x [{:.4}, {:.4}] said {}, the rerun {:.4}x said {}: not confirmed",
            r.ratio, r.ci[0], r.ci[1], r.verdict, second.ratio, second.verdict
        );
        r.verdict = "same".into();
    }
}

/// Times `rows` of the anchor's candidate: on one GPU, or spread over `o.devices` (rows dealt by
/// their anchored time, one worker per GPU, concurrently). Returns one record holding every
/// timed row, the run ids made, and the worst exit code.
fn run_rows(
    o: &RegressOptions,
    task: &str,
    a: &Anchor,
    rows: &[String],
) -> Result<(RunRecord, Vec<String>, i32)> {
    let opts = |device: i32, rows: Vec<String>| RunOptions {
        root: o.root.clone(),
        task: task.to_string(),
        candidate: Some(a.candidate.clone()),
        seed: None,
        trials: None,
        cache: None,
        rows,
        device,
        json: false,
        sample_units: None,
        aa: false,
        quiet: true,
        quick: false,
        row_timeout_s: None,
    };
    let devices = if o.devices.is_empty() {
        vec![0]
    } else {
        o.devices.clone()
    };
    if devices.len() == 1 {
        let (r, code) = run::execute(&opts(devices[0], rows.to_vec()))?;
        let id = r.run_id.clone();
        return Ok((r, vec![id], code));
    }
    let mine: Vec<AnchorRow> = a
        .rows
        .iter()
        .filter(|r| rows.contains(&r.name))
        .cloned()
        .collect();
    let n = devices.len();
    let parts: Vec<(i32, Vec<String>)> = devices
        .iter()
        .enumerate()
        .map(|(k, &d)| (d, shard_rows(&mine, Some((k + 1, n)))))
        .filter(|(_, r)| !r.is_empty())
        .collect();
    let results: Vec<Result<(RunRecord, i32)>> = std::thread::scope(|s| {
        let hs: Vec<_> = parts
            .iter()
            .map(|(d, r)| {
                let o = opts(*d, r.clone());
                s.spawn(move || run::execute(&o))
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal("a device thread panicked".into())))
            })
            .collect()
    });
    let mut merged: Option<RunRecord> = None;
    let (mut ids, mut code) = (Vec::new(), exit::OK);
    for r in results {
        let (rec, c) = r?;
        ids.push(rec.run_id.clone());
        code = code.max(c);
        match merged.as_mut() {
            None => merged = Some(rec),
            // Every record lists every row of the task; take each device's timed ones.
            Some(m) => {
                for row in rec.rows.into_iter().filter(|r| r.ran) {
                    match m.rows.iter_mut().find(|x| x.name == row.name) {
                        Some(x) => *x = row,
                        None => m.rows.push(row),
                    }
                }
            }
        }
    }
    Ok((merged.expect("at least one device ran rows"), ids, code))
}

/// One task's regress; None when there is no anchor for this card.
fn regress_task(o: &RegressOptions, task: &str, card: &str) -> Result<RegressRecord> {
    let t = crate::task::Task::load(&o.root.join("tasks"), task)?;
    let mut rec = RegressRecord {
        schema: crate::ledger::SCHEMA,
        note: String::new(),
        run_id: String::new(),
        time_utc: crate::ledger::utc_now(),
        task: task.to_string(),
        card: card.to_string(),
        shard: o.shard.map(|(i, n)| format!("{i}/{n}")),
        devices: o.devices.clone(),
        anchor_run_id: None,
        candidate: None,
        run_ids: Vec::new(),
        rerun_ids: Vec::new(),
        status: String::new(),
        rows: Vec::new(),
        git: crate::judge::git_info(&o.root),
    };
    let Some(a) = anchor::load(&o.root, card, task)? else {
        rec.status = "no_anchor".into();
        rec.note = format!(
            "no anchor for {card}: {} does not exist (kpilot accept {task} --run <id> --reason ...)",
            anchor::path(&o.root, card, task).display()
        );
        return Ok(rec);
    };
    rec.anchor_run_id = Some(a.run_id.clone());
    rec.candidate = Some(a.candidate.clone());
    if a.rows_sha256 != t.hashes.rows || a.baseline_sha256 != t.hashes.baseline {
        rec.status = "stale_anchor".into();
        rec.note = format!(
            "the anchor {} was accepted with other rows or another baseline than the task has now: accept a new run",
            a.run_id
        );
        return Ok(rec);
    }
    let cand_now = std::fs::read(t.candidate_path(&a.candidate))
        .map(|b| crate::task::sha256_hex(&b))
        .unwrap_or_default();
    if cand_now != a.candidate_sha256 {
        rec.note = format!(
            "candidates/{}.cu changed since the anchor was accepted (sha256 {}... then, {}... now): a change below is the candidate's",
            a.candidate,
            &a.candidate_sha256[..12.min(a.candidate_sha256.len())],
            &cand_now[..12.min(cand_now.len())]
        );
    } else if let Some(changed) = anchor::changed_files(&o.root, &a.candidate_files) {
        rec.note = format!(
            "{changed} changed since the anchor was accepted (the candidate's build reads it): a change below is the candidate's"
        );
    }
    let rows = shard_rows(&a.rows, o.shard);
    if rows.is_empty() {
        rec.status = "ok".into();
        rec.note = "this shard holds no row".into();
        return Ok(rec);
    }
    let seed = run::fresh_seed();
    // Earlier regress runs against this anchor: how far an unchanged candidate moves between
    // runs on this card (the A/A floor is within one run only).
    let history: Vec<RegressRecord> = merge::regress_records(&o.root, task)?
        .into_iter()
        .filter(|r| r.anchor_run_id.as_deref() == Some(a.run_id.as_str()) && r.card == card)
        .collect();
    let (first, ids, code) = run_rows(o, task, &a, &rows)?;
    rec.run_ids.extend(ids);
    let mut out: Vec<RegressRow> = a
        .rows
        .iter()
        .filter(|r| rows.contains(&r.name))
        .map(|r| compare_row(r, &first, seed, floor(&history, &r.name)))
        .collect();
    // A change is only called after a fresh worker process, timing just those rows again, agrees.
    let flagged: Vec<String> = out
        .iter()
        .filter(|r| r.verdict == "regression" || r.verdict == "improved")
        .map(|r| r.name.clone())
        .collect();
    if !flagged.is_empty() {
        let (again, ids, again_code) = run_rows(o, task, &a, &flagged)?;
        rec.rerun_ids.extend(ids);
        for r in out.iter_mut().filter(|r| flagged.contains(&r.name)) {
            let ar = a
                .rows
                .iter()
                .find(|x| x.name == r.name)
                .expect("anchor row");
            let second = compare_row(ar, &again, seed ^ 0x5EED, floor(&history, &ar.name));
            settle(r, second, again_code);
        }
    }
    let worst = if code == exit::CORRECTNESS || out.iter().any(|r| r.verdict == "incorrect") {
        "incorrect"
    } else if out.iter().any(|r| r.verdict == "missing") {
        "missing"
    } else if out.iter().any(|r| r.verdict == "regression") {
        "regression"
    } else {
        "ok"
    };
    rec.status = worst.into();
    rec.rows = std::mem::take(&mut out);
    Ok(rec)
}

pub fn run(o: &RegressOptions) -> Result<i32> {
    let tasks = if o.tasks.is_empty() {
        crate::task::names(&o.root)?
    } else {
        o.tasks.clone()
    };
    for t in &tasks {
        // Every named task is checked before the GPU is touched.
        let task = crate::task::Task::load(&o.root.join("tasks"), t)?;
        crate::freeze::verify(&task)?;
    }
    let devices = if o.devices.is_empty() {
        vec![0]
    } else {
        o.devices.clone()
    };
    for (i, d) in devices.iter().enumerate() {
        if *d < 0 || devices[..i].contains(d) {
            return Err(Error::Cli(format!(
                "--devices {}: GPU ordinals are >= 0 and each named once (two workers on one GPU would time each other)",
                devices.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")
            )));
        }
    }
    // The outputs must be writable before any GPU time is spent (and before a record is made
    // whose verdict a failed write would then hide).
    for p in [&o.junit, &o.markdown, &o.ids_out].into_iter().flatten() {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| Error::Cli(format!("{} cannot be written: {e}", p.display())))?;
    }
    run::probe_arch(devices[0])?;
    let card = crate::gpu::Gpu::open(devices[0])?.info.name.clone();
    for &d in &devices[1..] {
        let other = crate::gpu::Gpu::open(d)?.info.name.clone();
        if other != card {
            return Err(Error::Cli(format!(
                "--devices: GPU {d} is a {other}, GPU {} a {card}: an anchor is per card model, so spread rows only over GPUs of one model",
                devices[0]
            )));
        }
    }
    let mut records = Vec::new();
    for t in &tasks {
        let mut rec = regress_task(o, t, &card)?;
        rec.run_id = format!(
            "{}-{:08x}",
            rec.time_utc.replace([':', '-'], ""),
            (crate::inputs::mix64(run::fresh_seed()) >> 32) as u32
        );
        crate::ledger::append(
            &o.root.join("ledger").join(format!("{t}.jsonl")),
            &Record::Regress(Box::new(rec.clone())),
        )?;
        records.push(rec);
    }
    let md = output::markdown(&records);
    if let Some(p) = &o.markdown {
        write(p, &md)?;
    }
    if let Some(p) = &o.junit {
        write(p, &output::junit(&records))?;
    }
    if let Some(p) = &o.ids_out {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| Error::io(format!("cannot open {}", p.display()), e))?;
        for r in &records {
            writeln!(f, "{} {}", r.task, r.run_id)
                .map_err(|e| Error::io(format!("cannot write {}", p.display()), e))?;
        }
    }
    // Printed last, after every file is written, and a reader that went away loses only the
    // print: the exit code is the verdict's.
    crate::out!("{md}");
    Ok(exit_code(&records))
}

fn write(p: &Path, text: &str) -> Result<()> {
    std::fs::write(p, text).map_err(|e| Error::io(format!("cannot write {}", p.display()), e))
}

/// 2 a correctness failure or a crash, 1 a confirmed regression, 3 a task without an anchor for
/// this card (or a stale one, or rows missing), 0 otherwise.
pub fn exit_code(records: &[RegressRecord]) -> i32 {
    let any = |s: &str| records.iter().any(|r| r.status == s);
    if any("incorrect") {
        exit::CORRECTNESS
    } else if any("regression") {
        exit::PERF_GATE
    } else if any("no_anchor") || any("stale_anchor") || any("missing") {
        exit::INPUT
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, secs: f64) -> AnchorRow {
        AnchorRow {
            name: name.into(),
            production: true,
            device_us: vec![1.0],
            eager_us: vec![1.0],
            baseline_device_us: vec![],
            aa_half_width: 0.0,
            seconds: secs,
        }
    }

    #[test]
    fn shards_cover_every_row_once_and_balance_time() {
        let rows: Vec<AnchorRow> = (0..17)
            .map(|i| row(&format!("r{i}"), (i * 7 % 11) as f64 + 0.5))
            .collect();
        let mut seen = Vec::new();
        let mut loads = Vec::new();
        for i in 1..=3 {
            let s = shard_rows(&rows, Some((i, 3)));
            loads.push(
                s.iter()
                    .map(|n| rows.iter().find(|r| &r.name == n).unwrap().seconds)
                    .sum::<f64>(),
            );
            seen.extend(s);
        }
        seen.sort();
        let mut all: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
        all.sort();
        assert_eq!(seen, all, "every row in exactly one shard");
        let (mx, mn) = (
            loads.iter().cloned().fold(0.0, f64::max),
            loads.iter().cloned().fold(f64::MAX, f64::min),
        );
        assert!(mx - mn <= 11.0, "{loads:?}");
        assert_eq!(
            shard_rows(&rows, Some((2, 3))),
            shard_rows(&rows, Some((2, 3)))
        );
        assert_eq!(shard_rows(&rows, None).len(), 17);
    }

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!(parse_shard("2/4").unwrap(), (2, 4));
        for bad in ["0/4", "5/4", "1/0", "x", "1/x"] {
            assert!(matches!(parse_shard(bad), Err(Error::Cli(_))), "{bad}");
        }
    }

    #[test]
    fn a_flagged_row_stands_only_if_the_rerun_agrees_and_a_wrong_rerun_is_never_same() {
        let row = |v: &str, ratio: f64| RegressRow {
            name: "r".into(),
            verdict: v.into(),
            ratio,
            ci: [ratio - 0.01, ratio + 0.01],
            ..Default::default()
        };
        let mut r = row("regression", 1.10);
        settle(&mut r, row("regression", 1.09), exit::PERF_GATE);
        assert_eq!(r.verdict, "regression");
        let mut r = row("regression", 1.10);
        settle(&mut r, row("same", 1.005), exit::OK);
        assert_eq!(r.verdict, "same");
        assert!(r.detail.contains("not confirmed"));
        let mut r = row("regression", 1.10);
        settle(&mut r, row("incorrect", f64::NAN), exit::CORRECTNESS);
        assert_eq!(r.verdict, "incorrect");
        // A rerun whose run failed a correctness gate on another row still counts as wrong.
        let mut r = row("improved", 0.9);
        settle(&mut r, row("same", 1.0), exit::CORRECTNESS);
        assert_eq!(r.verdict, "incorrect");
        let mut r = row("regression", 1.10);
        settle(&mut r, row("missing", f64::NAN), exit::OK);
        assert_eq!(r.verdict, "missing");
    }

    #[test]
    fn the_between_run_floor_needs_three_runs_and_drops_one_outlier_of_five() {
        let rec = |ratio: f64| RegressRecord {
            schema: 1,
            run_id: String::new(),
            time_utc: String::new(),
            task: String::new(),
            card: String::new(),
            shard: None,
            devices: vec![],
            anchor_run_id: None,
            candidate: None,
            run_ids: vec![],
            rerun_ids: vec![],
            status: "ok".into(),
            note: String::new(),
            rows: vec![RegressRow {
                name: "r".into(),
                ratio,
                ..Default::default()
            }],
            git: crate::record::GitInfo {
                commit: None,
                dirty: None,
                changed: None,
                source: String::new(),
                kpilot_sha256: None,
            },
        };
        assert_eq!(floor(&[rec(0.98), rec(1.01)], "r"), 0.0);
        let f = floor(&[rec(0.98), rec(1.01), rec(0.99)], "r");
        assert!(
            (f - ((1.5 * (1.0f64 / 0.98).ln()).exp() - 1.0)).abs() < 1e-12,
            "{f}"
        );
        let five = [rec(0.98), rec(1.01), rec(0.99), rec(1.0), rec(1.2)];
        assert!(floor(&five, "r") < 0.04, "the outlier is dropped");
        assert_eq!(floor(&five, "other"), 0.0);
    }

    #[test]
    fn a_change_shared_with_the_baseline_is_the_cards_unless_it_is_large() {
        let row = |ratio: f64, base: f64| RegressRow {
            name: "r".into(),
            verdict: verdict(ratio - 0.002, ratio + 0.002, 0.02).into(),
            ratio,
            baseline_ratio: base,
            threshold: 0.02,
            ..Default::default()
        };
        // Measured on the H200: both sides 2.3% faster on another lease.
        let mut r = row(0.9773, 0.9770);
        assert_eq!(r.verdict, "improved");
        with_the_baseline(&mut r);
        assert_eq!(r.verdict, "same");
        assert!(r.detail.contains("the card, not the candidate"));
        // The candidate alone slowed down: a regression.
        let mut r = row(1.10, 1.0);
        with_the_baseline(&mut r);
        assert_eq!(r.verdict, "regression");
        // Everything 10% slower (a driver): the regression stands, and says why.
        let mut r = row(1.10, 1.10);
        with_the_baseline(&mut r);
        assert_eq!(r.verdict, "regression");
        assert!(r.detail.contains("driver or compiler"));
        // No baseline samples: nothing to compare with.
        let mut r = row(1.10, f64::NAN);
        with_the_baseline(&mut r);
        assert_eq!(r.verdict, "regression");
    }

    #[test]
    fn the_threshold_is_2_percent_or_three_aa_half_widths() {
        assert_eq!(threshold(0.0), 0.02);
        assert!((threshold(0.01) - 3.0 * (0.01f64.exp() - 1.0)).abs() < 1e-12);
        assert_eq!(verdict(1.05, 1.07, 0.02), "regression");
        assert_eq!(verdict(1.01, 1.07, 0.02), "same");
        assert_eq!(verdict(0.90, 0.97, 0.02), "improved");
    }
}
