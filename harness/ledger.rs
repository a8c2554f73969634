//! The ledger: one self-describing JSON line per run, appended to ledger/<task>.jsonl. An append
//! never rewrites or truncates what is there; a file whose last line lacks its newline (a crash
//! mid-write) gets one first, so the damaged line stays alone and every other line still parses.

use crate::error::{Error, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

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

/// Every line of a ledger that parses, with the numbers (1-based) of those that do not.
pub fn read(path: &Path) -> Result<(Vec<serde_json::Value>, Vec<usize>)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(l) {
            Ok(v) => ok.push(v),
            Err(_) => bad.push(i + 1),
        }
    }
    Ok((ok, bad))
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
}
