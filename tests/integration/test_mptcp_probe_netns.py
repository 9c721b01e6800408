# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr.deploy.mptcp_probe against the real omr-mptcp-speedtest server, over two shaped paths.

Topology (built once for the module, torn down in the fixture's finaliser):

    router netns                                         vps netns
    r1 100.64.1.2/24 (+ 100.64.1.9, outside --allow) --- v1 100.64.1.1/24
    r2 100.64.2.2/24 ------------------------------------ v2 100.64.2.1/24
                                                          lo 192.0.2.1/32 (the VPS's "public" address)

The router routes 192.0.2.1 through r1 by default and, by policy routing on the source address,
through r2 for 100.64.2.2; it has one `subflow` endpoint for 100.64.2.2 (the second WAN). Both
sides have limits 4/4. Every veth end is shaped with tbf to 20 Mbit/s, so one path alone carries
about 20 Mbit/s and both together about 40. The server file from roles/vps/files runs inside the
vps netns; the module runs through the `ansible` CLI inside the router netns.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), 'ansible')
if not os.path.exists(ANSIBLE):
    ANSIBLE = os.path.join(ROOT, '.venv', 'bin', 'ansible')
SERVER = os.path.join(ROOT, 'roles', 'vps', 'files', 'omr-mptcp-speedtest.py')
# Same names for the same checkout, so a crashed run's leftovers are found and removed.
TAG = hashlib.sha1(ROOT.encode()).hexdigest()[:6]
ROUTER, VPS_NS = 'omr-probe-r-' + TAG, 'omr-probe-v-' + TAG
VPS = '192.0.2.1'
WAN1, WAN2, OUTSIDER = '100.64.1.2', '100.64.2.2', '100.64.1.9'
PORT, PLAIN_PORT, BUSY_PORT = 65432, 65433, 65434
RATE = '20mbit'

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason='needs root: creates network namespaces, veth pairs and qdiscs'),
    pytest.mark.skipif(shutil.which('ip') is None or shutil.which('tc') is None, reason='iproute2 ip/tc not installed'),
    pytest.mark.skipif(not os.path.exists('/proc/sys/net/mptcp/enabled'),
                       reason='kernel has no upstream MPTCP (/proc/sys/net/mptcp/enabled missing)'),
]


def sh(*argv, check=True):
    res = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise AssertionError('%s failed (rc=%d): %s' % (' '.join(argv), res.returncode, res.stderr))
    return res.stdout


def in_ns(ns, *argv):
    return sh('ip', 'netns', 'exec', ns, *argv)


def remove_namespaces():
    for ns in (ROUTER, VPS_NS):
        sh('ip', 'netns', 'del', ns, check=False)


def build_topology():
    for ns in (ROUTER, VPS_NS):
        sh('ip', 'netns', 'add', ns)
        sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
        in_ns(ns, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0',
              'net.mptcp.enabled=1')
    for i in (1, 2):
        sh('ip', 'link', 'add', 'r%d' % i, 'netns', ROUTER, 'type', 'veth', 'peer', 'name', 'v%d' % i, 'netns', VPS_NS)
        for ns, dev, host in ((ROUTER, 'r%d' % i, 2), (VPS_NS, 'v%d' % i, 1)):
            sh('ip', '-n', ns, 'addr', 'add', '100.64.%d.%d/24' % (i, host), 'dev', dev)
            sh('ip', '-n', ns, 'link', 'set', dev, 'up')
            in_ns(ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', RATE, 'burst', '32kb', 'latency', '50ms')
        # Policy routing per WAN source address, as on an OMR router.
        sh('ip', '-n', ROUTER, 'rule', 'add', 'from', '100.64.%d.2' % i, 'table', str(100 + i))
        sh('ip', '-n', ROUTER, 'route', 'add', 'default', 'via', '100.64.%d.1' % i, 'dev', 'r%d' % i,
           'table', str(100 + i))
    sh('ip', '-n', ROUTER, 'addr', 'add', OUTSIDER + '/24', 'dev', 'r1')
    sh('ip', '-n', ROUTER, 'route', 'add', 'default', 'via', '100.64.1.1', 'dev', 'r1', 'src', WAN1)
    sh('ip', '-n', VPS_NS, 'addr', 'add', VPS + '/32', 'dev', 'lo')
    sh('ip', '-n', ROUTER, 'mptcp', 'endpoint', 'add', WAN2, 'dev', 'r2', 'subflow')
    for ns in (ROUTER, VPS_NS):
        sh('ip', '-n', ns, 'mptcp', 'limits', 'set', 'subflows', '4', 'add_addr_accepted', '4')


class Lab(object):

    def __init__(self, logdir):
        self.logdir = logdir
        self.procs = []

    def start(self, name, argv, ready):
        """Start a process in the vps netns, logging to a file; wait for `ready` in its log."""
        path = os.path.join(self.logdir, name + '.log')
        log = open(path, 'w')
        proc = subprocess.Popen(['ip', 'netns', 'exec', VPS_NS] + argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while ready not in self.log(name):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError('%s did not start (rc=%s): %s' % (name, proc.poll(), self.log(name)))
            time.sleep(0.05)
        return proc

    def log(self, name):
        with open(os.path.join(self.logdir, name + '.log')) as f:
            return f.read()

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    remove_namespaces()
    lab = Lab(str(tmp_path_factory.mktemp('probe')))
    try:
        build_topology()
        lab.start('server', [sys.executable, SERVER, '--allow', WAN1 + '/32', '--allow', WAN2 + '/32',
                             '--max-seconds', '20'], 'listening on')
        yield lab
    finally:
        lab.stop()
        remove_namespaces()


def probe(check=False, **args):
    cmd = ['ip', 'netns', 'exec', ROUTER, ANSIBLE, 'localhost', '-c', 'local', '-i', 'localhost,',
           '-e', 'ansible_python_interpreter=' + sys.executable, '-m', 'omr.deploy.mptcp_probe',
           '-a', json.dumps(args)]
    if check:
        cmd.append('--check')
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
               ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_NOCOLOR='1')
    res = subprocess.run(cmd, cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=120)
    try:
        out = json.loads(res.stdout)
    except ValueError:
        raise AssertionError('no JSON from ansible (rc=%d)\nstdout: %s\nstderr: %s'
                             % (res.returncode, res.stdout, res.stderr))
    return out['plays'][0]['tasks'][0]['hosts']['localhost']


def ok(res):
    assert res.get('failed') is not True, res
    assert res['changed'] is False
    return res


def figures(label, res):
    subflows = ', '.join('%s %d B rx / %d B tx' % (d['local_address'], d['bytes_received'], d['bytes_sent'])
                         for d in res['subflow_details'])
    print('\n%s: %s Mbit/s, %d bytes in %ss, mptcp=%s, %d subflow(s): %s'
          % (label, res['throughput_mbps'], res['bytes'], res['seconds'], res['mptcp'], res['subflows'], subflows))


def test_mptcp_aggregates_both_paths(lab):
    base = ok(probe(host=VPS, protocol='tcp', bind_address=WAN1, seconds=4))
    figures('single-link TCP', base)
    assert base['mptcp'] is False and base['protocol'] == 'tcp'
    assert base['subflows'] == 1
    assert [(d['local_address'], d['remote_address'], d['remote_port']) for d in base['subflow_details']] == [
        (WAN1, VPS, PORT)]
    assert base['integrity_ok'] is True
    assert 10 < base['throughput_mbps'] < 25, 'one path is shaped to 20 Mbit/s'

    agg = ok(probe(host=VPS, seconds=4))
    figures('MPTCP aggregate', agg)
    assert agg['mptcp'] is True and agg['protocol'] == 'mptcp' and agg['direction'] == 'download'
    assert agg['subflows'] == 2
    details = agg['subflow_details']
    assert sorted(d['local_address'] for d in details) == [WAN1, WAN2]
    assert set((d['remote_address'], d['remote_port']) for d in details) == {(VPS, PORT)}
    carried = sum(d['bytes_received'] for d in details)
    assert agg['bytes'] <= carried <= agg['bytes'] * 1.05, (carried, agg['bytes'])
    assert all(d['bytes_received'] > agg['bytes'] * 0.2 for d in details), 'both paths carried data'
    assert agg['integrity_ok'] is True
    assert 3.5 < agg['seconds'] < 8
    assert agg['throughput_mbps'] > 1.3 * base['throughput_mbps'], (agg['throughput_mbps'], base['throughput_mbps'])

    log = lab.log('server')
    assert 'client=%s' % WAN1 in log and 'direction=download' in log
    assert 'mptcp=yes subflows=2' in log and 'mptcp=no subflows=-' in log


def test_fixed_size_upload_in_check_mode(lab):
    size = 6 * 1000 * 1000 + 3
    # A join that comes up late leaves a short upload on one path (seen once in CI, 1 run in
    # dozens): try again before calling the upload single-path.
    for attempt in range(3):
        res = ok(probe(check=True, host=VPS, direction='upload', bytes=size))
        figures('MPTCP upload (check mode), attempt %d' % (attempt + 1), res)
        if res['subflows'] == 2:
            break
    assert res['mptcp'] is True and res['subflows'] == 2 and res['direction'] == 'upload'
    assert res['bytes'] == res['bytes_sent'] == size
    assert res['integrity_ok'] is True
    assert sorted(d['local_address'] for d in res['subflow_details']) == [WAN1, WAN2]
    sent = sum(d['bytes_acked'] for d in res['subflow_details'])
    assert size <= sent <= size * 1.05, (sent, size)
    assert 'direction=upload bytes=%d' % size in lab.log('server')


def test_fixed_size_download(lab):
    size = 3 * 1000 * 1000 + 1
    res = ok(probe(host=VPS, bytes=size))
    assert res['mptcp'] is True
    assert res['bytes'] == size and res['integrity_ok'] is True
    assert size <= sum(d['bytes_received'] for d in res['subflow_details']) <= size * 1.05


PLAIN_SERVER = r'''
import importlib.util, ipaddress, socket, sys
spec = importlib.util.spec_from_file_location("speedtest", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", int(sys.argv[2])))
listener.listen(4)
mod.log("listening, plain TCP")
mod.Server(listener, [ipaddress.ip_network("100.64.0.0/16")], listening_mptcp=False).serve_forever()
'''


def test_plain_tcp_listener_reports_no_mptcp(lab):
    lab.start('plain', [sys.executable, '-c', PLAIN_SERVER, SERVER, str(PLAIN_PORT)], 'listening, plain TCP')
    res = ok(probe(host=VPS, port=PLAIN_PORT, bytes=1000000))
    assert res['mptcp'] is False and res['protocol'] == 'mptcp'
    assert res['subflows'] == 1
    assert [d['local_address'] for d in res['subflow_details']] == [WAN1]
    assert res['bytes'] == 1000000 and res['integrity_ok'] is True
    assert any('fell back to plain TCP' in w for w in res.get('warnings', [])), res
    assert 'mptcp=no' in lab.log('plain')


def test_client_outside_allow_is_refused(lab):
    res = probe(host=VPS, bind_address=OUTSIDER, seconds=1)
    assert res['failed'] is True and res['changed'] is False
    assert '--allow' in res['msg'] and OUTSIDER in res['msg']
    assert 'refused client=%s:' % OUTSIDER in lab.log('server')
    assert 'reason=not-in-allow' in lab.log('server')


BUSY_CLIENT = r'''
import socket, sys
def connect():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
    s.settimeout(10)
    s.connect((sys.argv[1], int(sys.argv[2])))
    return s
first = connect()
first.sendall(b'{"direction": "download", "seconds": 3}\n')
assert first.recv(65536)          # its transfer runs: the only slot is taken
second = connect()
second.sendall(b'{"direction": "download", "seconds": 1}\n')
print(second.makefile("rb").readline().decode().strip())
second.close()
first.close()
'''


def test_busy_server_refuses_then_stops_on_sigterm(lab):
    proc = lab.start('busy', [sys.executable, SERVER, '--port', str(BUSY_PORT), '--max-clients', '1',
                              '--allow', '100.64.0.0/16'], 'listening on')
    out = in_ns(ROUTER, sys.executable, '-c', BUSY_CLIENT, VPS, str(BUSY_PORT))
    answer = json.loads(out.strip().splitlines()[-1])
    assert 'busy' in answer['error'] and '--max-clients 1' in answer['error']
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    log = lab.log('busy')
    assert 'reason=busy' in log and log.rstrip().endswith('stopped')
