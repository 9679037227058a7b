//! Why a command failed, and the exit code that says so.

use kit::config::ConfigErrors;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Refused(String),
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Self::Config(_) => kit::service::EXIT_CONFIG,
            Self::Refused(_) => 3,
            Self::Failed(_) => 1,
        }
    }
}

impl From<kit::migrate::MigrateFailure> for Failure {
    fn from(e: kit::migrate::MigrateFailure) -> Self {
        Self::Failed(e.into())
    }
}
