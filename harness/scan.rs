//! A static scan of candidate sources: calls that have no place in a kernel implementation run
//! inside kpilot's worker (their host code shares the worker's process) are refused with file,
//! line and what to do instead, before anything is built. It reads code, not comments or string
//! literals (literals are read only for what inline assembly or an attribute can hide there: the
//! timer registers, a system call, a loader section). A task may allow one call in
//! one candidate with a reason (`[[scan.allow]]` in task.toml, frozen with it and recorded).
//!
//! It is a tripwire for the obvious, not a proof: the gates still check everything at run time.

use crate::error::{Error, Result};
use crate::task::spec::ScanAllow;
use crate::task::Task;
use std::path::{Path, PathBuf};

/// One refused call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    pub file: PathBuf,
    pub line: usize,
    pub call: String,
    pub rule: &'static str,
}

/// How the scan names a `<<<grid, block>>>` launch without a stream (for `[[scan.allow]]` too).
pub const DEFAULT_STREAM_LAUNCH: &str = "<<<>>> without a stream";

struct Rule {
    /// Identifiers (exact) or prefixes (ending in `*`).
    names: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule { names: &["cudaStreamCreate*", "cuStreamCreate*", "cudaEventCreate*", "cuEventCreate*"], why: "creates a stream or event: launch on the stream kpilot passes, and nothing else" },
    Rule {
        names: &["cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaEventSynchronize", "cuCtxSynchronize", "cuStreamSynchronize", "cuEventSynchronize", "cudaStreamQuery", "cudaEventQuery", "cudaStreamWaitEvent", "cuStreamWaitEvent", "cudaThreadSynchronize", "cudaMemcpy", "cudaMemcpy2D", "cudaMemcpy3D", "cudaMemset", "cudaMemset2D", "cuMemcpy", "cuMemcpyDtoH", "cuMemcpyHtoD", "cudaLaunchHostFunc", "cuLaunchHostFunc"],
        why: "synchronizes or waits: calls are captured into CUDA graphs and timed; the harness synchronizes",
    },
    Rule {
        names: &["cudaMalloc*", "cudaFree*", "cuMemAlloc*", "cuMemFree*", "cuMemCreate", "cuMemMap", "cuMemAddressReserve", "cudaHostAlloc", "cudaMemPool*", "malloc", "calloc", "realloc", "free", "aligned_alloc", "posix_memalign", "mmap", "mmap64"],
        why: "allocates or frees memory: use registers or shared memory; a scratch tensor must be declared in task.toml",
    },
    Rule {
        names: &["cudaStreamIsCapturing", "cudaStreamGetCaptureInfo*", "cudaStreamBeginCapture", "cudaStreamEndCapture", "cudaThreadExchangeStreamCaptureMode", "cudaGraph*", "cuGraph*", "cuStreamIsCapturing", "cuStreamGetCaptureInfo*", "cuStreamBeginCapture*", "cuStreamEndCapture"],
        why: "queries or drives graph capture: a call must behave the same captured or not",
    },
    Rule { names: &["pthread_create", "fork", "vfork", "clone", "thread", "jthread", "async", "posix_spawn", "posix_spawnp"], why: "starts a host thread or process: all work goes on the given stream, from the calling thread" },
    Rule {
        names: &["cudaStreamPerThread", "cudaStreamLegacy", "CU_STREAM_PER_THREAD", "CU_STREAM_LEGACY", "cudaDeviceSetLimit", "cudaStreamSetAttribute", "cuStreamSetAttribute", "cudaCtxResetPersistingL2Cache", "cuCtxResetPersistingL2Cache", "cudaDeviceSetCacheConfig", "cudaDeviceReset", "cudaSetDevice"],
        why: "uses another stream or changes device-wide state (limits, L2 persistence, cache config): a call touches only its own launches on the given stream",
    },
    Rule { names: &["getenv", "secure_getenv", "environ", "setenv", "putenv", "argv", "program_invocation_name"], why: "reads the environment or the command line: a call sees only its kp_call" },
    Rule { names: &["dlopen", "dlsym", "dlmopen", "dlvsym"], why: "loads or looks up code at run time: an implementation is one .cu file" },
    Rule {
        names: &["printf", "fprintf", "vprintf", "vfprintf", "dprintf", "puts", "fputs", "putchar", "fputc", "putc", "fwrite", "write", "writev", "pwrite", "fopen", "freopen", "open", "openat", "creat", "read", "fread", "syscall", "cout", "cerr", "clog", "ofstream", "ifstream", "fstream", "system", "popen", "exec*"],
        why: "writes or reads a file descriptor or runs a program: report the dispatch path in call->path, nothing else (use snprintf into call->path)",
    },
    Rule {
        names: &["unlink", "unlinkat", "remove", "remove_all", "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat", "truncate", "truncate64", "ftruncate", "mkdir", "mkdirat", "rmdir", "chmod", "fchmodat", "chown", "lchown", "utime", "utimes", "utimensat", "copy_file", "create_directory", "create_directories", "filesystem"],
        why: "removes, renames, links, truncates or changes a file or folder by its path: the task's files and the ledger (its live file and its sealed segments) are the harness's, and a call touches none of them",
    },
    Rule {
        names: &["exit", "_exit", "_Exit", "quick_exit", "pthread_exit", "thrd_exit", "atexit", "at_quick_exit", "on_exit", "__cxa_atexit", "__cxa_thread_atexit", "__cxa_thread_atexit_impl"],
        why: "ends the worker or registers code to run when it ends: the worker's exit is the harness's, and a clean exit after the last report cannot be told from a normal one",
    },
    Rule {
        names: &["close", "close_range", "closefrom", "dup", "dup2", "dup3", "fcntl", "ioctl", "kill", "killpg", "tkill", "tgkill", "pthread_kill", "raise", "sigqueue", "signal", "sigaction"],
        why: "closes, duplicates or controls a file descriptor, signals a process or installs a signal handler: the worker's descriptors (its result channel among them) and signals are the harness's",
    },
    Rule {
        names: &["constructor", "destructor", "__constructor__", "__destructor__"],
        why: "runs code when the library is loaded or unloaded (__attribute__((constructor)), [[gnu::destructor]], an .init_array or .fini_array section): a candidate's code runs only inside its calls",
    },
    Rule { names: &["clock64", "clock", "__globaltimer", "globaltimer", "get_sreg_globaltimer", "get_sreg_clock", "get_sreg_clock64", "time", "gettimeofday", "clock_gettime", "steady_clock", "system_clock", "high_resolution_clock", "__rdtsc", "__rdtscp", "rdtsc"], why: "reads a clock: timing is the harness's; a kernel that watches time can tell when it is measured" },
];

/// The scan's rules, for `kpilot brief`: (call names, why they have no place in a candidate).
pub fn rules() -> Vec<(Vec<String>, String)> {
    RULES
        .iter()
        .map(|r| {
            (
                r.names.iter().map(|n| n.to_string()).collect(),
                r.why.to_string(),
            )
        })
        .collect()
}

fn matches(rule_name: &str, ident: &str) -> bool {
    match rule_name.strip_suffix('*') {
        Some(prefix) => ident.starts_with(prefix),
        None => ident == rule_name,
    }
}

/// Blanks comments and the contents of string and character literals (newlines kept, so line
/// numbers hold); returns the code and, separately, the literals' text with their lines.
fn split_code(text: &str) -> (String, Vec<(usize, String)>) {
    #[derive(PartialEq)]
    enum S {
        Code,
        Line,
        Block,
        Str,
        Chr,
    }
    let mut s = S::Code;
    let mut code = String::with_capacity(text.len());
    let mut lits: Vec<(usize, String)> = Vec::new();
    let mut line = 1;
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied().unwrap_or('\0');
        if c == '\n' {
            line += 1;
        }
        match s {
            S::Code => {
                if c == '/' && next == '/' {
                    s = S::Line;
                    code.push(' ');
                } else if c == '/' && next == '*' {
                    s = S::Block;
                    code.push_str("  ");
                    i += 1;
                } else if c == '"' && i > 0 && b[i - 1] == 'R' {
                    // A raw string R"delim( ... )delim": its text is a literal, whatever it holds.
                    let open = b[i + 1..].iter().position(|&x| x == '(').map(|p| i + 1 + p);
                    let delim: String = open
                        .map(|o| b[i + 1..o].iter().collect())
                        .unwrap_or_default();
                    let close: Vec<char> = format!("){delim}\"").chars().collect();
                    let start = open.map(|o| o + 1).unwrap_or(i + 1);
                    let end = (start..b.len())
                        .find(|&k| b[k..].starts_with(&close))
                        .unwrap_or(b.len());
                    lits.push((line, b[start..end].iter().collect()));
                    code.push('"');
                    for ch in &b[i + 1..(end + close.len()).min(b.len())] {
                        if *ch == '\n' {
                            line += 1;
                            code.push('\n');
                        } else {
                            code.push(' ');
                        }
                    }
                    i = (end + close.len()).min(b.len());
                    continue;
                } else if c == '"' {
                    s = S::Str;
                    lits.push((line, String::new()));
                    code.push(c);
                } else if c == '\''
                    && i > 0
                    && b[i - 1].is_ascii_hexdigit()
                    && next.is_ascii_hexdigit()
                {
                    // A C++14 digit separator (1'000), not a character literal.
                    code.push(' ');
                } else if c == '\'' {
                    s = S::Chr;
                    code.push(c);
                } else {
                    code.push(c);
                }
            }
            S::Line => {
                if c == '\n' {
                    s = S::Code;
                    code.push('\n');
                } else {
                    code.push(' ');
                }
            }
            S::Block => {
                if c == '*' && next == '/' {
                    s = S::Code;
                    code.push_str("  ");
                    i += 1;
                } else {
                    code.push(if c == '\n' { '\n' } else { ' ' });
                }
            }
            S::Str | S::Chr => {
                let end = if s == S::Str { '"' } else { '\'' };
                if c == '\\' {
                    if let Some(l) = lits.last_mut().filter(|_| s == S::Str) {
                        l.1.push(c);
                        l.1.push(next);
                    }
                    code.push(' ');
                    code.push(if next == '\n' { '\n' } else { ' ' });
                    i += 1;
                } else if c == end {
                    s = S::Code;
                    code.push(c);
                } else {
                    if s == S::Str {
                        if let Some(l) = lits.last_mut() {
                            l.1.push(c);
                        }
                    }
                    code.push(if c == '\n' { '\n' } else { ' ' });
                }
            }
        }
        i += 1;
    }
    (code, lits)
}

/// Scans one source text. `file` names it in the findings.
/// Joins lines continued with a backslash (the preprocessor does so before anything else), keeping
/// line numbers: the joined line stands where the first one did, followed by blank lines.
fn splice(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending = 0;
    for l in text.split('\n') {
        let l = l.strip_suffix('\r').unwrap_or(l);
        match l.strip_suffix('\\') {
            Some(head) => {
                out.push_str(head);
                pending += 1;
            }
            None => {
                out.push_str(l);
                for _ in 0..=pending {
                    out.push('\n');
                }
                pending = 0;
            }
        }
    }
    out
}

pub fn scan_text(file: &Path, text: &str) -> Vec<Finding> {
    let (code, lits) = split_code(&splice(text));
    let mut out = Vec::new();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (ln, l) in code.lines().enumerate() {
        let t = l.trim_start();
        // #include lines name files, not calls (their paths are checked apart); every other
        // preprocessor line is read like code, so a #define cannot hide a call.
        if t.starts_with('#') && t[1..].trim_start().starts_with("include") {
            continue;
        }
        let define = t.starts_with('#') && t[1..].trim_start().starts_with("define");
        let chars: Vec<char> = l.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if !(chars[i].is_ascii_alphabetic() || chars[i] == '_')
                || (i > 0 && is_ident(chars[i - 1]))
            {
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            let before: String = chars[..start]
                .iter()
                .rev()
                .filter(|c| !c.is_whitespace())
                .take(2)
                .collect::<String>()
                .chars()
                .rev()
                .collect();
            let after = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            // A member (x.write(), p->read()) is not the libc function of that name.
            if before.ends_with('.') || before.ends_with("->") {
                continue;
            }
            for r in RULES {
                if !r.names.iter().any(|n| matches(n, &ident)) {
                    continue;
                }
                // Bare words that are also ordinary names count only as calls, qualified names
                // (std::close, ::close) or in a #define (which could hide the call behind a
                // macro); every other listed name counts wherever it stands.
                let common = matches!(
                    ident.as_str(),
                    "free"
                        | "read"
                        | "write"
                        | "open"
                        | "time"
                        | "clock"
                        | "thread"
                        | "async"
                        | "clone"
                        | "system"
                        | "fork"
                        | "close"
                        | "dup"
                        | "kill"
                        | "raise"
                        | "signal"
                );
                // Called, called through parentheses ((write)(...)), or taken by address (&write).
                let called = after == Some('(')
                    || (before.ends_with('(') && after == Some(')'))
                    || (before.ends_with('&') && !before.ends_with("&&"));
                let qualified = before.ends_with("::");
                if common && !(called || qualified || define) {
                    continue;
                }
                out.push(Finding {
                    file: file.to_path_buf(),
                    line: ln + 1,
                    call: ident.clone(),
                    rule: r.why,
                });
                break;
            }
        }
    }
    // Launches that name no stream run on the default stream, outside the harness's events.
    for (ln, l) in code.lines().enumerate() {
        let mut rest = l;
        while let Some(at) = rest.find("<<<") {
            let after = &rest[at + 3..];
            let Some(end) = after.find(">>>") else { break };
            let (mut depth, mut args) = (0i32, 1);
            for c in after[..end].chars() {
                match c {
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => depth -= 1,
                    ',' if depth == 0 => args += 1,
                    _ => {}
                }
            }
            if args < 4 {
                out.push(Finding { file: file.to_path_buf(), line: ln + 1, call: DEFAULT_STREAM_LAUNCH.into(), rule: "launches on the default stream: pass the stream kpilot gives as the fourth launch argument" });
            }
            rest = &after[end + 3..];
        }
    }
    // What literals hold: inline PTX reading the timer registers, host inline assembly making a
    // system call (past every libc name above), and a section that the loader runs at load or
    // unload (`__attribute__((section(".init_array")))` on a function pointer); each also split
    // over adjacent literals ("%glob" "altimer"), and the assembly with any spacing.
    let why_of = |name: &str| {
        RULES
            .iter()
            .find(|r| r.names.contains(&name))
            .map(|r| r.why)
            .unwrap_or("")
    };
    let in_literals: &[(&str, &str, &str)] = &[
        ("%globaltimer", "%globaltimer", why_of("clock64")),
        ("%clock", "%clock", why_of("clock64")),
        ("syscall", "asm syscall", why_of("syscall")),
        ("sysenter", "asm syscall", why_of("syscall")),
        ("int$0x80", "asm syscall", why_of("syscall")),
        ("int0x80", "asm syscall", why_of("syscall")),
        ("svc#0", "asm syscall", why_of("syscall")),
        ("svc0", "asm syscall", why_of("syscall")),
        (".init_array", ".init_array", why_of("constructor")),
        (".preinit_array", ".preinit_array", why_of("constructor")),
        (".fini_array", ".fini_array", why_of("destructor")),
        (".ctors", ".ctors", why_of("constructor")),
        (".dtors", ".dtors", why_of("destructor")),
    ];
    let squeeze = |t: &str| -> String { t.chars().filter(|c| !c.is_whitespace()).collect() };
    for k in 0..lits.len() {
        let here = squeeze(&lits[k].1);
        let next: String = lits[k..(k + 3).min(lits.len())]
            .iter()
            .map(|(_, t)| squeeze(t))
            .collect();
        let mut seen: Vec<&str> = Vec::new();
        for &(text, call, rule) in in_literals {
            if next.find(text).is_some_and(|at| at < here.len()) && !seen.contains(&call) {
                seen.push(call);
                out.push(Finding {
                    file: file.to_path_buf(),
                    line: lits[k].0,
                    call: call.to_string(),
                    rule,
                });
            }
        }
    }
    out.sort_by_key(|f| f.line);
    out
}

/// The files a source pulls in with quoted includes, inside `dir` (the task folder),
/// transitively. An include that leaves the folder (other than kpilot's own headers in
/// `kernels`), names an absolute path, or resolves nowhere, becomes a finding: the scan must see
/// every line the candidate compiles.
fn with_includes(
    src: &Path,
    dir: &Path,
    kernels: &Path,
    seen: &mut Vec<PathBuf>,
    escapes: &mut Vec<Finding>,
) {
    let Ok(canon) = src.canonicalize() else {
        return;
    };
    if seen.contains(&canon) {
        return;
    }
    seen.push(canon.clone());
    let Ok(text) = std::fs::read_to_string(&canon) else {
        return;
    };
    let shown = display_path(&canon, dir);
    for (n, l) in splice(&text).lines().enumerate() {
        let Some(rest) = l
            .trim_start()
            .strip_prefix('#')
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix("include"))
        else {
            continue;
        };
        let rest = rest.trim();
        let escape = |why: &'static str| Finding {
            file: shown.clone(),
            line: n + 1,
            call: format!("#include {rest}"),
            rule: why,
        };
        if let Some(inner) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) {
            let here = canon.parent().unwrap_or(Path::new(".")).join(inner);
            match here.canonicalize() {
                Ok(c) if c.starts_with(dir) => with_includes(&c, dir, kernels, seen, escapes),
                Ok(c) if c.starts_with(kernels) => {}
                Ok(_) => escapes.push(escape("includes a file outside the task folder: a candidate is its .cu file and headers beside it in the task folder")),
                Err(_) if kernels.join(inner).is_file() && !inner.contains("..") => {}
                Err(_) => escapes.push(escape("includes a file the scan cannot find in the task folder or kernels/")),
            }
        } else if let Some(inner) = rest.strip_prefix('<').and_then(|r| r.split('>').next()) {
            if inner.starts_with('/') || inner.contains("..") {
                escapes.push(escape("includes a system header by an absolute or relative path: only the toolkit's and the C++ library's headers by name"));
            }
        } else {
            escapes.push(escape("includes through a macro: name the file"));
        }
    }
}

fn display_path(p: &Path, dir: &Path) -> PathBuf {
    p.strip_prefix(dir.parent().and_then(Path::parent).unwrap_or(dir))
        .unwrap_or(p)
        .to_path_buf()
}

/// A candidate name is a plain file stem in candidates/: no path (a command-line error, exit 7),
/// no link (a task-folder problem, exit 3).
pub fn check_name(task: &Task, name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !plain {
        return Err(Error::Cli(format!("candidate '{name}': a candidate is named by its file stem in candidates/ (letters, digits, '_' and '-')")));
    }
    let p = task.candidate_path(name);
    if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::Usage(format!(
            "candidate '{name}': {} is a symbolic link; a candidate is a file in the task folder",
            p.display()
        )));
    }
    Ok(())
}

/// Scans candidate `name` of `task` and the headers it includes from the task folder. Findings
/// that `[[scan.allow]]` names (same candidate, same call) are returned as allowed.
pub fn scan_candidate(task: &Task, name: &str) -> Result<(Vec<Finding>, Vec<ScanAllow>)> {
    let dir = task
        .dir
        .canonicalize()
        .map_err(|e| Error::io(format!("cannot resolve {}", task.dir.display()), e))?;
    check_name(task, name)?;
    let kernels = dir
        .parent()
        .and_then(Path::parent)
        .map(|r| r.join("kernels"))
        .and_then(|k| k.canonicalize().ok())
        .unwrap_or_default();
    let mut files = Vec::new();
    let mut refused = Vec::new();
    with_includes(
        &task.candidate_path(name),
        &dir,
        &kernels,
        &mut files,
        &mut refused,
    );
    let mut allowed = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| Error::io(format!("cannot read {}", f.display()), e))?;
        let shown = display_path(&f, &dir);
        for finding in scan_text(&shown, &text) {
            match task
                .spec
                .scan
                .allow
                .iter()
                .find(|a| a.candidate == name && a.call == finding.call)
            {
                Some(a) => {
                    if !allowed.contains(a) {
                        allowed.push(a.clone());
                    }
                }
                None => refused.push(finding),
            }
        }
    }
    Ok((refused, allowed))
}

/// Refuses a candidate with findings: bad input (exit 3) naming file:line, the call and what to do.
pub fn require_clean(task: &Task, name: &str) -> Result<Vec<ScanAllow>> {
    let (refused, allowed) = scan_candidate(task, name)?;
    if let Some(first) = refused.first() {
        let more = if refused.len() > 1 {
            format!(
                " (and {} more: {})",
                refused.len() - 1,
                refused[1..]
                    .iter()
                    .map(|f| format!("{}:{} {}", f.file.display(), f.line, f.call))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        return Err(Error::input(
            &first.file,
            first.line,
            format!(
                "candidate '{name}' calls `{}`, which {}{more}. If it truly belongs, task.toml needs [[scan.allow]] candidate = \"{name}\", call = \"{}\", reason = \"...\" (frozen and recorded)",
                first.call, first.rule, first.call
            ),
        ));
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(src: &str) -> Vec<(usize, String)> {
        scan_text(Path::new("x.cu"), src)
            .into_iter()
            .map(|f| (f.line, f.call))
            .collect()
    }

    #[test]
    fn comments_strings_and_members_are_not_calls() {
        let src = "// cudaDeviceSynchronize() in a comment\n/* printf(\"x\") */\nsnprintf(call->path, 64, \"printf write\");\nv.write(x); p->read(y);\nint thread_id = threadIdx.x; // one element per thread\n";
        assert_eq!(calls(src), vec![]);
    }

    #[test]
    fn the_tricks_are_found_with_their_lines() {
        let src = "int a;\ncudaStreamSynchronize(s);\nprintf(\"%d\", 1);\nstd::thread t(f);\nconst char* e = getenv(\"KPILOT\");\nvoid* h = dlopen(\"x\", 0);\ncudaMallocAsync(&p, 4, s);\nasm volatile(\"mov.u64 %0, %globaltimer;\" : \"=l\"(t));\nwrite(1, buf, 4);\nbool c; cudaStreamIsCapturing(s, &c);\nstd::cout << 1;\nk<<<g, b>>>(x);\nk<T, 2><<<dim3(a, b), 128, 0>>>(x); k<<<g, b, smem, (cudaStream_t)s>>>(x);\n";
        let got = calls(src);
        let want: Vec<(usize, String)> = vec![
            (2, "cudaStreamSynchronize".into()),
            (3, "printf".into()),
            (4, "thread".into()),
            (5, "getenv".into()),
            (6, "dlopen".into()),
            (7, "cudaMallocAsync".into()),
            (8, "%globaltimer".into()),
            (9, "write".into()),
            (10, "cudaStreamIsCapturing".into()),
            (11, "cout".into()),
            (12, DEFAULT_STREAM_LAUNCH.into()),
            (13, DEFAULT_STREAM_LAUNCH.into()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn the_usual_disguises_are_seen_through() {
        let src = "#define SYNC cudaDeviceSynchronize\nint n = 1'000; cudaStreamSynchronize(s);\n(write)(1, b, 2);\nauto w = &free;\ncudaDevice\\\nSynchronize();\nconst char* r = R\"(\")\"; getenv(\"X\");\nasm(\"mov.u64 %0, %glob\" \"altimer;\");\nauto t = std::chrono::steady_clock::now();\nk<<<g, b, 0, cudaStreamPerThread>>>(x);\n";
        let got = calls(src);
        let want: Vec<(usize, String)> = vec![
            (1, "cudaDeviceSynchronize".into()),
            (2, "cudaStreamSynchronize".into()),
            (3, "write".into()),
            (4, "free".into()),
            (5, "cudaDeviceSynchronize".into()),
            (7, "getenv".into()),
            (8, "%globaltimer".into()),
            (9, "steady_clock".into()),
            (10, "cudaStreamPerThread".into()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn removing_renaming_or_truncating_a_file_by_its_path_is_refused() {
        // The ledger's last sealed segment removed (no gap is left to notice), a forged one put
        // in place, the live file cut: none opens a descriptor, so the file I/O rule alone misses them.
        let src = "unlink(\"ledger/archive/t/0002.jsonl.gz\");\nstd::remove(\"ledger/t.jsonl\");\nrename(\"a\", \"ledger/archive/t/0002.jsonl.gz\");\nlink(\"a\", \"b\"); symlink(\"a\", \"b\");\ntruncate(\"ledger/t.jsonl\", 0);\nstd::filesystem::remove_all(\"ledger\");\nmkdir(\"ledger/archive/t\", 0755);\nv.remove(x); // a member, not the call\n";
        let want: Vec<(usize, String)> = vec![
            (1, "unlink".into()),
            (2, "remove".into()),
            (3, "rename".into()),
            (4, "link".into()),
            (4, "symlink".into()),
            (5, "truncate".into()),
            (6, "filesystem".into()),
            (6, "remove_all".into()),
            (7, "mkdir".into()),
        ];
        assert_eq!(calls(src), want);
    }

    #[test]
    fn ending_the_worker_or_touching_its_descriptors_and_signals_is_refused() {
        let src = "close(3);\n::close(fd);\ndup2(fd, 3);\ndup3(a, b, 0); int d = dup(1);\nkill(getpid(), 9);\nexit(0);\nstd::exit(0);\n::exit(0);\n_exit(0);\n_Exit(0);\nstd::quick_exit(0);\natexit(f);\nstd::at_quick_exit(f);\nraise(SIGTERM);\nsignal(SIGSEGV, h);\nauto f = std::exit;\nauto g = &close;\n#define BYE exit\n#define SHUT close\n(close)(3);\npthread_exit(nullptr);\n__cxa_atexit(f, p, d);\nauto q = std::close;\nsigaction(SIGSEGV, &sa, nullptr);\n";
        let got = calls(src);
        let want: Vec<(usize, String)> = vec![
            (1, "close".into()),
            (2, "close".into()),
            (3, "dup2".into()),
            (4, "dup3".into()),
            (4, "dup".into()),
            (5, "kill".into()),
            (6, "exit".into()),
            (7, "exit".into()),
            (8, "exit".into()),
            (9, "_exit".into()),
            (10, "_Exit".into()),
            (11, "quick_exit".into()),
            (12, "atexit".into()),
            (13, "at_quick_exit".into()),
            (14, "raise".into()),
            (15, "signal".into()),
            (16, "exit".into()),
            (17, "close".into()),
            (18, "exit".into()),
            (19, "close".into()),
            (20, "close".into()),
            (21, "pthread_exit".into()),
            (22, "__cxa_atexit".into()),
            (23, "close".into()),
            (24, "sigaction".into()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn code_run_at_load_or_unload_is_refused_however_spelled() {
        let src = "__attribute__((constructor)) static void a() {}\n__attribute__ ((constructor(101))) static void b() {}\n__attribute__((destructor)) static void c() {}\n__attribute__((used, __destructor__(200))) static void d() {}\n[[gnu::constructor]] static void e() {}\n[[gnu::destructor(101)]] static void f() {}\n[[__gnu__::__constructor__]] static void g() {}\n#define CTOR constructor\n__attribute__((section(\".init_array\"))) static void (*p)() = a;\n__attribute__((section(\".fini_array.101\"))) static void (*q)() = a;\n__attribute__((section(\".ctors\"))) static void (*r)() = a;\nasm volatile(\"mov $60, %eax\\n\\tsyscall\");\nasm volatile(\"svc #0\");\nasm volatile(\"int $0x80\");\n";
        let got = calls(src);
        let want: Vec<(usize, String)> = vec![
            (1, "constructor".into()),
            (2, "constructor".into()),
            (3, "destructor".into()),
            (4, "__destructor__".into()),
            (5, "constructor".into()),
            (6, "destructor".into()),
            (7, "__constructor__".into()),
            (8, "constructor".into()),
            (9, ".init_array".into()),
            (10, ".fini_array".into()),
            (11, ".ctors".into()),
            (12, "asm syscall".into()),
            (13, "asm syscall".into()),
            (14, "asm syscall".into()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn names_that_only_contain_the_words_or_are_members_are_not_refused() {
        let src = "int exit_code = 0; bool my_close = true; void my_close_fn();\nint close_enough = 1; float kill_ratio; int on_exit_path; int dup_count;\nfile.close(); p->close(); s.exit(); obj->kill(); w.signal(); q->dup();\nbool close = a < b; int dup = 2; float signal = 0.f; int kill = 0; bool raise = close;\n// exit(0); close(3); __attribute__((destructor))\nsnprintf(call->path, 64, \"exit close dup2 destructor\");\nstruct S { S(); ~S(); };\nasm volatile(\"exit;\");\nint constructors = 0, destructor_count = 1; bool atexit_done;\n";
        assert_eq!(calls(src), vec![]);
    }

    #[test]
    fn the_shipped_candidates_and_baselines_are_clean() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tasks");
        for t in std::fs::read_dir(&root).unwrap().flatten() {
            let task = Task::load(&root, &t.file_name().to_string_lossy()).unwrap();
            for c in task.candidates() {
                let (refused, _) = scan_candidate(&task, &c).unwrap();
                assert!(refused.is_empty(), "{}/{c}: {refused:?}", task.name());
            }
            let text = std::fs::read_to_string(&task.baseline_path).unwrap();
            assert_eq!(
                scan_text(&task.baseline_path, &text),
                vec![],
                "{}",
                task.name()
            );
        }
    }
}
