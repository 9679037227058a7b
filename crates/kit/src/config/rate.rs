//! A rate limit setting: `20/1m` (at most 20 per minute), or `off`.

use std::time::Duration;

use super::{Setting, parse_duration};

/// At most `max` events per `per`; `None` when turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many are allowed…
    pub max: u32,
    /// …in this window.
    pub per: Duration,
}

impl Rate {
    /// `max` per `per`.
    pub const fn new(max: u32, per: Duration) -> Self {
        Self { max, per }
    }
}

/// A limit that may be turned off with `off` (or `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<Rate>);

impl Setting for Limit {
    const EXPECTED: &'static str = "a rate such as 20/1m or 5/1h, or off";

    fn parse_setting(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") || s == "0" {
            return Some(Self(None));
        }
        let (max, per) = s.split_once('/')?;
        let max: u32 = max.trim().parse().ok().filter(|m| *m > 0)?;
        let per = parse_duration(per).ok().filter(|d| !d.is_zero())?;
        Some(Self(Some(Rate { max, per })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_off_turns_a_limit_off() {
        assert_eq!(Limit::parse_setting("20/1m"), Some(Limit(Some(Rate::new(20, Duration::from_secs(60))))));
        assert_eq!(Limit::parse_setting("off"), Some(Limit(None)));
        assert_eq!(Limit::parse_setting("0"), Some(Limit(None)));
        for bad in ["20", "x/1m", "0/1m", "5/0s", "5/soon"] {
            assert_eq!(Limit::parse_setting(bad), None, "{bad}");
        }
    }
}
