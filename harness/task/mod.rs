//! Loading and validating a task folder: task.toml, the rows, the sources. Every problem is
//! reported with file, line and reason before anything runs.

pub mod rows;
pub mod spec;

use crate::dtype::DType;
use crate::error::{line_of, Error, Result};
use crate::inputs::Dist;
use crate::reference;
use rows::{RawRow, RowKind, RowsFile};
use sha2::{Digest, Sha256};
use spec::{Role, TaskSpec, Tolerance};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

pub const MAX_RANK: usize = crate::abi::KP_MAX_RANK as usize;

/// One tensor of one row, fully resolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorDesc {
    pub name: String,
    pub role: Role,
    pub dtype: DType,
    pub shape: Vec<i64>,
    pub stride: Vec<i64>,
    pub dist: Option<Dist>,
}

impl TensorDesc {
    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|&s| s as u64).product()
    }
    /// Elements of backing storage the view reaches: 1 + sum((size-1)*stride), or 0 when empty.
    pub fn storage_elems(&self) -> u64 {
        if self.shape.contains(&0) {
            return 0;
        }
        1 + self
            .shape
            .iter()
            .zip(&self.stride)
            .map(|(&n, &s)| (n as u64 - 1) * s as u64)
            .sum::<u64>()
    }
    /// Distinct elements the view addresses (broadcast dims with stride 0 count once).
    pub fn distinct_elems(&self) -> u64 {
        self.shape
            .iter()
            .zip(&self.stride)
            .map(|(&n, &s)| if s == 0 { 1 } else { n as u64 })
            .product()
    }
    pub fn is_contiguous(&self) -> bool {
        self.stride == contiguous_strides(&self.shape)
            || self
                .shape
                .iter()
                .zip(&self.stride)
                .zip(contiguous_strides(&self.shape))
                .all(|((&n, &s), c)| n == 1 || s == c)
    }
    /// Storage offset of a multi-index.
    #[inline]
    pub fn offset(&self, idx: &[i64]) -> u64 {
        idx.iter()
            .zip(&self.stride)
            .map(|(&i, &s)| (i * s) as u64)
            .sum()
    }
}

pub fn contiguous_strides(shape: &[i64]) -> Vec<i64> {
    let mut s = vec![1i64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        // Saturates instead of wrapping: `checked_size` then refuses the row with the numbers.
        s[d] = s[d + 1].saturating_mul(shape[d + 1].max(1));
    }
    s
}

/// The most storage one row may ask for, in bytes (all tensors together): far beyond any GPU
/// of today, and small enough that no size arithmetic on it can overflow.
pub const MAX_ROW_BYTES: u64 = 1 << 40;

/// The watchdog a row may have, in seconds (task.toml's timing.row_timeout_s and `--row-timeout`):
/// at least a second, so a worker generating a large row's inputs has time to report; at most a
/// day, far beyond any row and far below what a `Duration` holds.
pub const ROW_TIMEOUT_RANGE_S: std::ops::RangeInclusive<f64> = 1.0..=86_400.0;

/// Elements, storage elements and storage bytes of a view, with every step checked: a shape or
/// stride whose arithmetic overflows 64 bits is an error with the numbers, never a wrapped size.
pub fn checked_size(t: &TensorDesc) -> std::result::Result<(u64, u64, u64), String> {
    let mut numel: u64 = 1;
    for &n in &t.shape {
        numel = numel.checked_mul(n as u64).ok_or_else(|| {
            format!(
                "tensor '{}': shape {:?} has more than 2^64 elements",
                t.name, t.shape
            )
        })?;
    }
    let storage = if numel == 0 {
        0
    } else {
        let mut last: u64 = 0;
        for (&n, &st) in t.shape.iter().zip(&t.stride) {
            let reach = (n as u64 - 1).checked_mul(st as u64);
            last = reach.and_then(|r| last.checked_add(r)).ok_or_else(|| {
                format!(
                    "tensor '{}': shape {:?} with stride {:?} reaches past 2^64 elements",
                    t.name, t.shape, t.stride
                )
            })?;
        }
        last + 1
    };
    let bytes = storage
        .checked_mul(t.dtype.size() as u64)
        .filter(|&b| b <= MAX_ROW_BYTES)
        .ok_or_else(|| {
            format!(
                "tensor '{}': shape {:?} with stride {:?} needs {storage} elements of {} ({} bytes), more than the {} GiB kpilot allows a row",
                t.name,
                t.shape,
                t.stride,
                t.dtype.name(),
                (storage as u128) * t.dtype.size() as u128,
                MAX_ROW_BYTES >> 30
            )
        })?;
    Ok((numel, storage, bytes))
}

#[derive(Debug, Clone)]
pub struct Row {
    pub index: usize,
    pub name: String,
    pub entry: usize,
    pub kind: RowKind,
    pub model: Option<String>,
    pub source: Option<String>,
    pub duplicate_of: Option<String>,
    /// In the entry's declared order; None = an absent optional tensor.
    pub tensors: Vec<Option<TensorDesc>>,
    /// In the entry's declared order.
    pub scalars: Vec<f64>,
    pub line: usize,
    /// Compulsory DRAM bytes: each input read once at its distinct size, each output written once.
    pub bytes: u64,
}

impl Row {
    pub fn tensor(&self, name: &str) -> Option<&TensorDesc> {
        self.tensors.iter().flatten().find(|t| t.name == name)
    }
    pub fn runs(&self) -> bool {
        self.duplicate_of.is_none()
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Hashes {
    pub task_toml: String,
    pub rows: String,
    pub baseline: String,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub dir: PathBuf,
    pub spec: TaskSpec,
    pub rows: Vec<Row>,
    pub rows_path: PathBuf,
    pub baseline_path: PathBuf,
    pub hashes: Hashes,
}

impl Task {
    /// The sha256 task.toml would have if its `[task] candidate = "..."` line named each of
    /// `names` instead: the one line of task.toml that is no verdict setting, so a run recorded
    /// before the default candidate changed still measured the task as it is. Empty when
    /// task.toml cannot be read or has no such line.
    pub fn task_toml_shas_with_candidates(&self, names: &[String]) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(self.dir.join("task.toml")) else {
            return Vec::new();
        };
        let current = format!("candidate = \"{}\"", self.spec.task.candidate);
        // The line itself, whole: at the start of the file or after a newline, ending in one.
        let at = if text.starts_with(&format!("{current}\n")) {
            Some(0)
        } else {
            text.find(&format!("\n{current}\n")).map(|i| i + 1)
        };
        let Some(at) = at else {
            return Vec::new();
        };
        let (before, after) = text.split_at(at);
        let rest = &after[current.len()..];
        names
            .iter()
            .map(|n| sha256_hex(format!("{before}candidate = \"{n}\"{rest}").as_bytes()))
            .collect()
    }

    /// The task.toml hashes that count as today's settings: today's own, and today's with the
    /// default candidate line naming any of `runs`' candidates or the candidates in the tree
    /// (see `task_toml_shas_with_candidates`).
    pub fn same_settings<'a>(
        &self,
        runs: impl IntoIterator<Item = &'a crate::record::RunRecord>,
    ) -> std::collections::BTreeSet<String> {
        let mut names: std::collections::BTreeSet<String> =
            runs.into_iter().map(|r| r.candidate.clone()).collect();
        names.extend(self.candidates());
        let names: Vec<String> = names.into_iter().collect();
        std::iter::once(self.hashes.task_toml.clone())
            .chain(self.task_toml_shas_with_candidates(&names))
            .collect()
    }

    /// Which recorded runs measured this task as it is now (see `OfNow`), judged against `runs`
    /// (their candidates widen `same_settings`).
    pub fn of_now<'a>(
        &self,
        runs: impl IntoIterator<Item = &'a crate::record::RunRecord>,
    ) -> OfNow {
        OfNow {
            baseline: self.hashes.baseline.clone(),
            rows: self.hashes.rows.clone(),
            task_toml: self.hashes.task_toml.clone(),
            settings: self.same_settings(runs),
        }
    }
}

/// The one test of whether a recorded run measured the task as it is now: the same baseline, the
/// same rows and the same task.toml settings (`Task::same_settings`: a task.toml that differs from
/// today's only in its default-candidate line counts as today's). A run of an earlier baseline,
/// row set, tolerance, gate or timing measured something else: `ledger best`, `ledger lineage`,
/// `brief` and `accept` all ask this, so none of them shows or pins a run another refuses.
#[derive(Debug, Clone)]
pub struct OfNow {
    baseline: String,
    rows: String,
    task_toml: String,
    settings: std::collections::BTreeSet<String>,
}

/// The first way a run is not of the task as it is now: the record's field, the run's hash and
/// today's.
#[derive(Debug, Clone, PartialEq)]
pub struct NotNow {
    pub field: &'static str,
    pub run: String,
    pub now: String,
}

impl OfNow {
    pub fn admits(&self, r: &crate::record::RunRecord) -> bool {
        self.why_not(r).is_none()
    }

    /// None when the run is of the task as it is now; else the first hash that differs.
    pub fn why_not(&self, r: &crate::record::RunRecord) -> Option<NotNow> {
        let differ = |field: &'static str, run: &str, now: &str| NotNow {
            field,
            run: run.to_string(),
            now: now.to_string(),
        };
        if r.hashes.baseline != self.baseline {
            return Some(differ(
                "hashes.baseline",
                &r.hashes.baseline,
                &self.baseline,
            ));
        }
        if r.hashes.rows != self.rows {
            return Some(differ("hashes.rows", &r.hashes.rows, &self.rows));
        }
        if !self.settings.contains(&r.hashes.task_toml) {
            return Some(differ(
                "hashes.task_toml",
                &r.hashes.task_toml,
                &self.task_toml,
            ));
        }
        None
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A task file that is missing or unreadable is bad input naming the file (exit 3).
fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))
}

impl Task {
    /// Loads `<tasks_root>/<name>`.
    pub fn load(tasks_root: &Path, name: &str) -> Result<Task> {
        let dir = tasks_root.join(name);
        let toml_path = dir.join("task.toml");
        if !toml_path.exists() {
            let known: Vec<String> = std::fs::read_dir(tasks_root)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.path().join("task.toml").exists())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            return Err(Error::Cli(format!(
                "no task '{name}': {} does not exist (tasks here: {})",
                toml_path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        Self::load_dir(&dir)
    }

    pub fn load_dir(dir: &Path) -> Result<Task> {
        let toml_path = dir.join("task.toml");
        let text = read(&toml_path)?;
        let spec: TaskSpec = toml::from_str(&text).map_err(|e| toml_error(&toml_path, &text, e))?;
        validate_spec(&spec, &toml_path, &text)?;
        let rows_path = dir.join(&spec.task.rows);
        let rows_text = std::fs::read_to_string(&rows_path).map_err(|e| {
            Error::input(
                &toml_path,
                line_of_key(&text, "rows"),
                format!("the rows file {} cannot be read: {e}", rows_path.display()),
            )
        })?;
        let rows_file: RowsFile =
            toml::from_str(&rows_text).map_err(|e| toml_error(&rows_path, &rows_text, e))?;
        let rows = resolve_rows(&spec, rows_file, &rows_path, &rows_text)?;
        let baseline_path = dir.join(&spec.task.baseline);
        let baseline = std::fs::read(&baseline_path).map_err(|e| {
            Error::input(
                &toml_path,
                line_of_key(&text, "baseline"),
                format!(
                    "the baseline {} cannot be read: {e}",
                    baseline_path.display()
                ),
            )
        })?;
        let hashes = Hashes {
            task_toml: sha256_hex(text.as_bytes()),
            rows: sha256_hex(rows_text.as_bytes()),
            baseline: sha256_hex(&baseline),
        };
        Ok(Task {
            dir: dir.to_path_buf(),
            spec,
            rows,
            rows_path,
            baseline_path,
            hashes,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.task.name
    }

    pub fn candidate_path(&self, name: &str) -> PathBuf {
        self.dir.join("candidates").join(format!("{name}.cu"))
    }

    pub fn candidates(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.join("candidates"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .strip_suffix(".cu")
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The tolerance of `dtype`, under whichever of its names task.toml used (`bf16` or
    /// `bfloat16`, ...); validation refuses two names for one dtype.
    pub fn tolerance(&self, dtype: DType) -> Option<Tolerance> {
        self.spec
            .tolerance
            .iter()
            .find(|(k, _)| DType::parse(k) == Some(dtype))
            .map(|(_, t)| *t)
    }
}

fn toml_error(path: &Path, text: &str, e: toml::de::Error) -> Error {
    let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
    Error::input(path, line, e.message().to_string())
}

/// Line of the first occurrence of `needle` in `text`, for errors about keys serde accepted.
fn line_of_key(text: &str, needle: &str) -> usize {
    text.find(needle).map(|o| line_of(text, o)).unwrap_or(1)
}

fn validate_spec(spec: &TaskSpec, path: &Path, text: &str) -> Result<()> {
    let err = |needle: &str, msg: String| Err(Error::input(path, line_of_key(text, needle), msg));
    if spec.entries.is_empty() {
        return err("[task]", "a task needs at least one [[entry]]".into());
    }
    for (k, tol) in &spec.tolerance {
        let Some(d) = DType::parse(k) else {
            return err(
                &format!("[tolerance.{k}]"),
                format!("tolerance for unknown dtype '{k}' (use bf16, fp16, fp32, i32, i64)"),
            );
        };
        if let Some(other) = spec
            .tolerance
            .keys()
            .find(|o| *o != k && DType::parse(o) == Some(d))
        {
            return err(
                &format!("[tolerance.{k}]"),
                format!(
                    "[tolerance.{k}] and [tolerance.{other}] both name {}: keep one",
                    d.name()
                ),
            );
        }
        if !(tol.atol >= 0.0 && tol.rtol >= 0.0) {
            return err(
                &format!("[tolerance.{k}]"),
                format!("tolerance.{k}: atol and rtol must be >= 0"),
            );
        }
    }
    if spec.timing.trials < 7 {
        return err(
            "trials",
            format!(
                "timing.trials = {} but at least 7 trials are required",
                spec.timing.trials
            ),
        );
    }
    if spec.timing.min_sample_ms.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return err("min_sample_ms", "timing.min_sample_ms must be > 0".into());
    }
    if spec.timing.cache != "cold" && spec.timing.cache != "warm" {
        return err(
            "cache",
            format!(
                "timing.cache = '{}': use \"cold\" or \"warm\"",
                spec.timing.cache
            ),
        );
    }
    if !ROW_TIMEOUT_RANGE_S.contains(&spec.timing.row_timeout_s) {
        return err(
            "row_timeout_s",
            format!(
                "timing.row_timeout_s = {}: use {} to {} seconds",
                spec.timing.row_timeout_s,
                ROW_TIMEOUT_RANGE_S.start(),
                ROW_TIMEOUT_RANGE_S.end()
            ),
        );
    }
    if spec.timing.sample_units == 0 {
        return err(
            "sample_units",
            "timing.sample_units must be at least 1 (every buffer set is compared after every timed sample)".into(),
        );
    }
    for f in &spec.build.flags {
        let banned = [
            "-o",
            "--output-file",
            "-shared",
            "--shared",
            "-arch",
            "--gpu-architecture",
            "-gencode",
            "--generate-code",
            "-code",
        ];
        if banned
            .iter()
            .any(|b| f == b || f.starts_with(&format!("{b}=")))
        {
            return err(f, format!("build.flags may not contain '{f}': the harness sets output, linking and architecture itself"));
        }
    }
    if spec.build.arch != "native" && !spec.build.arch.starts_with("sm_") {
        return err(
            "arch",
            format!(
                "build.arch = '{}': use \"native\" or an explicit sm_XX",
                spec.build.arch
            ),
        );
    }
    let mut names = HashSet::new();
    for e in &spec.entries {
        if !names.insert(&e.name) {
            return err(
                &format!("name = \"{}\"", e.name),
                format!("entry '{}' is declared twice", e.name),
            );
        }
        if reference::lookup(&e.reference).is_none() {
            return err(
                &format!("reference = \"{}\"", e.reference),
                format!(
                    "entry '{}': unknown reference '{}' (known: {})",
                    e.name,
                    e.reference,
                    reference::names().join(", ")
                ),
            );
        }
        if e.tensors.len() > crate::abi::KP_MAX_TENSORS as usize {
            return err(
                &format!("name = \"{}\"", e.name),
                format!(
                    "entry '{}' declares {} tensors; the ABI carries at most {}",
                    e.name,
                    e.tensors.len(),
                    crate::abi::KP_MAX_TENSORS
                ),
            );
        }
        if e.scalars.len() > crate::abi::KP_MAX_SCALARS as usize {
            return err(
                &format!("name = \"{}\"", e.name),
                format!(
                    "entry '{}' declares {} scalars; the ABI carries at most {}",
                    e.name,
                    e.scalars.len(),
                    crate::abi::KP_MAX_SCALARS
                ),
            );
        }
        let mut tnames = HashSet::new();
        for t in &e.tensors {
            if !tnames.insert(&t.name) {
                return err(
                    &format!("name = \"{}\"", t.name),
                    format!("entry '{}': tensor '{}' declared twice", e.name, t.name),
                );
            }
            if let Some(d) = &t.dist {
                if let Err(m) = Dist::parse(d) {
                    return err(d, format!("entry '{}', tensor '{}': {m}", e.name, t.name));
                }
            }
            if t.role == Role::Output && t.dist.is_some() {
                return err(
                    &format!("name = \"{}\"", t.name),
                    format!(
                        "entry '{}': output '{}' takes no dist (outputs are poisoned, not filled)",
                        e.name, t.name
                    ),
                );
            }
            if t.role != Role::Output && t.dist.is_none() {
                return err(
                    &format!("name = \"{}\"", t.name),
                    format!("entry '{}': tensor '{}' needs a dist", e.name, t.name),
                );
            }
            if let Some(l) = &t.like {
                if !e.tensors.iter().any(|o| &o.name == l) {
                    return err(
                        &format!("like = \"{l}\""),
                        format!(
                            "entry '{}': '{}' is like '{l}', which is not declared",
                            e.name, t.name
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}

fn resolve_rows(spec: &TaskSpec, file: RowsFile, path: &Path, text: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, spanned) in file.rows.into_iter().enumerate() {
        let line = line_of(text, spanned.span().start);
        let raw = spanned.into_inner();
        let row = resolve_row(spec, raw, index, line, path, text)?;
        if let Some(first) = seen.insert(row.name.clone(), line) {
            return Err(Error::input(
                path,
                line,
                format!(
                    "row '{}' has the same name as the row at line {first}",
                    row.name
                ),
            ));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(Error::input(path, 1, "the rows file has no [[row]]"));
    }
    for r in &rows {
        if let Some(d) = &r.duplicate_of {
            let Some(orig) = rows.iter().find(|o| &o.name == d) else {
                return Err(Error::input(
                    path,
                    r.line,
                    format!(
                        "row '{}': duplicate_of names '{d}', which is no row",
                        r.name
                    ),
                ));
            };
            if orig.duplicate_of.is_some()
                || orig.entry != r.entry
                || signature(orig) != signature(r)
                || orig.scalars != r.scalars
            {
                return Err(Error::input(path, r.line, format!("row '{}': duplicate_of '{d}', but the two signatures differ (or that row is itself a duplicate)", r.name)));
            }
        }
    }
    Ok(rows)
}

/// What a call computes on: dtypes, shapes and the strides that matter (those of size-1 dims
/// are arbitrary in captures and do not change the call).
/// One tensor's part of a call signature: dtype, shape, strides that matter.
type TensorSig = (DType, Vec<i64>, Vec<i64>);

fn signature(r: &Row) -> Vec<Option<TensorSig>> {
    r.tensors
        .iter()
        .map(|t| {
            t.as_ref().map(|t| {
                (
                    t.dtype,
                    t.shape.clone(),
                    t.shape
                        .iter()
                        .zip(&t.stride)
                        .map(|(&n, &s)| if n == 1 { 0 } else { s })
                        .collect(),
                )
            })
        })
        .collect()
}

fn resolve_row(
    spec: &TaskSpec,
    raw: RawRow,
    index: usize,
    line: usize,
    path: &Path,
    text: &str,
) -> Result<Row> {
    let name = raw.name.clone();
    let at = |l: usize, msg: String| Error::input(path, l, format!("row '{name}': {msg}"));
    let Some(entry) = spec.entries.iter().position(|e| e.name == raw.entry) else {
        let known: Vec<&str> = spec.entries.iter().map(|e| e.name.as_str()).collect();
        return Err(at(
            line,
            format!(
                "entry '{}' is not declared in task.toml (entries: {})",
                raw.entry,
                known.join(", ")
            ),
        ));
    };
    let decl = &spec.entries[entry];
    for k in raw.tensors.keys() {
        if !decl.tensors.iter().any(|t| &t.name == k) {
            return Err(at(
                line,
                format!("tensor '{k}' is not a tensor of entry '{}'", decl.name),
            ));
        }
    }
    for k in raw.scalars.keys() {
        if !decl.scalars.contains(k) {
            return Err(at(
                line,
                format!(
                    "scalar '{k}' is not a scalar of entry '{}' (scalars: {})",
                    decl.name,
                    decl.scalars.join(", ")
                ),
            ));
        }
    }
    let mut scalars = Vec::new();
    for s in &decl.scalars {
        match raw.scalars.get(s) {
            Some(v) if v.is_finite() => scalars.push(*v),
            Some(v) => return Err(at(line, format!("scalar '{s}' = {v} is not finite"))),
            None => return Err(at(line, format!("scalar '{s}' is missing"))),
        }
    }
    // Inputs first, so outputs can be `like` them.
    let mut resolved: Vec<Option<TensorDesc>> = vec![None; decl.tensors.len()];
    let mut pending_like = Vec::new();
    for (i, t) in decl.tensors.iter().enumerate() {
        match raw.tensors.get(&t.name) {
            Some(sp) => {
                let tl = line_of(text, sp.span().start);
                let rt = sp.get_ref();
                let dtype = DType::parse(&rt.dtype).ok_or_else(|| {
                    at(
                        tl,
                        format!(
                            "tensor '{}': unknown dtype '{}' (bf16, fp16, fp32, i32, i64)",
                            t.name, rt.dtype
                        ),
                    )
                })?;
                if rt.shape.len() > MAX_RANK {
                    return Err(at(
                        tl,
                        format!(
                            "tensor '{}': rank {} exceeds the ABI's {MAX_RANK}",
                            t.name,
                            rt.shape.len()
                        ),
                    ));
                }
                if let Some(bad) = rt.shape.iter().find(|&&n| n < 0) {
                    return Err(at(
                        tl,
                        format!(
                            "tensor '{}': negative size {bad} in shape {:?}",
                            t.name, rt.shape
                        ),
                    ));
                }
                let stride = match &rt.stride {
                    Some(s) if s.len() != rt.shape.len() => {
                        return Err(at(
                            tl,
                            format!(
                                "tensor '{}': stride has {} entries but shape has {}",
                                t.name,
                                s.len(),
                                rt.shape.len()
                            ),
                        ))
                    }
                    Some(s) if s.iter().any(|&x| x < 0) => {
                        return Err(at(
                            tl,
                            format!("tensor '{}': negative stride in {s:?}", t.name),
                        ))
                    }
                    Some(s) => s.clone(),
                    None => contiguous_strides(&rt.shape),
                };
                let dist_text = rt.dist.as_ref().or(t.dist.as_ref());
                let dist = match (t.role, dist_text) {
                    (Role::Output, Some(_)) if rt.dist.is_some() => {
                        return Err(at(tl, format!("output '{}' takes no dist", t.name)))
                    }
                    (Role::Output, _) => None,
                    (_, Some(d)) => {
                        let dist = Dist::parse(d)
                            .map_err(|m| at(tl, format!("tensor '{}': {m}", t.name)))?;
                        dist.check_fits(dtype)
                            .map_err(|m| at(tl, format!("tensor '{}': {m}", t.name)))?;
                        Some(dist)
                    }
                    (_, None) => return Err(at(tl, format!("tensor '{}' has no dist", t.name))),
                };
                let desc = TensorDesc {
                    name: t.name.clone(),
                    role: t.role,
                    dtype,
                    shape: rt.shape.clone(),
                    stride,
                    dist,
                };
                checked_size(&desc).map_err(|m| at(tl, m))?;
                if t.role != Role::Input && !desc.is_contiguous() && raw.kind != RowKind::Rejection
                {
                    return Err(at(tl, format!("{} '{}' must be contiguous (guard bands and checks assume a dense buffer)", if t.role == Role::Output { "output" } else { "in-place tensor" }, t.name)));
                }
                resolved[i] = Some(desc);
            }
            None if t.like.is_some() => pending_like.push(i),
            None if t.optional => {}
            None => {
                return Err(at(
                    line,
                    format!("tensor '{}' is missing (it is not optional)", t.name),
                ))
            }
        }
    }
    for i in pending_like {
        let t = &decl.tensors[i];
        let like = t
            .like
            .as_ref()
            .expect("pending_like only holds tensors with `like`");
        let Some(src) = decl
            .tensors
            .iter()
            .position(|o| &o.name == like)
            .and_then(|j| resolved[j].clone())
        else {
            return Err(at(
                line,
                format!(
                    "output '{}' is like '{like}', which this row does not give",
                    t.name
                ),
            ));
        };
        resolved[i] = Some(TensorDesc {
            name: t.name.clone(),
            role: t.role,
            dtype: src.dtype,
            stride: contiguous_strides(&src.shape),
            shape: src.shape,
            dist: None,
        });
    }
    let mut row = Row {
        index,
        name: raw.name,
        entry,
        kind: raw.kind,
        model: raw.model,
        source: raw.source,
        duplicate_of: raw.duplicate_of,
        tensors: resolved,
        scalars,
        line,
        bytes: 0,
    };
    let total: u64 = row
        .tensors
        .iter()
        .flatten()
        .map(|t| checked_size(t).map(|(_, _, b)| b).unwrap_or(MAX_ROW_BYTES))
        .sum();
    if total > MAX_ROW_BYTES {
        return Err(at(
            line,
            format!(
                "the row's tensors need {total} bytes ({} GiB) in all, more than the {} GiB kpilot allows a row",
                total >> 30,
                MAX_ROW_BYTES >> 30
            ),
        ));
    }
    let reference = reference::lookup(&decl.reference).expect("checked in validate_spec");
    row.bytes = row
        .tensors
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.as_ref().map(|t| (i, t)))
        .map(|(i, t)| match t.role {
            Role::Input if row.kind != RowKind::Rejection => reference
                .gathered_bytes(&row, i)
                .unwrap_or(t.distinct_elems() * t.dtype.size() as u64),
            Role::Input => t.distinct_elems() * t.dtype.size() as u64,
            Role::Output => t.numel() * t.dtype.size() as u64,
            Role::Inout => 2 * t.numel() * t.dtype.size() as u64,
        })
        .sum();
    if let Some(b) = raw.bytes_min.filter(|&b| b != row.bytes) {
        return Err(at(line, format!("bytes_min = {b} but the tensors move {} bytes (inputs read once at their distinct size, outputs written once)", row.bytes)));
    }
    if row.kind == RowKind::Rejection && row.duplicate_of.is_some() {
        return Err(at(line, "a rejection row cannot be a duplicate_of".into()));
    }
    if row.kind != RowKind::Rejection {
        reference.validate(&row).map_err(|m| at(line, m))?;
    }
    Ok(row)
}

/// The tasks under <root>/tasks (folders holding a task.toml), sorted.
pub fn names(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("tasks");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| {
            Error::Usage(format!(
                "cannot list {} ({e}): run kpilot from the repository root or pass --root",
                dir.display()
            ))
        })?
        .flatten()
        .filter(|e| e.path().join("task.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}
