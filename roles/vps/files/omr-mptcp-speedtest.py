# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-mptcp-speedtest: a small Multipath TCP speed-test server for an OpenMPTCProuter VPS.

Standard library only. The clients are the omr.deploy.mptcp_probe Ansible module
(plugins/module_utils/_mptcp_sock.py), run on the router, and curl on a router without Python
(omr.deploy.mptcp_probe with client=curl, in HTTP).

Protocol (one TCP/MPTCP connection per test); the first line says which of the two it is:
  client -> server  one JSON line: {"direction": "download"|"upload", "seconds": N}
                    or {"direction": ..., "bytes": N}; optional "seed" (integer) picks the data stream.
  download          the server sends the data stream for N seconds, or exactly N bytes,
                    then shuts its side down and closes once the client has closed.
  upload            the client sends the data stream, then shuts down its write side; the server
                    answers one JSON line {"received": bytes, "seconds": t, "sha256": hex}, with
                    seconds counted from the request to the last byte received.
  refusal           a request the server will not serve (bad request, over the limits, too many
                    clients) is answered with one line {"error": "..."} and the connection is closed.
                    Clients outside --allow are closed at once, without an answer.
  The data stream starts with eight zero bytes, so an answer starting with "{" is an error line.

  HTTP (downloads only, for curl):
  client -> server  "GET /download?seconds=N[&seed=S] HTTP/1.x", then any request headers up to
                    an empty line; they are read and ignored.
  download          "HTTP/1.0 200 OK" with Content-Type: application/octet-stream,
                    Connection: close and X-Omr-Mptcp: yes|no (whether this connection is MPTCP
                    end to end, known once the handshake is done), then the same data stream for
                    N seconds, then the close, as for a JSON download.
  refusal           "HTTP/1.0 400 Bad Request" (503 Service Unavailable when all slots are busy)
                    with the error as a text/plain body and in the header X-Omr-Error, then close.
  Same limits, --allow list and log lines as JSON requests.

The data stream is deterministic: block k (64 KiB) is k as 8 big-endian bytes followed by
bytes 8..65535 of SHA-256 in counter mode over (magic, seed, i). The receiver regenerates it to
check integrity. The generator below is a copy of the one in the collection's
plugins/module_utils/_mptcp_sock.py; a unit test checks that both produce the same bytes.

One log line per transfer goes to stdout (the journal under systemd).

Run it as `python3 omr-mptcp-speedtest.py [options]` (for example ExecStart=/usr/bin/python3 ... in a
systemd unit). It has no shebang on purpose: ansible-test sanity only accepts `#!/usr/bin/env python`
outside modules, and Debian has no `python` command by default.
"""

from __future__ import absolute_import, division, print_function

import argparse
import errno
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1
MPTCP_INFO_FLAG_FALLBACK = 1
SO_PROTOCOL = getattr(socket, 'SO_PROTOCOL', 38)

DEFAULT_PORT = 65432
REQUEST_LIMIT = 4096
HEAD_LIMIT = 16384     # an HTTP request's whole head (request line and headers)
DRAIN_GRACE = 5.0      # seconds an upload may run past --max-seconds while buffers drain


# The collection's shared modules: installed beside this file (Python looks there first), or in
# plugins/module_utils of a checkout. No __pycache__ beside the installed copies.
sys.dont_write_bytecode = True
sys.path.insert(1, os.path.join(os.path.dirname(os.path.realpath(__file__)), '..', '..', '..', 'plugins', 'module_utils'))
from _mptcp_stream import DataStream  # noqa: E402  pylint: disable=wrong-import-position


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------

_LOG_LOCK = threading.Lock()


def log(msg):
    with _LOG_LOCK:
        sys.stdout.write(msg + '\n')
        sys.stdout.flush()


class Refused(Exception):
    """A request the server answers with an error line (or an HTTP error)."""

    def __init__(self, message, head=b''):
        super(Refused, self).__init__(message)
        self.head = head    # what was read of an unfinished request line


def parse_request(line, max_seconds, max_bytes):
    """Validate the client's JSON request line -> (direction, seconds or None, bytes or None, seed)."""
    try:
        req = json.loads(line.decode('utf-8'))
    except (UnicodeDecodeError, ValueError):
        raise Refused('bad request: not a JSON line')
    if not isinstance(req, dict):
        raise Refused('bad request: not a JSON object')
    return check_request(req, max_seconds, max_bytes)


def check_request(req, max_seconds, max_bytes):
    """A request as a dict (from JSON or from an HTTP query) -> (direction, seconds, bytes, seed)."""
    direction = req.get('direction')
    if direction not in ('download', 'upload'):
        raise Refused('bad request: direction must be "download" or "upload"')
    seconds, nbytes = req.get('seconds'), req.get('bytes')
    if (seconds is None) == (nbytes is None):
        raise Refused('bad request: give exactly one of "seconds" and "bytes"')
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= max_seconds:
            raise Refused('seconds must be above 0 and at most %g (server --max-seconds)' % max_seconds)
        seconds = float(seconds)
    if nbytes is not None:
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 0 < nbytes <= max_bytes:
            raise Refused('bytes must be between 1 and %d (server --max-bytes)' % max_bytes)
    seed = req.get('seed', 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 64:
        raise Refused('bad request: seed must be an integer between 0 and 2**64-1')
    return direction, seconds, nbytes, seed


_HTTP_START_RE = re.compile(br'^[A-Z]+ ')
_HTTP_LINE_RE = re.compile(r'^([A-Z]+) (\S+) HTTP/1\.[0-9]$')
_DECIMAL_RE = re.compile(r'^[0-9]{1,12}(\.[0-9]{1,9})?$')
_SEED_RE = re.compile(r'^[0-9]{1,20}$')


def is_http(line):
    """An HTTP request line (a method in capitals, then a space), not a JSON line."""
    return _HTTP_START_RE.match(line) is not None


def parse_http_request(line, max_seconds, max_bytes):
    """`GET /download?seconds=N[&seed=S] HTTP/1.x` -> the same tuple as parse_request."""
    try:
        text = line.rstrip(b'\r').decode('ascii')
    except UnicodeDecodeError:
        raise Refused('bad request: the request line is not ASCII')
    match = _HTTP_LINE_RE.match(text)
    if not match:
        raise Refused('bad request: expected "GET /download?seconds=N[&seed=S] HTTP/1.1"')
    method, target = match.groups()
    if method != 'GET':
        raise Refused('bad request: only GET is served, not %s' % method)
    path, _sep, query = target.partition('?')
    if path != '/download':
        raise Refused('bad request: only /download?seconds=N[&seed=S] is served, not %s' % path)
    params = {}
    for pair in query.split('&') if query else []:
        key, eq, value = pair.partition('=')
        if not eq or key in params:
            raise Refused('bad request: the query must be seconds=N[&seed=S]')
        if key not in ('seconds', 'seed'):
            raise Refused('bad request: unknown parameter %s (only seconds and seed)' % key)
        params[key] = value
    if 'seconds' not in params:
        raise Refused('bad request: /download needs seconds=N')
    seconds = params['seconds']
    if not _DECIMAL_RE.match(seconds):
        raise Refused('seconds must be above 0 and at most %g (server --max-seconds)' % max_seconds)
    req = {'direction': 'download', 'seconds': float(seconds) if '.' in seconds else int(seconds)}
    if 'seed' in params:
        if not _SEED_RE.match(params['seed']):
            raise Refused('bad request: seed must be an integer between 0 and 2**64-1')
        req['seed'] = int(params['seed'])
    return check_request(req, max_seconds, max_bytes)


def http_head(status, headers):
    """An HTTP/1.0 response head: the status ("200 OK") and (name, value) pairs."""
    lines = ['HTTP/1.0 %s' % status] + ['%s: %s' % pair for pair in headers] + ['', '']
    return '\r\n'.join(lines).encode('ascii', 'replace')


def http_error(status, message):
    """A whole error response; the message is the body, and a header a client can show."""
    body = (message + '\n').encode('utf-8')
    head = http_head(status, [('Content-Type', 'text/plain; charset=utf-8'), ('Content-Length', str(len(body))),
                              ('Connection', 'close'), ('X-Omr-Error', message.replace('\r', ' ').replace('\n', ' '))])
    return head + body


def socket_mptcp(sock):
    """(really MPTCP, extra subflows) for an accepted socket: SO_PROTOCOL and MPTCP_INFO agree."""
    try:
        if sock.getsockopt(socket.SOL_SOCKET, SO_PROTOCOL) != IPPROTO_MPTCP:
            return False, None
        info = sock.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)
    except OSError:
        return False, None
    if len(info) < 12:
        return False, None
    flags = struct.unpack_from('=I', info, 8)[0]
    return not flags & MPTCP_INFO_FLAG_FALLBACK, info[0]


def format_peer(peer):
    host, port = peer[0], peer[1]
    return ('[%s]:%d' if ':' in host else '%s:%d') % (host, port)


def peer_address(peer):
    host = peer[0].split('%', 1)[0]
    addr = ipaddress.ip_address(host)
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class Server(object):

    def __init__(self, listener, allow, max_seconds=30.0, max_bytes=1 << 30, max_clients=4, timeout=10.0,
                 listening_mptcp=True):
        self.listener = listener
        self.allow = list(allow)
        self.max_seconds = max_seconds
        self.max_bytes = max_bytes
        self.max_clients = max_clients
        self.timeout = timeout
        self.listening_mptcp = listening_mptcp
        self.slots = threading.BoundedSemaphore(max_clients)
        self.refusers = threading.BoundedSemaphore(16)
        self.stop = threading.Event()
        self.threads = set()
        self.lock = threading.Lock()

    # -- accept loop --------------------------------------------------------

    def serve_forever(self):
        self.listener.settimeout(0.5)
        while not self.stop.is_set():
            try:
                conn, peer = self.listener.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                if self.stop.is_set():
                    break
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log('accept failed: %s' % exc)
                    time.sleep(0.5)
                continue
            self.handle_new(conn, peer)
        self.listener.close()
        with self.lock:
            threads = list(self.threads)
        deadline = time.monotonic() + 3
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_new(self, conn, peer):
        try:
            addr = peer_address(peer)
        except ValueError:
            addr = None
        if addr is None or not any(addr in net for net in self.allow):
            log('refused client=%s reason=not-in-allow' % format_peer(peer))
            conn.close()
            return
        if not self.slots.acquire(False):
            log('refused client=%s reason=busy max_clients=%d' % (format_peer(peer), self.max_clients))
            if self.refusers.acquire(False):
                self.start(self.refuse, conn, peer, 'busy: all %d transfer slots are in use (--max-clients %d), try again later'
                           % (self.max_clients, self.max_clients), self.refusers)
            else:
                conn.close()
            return
        self.start(self.client, conn, peer)

    def start(self, target, *args):
        thread = threading.Thread(target=self._run, args=(target,) + args)
        thread.daemon = True
        with self.lock:
            self.threads.add(thread)
        thread.start()

    def _run(self, target, *args):
        try:
            target(*args)
        finally:
            with self.lock:
                self.threads.discard(threading.current_thread())

    # -- helpers ------------------------------------------------------------

    def read_line(self, conn):
        """The request line and whatever followed it in the same reads."""
        data = bytearray()
        deadline = time.monotonic() + self.timeout
        while b'\n' not in data:
            if len(data) > REQUEST_LIMIT:
                raise Refused('bad request: no newline in the first %d bytes' % REQUEST_LIMIT, bytes(data))
            if time.monotonic() > deadline or self.stop.is_set():
                raise Refused('no request within %s seconds' % self.timeout, bytes(data))
            try:
                chunk = conn.recv(REQUEST_LIMIT)
            except socket.timeout:
                continue
            if not chunk:
                raise EOFError('closed before sending a request')
            data += chunk
        line, rest = bytes(data).split(b'\n', 1)
        return line, rest

    def read_head(self, conn, rest):
        """Read (and drop) an HTTP request's headers, up to the empty line after them."""
        data = bytearray(rest)
        deadline = time.monotonic() + self.timeout
        while not (data.startswith((b'\r\n', b'\n')) or b'\n\r\n' in data or b'\n\n' in data):
            if len(data) > HEAD_LIMIT:
                raise Refused('bad request: headers longer than %d bytes' % HEAD_LIMIT)
            if time.monotonic() > deadline or self.stop.is_set():
                raise Refused('no end of the headers within %s seconds' % self.timeout)
            try:
                chunk = conn.recv(HEAD_LIMIT)
            except socket.timeout:
                continue
            if not chunk:
                raise EOFError('closed before the end of its headers')
            data += chunk

    def answer(self, conn, obj):
        try:
            conn.sendall(json.dumps(obj, sort_keys=True).encode('ascii') + b'\n')
        except OSError:
            pass

    def answer_error(self, conn, http, message, status='400 Bad Request'):
        """An error line to a JSON client, an HTTP error response to an HTTP one."""
        if not http:
            self.answer(conn, {'error': message})
            return
        try:
            conn.sendall(http_error(status, message))
        except OSError:
            pass

    def linger_close(self, conn, wait=2.0):
        """Shut our side, then wait (briefly) for the client to close, so nothing it sent turns into a RST.

        Returns when the client's close was seen (time.monotonic()), or None.
        """
        closed_at = None
        try:
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(0.5)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    if not conn.recv(65536):
                        closed_at = time.monotonic()
                        break
                except socket.timeout:
                    continue
        except OSError:
            pass
        finally:
            conn.close()
        return closed_at

    def refuse(self, conn, peer, reason, semaphore):
        try:
            conn.settimeout(1.0)
            line = b''
            try:
                line = self.read_line(conn)[0]
            except Refused as exc:
                line = exc.head
            except (EOFError, OSError):
                pass
            self.answer_error(conn, is_http(line), reason, '503 Service Unavailable')
            self.linger_close(conn)
        finally:
            semaphore.release()

    # -- one client ---------------------------------------------------------

    def client(self, conn, peer):
        who = format_peer(peer)
        http = False
        try:
            conn.settimeout(1.0)
            try:
                line, rest = self.read_line(conn)
                http = is_http(line)
                if http:
                    direction, seconds, nbytes, seed = parse_http_request(line, self.max_seconds, self.max_bytes)
                    self.read_head(conn, rest)
                else:
                    direction, seconds, nbytes, seed = parse_request(line, self.max_seconds, self.max_bytes)
            except Refused as exc:
                http = http or is_http(exc.head)
                log('refused client=%s reason=%s' % (who, json.dumps(str(exc))))
                self.answer_error(conn, http, str(exc))
                self.linger_close(conn)
                return
            except (EOFError, OSError) as exc:
                log('dropped client=%s reason=%s' % (who, json.dumps(str(exc))))
                conn.close()
                return
            started = time.monotonic()
            try:
                if direction == 'download':
                    if http:
                        # Fallback to plain TCP is settled by the handshake, before any data.
                        conn.sendall(http_head('200 OK', [
                            ('Content-Type', 'application/octet-stream'), ('Connection', 'close'),
                            ('X-Omr-Mptcp', 'yes' if socket_mptcp(conn)[0] else 'no')]))
                    moved, error = self.send_stream(conn, seed, seconds, nbytes)
                    mptcp, extra = socket_mptcp(conn)
                    # The client closes once it has read everything: timing up to its close
                    # counts what it received, not what sits in our send buffer.
                    done = self.linger_close(conn, wait=self.timeout)
                    elapsed = (done or time.monotonic()) - started
                else:
                    moved, elapsed, error, mptcp, extra = self.receive_stream(conn, rest, nbytes, started)
                    self.linger_close(conn)
            except OSError as exc:
                moved, elapsed, error = 0, time.monotonic() - started, str(exc)
                mptcp, extra = False, None
                conn.close()
            mbps = moved * 8.0 / elapsed / 1e6 if elapsed > 0 else 0.0
            log('transfer client=%s direction=%s bytes=%d seconds=%.3f mbps=%.2f mptcp=%s subflows=%s%s'
                % (who, direction, moved, elapsed, mbps, 'yes' if mptcp else 'no',
                   '-' if extra is None else extra + 1, '' if error is None else ' error=%s' % json.dumps(error)))
        finally:
            self.slots.release()

    def send_stream(self, conn, seed, seconds, nbytes):
        stream = DataStream(seed)
        limit = self.max_bytes if nbytes is None else nbytes
        deadline = time.monotonic() + (self.max_seconds if seconds is None else seconds)
        sent = 0
        idle_since = time.monotonic()
        while sent < limit:
            now = time.monotonic()
            if now >= deadline:
                if nbytes is not None:
                    return sent, 'stopped at --max-seconds %g before %d bytes' % (self.max_seconds, nbytes)
                break
            if self.stop.is_set():
                return sent, 'server stopping'
            try:
                n = conn.send(stream.view(sent, limit - sent))
            except socket.timeout:
                if time.monotonic() - idle_since > self.timeout:
                    return sent, 'client stopped reading'
                continue
            sent += n
            idle_since = now
        return sent, None

    def receive_stream(self, conn, rest, nbytes, started):
        digest = hashlib.sha256()
        received = 0
        limit = self.max_bytes if nbytes is None else nbytes
        hard_deadline = started + self.max_seconds + DRAIN_GRACE
        buf = bytearray(256 * 1024)
        view = memoryview(buf)
        last = started
        error = None
        if rest:
            digest.update(rest)
            received += len(rest)
            last = time.monotonic()
        idle_since = time.monotonic()
        while True:
            if received > limit:
                error = 'sent more than %d bytes (%s)' % (limit, 'requested' if nbytes is not None else '--max-bytes')
                break
            now = time.monotonic()
            if now > hard_deadline:
                error = 'upload longer than --max-seconds %g' % self.max_seconds
                break
            if self.stop.is_set():
                error = 'server stopping'
                break
            try:
                n = conn.recv_into(buf)
            except socket.timeout:
                if time.monotonic() - idle_since > self.timeout:
                    error = 'client stopped sending for %s seconds' % self.timeout
                    break
                continue
            if n == 0:
                break
            digest.update(view[:n])
            received += n
            last = idle_since = time.monotonic()
        elapsed = last - started
        mptcp, extra = socket_mptcp(conn)
        if error is None:
            self.answer(conn, {'received': received, 'seconds': round(elapsed, 6), 'sha256': digest.hexdigest()})
        else:
            self.answer(conn, {'error': error, 'received': received, 'seconds': round(elapsed, 6)})
        return received, elapsed, error, mptcp, extra


def make_listener(bind, port):
    """A listening socket, MPTCP when the kernel has it -> (socket, is_mptcp)."""
    family = socket.AF_INET6 if ':' in bind else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, IPPROTO_MPTCP)
        mptcp = True
    except OSError as exc:
        log('MPTCP is not available (%s): falling back to plain TCP' % exc)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        mptcp = False
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        except OSError:
            pass
    sock.bind((bind, port))
    sock.listen(16)
    return sock, mptcp


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='omr-mptcp-speedtest',
        description='MPTCP speed-test server for omr.deploy.mptcp_probe (one JSON request line, or an HTTP GET '
                    'for curl, per connection).')
    parser.add_argument('--bind', default='0.0.0.0', help='address to listen on (default 0.0.0.0; :: for IPv6 and IPv4)')
    parser.add_argument('--port', type=int, default=DEFAULT_PORT, help='TCP port (default %d)' % DEFAULT_PORT)
    parser.add_argument('--max-seconds', type=float, default=30.0, help='longest transfer in seconds (default 30)')
    parser.add_argument('--max-bytes', type=int, default=1 << 30, help='largest transfer in bytes (default 1 GiB)')
    parser.add_argument('--max-clients', type=int, default=4,
                        help='concurrent transfers; more clients get an error line (default 4)')
    parser.add_argument('--allow', action='append', metavar='CIDR',
                        help='client networks allowed to test, repeatable (default 127.0.0.0/8 only)')
    parser.add_argument('--timeout', type=float, default=10.0,
                        help='seconds a client may stay silent (request, upload) or stop reading (default 10)')
    args = parser.parse_args(argv)
    try:
        args.allow = [ipaddress.ip_network(c, strict=False) for c in (args.allow or ['127.0.0.0/8'])]
    except ValueError as exc:
        parser.error('--allow: %s' % exc)
    for name in ('max_seconds', 'max_bytes', 'max_clients', 'timeout'):
        if getattr(args, name) <= 0:
            parser.error('--%s must be above 0' % name.replace('_', '-'))
    if not 0 < args.port < 65536:
        parser.error('--port must be between 1 and 65535')
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        listener, mptcp = make_listener(args.bind, args.port)
    except OSError as exc:
        log('cannot listen on %s port %d: %s' % (args.bind, args.port, exc))
        return 1
    server = Server(listener, args.allow, max_seconds=args.max_seconds, max_bytes=args.max_bytes,
                    max_clients=args.max_clients, timeout=args.timeout, listening_mptcp=mptcp)

    def stop(signum, frame):
        server.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log('listening on %s (%s) allow=%s max_seconds=%s max_bytes=%d max_clients=%d'
        % (format_peer((args.bind, args.port)), 'MPTCP' if mptcp else 'TCP, no MPTCP',
           ','.join(str(n) for n in args.allow), args.max_seconds, args.max_bytes, args.max_clients))
    server.serve_forever()
    log('stopped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
