//! Which backend a configuration names (`SLIPWAY_BUS_URL`): Postgres, the service's own
//! database, unless a `nats://` URL asks for JetStream with Postgres as its outbox.

use std::fmt;
use std::str::FromStr;

/// A parsed bus URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BusUrl {
    /// The default: the bus lives in the service's own Postgres database.
    #[default]
    Postgres,
    /// NATS JetStream at `url`, its stream and buckets named after `namespace` (the URL's
    /// path; `bus` when it has none).
    Nats {
        /// `nats://host:port`, without the path.
        url: String,
        /// Names the stream and buckets, so several products can share a server.
        namespace: String,
    },
}

impl FromStr for BusUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text == "postgres" {
            return Ok(Self::Postgres);
        }
        let Some(rest) = text.strip_prefix("nats://").or_else(|| text.strip_prefix("tls://")) else {
            return Err(format!(
                "unknown bus backend {text:?}: use `postgres` (the default: the service's own database) \
                 or `nats://host:4222` (NATS JetStream, with the database as its outbox)"
            ));
        };
        let (host, namespace) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(format!("the bus URL {text:?} names no NATS server: `nats://host:4222`"));
        }
        let namespace = if namespace.is_empty() { "bus" } else { namespace };
        if !namespace.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "the bus URL {text:?}: its path {namespace:?} names the stream, so letters, digits and '_' only"
            ));
        }
        let scheme = if text.starts_with("tls://") { "tls" } else { "nats" };
        Ok(Self::Nats { url: format!("{scheme}://{host}"), namespace: namespace.to_string() })
    }
}

impl kit::config::Setting for BusUrl {
    const EXPECTED: &'static str =
        "`postgres` (the service's own database) or `nats://host:4222[/namespace]` (NATS JetStream)";
    fn parse_setting(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// Shown without the user and password a URL may carry (`nats://user:secret@host`), so it
/// can be logged.
impl fmt::Display for BusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres => f.write_str("postgres"),
            Self::Nats { url, namespace } => write!(f, "{}/{namespace}", redacted(url)),
        }
    }
}

/// `url` with its user information, if any, replaced by `***`.
pub(crate) fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_is_the_default_and_a_nats_url_names_its_server_and_namespace() {
        assert_eq!("".parse(), Ok(BusUrl::Postgres));
        assert_eq!("postgres".parse(), Ok(BusUrl::Postgres));
        assert_eq!(
            "nats://nats:4222".parse(),
            Ok(BusUrl::Nats { url: "nats://nats:4222".into(), namespace: "bus".into() })
        );
        assert_eq!(
            "nats://10.0.0.5:4222/shop".parse::<BusUrl>().map(|u| u.to_string()),
            Ok("nats://10.0.0.5:4222/shop".into())
        );
    }

    #[test]
    fn a_nats_url_is_shown_without_its_credentials() {
        let url: BusUrl = "nats://bus:s3cret@nats:4222/shop".parse().expect("a NATS URL");
        assert_eq!(url.to_string(), "nats://***@nats:4222/shop");
        assert!(!format!("{url}").contains("s3cret"));
        assert_eq!(redacted("tls://host:4222"), "tls://host:4222");
    }

    #[test]
    fn an_unknown_backend_or_a_bad_nats_url_is_refused_with_what_to_write() {
        let error = "kafka://broker:9092".parse::<BusUrl>().expect_err("unknown");
        assert!(error.contains("postgres") && error.contains("nats://host:4222"), "{error}");
        assert!("nats://".parse::<BusUrl>().expect_err("no host").contains("names no NATS server"));
        assert!("nats://h:4222/a.b".parse::<BusUrl>().expect_err("bad path").contains("letters, digits"));
    }
}
