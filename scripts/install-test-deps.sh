#!/usr/bin/env bash
# Install the servers the integration tests run for real: PostgreSQL (server binaries and
# pg_stat_statements), PgBouncer, Redis, Memcached (with SASL), Prometheus (promtool), Alertmanager and
# prometheus-postgres-exporter (benchmarks), Chromium and npm (the browser beacon test). Only what is missing is installed; needs root
# (or sudo). Without either it lists what is missing and the tests that need it skip.
set -euo pipefail

need=()
have_pg_server() {
  [ -n "${PG_BIN:-}" ] && [ -x "${PG_BIN}/initdb" ] && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
have_pg_server || need+=(postgresql postgresql-contrib)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] || need+=(memcached)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
[ -x /usr/bin/prometheus-postgres-exporter ] || need+=(prometheus-postgres-exporter)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# the beacon test in a real browser: headless Chromium and npm (for the web-vitals package)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v saslpasswd2 >/dev/null 2>&1 || need+=(sasl2-bin)
# the PLAIN mechanism for memcached's SASL test (a Recommends, not a Depends, of libsasl2)
ls /usr/lib/*/sasl2/libplain.so* >/dev/null 2>&1 || need+=(libsasl2-modules)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install-test-deps: not root; missing Debian packages: ${need[*]}" >&2
    echo "install-test-deps: tests that need them will be skipped" >&2
    exit 0
  fi
fi

echo "install-test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# don't let package scripts start system-wide services: the tests start their own
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
$SUDO chmod +x /usr/sbin/policy-rc.d
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
$SUDO rm -f /usr/sbin/policy-rc.d
