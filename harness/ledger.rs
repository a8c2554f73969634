//! The ledger: one self-describing JSON line per run, appended to ledger/<task>.jsonl. An append
//! never rewrites or truncates what is there; a file whose last line lacks its newline (a crash
//! mid-write) gets one first, so the damaged line stays alone and every other line still parses.
//!
//! A ledger is stored in parts: sealed segments `ledger/archive/<task>/NNNN.jsonl.gz` (gzip, the
//! oldest first; `kpilot ledger seal` writes them), then the live `ledger/<task>.jsonl` that every
//! record is appended to. Readers see one ledger, the segments' lines before the live file's: a
//! task's per-row records run to 0.2-0.5 MB a run, and gzip keeps a fifth of that.

use crate::error::{Error, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const SCHEMA: u32 = 1;

pub fn append<T: serde::Serialize + ?Sized>(path: &Path, record: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    let line = serde_json::to_string(record)
        .map_err(|e| Error::Internal(format!("ledger record: {e}")))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
        .len();
    let mut buf = String::new();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        if last[0] != b'\n' {
            buf.push('\n');
        }
    }
    buf.push_str(&line);
    buf.push('\n');
    f.write_all(buf.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(format!("cannot append to {}", path.display()), e))
}

/// Every line of a ledger (sealed segments, then the live file) that parses, with the numbers
/// (1-based) of the live file's lines that do not; a sealed line that does not parse is an error
/// naming its segment and line (`seal` takes only lines that parse).
pub fn read(path: &Path) -> Result<(Vec<serde_json::Value>, Vec<usize>)> {
    let parts = load(path)?;
    if parts.0.is_empty() {
        return Err(Error::io(
            format!("cannot read {}", path.display()),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (file, n, l) in parts.lines() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(l) {
            Ok(v) => ok.push(v),
            Err(e) if file != path => {
                return Err(Error::input(
                    file,
                    n,
                    format!("a sealed ledger line that does not parse: {e}"),
                ))
            }
            Err(_) => bad.push(n),
        }
    }
    Ok((ok, bad))
}

/// One stored part of a ledger: a sealed segment or the live file, with the number of its first
/// line in that file (above 1 only where a seal was cut short: see `load`).
pub struct Part {
    pub path: PathBuf,
    pub text: String,
    pub first_line: usize,
}

/// A ledger's parts in order: its sealed segments, then the live file. Empty when neither exists.
#[derive(Default)]
pub struct Parts(pub Vec<Part>);

impl Parts {
    /// Every line in ledger order: (file, 1-based line in that file, text).
    pub fn lines(&self) -> impl Iterator<Item = (&Path, usize, &str)> {
        self.0.iter().flat_map(|p| {
            p.text
                .lines()
                .enumerate()
                .map(move |(i, l)| (p.path.as_path(), p.first_line + i, l))
        })
    }

    /// The whole ledger as one text, for readers that report no line numbers.
    pub fn joined(&self) -> String {
        let mut s = String::new();
        for p in &self.0 {
            s.push_str(&p.text);
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
        }
        s
    }
}

/// Where the sealed segments of the ledger whose live file is `live` are:
/// `ledger/archive/<task>/` beside `ledger/<task>.jsonl`.
pub fn archive_dir(live: &Path) -> PathBuf {
    let stem = live
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.strip_suffix(".jsonl").unwrap_or(n))
        .unwrap_or("ledger");
    live.parent()
        .unwrap_or(Path::new("."))
        .join("archive")
        .join(stem)
}

/// The sealed segments of a ledger, oldest first (by their 4-digit number). Anything else in the
/// archive folder is an error naming it: a stray file is not silently part of the evidence.
pub fn segments(live: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let dir = archive_dir(live);
    let entries = match std::fs::read_dir(&dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        let name = e.file_name();
        let n = name
            .to_str()
            .and_then(|n| n.strip_suffix(".jsonl.gz"))
            .filter(|n| n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u32>().ok());
        match n {
            Some(n) => out.push((n, e.path())),
            None => {
                return Err(Error::input(
                    e.path(),
                    0,
                    "not a sealed ledger segment (NNNN.jsonl.gz, written by `kpilot ledger seal`): move it out of the archive folder",
                ))
            }
        }
    }
    out.sort();
    Ok(out)
}

fn gunzip(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut text)
        .map_err(|e| {
            Error::input(
                path,
                0,
                format!("not a readable gzip of UTF-8 ledger lines: {e}"),
            )
        })?;
    Ok(text)
}

/// A ledger's parts: each sealed segment decompressed, then the live file. A seal cut short after
/// its segment was in place but before the live file was emptied leaves the live file starting
/// with exactly the segment's text; that copy is skipped here (and dropped by the next seal), so no
/// record is read twice.
pub fn load(live: &Path) -> Result<Parts> {
    let mut parts = Vec::new();
    for (_, p) in segments(live)? {
        let text = gunzip(&p)?;
        parts.push(Part {
            path: p,
            text,
            first_line: 1,
        });
    }
    match std::fs::read_to_string(live) {
        Ok(mut text) => {
            let mut first_line = 1;
            if let Some(last) = parts.last().filter(|p| !p.text.is_empty()) {
                if text.starts_with(&last.text) {
                    first_line += last.text.lines().count();
                    text = text.split_off(last.text.len());
                }
            }
            parts.push(Part {
                path: live.to_path_buf(),
                text,
                first_line,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("cannot read {}", live.display()), e)),
    }
    Ok(Parts(parts))
}

/// Moves every line of the live file into a new sealed segment and empties the live file. The
/// caller has checked that every line is a record. The segment is written under a temporary name,
/// synced, read back and compared byte for byte, and only then renamed into place; the live file is
/// emptied last. Returns the segment and its number of lines; None when there was nothing to seal.
pub fn seal(live: &Path) -> Result<Option<(PathBuf, usize)>> {
    let parts = load(live)?;
    let Some(tail) = parts.0.last().filter(|p| p.path == live) else {
        return Ok(None);
    };
    let mut text = tail.text.clone();
    if text.trim().is_empty() {
        // Nothing new; a copy left by a seal cut short is dropped.
        if tail.first_line > 1 {
            truncate(live)?;
        }
        return Ok(None);
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let next = segments(live)?.last().map(|(n, _)| n + 1).unwrap_or(1);
    if next > 9999 {
        return Err(Error::Usage(format!(
            "{} already holds 9999 segments",
            archive_dir(live).display()
        )));
    }
    let dir = archive_dir(live);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let path = dir.join(format!("{next:04}.jsonl.gz"));
    let tmp = dir.join(format!(".{next:04}.jsonl.gz.tmp"));
    let io =
        |what: &str, p: &Path, e: std::io::Error| Error::io(format!("{what} {}", p.display()), e);
    {
        let f = std::fs::File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
        let mut z = flate2::write::GzEncoder::new(f, flate2::Compression::best());
        z.write_all(text.as_bytes())
            .map_err(|e| io("cannot write", &tmp, e))?;
        let f = z.finish().map_err(|e| io("cannot write", &tmp, e))?;
        f.sync_all().map_err(|e| io("cannot sync", &tmp, e))?;
    }
    if gunzip(&tmp)? != text {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Internal(format!(
            "{} did not read back as the lines sealed into it; nothing was changed",
            tmp.display()
        )));
    }
    std::fs::rename(&tmp, &path).map_err(|e| io("cannot rename into", &path, e))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    truncate(live)?;
    Ok(Some((path, text.lines().count())))
}

fn truncate(live: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(live)
        .and_then(|f| {
            f.set_len(0)?;
            f.sync_all()
        })
        .map_err(|e| Error::io(format!("cannot empty {}", live.display()), e))
}

/// UTC time as RFC 3339, without a date-time dependency (civil-from-days, H. Hinnant).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_795_823_999), "2026-11-27T23:59:59Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn append_keeps_every_earlier_line_even_after_a_torn_write() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l/t.jsonl");
        append(&p, &serde_json::json!({"a": 1})).unwrap();
        // A crash left half a line without its newline.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"half\": ")
            .unwrap();
        append(&p, &serde_json::json!({"b": 2})).unwrap();
        let (ok, bad) = read(&p).unwrap();
        assert_eq!(
            ok,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]
        );
        assert_eq!(bad, vec![2]);
    }

    fn values(p: &Path) -> Vec<serde_json::Value> {
        read(p).unwrap().0
    }

    #[test]
    fn sealed_segments_read_before_the_live_file_and_appends_go_on_after_a_seal() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ledger/t.jsonl");
        for i in 0..3 {
            append(&p, &serde_json::json!({ "n": i })).unwrap();
        }
        let (seg, n) = seal(&p).unwrap().unwrap();
        assert_eq!(n, 3);
        assert_eq!(seg, d.path().join("ledger/archive/t/0001.jsonl.gz"));
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            0,
            "the live file is emptied"
        );
        append(&p, &serde_json::json!({ "n": 3 })).unwrap();
        assert!(seal(&p).unwrap().is_some());
        append(&p, &serde_json::json!({ "n": 4 })).unwrap();
        let got: Vec<i64> = values(&p)
            .iter()
            .map(|v| v["n"].as_i64().unwrap())
            .collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        // Line numbers name the file each line is in.
        let parts = load(&p).unwrap();
        let at: Vec<(String, usize)> = parts
            .lines()
            .map(|(f, n, _)| (f.file_name().unwrap().to_string_lossy().into_owned(), n))
            .collect();
        assert_eq!(
            at,
            [
                ("0001.jsonl.gz", 1),
                ("0001.jsonl.gz", 2),
                ("0001.jsonl.gz", 3),
                ("0002.jsonl.gz", 1),
                ("t.jsonl", 1)
            ]
            .map(|(f, n)| (f.to_string(), n))
        );
        assert_eq!(parts.joined().lines().count(), 5);
        // Nothing new: nothing sealed, no empty segment.
        seal(&p).unwrap();
        assert!(seal(&p).unwrap().is_none());
        assert_eq!(segments(&p).unwrap().len(), 3);
    }

    #[test]
    fn a_seal_cut_short_before_the_live_file_was_emptied_reads_each_record_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.jsonl");
        append(&p, &serde_json::json!({ "n": 0 })).unwrap();
        append(&p, &serde_json::json!({ "n": 1 })).unwrap();
        let kept = std::fs::read(&p).unwrap();
        seal(&p).unwrap();
        // The crash: the segment is in place, the live file still holds its lines; one more run
        // appended after the restart.
        std::fs::write(&p, &kept).unwrap();
        append(&p, &serde_json::json!({ "n": 2 })).unwrap();
        let got: Vec<i64> = values(&p)
            .iter()
            .map(|v| v["n"].as_i64().unwrap())
            .collect();
        assert_eq!(got, vec![0, 1, 2]);
        // The live line after the copy keeps its own line number (3) in the file.
        let parts = load(&p).unwrap();
        assert_eq!(parts.lines().last().map(|(_, n, _)| n), Some(3));
        // The next seal takes only the new record.
        assert_eq!(seal(&p).unwrap().unwrap().1, 1);
        let got: Vec<i64> = values(&p)
            .iter()
            .map(|v| v["n"].as_i64().unwrap())
            .collect();
        assert_eq!(got, vec![0, 1, 2]);
    }

    #[test]
    fn a_stray_or_damaged_segment_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.jsonl");
        append(&p, &serde_json::json!({ "n": 0 })).unwrap();
        seal(&p).unwrap();
        let stray = archive_dir(&p).join("notes.txt");
        std::fs::write(&stray, "x").unwrap();
        let e = load(&p).err().unwrap().to_string();
        assert!(
            e.contains("notes.txt") && e.contains("NNNN.jsonl.gz"),
            "{e}"
        );
        std::fs::remove_file(&stray).unwrap();
        let seg = archive_dir(&p).join("0001.jsonl.gz");
        let mut z = std::fs::read(&seg).unwrap();
        z.truncate(z.len() / 2);
        std::fs::write(&seg, z).unwrap();
        let e = read(&p).err().unwrap().to_string();
        assert!(e.contains("0001.jsonl.gz"), "{e}");
        // A sealed line that is not JSON is named by segment and line.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"{\"n\": 0}\n{\"torn\": \n").unwrap();
        std::fs::write(&seg, enc.finish().unwrap()).unwrap();
        let e = read(&p).err().unwrap().to_string();
        assert!(e.contains("0001.jsonl.gz:2:"), "{e}");
    }
}
