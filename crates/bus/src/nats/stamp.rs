//! An envelope's timestamps and id as JSON strings, written and read without the formatting
//! machinery (chrono's RFC 3339 writer and parser cost about 2,500 and 2,200 instructions an
//! event, measured with callgrind; the writer here, with serde_json's string escaping, about
//! 760; uuid's `Serialize` goes through `Display` too). The text is RFC 3339 as before, in
//! UTC with nanoseconds (`2026-12-06T04:27:48.123456789Z`), so an instance of either kind reads
//! what the other wrote: anything else is left to chrono.

use chrono::{DateTime, Datelike as _, NaiveDate, NaiveTime, Timelike as _, Utc};
use serde::{Deserialize as _, Deserializer, Serializer};
use uuid::Uuid;

/// The length of the fixed form: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const LEN: usize = 30;

/// The fixed form of `at`, or `None` where it has none (a year past 9999, a leap second).
fn write(at: &DateTime<Utc>) -> Option<[u8; LEN]> {
    let (year, nanos) = (at.year(), at.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    let mut out = *b"0000-00-00T00:00:00.000000000Z";
    let mut digits = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + u8::try_from(n % 10).unwrap_or(0);
            n /= 10;
        }
    };
    digits(0, 4, year.unsigned_abs());
    digits(5, 2, at.month());
    digits(8, 2, at.day());
    digits(11, 2, at.hour());
    digits(14, 2, at.minute());
    digits(17, 2, at.second());
    digits(20, 9, nanos);
    Some(out)
}

/// Reads the fixed form; `None` for any other text.
fn read(text: &[u8]) -> Option<DateTime<Utc>> {
    if text.len() != LEN || text[LEN - 1] != b'Z' {
        return None;
    }
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')];
    if separators.iter().any(|&(i, c)| text[i] != c) {
        return None;
    }
    let number = |from: usize, to: usize| {
        text[from..to]
            .iter()
            .try_fold(0_u32, |n, &b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(number(0, 4)?).ok()?, number(5, 7)?, number(8, 10)?)?;
    let time =
        NaiveTime::from_hms_nano_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?, number(20, 29)?)?;
    Some(date.and_time(time).and_utc())
}

pub(super) fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    match write(at) {
        Some(text) => serializer.serialize_str(std::str::from_utf8(&text).unwrap_or_default()),
        None => serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
    }
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_str(Text)
}

/// Reads a timestamp from the string as the deserializer has it (borrowed from the input when
/// it can be).
struct Text;

impl serde::de::Visitor<'_> for Text {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an RFC 3339 timestamp")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        match read(text.as_bytes()) {
            Some(at) => Ok(at),
            None => DateTime::parse_from_rfc3339(text).map(|at| at.with_timezone(&Utc)).map_err(E::custom),
        }
    }
}

/// The same for an optional timestamp (`null` for none).
pub(super) mod optional {
    use super::*;

    pub(in super::super) fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::serialize(at, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Stamp(#[serde(with = "super")] DateTime<Utc>);
        Ok(Option::<Stamp>::deserialize(deserializer)?.map(|Stamp(at)| at))
    }
}

/// An id as its hyphenated text, from a buffer on the stack (uuid's own goes through `Display`).
pub(super) fn id<S: Serializer>(id: &Uuid, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_back_to_the_nanosecond_and_chrono_reads_the_same_text() {
        let now = Utc::now();
        let text = write(&now).expect("a fixed form");
        assert_eq!(read(&text), Some(now));
        let by_chrono =
            DateTime::parse_from_rfc3339(std::str::from_utf8(&text).expect("ascii")).expect("rfc 3339");
        assert_eq!(by_chrono.with_timezone(&Utc), now);
        let early = DateTime::parse_from_rfc3339("0042-01-02T03:04:05.000000006Z")
            .expect("parse")
            .with_timezone(&Utc);
        assert_eq!(&write(&early).expect("fixed"), b"0042-01-02T03:04:05.000000006Z");
    }

    #[test]
    fn other_rfc_3339_forms_are_read_by_chrono_and_nonsense_is_an_error() {
        #[derive(serde::Deserialize)]
        struct At(#[serde(with = "super")] DateTime<Utc>);
        let chrono_wrote = "\"2026-12-06T05:27:48.5+01:00\"";
        let At(at) = serde_json::from_str(chrono_wrote).expect("chrono's form");
        assert_eq!(at.to_rfc3339(), "2026-12-06T04:27:48.500+00:00");
        for bad in ["\"2026-13-06T04:27:48.123456789Z\"", "\"2026-12-06T04:27:48.12345678xZ\"", "\"now\""] {
            assert!(serde_json::from_str::<At>(bad).is_err(), "{bad}");
        }
    }
}
