# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr.deploy.vps's firewall file against a real kernel, in throwaway network namespaces.

A "vps" namespace with a public veth (pub0) and a private one (priv0) to a "client" namespace;
the rendered /etc/omr-vps/firewall.nft, loaded there as omr-vps-firewall.service loads it, must let
the client reach the open ports and nothing else over pub0, everything over priv0, and answer
ping. Loading it again must be atomic and leave other tables (a VPN's NAT) alone.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import os
import re
import shutil
import subprocess
import sys

import jinja2
import pytest

from ansible_collections.omr.deploy.plugins.module_utils._firewall import plan_firewall

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TEMPLATE = os.path.join(ROOT, 'roles', 'vps', 'templates', 'omr-vps-firewall.nft.j2')
PREFIX = 'omr-fw-it-' + hashlib.sha1(ROOT.encode()).hexdigest()[:6] + '-'
OPEN, RESTRICTED, CLOSED = 8443, 8444, 9999
LISTEN = '''
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        s.accept()[0].close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
'''
CONNECT = 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.5).close()'

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason='needs root: creates network namespaces'),
    pytest.mark.skipif(shutil.which('ip') is None or shutil.which('nft') is None, reason='needs iproute2 and nftables'),
]


def sh(*argv, check=True):
    res = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise AssertionError('%s failed (rc=%d): %s' % (' '.join(argv), res.returncode, res.stderr))
    return res


def render(plan):
    env = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    with open(TEMPLATE, encoding='utf-8') as f:
        return env.from_string(f.read()).render(__omr_vps_firewall_plan=plan, ansible_managed='Ansible managed')


@pytest.fixture
def lab(tmp_path):
    tag = '%d-%s' % (os.getpid(), os.urandom(2).hex())
    vps, client = PREFIX + 'v' + tag, PREFIX + 'c' + tag
    for ns in (vps, client):
        sh('ip', 'netns', 'add', ns)
    listener = None
    try:
        for dev, peer, net in (('pub0', 'c0', '10.99.0'), ('priv0', 'c1', '10.98.0')):
            sh('ip', 'link', 'add', dev, 'netns', vps, 'type', 'veth', 'peer', 'name', peer, 'netns', client)
            sh('ip', '-n', vps, 'addr', 'add', net + '.1/24', 'dev', dev)
            sh('ip', '-n', client, 'addr', 'add', net + '.2/24', 'dev', peer)
            sh('ip', '-n', vps, 'link', 'set', dev, 'up')
            sh('ip', '-n', client, 'link', 'set', peer, 'up')
        for ns in (vps, client):
            sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
        listener = subprocess.Popen(['ip', 'netns', 'exec', vps, sys.executable, '-c', LISTEN, '22', str(OPEN),
                                     str(RESTRICTED), str(CLOSED)], stdout=subprocess.PIPE, text=True)
        assert listener.stdout.readline().strip() == 'ready'
        plan = plan_firewall([{'port': OPEN, 'proto': 'tcp', 'comment': 'open'},
                              {'port': RESTRICTED, 'proto': 'tcp', 'sources': ['10.99.0.99/32']}],
                             public_interfaces=['pub0'], ssh_ports='auto', ssh_port_in_use=None,
                             services=[{'port': 65101, 'proto': 'udp', 'comment': 'proxy', 'var': 'omr_vps_proxy_port'}])
        path = tmp_path / 'firewall.nft'
        path.write_text(render(plan))
        yield {'vps': vps, 'client': client, 'file': str(path), 'plan': plan}
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        for ns in (vps, client):
            sh('ip', 'netns', 'del', ns, check=False)


def reaches(lab, address, port):
    return sh('ip', 'netns', 'exec', lab['client'], sys.executable, '-c', CONNECT, address, str(port),
              check=False).returncode == 0


def nft(lab, *args, check=True):
    return sh('ip', 'netns', 'exec', lab['vps'], 'nft', *args, check=check)


def test_only_the_open_ports_are_reachable_on_the_public_side(lab):
    for port in (22, OPEN, RESTRICTED, CLOSED):
        assert reaches(lab, '10.99.0.1', port), 'before the firewall, %d' % port
    nft(lab, '-f', lab['file'])
    assert reaches(lab, '10.99.0.1', 22)            # auto, not over SSH: 22
    assert reaches(lab, '10.99.0.1', OPEN)
    assert not reaches(lab, '10.99.0.1', RESTRICTED)  # open to 10.99.0.99 only
    assert not reaches(lab, '10.99.0.1', CLOSED)
    # Another interface is not the public side: all of it is accepted.
    for port in (RESTRICTED, CLOSED):
        assert reaches(lab, '10.98.0.1', port)
    ping = sh('ip', 'netns', 'exec', lab['client'], 'ping', '-c', '2', '-i', '0.2', '-W', '1', '10.99.0.1', check=False)
    assert ping.returncode == 0, ping.stdout
    # Above the rate (10/second burst 20 per source) pings are dropped: 100 in half a second
    # get about 25 answers.
    flood = sh('ip', 'netns', 'exec', lab['client'], 'ping', '-q', '-c', '100', '-i', '0.005', '-W', '1', '10.99.0.1',
               check=False)
    received = int(re.search(r'(\d+) received', flood.stdout).group(1))
    assert 15 <= received <= 50, flood.stdout


def test_loading_again_replaces_only_its_own_table(lab):
    nft(lab, 'add', 'table', 'ip', 'vpn_nat')
    nft(lab, 'add', 'chain', 'ip', 'vpn_nat', 'postrouting', '{ type nat hook postrouting priority srcnat; }')
    nft(lab, '-f', lab['file'])
    first = nft(lab, 'list', 'table', 'inet', 'omr_vps_firewall').stdout
    nft(lab, '-f', lab['file'])
    ruleset = nft(lab, 'list', 'ruleset').stdout
    assert ruleset.count('table inet omr_vps_firewall') == 1
    assert 'table ip vpn_nat' in ruleset and 'hook postrouting' in ruleset
    assert nft(lab, 'list', 'table', 'inet', 'omr_vps_firewall').stdout == first
    assert 'comment "omr.deploy.vps %s"' % lab['plan']['digest'] in first
    # The unit's ExecStop: the host is open again, the other table stays.
    nft(lab, 'delete', 'table', 'inet', 'omr_vps_firewall')
    assert reaches(lab, '10.99.0.1', CLOSED)
    assert 'table ip vpn_nat' in nft(lab, 'list', 'ruleset').stdout
