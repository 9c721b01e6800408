# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A router and a VPS in network namespaces, for running playbooks/diagnose.yml for real without
the lab (tests/integration/test_diagnose_netns.py, tests/unit/fixtures/diagnose/capture.py).

    router netns                                      vps netns
    r1 100.64.1.2/24 -------------------------------- v1 100.64.1.1/24   (the "ISP": tbf 20 Mbit/s
    r2 100.64.2.2/24 -------------------------------- v2 100.64.2.1/24    each way, on the VPS side)
                                                      lo 192.0.2.1/32 (the VPS's public address)

The router routes by source address per WAN and has a `subflow` endpoint for 100.64.2.2; both
ends have MPTCP limits 4/4. With `router_shaping`, the router shapes wan2 itself as OMR's SQM does
with cake: tbf 8 Mbit/s on r2's root (uploads) and, through an ingress filter redirecting to the IFB
ifb4r2, tbf 6 Mbit/s on ifb4r2's root (downloads). The VPS runs roles/vps/files/omr-mptcp-speedtest.py.

Ansible reaches both through CONNECTION, the `local` connection with each command (raw ones too)
handed to a wrapper that runs it inside the host's namespace; the router's wrapper also gives it a
private mount namespace where /usr/local/sbin holds a stand-in `omr-router-net` printing the plan.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER = os.path.join(ROOT, 'roles', 'vps', 'files', 'omr-mptcp-speedtest.py')
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'diagnose.yml')
# Same names for the same checkout, so a crashed run's leftovers are found and removed.
TAG = hashlib.sha1(ROOT.encode()).hexdigest()[:6]
ROUTER_NS, VPS_NS = 'omr-dg-r-' + TAG, 'omr-dg-v-' + TAG
VPS = '192.0.2.1'
WAN1, WAN2 = '100.64.1.2', '100.64.2.2'
PORT = 65432
ISP_RATE = '20mbit'
CAPACITY = {'wan1': {'download': 20, 'upload': 20}, 'wan2': {'download': 20, 'upload': 20}}
PLAN = {'vps': {'address': VPS, 'speedtest_port': PORT},
        'wans': [{'name': 'wan1', 'device': 'r1', 'address': WAN1, 'multipath': 'master', 'pending': False},
                 {'name': 'wan2', 'device': 'r2', 'address': WAN2, 'multipath': 'on', 'pending': False}]}


# A connection plugin written into the run's directory (ANSIBLE_CONNECTION_PLUGINS), for these tests only.
CONNECTION = '''
from __future__ import annotations

import shlex

from ansible.plugins.connection.local import Connection as Local

DOCUMENTATION = """
    name: omr_netns
    short_description: local, inside a network namespace (omr.deploy's tests only)
    description: The local connection, each command run by the wrapper omr_netns_wrapper as `WRAPPER -c CMD`.
    author: omr.deploy maintainers
    options:
        wrapper:
            description: The wrapper.
            type: str
            vars:
                - name: omr_netns_wrapper
        become_success_timeout:
            type: int
            default: 10
            description: As the local connection's.
        become_strip_preamble:
            type: bool
            default: true
            description: As the local connection's.
    extends_documentation_fragment:
        - connection_pipelining
"""


class Connection(Local):
    transport = 'omr_netns'

    def exec_command(self, cmd, in_data=None, sudoable=True):
        return super().exec_command('%s -c %s' % (self.get_option('wrapper'), shlex.quote(cmd)), in_data, sudoable)
'''


def sh(*argv, **kwargs):
    res = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=60)
    if kwargs.get('check', True) and res.returncode != 0:
        raise AssertionError('%s failed (rc=%d): %s' % (' '.join(argv), res.returncode, res.stderr))
    return res.stdout


def in_ns(ns, *argv, **kwargs):
    return sh('ip', 'netns', 'exec', ns, *argv, **kwargs)


def tbf(ns, dev, rate):
    in_ns(ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'tbf', 'rate', rate, 'burst', '32kb',
          'latency', '50ms')


def redirect_ingress(ns, dev, ifb, rate):
    """Shape what `dev` receives: its ingress redirected to the IFB `ifb`, shaped there (SQM's way)."""
    sh('ip', '-n', ns, 'link', 'add', ifb, 'type', 'ifb')
    sh('ip', '-n', ns, 'link', 'set', ifb, 'up')
    in_ns(ns, 'tc', 'qdisc', 'add', 'dev', dev, 'handle', 'ffff:', 'ingress')
    in_ns(ns, 'tc', 'filter', 'add', 'dev', dev, 'parent', 'ffff:', 'protocol', 'all', 'prio', '10', 'u32', 'match',
          'u32', '0', '0', 'flowid', '1:1', 'action', 'mirred', 'egress', 'redirect', 'dev', ifb)
    tbf(ns, ifb, rate)


def remove_namespaces():
    for ns in (ROUTER_NS, VPS_NS):
        sh('ip', 'netns', 'del', ns, check=False)


def router_qdiscs():
    """What tc shows on the router's shaped devices, to compare before and after a run."""
    return [in_ns(ROUTER_NS, 'tc', what, 'show', 'dev', dev, check=False) for dev in ('r1', 'r2', 'ifb4r2')
            for what in ('qdisc', 'class')]


class Lab(object):
    """The two namespaces, the speed-test server and the files Ansible needs, under `work`."""

    def __init__(self, work, router_shaping=False):
        self.work = work
        self.router_shaping = router_shaping
        self.server = None

    def build(self):
        remove_namespaces()
        for ns in (ROUTER_NS, VPS_NS):
            sh('ip', 'netns', 'add', ns)
            sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
            in_ns(ns, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0',
                  'net.mptcp.enabled=1')
        for i in (1, 2):
            sh('ip', 'link', 'add', 'r%d' % i, 'netns', ROUTER_NS, 'type', 'veth', 'peer', 'name', 'v%d' % i,
               'netns', VPS_NS)
            for ns, dev, host in ((ROUTER_NS, 'r%d' % i, 2), (VPS_NS, 'v%d' % i, 1)):
                sh('ip', '-n', ns, 'addr', 'add', '100.64.%d.%d/24' % (i, host), 'dev', dev)
                sh('ip', '-n', ns, 'link', 'set', dev, 'up')
            # The ISP's lines, shaped on the VPS's side: downloads on v<i>'s root, uploads through an IFB.
            tbf(VPS_NS, 'v%d' % i, ISP_RATE)
            redirect_ingress(VPS_NS, 'v%d' % i, 'ifbv%d' % i, ISP_RATE)
            sh('ip', '-n', ROUTER_NS, 'rule', 'add', 'from', '100.64.%d.2' % i, 'table', str(100 + i))
            sh('ip', '-n', ROUTER_NS, 'route', 'add', 'default', 'via', '100.64.%d.1' % i, 'dev', 'r%d' % i,
               'table', str(100 + i))
        sh('ip', '-n', ROUTER_NS, 'route', 'add', 'default', 'via', '100.64.1.1', 'dev', 'r1', 'src', WAN1)
        sh('ip', '-n', VPS_NS, 'addr', 'add', VPS + '/32', 'dev', 'lo')
        sh('ip', '-n', ROUTER_NS, 'mptcp', 'endpoint', 'add', WAN2, 'dev', 'r2', 'subflow')
        for ns in (ROUTER_NS, VPS_NS):
            sh('ip', '-n', ns, 'mptcp', 'limits', 'set', 'subflows', '4', 'add_addr_accepted', '4')
        if self.router_shaping:
            in_ns(ROUTER_NS, 'tc', 'qdisc', 'add', 'dev', 'r2', 'root', 'tbf', 'rate', '8mbit', 'burst', '32kb',
                  'latency', '50ms')
            redirect_ingress(ROUTER_NS, 'r2', 'ifb4r2', '6mbit')
        self._files()
        log = open(os.path.join(self.work, 'server.log'), 'w')
        self.server = subprocess.Popen(['ip', 'netns', 'exec', VPS_NS, sys.executable, SERVER, '--port', str(PORT),
                                        '--allow', WAN1 + '/32', '--allow', WAN2 + '/32', '--max-seconds', '30'],
                                       stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while 'listening' not in self.log():
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError('the speed-test server did not start: %s' % self.log())
            time.sleep(0.05)

    def log(self):
        with open(os.path.join(self.work, 'server.log'), encoding='utf-8') as f:
            return f.read()

    def _write(self, name, text, mode=0o644):
        path = os.path.join(self.work, name)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def _files(self):
        sbin = os.path.join(self.work, 'sbin')
        os.makedirs(sbin, exist_ok=True)
        self._write('sbin/omr-router-net', '#!/bin/sh\n# A stand-in: the plan, for `show`.\ncat <<"EOF"\n%s\nEOF\n'
                    % json.dumps(PLAN, indent=1), 0o755)
        ip, unshare = shutil.which('ip'), shutil.which('unshare')
        self.router_sh = self._write('router-sh', (
            '#!/bin/sh\n# Runs `sh -c CMD` in the router namespace, with the stand-in in /usr/local/sbin.\n'
            'exec %s netns exec %s %s -m --propagation private /bin/sh -c \'mount --bind "$0" /usr/local/sbin && '
            'exec /bin/sh "$@"\' %s "$@"\n') % (ip, ROUTER_NS, unshare, sbin), 0o755)
        self.vps_sh = self._write('vps-sh', '#!/bin/sh\nexec %s netns exec %s /bin/sh "$@"\n' % (ip, VPS_NS), 0o755)
        os.makedirs(os.path.join(self.work, 'connection_plugins'), exist_ok=True)
        self._write('connection_plugins/omr_netns.py', CONNECTION)
        self.inventory = self._write('inventory.json', json.dumps({'all': {
            'vars': {'ansible_connection': 'omr_netns', 'ansible_python_interpreter': sys.executable},
            'children': {
                'omr_router': {'hosts': {'omr-dg-router': {'omr_netns_wrapper': self.router_sh,
                                                           'omr_router_backend': 'linux',
                                                           'omr_speedtest_capacity': CAPACITY}}},
                'omr_vps': {'hosts': {'omr-dg-vps': {'ansible_host': VPS, 'omr_netns_wrapper': self.vps_sh}}},
            }}}, indent=1))

    def playbook(self, out, *extra, **kwargs):
        """Run playbooks/diagnose.yml; (returncode, output)."""
        cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', self.inventory, PLAYBOOK,
               '-e', 'omr_diagnose_output_dir=%s' % out, '-e', 'omr_diagnose_seconds=%d' % kwargs.get('seconds', 3)]
        cmd += list(extra)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.work, 'ansible-local'),
                   ANSIBLE_REMOTE_TEMP=os.path.join(self.work, 'ansible-remote'),
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.collections'),
                   ANSIBLE_CONNECTION_PLUGINS=os.path.join(self.work, 'connection_plugins'))
        res = subprocess.run(cmd, cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=600)
        return res.returncode, res.stdout + res.stderr

    def stop(self):
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=5)
        remove_namespaces()
