#!/usr/bin/env bash
# Build a lab image from debootstrap, only when its recipe changed.
# Usage: build.sh SUITE TAG [KIND]    e.g. build.sh bookworm localhost/omr-lab/debian:12
# KIND debian (the default): a systemd host with python3. KIND omr: the OMR stand-in, with no
# python3 and no systemd: busybox as /bin/sh, dropbear, and lab/omr's uci, reload_config and init.
set -euo pipefail
suite=$1 tag=$2 kind=${3:-debian}
here=$(cd "$(dirname "$0")" && pwd)
omr=$here/../omr
: "${CONTAINERS_CONF:=$here/../containers.conf}"
export CONTAINERS_CONF
if [ "$kind" = omr ]; then
  lists=("$here/packages-omr.txt")
  mapfile -t extra < <(find "$omr" -type f | sort)
  cmd=/sbin/omr-lab-init
else
  lists=("$here/packages.txt")
  extra=("$here/packages-apt.txt")
  cmd=/lib/systemd/systemd
fi
# The recipe is this script, the package lists and the stand-in's files: its hash labels the image.
packages=$(grep -hv '^#' "${lists[@]}" | xargs | tr ' ' ',')
more=""
[ "$kind" = omr ] || more=$(grep -v '^#' "$here/packages-apt.txt" | xargs)
recipe=$( (cat "$0" "${lists[@]}" "${extra[@]}"; echo "$suite $kind") | sha256sum | cut -c1-16)
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
if [ "$kind" = omr ]; then
  # An OMR router's shell: busybox ash for /bin/sh and root, busybox awk; the stand-in's programs.
  ln -sf busybox "$root/bin/sh"
  ln -sf busybox "$root/bin/ash"
  ln -sf /bin/busybox "$root/etc/alternatives/awk"
  for applet in udhcpc syslogd sysctl ps ping; do ln -sf /bin/busybox "$root/sbin/$applet"; done
  sed -i 's|^root:\([^:]*:[^:]*:[^:]*:[^:]*:[^:]*\):.*$|root:\1:/bin/sh|' "$root/etc/passwd"
  install -m 0755 "$omr/uci" "$root/sbin/uci"
  install -m 0755 "$omr/reload_config" "$root/sbin/reload_config"
  install -m 0755 "$omr/init" "$root/sbin/omr-lab-init"
  install -d -m 0755 "$root/etc/init.d" "$root/etc/config" "$root/usr/share/udhcpc"
  install -m 0755 "$omr/mptcp.init" "$root/etc/init.d/mptcp"
  install -m 0755 "$omr/openmptcprouter-vps.init" "$root/etc/init.d/openmptcprouter-vps"
  install -m 0755 "$omr/udhcpc.script" "$root/usr/share/udhcpc/omr-lab.script"
  install -m 0644 "$omr/openwrt_release" "$root/etc/openwrt_release"
  install -m 0644 "$omr"/config/* "$root/etc/config/"
  install -d -m 0700 "$root/root/.ssh"
  # The package's own service would start with the default configuration; OMR's init runs ss-redir.
  rm -f "$root/etc/init.d/shadowsocks-libev"
  if [ -e "$root/usr/bin/python3" ]; then echo "python3 is in the OMR stand-in" >&2; exit 1; fi
  echo "omr-lab-omr" > "$root/etc/hostname"
else
  # Units that cannot work in a container only slow the boot down.
  for unit in systemd-networkd-wait-online.service systemd-timesyncd.service getty@tty1.service \
              apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  # Debian enables node_exporter as it installs it, listening on every address; the roles' monitoring
  # concern configures and enables it where it is asked for (disabled, not masked, for them to enable).
  rm -f "$root/etc/systemd/system/multi-user.target.wants/prometheus-node-exporter.service"
  echo "omr-lab" > "$root/etc/hostname"
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import \
  --change 'CMD ["'"$cmd"'"]' \
  --change 'LABEL omr.recipe='"$recipe" \
  --change 'ENV container=podman' \
  - "$tag" >/dev/null
echo "built $tag"
