#!/bin/bash
# The official postgres image's start-up contract, for the local stand-in image.
set -euo pipefail

if [[ "${1:-}" == postgres && "$(id -u)" == 0 ]]; then
    mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

# POSTGRES_PASSWORD_FILE=/run/secrets/x sets POSTGRES_PASSWORD from the file (Docker secrets).
for var in POSTGRES_PASSWORD POSTGRES_USER POSTGRES_DB POSTGRES_INITDB_ARGS; do
    file_var="${var}_FILE"
    if [[ -n "${!file_var:-}" ]]; then
        if [[ -n "${!var:-}" ]]; then
            echo "postgres: both $var and $file_var are set, but they are exclusive" >&2
            exit 1
        fi
        export "$var"="$(<"${!file_var}")"
    fi
done

if [[ "${1:-}" == postgres && ! -s "$PGDATA/PG_VERSION" ]]; then
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [[ -z "${POSTGRES_PASSWORD:-}" && "$auth" != trust ]]; then
        echo "postgres: the database is uninitialized and POSTGRES_PASSWORD is not set." >&2
        echo "          Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust, never in production)." >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    # shellcheck disable=SC2086
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" \
        ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"
    # Init scripts run against a server that listens only on its socket.
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
    export PGUSER="$user"
    if [[ "$db" != postgres ]]; then
        psql -v ON_ERROR_STOP=1 --dbname postgres -q -c "CREATE DATABASE \"$db\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            # The user's init scripts, sourced as the official image does.
            *.sh)
                echo "postgres: running $f"
                # shellcheck source=/dev/null
                . "$f"
                ;;
            *.sql) echo "postgres: running $f"; psql -v ON_ERROR_STOP=1 --dbname "$db" -q -f "$f" ;;
            *.sql.gz) echo "postgres: running $f"; gunzip -c "$f" | psql -v ON_ERROR_STOP=1 --dbname "$db" -q ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    unset PGUSER
    echo "postgres: initialised $PGDATA (user $user, database $db)"
fi

if [[ "${1:-}" == postgres ]]; then
    shift
    exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
