//! The catalogue of problem slugs: every `type` any Slipway service answers with, in one
//! place, so a service that matches another's refusals (web on auth's) names the same value.

/// A problem type's stable slug: what clients match on. Only the catalogue's constants exist,
/// so a slug cannot be mistyped at one end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slug(&'static str);

impl Slug {
    // Every service (the kit's own layers and extractors).
    /// No route serves the path (404).
    pub const NOT_FOUND: Self = Self("not-found");
    /// The path does not take the method (405).
    pub const METHOD_NOT_ALLOWED: Self = Self("method-not-allowed");
    /// Something failed inside the service; the cause is in its log, never in the body (500).
    pub const INTERNAL: Self = Self("internal");
    /// The service is up but a dependency is not (readiness, 503).
    pub const NOT_READY: Self = Self("not-ready");
    /// The request took longer than the service's request timeout (503).
    pub const TIMEOUT: Self = Self("timeout");
    /// The body is not `application/json` where JSON is expected (415).
    pub const UNSUPPORTED_MEDIA_TYPE: Self = Self("unsupported-media-type");
    /// The body is not valid JSON (400).
    pub const MALFORMED_JSON: Self = Self("malformed-json");
    /// Valid JSON that does not have the expected fields or types (422).
    pub const INVALID_BODY: Self = Self("invalid-body");
    /// The body is over the body limit (413).
    pub const BODY_TOO_LARGE: Self = Self("body-too-large");
    /// A request that cannot be read as it is: a malformed target, headers too large (400, 431).
    pub const BAD_REQUEST: Self = Self("bad-request");
    /// Too many requests from this client; `Retry-After` says when to try again (429).
    pub const RATE_LIMITED: Self = Self("rate-limited");
    /// No valid access token where one is required (401).
    pub const UNAUTHORIZED: Self = Self("unauthorized");
    /// Too many requests in flight; try again shortly (503).
    pub const BUSY: Self = Self("busy");
    /// A dependency (the database, say) cannot be reached; try again (503).
    pub const UNAVAILABLE: Self = Self("unavailable");
    // Auth's refusals (web turns them into sentences).
    /// A field's value is not acceptable; `errors` names each field (422).
    pub const VALIDATION: Self = Self("validation");
    /// The email address and password do not match an account (401).
    pub const INVALID_CREDENTIALS: Self = Self("invalid-credentials");
    /// The account exists but its activation link was not followed yet (403).
    pub const ACCOUNT_NOT_ACTIVATED: Self = Self("account-not-activated");
    /// Too many failed logins; the account is locked for a while (429).
    pub const ACCOUNT_LOCKED: Self = Self("account-locked");
    /// The refresh token is unknown, expired or revoked (401).
    pub const INVALID_REFRESH_TOKEN: Self = Self("invalid-refresh-token");
    /// An emailed link's token is unknown (404).
    pub const TOKEN_INVALID: Self = Self("token-invalid");
    /// An emailed link's token was used already (410).
    pub const TOKEN_USED: Self = Self("token-used");
    /// An emailed link's token is past its lifetime (410).
    pub const TOKEN_EXPIRED: Self = Self("token-expired");
    // The gateway's.
    /// The gateway has no route for the host and path (404).
    pub const NO_ROUTE: Self = Self("no-route");
    /// The route's service has no healthy instance right now (503).
    pub const NO_HEALTHY_INSTANCE: Self = Self("no-healthy-instance");
    /// The instance failed to answer, and no retry could (502).
    pub const BAD_GATEWAY: Self = Self("bad-gateway");
    /// The instance did not answer in time (504).
    pub const GATEWAY_TIMEOUT: Self = Self("gateway-timeout");

    /// Every slug of the catalogue.
    pub const ALL: [Self; 26] = [
        Self::NOT_FOUND,
        Self::METHOD_NOT_ALLOWED,
        Self::INTERNAL,
        Self::NOT_READY,
        Self::TIMEOUT,
        Self::UNSUPPORTED_MEDIA_TYPE,
        Self::MALFORMED_JSON,
        Self::INVALID_BODY,
        Self::BODY_TOO_LARGE,
        Self::BAD_REQUEST,
        Self::RATE_LIMITED,
        Self::UNAUTHORIZED,
        Self::BUSY,
        Self::UNAVAILABLE,
        Self::VALIDATION,
        Self::INVALID_CREDENTIALS,
        Self::ACCOUNT_NOT_ACTIVATED,
        Self::ACCOUNT_LOCKED,
        Self::INVALID_REFRESH_TOKEN,
        Self::TOKEN_INVALID,
        Self::TOKEN_USED,
        Self::TOKEN_EXPIRED,
        Self::NO_ROUTE,
        Self::NO_HEALTHY_INSTANCE,
        Self::BAD_GATEWAY,
        Self::GATEWAY_TIMEOUT,
    ];

    /// The slug itself, as in `type` URIs and logs.
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// The `type` URI of this slug.
    pub fn type_uri(self) -> String {
        format!("{PREFIX}{}", self.0)
    }

    /// The catalogue's slug of a problem's `type` URI, if it is one.
    pub fn of(type_uri: &str) -> Option<Self> {
        let slug = type_uri.strip_prefix(PREFIX)?;
        Self::ALL.into_iter().find(|s| s.0 == slug)
    }
}

/// What every `type` URI starts with: a `tag:` URI (RFC 9457 §4 suggests them for types that
/// are not meant to be dereferenced).
const PREFIX: &str = "tag:slipway.dev,2026:problem/";

#[cfg(test)]
mod tests {
    use super::Slug;

    #[test]
    fn every_slug_is_listed_once_and_reads_back_from_its_type_uri() {
        for (i, slug) in Slug::ALL.iter().enumerate() {
            assert_eq!(Slug::of(&slug.type_uri()), Some(*slug));
            assert!(!Slug::ALL[..i].contains(slug), "{} listed twice", slug.as_str());
        }
        assert_eq!(Slug::of("tag:slipway.dev,2026:problem/no-such-thing"), None);
        assert_eq!(Slug::of("not-found"), None, "a bare slug is not a type URI");
    }
}
