# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tests/audit/test_router.py through the fleet audit's runner, on both backends, against a
fake router: a `local` host whose PATH starts with stand-ins for `ip`, `uci`, `pidof`,
`systemctl` and `omr-router-net` that print what a router printed (tests/unit/fixtures/router/
configured: the lab router after a converge; UCI as omr.deploy writes it on an OMR router).
The kernel check reads this machine's /proc. Each scenario is one runner, all at once."""

import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "tests", "audit", "run.py")
CONFIGURED = os.path.join(ROOT, "tests", "unit", "fixtures", "router", "configured")
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.omr.deploy.plugins.module_utils._router_runtime import parse_lease, resolve_plan  # noqa: E402

# Secrets the router holds: they must not leave it (the checks read UCI through omr_uci_mask).
PROXY_KEY = "Zm9vYmFyLXByb3h5LWtleS1zM2NyM3Q="
SERVER_KEY = "lab-omr-server-key-0123456789"
MPTCP_V1 = os.path.exists("/proc/sys/net/mptcp/enabled") and not os.path.exists("/proc/sys/net/mptcp/mptcp_enabled") \
    and open("/proc/sys/net/mptcp/enabled", encoding="utf-8").read().strip() == "1"

INVENTORY = '''
all:
  children:
    omr_router:
      hosts:
        router:
          ansible_connection: local
          omr_router_backend: %(backend)s
          omr_router_vps: {address: 198.51.100.10, speedtest_port: 65432}
          omr_router_lan: {device: lan, address: 192.168.100.1/24}
          omr_router_transit_links:
            - {name: wifi1, device: transit, prefix: 29, peer: omr-lab-wifi}
          omr_router_wans:
            - {name: wan1, device: wan1, address: 100.64.1.2/24, gateway: 100.64.1.254, multipath: master}
            - {name: wan2, device: wan2, address: dhcp, multipath: "on"}
            - {name: wifi, transit: wifi1, multipath: "on", quality: {max_loss_pct: 20, count: 10, interval: 10}}
          omr_router_proxy_key: %(key)s
          omr_router_pairing_enabled: %(pairing)s
          omr_router_pairing_server_key: %(server_key)s
'''

UCI_NETWORK = '''network.loopback=interface
network.loopback.device='lo'
network.loopback.proto='static'
network.loopback.ipaddr='127.0.0.1'
network.loopback.netmask='255.0.0.0'
network.globals=globals
network.globals.mptcp_subflows='8'
network.globals.mptcp_add_addr_accepted='8'
network.lan=interface
network.lan.device='br-lan'
network.lan.proto='static'
network.lan.ipaddr='192.168.100.1'
network.lan.netmask='255.255.255.0'
network.lan.multipath='off'
network.wan1=interface
network.wan1.device='wan1'
network.wan1.proto='static'
network.wan1.ipaddr='100.64.1.2'
network.wan1.netmask='255.255.255.0'
network.wan1.gateway='100.64.1.254'
network.wan1.multipath='master'
network.wan1.metric='3'
network.wan1.ip4table='3'
network.wan1_dev=device
network.wan1_dev.name='wan1'
network.wan2=interface
network.wan2.device='wan2'
network.wan2.proto='dhcp'
network.wan2.multipath='%(wan2_mode)s'
network.wan2.metric='4'
network.wan2.ip4table='4'
network.wifi=interface
network.wifi.device='transit'
network.wifi.proto='static'
network.wifi.ipaddr='172.17.29.137'
network.wifi.netmask='255.255.255.248'
network.wifi.gateway='172.17.29.138'
network.wifi.multipath='on'
'''
UCI_FIREWALL = '''firewall.cfg01e63d=defaults
firewall.cfg01e63d.input='ACCEPT'
firewall.cfg02dc81=zone
firewall.cfg02dc81.name='lan'
firewall.cfg02dc81.network='lan'
firewall.cfg03dc81=zone
firewall.cfg03dc81.name='wan'
firewall.cfg03dc81.network=%(zone)s
firewall.cfg03dc81.masq='1'
'''
UCI_OMR = '''openmptcprouter.settings=settings
openmptcprouter.settings.proxy='shadowsocks'
openmptcprouter.vps=server
openmptcprouter.vps.username='openmptcprouter'
openmptcprouter.vps.password='%(server_key)s'
openmptcprouter.vps.ip='198.51.100.10'
openmptcprouter.wan1=interface
openmptcprouter.wan1.multipath='master'
openmptcprouter.wan2=interface
openmptcprouter.wan2.multipath='%(wan2_mode)s'
openmptcprouter.wifi=interface
openmptcprouter.wifi.multipath='on'
openmptcprouter.omr_deploy=omr_deploy
openmptcprouter.omr_deploy.interface='wan1' 'wan2' 'wifi'
'''
UCI_SS = '''shadowsocks-libev.sss0=server
shadowsocks-libev.sss0.server='%(server)s'
shadowsocks-libev.sss0.server_port='65101'
shadowsocks-libev.sss0.key='%(key)s'
shadowsocks-libev.sss0.method='chacha20-ietf-poly1305'
shadowsocks-libev.sss0.disabled='0'
'''

SHIMS = {
    "ip": '''#!/bin/sh
d=%(state)s
case "$*" in
"-4 -o addr show") cat "$d/addr" ;;
"mptcp endpoint show") cat "$d/endpoints" ;;
"mptcp limits show") cat "$d/limits" ;;
"-4 rule show") cat "$d/rules" ;;
"-4 route show table "*)
  if [ -r "$d/table-$5" ]; then cat "$d/table-$5"; else echo "Error: ipv4: FIB table does not exist." >&2; exit 2; fi ;;
*) echo "fake ip: $*" >&2; exit 1 ;;
esac
''',
    "uci": '''#!/bin/sh
d=%(state)s
for last in "$@"; do :; done
case "$*" in
*show*) [ -r "$d/uci-$last" ] && cat "$d/uci-$last" ;;
*) echo "fake uci: $*" >&2; exit 1 ;;
esac
''',
    "pidof": '''#!/bin/sh
[ -r %(state)s/pid-$1 ] && cat %(state)s/pid-$1
''',
    "systemctl": '''#!/bin/sh
if [ "$1" = is-active ] && [ -r "%(state)s/unit-$2" ]; then cat "%(state)s/unit-$2"; exit 0; fi
echo inactive
exit 3
''',
    "omr-router-net": '''#!/bin/sh
d=%(state)s
case "$1" in
show) cat "$d/plan.json" ;;
check) cat "$d/check.out"; exit "$(cat "$d/check.rc")" ;;
*) exit 2 ;;
esac
''',
}


def fixture(name):
    with open(os.path.join(CONFIGURED, name), encoding="utf-8") as f:
        return f.read()


def addr_text():
    """`ip -4 -o addr show` as iproute2 prints it, from the captured `ip -j addr show`."""
    lines = []
    for link in json.loads(fixture("ip-j-addr.json")):
        for info in link.get("addr_info", []):
            if info["family"] == "inet":
                lines.append("%d: %s    inet %s/%d scope %s %s\\       valid_lft forever preferred_lft forever"
                             % (link["ifindex"], link["ifname"], info["local"], info["prefixlen"], info["scope"], link["ifname"]))
    return "\n".join(lines) + "\n"


def rules_text():
    return "".join("%d:\tfrom %s lookup %s \n" % (r["priority"], r["src"], r["table"]) for r in json.loads(fixture("ip-j-rule.json")))


def table_texts():
    tables = {}
    for route in json.loads(fixture("ip-j-route.json")):
        if not route.get("table", "").isdigit():
            continue
        if route["dst"] == "default":
            line = "default via %s dev %s " % (route["gateway"], route["dev"])
        else:
            line = "%s dev %s scope link src %s " % (route["dst"], route["dev"], route["prefsrc"])
        tables.setdefault(route["table"], []).append(line)
    return dict((t, "\n".join(lines) + "\n") for t, lines in tables.items())


def write_state(state, backend, drift):
    files = {"addr": addr_text(), "rules": rules_text(), "endpoints": fixture("mptcp-endpoint.txt"),
             "limits": fixture("mptcp-limits.txt")}
    for table, text in table_texts().items():
        files["table-" + table] = text
    if drift:
        # wan2 demoted to backup by hand, subflows lowered: what a stray `ip mptcp` leaves.
        files["endpoints"] = files["endpoints"].replace("id 2 subflow fullmesh", "id 2 subflow backup fullmesh")
        files["limits"] = "add_addr_accepted 8 subflows 2 \n"
    if backend == "linux":
        plan = resolve_plan(json.loads(fixture("plan.json")), {"wan2": parse_lease(fixture("wan2.env"))})
        files["plan.json"] = json.dumps(plan)
        files["check.out"] = "MPTCP limits subflows 8\n" if drift else ""
        files["check.rc"] = "3" if drift else "0"
        if not drift:
            files["unit-shadowsocks-libev-redir@omr.service"] = "active\n"
    else:
        values = {"wan2_mode": "backup" if drift else "on", "zone": "'wan1' 'wan2'" if drift else "'wan1' 'wan2' 'wifi'",
                  "server": "203.0.113.9" if drift else "198.51.100.10", "key": PROXY_KEY, "server_key": SERVER_KEY}
        files["uci-network"] = UCI_NETWORK % values
        files["uci-firewall"] = UCI_FIREWALL % values
        files["uci-openmptcprouter"] = UCI_OMR % values
        files["uci-shadowsocks-libev"] = UCI_SS % values
        files["pid-ss-redir"] = "4242\n"
    for name, text in files.items():
        (state / name).write_text(text)


SCENARIOS = [("linux", False), ("linux", True), ("openwrt", False), ("openwrt", True)]


@pytest.fixture(scope="module")
def audits(tmp_path_factory):
    procs = {}
    for backend, drift in SCENARIOS:
        base = tmp_path_factory.mktemp("%s-%s" % (backend, "drift" if drift else "ok"))
        state, shims = base / "state", base / "bin"
        state.mkdir()
        shims.mkdir()
        write_state(state, backend, drift)
        for name, text in SHIMS.items():
            (shims / name).write_text(text % {"state": shlex.quote(str(state))})
            (shims / name).chmod(0o755)
        (base / "hosts.yml").write_text(INVENTORY % {"backend": backend, "key": PROXY_KEY, "server_key": SERVER_KEY,
                                                     "pairing": "true" if backend == "openwrt" else "false"})
        env = dict(os.environ, PATH=str(shims) + os.pathsep + os.environ["PATH"])
        cmd = [sys.executable, RUNNER, "-i", str(base / "hosts.yml"), "-g", "omr_router", "-o", str(base / "out")]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs[(backend, drift)] = (base / "out", proc)
    results = {}
    for key, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        outcomes = {}
        if (out / "router.xml").exists():
            for case in ET.parse(str(out / "router.xml")).getroot().iter("testcase"):
                kind = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
                outcomes[case.get("name").split("[")[0]] = kind[0] if kind else "passed"
        texts = "".join(p.read_text() for p in out.iterdir()) if out.exists() else ""
        results[key] = {"rc": proc.returncode, "stdout": stdout, "stderr": stderr, "outcomes": outcomes, "texts": texts}
    return results


KERNEL = "passed" if MPTCP_V1 else "failure"


def test_a_linux_router_as_planned_is_compliant(audits):
    res = audits[("linux", False)]
    assert res["outcomes"] == {
        "test_router_kernel_runs_mptcp_v1": KERNEL, "test_router_wans_are_the_declared_ones": "passed",
        "test_router_wan_endpoints": "passed", "test_router_mptcp_limits": "passed",
        "test_router_wan_tables_and_rules": "passed", "test_router_as_planned": "passed",
        "test_router_transit_addresses": "passed", "test_router_wans_in_wan_zone": "skipped",
        "test_router_proxy_runs": "passed"}, res["stdout"] + res["stderr"]
    assert res["rc"] == (0 if MPTCP_V1 else 1)


def test_a_drifted_linux_router_names_its_drift(audits):
    res = audits[("linux", True)]
    failed = sorted(k for k, v in res["outcomes"].items() if v == "failure")
    assert failed == sorted(["test_router_wan_endpoints", "test_router_mptcp_limits", "test_router_as_planned",
                             "test_router_proxy_runs"] + ([] if MPTCP_V1 else ["test_router_kernel_runs_mptcp_v1"])), res["stdout"]
    assert res["rc"] == 1
    assert "wan2 (wan2, on): flags subflow backup fullmesh, wanted subflow fullmesh" in res["texts"]
    assert "MPTCP limits {'subflows': 2, 'add_addr_accepted': 8}, declared {'subflows': 8, 'add_addr_accepted': 8}" in res["texts"]
    assert "shadowsocks-libev-redir@omr.service is inactive" in res["texts"]


def test_an_omr_router_as_configured_is_compliant(audits):
    res = audits[("openwrt", False)]
    assert res["outcomes"] == {
        "test_router_kernel_runs_mptcp_v1": KERNEL, "test_router_wans_are_the_declared_ones": "passed",
        "test_router_wan_endpoints": "passed", "test_router_mptcp_limits": "passed",
        "test_router_wan_tables_and_rules": "skipped", "test_router_as_planned": "skipped",
        "test_router_transit_addresses": "passed", "test_router_wans_in_wan_zone": "passed",
        "test_router_proxy_runs": "passed"}, res["stdout"] + res["stderr"]
    assert res["rc"] == (0 if MPTCP_V1 else 1)


def test_a_drifted_omr_router_names_its_drift_and_never_its_secrets(audits):
    res = audits[("openwrt", True)]
    failed = sorted(k for k, v in res["outcomes"].items() if v == "failure")
    # wan2's endpoint follows its UCI (backup): the endpoints are as OMR made them, UCI is not as declared.
    assert failed == sorted(["test_router_wans_are_the_declared_ones", "test_router_mptcp_limits",
                             "test_router_wans_in_wan_zone", "test_router_proxy_runs"]
                            + ([] if MPTCP_V1 else ["test_router_kernel_runs_mptcp_v1"])), res["stdout"]
    assert res["rc"] == 1
    assert "wan2: multipath backup in UCI, on declared" in res["texts"]
    assert "not in the firewall zone wan: wifi" in res["texts"]
    assert "shadowsocks-libev.sss0 points at 203.0.113.9, the VPS is 198.51.100.10" in res["texts"]
    for outcome in audits.values():
        assert PROXY_KEY not in outcome["texts"] + outcome["stdout"] + outcome["stderr"]
        assert SERVER_KEY not in outcome["texts"] + outcome["stdout"] + outcome["stderr"]
