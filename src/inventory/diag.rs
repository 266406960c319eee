//! Diagnostics for inventory problems: always file:line:column, what is wrong, what to do.

use serde_saphyr::Location;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone)]
pub struct Diag {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics while validating one file.
pub struct Diags {
    file: PathBuf,
    pub items: Vec<Diag>,
}

impl Diags {
    pub fn new(file: &Path) -> Self {
        Diags {
            file: file.to_path_buf(),
            items: Vec::new(),
        }
    }

    fn push(&mut self, severity: Severity, at: &Location, message: String, hint: &str) {
        self.items.push(Diag {
            severity,
            file: self.file.clone(),
            line: at.line(),
            column: at.column(),
            message,
            hint: (!hint.is_empty()).then(|| hint.to_string()),
        });
    }

    pub fn error(&mut self, at: &Location, message: impl Into<String>, hint: &str) {
        self.push(Severity::Error, at, message.into(), hint);
    }

    pub fn warn(&mut self, at: &Location, message: impl Into<String>, hint: &str) {
        self.push(Severity::Warning, at, message.into(), hint);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }
}
