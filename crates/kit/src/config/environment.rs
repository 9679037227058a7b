//! The deployment environment a process runs in, which decides its secure defaults.

use std::fmt;
use std::str::FromStr;

/// Where a process runs. Staging and prod refuse default secrets and log JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// A developer's machine: `.env` files are read and development defaults allowed.
    Dev,
    /// Automated tests: like dev, `.env` files and development defaults included.
    Test,
    /// A production-like rehearsal: production's checks, its own data.
    Staging,
    /// Production, and the environment when `SLIPWAY_ENV` is unset: no `.env` files, no
    /// default secrets.
    Prod,
}

impl Environment {
    /// Staging and prod: real secrets required, no developer conveniences.
    pub fn is_production_like(self) -> bool {
        matches!(self, Self::Staging | Self::Prod)
    }

    /// The name as `SLIPWAY_ENV` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Test => "test",
            Self::Staging => "staging",
            Self::Prod => "prod",
        }
    }
}

impl FromStr for Environment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dev" | "development" => Ok(Self::Dev),
            "test" => Ok(Self::Test),
            "staging" => Ok(Self::Staging),
            "prod" | "production" => Ok(Self::Prod),
            _ => Err("one of dev, test, staging, prod".into()),
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
