#!/usr/bin/env python3
"""A service in another language on the Slipway bus, with nothing but a Postgres driver.

    python3 python_client.py publish DATABASE_URL TOPIC JSON
    python3 python_client.py consume DATABASE_URL GROUP TOPIC COUNT

`publish` prints the new event's id. `consume` subscribes GROUP to TOPIC, handles COUNT
events (printing each as a JSON line) and exits. It waits with LISTEN/NOTIFY, never by
busy polling: between wake-ups it sleeps until the group's next due time (bus.next_due).

Protocol (docs/bus.md): bus.subscribe, bus.publish, bus.claim, bus.complete, bus.fail.
"""
import json
import sys
import uuid

import psycopg  # pip install "psycopg[binary]"


def publish(url, topic, payload):
    with psycopg.connect(url) as conn:  # one transaction: the event exists iff it commits
        row = conn.execute("SELECT bus.publish(%s, %s::jsonb)", (topic, payload)).fetchone()
        print(row[0])


def consume(url, group, topic, count):
    worker = f"python-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("LISTEN bus")
        conn.execute("SELECT bus.subscribe(%s, %s)", (group, topic))
        handled = 0
        while handled < count:
            rows = conn.execute(
                "SELECT message_id, topic, payload, attempt FROM bus.claim(%s, %s, %s, interval '30 seconds')",
                (group, worker, count - handled),
            ).fetchall()
            for message_id, topic_, payload, attempt in rows:
                try:
                    print(json.dumps({"id": str(message_id), "topic": topic_, "payload": payload}), flush=True)
                    conn.execute("SELECT bus.complete(%s, %s, %s)", (group, message_id, attempt))
                    handled += 1
                except Exception as error:  # the handler failed: retry later with backoff
                    conn.execute("SELECT bus.fail(%s, %s, %s, %s)", (group, message_id, attempt, str(error)))
            if not rows:
                due = conn.execute("SELECT extract(epoch FROM bus.next_due(%s) - now())", (group,)).fetchone()[0]
                timeout = 5.0 if due is None else max(0.0, min(5.0, float(due)))
                for _ in conn.notifies(timeout=timeout, stop_after=1):
                    pass


def main():
    command, url = sys.argv[1], sys.argv[2]
    if command == "publish":
        publish(url, sys.argv[3], sys.argv[4])
    elif command == "consume":
        consume(url, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit(f"unknown command {command!r}: publish or consume")


if __name__ == "__main__":
    main()
