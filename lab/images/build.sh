#!/usr/bin/env bash
# Build a lab image from debootstrap, only when its recipe changed.
# Usage: build.sh SUITE TAG    e.g. build.sh bookworm localhost/omr-lab/debian:12
set -euo pipefail
suite=$1 tag=$2
here=$(cd "$(dirname "$0")" && pwd)
: "${CONTAINERS_CONF:=$here/../containers.conf}"
export CONTAINERS_CONF
# The recipe is this script plus the package list: its hash labels the image.
packages=$(grep -v '^#' "$here/packages.txt" | xargs | tr ' ' ',')
more=$(grep -v '^#' "$here/packages-apt.txt" | xargs)
recipe=$( (cat "$0" "$here/packages.txt" "$here/packages-apt.txt"; echo "$suite") | sha256sum | cut -c1-16)
have=$(podman image inspect --format '{{ index .Labels "omr.recipe" }}' "$tag" 2>/dev/null || true)
if [ "$have" = "$recipe" ]; then
  echo "$tag is up to date (recipe $recipe)"
  exit 0
fi
root=$(mktemp -d /var/tmp/omr-lab-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "building $tag from debootstrap $suite (recipe $recipe)"
debootstrap --variant=minbase --include="$packages" "$suite" "$root" http://deb.debian.org/debian >"$root.log" 2>&1 \
  || { tail -30 "$root.log"; exit 1; }
if [ -n "$more" ]; then
  # shellcheck disable=SC2086  # a list of package names
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends $more >"$root.log" 2>&1 \
    || { tail -30 "$root.log"; exit 1; }
fi
rm -f "$root.log"
# Units that cannot work in a container only slow the boot down.
for unit in systemd-networkd-wait-online.service systemd-timesyncd.service getty@tty1.service \
            apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
echo "omr-lab" > "$root/etc/hostname"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'LABEL omr.recipe='"$recipe" \
  --change 'ENV container=podman' \
  - "$tag" >/dev/null
echo "built $tag"
