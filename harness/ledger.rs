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

/// The temporary file a seal writes in the archive folder before linking it into place.
const SEAL_TMP: &str = ".seal.tmp";

/// An advisory lock (flock) on a ledger's live file, held while the file stays open: appends and
/// seals take it exclusive, readers shared, so a seal never empties a record appended meanwhile
/// and a reader never sees a seal half done. Where the filesystem has no flock (ENOLCK,
/// EOPNOTSUPP, ENOSYS), `may_skip` goes on unlocked (an append must not lose a finished run's
/// record); a seal may not, and says why. On cluster filesystems a lock may be per node.
fn flock(f: &std::fs::File, exclusive: bool, path: &Path, may_skip: bool) -> Result<()> {
    use std::os::unix::io::AsRawFd;
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    loop {
        // SAFETY: flock on a descriptor this File owns and keeps open.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::ENOSYS) if may_skip => return Ok(()),
            Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::ENOSYS) => {
                return Err(Error::Environment(format!(
                    "cannot lock {} ({e}): this filesystem has no flock, and a seal without one could empty a record a run appends meanwhile; seal in a checkout on a local filesystem",
                    path.display()
                )))
            }
            _ => return Err(Error::io(format!("cannot lock {}", path.display()), e)),
        }
    }
}

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
    flock(&f, true, path, true)?;
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
/// naming its segment and line (`seal` takes only lines that parse). No ledger at all: nothing.
pub fn read(path: &Path) -> Result<(Vec<serde_json::Value>, Vec<usize>)> {
    let parts = load(path)?;
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
    live.parent()
        .unwrap_or(Path::new("."))
        .join("archive")
        .join(stem(live))
}

fn stem(live: &Path) -> &str {
    live.file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.strip_suffix(".jsonl").unwrap_or(n))
        .unwrap_or("ledger")
}

/// The sealed segments of a ledger, oldest first: exactly 0001.jsonl.gz .. NNNN.jsonl.gz. Anything
/// else in the archive folder, or a number missing, is an error naming it: a stray file is not
/// silently evidence, and a lost segment is not silently no evidence.
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
        if name == SEAL_TMP {
            continue; // a seal's temporary file, never a segment (see `seal`)
        }
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
    for (i, (n, _)) in out.iter().enumerate() {
        let want = i as u32 + 1;
        if *n != want {
            return Err(Error::input(
                &dir,
                0,
                format!(
                    "sealed segment {want:04}.jsonl.gz is missing (found {}): a ledger's segments run 0001 to N without a gap; restore it from git",
                    out.iter().map(|(n, _)| format!("{n:04}")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    Ok(out)
}

fn gunzip(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let mut text = String::new();
    // Every gzip member, and an error on anything after the last (a plain GzDecoder would stop
    // at the first member's end).
    flate2::read::MultiGzDecoder::new(f)
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

/// The live file's bytes as text; bytes that are not UTF-8 are an input error naming their line.
fn live_text(bytes: Vec<u8>, live: &Path) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::input(
            live,
            line,
            format!("not UTF-8 text (byte {at} of the file)"),
        )
    })
}

/// Segments and live file read under the caller's lock: a seal cut short after its segment was
/// in place but before the live file was emptied leaves the live file starting with exactly the
/// text of the last segment(s) it sealed; that copy is skipped (the next seal drops it), so no
/// record is read twice. The match is the longest run of trailing segments the live file starts
/// with; every segment ends with a newline, so a match ends on a line.
fn load_locked(live: &Path, live_bytes: Option<Vec<u8>>) -> Result<Parts> {
    let mut parts = Vec::new();
    for (_, p) in segments(live)? {
        let text = gunzip(&p)?;
        parts.push(Part {
            path: p,
            text,
            first_line: 1,
        });
    }
    if let Some(bytes) = live_bytes {
        let mut text = live_text(bytes, live)?;
        // The longest run of trailing segments k..N the live text starts with, ending on a line.
        let mut copy = 0usize;
        let mut total = 0usize;
        for k in (0..parts.len()).rev() {
            total += parts[k].text.len();
            if total > text.len() {
                break;
            }
            let mut off = 0usize;
            let same = parts[k..].iter().all(|p| {
                let n = p.text.len();
                let eq = text.as_bytes()[off..off + n] == *p.text.as_bytes();
                off += n;
                eq
            });
            if same && total > 0 && text.as_bytes()[total - 1] == b'\n' {
                copy = total;
            }
        }
        let first_line = 1 + text[..copy].lines().count();
        text.drain(..copy);
        parts.push(Part {
            path: live.to_path_buf(),
            text,
            first_line,
        });
    }
    Ok(Parts(parts))
}

/// A ledger's parts: each sealed segment decompressed, then the live file, read under a shared
/// lock on the live file (a seal in progress is waited for). Empty when neither exists.
pub fn load(live: &Path) -> Result<Parts> {
    match std::fs::File::open(live) {
        Ok(mut f) => {
            flock(&f, false, live, true)?;
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)
                .map_err(|e| Error::io(format!("cannot read {}", live.display()), e))?;
            load_locked(live, Some(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => load_locked(live, None),
        Err(e) => Err(Error::io(format!("cannot read {}", live.display()), e)),
    }
}

/// Copies a ledger as stored (its sealed segments and its live file) to another live path: a
/// scratch root sees the same records, read the same way.
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    let dir = archive_dir(to);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    for (_, p) in segments(from)? {
        let dst = dir.join(p.file_name().unwrap_or_default());
        std::fs::copy(&p, &dst)
            .map_err(|e| Error::io(format!("cannot copy {}", p.display()), e))?;
    }
    if from.exists() {
        std::fs::copy(from, to)
            .map_err(|e| Error::io(format!("cannot copy {}", from.display()), e))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    match std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        // Filesystems that cannot fsync a folder: as durable as they get.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => Ok(()),
        Err(e) => Err(Error::io(format!("cannot sync {}", dir.display()), e)),
    }
}

/// Moves every line of the live file into a new sealed segment and empties the live file, all
/// under an exclusive lock on the live file (appends wait; no record lands between the read and
/// the emptying). `check` sees the ledger as it will be sealed and may refuse (nothing changes).
/// A live file whose last line lacks its newline gets one first, so the segment is an exact copy
/// of the live file's bytes. The segment is written to `archive/<task>/.seal.tmp` (a name
/// `segments` skips), synced, read back and compared byte for byte, then linked into place as the
/// next number (never over an existing segment) and the folder synced; the live file is emptied
/// last. Returns the segment and its number of lines; None when there was nothing to seal.
/// `check` must not open the ledger itself (`load`): its shared lock would wait on this exclusive
/// one forever.
pub fn seal(live: &Path, check: &dyn Fn(&Parts) -> Result<()>) -> Result<Option<(PathBuf, usize)>> {
    let io =
        |what: &str, p: &Path, e: std::io::Error| Error::io(format!("{what} {}", p.display()), e);
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(live)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // No live file: nothing to seal, but what is sealed is still checked.
            check(&load_locked(live, None)?)?;
            return Ok(None);
        }
        Err(e) => return Err(io("cannot open", live, e)),
    };
    flock(&f, true, live, false)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(|e| io("cannot read", live, e))?;
    let torn = !bytes.is_empty() && !bytes.ends_with(b"\n");
    let parts = load_locked(live, Some(bytes))?;
    check(&parts)?;
    let tail = parts.0.last().filter(|p| p.path == live);
    let (mut text, copy) = match tail {
        Some(p) => (p.text.clone(), p.first_line > 1),
        None => (String::new(), false),
    };
    if text.trim().is_empty() {
        // Nothing new; a copy left by a seal cut short is dropped.
        if copy || !text.is_empty() {
            f.set_len(0)
                .and_then(|_| f.sync_all())
                .map_err(|e| io("cannot empty", live, e))?;
        }
        return Ok(None);
    }
    if torn {
        f.write_all(b"\n")
            .and_then(|_| f.sync_all())
            .map_err(|e| io("cannot append to", live, e))?;
        text.push('\n');
    }
    // The parts are the segments, then this live file.
    let next = parts.0.iter().filter(|p| p.path != live).count() as u32 + 1;
    if next > 9999 {
        return Err(Error::Usage(format!(
            "{} already holds 9999 segments",
            archive_dir(live).display()
        )));
    }
    let dir = archive_dir(live);
    std::fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
    if next == 1 {
        // The new folders' entries, down to ledger/, are durable before anything points at them.
        for d in [dir.parent(), dir.parent().and_then(Path::parent)]
            .into_iter()
            .flatten()
        {
            sync_dir(d)?;
        }
    }
    let path = dir.join(format!("{next:04}.jsonl.gz"));
    // In the archive folder (the link below never crosses filesystems). A name left by a seal cut
    // short after its link is still a link to that segment: unlinked first, never opened, so
    // the segment it names is never truncated through it.
    let tmp = dir.join(SEAL_TMP);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("cannot remove", &tmp, e)),
    }
    {
        let t = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io("cannot create", &tmp, e))?;
        let mut z = flate2::write::GzEncoder::new(t, flate2::Compression::best());
        z.write_all(text.as_bytes())
            .map_err(|e| io("cannot write", &tmp, e))?;
        let t = z.finish().map_err(|e| io("cannot write", &tmp, e))?;
        t.sync_all().map_err(|e| io("cannot sync", &tmp, e))?;
    }
    if gunzip(&tmp)? != text {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Internal(format!(
            "{} did not read back as the lines sealed into it; nothing was changed",
            tmp.display()
        )));
    }
    // A hard link fails where the name exists: an existing segment is never replaced.
    std::fs::hard_link(&tmp, &path).map_err(|e| io("cannot link into place", &path, e))?;
    std::fs::remove_file(&tmp).map_err(|e| io("cannot remove", &tmp, e))?;
    sync_dir(&dir)?;
    f.set_len(0)
        .and_then(|_| f.sync_all())
        .map_err(|e| io("cannot empty", live, e))?;
    Ok(Some((
        path,
        text.lines().filter(|l| !l.trim().is_empty()).count(),
    )))
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

    fn ns(p: &Path) -> Vec<i64> {
        values(p).iter().map(|v| v["n"].as_i64().unwrap()).collect()
    }

    fn seal_all(p: &Path) -> Option<(PathBuf, usize)> {
        seal(p, &|_| Ok(())).unwrap()
    }

    fn put(p: &Path, n: i64) {
        append(p, &serde_json::json!({ "n": n })).unwrap();
    }

    #[test]
    fn sealed_segments_read_before_the_live_file_and_appends_go_on_after_a_seal() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ledger/t.jsonl");
        for i in 0..3 {
            put(&p, i);
        }
        let (seg, n) = seal_all(&p).unwrap();
        assert_eq!(n, 3);
        assert_eq!(seg, d.path().join("ledger/archive/t/0001.jsonl.gz"));
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            0,
            "the live file is emptied"
        );
        assert!(!d.path().join("ledger/archive/t/.seal.tmp").exists());
        put(&p, 3);
        assert!(seal_all(&p).is_some());
        put(&p, 4);
        assert_eq!(ns(&p), vec![0, 1, 2, 3, 4]);
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
        seal_all(&p);
        assert!(seal_all(&p).is_none());
        assert_eq!(segments(&p).unwrap().len(), 3);
        // A refusing check changes nothing.
        put(&p, 5);
        let before = std::fs::read(&p).unwrap();
        let e = seal(&p, &|_| Err(Error::Usage("no".into()))).err().unwrap();
        assert!(e.to_string().contains("no"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), before);
        assert_eq!(segments(&p).unwrap().len(), 3);
        // No ledger at all: nothing, not an error.
        assert!(read(&d.path().join("ledger/none.jsonl"))
            .unwrap()
            .0
            .is_empty());
    }

    /// The state a seal cut short between linking its segment and emptying the live file leaves.
    fn crash_after_link(p: &Path) {
        let mut kept = std::fs::read(p).unwrap();
        // A torn last line got its newline (synced) before the segment was written.
        if !kept.is_empty() && !kept.ends_with(b"\n") {
            kept.push(b'\n');
        }
        seal_all(p).unwrap();
        std::fs::write(p, kept).unwrap();
    }

    #[test]
    fn a_seal_cut_short_before_the_live_file_was_emptied_reads_each_record_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.jsonl");
        put(&p, 0);
        put(&p, 1);
        crash_after_link(&p);
        put(&p, 2);
        assert_eq!(ns(&p), vec![0, 1, 2]);
        // The live line after the copy keeps its own line number (3) in the file.
        let parts = load(&p).unwrap();
        assert_eq!(parts.lines().last().map(|(_, n, _)| n), Some(3));
        // Cut short again: the live file holds copies of both segments, then one more record.
        crash_after_link(&p);
        put(&p, 3);
        assert_eq!(ns(&p), vec![0, 1, 2, 3]);
        // The next seal takes only the new record.
        assert_eq!(seal_all(&p).unwrap().1, 1);
        assert_eq!(ns(&p), vec![0, 1, 2, 3]);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
    }

    /// A scratch ledger whose record 0 is sealed into 0001.
    fn sealed_once() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.jsonl");
        put(&p, 0);
        seal_all(&p);
        (d, p)
    }

    #[test]
    fn a_seal_cut_short_after_its_link_but_before_its_unlink_never_rewrites_that_segment() {
        let (_d, p) = sealed_once();
        // The crash: the temporary name is still a link to segment 0001.
        let dir = archive_dir(&p);
        std::fs::hard_link(dir.join("0001.jsonl.gz"), dir.join(SEAL_TMP)).unwrap();
        assert_eq!(ns(&p), vec![0], "readers skip the temporary name");
        put(&p, 1);
        seal_all(&p);
        assert_eq!(ns(&p), vec![0, 1]);
        assert_eq!(gunzip(&dir.join("0001.jsonl.gz")).unwrap(), "{\"n\":0}\n");
        assert!(!dir.join(SEAL_TMP).exists());
    }

    #[test]
    fn a_torn_last_line_is_sealed_with_its_newline_and_a_cut_short_seal_of_it_is_still_seen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.jsonl");
        put(&p, 0);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"n\": 1}")
            .unwrap();
        crash_after_link(&p);
        // The seal gave the live file its newline first, so the copy is exact.
        assert_eq!(ns(&p), vec![0, 1]);
        put(&p, 2);
        assert_eq!(ns(&p), vec![0, 1, 2]);
    }

    #[test]
    fn appends_during_seals_are_never_lost() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.jsonl");
        let big = "x".repeat(4096);
        for i in 0..300 {
            append(&p, &serde_json::json!({ "n": i, "pad": big })).unwrap();
        }
        let q = p.clone();
        let writer = std::thread::spawn(move || {
            for i in 300..500 {
                append(&q, &serde_json::json!({ "n": i })).unwrap();
            }
        });
        while !writer.is_finished() {
            seal_all(&p);
        }
        writer.join().unwrap();
        seal_all(&p);
        assert_eq!(ns(&p), (0..500).collect::<Vec<i64>>());
    }

    #[test]
    fn a_stray_missing_or_damaged_segment_is_an_error_naming_it() {
        let (_d, p) = sealed_once();
        put(&p, 1);
        seal_all(&p);
        let stray = archive_dir(&p).join("notes.txt");
        std::fs::write(&stray, "x").unwrap();
        let e = load(&p).err().unwrap().to_string();
        assert!(
            e.contains("notes.txt") && e.contains("NNNN.jsonl.gz"),
            "{e}"
        );
        std::fs::remove_file(&stray).unwrap();
        // A lost segment.
        let first = archive_dir(&p).join("0001.jsonl.gz");
        let kept = std::fs::read(&first).unwrap();
        std::fs::remove_file(&first).unwrap();
        let e = load(&p).err().unwrap().to_string();
        assert!(e.contains("0001.jsonl.gz is missing"), "{e}");
        std::fs::write(&first, &kept).unwrap();
        // A truncated one.
        std::fs::write(&first, &kept[..kept.len() / 2]).unwrap();
        let e = read(&p).err().unwrap().to_string();
        assert!(e.contains("0001.jsonl.gz"), "{e}");
        // A second gzip member is read, not dropped; garbage after the last is an error.
        let gz = |b: &[u8]| {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(b).unwrap();
            z.finish().unwrap()
        };
        let mut two = gz(b"{\"n\": 0}\n");
        two.extend(gz(b"{\"n\": 10}\n"));
        std::fs::write(&first, &two).unwrap();
        assert_eq!(ns(&p), vec![0, 10, 1]);
        two.extend_from_slice(b"junk");
        std::fs::write(&first, &two).unwrap();
        assert!(read(&p).is_err());
        // A sealed line that is not JSON is named by segment and line.
        std::fs::write(&first, gz(b"{\"n\": 0}\n{\"torn\": \n")).unwrap();
        let e = read(&p).err().unwrap().to_string();
        assert!(e.contains("0001.jsonl.gz:2:"), "{e}");
        // A live file that is not UTF-8 names its line.
        std::fs::write(&first, &kept).unwrap();
        std::fs::write(&p, b"{\"n\": 2}\n\xff\n").unwrap();
        let e = load(&p).err().unwrap();
        assert_eq!(e.exit_code(), crate::error::exit::INPUT);
        assert!(e.to_string().contains("t.jsonl:2:"), "{e}");
    }
}
