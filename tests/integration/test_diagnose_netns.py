# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/diagnose.yml for real, against a router and a VPS in network namespaces
(diagnose_netns.py: two WANs at 20 Mbit/s, the router shaping wan2 itself as OMR's SQM does, the
VPS's speed-test server), and the rebuild of shaping trees on real qdiscs.

The playbook measures, removes the router's shaping for one more bonded transfer and puts it back:
tc shows the same before and after, the report says so, and check mode never removes it."""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diagnose_netns as lab_netns  # noqa: E402

from ansible_collections.omr.deploy.plugins.module_utils._qdisc import compare, shaping  # noqa: E402

ROOT = lab_netns.ROOT
SCRIPT = os.path.join(ROOT, 'playbooks', 'files', 'omr-diagnose.sh')
SCRATCH = 'omr-dg-tc-' + lab_netns.TAG

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason='needs root: creates network namespaces, veth pairs, IFBs and qdiscs'),
    pytest.mark.skipif(shutil.which('ip') is None or shutil.which('tc') is None, reason='iproute2 ip/tc not installed'),
    pytest.mark.skipif(not os.path.exists('/proc/sys/net/mptcp/enabled'),
                       reason='kernel has no upstream MPTCP (/proc/sys/net/mptcp/enabled missing)'),
]


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    lab = lab_netns.Lab(str(tmp_path_factory.mktemp('diagnose')), router_shaping=True)
    try:
        lab.build()
        yield lab
    finally:
        lab.stop()


def report(out):
    with open(os.path.join(out, 'diagnose-omr-dg-router.json'), encoding='utf-8') as f:
        return json.load(f)


def test_the_playbook_measures_removes_the_shaping_and_puts_it_back(lab, tmp_path):
    before = lab_netns.router_qdiscs()
    out = str(tmp_path / 'out')
    rc, log = lab.playbook(out)
    assert rc == 0, log[-6000:]
    assert lab_netns.router_qdiscs() == before, 'tc shows something else after the diagnosis'
    for suffix in ('.json', '.html'):
        mode = os.stat(os.path.join(out, 'diagnose-omr-dg-router' + suffix)).st_mode & 0o777
        assert mode == 0o644, (suffix, oct(mode))
    rep = report(out)
    wan1, wan2 = rep['links']
    assert 12 < wan1['alone']['download'] < 21 and 12 < wan1['alone']['upload'] < 21
    assert 3 < wan2['alone']['download'] < 6.5 and 4 < wan2['alone']['upload'] < 8.5      # the router's own tbf
    assert rep['bonded']['download']['mptcp'] and rep['bonded']['download']['subflows'] == 2
    assert wan1['subflows'] == wan2['subflows'] == 1 and wan1['interface_bytes'] > 1e6 and wan2['interface_bytes'] > 1e6
    assert len(rep['timeline']['t']) >= 4 and rep['vps'] == 'omr-dg-vps' and rep['vps_stats']['cpu']['busy_pct'] > 0
    assert rep['shaping']['removed'] and rep['shaping']['restored']
    # Without the router's shaping both lines carry their 20 Mbit/s.
    assert rep['unshaped']['download']['mbps'] > 25 and rep['unshaped']['upload']['mbps'] > 25
    said = [v['text'] for v in rep['verdicts']]
    assert [t for t in said if t.startswith('wan2 is the bottleneck: ')]
    assert [t for t in said if t.startswith('the router shapes wan2 with tbf at 6 Mbit/s (downloads); without it bonded ')]
    assert 'the shaping was put back as it was (tc shows the same qdiscs and classes)' in said
    assert 'wan2 is the bottleneck' in log and 'TASK [Verdicts]' in log
    # What it left on the router: nothing in /tmp, no scratch device, no sampler, no armed watchdog.
    assert lab_netns.in_ns(lab_netns.ROUTER_NS, 'sh', '-c', 'ls /tmp/omr-diagnose.* 2>/dev/null; ip -o link show omr-diag-rh 2>/dev/null',
                           check=False) == ''
    assert 'the router does so by itself in 106 s' in ' '.join(log.split())
    assert subprocess.run(['pgrep', '-f', 'omr-diagnose (sample|watchdog)'], capture_output=True, check=False).stdout == b''


def test_check_mode_measures_but_never_removes_the_shaping(lab, tmp_path):
    before = lab_netns.router_qdiscs()
    out = str(tmp_path / 'out')
    # Without ansible_host the VPS is found by its address (`ip -o addr show` on each omr_vps host).
    with open(lab.inventory, encoding='utf-8') as f:
        inventory = json.load(f)
    del inventory['all']['children']['omr_vps']['hosts']['omr-dg-vps']['ansible_host']
    with open(lab.inventory, 'w', encoding='utf-8') as f:
        json.dump(inventory, f)
    rc, log = lab.playbook(out, '--check', seconds=2)
    assert rc == 0, log[-6000:]
    assert 'omr-dg-router points at 192.0.2.1: the VPS omr-dg-vps' in ' '.join(log.split())
    assert lab_netns.router_qdiscs() == before
    rep = report(out)
    assert rep['check_mode'] and not rep['shaping']['removed'] and rep['unshaped'] == {'download': None, 'upload': None}
    assert rep['links'][0]['alone']['download'] > 10
    assert 'check mode: the probes ran, but no shaping qdisc was removed' in rep['notes']
    assert [v for v in rep['verdicts'] if v['text'].endswith('check mode: not removed, so not compared')]
    assert 'Remove the shaping qdiscs' in log and 'changed: [omr-dg-router]' not in log


TREES = {
    'htb': ['qdisc add dev d0 root handle 1: htb default 10 r2q 5',
            'class add dev d0 parent 1: classid 1:1 htb rate 30mbit ceil 30mbit',
            'class add dev d0 parent 1:1 classid 1:10 htb rate 20mbit ceil 30mbit prio 1',
            'class add dev d0 parent 1:1 classid 1:20 htb rate 10mbit ceil 30mbit prio 2',
            'qdisc add dev d0 parent 1:10 handle 10: tbf rate 20mbit burst 16kb latency 40ms',
            'qdisc add dev d0 parent 1:20 handle 20: pfifo limit 50'],
    'tbf-and-ifb': ['qdisc add dev d0 root tbf rate 8mbit burst 32kb latency 50ms',
                    'qdisc add dev d0 handle ffff: ingress',
                    'filter add dev d0 parent ffff: protocol all prio 10 u32 match u32 0 0 flowid 1:1 action mirred '
                    'egress redirect dev ifb4d0',
                    'qdisc add dev ifb4d0 root tbf rate 6mbit burst 32kb latency 50ms'],
}


@pytest.mark.parametrize('name', sorted(TREES))
def test_the_restore_rebuilds_real_trees_as_tc_showed_them(name):
    def run(text):
        res = subprocess.run(['ip', 'netns', 'exec', SCRATCH, 'sh', '-c', text], capture_output=True, text=True, check=False)
        return res.stdout

    subprocess.run(['ip', 'netns', 'del', SCRATCH], check=False, capture_output=True)
    subprocess.run(['ip', 'netns', 'add', SCRATCH], check=True)
    try:
        lab_netns.sh('ip', '-n', SCRATCH, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1')
        lab_netns.sh('ip', '-n', SCRATCH, 'link', 'add', 'ifb4d0', 'type', 'ifb')
        for command in TREES[name]:
            lab_netns.in_ns(SCRATCH, 'tc', *command.split())
        with open(SCRIPT, encoding='utf-8') as f:
            script = f.read()
        dump = lab_netns.in_ns(SCRATCH, 'sh', '-c', script, 'omr-diagnose', 'qdiscs', 'd0')
        plan = shaping(dump, [{'name': 'wan1', 'device': 'd0'}])
        assert plan['targets'] and not plan['blocked']
        # The rehearsal on the scratch IFB shows the same trees, and leaves no scratch device.
        assert compare(plan['targets'], run(plan['rehearse'])) == []
        assert 'omr-diag-rh' not in lab_netns.sh('ip', '-n', SCRATCH, 'link')
        run(plan['remove'])
        removed = lab_netns.in_ns(SCRATCH, 'sh', '-c', script, 'omr-diagnose', 'qdiscs', 'd0')
        assert compare(plan['targets'], removed) != []
        assert 'tbf' not in lab_netns.in_ns(SCRATCH, 'tc', 'qdisc', 'show', 'dev', 'd0')
        run(plan['restore'])
        assert compare(plan['targets'], lab_netns.in_ns(SCRATCH, 'sh', '-c', script, 'omr-diagnose', 'qdiscs', 'd0')) == []
        # The ingress hook and its redirect were never touched.
        assert 'ifb4d0' in lab_netns.in_ns(SCRATCH, 'tc', 'filter', 'show', 'dev', 'd0', 'parent', 'ffff:') or name == 'htb'
    finally:
        subprocess.run(['ip', 'netns', 'del', SCRATCH], check=False)
