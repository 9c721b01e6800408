# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr.deploy.mptcp_info and omr.deploy.mptcp_endpoint against a real kernel.

Each test gets a fresh network namespace (MPTCP sysctls, endpoints and limits are per netns)
with a veth pair inside it, and runs the real modules through the `ansible` CLI inside it
with `ip netns exec`. Expected values come from `ip -j`, `ip mptcp limits show` and
/proc/sys/net/mptcp read inside the namespace, not from the collection's own parser.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), 'ansible')
if not os.path.exists(ANSIBLE):
    ANSIBLE = os.path.join(ROOT, '.venv', 'bin', 'ansible')
# Same name for the same checkout, so a crashed run's leftover is found and removed.
NS = 'omr-mptcp-it-' + hashlib.sha1(ROOT.encode()).hexdigest()[:6]
FLAGS = ('signal', 'subflow', 'backup', 'fullmesh', 'implicit', 'laminar')

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason='needs root: creates network namespaces and veth pairs'),
    pytest.mark.skipif(shutil.which('ip') is None, reason='iproute2 `ip` not installed'),
    pytest.mark.skipif(not os.path.exists('/proc/sys/net/mptcp/enabled'),
                       reason='kernel has no upstream MPTCP (/proc/sys/net/mptcp/enabled missing)'),
]


def sh(*argv, check=True):
    res = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise AssertionError('%s failed (rc=%d): %s' % (' '.join(argv), res.returncode, res.stderr))
    return res.stdout


@pytest.fixture
def netns():
    sh('ip', 'netns', 'del', NS, check=False)
    sh('ip', 'netns', 'add', NS)
    try:
        sh('ip', '-n', NS, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb')
        for dev in ('lo', 'va', 'vb'):
            sh('ip', '-n', NS, 'link', 'set', dev, 'up')
        sh('ip', '-n', NS, 'addr', 'add', '192.0.2.1/24', 'dev', 'va')
        sh('ip', '-n', NS, 'addr', 'add', '2001:db8::1/64', 'dev', 'va', 'nodad')
        sh('ip', '-n', NS, 'addr', 'add', '198.51.100.1/24', 'dev', 'vb')
        yield NS
    finally:
        sh('ip', 'netns', 'del', NS, check=False)


# ---------------------------------------------------------------- what the kernel says

def ip_endpoints(ns):
    """Endpoints from `ip -j` (iproute2's own JSON, independent of the collection's text parser)."""
    result = []
    for e in json.loads(sh('ip', '-n', ns, '-j', 'mptcp', 'endpoint', 'show') or '[]'):
        # iproute2 before 6.5 has no name for implicit (0x10): it prints "rawflags": "10".
        raw = int(e.get('rawflags', '0'), 16)
        named = dict(zip(FLAGS, (1, 2, 4, 8, 16, 32)))
        flags = [f for f in FLAGS if e.get(f) is True or raw & named[f]]
        result.append({'id': e['id'], 'address': e['address'], 'dev': e.get('dev'), 'port': e.get('port'),
                       'flags': flags})
    return result


def ip_limits(ns):
    # iproute2 6.1 has no JSON for limits.
    text = sh('ip', '-n', ns, 'mptcp', 'limits', 'show')
    return {key: int(re.search(r'\b%s (\d+)' % key, text).group(1)) for key in ('subflows', 'add_addr_accepted')}


def proc_sysctl(ns):
    code = ('import json,os; d="/proc/sys/net/mptcp"; '
            'print(json.dumps({n: open(os.path.join(d, n)).read().strip() for n in os.listdir(d)}))')
    raw = json.loads(sh('ip', 'netns', 'exec', ns, sys.executable, '-c', code))
    return {'net.mptcp.' + k: int(v) if re.match(r'^-?\d+$', v) else v for k, v in raw.items()}


def ip_endpoint_add(ns, *args):
    sh('ip', '-n', ns, 'mptcp', 'endpoint', 'add', *args)


# ---------------------------------------------------------------- running Ansible in the netns

def ansible(ns, module, args=None, check=False, diff=False, prefix=(), path=None):
    cmd = list(prefix) + ['ip', 'netns', 'exec', ns, ANSIBLE, 'localhost', '-c', 'local', '-i', 'localhost,',
                          '-e', 'ansible_python_interpreter=' + sys.executable, '-m', module]
    if args is not None:
        cmd += ['-a', json.dumps(args)]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
               ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_NOCOLOR='1')
    if path:
        env['PATH'] = path + os.pathsep + env.get('PATH', '')
    res = subprocess.run(cmd, cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=180)
    try:
        out = json.loads(res.stdout)
    except ValueError:
        raise AssertionError('no JSON from ansible (rc=%d)\nstdout: %s\nstderr: %s'
                             % (res.returncode, res.stdout, res.stderr))
    return out['plays'][0]['tasks'][0]['hosts']['localhost']


def endpoint(ns, check=False, diff=False, **args):
    return ansible(ns, 'omr.deploy.mptcp_endpoint', args, check=check, diff=diff)


def expected_facts(ns):
    sysctl = proc_sysctl(ns)
    return {
        'flavour': 'v1',
        'enabled': sysctl['net.mptcp.enabled'] == 1,
        'kernel': os.uname().release,
        'sysctl': sysctl,
        'path_manager': sysctl.get('net.mptcp.path_manager',
                                   {0: 'kernel', 1: 'userspace'}.get(sysctl.get('net.mptcp.pm_type'))),
        'scheduler': sysctl.get('net.mptcp.scheduler'),
        'available_schedulers': str(sysctl.get('net.mptcp.available_schedulers', '')).split(),
        'available_path_managers': str(sysctl.get('net.mptcp.available_path_managers', '')).split(),
        'limits': ip_limits(ns),
        'endpoints': ip_endpoints(ns),
        'ip_mptcp': True,
        'congestion_control': proc_congestion(ns),
    }


def proc_congestion(ns):
    """The namespace's congestion controls, read by another process from /proc."""
    def read(name):
        return sh('ip', 'netns', 'exec', ns, 'cat', '/proc/sys/net/ipv4/' + name).strip()
    return {'current': read('tcp_congestion_control'), 'available': read('tcp_available_congestion_control').split(),
            'allowed': read('tcp_allowed_congestion_control').split()}


# ---------------------------------------------------------------- mptcp_info

def test_info_matches_kernel_state(netns):
    ip_endpoint_add(netns, '192.0.2.1', 'dev', 'va', 'id', '10', 'signal')
    ip_endpoint_add(netns, '192.0.2.1', 'dev', 'va', 'port', '10000', 'signal')
    ip_endpoint_add(netns, '198.51.100.1', 'dev', 'vb', 'subflow', 'backup', 'fullmesh')
    ip_endpoint_add(netns, '2001:db8::1', 'dev', 'va', 'signal', 'backup')
    ip_endpoint_add(netns, '192.0.2.50')
    sh('ip', '-n', netns, 'mptcp', 'limits', 'set', 'subflows', '5', 'add_addr_accepted', '3')
    sh('ip', 'netns', 'exec', netns, 'sysctl', '-qw', 'net.mptcp.add_addr_timeout=30',
       'net.mptcp.checksum_enabled=1', 'net.mptcp.stale_loss_cnt=7')

    res = ansible(netns, 'omr.deploy.mptcp_info')
    assert res.get('failed') is not True, res
    assert res['changed'] is False
    facts = res['ansible_facts']['omr_mptcp']
    want = expected_facts(netns)
    assert facts == want
    # And the values really are the ones set above, not just self-consistent.
    assert facts['limits'] == {'subflows': 5, 'add_addr_accepted': 3}
    assert facts['sysctl']['net.mptcp.add_addr_timeout'] == 30
    assert facts['sysctl']['net.mptcp.stale_loss_cnt'] == 7
    assert [e['address'] for e in facts['endpoints']] == ['192.0.2.1', '192.0.2.1', '198.51.100.1',
                                                          '2001:db8::1', '192.0.2.50']
    assert facts['endpoints'][1] == {'id': 11, 'address': '192.0.2.1', 'dev': 'va', 'port': 10000,
                                     'flags': ['signal']}


def test_info_disabled_and_check_mode(netns):
    sh('ip', 'netns', 'exec', netns, 'sysctl', '-qw', 'net.mptcp.enabled=0')
    res = ansible(netns, 'omr.deploy.mptcp_info', check=True)
    facts = res['ansible_facts']['omr_mptcp']
    assert facts == expected_facts(netns)
    assert facts['enabled'] is False and facts['sysctl']['net.mptcp.enabled'] == 0
    assert facts['endpoints'] == [] and facts['limits'] == {'subflows': 2, 'add_addr_accepted': 0}


def test_info_rejects_options(netns):
    res = ansible(netns, 'omr.deploy.mptcp_info', {'bogus': 1})
    assert res['failed'] is True
    assert 'bogus' in res['msg']


def test_info_module_fallback_matches_action(netns, tmp_path):
    """The Python module (used only without the action plugin) gives the same facts."""
    ip_endpoint_add(netns, '198.51.100.1', 'dev', 'vb', 'subflow', 'fullmesh')
    args_file = tmp_path / 'args.json'
    args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': {}}))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, '.collections'))
    res = subprocess.run(['ip', 'netns', 'exec', netns, sys.executable,
                          os.path.join(ROOT, 'plugins', 'modules', 'mptcp_info.py'), str(args_file)],
                         check=False, capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out['changed'] is False
    assert out['ansible_facts']['omr_mptcp'] == expected_facts(netns)


# ---------------------------------------------------------------- mptcp_endpoint

VPS_LIKE = dict(
    endpoints=[
        {'address': '192.0.2.1', 'dev': 'va', 'id': 10, 'flags': ['signal']},
        {'address': '192.0.2.1', 'port': 65101, 'flags': ['signal']},
        {'address': '198.51.100.1', 'dev': 'vb', 'flags': ['subflow', 'backup', 'fullmesh']},
        {'address': '2001:db8::1', 'dev': 'va', 'flags': ['signal', 'backup']},
    ],
    limits={'subflows': 8, 'add_addr_accepted': 8},
)


def test_endpoint_changed_then_idempotent(netns):
    first = endpoint(netns, **VPS_LIKE)
    assert first.get('failed') is not True, first
    assert first['changed'] is True
    assert first['commands'] == [
        'ip mptcp endpoint add 192.0.2.1 dev va id 10 signal',
        'ip mptcp endpoint add 192.0.2.1 port 65101 signal',
        'ip mptcp endpoint add 198.51.100.1 dev vb subflow backup fullmesh',
        'ip mptcp endpoint add 2001:db8::1 dev va signal backup',
        'ip mptcp limits set subflows 8 add_addr_accepted 8',
    ]
    kernel = ip_endpoints(netns)
    assert first['endpoints'] == kernel
    assert [(e['address'], e['port'], e['dev'], e['flags']) for e in kernel] == [
        ('192.0.2.1', None, 'va', ['signal']),
        ('192.0.2.1', 65101, None, ['signal']),
        ('198.51.100.1', None, 'vb', ['subflow', 'backup', 'fullmesh']),
        ('2001:db8::1', None, 'va', ['signal', 'backup']),
    ]
    assert kernel[0]['id'] == 10
    assert first['limits'] == ip_limits(netns) == {'subflows': 8, 'add_addr_accepted': 8}

    second = endpoint(netns, **VPS_LIKE)
    assert second['changed'] is False
    assert second['commands'] == []
    assert ip_endpoints(netns) == kernel


def test_endpoint_check_mode_changes_nothing(netns):
    ip_endpoint_add(netns, '192.0.2.1', 'dev', 'va', 'id', '10', 'subflow')
    ip_endpoint_add(netns, '192.0.2.77', 'signal')
    before, before_limits = ip_endpoints(netns), ip_limits(netns)

    res = endpoint(netns, check=True, purge=True, **VPS_LIKE)
    assert res['changed'] is True
    assert res['commands'] == [
        'ip mptcp endpoint delete id 10',
        'ip mptcp endpoint delete id 11',
        'ip mptcp endpoint add 192.0.2.1 dev va id 10 signal',
        'ip mptcp endpoint add 192.0.2.1 port 65101 signal',
        'ip mptcp endpoint add 198.51.100.1 dev vb subflow backup fullmesh',
        'ip mptcp endpoint add 2001:db8::1 dev va signal backup',
        'ip mptcp limits set subflows 8 add_addr_accepted 8',
    ]
    assert ip_endpoints(netns) == before and ip_limits(netns) == before_limits
    # The prediction: ids the kernel would choose are unknown (null).
    assert [(e['id'], e['address']) for e in res['endpoints']] == [
        (10, '192.0.2.1'), (None, '192.0.2.1'), (None, '198.51.100.1'), (None, '2001:db8::1')]
    assert res['limits'] == {'subflows': 8, 'add_addr_accepted': 8}

    # A real run does what check mode announced.
    real = endpoint(netns, purge=True, **VPS_LIKE)
    assert real['commands'] == res['commands']
    assert [dict(e, id=None) for e in real['endpoints'][1:]] == res['endpoints'][1:]


def test_endpoint_diff(netns):
    ip_endpoint_add(netns, '192.0.2.77', 'id', '3', 'signal')
    res = endpoint(netns, diff=True, endpoints=[{'address': '192.0.2.1', 'dev': 'va', 'id': 10, 'flags': ['signal']}],
                   purge=True, limits={'subflows': 4})
    assert res['changed'] is True
    assert res['diff']['before'] == 'endpoint 192.0.2.77 id 3 signal\nlimits subflows 2 add_addr_accepted 0\n'
    assert res['diff']['after'] == 'endpoint 192.0.2.1 id 10 signal dev va\nlimits subflows 4 add_addr_accepted 0\n'
    # No diff unless asked for.
    again = endpoint(netns, endpoints=[{'address': '192.0.2.1', 'flags': ['signal']}])
    assert again['changed'] is False and 'diff' not in again


def test_endpoint_backup_fullmesh_changed_in_place(netns):
    ip_endpoint_add(netns, '198.51.100.1', 'dev', 'vb', 'id', '7', 'subflow', 'backup', 'fullmesh')
    ip_endpoint_add(netns, '198.51.100.2', 'dev', 'vb', 'id', '8', 'subflow')
    res = endpoint(netns, endpoints=[
        {'address': '198.51.100.1', 'dev': 'vb', 'flags': ['subflow', 'fullmesh']},
        {'address': '198.51.100.2', 'dev': 'vb', 'flags': ['subflow', 'backup']},
    ])
    assert res['commands'] == ['ip mptcp endpoint change id 7 nobackup fullmesh',
                               'ip mptcp endpoint change id 8 backup nofullmesh']
    assert ip_endpoints(netns) == [
        {'id': 7, 'address': '198.51.100.1', 'dev': 'vb', 'port': None, 'flags': ['subflow', 'fullmesh']},
        {'id': 8, 'address': '198.51.100.2', 'dev': 'vb', 'port': None, 'flags': ['subflow', 'backup']},
    ]
    assert res['endpoints'] == ip_endpoints(netns)


def test_endpoint_change_unsupported_falls_back_to_recreate(netns, tmp_path):
    """An `ip` (or kernel) that refuses `endpoint change` gets delete + add instead."""
    wrapper = tmp_path / 'ip'
    wrapper.write_text('#!/bin/sh\n'
                       'case "$*" in *"endpoint change"*) echo "Error: change not supported" >&2; exit 255;; esac\n'
                       'exec %s "$@"\n' % shutil.which('ip'))
    wrapper.chmod(0o755)
    ip_endpoint_add(netns, '198.51.100.1', 'dev', 'vb', 'id', '7', 'subflow', 'backup')
    res = ansible(netns, 'omr.deploy.mptcp_endpoint',
                  {'endpoints': [{'address': '198.51.100.1', 'dev': 'vb', 'flags': ['subflow', 'fullmesh']}]},
                  path=str(tmp_path))
    assert res.get('failed') is not True, res
    assert res['commands'] == ['ip mptcp endpoint change id 7 nobackup fullmesh',
                               'ip mptcp endpoint delete id 7',
                               'ip mptcp endpoint add 198.51.100.1 dev vb id 7 subflow fullmesh']
    assert ip_endpoints(netns) == [
        {'id': 7, 'address': '198.51.100.1', 'dev': 'vb', 'port': None, 'flags': ['subflow', 'fullmesh']}]


def test_endpoint_signal_to_subflow_is_recreated(netns):
    ip_endpoint_add(netns, '192.0.2.1', 'dev', 'va', 'id', '4', 'signal')
    res = endpoint(netns, endpoints=[{'address': '192.0.2.1', 'dev': 'va', 'id': 4, 'flags': ['subflow']}])
    assert res['commands'] == ['ip mptcp endpoint delete id 4', 'ip mptcp endpoint add 192.0.2.1 dev va id 4 subflow']
    assert ip_endpoints(netns) == [{'id': 4, 'address': '192.0.2.1', 'dev': 'va', 'port': None, 'flags': ['subflow']}]


def test_endpoint_purge(netns):
    ip_endpoint_add(netns, '192.0.2.1', 'dev', 'va', 'signal')
    ip_endpoint_add(netns, '192.0.2.2', 'signal')
    ip_endpoint_add(netns, '198.51.100.1', 'dev', 'vb', 'subflow')
    keep = [{'address': '198.51.100.1', 'dev': 'vb', 'flags': ['subflow']}]

    res = endpoint(netns, endpoints=keep)  # without purge, extras stay
    assert res['changed'] is False and len(ip_endpoints(netns)) == 3

    res = endpoint(netns, endpoints=keep, purge=True)
    assert res['changed'] is True
    assert res['commands'] == ['ip mptcp endpoint delete id 1', 'ip mptcp endpoint delete id 2']
    assert [e['address'] for e in ip_endpoints(netns)] == ['198.51.100.1']
    assert endpoint(netns, endpoints=keep, purge=True)['changed'] is False


def test_endpoint_state_absent(netns):
    ip_endpoint_add(netns, '192.0.2.1', 'dev', 'va', 'signal')
    ip_endpoint_add(netns, '192.0.2.1', 'port', '10000', 'signal')
    ip_endpoint_add(netns, '2001:db8::1', 'dev', 'va', 'signal')
    gone = [{'address': '192.0.2.1', 'port': 10000, 'flags': ['signal']}, {'address': '2001:DB8::1'}]

    res = endpoint(netns, check=True, state='absent', endpoints=gone)
    assert res['changed'] is True and len(ip_endpoints(netns)) == 3

    res = endpoint(netns, state='absent', endpoints=gone)
    assert res['changed'] is True
    assert res['commands'] == ['ip mptcp endpoint delete id 2', 'ip mptcp endpoint delete id 3']
    assert [(e['address'], e['port']) for e in ip_endpoints(netns)] == [('192.0.2.1', None)]
    assert endpoint(netns, state='absent', endpoints=gone)['changed'] is False


@pytest.mark.parametrize('limits, option', [
    ({'subflows': 9}, 'limits.subflows'),
    ({'add_addr_accepted': -1}, 'limits.add_addr_accepted'),
])
def test_endpoint_bad_limits_rejected(netns, limits, option):
    res = endpoint(netns, limits=limits)
    assert res['failed'] is True
    assert option in res['msg'] and 'between 0 and 8' in res['msg']
    assert ip_limits(netns) == {'subflows': 2, 'add_addr_accepted': 0}


def test_endpoint_bad_arguments_rejected(netns):
    res = endpoint(netns, endpoints=[{'address': '192.0.2.1', 'flags': ['signal', 'fullmesh']}])
    assert res['failed'] is True and 'endpoints[0].flags' in res['msg']
    res = endpoint(netns, state='present')
    assert res['failed'] is True and 'endpoints, limits' in res['msg']
    assert ip_endpoints(netns) == []


def test_endpoint_fails_clearly_without_mptcp_v1(netns):
    """/proc/sys/net hidden by a tmpfs in a private mount namespace looks like a kernel without MPTCP."""
    if shutil.which('unshare') is None:
        pytest.skip('unshare (util-linux) not installed')
    cmd = ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs none /proc/sys/net && exec "$@"', 'sh']
    res = ansible(netns, 'omr.deploy.mptcp_endpoint', {'limits': {'subflows': 4}}, prefix=cmd)
    assert res['failed'] is True
    assert 'no upstream MPTCP' in res['msg'] and '/proc/sys/net/mptcp/enabled' in res['msg']
    info = ansible(netns, 'omr.deploy.mptcp_info', prefix=cmd)['ansible_facts']['omr_mptcp']
    assert (info['flavour'], info['enabled'], info['sysctl']) == ('none', False, {})


SERVER = '''
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)  # IPPROTO_MPTCP
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.0.0.1", 5201)); s.listen(1); s.settimeout(20)
c, _ = s.accept(); time.sleep(4); c.close()
'''
CLIENT = '''
import socket, time
for _ in range(50):
    try:
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262); c.connect(("10.0.0.1", 5201)); break
    except OSError:
        c.close(); time.sleep(0.1)
c.sendall(b"x" * 1000); time.sleep(3); c.close()
'''


def test_endpoint_purge_keeps_implicit(netns):
    """A subflow towards an announced address makes the kernel add an implicit endpoint; purge leaves it."""
    peer = netns + '-peer'
    sh('ip', 'netns', 'del', peer, check=False)
    sh('ip', 'netns', 'add', peer)
    server = None
    try:
        sh('ip', 'link', 'add', 'wan0', 'netns', netns, 'type', 'veth', 'peer', 'name', 'isp0', 'netns', peer)
        sh('ip', '-n', netns, 'link', 'set', 'wan0', 'up')
        sh('ip', '-n', peer, 'link', 'set', 'isp0', 'up')
        for addr in ('10.0.0.2/24', '10.0.1.2/24'):
            sh('ip', '-n', netns, 'addr', 'add', addr, 'dev', 'wan0')
        for addr in ('10.0.0.1/24', '10.0.1.1/24'):
            sh('ip', '-n', peer, 'addr', 'add', addr, 'dev', 'isp0')
        sh('ip', '-n', peer, 'mptcp', 'endpoint', 'add', '10.0.1.1', 'dev', 'isp0', 'signal')
        for ns in (netns, peer):
            sh('ip', '-n', ns, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '2')
        server = subprocess.Popen(['ip', 'netns', 'exec', peer, sys.executable, '-c', SERVER])
        sh('ip', 'netns', 'exec', netns, sys.executable, '-c', CLIENT)
        implicit = [e for e in ip_endpoints(netns) if 'implicit' in e['flags']]
        if not implicit:
            pytest.skip('this kernel made no implicit endpoint: %s' % ip_endpoints(netns))
        assert implicit[0]['address'] == '10.0.1.2'

        ip_endpoint_add(netns, '192.0.2.77', 'signal')
        res = endpoint(netns, endpoints=[{'address': '192.0.2.1', 'flags': ['signal']}], purge=True)
        assert res.get('failed') is not True, res
        kernel = ip_endpoints(netns)
        assert [(e['address'], e['flags']) for e in kernel] == [('10.0.1.2', ['implicit']), ('192.0.2.1', ['signal'])]
        assert res['endpoints'] == kernel
        info = ansible(netns, 'omr.deploy.mptcp_info')['ansible_facts']['omr_mptcp']
        assert info['endpoints'] == kernel
    finally:
        if server is not None:
            server.wait(timeout=30)
        sh('ip', 'netns', 'del', peer, check=False)
