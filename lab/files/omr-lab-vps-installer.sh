#!/bin/sh
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The lab's STAND-IN for OMR's VPS installer (debian-x86_64.sh of Ysurac/openmptcprouter-vps),
# served by omr-lab-internet: NOT OMR's. The real script needs the internet (OMR's apt repository,
# its kernels and packages). This one lays down what omr.deploy's omr stack relies on, where and how
# the real one does, and records what it was given, so the lab can check the role:
#   - fresh or update from the same markers (/etc/motd, /root/openmptcprouter_config.txt), keeping
#     the Server key on an update;
#   - /etc/openmptcprouter-vps-admin/omr-admin-config.json and /root/openmptcprouter_config.txt;
#   - /etc/sysctl.d/90-shadowsocks.conf with OMR's 6.18 keys, its v0 keys included, applied with
#     errors ignored as the real one does (only the keys of the network namespace: net.core.*, fs.*
#     would change the machine running the lab's containers);
#   - omr-admin.service answering on 65500 (plain HTTP here, HTTPS in OMR) and omr.service;
#   - the omr-server package at OMR_VERSION (built with dpkg-deb, so dpkg-query sees it);
#   - shorewall's params.net naming the default route's interface;
#   - sshd moved to 65222 where there is an sshd_config.
# It installs no kernel (a container runs its host's), no tunnel and no proxy.
set -eu
OMR_VERSION="0.1058-lab"
KERNEL=${KERNEL:-6.18}
STATE=/var/lib/omr-lab-installer
ADMIN=/etc/openmptcprouter-vps-admin
CONFIG_TXT=/root/openmptcprouter_config.txt
umask 022
mkdir -p "$STATE" "$ADMIN"
say() { echo "omr-lab-installer: $*"; }

say "OpenMPTCProuter VPS $OMR_VERSION stand-in, KERNEL=$KERNEL"
# What it was given: every variable OMR's script reads that is set, secrets as sha256.
SECRETS=" SHADOWSOCKS_PASS GLORYTUN_PASS DSVPN_PASS MLVPN_PASS UBOND_PASS MQVPN_KEY PSK UPSK V2RAY_UUID XRAY_UUID
OMR_ADMIN_PASS OMR_ADMIN_PASS_ADMIN SOFTETHERVPN_PASS_ADMIN SOFTETHERVPN_PASS_USER "
PLAIN="KERNEL UPSTREAM UPSTREAM6 SHADOWSOCKS SHADOWSOCKS_GO OBFS V2RAY_PLUGIN V2RAY XRAY GLORYTUN_TCP GLORYTUN_UDP
DSVPN MLVPN UBOND MQVPN OPENVPN OPENVPN_BONDING WIREGUARD SOFTETHERVPN FAIL2BAN BPFTUNE IPERF SPEEDTEST OMR_ADMIN TLS
UPDATE_OS FORCE_UPDATE_OS UPDATE REINSTALL SOURCES LOCALFILES NOINTERNET GRETUNNELS LANROUTES CHINA"
: >"$STATE/env.new"
chmod 600 "$STATE/env.new"
value=""
for name in $PLAIN $SECRETS; do
	eval "set=\${$name+x} value=\${$name-}"
	[ -n "$set" ] || continue
	case $(echo "$SECRETS" | tr '\n' ' ') in
	*" $name "*) echo "$name=sha256:$(printf '%s' "$value" | sha256sum | cut -d ' ' -f 1)" >>"$STATE/env.new" ;;
	*) echo "$name=$value" >>"$STATE/env.new" ;;
	esac
done
mv "$STATE/env.new" "$STATE/env"

if grep -qs "OpenMPTCProuter VPS" /etc/motd /etc/motd.head || [ -e "$CONFIG_TXT" ]; then
	mode=update
else
	mode=fresh
fi
echo "$(date +%s) $mode $OMR_VERSION" >>"$STATE/runs"
say "$mode install"

# The Server key: the inventory's, else the one an update finds, else a new one.
old=""
if [ "$mode" = update ] && [ -r "$ADMIN/omr-admin-config.json" ]; then
	old=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["users"][0]["openmptcprouter"]["user_password"])' \
		"$ADMIN/omr-admin-config.json" 2>/dev/null || true)
	[ "$old" = MySecretKey ] && old=""
fi
key=${OMR_ADMIN_PASS:-${old:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}}
admin=${OMR_ADMIN_PASS_ADMIN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
cat >"$ADMIN/omr-admin-config.json.new" <<EOF
{
    "port": 65500,
    "users": [
        {
            "openmptcprouter": {"username": "openmptcprouter", "user_password": "$key", "permission": "ro"},
            "admin": {"username": "admin", "user_password": "$admin", "permission": "rw"}
        }
    ]
}
EOF
chmod 600 "$ADMIN/omr-admin-config.json.new"
mv "$ADMIN/omr-admin-config.json.new" "$ADMIN/omr-admin-config.json"
cat >"$CONFIG_TXT" <<EOF
SSH port: 65222 (instead of port 22)
Your OpenMPTCProuter ADMIN API Server key (only for OpenMPTCProuter-VPS admin): $admin
Your OpenMPTCProuter Server key: $key
Your OpenMPTCProuter Server username: openmptcprouter
EOF
chmod 600 "$CONFIG_TXT"
say "keys in $ADMIN/omr-admin-config.json and $CONFIG_TXT"

cat >/etc/sysctl.d/90-shadowsocks.conf <<'EOF'
fs.file-max = 512000
net.core.rmem_max = 7500000
net.core.wmem_max = 7500000
net.core.default_qdisc = fq
net.ipv4.tcp_syncookies = 1
net.ipv4.tcp_tw_reuse = 1
net.ipv4.tcp_fin_timeout = 30
net.ipv4.tcp_keepalive_time = 7200
net.ipv4.ip_local_port_range = 9999 65000
net.ipv4.tcp_max_syn_backlog = 4096
net.ipv4.tcp_fastopen = 3
net.ipv4.tcp_rmem = 4096 87380 16777216
net.ipv4.tcp_wmem = 4096 87380 16777216
net.ipv4.tcp_notsent_lowat = 131072
net.ipv4.tcp_ecn = 2
net.mptcp.checksum_enabled = 0
net.mptcp.add_addr_timeout = 120
net.mptcp.allow_join_initial_addr_port = 1
net.mptcp.enabled = 1
net.mptcp.pm_type = 0
net.mptcp.stale_loss_cnt = 4
net.mptcp.mptcp_checksum=0
net.mptcp.mptcp_path_manager=fullmesh
net.mptcp.mptcp_scheduler=mptcp_burst
net.mptcp.mptcp_syn_retries=4
net.mptcp.mptcp_version=1
net.ipv4.tcp_congestion_control=bbr
net.ipv4.tcp_slow_start_after_idle=0
net.mptcp.blackhole_timeout = 0
net.mptcp.close_timeout = 60
net.mptcp.syn_retrans_before_tcp_fallback = 2
EOF
grep -E '^net\.(ipv4|mptcp)\.' /etc/sysctl.d/90-shadowsocks.conf | sysctl -p - >/dev/null 2>&1 || true
say "sysctls in /etc/sysctl.d/90-shadowsocks.conf (the v0 keys fail, as with OMR's)"

# omr-admin: the router's wizard logs in here (HTTPS in OMR; a static answer here).
mkdir -p /usr/share/omr-lab-admin
echo "{\"omr_version\": \"$OMR_VERSION\", \"stand_in\": true}" >/usr/share/omr-lab-admin/status
cat >/etc/systemd/system/omr-admin.service <<'EOF'
[Unit]
Description=OMR VPS admin API (the lab installer's stand-in)
After=network.target
[Service]
ExecStart=/usr/bin/python3 -m http.server 65500 --bind 0.0.0.0 --directory /usr/share/omr-lab-admin
Restart=on-failure
[Install]
WantedBy=multi-user.target
EOF
cat >/etc/systemd/system/omr.service <<'EOF'
[Unit]
Description=OMR VPS service (the lab installer's stand-in)
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable --now omr-admin.service omr.service >/dev/null 2>&1
say "omr-admin on 65500, omr.service"

pkg=$(mktemp -d)
mkdir -p "$pkg/DEBIAN"
cat >"$pkg/DEBIAN/control" <<EOF
Package: omr-server
Version: $OMR_VERSION
Architecture: all
Maintainer: omr.deploy lab <lab@localhost>
Description: stand-in for OMR's omr-server meta package (omr.deploy's lab)
EOF
dpkg-deb --build "$pkg" "$STATE/omr-server.deb" >/dev/null
dpkg -i "$STATE/omr-server.deb" >/dev/null
rm -rf "$pkg"
say "omr-server $OMR_VERSION"

iface=$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
mkdir -p /etc/shorewall
echo "NET_IFACE=${iface:-eth0}" >/etc/shorewall/params.net
if [ -e /etc/ssh/sshd_config ]; then
	sed -i 's/^#*Port .*/Port 65222/' /etc/ssh/sshd_config
	grep -q '^Port 65222' /etc/ssh/sshd_config || echo 'Port 65222' >>/etc/ssh/sshd_config
fi
grep -qs "OpenMPTCProuter VPS" /etc/motd || echo "OpenMPTCProuter VPS $OMR_VERSION" >>/etc/motd
say "done (OMR would say: reboot to use the new kernel; this stand-in installed none)"
