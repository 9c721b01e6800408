# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers and planners of plugins/module_utils/_mptcp.py, on captured output.

Fixtures and how they were captured: tests/unit/fixtures/mptcp/README.md. The v0 fixture is
hand-assembled from multipath-tcp/mptcp net/mptcp/mptcp_ctrl.c (sysctl table), the sysctl dump
in multipath-tcp/mptcp issue #248, and the `ip mptcp` error text in multipath-tcp/mptcp issue #441.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess

import pytest

from ansible_collections.omr.deploy.plugins.module_utils import _mptcp as m

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        'fixtures', 'mptcp')


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


def ep(id_, address, dev=None, port=None, flags=()):
    return {'id': id_, 'address': address, 'dev': dev, 'port': port, 'flags': list(flags)}


# What both v1 captures hold (same kernel state, two iproute2 versions).
V1_ENDPOINTS = [
    ep(1, '10.0.1.2', flags=['implicit']),
    ep(10, '192.0.2.1', dev='va', flags=['signal']),
    ep(11, '192.0.2.1', dev='va', port=10000, flags=['signal']),
    ep(12, '198.51.100.1', dev='vb', flags=['subflow', 'backup', 'fullmesh']),
    ep(13, '2001:db8::1', dev='va', flags=['signal', 'backup']),
    ep(14, '198.51.100.2', dev='vb', flags=['subflow']),
    ep(15, '192.0.2.50'),
]

V1_SYSCTL = {
    'net.mptcp.add_addr_timeout': 60,
    'net.mptcp.allow_join_initial_addr_port': 1,
    'net.mptcp.available_path_managers': 'kernel userspace',
    'net.mptcp.available_schedulers': 'default',
    'net.mptcp.blackhole_timeout': 0,
    'net.mptcp.checksum_enabled': 1,
    'net.mptcp.close_timeout': 60,
    'net.mptcp.enabled': 1,
    'net.mptcp.path_manager': 'kernel',
    'net.mptcp.pm_type': 0,
    'net.mptcp.scheduler': 'default',
    'net.mptcp.stale_loss_cnt': 4,
    'net.mptcp.syn_retrans_before_tcp_fallback': 2,
}

V1_VARIANTS = ['v1-iproute2-6.1', 'v1-iproute2-6.15-debian13']


# ---------------------------------------------------------------- parse_endpoints / parse_limits

@pytest.mark.parametrize('variant', V1_VARIANTS)
def test_parse_endpoints_captured(variant):
    assert m.parse_endpoints(fixture(variant + '.endpoint-show.txt')) == V1_ENDPOINTS


@pytest.mark.parametrize('variant', V1_VARIANTS)
def test_parse_endpoints_agrees_with_ip_json(variant):
    """The text parser must say what `ip -j` said about the same state."""
    parsed = m.parse_endpoints(fixture(variant + '.endpoint-show.txt'))
    for text_ep, js in zip(parsed, json.loads(fixture(variant + '.endpoint-show.json'))):
        flags = [f for f in m.FLAG_ORDER if js.get(f) is True]
        if 'rawflags' in js:
            flags = m.sort_flags(flags + m._decode_rawflags(js['rawflags']))
        assert text_ep == ep(js['id'], js['address'], js.get('dev'), js.get('port'), flags)


def test_parse_endpoints_rawflags_unknown_bits_and_colour():
    text = ('\x1b[35m192.0.2.9\x1b[0m id 3 signal rawflags 60 dev \x1b[36mwan1\x1b[0m \n'
            '\n'
            '192.0.2.10 id 4 subflow laminar \n')
    assert m.parse_endpoints(text) == [
        ep(3, '192.0.2.9', dev='wan1', flags=['signal', 'laminar', '0x40']),
        ep(4, '192.0.2.10', flags=['subflow', 'laminar']),
    ]


def test_parse_endpoints_empty():
    assert m.parse_endpoints('') == []
    assert m.parse_endpoints(None) == []


@pytest.mark.parametrize('variant', V1_VARIANTS)
def test_parse_limits_captured(variant):
    assert m.parse_limits(fixture(variant + '.limits-show.txt')) == {'subflows': 8, 'add_addr_accepted': 4}


def test_parse_limits_variants():
    assert m.parse_limits('add_addr_accepted 0 subflows 2 \n') == {'subflows': 2, 'add_addr_accepted': 0}
    # Old man-page spelling, and one key only.
    assert m.parse_limits('subflow 3') == {'subflows': 3, 'add_addr_accepted': None}
    assert m.parse_limits('') is None
    assert m.parse_limits('Error: ...') is None


# ---------------------------------------------------------------- parse_gather

@pytest.mark.parametrize('variant', V1_VARIANTS)
def test_parse_gather_v1(variant):
    facts = m.parse_gather(fixture(variant + '.gather.txt'))
    assert facts == {
        'flavour': 'v1',
        'enabled': True,
        'kernel': '6.18.44-fc-v782',
        'sysctl': V1_SYSCTL,
        'path_manager': 'kernel',
        'scheduler': 'default',
        'available_schedulers': ['default'],
        'available_path_managers': ['kernel', 'userspace'],
        'limits': {'subflows': 8, 'add_addr_accepted': 4},
        'endpoints': V1_ENDPOINTS,
        'ip_mptcp': True,
        'congestion_control': {'current': None, 'available': [], 'allowed': []},
    }
    # Plain ints and strs only, so the facts survive JSON unchanged.
    assert json.loads(json.dumps(facts)) == facts


def test_parse_gather_v0():
    facts = m.parse_gather(fixture('v0-synthetic.gather.txt'))
    assert facts == {
        'flavour': 'v0',
        'enabled': True,
        'kernel': '5.4.207',
        'sysctl': {
            'net.mptcp.mptcp_checksum': 0,
            'net.mptcp.mptcp_debug': 0,
            'net.mptcp.mptcp_enabled': 1,
            'net.mptcp.mptcp_path_manager': 'fullmesh',
            'net.mptcp.mptcp_scheduler': 'blest',
            'net.mptcp.mptcp_syn_retries': 4,
            'net.mptcp.mptcp_version': 0,
        },
        'path_manager': 'fullmesh',
        'scheduler': 'blest',
        'available_schedulers': [],
        'available_path_managers': [],
        'limits': None,
        'endpoints': [],
        'ip_mptcp': False,
        'congestion_control': {'current': None, 'available': [], 'allowed': []},
    }


def test_parse_gather_reads_the_congestion_controls():
    # Captured in a fresh network namespace: it may only pick an "allowed" control.
    facts = m.parse_gather(fixture('v1-netns-net.gather.txt'))
    assert facts['congestion_control'] == {'current': 'bbr', 'available': ['reno', 'bbr', 'cubic'],
                                           'allowed': ['reno', 'bbr']}
    assert facts['limits'] == {'subflows': 2, 'add_addr_accepted': 0} and facts['endpoints'] == []


def test_parse_gather_none_busybox():
    facts = m.parse_gather(fixture('none-busybox.gather.txt'))
    assert facts == {
        'flavour': 'none',
        'enabled': False,
        'kernel': '6.18.44-fc-v782',
        'sysctl': {},
        'path_manager': None,
        'scheduler': None,
        'available_schedulers': [],
        'available_path_managers': [],
        'limits': None,
        'endpoints': [],
        'ip_mptcp': False,
        'congestion_control': {'current': None, 'available': [], 'allowed': []},
    }


def _edit_v1(drop=(), replace=None):
    lines = []
    for line in fixture('v1-iproute2-6.1.gather.txt').splitlines():
        name = line.split(':', 1)[0]
        if name in drop:
            continue
        if replace and name in replace:
            line = '%s:%s' % (name, replace[name])
        lines.append(line)
    return '\n'.join(lines) + '\n'


def test_parse_gather_pm_type_fallback_before_6_15():
    """Kernels before 6.15 have pm_type but no path_manager."""
    facts = m.parse_gather(_edit_v1(drop=('path_manager', 'available_path_managers'), replace={'pm_type': '1'}))
    assert facts['path_manager'] == 'userspace'
    assert facts['available_path_managers'] == []
    assert 'net.mptcp.path_manager' not in facts['sysctl']
    facts = m.parse_gather(_edit_v1(drop=('path_manager', 'pm_type', 'scheduler', 'available_schedulers')))
    assert facts['path_manager'] is None
    assert facts['scheduler'] is None
    assert facts['available_schedulers'] == []


def test_parse_gather_disabled_and_lists():
    facts = m.parse_gather(_edit_v1(replace={'enabled': '0', 'available_schedulers': 'default bpf_rr bpf_red'}))
    assert facts['enabled'] is False
    assert facts['available_schedulers'] == ['default', 'bpf_rr', 'bpf_red']
    assert facts['sysctl']['net.mptcp.available_schedulers'] == 'default bpf_rr bpf_red'


def test_parse_gather_ip_failing_on_v1():
    """iproute2 too old for `ip mptcp` on a v1 kernel: sysctls still reported."""
    text = fixture('v1-iproute2-6.1.gather.txt')
    head, _sep, _tail = text.partition('#omr-mptcp# limits\n')
    text = head + ('#omr-mptcp# limits\n#omr-mptcp# limits-stderr\n'
                   'Object "mptcp" is unknown, try "ip help".\n#omr-mptcp# limits-rc 255\n'
                   '#omr-mptcp# endpoint\n#omr-mptcp# endpoint-stderr\n'
                   'Object "mptcp" is unknown, try "ip help".\n#omr-mptcp# endpoint-rc 255\n'
                   '#omr-mptcp# end\n')
    facts = m.parse_gather(text)
    assert (facts['flavour'], facts['enabled'], facts['ip_mptcp']) == ('v1', True, False)
    assert facts['limits'] is None and facts['endpoints'] == []
    assert facts['sysctl'] == V1_SYSCTL


@pytest.mark.parametrize('text', ['', 'sh: syntax error\n', fixture('v1-iproute2-6.1.gather.txt').rsplit('#omr', 1)[0]])
def test_parse_gather_rejects_incomplete_output(text):
    with pytest.raises(m.MptcpParseError):
        m.parse_gather(text)


def test_gather_script_is_posix_and_has_no_trailing_newline():
    # Ansible appends ` && sleep 0`: a trailing newline would make that a syntax error.
    assert not m.GATHER_SCRIPT.endswith('\n')
    for shell in ('sh', 'dash', 'bash', 'busybox'):
        path = subprocess.run(['sh', '-c', 'command -v ' + shell], check=False, capture_output=True, text=True).stdout.strip()
        if not path:
            continue
        argv = [path, 'sh', '-n', '-c'] if shell == 'busybox' else [path, '-n', '-c']
        res = subprocess.run(argv + [m.GATHER_SCRIPT + ' && sleep 0'], check=False, capture_output=True, text=True)
        assert res.returncode == 0, (shell, res.stderr)


def test_gather_script_runs_locally():
    """Whatever this machine has, the script completes and the parser accepts it."""
    res = subprocess.run(['sh', '-c', m.GATHER_SCRIPT + ' && sleep 0'], check=False, capture_output=True, text=True)
    assert res.returncode == 0
    facts = m.parse_gather(res.stdout)
    assert facts['flavour'] in ('v1', 'v0', 'none')
    assert facts['kernel'] == os.uname().release


# ---------------------------------------------------------------- validation

def test_validate_endpoints_normalises():
    got = m.validate_endpoints([
        {'address': '2001:DB8:0::1', 'dev': None, 'id': None, 'port': None, 'flags': ['backup', 'signal']},
        {'address': '192.0.2.1', 'port': 10000, 'flags': ['signal'], 'id': 7, 'dev': 'va'},
    ])
    assert got == [ep(None, '2001:db8::1', flags=['signal', 'backup']),
                   ep(7, '192.0.2.1', dev='va', port=10000, flags=['signal'])]


@pytest.mark.parametrize('items, message', [
    ([{'address': 'wan1'}], r"endpoints\[0\]\.address: 'wan1' is not an IPv4 or IPv6 address"),
    ([{'address': '192.0.2.1', 'flags': ['signal', 'fullmesh']}], r'endpoints\[0\]\.flags: signal and fullmesh'),
    ([{'address': '192.0.2.1', 'port': 80, 'flags': ['subflow']}], r'endpoints\[0\]\.port needs the signal flag'),
    ([{'address': '192.0.2.1', 'port': 70000, 'flags': ['signal']}], r'endpoints\[0\]\.port must be between'),
    ([{'address': '192.0.2.1', 'id': 0}], r'endpoints\[0\]\.id must be between 1 and 255'),
    ([{'address': '192.0.2.1', 'flags': ['implicit']}], r'unsupported flag'),
    ([{'address': '192.0.2.1'}, {'address': '192.0.2.1'}], r'endpoints\[1\] duplicates endpoints\[0\]'),
    ([{'address': '192.0.2.1', 'id': 3}, {'address': '192.0.2.2', 'id': 3}], r'endpoints\[1\]\.id 3 is also used'),
])
def test_validate_endpoints_errors(items, message):
    with pytest.raises(ValueError, match=message):
        m.validate_endpoints(items)


def test_validate_endpoints_same_address_other_port_is_fine():
    got = m.validate_endpoints([{'address': '192.0.2.1', 'flags': ['signal']},
                                {'address': '192.0.2.1', 'port': 10000, 'flags': ['signal']}])
    assert len(got) == 2


def test_validate_limits():
    assert m.validate_limits({'subflows': 8, 'add_addr_accepted': None}) == {'subflows': 8}
    assert m.validate_limits(None) == {}
    with pytest.raises(ValueError, match=r'limits\.subflows must be between 0 and 8, got 9'):
        m.validate_limits({'subflows': 9})
    with pytest.raises(ValueError, match=r'limits\.add_addr_accepted must be between 0 and 8, got -1'):
        m.validate_limits({'add_addr_accepted': -1})


# ---------------------------------------------------------------- planner

CURRENT = m.parse_endpoints(fixture('v1-iproute2-6.15-debian13.endpoint-show.txt'))


def want(*items):
    return m.validate_endpoints(list(items))


def commands(ops):
    return [m.format_command(m.endpoint_args(op)) for op in ops]


def test_plan_nothing_to_do_when_state_matches():
    desired = want({'address': '192.0.2.1', 'flags': ['signal']},  # id/dev omitted: not compared
                   {'address': '192.0.2.1', 'port': 10000, 'flags': ['signal'], 'dev': 'va', 'id': 11},
                   {'address': '198.51.100.1', 'flags': ['fullmesh', 'subflow', 'backup']})
    assert m.plan_endpoints(CURRENT, desired) == []
    assert m.plan_endpoints(CURRENT, [ep(None, a['address'], a['dev'], a['port'], a['flags'])
                                      for a in CURRENT if 'implicit' not in a['flags']], purge=True) == []


def test_plan_add_missing():
    ops = m.plan_endpoints(CURRENT, want({'address': '100.64.0.1', 'dev': 'wan3', 'id': 30, 'flags': ['subflow']},
                                         {'address': '2001:db8::2', 'port': 443, 'flags': ['signal']}))
    assert commands(ops) == ['ip mptcp endpoint add 100.64.0.1 dev wan3 id 30 subflow',
                             'ip mptcp endpoint add 2001:db8::2 port 443 signal']


def test_plan_change_backup_fullmesh_in_place():
    ops = m.plan_endpoints(CURRENT, want({'address': '198.51.100.1', 'flags': ['subflow']},
                                         {'address': '198.51.100.2', 'flags': ['subflow', 'backup']},
                                         {'address': '2001:db8::1', 'flags': ['signal']}))
    # Both bits are always sent: the kernel sets backup and fullmesh from one request.
    assert commands(ops) == ['ip mptcp endpoint change id 12 nobackup nofullmesh',
                             'ip mptcp endpoint change id 14 backup nofullmesh',
                             'ip mptcp endpoint change id 13 nobackup nofullmesh']


def test_plan_change_falls_back_to_recreate_without_change_support():
    ops = m.plan_endpoints(CURRENT, want({'address': '198.51.100.2', 'flags': ['subflow', 'backup']}),
                           can_change=False)
    assert commands(ops) == ['ip mptcp endpoint delete id 14',
                             'ip mptcp endpoint add 198.51.100.2 subflow backup']


@pytest.mark.parametrize('item, added', [
    ({'address': '192.0.2.1', 'flags': ['subflow']}, 'ip mptcp endpoint add 192.0.2.1 subflow'),
    ({'address': '192.0.2.1', 'flags': ['signal'], 'id': 20}, 'ip mptcp endpoint add 192.0.2.1 id 20 signal'),
    ({'address': '192.0.2.1', 'flags': ['signal'], 'dev': 'vb'}, 'ip mptcp endpoint add 192.0.2.1 dev vb signal'),
    ({'address': '192.0.2.1', 'flags': ['signal', 'backup', 'subflow']},
     'ip mptcp endpoint add 192.0.2.1 signal subflow backup'),
])
def test_plan_recreate_when_signal_subflow_id_or_dev_differs(item, added):
    assert commands(m.plan_endpoints(CURRENT, want(item))) == ['ip mptcp endpoint delete id 10', added]


def test_plan_port_is_part_of_the_identity():
    # 192.0.2.1 without port exists (id 10); port 10001 is a new endpoint, 10000 is left alone.
    ops = m.plan_endpoints(CURRENT, want({'address': '192.0.2.1', 'port': 10001, 'flags': ['signal']}))
    assert commands(ops) == ['ip mptcp endpoint add 192.0.2.1 port 10001 signal']


def test_plan_purge_keeps_listed_and_implicit():
    ops = m.plan_endpoints(CURRENT, want({'address': '192.0.2.1', 'flags': ['signal']},
                                         {'address': '192.0.2.60', 'flags': ['signal']}), purge=True)
    assert commands(ops) == ['ip mptcp endpoint delete id 11', 'ip mptcp endpoint delete id 12',
                             'ip mptcp endpoint delete id 13', 'ip mptcp endpoint delete id 14',
                             'ip mptcp endpoint delete id 15', 'ip mptcp endpoint add 192.0.2.60 signal']


def test_plan_absent_matches_address_and_port_only():
    ops = m.plan_endpoints(CURRENT, want({'address': '192.0.2.1', 'port': 10000, 'flags': ['signal']},
                                         {'address': '2001:DB8::1'},
                                         {'address': '192.0.2.99'}), state='absent', purge=True)
    assert commands(ops) == ['ip mptcp endpoint delete id 11', 'ip mptcp endpoint delete id 13']


def test_plan_id_conflict_is_an_error_unless_freed():
    with pytest.raises(ValueError, match='endpoint id 12 for 192.0.2.70 is already used by endpoint 198.51.100.1'):
        m.plan_endpoints(CURRENT, want({'address': '192.0.2.70', 'id': 12, 'flags': ['signal']}))
    # With purge the holder is deleted first, so the id is free.
    ops = m.plan_endpoints(CURRENT, want({'address': '192.0.2.70', 'id': 12, 'flags': ['signal']}), purge=True)
    assert commands(ops)[-1] == 'ip mptcp endpoint add 192.0.2.70 id 12 signal'
    assert 'ip mptcp endpoint delete id 12' in commands(ops)


def test_plan_implicit_endpoint_is_replaced_when_listed():
    ops = m.plan_endpoints(CURRENT, want({'address': '10.0.1.2', 'flags': ['subflow']}))
    assert commands(ops) == ['ip mptcp endpoint delete id 1', 'ip mptcp endpoint add 10.0.1.2 subflow']


def test_apply_plan_predicts_the_result():
    desired = want({'address': '192.0.2.1', 'flags': ['signal']},
                   {'address': '198.51.100.1', 'flags': ['subflow', 'backup']},
                   {'address': '192.0.2.61', 'dev': 'va', 'flags': ['subflow']})
    ops = m.plan_endpoints(CURRENT, desired, purge=True)
    after = m.apply_plan(CURRENT, ops)
    assert after == [ep(1, '10.0.1.2', flags=['implicit']),
                     ep(10, '192.0.2.1', dev='va', flags=['signal']),
                     ep(12, '198.51.100.1', dev='vb', flags=['subflow', 'backup']),
                     ep(None, '192.0.2.61', dev='va', flags=['subflow'])]
    # The prediction is a fixed point: planning again from it changes nothing.
    assert m.plan_endpoints(after, desired, purge=True) == []
    assert CURRENT[3]['flags'] == ['subflow', 'backup', 'fullmesh']  # input not mutated


def test_plan_limits_and_args():
    current = {'subflows': 2, 'add_addr_accepted': 0}
    assert m.plan_limits(current, {'subflows': 2}) == {}
    changes = m.plan_limits(current, {'subflows': 8, 'add_addr_accepted': 8})
    assert m.format_command(m.limits_args(changes)) == 'ip mptcp limits set subflows 8 add_addr_accepted 8'
    assert m.limits_args(m.plan_limits(current, {'add_addr_accepted': 1})) == \
        ['mptcp', 'limits', 'set', 'add_addr_accepted', '1']


def test_format_state():
    text = m.format_state(CURRENT[:3], {'subflows': 8, 'add_addr_accepted': 4})
    assert text == ('endpoint 10.0.1.2 id 1 implicit\n'
                    'endpoint 192.0.2.1 id 10 signal dev va\n'
                    'endpoint 192.0.2.1 port 10000 id 11 signal dev va\n'
                    'limits subflows 8 add_addr_accepted 4\n')


def test_keep_backup_leaves_the_live_backup_flag_alone():
    current = [ep(3, '172.17.29.137', dev='transit', flags=['subflow', 'backup', 'fullmesh'])]
    desired = m.validate_endpoints([{'address': '172.17.29.137', 'dev': 'transit', 'id': 3,
                                     'flags': ['subflow', 'fullmesh'], 'keep_backup': True}])
    assert m.plan_endpoints(current, desired, purge=True) == []
    restored = [ep(3, '172.17.29.137', dev='transit', flags=['subflow', 'fullmesh'])]
    assert m.plan_endpoints(restored, desired, purge=True) == []
    # Without it the flag is put back as declared; a missing endpoint is added as declared.
    plain = m.validate_endpoints([{'address': '172.17.29.137', 'dev': 'transit', 'id': 3, 'flags': ['subflow', 'fullmesh']}])
    assert [op['action'] for op in m.plan_endpoints(current, plain)] == ['change']
    assert m.plan_endpoints([], desired) == [{'action': 'add', 'endpoint': restored[0]}]
