# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers of plugins/module_utils/_mptcp_sock.py on getsockopt answers captured from a real kernel,
and the data stream it shares with roles/vps/files/omr-mptcp-speedtest.py.

Fixtures and how they were captured: tests/unit/fixtures/mptcp_sock/README.md. The expected values
come from `ss` output taken at the same moment and from the byte counts the capture moved, not from
the parser under test.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import importlib.util
import inspect
import json
import os
import re
import socket
import struct
import sys

import pytest

from ansible_collections.omr.deploy.plugins.module_utils import _mptcp_sock as m
from ansible_collections.omr.deploy.plugins.module_utils import _mptcp_stream as stream

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOT = os.path.dirname(os.path.dirname(TESTS))
FIXTURES = os.path.join(TESTS, 'fixtures', 'mptcp_sock')
SERVER = os.path.join(ROOT, 'roles', 'vps', 'files', 'omr-mptcp-speedtest.py')


def raw(name):
    with open(os.path.join(FIXTURES, name), 'rb') as f:
        return f.read()


def meta(family):
    with open(os.path.join(FIXTURES, family + '.meta.json')) as f:
        return json.load(f)


def ss_subflows(text):
    """Per-subflow rows of `ss -tinH` (two lines per socket) -> {(local, lport, remote, rport): counters}."""
    rows = {}
    lines = text.splitlines()
    for head, detail in zip(lines[0::2], lines[1::2]):
        local, remote = head.split()[2:4]
        lhost, lport = local.rsplit(':', 1)
        rhost, rport = remote.rsplit(':', 1)
        lhost = lhost.split('%', 1)[0].strip('[]')
        rhost = rhost.strip('[]')
        counters = dict((k, int(v)) for k, v in re.findall(r'\b(bytes_sent|bytes_acked|bytes_received):(\d+)', detail))
        rows[(lhost, int(lport), rhost, int(rport))] = counters
    return rows


def ss_mptcp(text):
    fields = dict(re.findall(r'\b(\w+):(\S+)', text.splitlines()[1]))
    return {'subflows': int(fields.get('subflows', '0')), 'token': int(fields['token'], 16),
            'write_seq': int(fields['write_seq'], 16), 'snd_una': int(fields['snd_una'], 16),
            'rcv_nxt': int(fields['rcv_nxt'], 16), 'subflows_max': int(fields['subflows_max'])}


@pytest.fixture(scope='module')
def server_module():
    spec = importlib.util.spec_from_file_location('omr_mptcp_speedtest', SERVER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # inspect.getsource() of its classes looks it up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


FAMILIES = ['v4', 'v6']
ADDRESSES = {
    'v4': (('100.64.1.2', '100.64.2.2'), '100.64.1.1', 5400),
    'v6': (('fd00:1::2', 'fd00:2::2'), 'fd00:1::1', 5401),
}


# ---------------------------------------------------------------- struct mptcp_info

@pytest.mark.parametrize('family', FAMILIES)
def test_mptcp_info_matches_ss_and_byte_counts(family):
    info = m.parse_mptcp_info(raw(family + '.mptcp_info.bin'))
    want = ss_mptcp(meta(family)['ss_Min'])
    assert info['size'] == 96  # 6.10+ layout
    for key in ('subflows', 'token', 'write_seq', 'snd_una', 'rcv_nxt', 'subflows_max'):
        assert info[key] == want[key], key
    assert info['subflows'] == 1 and info['subflows_total'] == 2
    assert info['add_addr_accepted_max'] == 4
    assert info['fallback'] is False and info['remote_key_received'] is True
    # Data-level counters (6.5+) equal exactly what the capture moved.
    up, down = meta(family)['up'], meta(family)['down']
    assert (info['bytes_sent'], info['bytes_acked'], info['bytes_received']) == (up, up, down)
    assert info['bytes_retrans'] == 0 and info['retransmits'] == 0


@pytest.mark.parametrize('family', FAMILIES)
def test_mptcp_info_short_struct_leaves_newer_fields_none(family):
    full = m.parse_mptcp_info(raw(family + '.mptcp_info.bin'))
    old = m.parse_mptcp_info(raw(family + '.mptcp_info-48.bin'))
    assert old['size'] == 48
    for key in ('subflows', 'subflows_max', 'flags', 'token', 'write_seq', 'snd_una', 'rcv_nxt',
                'local_addr_used', 'local_addr_max', 'csum_enabled'):
        assert old[key] == full[key], key
    for key in ('retransmits', 'bytes_retrans', 'bytes_sent', 'bytes_received', 'bytes_acked',
                'subflows_total', 'last_data_sent', 'last_data_recv', 'last_ack_recv'):
        assert old[key] is None, key


def test_mptcp_info_flags_and_too_short():
    buf = bytearray(raw('v4.mptcp_info.bin'))
    buf[8:12] = (m.MPTCP_INFO_FLAG_FALLBACK | m.MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED).to_bytes(4, 'little')
    info = m.parse_mptcp_info(bytes(buf))
    assert info['fallback'] is True and info['remote_key_received'] is True
    with pytest.raises(ValueError):
        m.parse_mptcp_info(b'\x01' * 8)


# ---------------------------------------------------------------- subflow data + tcp_info + addresses

@pytest.mark.parametrize('family', FAMILIES)
def test_subflows_match_ss(family):
    entries = m.pair_subflows(raw(family + '.subflow_addrs.bin'), raw(family + '.tcpinfo.bin'))
    rows = ss_subflows(meta(family)['ss_tin'])
    assert len(entries) == 2 and len(rows) == 2
    for entry in entries:
        key = m.subflow_key(entry)
        assert key in rows, (key, sorted(rows))
        info = entry['tcp_info']
        assert info['size'] == 280  # sizeof(struct tcp_info) on 6.18, as the kernel reported it
        assert info['state_name'] == 'established'
        for counter in ('bytes_sent', 'bytes_acked', 'bytes_received'):
            assert info[counter] == rows[key][counter], (key, counter)
    locals_, remote, port = ADDRESSES[family]
    assert sorted(e['local_address'] for e in entries) == sorted(locals_)
    assert set((e['remote_address'], e['remote_port']) for e in entries) == {(remote, port)}
    # What the two subflows carried adds up to what the capture moved.
    up, down = meta(family)['up'], meta(family)['down']
    assert sum(e['tcp_info']['bytes_sent'] for e in entries) == up
    assert sum(e['tcp_info']['bytes_received'] for e in entries) == down
    # bytes_acked counts the SYN too.
    assert sum(e['tcp_info']['bytes_acked'] for e in entries) == up + 2
    assert all(e['tcp_info']['bytes_sent'] > up // 5 for e in entries), 'both subflows carried data'


@pytest.mark.parametrize('family', FAMILIES)
def test_subflow_data_header_uses_kernel_sizes(family):
    head, elems = m.parse_subflow_data(raw(family + '.tcpinfo.bin'))
    assert head == {'size_subflow_data': 16, 'num_subflows': 2, 'size_kernel': 280, 'size_user': 280,
                    'truncated': False}
    assert [len(e) for e in elems] == [280, 280]

    # A short struct tcp_info (old kernel or old userspace): elements are 136 bytes apart.
    head, elems = m.parse_subflow_data(raw(family + '.tcpinfo-136.bin'))
    assert (head['size_kernel'], head['size_user'], len(elems)) == (280, 136, 2)
    short = [m.parse_tcp_info(e) for e in elems]
    full = [e['tcp_info'] for e in m.pair_subflows(raw(family + '.subflow_addrs.bin'), raw(family + '.tcpinfo.bin'))]
    for s, f in zip(short, full):
        assert (s['bytes_acked'], s['bytes_received']) == (f['bytes_acked'], f['bytes_received'])
        assert s['bytes_sent'] is None and s['bytes_retrans'] is None and s['delivery_rate'] is None

    # Header only: the count is there, no element fits.
    head, elems = m.parse_subflow_data(raw(family + '.tcpinfo-header-only.bin'))
    assert (head['num_subflows'], head['truncated'], elems) == (2, True, [])

    # Room for one subflow while there are two.
    head, elems = m.parse_subflow_data(raw(family + '.subflow_addrs-one.bin'))
    assert (head['num_subflows'], head['size_kernel'], head['truncated'], len(elems)) == (2, 256, True, 1)


def test_pair_subflows_refuses_mismatched_answers():
    assert m.pair_subflows(raw('v4.subflow_addrs-one.bin'), raw('v4.tcpinfo.bin')) is None
    assert m.pair_subflows(raw('v4.subflow_addrs.bin'), raw('v4.tcpinfo-header-only.bin')) is None


def test_parse_subflow_data_rejects_garbage():
    with pytest.raises(ValueError):
        m.parse_subflow_data(b'\x00' * 8)
    with pytest.raises(ValueError):  # claims a 64-byte header in a 16-byte answer
        m.parse_subflow_data(struct.pack('=IIII', 64, 0, 0, 0))
    assert m.parse_subflow_data(m.subflow_data_request(256)) == (
        {'size_subflow_data': 16, 'num_subflows': 0, 'size_kernel': 0, 'size_user': 256, 'truncated': False}, [])


def test_sockaddr_parsing():
    v4 = m.parse_subflow_addrs(m.parse_subflow_data(raw('v4.subflow_addrs.bin'))[1][0])
    assert v4['local_address'] in ('100.64.1.2', '100.64.2.2') and v4['remote_port'] == 5400
    assert m.parse_sockaddr(b'\x00' * 16) is None
    mapped = (socket.AF_INET6.to_bytes(2, 'little') + (443).to_bytes(2, 'big') + b'\x00' * 4
              + socket.inet_pton(socket.AF_INET6, '::ffff:192.0.2.7') + b'\x00' * 4)
    assert m.parse_sockaddr(mapped) == ('192.0.2.7', 443)


@pytest.mark.parametrize('family', ['4', '6'])
def test_fallback_tcp_info(family):
    info = m.parse_tcp_info(raw('fallback-v%s.tcp_info.bin' % family))
    assert info['state_name'] == 'established' and info['size'] == 280
    assert (info['bytes_acked'], info['bytes_received'], info['bytes_sent']) == (1, 0, 0)


class FakeSocket(object):
    def __init__(self, exc=None, answer=None):
        self.exc, self.answer = exc, answer

    def getsockopt(self, level, optname, size):
        assert (level, optname) == (m.SOL_MPTCP, m.MPTCP_INFO)
        if self.exc:
            raise self.exc
        return self.answer[:size]


def test_fallback_errors_mean_plain_tcp():
    with open(os.path.join(FIXTURES, 'capture.json')) as f:
        seen = json.load(f)['fallback_errors']
    names = set(seen['v4'].values()) | set(seen['v6'].values())
    assert names == {'ENOTSUP', 'ENOPROTOOPT'}
    for name in names:
        code = getattr(errno, name)
        assert m.mptcp_status(FakeSocket(OSError(code, os.strerror(code)))) == (False, None)
    ok, info = m.mptcp_status(FakeSocket(answer=raw('v4.mptcp_info.bin')))
    assert ok is True and info['subflows'] == 1
    flagged = bytearray(raw('v4.mptcp_info.bin'))
    flagged[8] |= m.MPTCP_INFO_FLAG_FALLBACK
    assert m.mptcp_status(FakeSocket(answer=bytes(flagged)))[0] is False
    with pytest.raises(OSError):
        m.mptcp_status(FakeSocket(OSError(errno.EBADF, 'bad fd')))


# ---------------------------------------------------------------- tracking subflows across samples

def test_tracker_keeps_subflows_that_closed():
    entries = m.pair_subflows(raw('v4.subflow_addrs.bin'), raw('v4.tcpinfo.bin'))
    first, second = entries
    early = [dict(first, tcp_info=dict(first['tcp_info'], bytes_received=10)),
             dict(second, tcp_info=dict(second['tcp_info'], bytes_received=20))]
    tracker = m.SubflowTracker()
    tracker.update(early)
    tracker.update([first])          # the second subflow closed before this sample
    details = tracker.details()
    assert len(tracker) == 2
    assert [d['local_address'] for d in details] == [first['local_address'], second['local_address']]
    assert details[0]['bytes_received'] == first['tcp_info']['bytes_received']
    assert details[1]['bytes_received'] == 20 and details[1]['samples'] == 1
    assert tracker.total('bytes_received') == first['tcp_info']['bytes_received'] + 20


def test_goodput():
    assert m.goodput_mbps(5000000, 2.0) == 20.0
    assert m.goodput_mbps(100, 0) is None


# ---------------------------------------------------------------- the shared data stream

@pytest.mark.parametrize('seed', [0, 1, 42, 2 ** 63 + 5, 2 ** 64 - 1])
def test_server_and_client_share_one_stream(server_module, seed):
    # One implementation: the server imports _mptcp_stream (the role installs it beside it).
    assert os.path.samefile(inspect.getsourcefile(server_module.DataStream), stream.__file__)
    ours, theirs = m.DataStream(seed), server_module.DataStream(seed)
    for offset, length in ((0, 100), (65530, 20), (65536 * 3 - 1, 65536 * 2 + 3), (10 ** 9, 4096), (12345, 1)):
        assert ours.read(offset, length) == theirs.read(offset, length), (offset, length)


def test_stream_properties():
    s = stream.DataStream(7)
    head = s.read(0, 3 * stream.STREAM_BLOCK)
    assert head[:8] == b'\x00' * 8 and head[:1] != b'{'
    blocks = [head[i:i + stream.STREAM_BLOCK] for i in range(0, len(head), stream.STREAM_BLOCK)]
    assert len(set(blocks)) == 3                      # no two blocks alike
    assert all(b[8:] == blocks[0][8:] for b in blocks)
    assert blocks[2][:8] == (2).to_bytes(8, 'big')
    assert stream.DataStream(8).read(0, 64) != s.read(0, 64)
    # Reading in pieces gives the same bytes as one read.
    pieces = b''.join(s.read(off, 1000) for off in range(0, len(head), 1000))
    assert pieces[:len(head)] == head
    assert len(s.view(65530)) == 6 and len(s.view(0, 10)) == 10


# ---------------------------------------------------------------- the server's request parser

@pytest.mark.parametrize('line, want', [
    (b'{"direction": "download", "seconds": 5}', ('download', 5.0, None, 0)),
    (b'{"direction": "upload", "bytes": 1000, "seed": 9}', ('upload', None, 1000, 9)),
])
def test_server_parse_request(server_module, line, want):
    assert server_module.parse_request(line, 30, 1 << 30) == want


@pytest.mark.parametrize('line, words', [
    (b'nope', 'not a JSON line'),
    (b'[1]', 'not a JSON object'),
    (b'{"direction": "sideways", "seconds": 1}', 'direction'),
    (b'{"direction": "download"}', 'exactly one'),
    (b'{"direction": "download", "seconds": 1, "bytes": 5}', 'exactly one'),
    (b'{"direction": "download", "seconds": 31}', 'at most 30'),
    (b'{"direction": "download", "seconds": true}', 'at most 30'),
    (b'{"direction": "upload", "bytes": 2147483648}', '--max-bytes'),
    (b'{"direction": "upload", "bytes": 10, "seed": -1}', 'seed'),
])
def test_server_parse_request_refusals(server_module, line, words):
    with pytest.raises(server_module.Refused) as exc:
        server_module.parse_request(line, 30, 1 << 30)
    assert words in str(exc.value)


def test_server_defaults(server_module):
    args = server_module.parse_args([])
    assert (args.bind, args.port, args.max_seconds, args.max_bytes, args.max_clients) == (
        '0.0.0.0', 65432, 30.0, 1 << 30, 4)
    assert [str(n) for n in args.allow] == ['127.0.0.0/8']
    args = server_module.parse_args(['--allow', '100.64.1.0/24', '--allow', '2001:db8::1'])
    assert [str(n) for n in args.allow] == ['100.64.1.0/24', '2001:db8::1/128']
    # 65432 is none of the ports an OpenMPTCProuter VPS uses.
    omr_ports = {65001, 65101, 65222, 65251, 65279, 65280, 65301, 65311, 65312, 65390, 65400, 65401, 65443,
                 65500} | set(range(65201, 65209)) | set(range(65228, 65232)) | set(range(65248, 65253)) \
        | set(range(65351, 65359))
    assert 65000 <= args.port <= 65535 and args.port not in omr_ports
    mapped = server_module.peer_address(('::ffff:127.0.0.1', 1, 0, 0))
    assert str(mapped) == '127.0.0.1'
