//! What the doctor found: passed checks, notes, and problems with their fixes.

use std::fmt;

/// One line of the report.
#[derive(Debug)]
enum Finding {
    Section(String),
    Ok(String),
    Note(String),
    Problem { what: String, fix: String },
}

/// Every finding, in the order the checks ran.
#[derive(Debug, Default)]
pub(super) struct Report {
    findings: Vec<Finding>,
}

impl Report {
    /// Starts a group of checks.
    pub(super) fn section(&mut self, title: impl Into<String>) {
        self.findings.push(Finding::Section(title.into()));
    }

    /// A check that passed.
    pub(super) fn ok(&mut self, what: impl Into<String>) {
        self.findings.push(Finding::Ok(what.into()));
    }

    /// Worth knowing, not wrong.
    pub(super) fn note(&mut self, what: impl Into<String>) {
        self.findings.push(Finding::Note(what.into()));
    }

    /// Something that must be fixed, and how.
    pub(super) fn problem(&mut self, what: impl Into<String>, fix: impl Into<String>) {
        self.findings.push(Finding::Problem { what: what.into(), fix: fix.into() });
    }

    /// How many problems were found.
    pub(super) fn problems(&self) -> usize {
        self.findings.iter().filter(|f| matches!(f, Finding::Problem { .. })).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            match finding {
                Finding::Section(title) => writeln!(f, "{title}")?,
                Finding::Ok(what) => writeln!(f, "  ok       {what}")?,
                Finding::Note(what) => writeln!(f, "  note     {what}")?,
                Finding::Problem { what, fix } => writeln!(f, "  PROBLEM  {what}\n           fix: {fix}")?,
            }
        }
        Ok(())
    }
}
