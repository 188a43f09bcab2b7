#!/bin/sh
# Run once by the postgres image when it creates the cluster: the portal's own login role. It owns nothing; the migrate
# service (the owner, POSTGRES_USER) grants it what it needs after each migration (apps/audit/dbroles.py).
# On a cluster created before this script existed, run the same statement once by hand.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v app_password="$ATTEST_DB_PASSWORD" <<'SQL'
CREATE ROLE attest_app LOGIN PASSWORD :'app_password';
SQL
