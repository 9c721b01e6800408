#!/bin/sh
# Everything omr.deploy.vps, .router and .wifi_bridge may change, as text: compared before and after a run that must
# change nothing (check mode on a fresh host, a rejected input, too little memory).
echo "## sysctl.d"; ls -1 /etc/sysctl.d/ 2>/dev/null
echo "## /etc/systemd/system"; ls -1 /etc/systemd/system/ 2>/dev/null
echo "## /usr/local/sbin"; ls -1 /usr/local/sbin/ 2>/dev/null
echo "## local facts"; ls -1 /etc/ansible/facts.d/ 2>/dev/null
echo "## units"
# The roles' own units, whatever they are, and those the VPS role masks.
units=$(systemctl list-unit-files --no-legend --plain 'omr-*' 2>/dev/null | awk '$1 !~ /@\./ { print $1 }')
for u in rpcbind.service rpcbind.socket exim4.service $units; do
  enabled=$(systemctl is-enabled "$u" 2>/dev/null || true)
  # A static unit runs when its timer fires: whether it is active is a moment, not configuration.
  if [ "$enabled" = static ]; then
    echo "$u $enabled"
  else
    echo "$u $enabled $(systemctl is-active "$u" 2>/dev/null || true)"
  fi
done
systemctl list-units --all --plain --no-legend "omr-router-dhcp@*" 2>/dev/null | awk '{ print $1, $3, $4 }'
echo "## DHCP leases"; grep -H . /run/omr-router/dhcp/*.env 2>/dev/null
echo "## mptcp"
# The quality timer owns the backup flag of the WANs it watches: a poor minute is not a change.
watched=$(python3 -c 'import json; print(" ".join(w["device"] for w in json.load(open("/etc/omr-router/plan.json"))["wans"] if w.get("quality")))' 2>/dev/null || true)
ip mptcp endpoint show | while read -r line; do
  for dev in $watched; do
    case "$line " in *" dev $dev "*) line=$(echo "$line" | sed 's/ backup / /') ;; esac
  done
  echo "$line"
done
ip mptcp limits show
echo "## routing"; ip -4 rule show; ip -4 route show table all | grep -v "^local\|^broadcast"
echo "## addresses"; ip -4 -o addr show | awk '{ print $2, $4 }'
# Terse: without set elements, which come and go with the lab hotspot's portal sessions.
echo "## nft"; nft -t list ruleset 2>/dev/null | md5sum
echo "## configuration files and programs"
for d in /etc/omr-wifi-bridge /etc/wpa_supplicant /usr/local/lib/omr-wifi-bridge /etc/omr-router /usr/local/lib/omr-router \
         /etc/omr-vps /usr/local/lib/omr-deploy; do
  [ -d "$d" ] && (cd "$d" && md5sum ./* 2>/dev/null | sed "s#  ./#  $d/#")
done
echo "## sysctls"
for f in /proc/sys/vm/swappiness /proc/sys/net/mptcp/* /proc/sys/net/ipv4/tcp_rmem /proc/sys/net/ipv4/tcp_wmem \
         /proc/sys/net/ipv4/tcp_congestion_control /proc/sys/net/core/rmem_max /proc/sys/net/core/wmem_max \
         /proc/sys/net/ipv4/tcp_notsent_lowat /proc/sys/net/ipv4/tcp_fastopen; do
  [ -r "$f" ] && echo "$f $(cat "$f")"
done
exit 0
