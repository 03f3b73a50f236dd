#!/usr/bin/env bash
# Build the appliance image: a Debian 12 root file system (qcow2) with its kernel and initrd beside it.
#
#   scripts/build-image.sh [--state-dir DIR] [--force] [--package PKG]...
#
# Made from Debian packages with mmdebstrap (no network inside the build beyond the Debian mirror):
# the cloud kernel, systemd, the appliance's daemons (dnsmasq, bird2, nftables, iproute2, conntrack),
# openssh-server and python3; astara[appliance] from this checkout, as wheels, in a venv at
# /opt/astara; the systemd units of docs/appliance-image.md (first boot reads the config drive the
# Nova provider's user data is on, then the API starts).
#
# Output, in DIR/<hash of the inputs>/ (DIR defaults to /var/cache/astara/images; `latest` points
# at the newest build):
#   root.qcow2   the root file system (ext4, no partition table: root=/dev/vda)
#   vmlinuz      the kernel       initrd.img   its initramfs
#   manifest.json  package versions, the wheels' sha256, the inputs' hash, sizes, build time
# Cached: a build whose inputs (this script, the package list, the checkout's astara/ and
# pyproject.toml, the units) have not changed prints the existing directory and exits at once.
# Needs root, mmdebstrap, e2fsprogs and qemu-utils (scripts/setup.sh test installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

STATE_DIR=/var/cache/astara/images
FORCE=0
PACKAGES=(
    linux-image-cloud-amd64 initramfs-tools systemd systemd-sysv udev kmod
    dnsmasq-base bird2 nftables iproute2 conntrack openssh-server sudo
    netbase  # /etc/protocols and /etc/services: nft resolves "tcp", "icmp" by name
    python3 python3-venv
)
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --state-dir) STATE_DIR=$2; shift 2 ;;
        --force) FORCE=1; shift ;;
        --package) PACKAGES+=("$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
[ "$(id -u)" -eq 0 ] || { echo "build-image.sh needs root (mmdebstrap, a chroot)" >&2; exit 1; }
for tool in mmdebstrap mke2fs qemu-img; do
    command -v "$tool" >/dev/null || { echo "build-image.sh: $tool missing (scripts/setup.sh test)" >&2; exit 1; }
done

UNITS=$ROOT/scripts/image
inputs_hash=$( (cat "$0"; printf '%s\n' "${PACKAGES[@]}"; cat pyproject.toml;
                find astara "$UNITS" -type f -not -name '*.pyc' | LC_ALL=C sort | xargs cat) \
              | sha256sum | cut -c1-16)
OUT=$STATE_DIR/$inputs_hash
up_to_date() {
    if [ "$FORCE" = 0 ] && [ -e "$OUT/manifest.json" ]; then
        say "image up to date (inputs $inputs_hash): $OUT"
        ln -sfn "$inputs_hash" "$STATE_DIR/latest"
        echo "$OUT"
        exit 0
    fi
}
up_to_date
# Refuse an unknown package before anything is built (mmdebstrap's own error is deep in its log).
known=$(apt-cache policy "${PACKAGES[@]}" 2>/dev/null | sed -n 's/^\([^ ].*\):$/\1/p')
unknown=()
for pkg in "${PACKAGES[@]}"; do
    grep -qxF "$pkg" <<<"$known" || unknown+=("$pkg")
done
if [ ${#unknown[@]} -gt 0 ]; then
    echo "build-image.sh: no such Debian package: ${unknown[*]} (apt-get update? a typo?)" >&2
    exit 3
fi
# One build at a time (scripts/test.sh starts one in the background while the tests that do not
# need the image run): another invocation waits here, then finds the image built.
mkdir -p "$STATE_DIR"
exec 9>"$STATE_DIR/.build.lock"
flock 9
up_to_date
start=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/astara-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

say "building the astara[appliance] wheels from $ROOT"
PY=${PYTHON:-$ROOT/.venv/bin/python}
"$PY" -m pip wheel -q -w "$WORK/wheels" "$ROOT[appliance]" 2>&1 | grep -v '^WARNING: Location' || true
ls "$WORK"/wheels/astara-*.whl >/dev/null

say "mmdebstrap: Debian 12 with ${#PACKAGES[@]} packages"
mkdir -p "$WORK/rootfs"
include=$(IFS=,; echo "${PACKAGES[*]}")
mmdebstrap --variant=minbase --mode=root --include="$include" \
    --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook="mkdir -p \$1/tmp/wheels && cp $WORK/wheels/*.whl \$1/tmp/wheels/" \
    --customize-hook="chroot \$1 python3 -m venv /opt/astara" \
    --customize-hook="chroot \$1 /opt/astara/bin/pip install -q --no-index --find-links /tmp/wheels 'astara[appliance]'" \
    --customize-hook="rm -rf \$1/tmp/wheels \$1/opt/astara/lib/python3*/site-packages/pip*" \
    --customize-hook="$UNITS/customize.sh \$1 $UNITS" \
    --customize-hook="chroot \$1 dpkg-query -W -f='\${Package}\t\${Version}\n' > $WORK/packages.tsv" \
    bookworm "$WORK/rootfs" 2>&1 | sed 's/^/    /'

say "packing the root file system"
cp "$WORK"/rootfs/boot/vmlinuz-* "$WORK/vmlinuz"
cp "$WORK"/rootfs/boot/initrd.img-* "$WORK/initrd.img"
rm -rf "$WORK"/rootfs/boot/initrd.img-* "$WORK"/rootfs/var/cache/apt/* "$WORK"/rootfs/var/lib/apt/lists/*
used_mb=$(du -sm "$WORK/rootfs" | cut -f1)
size_mb=$(( used_mb + used_mb / 2 + 256 ))  # room for logs, the saved document, conntrack
mke2fs -q -t ext4 -L astara-root -d "$WORK/rootfs" "$WORK/root.raw" "${size_mb}M"
qemu-img convert -c -O qcow2 "$WORK/root.raw" "$WORK/root.qcow2"

"$PY" - "$WORK" "$inputs_hash" "$start" "$size_mb" <<'EOF'
import hashlib, json, pathlib, sys, time
work, inputs, start, size_mb = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
packages = dict(line.split("\t", 1) for line in (work / "packages.tsv").read_text().splitlines())
wheels = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((work / "wheels").glob("*.whl"))}
manifest = {
    "inputs": inputs, "distribution": "debian bookworm", "packages": packages, "wheels": wheels,
    "files": {n: (work / n).stat().st_size for n in ("root.qcow2", "vmlinuz", "initrd.img")},
    "filesystem_mb": size_mb, "kernel_cmdline": "root=/dev/vda ro console=ttyS0 net.ifnames=0 quiet",
    "build_seconds": round(time.time() - start),
}
(work / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
EOF
mkdir -p "$OUT"
mv "$WORK/root.qcow2" "$WORK/vmlinuz" "$WORK/initrd.img" "$OUT/"
mv "$WORK/manifest.json" "$OUT/"  # last: its presence means the build is complete
ln -sfn "$inputs_hash" "$STATE_DIR/latest"
say "image built in $(( $(date +%s) - start )) s: $OUT ($(du -h "$OUT/root.qcow2" | cut -f1) qcow2)"
echo "$OUT"
