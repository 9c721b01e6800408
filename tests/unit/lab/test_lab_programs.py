# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's instruments, lab/files/omr-lab-isp.py and omr-lab-hotspot.py: the commands each plans
from its JSON, and the filter lab/up.yml builds the ISP's JSON with. The lab scenario shows them
working on real links; these pin what they ask of tc, ip and nft."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


isp = load('lab/files/omr-lab-isp.py', 'omr_lab_isp')
delay = load('lab/files/omr-lab-delay.py', 'omr_lab_delay')
hotspot = load('lab/files/omr-lab-hotspot.py', 'omr_lab_hotspot')
lab_filters = load('lab/filter_plugins/omr_lab.py', 'omr_lab_filters')

WANS = [{"name": "wan1", "device": "wan1", "address": "100.64.1.2/24", "gateway": "100.64.1.254", "multipath": "master"},
        {"name": "wan3", "device": "wan3", "address": "dhcp", "multipath": "on"},
        {"name": "wifi", "transit": "wifi1", "multipath": "on"}]
LINKS = {"wan1": {"subnet": "100.64.1.0/24", "down_mbit": 40, "up_mbit": 10, "loss_pct": 0, "delay_ms": 10},
         "wan3": {"subnet": "100.64.3.0/24", "down_mbit": 10, "up_mbit": 2, "loss_pct": 1, "delay_ms": 40}}


def test_the_isp_serves_every_wired_wan_and_addresses_the_dhcp_ones():
    config = lab_filters.omr_lab_isp_config(WANS, LINKS)
    assert [link["name"] for link in config["links"]] == ["wan1", "wan3"]
    assert config["links"][0]["isp_address"] is None and config["links"][1]["isp_address"] == "100.64.3.254/24"


def test_isp_without_netem_shapes_with_tbf_and_drops_with_nftables():
    commands, report = isp.plan(lab_filters.omr_lab_isp_config(WANS, LINKS), netem=False)
    argvs = [' '.join(c) for c, _optional in commands]
    assert 'tc qdisc add dev wan1 root tbf rate 40mbit burst 32kb latency 100ms' in argvs
    assert 'tc qdisc add dev ifb-wan1 root tbf rate 10mbit burst 32kb latency 100ms' in argvs
    assert 'tc filter add dev wan3 parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev ifb-wan3' in argvs
    assert 'nft add rule inet omr_lab_loss forward iifname wan3 numgen random mod 1000 < 10 drop' in argvs
    assert 'nft add rule inet omr_lab_loss forward oifname wan3 numgen random mod 1000 < 10 drop' in argvs
    assert not any('wan1 numgen' in a for a in argvs)                    # no loss on wan1
    assert 'ip addr replace 100.64.3.254/24 dev wan3' in argvs
    # Removing what an earlier run left may fail; nothing else may.
    assert all(optional == (c[:3] in (['tc', 'qdisc', 'del'], ['ip', 'link', 'del'], ['nft', 'delete', 'table']))
               for c, optional in commands)
    assert report[-1] == ('shaping: tbf for rate, nftables numgen for loss, the delay line omr-lab-delay for delay'
                          ' (this kernel has no netem)')
    assert 'wan3: down 10 Mbit/s, up 2 Mbit/s, loss 1 %, round trip 40 ms' in report
    assert isp.delay_config(lab_filters.omr_lab_isp_config(WANS, LINKS), netem=False) == {'inet': 'inet', 'links': [
        {'name': 'wan1', 'subnet': '100.64.1.0/24', 'rtt_ms': 10, 'jitter_ms': 0},
        {'name': 'wan3', 'subnet': '100.64.3.0/24', 'rtt_ms': 40, 'jitter_ms': 0}]}


def test_isp_with_netem_leaves_rate_delay_and_loss_to_it():
    commands, report = isp.plan(lab_filters.omr_lab_isp_config(WANS, LINKS), netem=True)
    argvs = [' '.join(c) for c, _optional in commands]
    # netem delays each direction by half the round trip.
    assert 'tc qdisc add dev wan3 root handle 1: netem delay 20ms loss 1% rate 10mbit limit 1000' in argvs
    assert isp.delay_config(lab_filters.omr_lab_isp_config(WANS, LINKS), netem=True)['links'] == []
    assert not any('numgen' in a for a in argvs)
    assert report[-1] == 'shaping: netem (rate, delay and loss)'


def test_the_hotspot_redirects_everyone_not_logged_in_and_forgets_sessions():
    config = {"subnet": "172.23.208.0/20", "address": "172.23.208.1", "down_mbit": 10, "up_mbit": 10,
              "loss_pct": 2.5, "session_timeout": 30}
    commands, report = hotspot.plan(config)
    assert commands[2] == (['ip', 'addr', 'replace', '172.23.208.1/20', 'dev', 'hotspot'], None)
    rules = [stdin for argv, stdin in commands if argv[:2] == ['nft', '-f']][0]
    assert rules.startswith('table inet omr_lab_hotspot\ndelete table inet omr_lab_hotspot\n')
    assert 'set clients { type ipv4_addr; flags timeout; }' in rules
    assert 'ip saddr != @clients ip daddr != 172.23.208.1 tcp dport 80 dnat ip to 172.23.208.1:80' in rules
    assert 'numgen random mod 1000 < 25 drop' in rules
    assert 'oifname "inet" ip saddr 172.23.208.0/20 masquerade' in rules
    assert report == 'hotspot 172.23.208.0/20: down 10 Mbit/s, up 10 Mbit/s (tbf), loss 2.5 % (nftables), session 30 s'


def test_every_lab_interface_keeps_its_mac_across_restarts():
    topology = {"omr_lab_inet": {"subnet": "198.51.100.0/24", "gateway": "198.51.100.253", "isp": "198.51.100.254",
                                 "vps": "198.51.100.10"},
                "omr_lab_lan": {"subnet": "192.168.100.0/24", "gateway": "192.168.100.253", "router": "192.168.100.1",
                                "client": "192.168.100.100"},
                "omr_lab_image": "localhost/omr-lab/debian:12",
                "omr_lab_hotspot": {"public": "198.51.100.20", "transit_link": "wifi1"},
                "omr_lab_internet": {"subnet": "198.18.0.0/24", "gateway": "198.18.0.253", "vps": "198.18.0.1",
                                     "host": "198.18.0.10"}}
    links = [{"name": "wifi1", "device": "transit"}]
    first = lab_filters.omr_lab_plan(topology, WANS[:2], LINKS, links)
    again = lab_filters.omr_lab_plan(topology, WANS[:2], LINKS, links)
    networks = [n for c in first["containers"] for n in c["networks"]]
    assert first == again and all(",mac=02:" in n for n in networks)
    macs = [n.rsplit("mac=", 1)[1] for n in networks]
    assert len(set(macs)) == len(macs)
    hotspot = [c for c in first["containers"] if c["name"] == "omr-lab-hotspot"][0]
    assert hotspot["networks"][1].startswith("omr-lab-hotspot:interface_name=hotspot,mac=02:")


def packet(src, dst, sport, dport, proto=6):
    header = bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto, 0, 0]) + bytes(src) + bytes(dst)
    return header + sport.to_bytes(2, 'big') + dport.to_bytes(2, 'big') + bytes(16)


def test_the_delay_line_holds_half_the_round_trip_each_way():
    line = delay.Line(50, 0)
    assert line.release_time(packet([10, 0, 0, 1], [10, 0, 0, 2], 1, 2), 100.0) == 100.025


def test_with_jitter_a_flow_never_overtakes_itself():
    draws = iter([1.0, 0.0, 0.5, 0.0])              # +jitter, -jitter, 0, -jitter
    line = delay.Line(40, 10, rand=lambda: next(draws))
    a, b = packet([10, 0, 0, 1], [10, 0, 0, 2], 1, 2), packet([10, 0, 0, 1], [10, 0, 0, 2], 3, 4)
    first = line.release_time(a, 0.0)                # 20 + 5 ms
    second = line.release_time(a, 0.001)             # would be 1 + 15 ms: held behind the first
    other = line.release_time(b, 0.001)              # another flow: its own 1 + 20 ms
    third = line.release_time(a, 0.002)              # 2 + 15 ms: still behind the first
    assert (round(first, 4), round(second, 4), round(other, 4), round(third, 4)) == (0.025, 0.025, 0.021, 0.025)


def test_the_delay_lines_routing_steers_both_directions_and_is_taken_back():
    config = {'inet': 'inet', 'links': [{'name': 'wan2', 'subnet': '100.64.2.0/24', 'rtt_ms': 45, 'jitter_ms': 5}]}
    add = [' '.join(c) for c in delay.routing(config, add=True)]
    assert add == ['ip link set dev dl-wan2 up', 'sysctl -qw net.ipv4.conf.dl-wan2.rp_filter=0',
                   'ip route replace default dev dl-wan2 table 3000',
                   'ip rule add iif wan2 lookup 3000 priority 3000',
                   'ip rule add iif inet to 100.64.2.0/24 lookup 3000 priority 3001']
    assert [' '.join(c) for c in delay.routing(config, add=False)] == [
        'ip rule del iif wan2 lookup 3000 priority 3000', 'ip rule del iif inet to 100.64.2.0/24 lookup 3000 priority 3001']


LAN_WANS = [{"name": "wan1", "device": "wan1", "multipath": "master"}, {"name": "wan2", "device": "wan2", "multipath": "on"},
            {"name": "wifi", "device": "transit", "multipath": "on"}]
SPEEDTEST = {"links": [{"name": "wan1", "single_mbps": 19.2}, {"name": "wan2", "single_mbps": 19.2},
                       {"name": "wifi", "single_mbps": 9.6}]}
# omr-lab-fetch's output and the router's rx_bytes of a `make demo` run (2026-12-03).
FETCH = ('{"bytes": 50331648, "error": null, "mbps": 35.1, "seconds": 11.46, "sha256": "ab", '
         '"url": "http://198.18.0.10:80/lan-48m.bin"}')


def test_a_bonded_lan_download_is_reported_with_each_wans_part():
    report = lab_filters.omr_lab_lan_report(LAN_WANS, ["100", "200", "300"], ["20573837", "19998568", "10762952"],
                                            FETCH, "ab", SPEEDTEST)
    assert report["intact"] and report["bonded"] and report["below_half"] == []
    assert [w["share"] for w in report["wans"]] == [0.401, 0.39, 0.21]
    assert [w["fair"] for w in report["wans"]] == [0.4, 0.4, 0.2]
    assert report["efficiency"] == round(35.1 / 48.0, 3)
    assert report["table"][-1] == "  bonded: every WAN carried at least half its part"


def test_one_wan_carrying_everything_is_not_bonded_and_a_bad_checksum_not_intact():
    report = lab_filters.omr_lab_lan_report(LAN_WANS, ["0", "0", "0"], ["50000000", "90000", "1000"], FETCH, "cd", SPEEDTEST)
    assert not report["intact"] and not report["bonded"] and report["below_half"] == ["wan2", "wifi"]
    assert report["max_share"] >= 0.95


def test_a_failed_download_is_reported_not_raised():
    report = lab_filters.omr_lab_lan_report(LAN_WANS[:1], ["0"], ["0"], "", "ab", None)
    assert not report["intact"] and report["efficiency"] is None and not report["bonded"]
