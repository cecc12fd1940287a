#!/usr/bin/env bash
# Start Redis and PostgreSQL on loopback if they are not already answering (installing them if absent).
# Install Prometheus, Alertmanager and Chromium if their binaries are absent: the alerting tests start their own
# instances on free ports, so the packages' own services (if the package starts them) are not used.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need_install=()
up 6379 || command -v redis-server >/dev/null || need_install+=(redis-server)
up 5432 || command -v pg_ctlcluster >/dev/null || need_install+=(postgresql)
need_bare=()  # without their recommends (node exporter, SNMP, smartmontools...): the tests need none
command -v prometheus >/dev/null || need_bare+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_bare+=(prometheus-alertmanager)
command -v chromium >/dev/null || need_bare+=(chromium)  # the capacity report's and the web UI's browser tests
if ((${#need_install[@]} + ${#need_bare[@]})); then
  echo "installing ${need_install[*]} ${need_bare[*]}"
  apt-get update -qq
  if ((${#need_install[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
  fi
  if ((${#need_bare[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_bare[@]}" >/dev/null
  fi
fi

if ! up 6379; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/automation.log
fi
if ! up 5432; then
  echo "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -n | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 1 50); do
  up 6379 && up 5432 && exit 0
  sleep 0.2
done
echo "Redis or PostgreSQL did not come up" >&2
exit 1
