#!/bin/bash
# Run once by the official mariadb image's entrypoint on an empty datadir (/docker-entrypoint-initdb.d):
# the users scripts/stack creates (proxy, repl, promoter); on a primary the demo's databases (they
# reach its replica through the binlog); on a replica (PRIMARY_PORT set) GTID replication from it.
# Sourced by the entrypoint (not executable), so docker_process_sql is at hand.

docker_process_sql <<SQL
SET SESSION sql_log_bin=0;
CREATE USER IF NOT EXISTS 'proxy'@'%' IDENTIFIED BY 'proxy';
GRANT ALL PRIVILEGES ON *.* TO 'proxy'@'%';
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
CREATE USER IF NOT EXISTS 'promoter'@'%' IDENTIFIED BY 'promoter';
GRANT ALL PRIVILEGES ON *.* TO 'promoter'@'%';
FLUSH PRIVILEGES;
SQL

if [ -z "${PRIMARY_PORT:-}" ]; then
  docker_process_sql <<SQL
CREATE DATABASE IF NOT EXISTS shardcat_1;
CREATE DATABASE IF NOT EXISTS shardcat_2;
CREATE DATABASE IF NOT EXISTS shardcat_default;
CREATE DATABASE IF NOT EXISTS passthru;
SQL
else
  # every service shares one network namespace (the compose file's `net`): the primary is on
  # 127.0.0.1, as in scripts/stack; the IO thread retries until it is up
  docker_process_sql <<SQL
SET SESSION sql_log_bin=0;
REVOKE READ_ONLY ADMIN ON *.* FROM 'proxy'@'%';
CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${PRIMARY_PORT}, MASTER_USER='repl',
  MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
SQL
fi
