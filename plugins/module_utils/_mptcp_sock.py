# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: this is not a public API; names may change in any
# release. Used by omr.deploy.mptcp_probe.
#
# Standard library only, no Ansible imports. Two halves:
#   * pure parsers for what getsockopt(SOL_MPTCP, ...) returns (struct mptcp_info,
#     struct mptcp_subflow_data + struct tcp_info[], struct mptcp_subflow_addrs[]);
#     the data stream it checks comes from _mptcp_stream, which the speed-test server shares;
#   * the probe client: connect, send the request, move data, sample the subflows
#     during the transfer, check integrity, count goodput at the receiver.
#
# Struct layouts: include/uapi/linux/mptcp.h and include/uapi/linux/tcp.h. Both
# structs grow between kernels, so every parser reads only the fields that fit in
# the length the kernel reported and returns None for the others.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import select
import socket
import struct
import time

from ansible_collections.omr.deploy.plugins.module_utils._mptcp_stream import DataStream

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1
MPTCP_TCPINFO = 2
MPTCP_SUBFLOW_ADDRS = 3
MPTCP_FULL_INFO = 4

MPTCP_INFO_FLAG_FALLBACK = 1 << 0
MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED = 1 << 1

TCP_INFO = 11  # SOL_TCP option, include/uapi/linux/tcp.h

DEFAULT_PORT = 65432

# struct mptcp_subflow_data is 16 bytes (four __u32, aligned 8).
SUBFLOW_DATA_SIZE = 16
# Ask for more than any kernel's struct tcp_info (232 bytes in 6.1, 248+ later):
# the kernel clamps size_user to its own sizeof(struct tcp_info) and says so.
TCP_INFO_ASK = 512
# struct mptcp_subflow_addrs: two unions of struct __kernel_sockaddr_storage (128 bytes).
SUBFLOW_ADDRS_SIZE = 256
SOCKADDR_STORAGE_SIZE = 128
# Room for this many subflows per query (the kernel limit is 8 extra subflows).
MAX_SUBFLOWS = 32
# Enough for every struct mptcp_info known so far (96 bytes in 6.10+).
MPTCP_INFO_ASK = 256

# (name, offset, struct format) in struct mptcp_info, native byte order.
MPTCP_INFO_FIELDS = (
    ('subflows', 0, 'B'),            # subflows beyond the initial one
    ('add_addr_signal', 1, 'B'),
    ('add_addr_accepted', 2, 'B'),
    ('subflows_max', 3, 'B'),
    ('add_addr_signal_max', 4, 'B'),
    ('add_addr_accepted_max', 5, 'B'),
    ('flags', 8, 'I'),
    ('token', 12, 'I'),
    ('write_seq', 16, 'Q'),
    ('snd_una', 24, 'Q'),
    ('rcv_nxt', 32, 'Q'),
    ('local_addr_used', 40, 'B'),    # 5.12
    ('local_addr_max', 41, 'B'),
    ('csum_enabled', 42, 'B'),       # 5.14
    ('retransmits', 44, 'I'),        # 6.5
    ('bytes_retrans', 48, 'Q'),
    ('bytes_sent', 56, 'Q'),
    ('bytes_received', 64, 'Q'),
    ('bytes_acked', 72, 'Q'),
    ('subflows_total', 80, 'B'),     # 6.8: current subflows including the initial one
    ('last_data_sent', 84, 'I'),     # 6.10
    ('last_data_recv', 88, 'I'),
    ('last_ack_recv', 92, 'I'),
)

# The struct tcp_info fields the probe uses.
TCP_INFO_FIELDS = (
    ('state', 0, 'B'),
    ('ca_state', 1, 'B'),
    ('rto', 8, 'I'),
    ('snd_mss', 16, 'I'),
    ('rcv_mss', 20, 'I'),
    ('unacked', 24, 'I'),
    ('lost', 32, 'I'),
    ('retrans', 36, 'I'),
    ('pmtu', 60, 'I'),
    ('rtt', 68, 'I'),
    ('rttvar', 72, 'I'),
    ('snd_cwnd', 80, 'I'),
    ('total_retrans', 100, 'I'),
    ('pacing_rate', 104, 'Q'),
    ('bytes_acked', 120, 'Q'),       # 4.1
    ('bytes_received', 128, 'Q'),    # 4.1
    ('segs_out', 136, 'I'),
    ('segs_in', 140, 'I'),
    ('notsent_bytes', 144, 'I'),
    ('min_rtt', 148, 'I'),
    ('delivery_rate', 160, 'Q'),
    ('bytes_sent', 200, 'Q'),        # 4.19, includes retransmissions
    ('bytes_retrans', 208, 'Q'),     # 4.19
)

TCP_STATES = {1: 'established', 2: 'syn_sent', 3: 'syn_recv', 4: 'fin_wait1', 5: 'fin_wait2', 6: 'time_wait',
              7: 'close', 8: 'close_wait', 9: 'last_ack', 10: 'listen', 11: 'closing'}


class ProbeError(Exception):
    """The probe could not complete; `partial` holds what was measured so far."""

    def __init__(self, msg, partial=None):
        super(ProbeError, self).__init__(msg)
        self.msg = msg
        self.partial = partial or {}


# ---------------------------------------------------------------------------
# Pure parsers
# ---------------------------------------------------------------------------

def _fields(buf, table):
    result = {}
    size = len(buf)
    for name, offset, fmt in table:
        width = struct.calcsize('=' + fmt)
        result[name] = struct.unpack_from('=' + fmt, buf, offset)[0] if offset + width <= size else None
    return result


def parse_mptcp_info(buf):
    """struct mptcp_info as returned by getsockopt(SOL_MPTCP, MPTCP_INFO).

    Fields beyond len(buf) (older kernel) are None. Adds `fallback` and
    `remote_key_received` from the flags, and `size` (the length the kernel gave).
    """
    buf = bytes(buf)
    if len(buf) < 12:
        raise ValueError('struct mptcp_info too short: %d bytes' % len(buf))
    info = _fields(buf, MPTCP_INFO_FIELDS)
    if len(buf) <= 48:
        # Before 6.5 the struct ends at 48 bytes and bytes 44-47 are padding.
        info['retransmits'] = None
    info['fallback'] = bool(info['flags'] & MPTCP_INFO_FLAG_FALLBACK)
    info['remote_key_received'] = bool(info['flags'] & MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED)
    info['size'] = len(buf)
    return info


def parse_tcp_info(buf):
    """The fields of struct tcp_info the probe uses; None for those beyond len(buf)."""
    buf = bytes(buf)
    info = _fields(buf, TCP_INFO_FIELDS)
    info['state_name'] = TCP_STATES.get(info['state'])
    info['size'] = len(buf)
    return info


def subflow_data_request(size_user):
    """The struct mptcp_subflow_data header userspace passes in (the kernel reads it)."""
    return struct.pack('=IIII', SUBFLOW_DATA_SIZE, 0, 0, size_user)


def parse_subflow_data(buf):
    """Split a MPTCP_TCPINFO / MPTCP_SUBFLOW_ADDRS answer into (header, [element bytes]).

    The header says how many subflows exist (num_subflows), the element size the kernel
    has (size_kernel) and the one it used (size_user, clamped to size_kernel). Elements
    follow the header every size_user bytes; there may be fewer than num_subflows when
    the buffer was too small (header['truncated'] is then True).
    """
    buf = bytes(buf)
    if len(buf) < SUBFLOW_DATA_SIZE:
        raise ValueError('struct mptcp_subflow_data too short: %d bytes' % len(buf))
    size_subflow_data, num_subflows, size_kernel, size_user = struct.unpack_from('=IIII', buf, 0)
    header = {'size_subflow_data': size_subflow_data, 'num_subflows': num_subflows,
              'size_kernel': size_kernel, 'size_user': size_user}
    if size_subflow_data < SUBFLOW_DATA_SIZE or size_subflow_data > len(buf):
        raise ValueError('bad size_subflow_data %d for a %d-byte answer' % (size_subflow_data, len(buf)))
    elements = []
    if size_user:
        room = (len(buf) - size_subflow_data) // size_user
        for i in range(min(num_subflows, room)):
            start = size_subflow_data + i * size_user
            elements.append(buf[start:start + size_user])
    header['truncated'] = len(elements) < num_subflows
    return header, elements


def _plain_address(family, packed):
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, packed)
    text = socket.inet_ntop(socket.AF_INET6, packed)
    if packed[:12] == b'\0' * 10 + b'\xff\xff':
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return text


def parse_sockaddr(buf):
    """sockaddr_in / sockaddr_in6 -> (address, port); None for AF_UNSPEC or a short buffer.

    sa_family is host byte order, the port network order. IPv4-mapped IPv6 addresses are
    returned as plain IPv4.
    """
    buf = bytes(buf)
    if len(buf) < 2:
        return None
    family = struct.unpack_from('=H', buf, 0)[0]
    if family == socket.AF_INET and len(buf) >= 8:
        return _plain_address(family, buf[4:8]), struct.unpack_from('!H', buf, 2)[0]
    if family == socket.AF_INET6 and len(buf) >= 24:
        return _plain_address(family, buf[8:24]), struct.unpack_from('!H', buf, 2)[0]
    return None


def parse_subflow_addrs(element):
    """One struct mptcp_subflow_addrs -> {local_address, local_port, remote_address, remote_port}."""
    local = parse_sockaddr(element[:SOCKADDR_STORAGE_SIZE]) or (None, None)
    remote = parse_sockaddr(element[SOCKADDR_STORAGE_SIZE:2 * SOCKADDR_STORAGE_SIZE]) or (None, None)
    return {'local_address': local[0], 'local_port': local[1],
            'remote_address': remote[0], 'remote_port': remote[1]}


def pair_subflows(addrs_answer, tcpinfo_answer):
    """Join a MPTCP_SUBFLOW_ADDRS answer and a MPTCP_TCPINFO answer taken back to back.

    Both walk the same subflow list in the same order, so element i of one is element i
    of the other. Returns None when the two answers disagree on the number of subflows
    (the list changed in between): take both again.
    """
    a_head, a_elems = parse_subflow_data(addrs_answer)
    t_head, t_elems = parse_subflow_data(tcpinfo_answer)
    if a_head['num_subflows'] != t_head['num_subflows'] or len(a_elems) != len(t_elems):
        return None
    result = []
    for a_elem, t_elem in zip(a_elems, t_elems):
        entry = parse_subflow_addrs(a_elem)
        entry['tcp_info'] = parse_tcp_info(t_elem)
        result.append(entry)
    return result


def subflow_key(entry):
    return (entry['local_address'], entry['local_port'], entry['remote_address'], entry['remote_port'])


class SubflowTracker(object):
    """Every subflow seen across samples, with its latest (largest) byte counters.

    A subflow that closes mid-transfer disappears from later samples but keeps what the
    last sample that saw it said.
    """

    COUNTERS = ('bytes_sent', 'bytes_received', 'bytes_acked', 'bytes_retrans')

    def __init__(self):
        self._order = []
        self._by_key = {}

    def update(self, entries):
        for entry in entries:
            key = subflow_key(entry)
            info = entry.get('tcp_info') or {}
            known = self._by_key.get(key)
            if known is None:
                known = dict((k, entry[k]) for k in ('local_address', 'local_port', 'remote_address', 'remote_port'))
                for name in self.COUNTERS:
                    known[name] = None
                known['samples'] = 0
                self._by_key[key] = known
                self._order.append(key)
            for name in self.COUNTERS:
                value = info.get(name)
                if value is not None and (known[name] is None or value > known[name]):
                    known[name] = value
            known['state'] = info.get('state_name')
            known['samples'] += 1

    def __len__(self):
        return len(self._order)

    def details(self):
        return [dict(self._by_key[key]) for key in self._order]

    def total(self, counter):
        return sum(self._by_key[key][counter] or 0 for key in self._order)


def goodput_mbps(nbytes, seconds):
    """Goodput in Mbit/s (10^6 bit/s) for `nbytes` counted at the receiver over `seconds`."""
    if not seconds or seconds <= 0:
        return None
    return round(nbytes * 8.0 / seconds / 1e6, 3)


# ---------------------------------------------------------------------------
# getsockopt with an input buffer
# ---------------------------------------------------------------------------

_LIBC = []


def _libc():
    """ctypes handle on the C library's getsockopt, or None without ctypes (python3-light)."""
    if not _LIBC:
        try:
            import ctypes
            lib = ctypes.CDLL(None, use_errno=True)
            func = lib.getsockopt
            func.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
            func.restype = ctypes.c_int
            _LIBC.append((ctypes, func))
        except (ImportError, OSError, AttributeError):
            _LIBC.append(None)
    return _LIBC[0]


def getsockopt_in(sock, level, optname, request, size):
    """getsockopt() on a buffer of `size` bytes that starts with `request`.

    Python's socket.getsockopt() hands the kernel an uninitialised buffer, but
    MPTCP_TCPINFO and MPTCP_SUBFLOW_ADDRS read a struct mptcp_subflow_data from it,
    so this goes through ctypes. Returns the bytes the kernel reported (optlen);
    raises OSError from the kernel, or NotImplementedError without ctypes.
    """
    lib = _libc()
    if lib is None:
        raise NotImplementedError('ctypes is not available')
    ctypes, func = lib
    buf = ctypes.create_string_buffer(bytes(request), size)
    optlen = ctypes.c_uint32(size)
    if func(sock.fileno(), level, optname, buf, ctypes.byref(optlen)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return buf.raw[:optlen.value]


def mptcp_info(sock):
    """Parsed MPTCP_INFO; raises OSError (EOPNOTSUPP/ENOPROTOOPT) on a socket that fell back to TCP."""
    return parse_mptcp_info(sock.getsockopt(SOL_MPTCP, MPTCP_INFO, MPTCP_INFO_ASK))


def mptcp_status(sock):
    """(is_mptcp, info or None): MPTCP_INFO answers and the fallback flag is clear."""
    try:
        info = mptcp_info(sock)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOPROTOOPT, errno.EINVAL):
            return False, None
        raise
    return not info['fallback'], info


def read_subflows(sock, attempts=3):
    """Addresses and struct tcp_info of every current subflow, or None when unavailable.

    Takes MPTCP_SUBFLOW_ADDRS, MPTCP_TCPINFO, MPTCP_SUBFLOW_ADDRS and keeps the result
    only when both address answers are identical (no subflow came or went in between).
    """
    addrs_size = SUBFLOW_DATA_SIZE + MAX_SUBFLOWS * SUBFLOW_ADDRS_SIZE
    info_size = SUBFLOW_DATA_SIZE + MAX_SUBFLOWS * TCP_INFO_ASK
    for dummy in range(attempts):
        try:
            before = getsockopt_in(sock, SOL_MPTCP, MPTCP_SUBFLOW_ADDRS,
                                   subflow_data_request(SUBFLOW_ADDRS_SIZE), addrs_size)
            infos = getsockopt_in(sock, SOL_MPTCP, MPTCP_TCPINFO, subflow_data_request(TCP_INFO_ASK), info_size)
            after = getsockopt_in(sock, SOL_MPTCP, MPTCP_SUBFLOW_ADDRS,
                                  subflow_data_request(SUBFLOW_ADDRS_SIZE), addrs_size)
        except (OSError, NotImplementedError):
            return None
        if before == after:
            paired = pair_subflows(before, infos)
            if paired is not None:
                return paired
    return None


def read_tcp_connection(sock, local=None, remote=None):
    """The one 'subflow' of a plain TCP (or fallen-back) connection, from TCP_INFO.

    Pass the addresses taken after connect(): once both sides have closed, getpeername() fails,
    while TCP_INFO still answers.
    """
    try:
        local = local or sock.getsockname()
        remote = remote or sock.getpeername()
    except OSError:
        return None
    try:
        info = parse_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, TCP_INFO_ASK))
    except OSError:
        info = {}
    return {'local_address': _strip_mapped(local[0]), 'local_port': local[1],
            'remote_address': _strip_mapped(remote[0]), 'remote_port': remote[1], 'tcp_info': info}


def _strip_mapped(address):
    address = address.split('%', 1)[0]
    if address.lower().startswith('::ffff:') and '.' in address:
        return address[7:]
    return address


# ---------------------------------------------------------------------------
# The probe client
# ---------------------------------------------------------------------------

class _Sampler(object):
    """Samples MPTCP_INFO and the subflows at most every `interval` seconds."""

    def __init__(self, sock, use_mptcp, interval, clock):
        self.sock = sock
        self.use_mptcp = use_mptcp
        self.interval = interval
        self.clock = clock
        self.next_at = 0.0
        self.tracker = SubflowTracker()
        self.max_extra = None        # largest mptcpi_subflows seen
        self.fallback_seen = False
        self.subflow_api = True
        self.local = self.remote = None

    def sample(self, force=False):
        now = self.clock()
        if not force and now < self.next_at:
            return
        self.next_at = now + self.interval
        if not self.use_mptcp or self.fallback_seen:
            return
        try:
            is_mptcp, info = mptcp_status(self.sock)
        except OSError:
            return
        if not is_mptcp:
            self.fallback_seen = True
            return
        extra = info['subflows']
        if info.get('subflows_total') is not None:
            extra = max(extra, info['subflows_total'] - 1)
        self.max_extra = extra if self.max_extra is None else max(self.max_extra, extra)
        if self.subflow_api:
            entries = read_subflows(self.sock)
            if entries is None:
                self.subflow_api = False
            else:
                self.tracker.update(entries)

    def progress(self):
        """Bytes acknowledged so far by the peer (for the upload drain wait)."""
        return self.tracker.total('bytes_acked')


def _resolve(host, port, bind_address):
    family = socket.AF_UNSPEC
    if bind_address:
        family = socket.AF_INET6 if ':' in bind_address else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProbeError('cannot resolve %s: %s' % (host, exc))
    if not infos:
        raise ProbeError('cannot resolve %s' % host)
    return infos[0][0], infos[0][4]


def open_socket(family, protocol, warnings):
    """A stream socket; MPTCP when asked and the kernel has it (else TCP, with a warning).

    Returns (socket, mptcp_requested_and_available).
    """
    if protocol == 'mptcp':
        try:
            return socket.socket(family, socket.SOCK_STREAM, IPPROTO_MPTCP), True
        except OSError as exc:
            warnings.append('this host cannot open MPTCP sockets (%s); the probe used plain TCP' % exc)
    return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP), False


def _read_line(sock, first=b'', limit=4096):
    data = bytearray(first)
    while b'\n' not in data and len(data) < limit:
        chunk = sock.recv(limit)
        if not chunk:
            break
        data += chunk
    return bytes(data).split(b'\n', 1)[0]


def _server_error(line):
    try:
        reply = json.loads(line.decode('utf-8', 'replace'))
    except ValueError:
        return 'unexpected answer from the server: %r' % line[:200]
    if isinstance(reply, dict) and reply.get('error'):
        return 'the server refused the test: %s' % reply['error']
    return 'unexpected answer from the server: %r' % line[:200]


REFUSED_HINT = ('the server closed the connection without answering: the source address %s may not be in '
                "the server's --allow list, or the server is not omr-mptcp-speedtest")


def run_probe(host, port=DEFAULT_PORT, direction='download', seconds=5, nbytes=None, bind_address=None,
              protocol='mptcp', timeout=10, seed=None, sample_interval=0.25, clock=time.monotonic):
    """Run one transfer against omr-mptcp-speedtest and return the measurements.

    Goodput is counted at the receiver: by this client for a download, by the server
    (its reply) for an upload. Raises ProbeError with a readable message.
    """
    if direction not in ('download', 'upload'):
        raise ValueError('direction must be download or upload')
    if seed is None:
        seed = struct.unpack('>Q', os.urandom(8))[0] >> 1
    warnings = []
    family, address = _resolve(host, port, bind_address)
    sock, use_mptcp = open_socket(family, protocol, warnings)
    result = {'direction': direction, 'protocol': protocol, 'mptcp': False, 'subflows': 0,
              'subflow_details': [], 'bytes': 0, 'seconds': None, 'throughput_mbps': None,
              'integrity_ok': None, 'warnings': warnings}
    try:
        sock.settimeout(timeout)
        if bind_address:
            try:
                sock.bind((bind_address, 0))
            except OSError as exc:
                raise ProbeError('cannot bind to %s: %s' % (bind_address, exc), result)
        try:
            sock.connect(address)
        except OSError as exc:
            raise ProbeError('cannot connect to %s port %s: %s' % (address[0], port, exc), result)
        sampler = _Sampler(sock, use_mptcp, sample_interval, clock)
        sampler.local, sampler.remote = sock.getsockname(), sock.getpeername()
        local = sampler.local[0]
        sampler.sample(force=True)

        request = {'direction': direction, 'seed': seed}
        if nbytes is not None:
            request['bytes'] = int(nbytes)
        else:
            request['seconds'] = seconds
        stream = DataStream(seed)
        started = clock()
        try:
            sock.sendall(json.dumps(request, sort_keys=True).encode('ascii') + b'\n')
        except OSError as exc:
            raise ProbeError('%s (%s)' % (REFUSED_HINT % local, exc), result)
        if direction == 'download':
            _download(sock, stream, sampler, result, started, nbytes, timeout, clock, local)
        else:
            _upload(sock, stream, sampler, result, seconds, nbytes, timeout, clock, local)
        sampler.sample(force=True)
        _finish(sock, sampler, result, use_mptcp)
    finally:
        sock.close()
    return result


def _download(sock, stream, sampler, result, started, nbytes, timeout, clock, local):
    buf = bytearray(256 * 1024)
    view = memoryview(buf)
    received = 0
    intact = True
    last = None
    while True:
        sampler.sample()
        try:
            n = sock.recv_into(buf)
        except socket.timeout:
            raise ProbeError('no data from the server for %s seconds after %d bytes' % (timeout, received), result)
        except OSError as exc:
            if received == 0:
                raise ProbeError('%s (%s)' % (REFUSED_HINT % local, exc), result)
            raise ProbeError('connection broken after %d bytes: %s' % (received, exc), result)
        if n == 0:
            break
        if received == 0 and buf[0:1] == b'{':
            raise ProbeError(_server_error(_read_line(sock, bytes(view[:n]))), result)
        last = clock()
        if intact and view[:n] != stream.read(received, n):
            intact = False
        received += n
    if received == 0:
        raise ProbeError(REFUSED_HINT % local, result)
    result['bytes'] = received
    result['seconds'] = round(last - started, 3)
    result['integrity_ok'] = intact and (nbytes is None or received == nbytes)
    if nbytes is not None and received != nbytes:
        result['warnings'].append('asked for %d bytes, received %d' % (nbytes, received))


def _upload(sock, stream, sampler, result, seconds, nbytes, timeout, clock, local):
    sent = 0
    digest = hashlib.sha256()
    started = clock()
    deadline = None if nbytes is not None else started + seconds
    idle_since = clock()
    while True:
        sampler.sample()
        now = clock()
        if nbytes is not None and sent >= nbytes:
            break
        if deadline is not None and now >= deadline:
            break
        readable, writable, dummy = select.select([sock], [sock], [], sampler.interval)
        if readable:
            # The server only speaks before the end of an upload to refuse it.
            try:
                line = _read_line(sock)
            except OSError as exc:
                raise ProbeError('%s (%s)' % (REFUSED_HINT % local, exc), result)
            if not line:
                raise ProbeError(REFUSED_HINT % local if sent == 0 else
                                 'the server closed the connection after %d bytes' % sent, result)
            raise ProbeError(_server_error(line), result)
        if not writable:
            if clock() - idle_since > timeout:
                raise ProbeError('could not send for %s seconds after %d bytes' % (timeout, sent), result)
            continue
        chunk = stream.view(sent, None if nbytes is None else nbytes - sent)
        try:
            n = sock.send(chunk)
        except socket.timeout:
            continue
        except OSError as exc:
            raise ProbeError(('%s (%s)' % (REFUSED_HINT % local, exc)) if sent == 0 else
                             'connection broken after sending %d bytes: %s' % (sent, exc), result)
        digest.update(chunk[:n])
        sent += n
        idle_since = clock()
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError as exc:
        raise ProbeError('connection broken after sending %d bytes: %s' % (sent, exc), result)

    # Wait for the server's count. Data still in our send buffer is drained first, so
    # keep waiting while the peer is still acknowledging bytes.
    reply = bytearray()
    mark, idle_since = sampler.progress(), clock()
    while b'\n' not in reply:
        sampler.sample()
        readable = select.select([sock], [], [], sampler.interval)[0]
        if readable:
            try:
                chunk = sock.recv(4096)
            except OSError as exc:
                raise ProbeError('no count from the server after sending %d bytes: %s' % (sent, exc), result)
            if not chunk:
                break
            reply += chunk
            continue
        progress = sampler.progress()
        if progress != mark:
            mark, idle_since = progress, clock()
        elif clock() - idle_since > timeout:
            raise ProbeError('no count from the server within %s seconds after sending %d bytes'
                             % (timeout, sent), result)
    line = bytes(reply).split(b'\n', 1)[0]
    try:
        answer = json.loads(line.decode('utf-8', 'replace'))
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or 'received' not in answer:
        raise ProbeError(_server_error(line) if line else
                         'the server closed the connection without its count after %d bytes' % sent, result)
    received = int(answer['received'])
    result['bytes'] = received
    result['seconds'] = round(float(answer.get('seconds') or 0), 3)
    result['integrity_ok'] = received == sent and answer.get('sha256') == digest.hexdigest()
    result['bytes_sent'] = sent
    if received != sent:
        result['warnings'].append('sent %d bytes, the server received %d' % (sent, received))


def _finish(sock, sampler, result, use_mptcp):
    is_mptcp = False
    if use_mptcp and not sampler.fallback_seen:
        try:
            is_mptcp = mptcp_status(sock)[0]
        except OSError:
            is_mptcp = False
    is_mptcp = is_mptcp and not sampler.fallback_seen and sampler.max_extra is not None
    result['mptcp'] = is_mptcp
    if is_mptcp:
        details = sampler.tracker.details()
    else:
        details = []
        one = read_tcp_connection(sock, sampler.local, sampler.remote)
        if one is not None:
            tracker = SubflowTracker()
            tracker.update([one])
            details = tracker.details()
    if is_mptcp:
        result['subflows'] = max(len(sampler.tracker), (sampler.max_extra or 0) + 1)
    else:
        result['subflows'] = 1
    result['subflow_details'] = [dict((k, d[k]) for k in (
        'local_address', 'local_port', 'remote_address', 'remote_port',
        'bytes_sent', 'bytes_received', 'bytes_acked', 'bytes_retrans')) for d in details]
    if use_mptcp and not is_mptcp:
        result['warnings'].append('the connection fell back to plain TCP: the server (or a middlebox) '
                                  'does not speak MPTCP')
    if is_mptcp and not sampler.subflow_api:
        result['warnings'].append('per-subflow details are unavailable (needs ctypes and kernel 5.16 or later); '
                                  'subflows counted from MPTCP_INFO')
    result['throughput_mbps'] = goodput_mbps(result['bytes'], result['seconds'])
