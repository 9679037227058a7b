//! The lease records: one KV record per block of [`SPAN`] stream sequences of a consumer,
//! holding which of its messages are done and the attempt of each one taken more than once.
//! JetStream accepts an acknowledgement from any delivery of a message, a stale one too (seen
//! on 2.9), so completions, extensions, failures and releases check the record first, and
//! change it by compare-and-swap; a first attempt has no entry (most deliveries), and any
//! later claim writes one, which is what fences the earlier attempt. One record per block
//! rather than per message: a batch of claims or completions costs a read and a write per
//! block, not per message, and nothing needs purging (the next write replaces the record).

use std::collections::BTreeMap;

use async_nats::jetstream::kv::{Operation, Store};
use serde::{Deserialize, Serialize};

use super::nats_error;
use crate::BusError;

/// Stream sequences per record. Small enough that instances of a group, each claiming runs
/// of consecutive sequences, seldom write the same record at once (ten instances on one
/// group retried about half as many compare-and-swaps as with 1,024, the tail of tries went
/// from 11 to 5), large enough that a claim of a hundred touches one or two.
pub(super) const SPAN: u64 = 128;

/// The keys' prefix, which names the span.
const PREFIX: &str = "b128.";

/// Where a message's state lives: its record's key and its place in the record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Spot {
    pub(super) key: String,
    pub(super) offset: u16,
}

impl Spot {
    /// The spot of the message at `sequence` of the stream, delivered by `consumer`.
    pub(super) fn of(consumer: &str, sequence: u64) -> Self {
        let offset = u16::try_from(sequence % SPAN).unwrap_or(0);
        // `b128.`: records of another span (`b.` was 1,024) are another key, never misread.
        // Built by hand: `format!` cost about 1,800 instructions a delivery (callgrind).
        let mut key = String::with_capacity(PREFIX.len() + consumer.len() + 21);
        key.push_str(PREFIX);
        key.push_str(consumer);
        key.push('.');
        key.push_str(itoa::Buffer::new().format(sequence / SPAN));
        Self { key, offset }
    }
}

/// One block's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Block {
    /// The done messages: bit `offset % 8` of byte `offset / 8`, in hex.
    #[serde(with = "hex_bits")]
    done: Vec<u8>,
    /// The current attempt of each message taken other than by a first delivery (or held back
    /// until its time, attempt 0), by offset; a done message has none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    held: BTreeMap<u16, i32>,
}

impl Block {
    pub(super) fn is_done(&self, offset: u16) -> bool {
        self.done.get(usize::from(offset / 8)).is_some_and(|byte| byte & (1 << (offset % 8)) != 0)
    }

    /// Marks it done; its attempt is no longer kept.
    pub(super) fn set_done(&mut self, offset: u16) {
        let byte = usize::from(offset / 8);
        if self.done.len() <= byte {
            self.done.resize(byte + 1, 0);
        }
        self.done[byte] |= 1 << (offset % 8);
        self.held.remove(&offset);
    }

    /// Its recorded attempt, if it has one.
    pub(super) fn held(&self, offset: u16) -> Option<i32> {
        self.held.get(&offset).copied()
    }

    pub(super) fn set_held(&mut self, offset: u16, attempt: i32) {
        self.held.insert(offset, attempt);
    }

    /// Whether `attempt` is the one that may still settle it: not done, and its recorded
    /// attempt, or the first if none is recorded.
    pub(super) fn is_current(&self, offset: u16, attempt: i32) -> bool {
        !self.is_done(offset) && self.held(offset).unwrap_or(1) == attempt
    }
}

/// The record at `key` and its revision, if there is one (a deleted one counts as none).
pub(super) async fn read(kv: &Store, key: &str) -> Result<Option<(Block, u64)>, BusError> {
    let Some(entry) = kv.entry(key).await.map_err(nats_error)? else { return Ok(None) };
    if entry.operation != Operation::Put {
        return Ok(None);
    }
    let block = serde_json::from_slice(&entry.value)
        .map_err(|e| BusError::Invalid(format!("the lease record {key} is unreadable: {e}")))?;
    Ok(Some((block, entry.revision)))
}

/// Writes `block` if the record is still at `revision` (`None`: if there is none); its new
/// revision, or `None` if another instance changed it first.
pub(super) async fn swap(
    kv: &Store,
    key: &str,
    revision: Option<u64>,
    block: &Block,
) -> Result<Option<u64>, BusError> {
    use async_nats::jetstream::kv::{CreateErrorKind, UpdateErrorKind};
    let value: bytes::Bytes = serde_json::to_vec(block).map_err(|e| BusError::Invalid(e.to_string()))?.into();
    match revision {
        Some(revision) => match kv.update(key, value, revision).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(nats_error(e)),
        },
        None => match kv.create(key, value).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(nats_error(e)),
        },
    }
}

/// The done bitmap as a hex string: 256 characters for a full block.
mod hex_bits {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bits: &[u8], to: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(bits.len() * 2);
        for byte in bits {
            text.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            text.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
        }
        to.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(from)?;
        let digit = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
        text.as_bytes()
            .chunks(2)
            .map(|pair| match pair {
                [high, low] => digit(*high).zip(digit(*low)).map(|(h, l)| h << 4 | l),
                _ => None,
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| serde::de::Error::custom("the done bits are not hex"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_keeps_done_bits_and_attempts_through_its_encoding() {
        let mut block = Block::default();
        assert!(block.is_current(5, 1) && !block.is_current(5, 2), "no entry: the first attempt");
        block.set_held(5, 3);
        block.set_done(1023);
        block.set_done(0);
        let text = serde_json::to_string(&block).expect("encode");
        let back: Block = serde_json::from_str(&text).expect("decode");
        assert_eq!(back, block);
        assert!(back.is_done(0) && back.is_done(1023) && !back.is_done(1) && !back.is_done(8));
        assert!(back.is_current(5, 3) && !back.is_current(5, 1));
        let mut done = back;
        done.set_done(5);
        assert_eq!(done.held(5), None, "a done message keeps no attempt");
        assert!(!done.is_current(5, 3));
        assert!(serde_json::from_str::<Block>(r#"{"done":"0g"}"#).is_err(), "not hex");
    }

    #[test]
    fn messages_of_one_consumer_share_a_record_per_span_of_sequences() {
        assert_eq!(PREFIX, format!("b{SPAN}."), "the prefix names the span");
        assert_eq!(Spot::of("g--retry", 5), Spot { key: "b128.g--retry.0".into(), offset: 5 });
        assert_eq!(Spot::of("g--retry", SPAN + 2), Spot { key: "b128.g--retry.1".into(), offset: 2 });
        assert_ne!(Spot::of("g--a", 1).key, Spot::of("g--b", 1).key);
    }
}
