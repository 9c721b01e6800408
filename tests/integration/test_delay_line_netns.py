# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lab/files/omr-lab-delay.py, the lab ISP's delay line, on a real link shaped as the ISP shapes it.

    client netns                    isp netns                                  server netns
    c0 10.77.1.2/24 ------------- wan1 10.77.1.1/24   inet 10.77.2.1/24 ------ s0 10.77.2.2/24
                                  tbf 20 Mbit/s on wan1 (down) and inet (up);
                                  omr-lab-delay steers wan1's traffic through dl-wan1

It checks what the lab relies on: the round trip the profile asks for (within 10 %, from 10 ms
up), the same during a bulk download once the tbf queue it builds is added, and a download
through the line at 0.95 of the same path without it. The CPU the line used for that download
is written to tests/output/delay-line.json (a figure, not a threshold).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DELAY = os.path.join(ROOT, 'lab', 'files', 'omr-lab-delay.py')
TAG = hashlib.sha1(ROOT.encode()).hexdigest()[:6]
CLIENT, ISP, SERVER = 'omr-dl-c-' + TAG, 'omr-dl-i-' + TAG, 'omr-dl-s-' + TAG
RATE_MBIT = 20
PORT = 5999

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason='needs root: network namespaces, veth pairs, TUN devices and qdiscs'),
    pytest.mark.skipif(shutil.which('ip') is None or shutil.which('tc') is None or shutil.which('ping') is None,
                       reason='iproute2 and ping needed'),
    pytest.mark.skipif(not os.path.exists('/dev/net/tun'), reason='no /dev/net/tun'),
]


def sh(*argv, check=True):
    res = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=120)
    if check and res.returncode != 0:
        raise AssertionError('%s failed (rc=%d): %s' % (' '.join(argv), res.returncode, res.stderr))
    return res.stdout


def remove():
    for ns in (CLIENT, ISP, SERVER):
        sh('ip', 'netns', 'del', ns, check=False)


@pytest.fixture(scope='module')
def link():
    remove()
    for ns in (CLIENT, ISP, SERVER):
        sh('ip', 'netns', 'add', ns)
        sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
    sh('ip', 'link', 'add', 'c0', 'netns', CLIENT, 'type', 'veth', 'peer', 'name', 'wan1', 'netns', ISP)
    sh('ip', 'link', 'add', 's0', 'netns', SERVER, 'type', 'veth', 'peer', 'name', 'inet', 'netns', ISP)
    for ns, dev, cidr in ((CLIENT, 'c0', '10.77.1.2/24'), (ISP, 'wan1', '10.77.1.1/24'),
                          (ISP, 'inet', '10.77.2.1/24'), (SERVER, 's0', '10.77.2.2/24')):
        sh('ip', '-n', ns, 'addr', 'add', cidr, 'dev', dev)
        sh('ip', '-n', ns, 'link', 'set', dev, 'up')
    sh('ip', '-n', CLIENT, 'route', 'add', 'default', 'via', '10.77.1.1')
    sh('ip', '-n', SERVER, 'route', 'add', 'default', 'via', '10.77.2.1')
    sh('ip', 'netns', 'exec', ISP, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0')
    for dev in ('wan1', 'inet'):
        sh('ip', 'netns', 'exec', ISP, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', '%dmbit' % RATE_MBIT,
           'burst', '32kb', 'latency', '100ms')
    yield
    remove()


class DelayLine(object):
    def __init__(self, tmp_path, rtt_ms, jitter_ms=0):
        self.config = tmp_path / ('delay-%s.json' % rtt_ms)
        self.config.write_text(json.dumps({'inet': 'inet', 'links': [
            {'name': 'wan1', 'subnet': '10.77.1.0/24', 'rtt_ms': rtt_ms, 'jitter_ms': jitter_ms}]}))
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(['ip', 'netns', 'exec', ISP, sys.executable, DELAY, '--config', str(self.config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        first = self.proc.stdout.readline()
        assert 'round trip' in first, first + self.proc.stdout.read()
        return self

    def cpu_seconds(self):
        # The python process is the netns exec's child (ip execs it in place).
        with open('/proc/%d/stat' % self.proc.pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def __exit__(self, *exc):
        self.proc.terminate()
        out = self.proc.communicate(timeout=10)[0]
        assert 'stopped:' in out
        # It takes its routing with it.
        assert 'lookup 3000' not in sh('ip', '-n', ISP, 'rule', 'show')


def ping(count=20, interval='0.05'):
    out = sh('ip', 'netns', 'exec', CLIENT, 'ping', '-n', '-q', '-c', str(count), '-i', interval, '10.77.2.2')
    return float(re.search(r'= [0-9.]+/([0-9.]+)/', out).group(1))


def download(seconds):
    """Receiver-counted Mbit/s of one TCP download from the server netns to the client netns."""
    server = subprocess.Popen(['ip', 'netns', 'exec', SERVER, sys.executable, '-c', (
        'import socket, time, sys\n'
        's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
        's.bind(("10.77.2.2", %d)); s.listen(1); print("ready", flush=True)\n'
        'c, _ = s.accept(); end = time.monotonic() + %f; buf = bytes(65536)\n'
        'while time.monotonic() < end:\n'
        '    c.sendall(buf)\n'
        'c.close()\n') % (PORT, seconds + 1)], stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == 'ready'
    client = subprocess.run(['ip', 'netns', 'exec', CLIENT, sys.executable, '-c', (
        'import socket, time\n'
        's = socket.create_connection(("10.77.2.2", %d)); got = 0; t0 = time.monotonic()\n'
        'while time.monotonic() - t0 < %f:\n'
        '    n = len(s.recv(262144))\n'
        '    if not n: break\n'
        '    got += n\n'
        'print(got * 8 / (time.monotonic() - t0) / 1e6)\n') % (PORT, seconds)],
        capture_output=True, text=True, timeout=seconds + 30, check=True)
    server.kill()
    server.wait()
    return float(client.stdout.strip())


def backlog_bytes():
    data = json.loads(sh('ip', 'netns', 'exec', ISP, 'tc', '-s', '-j', 'qdisc', 'show', 'dev', 'wan1'))
    return [q for q in data if q.get('kind') == 'tbf'][0].get('backlog', 0)


@pytest.mark.parametrize('rtt_ms', [10, 50])
def test_the_round_trip_is_the_one_asked_for(link, tmp_path, rtt_ms):
    base = ping()
    with DelayLine(tmp_path, rtt_ms):
        measured = ping()
    assert abs(measured - base - rtt_ms) <= 0.1 * rtt_ms, (base, measured)


def test_under_load_the_round_trip_is_the_delay_plus_the_shaping_queue(link, tmp_path):
    rtt_ms = 20
    with DelayLine(tmp_path, rtt_ms):
        samples, result = [], {}
        thread = threading.Thread(target=lambda: result.update(mbps=download(8)))
        thread.start()
        time.sleep(3)               # past slow start: the tbf queue is at its steady level
        for _sample in range(8):
            queue_ms = backlog_bytes() * 8 / (RATE_MBIT * 1e6) * 1000
            samples.append((ping(count=3, interval='0.1'), queue_ms))
        thread.join()
    errors = [abs(rtt - (rtt_ms + q)) / (rtt_ms + q) for rtt, q in samples]
    # The median sample within 10 %: the queue moves between reading it and the ping.
    assert sorted(errors)[len(errors) // 2] <= 0.10, samples
    assert result['mbps'] > 0.9 * RATE_MBIT


def test_a_download_through_the_line_keeps_the_rate(link, tmp_path):
    without = download(8)
    with DelayLine(tmp_path, 20, jitter_ms=4) as line:
        cpu0, t0 = line.cpu_seconds(), time.monotonic()
        through = download(8)
        cpu = (line.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    assert through >= 0.95 * without, (through, without)
    os.makedirs(os.path.join(ROOT, 'tests', 'output'), exist_ok=True)
    with open(os.path.join(ROOT, 'tests', 'output', 'delay-line.json'), 'w') as f:
        json.dump({'without_mbps': round(without, 2), 'through_mbps': round(through, 2),
                   'ratio': round(through / without, 3), 'cpu_share_of_one_core': round(cpu, 3)}, f)
    print('delay line: %.2f of %.2f Mbit/s (%.3f), %.1f %% of one core'
          % (through, without, through / without, cpu * 100))
