//! One error type for the binary, and the exit code each kind maps to.

use strata_storage::{OpenError, StoreError};

/// Everything a command can fail with.
#[derive(Debug)]
pub(crate) enum CliError {
    /// A negative answer: the thing asked for does not exist (exit 1).
    NotFound(String),
    /// `verify` found problems (exit 1); the report was printed.
    Problems(String),
    /// Bad input or an I/O failure (exit 2).
    Failed(String),
    /// The store refused or failed the operation: a conflict, a damaged store, an engine
    /// error (exit 2, as `Failed`; the server answers it by the error's kind).
    Store(StoreError),
    /// Standard output was closed by its reader: stop quietly.
    BrokenPipe,
}

impl CliError {
    pub(crate) fn failed(msg: impl Into<String>) -> Self {
        Self::Failed(msg.into())
    }

    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::NotFound(_) | Self::Problems(_) => 1,
            Self::Failed(_) | Self::Store(_) => 2,
            Self::BrokenPipe => 0,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Self::NotFound(m) | Self::Problems(m) => m.clone(),
            Self::Failed(m) => format!("error: {m}"),
            Self::Store(e) => format!("error: {e}"),
            Self::BrokenPipe => String::new(),
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<OpenError> for CliError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Missing { .. } => Self::NotFound(e.to_string()),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Self::BrokenPipe
        } else {
            Self::Failed(format!("writing output failed: {e}"))
        }
    }
}
