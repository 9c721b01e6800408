# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's client-side instruments on loopback: omr-lab-udp-burst against a real UDP echo,
omr-lab-probe against a listening and a closed port, omr-lab-fetch's samples against a real HTTP
server, and the filter that turns a burst and the router's counters into shares. The lab scenario
runs them across the real WANs; these pin what they count."""

import hashlib
import http.server
import json
import os
import socket
import threading

import pytest

from test_lab_programs import load

burst = load('lab/files/omr-lab-udp-burst.py', 'omr_lab_udp_burst')
probe = load('lab/files/omr-lab-probe.py', 'omr_lab_probe')
fetch = load('lab/files/omr-lab-fetch.py', 'omr_lab_fetch')
lab_filters = load('lab/filter_plugins/omr_lab.py', 'omr_lab_filters')


@pytest.fixture
def echo():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    sock.settimeout(0.2)
    stop, seen = threading.Event(), []

    def serve():
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except socket.timeout:
                continue
            seen.append(len(data))
            # Echo every other datagram: the burst must count what came back, not what it sent.
            if len(seen) % 2:
                sock.sendto(data, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], seen
    stop.set()
    thread.join()
    sock.close()


def test_the_burst_counts_distinct_echoes_at_its_rate(echo):
    port, seen = echo
    result = burst.burst('127.0.0.1', port, mbps=2.0, seconds=0.5, size=500, linger=0.3)
    # 2 Mbit/s of 500-byte datagrams for 0.5 s: 250 sent, paced.
    assert 240 <= result['sent'] <= 252 and len(seen) == result['sent']
    assert result['received'] == (result['sent'] + 1) // 2
    assert result['sent_bytes'] == 500 * result['sent'] and 1.8 <= result['mbps'] <= 2.2
    assert 49.0 <= result['lost_pct'] <= 51.0


def test_the_probe_tells_open_from_refused_from_filtered():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    open_port = listener.getsockname()[1]
    closed = socket.socket()
    closed.bind(('127.0.0.1', 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    assert probe.probe('127.0.0.1', open_port, 1.0) == 'open'
    assert probe.probe('127.0.0.1', closed_port, 1.0) == 'refused'
    listener.close()


def test_the_probe_reads_a_timeout_as_filtered(monkeypatch):
    class Silent(object):
        def __init__(self, *args):
            pass

        def settimeout(self, timeout):
            pass

        def connect(self, address):
            raise socket.timeout()

        def close(self):
            pass

    monkeypatch.setattr(probe.socket, 'socket', Silent)
    assert probe.probe('192.0.2.1', 9100, 0.1) == 'filtered'


def test_the_fetch_samples_its_progress_and_keeps_the_checksum(tmp_path):
    body = os.urandom(3 * 1024 * 1024)
    (tmp_path / 'f.bin').write_bytes(body)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = 'http://127.0.0.1:%d/f.bin' % server.server_address[1]
        plain = fetch.fetch(url, 5)
        sampled = fetch.fetch(url, 5, sampled=True)
    finally:
        server.shutdown()
    assert plain['sha256'] == sampled['sha256'] == hashlib.sha256(body).hexdigest()
    assert 'samples' not in plain and 'start_wall' not in plain
    assert sampled['samples'][0][1] == 65536 and sampled['samples'][-1][1] == len(body)
    assert [b for _t, b in sampled['samples']] == sorted(b for _t, b in sampled['samples'])
    assert json.dumps(sampled)


# The lab's UDP burst (2026-12-03, wifi profile): router counters rx then tx per WAN.
UDP_WANS = [{"name": "wan1", "device": "wan1", "multipath": "master"}, {"name": "wan2", "device": "wan2", "multipath": "on"},
            {"name": "wifi", "device": "transit", "multipath": "on"}]
BURST = '{"lost_pct": 0.0, "mbps": 30.0, "received": 15626, "seconds": 5.0, "sent": 15626, "sent_bytes": 18751200}'


def test_a_burst_over_two_wans_is_reported_with_their_shares():
    report = lab_filters.omr_lab_udp_report(UDP_WANS, ["0", "0", "0", "0", "0", "0"],
                                            ["12000000", "12711210", "8000000", "8813014", "300000", "319610"], BURST)
    assert [w["bytes"] for w in report["wans"]] == [24711210, 16813014, 619610]
    assert report["wans_used"] == ["wan1", "wan2"] and report["max_share"] == 0.586
    assert report["received"] == 15626 and report["lost_pct"] == 0.0
    assert report["table"][-1] == "  2 WAN(s) carried at least 10 %: wan1, wan2"


def test_a_burst_on_one_wan_or_none_at_all_is_reported_not_raised():
    one = lab_filters.omr_lab_udp_report(UDP_WANS, ["0"] * 6, ["16000000", "16221206", "0", "0", "1000", "960"], BURST)
    assert one["wans_used"] == ["wan1"] and one["max_share"] >= 0.95
    empty = lab_filters.omr_lab_udp_report(UDP_WANS, ["0"] * 6, ["0"] * 6, "")
    assert empty["sent"] == 0 and empty["lost_pct"] == 100.0 and empty["wans_used"] == []
