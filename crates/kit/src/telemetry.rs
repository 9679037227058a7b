//! Logging: `tracing` with key/value fields, pretty in dev and JSON in staging and prod.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{Common, LogFormat};

/// Installs the global subscriber for a service. Returns an error if one is already set.
pub fn init(common: &Common, service: &'static str) -> anyhow::Result<()> {
    init_with_writer(&common.log, common.log_format, std::io::stderr)?;
    tracing::info!(service, environment = %common.environment, release = %common.release, "starting");
    Ok(())
}

/// Installs the global subscriber with a given filter, format and writer.
pub fn init_with_writer<W>(filter: &str, format: LogFormat, writer: W) -> anyhow::Result<()>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("SLIPWAY_LOG {filter:?} is not a valid filter: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let result = match format {
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Pretty => builder.with_target(false).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
