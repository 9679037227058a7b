//! What the backend works on: the stream's consumers per group, the KV buckets, and each
//! group's retry policy, kept in the lease bucket where every instance reads it.

use async_nats::jetstream::{self, consumer, kv, stream};
use futures_util::StreamExt as _;

use super::{JsBus, Policy, RETENTION, nats_error, poisoned};
use crate::backend::{BusError, Result};

impl JsBus {
    /// Every group that has subscribed, by name.
    pub async fn groups(&self) -> Result<Vec<String>> {
        let keys = self.inner.leases.keys().await.map_err(nats_error)?;
        let keys: Vec<String> = futures_util::TryStreamExt::try_collect(keys).await.map_err(nats_error)?;
        let mut groups: Vec<String> =
            keys.iter().filter_map(|k| k.strip_prefix("_groups.")).map(str::to_string).collect();
        groups.sort();
        Ok(groups)
    }

    pub(super) async fn policy(&self, group: &str) -> Result<Policy> {
        if let Some(p) = self.inner.groups.lock().map_err(|_| poisoned())?.get(group) {
            return Ok(*p);
        }
        let entry = self.inner.leases.get(format!("_groups.{group}")).await.map_err(nats_error)?;
        let policy: Policy = entry
            .and_then(|v| serde_json::from_slice(&v).ok())
            .ok_or_else(|| BusError::Invalid(format!("the group {group} has not subscribed")))?;
        self.inner.groups.lock().map_err(|_| poisoned())?.insert(group.to_string(), policy);
        Ok(policy)
    }

    /// The group's consumers: one per topic and its retry consumer.
    pub(super) async fn consumers(&self, group: &str) -> Result<Vec<consumer::PullConsumer>> {
        if let Some(known) = self.inner.consumers.lock().map_err(|_| poisoned())?.get(group) {
            return Ok(known.clone());
        }
        let prefix = format!("{group}--");
        let mut names: Vec<String> = Vec::new();
        let mut listed = self.inner.stream.consumer_names();
        while let Some(name) = listed.next().await {
            let name = name.map_err(nats_error)?;
            if name.starts_with(&prefix) {
                names.push(name);
            }
        }
        names.sort();
        let mut consumers = Vec::with_capacity(names.len());
        for name in names {
            consumers.push(self.inner.stream.get_consumer(&name).await.map_err(BusError::Nats)?);
        }
        self.inner.consumers.lock().map_err(|_| poisoned())?.insert(group.to_string(), consumers.clone());
        Ok(consumers)
    }

    pub(super) async fn durable(&self, name: String, subject: String) -> Result<()> {
        self.inner
            .stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: subject,
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: super::take::ACK_WAIT,
                    deliver_policy: consumer::DeliverPolicy::All,
                    max_deliver: -1,
                    max_ack_pending: -1,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats_error)?;
        Ok(())
    }
}

/// A KV bucket, its stream made here as the KV convention lays it out (the client's own
/// `create_key_value` asks for settings a 2.9 server does not answer in a form it reads).
pub(super) async fn bucket(js: &jetstream::Context, name: &str) -> Result<kv::Store> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age: RETENTION,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(nats_error)?;
    js.get_key_value(name).await.map_err(nats_error)
}
