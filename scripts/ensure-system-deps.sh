#!/usr/bin/env bash
# Installs the Debian packages the tests (or benchmarks) need when they are missing, and
# starts the local PostgreSQL when it is not answering. Idempotent.
set -euo pipefail
profile="${1:-test}"

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have psql     || need+=(postgresql-client)
have pgbench  || need+=(postgresql-contrib)
have curl     || need+=(curl)
have openssl  || need+=(openssl)
have nginx    || need+=(nginx-light)
# pgjdbc and a JDK: test/e2e/postgres/mtls.test.ts compiles a small JDBC probe at test time.
[ -f /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
have javac    || need+=(default-jdk-headless)
# sysbench: test/e2e/mysql/sysbench.test.ts drives oltp_read_write through the MySQL connector.
have sysbench || need+=(sysbench)
# OpenSSH: test/e2e/ssh starts its own sshd and drives the real ssh, scp and sftp clients
# through the SSH connector; tmux runs `ssh -tt` under a real terminal.
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
have ssh      || need+=(openssh-client)
have tmux     || need+=(tmux)
# Headless Chromium: test/e2e/console drives the web console with playwright-core (executablePath
# /usr/bin/chromium); DejaVu so that pages and screenshots render text without the recommended fonts.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# strace: packages/audit/test/wal-sync.test.ts checks on the real system calls that a strict
# append resolves only after the WAL was synced; the benchmarks count fsyncs with it too.
have strace   || need+=(strace)
# nats-server: the agent's tests start JetStream servers of their own (agent/test).
[ -x /usr/sbin/nats-server ] || need+=(nats-server)
# asciinema: test/e2e/ssh/shell.test.ts plays a recording with Debian's `asciinema cat`.
have asciinema || need+=(asciinema)
# The benchmarks' baselines and load generators (make test runs the benchmark driver as a
# smoke, test/e2e/bench/smoke.test.ts, so the test profile needs them too).
have pgbouncer || need+=(pgbouncer)
have wrk       || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  echo "system-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The local MariaDB (127.0.0.1:3306, root without a password) for the MySQL connector's tests.
if command -v mariadbd >/dev/null 2>&1 && ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  echo "system-deps: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 30); do mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 1; done
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "system-deps: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done
echo "system-deps: PostgreSQL is not answering on 127.0.0.1:5432" >&2
exit 1
