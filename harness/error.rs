//! One error type for the harness. Each variant says what went wrong and where, and maps to one
//! exit code (see `Error::exit_code` and `kpilot --help`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A task file, rows file or command line the user wrote is wrong.
    #[error("{file}:{line}: {msg}")]
    Input {
        file: PathBuf,
        line: usize,
        msg: String,
    },
    /// A file the task needs is wrong or missing (not the command line).
    #[error("{0}")]
    Usage(String),
    /// The command line: an unknown option or name, a bad value, a conflict between options.
    #[error("{0}")]
    Cli(String),
    /// Something the machine lacks: a driver, a GPU, nvcc.
    #[error("{0}")]
    Environment(String),
    /// nvcc refused a source file; `log` holds its diagnostics (file:line: error ...).
    #[error("nvcc failed on {file}:\n{log}")]
    Build { file: PathBuf, log: String },
    #[error("CUDA: {0}")]
    Cuda(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
    /// A rule over recorded evidence is not met (e.g. `check`'s fidelity rule).
    #[error("{0}")]
    Gate(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Exit codes, one meaning each.
pub mod exit {
    /// Every correctness gate and the performance gate passed.
    pub const OK: i32 = 0;
    /// Both sides correct everywhere, but the performance gate was not met.
    pub const PERF_GATE: i32 = 1;
    /// A correctness gate failed on some row and side, or a kernel crashed or hung.
    pub const CORRECTNESS: i32 = 2;
    /// Bad input: task.toml, the rows file, a missing task file, or frozen hashes.
    pub const INPUT: i32 = 3;
    /// The machine lacks what the run needs (CUDA driver, GPU, nvcc).
    pub const ENVIRONMENT: i32 = 4;
    /// nvcc failed to build the baseline, a candidate or the support kernels.
    pub const BUILD: i32 = 5;
    /// A bug in kpilot itself (or an I/O failure it cannot recover from).
    pub const INTERNAL: i32 = 6;
    /// The command line: an unknown option, subcommand, task, candidate or row, a bad value.
    pub const USAGE: i32 = 7;
    /// A `--quick` run found correct (every output element scanned, up to 2048 drawn units a row
    /// compared with the reference): it is never gate evidence, whatever the numbers.
    pub const QUICK: i32 = 8;
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } | Error::Usage(_) => exit::INPUT,
            Error::Cli(_) => exit::USAGE,
            Error::Environment(_) => exit::ENVIRONMENT,
            Error::Build { .. } => exit::BUILD,
            Error::Cuda(_) => exit::CORRECTNESS,
            Error::Io { .. } | Error::Internal(_) => exit::INTERNAL,
            Error::Gate(_) => exit::PERF_GATE,
        }
    }

    pub fn input(file: impl Into<PathBuf>, line: usize, msg: impl Into<String>) -> Error {
        Error::Input {
            file: file.into(),
            line,
            msg: msg.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Line number (1-based) of a byte offset in a text.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
