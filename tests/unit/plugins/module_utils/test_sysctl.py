# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers of plugins/module_utils/_sysctl.py (omr.deploy.sysctl_dropin).

Key conversion follows sysctl(8) (procps slashdot()) and systemd-sysctl (sysctl_normalize()):
when the first separator is a dot, dots and slashes swap; when it is a slash, the key is a path.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.omr.deploy.plugins.module_utils import _sysctl as s


# ---------------------------------------------------------------- keys

@pytest.mark.parametrize('key, path', [
    ('net.ipv4.ip_forward', '/proc/sys/net/ipv4/ip_forward'),
    ('net/ipv4/ip_forward', '/proc/sys/net/ipv4/ip_forward'),
    ('  net.ipv4.tcp_rmem ', '/proc/sys/net/ipv4/tcp_rmem'),
    ('net.mptcp.checksum_enabled', '/proc/sys/net/mptcp/checksum_enabled'),
    # a VLAN interface: its dot is a slash in the dotted form ...
    ('net.ipv4.conf.eth0/100.rp_filter', '/proc/sys/net/ipv4/conf/eth0.100/rp_filter'),
    # ... and stays a dot in the slash form
    ('net/ipv4/conf/eth0.100/rp_filter', '/proc/sys/net/ipv4/conf/eth0.100/rp_filter'),
    ('kernel', '/proc/sys/kernel'),
    ('vm.swappiness', '/proc/sys/vm/swappiness'),
])
def test_key_to_path(key, path):
    assert s.key_to_path(key) == path


def test_key_to_path_other_root():
    assert s.key_to_path('net.ipv4.ip_forward', root='/tmp/fake/') == '/tmp/fake/net/ipv4/ip_forward'


@pytest.mark.parametrize('key', [
    '', '   ', 'net..ipv4', 'net.ipv4.', '.net.ipv4', '/net/ipv4', 'net/../../etc/passwd', 'net.ipv4/..',
    'net.ipv4.conf.*.rp_filter', 'net.ipv4.ip forward', 'net.ipv4.ip_forward=1', '-net.ipv4.ip_forward',
    '#net.ipv4.ip_forward', 'net.ipv4.conf.eth[01].rp_filter', 'net\\ipv4', 'net.ipv4.a\x00b', 1,
])
def test_bad_keys_rejected(key):
    with pytest.raises(ValueError):
        s.key_to_path(key)


def test_normalize_key_strips():
    assert s.normalize_key(' net.ipv4.ip_forward\t') == 'net.ipv4.ip_forward'


# ---------------------------------------------------------------- values

@pytest.mark.parametrize('value, expected', [
    ('1', '1'),
    (1, '1'),
    (0, '0'),
    (-1, '-1'),
    (4294967295, '4294967295'),
    (True, '1'),
    (False, '0'),
    ('4096\t131072\t33554432', '4096 131072 33554432'),   # as /proc/sys/net/ipv4/tcp_rmem reads
    ('  4096   131072 33554432\n', '4096 131072 33554432'),
    ('9999 65000', '9999 65000'),
    ('bbr', 'bbr'),
    ('', ''),
    (b'cubic\n', 'cubic'),
])
def test_normalize_value(value, expected):
    assert s.normalize_value(value) == expected


@pytest.mark.parametrize('value', [None, 1.5, 1.0, [4096, 131072], {'a': 1}])
def test_bad_values_rejected(value):
    with pytest.raises(ValueError, match='net.ipv4.tcp_rmem'):
        s.normalize_value(value, 'net.ipv4.tcp_rmem')


def test_fold():
    assert s.fold(' a\t b \n c ') == 'a b c'
    assert s.fold('\n') == ''


# ---------------------------------------------------------------- prepare

def test_prepare_sorts_and_normalises():
    got = s.prepare({
        'net.ipv4.tcp_wmem': '4096  16384\t33554432',
        'net.ipv4.ip_forward': 1,
        'net/mptcp/checksum_enabled': False,
        ' net.ipv4.tcp_notsent_lowat': 131072,
    })
    assert got == [
        ('net.ipv4.ip_forward', 'net/ipv4/ip_forward', '1'),
        ('net.ipv4.tcp_notsent_lowat', 'net/ipv4/tcp_notsent_lowat', '131072'),
        ('net.ipv4.tcp_wmem', 'net/ipv4/tcp_wmem', '4096 16384 33554432'),
        ('net/mptcp/checksum_enabled', 'net/mptcp/checksum_enabled', '0'),
    ]


def test_prepare_empty():
    assert s.prepare({}) == []
    assert s.prepare(None) == []


def test_prepare_rejects_two_names_for_one_file():
    with pytest.raises(ValueError, match='same file /proc/sys/net/ipv4/ip_forward'):
        s.prepare({'net.ipv4.ip_forward': 1, 'net/ipv4/ip_forward': 1})


def test_prepare_lists_every_error():
    with pytest.raises(ValueError) as exc:
        s.prepare({'net..x': 1, 'net.ipv4.ip_forward': None, 'net.ipv4.tcp_rmem': '4096 1 2'})
    assert 'net..x' in str(exc.value) and 'net.ipv4.ip_forward' in str(exc.value)
    assert 'tcp_rmem' not in str(exc.value)


# ---------------------------------------------------------------- drop-in

def test_render_sorted_with_header():
    text = s.render_dropin({'net.ipv4.tcp_rmem': '4096 131072 33554432', 'net.ipv4.ip_forward': '1'},
                           header='Managed by Ansible (omr.deploy)')
    assert text == ('# Managed by Ansible (omr.deploy)\n'
                    'net.ipv4.ip_forward = 1\n'
                    'net.ipv4.tcp_rmem = 4096 131072 33554432\n')


def test_render_without_header_and_empty():
    assert s.render_dropin({'vm.swappiness': '10'}) == 'vm.swappiness = 10\n'
    assert s.render_dropin({}) == ''
    assert s.render_dropin({}, header='nothing here') == '# nothing here\n'


def test_render_empty_value_has_no_trailing_space():
    assert s.render_dropin({'kernel.domainname': ''}) == 'kernel.domainname =\n'


@pytest.mark.parametrize('header, lines', [
    ('one', ['# one']),
    ('# already a comment', ['# already a comment']),
    ('; semicolon comment', ['; semicolon comment']),
    ('first\n\nthird  ', ['# first', '#', '# third']),
    ('', ['#']),
    (None, []),
])
def test_render_header(header, lines):
    assert s.render_header(header) == lines


def test_parse_round_trip():
    values = {'net.ipv4.ip_forward': '1', 'net.ipv4.tcp_rmem': '4096 131072 33554432', 'kernel.domainname': ''}
    assert s.parse_dropin(s.render_dropin(values, header='x = 1 is a comment')) == values


def test_parse_systemd_syntax():
    text = ('# comment = ignored\n'
            '; also a comment\n'
            '\n'
            '  net.ipv4.ip_forward=1\n'
            '-net.ipv4.tcp_mem = 1 2 3\n'
            'net.ipv4.tcp_rmem =\t4096   131072 6291456  \n'
            'no equals sign here\n'
            '= 5\n'
            'net.ipv4.ip_forward = 0\n'
            'net.ipv4.ip_local_port_range = 9999 65000 # not a comment\n')
    got = s.parse_dropin(text)
    assert got == {
        'net.ipv4.tcp_mem': '1 2 3',
        'net.ipv4.tcp_rmem': '4096 131072 6291456',
        'net.ipv4.ip_forward': '0',
        'net.ipv4.ip_local_port_range': '9999 65000 # not a comment',
    }
    # the last assignment wins and takes the last place
    assert list(got)[-2:] == ['net.ipv4.ip_forward', 'net.ipv4.ip_local_port_range']


def test_parse_empty():
    assert s.parse_dropin('') == {}
    assert s.parse_dropin(None) == {}
