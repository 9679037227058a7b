//! The catalogue of problem slugs: every `type` any Slipway service answers with, in one
//! place, so a service that matches another's refusals (web on auth's) names the same value.

/// A problem type's stable slug: what clients match on. Only the catalogue's constants exist,
/// so a slug cannot be mistyped at one end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slug(&'static str);

impl Slug {
    // Every service (the kit's own layers and extractors).
    pub const NOT_FOUND: Self = Self("not-found");
    pub const METHOD_NOT_ALLOWED: Self = Self("method-not-allowed");
    pub const INTERNAL: Self = Self("internal");
    pub const NOT_READY: Self = Self("not-ready");
    pub const TIMEOUT: Self = Self("timeout");
    pub const UNSUPPORTED_MEDIA_TYPE: Self = Self("unsupported-media-type");
    pub const MALFORMED_JSON: Self = Self("malformed-json");
    pub const INVALID_BODY: Self = Self("invalid-body");
    pub const BODY_TOO_LARGE: Self = Self("body-too-large");
    pub const BAD_REQUEST: Self = Self("bad-request");
    pub const RATE_LIMITED: Self = Self("rate-limited");
    pub const UNAUTHORIZED: Self = Self("unauthorized");
    pub const BUSY: Self = Self("busy");
    pub const UNAVAILABLE: Self = Self("unavailable");
    // Auth's refusals (web turns them into sentences).
    pub const VALIDATION: Self = Self("validation");
    pub const INVALID_CREDENTIALS: Self = Self("invalid-credentials");
    pub const ACCOUNT_NOT_ACTIVATED: Self = Self("account-not-activated");
    pub const ACCOUNT_LOCKED: Self = Self("account-locked");
    pub const INVALID_REFRESH_TOKEN: Self = Self("invalid-refresh-token");
    pub const TOKEN_INVALID: Self = Self("token-invalid");
    pub const TOKEN_USED: Self = Self("token-used");
    pub const TOKEN_EXPIRED: Self = Self("token-expired");
    // The gateway's.
    pub const NO_ROUTE: Self = Self("no-route");
    pub const NO_HEALTHY_INSTANCE: Self = Self("no-healthy-instance");
    pub const BAD_GATEWAY: Self = Self("bad-gateway");
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
