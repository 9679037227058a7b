//! The bus conformance suite: behaviour any backend must show. `suite` holds the checks,
//! generic over [`bus::Backend`]; each backend instantiates them (Postgres here; NATS
//! JetStream will add its own `conformance!` line).

mod instances;
mod outbox;
mod python;
mod restart;
mod suite;
mod transactional;

use bus::pg::PgBus;
use testkit::TestDb;

/// A Postgres bus on a fresh database.
pub async fn pg() -> PgBus {
    let db = TestDb::create().await;
    bus::migrations().up(&db.db_config()).await.expect("bus migrations");
    PgBus::new(db.pool().await)
}

/// A JetStream bus on the NATS at NATS_URL (default 127.0.0.1:4222), in a namespace of its
/// own (its stream and buckets are this test's alone).
pub async fn jetstream() -> bus::nats::JsBus {
    let namespace = testkit::nats::namespace().await;
    bus::nats::JsBus::connect(&testkit::nats::url(), &namespace)
        .await
        .expect("NATS with JetStream at NATS_URL")
}

/// Instantiates every check of the suite for one backend.
macro_rules! conformance {
    ($backend:ident => $make:expr; $($name:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::suite::$name($make).await;
                }
            )*
        }
    };
}

/// Every check of the suite, for one backend.
macro_rules! every_check {
    ($backend:ident => $make:expr) => {
        conformance!($backend => $make;
        fan_out_reaches_every_subscribed_group_once,
        a_group_gets_what_was_published_while_none_of_its_instances_ran,
        competing_consumers_in_a_group_handle_each_message_once,
        a_dead_workers_lease_expires_and_another_instance_takes_over,
        a_completion_from_a_stale_attempt_is_ignored,
        failures_back_off_then_dead_letter_with_the_last_error,
        a_permanent_failure_dead_letters_at_once,
        a_stale_attempts_permanent_failure_neither_dead_letters_nor_replaces_the_current_ones,
        a_delayed_message_waits_for_its_time,
        a_second_publish_with_the_same_dedupe_key_is_a_no_op,
        shutdown_gives_back_unfinished_deliveries_without_spending_an_attempt,
        a_worker_never_runs_more_than_its_concurrency,
        a_sleeping_worker_is_woken_by_a_publish_not_by_its_poll_interval,
        a_publish_racing_a_groups_first_subscribe_is_not_lost,
        a_batch_publish_fans_out_in_order_and_drops_used_dedupe_keys,
        a_batch_completion_or_extension_skips_stale_attempts,
        a_handler_slower_than_its_lease_keeps_it_by_the_workers_heartbeat,
        a_message_over_the_size_limit_is_refused_at_publish_and_nothing_is_published,
        a_sleeping_worker_runs_its_own_retry_when_it_falls_due_not_at_its_poll_interval,
        );
    };
}

every_check!(postgres => crate::pg().await);
every_check!(jetstream => crate::jetstream().await);
