//! `kpilot candidate new <task> <name> --from <baseline|candidate>`: a new candidate file from an
//! existing implementation, renamed, with a header naming its parent (file and sha256), never
//! overwriting one that exists.

use crate::error::{Error, Result};
use crate::task::{sha256_hex, Task};
use std::path::{Path, PathBuf};

/// The header line `new` writes; `parent_of` reads it back.
pub const PARENT_TAG: &str = "// kpilot-parent:";

pub fn new(root: &Path, task: &str, name: &str, from: &str) -> Result<PathBuf> {
    let t = Task::load(&root.join("tasks"), task)?;
    crate::scan::check_name(&t, name)?;
    let dest = t.candidate_path(name);
    if dest.exists() || name == "baseline" {
        return Err(Error::Cli(format!(
            "{} already exists: a candidate is never overwritten (pick another name)",
            dest.display()
        )));
    }
    // A name the ledger already knows belongs to that version (perhaps dropped, its file
    // removed): a new file under it would inherit its results in `lineage`, `best` and `brief`.
    if let Some(run) = crate::ledger_cmd::recorded_run_of(root, task, name)? {
        return Err(Error::Cli(format!(
            "{name} names a version already in ledger/{task}.jsonl (run {run}), its file perhaps removed: a new candidate takes a name of its own"
        )));
    }
    let src = if from == "baseline" {
        t.baseline_path.clone()
    } else {
        crate::scan::check_name(&t, from)?;
        t.candidate_path(from)
    };
    let body = std::fs::read(&src).map_err(|_| {
        Error::Cli(format!(
            "--from {from}: {} does not exist (baseline or one of: {})",
            src.display(),
            t.candidates().join(", ")
        ))
    })?;
    let header = format!(
        "{PARENT_TAG} {from} sha256 {}\n// Candidate {name} for tasks/{task}, started from {}: say here what changes and why.\n",
        sha256_hex(&body),
        if from == "baseline" {
            "the baseline".to_string()
        } else {
            format!("candidates/{from}.cu")
        }
    );
    let mut text = header.into_bytes();
    text.extend_from_slice(&body);
    std::fs::create_dir_all(dest.parent().expect("candidates/"))
        .map_err(|e| Error::io("cannot create candidates/", e))?;
    // create_new: a file that appeared meanwhile is not overwritten either.
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&dest)
        .map_err(|e| Error::Cli(format!("{}: {e}", dest.display())))?;
    f.write_all(&text)
        .map_err(|e| Error::io(format!("cannot write {}", dest.display()), e))?;
    Ok(dest)
}

/// The parent a candidate's header names (`new` wrote it), if any: (name, sha256).
pub fn parent_of(source: &str) -> Option<(String, Option<String>)> {
    let line = source.lines().next()?.strip_prefix(PARENT_TAG)?.trim();
    let mut words = line.split_whitespace();
    let name = words.next()?.to_string();
    // `candidate new` writes `<name> sha256 <hex>`; a header written by hand may name only the
    // parent.
    let sha = match (words.next(), words.next()) {
        (Some("sha256"), Some(hex)) => Some(hex.to_string()),
        _ => None,
    };
    Some((name, sha))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_the_parent() {
        assert_eq!(
            parent_of("// kpilot-parent: v1 sha256 abc\n// x\n"),
            Some(("v1".into(), Some("abc".into())))
        );
        assert_eq!(
            parent_of("// kpilot-parent: v4\n// x\n"),
            Some(("v4".into(), None))
        );
        assert_eq!(parent_of("// plain\n"), None);
    }
}
