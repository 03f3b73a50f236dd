#!/usr/bin/env bash
# Install what Astara needs on a Debian 12 host, idempotently, and start the services it uses.
#
#   scripts/setup.sh          everything for the all-in-one local cloud (the demo)
#   scripts/setup.sh test     the same, plus the test tools (and Nova, for the Nova provider)
#   scripts/setup.sh nova     the demo's packages plus Nova, Placement and Glance
#
# Needs root (apt, namespaces). Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-run}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh needs root (apt packages, network namespaces); run it with sudo" >&2
    exit 1
fi

# Debian packages. neutron-server runs on the system Python, from Debian's OpenStack packages.
APT_PACKAGES=(
    python3 python3-venv python3-dev gcc
    rabbitmq-server neutron-server python3-neutron
    iproute2 nftables conntrack dnsmasq-base bird2 isc-dhcp-client iputils-ping curl tcpdump
    openssl  # the appliance mutual-TLS test makes its CA and certificates with it
)
# Nova, Placement and Glance for the Nova provider's tests and the local kit's optional Nova
# (`scripts/setup.sh test`, or `scripts/setup.sh nova`): kept apart so the basic demo stays light.
# No nova-compute package (it pulls libvirt/qemu): the compute service runs from python3-nova
# with the fake virt driver.
NOVA_APT_PACKAGES=(
    nova-api nova-conductor nova-scheduler python3-nova placement-api glance-api
)
if [ "$MODE" = test ] || [ "$MODE" = nova ]; then
    APT_PACKAGES+=("${NOVA_APT_PACKAGES[@]}")
fi
# The database tests run on MariaDB and PostgreSQL too (test mode only); the vm tier builds the
# appliance image (scripts/build-image.sh) and boots it under qemu with a Nova-style config drive.
if [ "$MODE" = test ]; then
    APT_PACKAGES+=(mariadb-server mariadb-client postgresql)
    APT_PACKAGES+=(mmdebstrap e2fsprogs qemu-utils qemu-system-x86 genisoimage openssh-client)
    # Coordination backends for the clustering tests (tests/functional/coordination): started
    # per test through pifpaf on free loopback ports, never as the Debian services.
    APT_PACKAGES+=(zookeeper etcd-server etcd-client redis-server)
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    # Package scripts must not start their own daemons (neutron-server, rabbitmq on every
    # interface): we start what we need ourselves, bound to loopback.
    policy=/usr/sbin/policy-rc.d
    saved=""
    if [ -e "$policy" ]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"
    restore_policy() { if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi; }
    trap restore_policy EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    restore_policy
    trap - EXIT
fi

# The project's virtualenv (Python >= 3.11). Reinstalled only when pyproject.toml changes.
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    say "creating the virtualenv (.venv)"
    "$PYTHON" -m venv .venv
    .venv/bin/pip install -q --upgrade pip
fi
extras="appliance,orchestrator"
[ "$MODE" = test ] && extras="$extras,dev"
# The product (astara) and, beside it, the local cloud kit (its own distribution,
# astara-localcloud in localcloud/: the demo's `astara-local`, the harness), both editable.
stamp=".venv/.astara-installed-$(cat pyproject.toml localcloud/pyproject.toml | sha1sum | cut -c1-12)-${extras//,/-}"
if [ ! -e "$stamp" ]; then
    say "installing astara[$extras] and astara-localcloud into .venv"
    .venv/bin/pip install -q -e ".[$extras]" -e ./localcloud
    rm -f .venv/.astara-installed-*
    touch "$stamp"
fi

# RabbitMQ on loopback (started if nothing listens on 127.0.0.1:5672).
say "checking RabbitMQ on 127.0.0.1:5672"
.venv/bin/python -c 'from astara_localcloud import rabbit; rabbit.ensure_running()'

# MariaDB and PostgreSQL for the database tests: started if stopped, and a test role that may
# create its throwaway astara_test_* databases (tests/functional/db/conftest.py).
if [ "$MODE" = test ]; then
    say "checking MariaDB (127.0.0.1:3306) and PostgreSQL (127.0.0.1:5432)"
    if [ -d /run/systemd/system ]; then
        systemctl start mariadb postgresql
    else
        if ! mysqladmin -uroot status >/dev/null 2>&1; then
            install -d -o mysql -g mysql /run/mysqld
            start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
        fi
        if ! pg_isready -q -h 127.0.0.1 -p 5432; then
            # shellcheck disable=SC2046
            pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
        fi
    fi
    for _ in $(seq 60); do
        mysqladmin -uroot status >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 0.5
    done
    mysql -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'astara_test'@'localhost' IDENTIFIED BY 'astara_test';
CREATE USER IF NOT EXISTS 'astara_test'@'127.0.0.1' IDENTIFIED BY 'astara_test';
GRANT ALL PRIVILEGES ON `astara\_test\_%`.* TO 'astara_test'@'localhost';
GRANT ALL PRIVILEGES ON `astara\_test\_%`.* TO 'astara_test'@'127.0.0.1';
SQL
    (cd / && runuser -u postgres -- psql -q -v ON_ERROR_STOP=1) <<'SQL'
SELECT 'CREATE ROLE astara_test LOGIN CREATEDB PASSWORD ''astara_test'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'astara_test')\gexec
SQL
fi

# The coordination backends' Debian services are not used (the tests and the kit start their
# own): if a package's scripts enabled or started one, stop and disable it, through systemd.
if [ "$MODE" = test ] && [ -d /run/systemd/system ]; then
    for unit in zookeeper etcd; do
        if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit"; then
            say "disabling the Debian $unit service (the tests start their own)"
            systemctl disable --now "$unit" >/dev/null 2>&1 || true
        fi
    done
fi

say "setup done ($ROOT)"
