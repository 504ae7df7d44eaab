#!/bin/bash
# The backends' health check: the server answers on its TCP port (not the entrypoint's socket-only
# start-up server); a replica's replication threads both run.
set -euo pipefail
port=$1
mariadb-admin --protocol=TCP -h127.0.0.1 -P"$port" -uproxy -pproxy ping >/dev/null
if [ "${2:-}" = replica ]; then
  st=$(mariadb --protocol=TCP -h127.0.0.1 -P"$port" -uproxy -pproxy -e 'SHOW SLAVE STATUS\G')
  grep -q 'Slave_IO_Running: Yes' <<<"$st"
  grep -q 'Slave_SQL_Running: Yes' <<<"$st"
fi
