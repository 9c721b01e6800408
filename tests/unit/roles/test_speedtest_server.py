# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/vps/files/omr-mptcp-speedtest.py's HTTP mode, run for real on 127.0.0.1: the real curl
downloads from it, bad requests get 400, JSON clients (the module's own client) still work, and
the command omr.deploy.mptcp_probe sends with client=curl runs under busybox sh (and dash) and
parses.

curl gets --limit-rate (directly, or from a `curl` shim in PATH for the generated command): on
loopback it would reach the server's --max-bytes in a fraction of a second, before the test's
time. mptcpize is rarely installed (Debian package mptcpize): a PATH shim stands in for it as a
pass-through (`exec "$@"` after `run`), so that command's connection is plain TCP and the server
says X-Omr-Mptcp: no; the real mptcpize is used too where it is installed.
"""

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.omr.deploy.plugins.module_utils._mptcp_sock import run_probe
from ansible_collections.omr.deploy.plugins.module_utils._mptcp_stream import DataStream
from ansible_collections.omr.deploy.plugins.module_utils._speedtest import curl_script, parse_curl_probe
from conftest import load_program

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SERVER = os.path.join(ROOT, 'roles', 'vps', 'files', 'omr-mptcp-speedtest.py')
CURL = shutil.which('curl') or '/usr/bin/curl'
RATE = '20M'     # bytes/s: seconds of loopback transfer stay far below --max-bytes

pytestmark = pytest.mark.skipif(not os.path.exists(CURL), reason='no curl (Debian package curl)')


def mptcp_available():
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262).close()
        return True
    except OSError:
        return False


def free_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


class Server(object):
    """The real server on 127.0.0.1, its log lines collected as they come."""

    def __init__(self, *extra):
        self.port = free_port()
        self.lines = []
        self.proc = subprocess.Popen([sys.executable, SERVER, '--bind', '127.0.0.1', '--port', str(self.port),
                                      '--max-seconds', '3', '--timeout', '5'] + list(extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        self.reader = threading.Thread(target=self._read)
        self.reader.daemon = True
        self.reader.start()
        if not self.wait_for('listening on'):
            self.stop()
            pytest.fail('the speed-test server did not start: %r' % self.lines)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip('\n'))

    def wait_for(self, prefix, timeout=15):
        """The first new log line starting with prefix (None after timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, line in enumerate(self.lines):
                if line.startswith(prefix):
                    del self.lines[:i + 1]
                    return line
            if self.proc.poll() is not None and not self.reader.is_alive():
                return None
            time.sleep(0.05)
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.reader.join(5)
        self.proc.stdout.close()


@pytest.fixture(scope='module')
def server():
    srv = Server()
    yield srv
    srv.stop()


def curl(url, *extra, **kwargs):
    """Run the real curl -> (rc, http_code, response head text, stderr)."""
    head = kwargs['tmp_path'] / 'head'
    res = subprocess.run([CURL, '-q', '-sS', '--max-time', '20', '-D', str(head), '-w', '%{http_code}'] + list(extra)
                         + [url], capture_output=True, text=True, timeout=30, check=False)
    return res.returncode, res.stdout[-3:], head.read_bytes().decode('ascii') if head.exists() else '', res.stderr


def headers_of(head):
    lines = head.split('\r\n')
    return lines[0], dict((k.lower(), v.strip()) for k, _s, v in (line.partition(':') for line in lines[1:] if line))


def logged(line):
    return dict(re.findall(r'(\w+)=(\S+)', line))


# ---------------------------------------------------------------------------
# HTTP mode
# ---------------------------------------------------------------------------

def test_http_request_lines_parse_to_the_json_requests_tuple():
    st = load_program('vps', 'omr-mptcp-speedtest.py')
    assert st.parse_http_request(b'GET /download?seconds=1.5&seed=9 HTTP/1.1\r', 3, 100) == ('download', 1.5, None, 9)
    assert st.parse_http_request(b'GET /download?seconds=2 HTTP/1.0', 3, 100) == ('download', 2.0, None, 0)
    assert st.is_http(b'GET / HTTP/1.1') and st.is_http(b'HEAD / HTTP/1.1')
    assert not st.is_http(b'{"direction": "download", "seconds": 1}')
    for line in (b'GET /download?seconds=1', b'GET /download?seconds=1 HTTP/2', b'GET /download?seconds=1&seconds=2 HTTP/1.1',
                 b'GET /download?seconds HTTP/1.1', b'GET /download?seconds=1e3 HTTP/1.1', b'GET /d\xc3\xa9 HTTP/1.1'):
        with pytest.raises(st.Refused):
            st.parse_http_request(line, 3, 100)


def test_curl_downloads_the_stream_for_the_seconds_asked(server, tmp_path):
    body = tmp_path / 'body'
    started = time.monotonic()
    rc, code, head, err = curl('http://127.0.0.1:%d/download?seconds=1&seed=42' % server.port,
                               '--limit-rate', RATE, '-o', str(body), tmp_path=tmp_path)
    elapsed = time.monotonic() - started
    assert (rc, code) == (0, '200'), err
    status, headers = headers_of(head)
    assert status == 'HTTP/1.0 200 OK'
    assert headers['content-type'] == 'application/octet-stream'
    assert headers['connection'] == 'close'
    assert headers['x-omr-mptcp'] == 'no'           # curl opened plain TCP
    data = body.read_bytes()
    assert len(data) > 1 << 20
    assert data[:1 << 20] == DataStream(42).read(0, 1 << 20)
    assert data == DataStream(42).read(0, len(data))
    # Sanity only: the server sends for 1 s, curl drains what was buffered.
    assert 0.8 < elapsed < 15
    line = logged(server.wait_for('transfer client=127.0.0.1:'))
    assert (line['direction'], int(line['bytes']), line['mptcp']) == ('download', len(data), 'no')


@pytest.mark.skipif(not mptcp_available(), reason='the kernel has no MPTCP')
def test_the_header_says_mptcp_to_an_mptcp_client_sending_its_head_in_pieces(server):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
    sock.settimeout(10)
    sock.connect(('127.0.0.1', server.port))
    for piece in (b'GET /download?seconds=1&seed=7 HTTP/1.1\r\nHost: 127.', b'0.0.1\r\nUser-Agent: test\r\n', b'\r\n'):
        sock.sendall(piece)
        time.sleep(0.2)
    data = bytearray()
    while len(data) < 4 << 20:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    head, _sep, body = bytes(data).partition(b'\r\n\r\n')
    status, headers = headers_of(head.decode('ascii'))
    assert status == 'HTTP/1.0 200 OK' and headers['x-omr-mptcp'] == 'yes'
    assert body == DataStream(7).read(0, len(body)) and len(body) > 65536
    assert server.wait_for('transfer client=127.0.0.1:') is not None


@pytest.mark.parametrize('target, extra, words', [
    ('/download?seconds=99', [], 'seconds must be above 0 and at most 3 (server --max-seconds)'),
    ('/download?seconds=0', [], 'seconds must be above 0'),
    ('/download?seconds=x', [], 'seconds must be above 0'),
    ('/download', [], 'needs seconds=N'),
    ('/upload?seconds=1', [], 'only /download'),
    ('/download?seconds=1&bytes=5', [], 'unknown parameter bytes'),
    ('/download?seconds=1&seed=-1', [], 'seed must be an integer'),
    ('/download?seconds=1&seed=18446744073709551616', [], 'seed must be an integer'),
    ('/download?seconds=1', ['-X', 'POST'], 'only GET'),
])
def test_a_bad_request_gets_400_with_the_reason(server, tmp_path, target, extra, words):
    body = tmp_path / 'body'
    rc, code, head, err = curl('http://127.0.0.1:%d%s' % (server.port, target), '-o', str(body), *extra,
                               tmp_path=tmp_path)
    assert (rc, code) == (0, '400'), err
    status, headers = headers_of(head)
    assert status == 'HTTP/1.0 400 Bad Request'
    assert words in body.read_text() and words in headers['x-omr-error']
    assert headers['content-type'].startswith('text/plain') and int(headers['content-length']) == len(body.read_bytes())
    assert 'reason=' in server.wait_for('refused client=127.0.0.1:')


def test_a_garbled_request_line_gets_400_and_a_json_line_is_still_json(server):
    for request, answer in ((b'GET /download?seconds=1\r\n\r\n', b'HTTP/1.0 400 Bad Request\r\n'),
                            (b'{"direction": "sideways", "seconds": 1}\n', b'{"error": "bad request: direction')):
        sock = socket.create_connection(('127.0.0.1', server.port), timeout=10)
        sock.sendall(request)
        data = b''
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        sock.close()
        assert data.startswith(answer), data
        server.wait_for('refused client=')


def test_busy_http_clients_get_503(tmp_path):
    srv = Server('--max-clients', '1')
    try:
        # Holds the one slot from its accept on; it is accepted before curl's connection.
        holder = socket.create_connection(('127.0.0.1', srv.port), timeout=10)
        rc, code, head, err = curl('http://127.0.0.1:%d/download?seconds=1' % srv.port, '-o', str(tmp_path / 'b'),
                                   tmp_path=tmp_path)
        holder.close()
        assert (rc, code) == (0, '503'), err
        status, headers = headers_of(head)
        assert status == 'HTTP/1.0 503 Service Unavailable' and 'busy' in headers['x-omr-error']
    finally:
        srv.stop()


@pytest.mark.parametrize('protocol', ['tcp', 'mptcp'])
def test_json_clients_still_work(server, protocol):
    if protocol == 'mptcp' and not mptcp_available():
        pytest.skip('the kernel has no MPTCP')
    down = run_probe('127.0.0.1', port=server.port, seconds=1, protocol=protocol, timeout=5)
    assert down['integrity_ok'] is True and down['bytes'] > 0
    assert down['mptcp'] is (protocol == 'mptcp')
    server.wait_for('transfer client=')
    up = run_probe('127.0.0.1', port=server.port, direction='upload', nbytes=3000000, protocol=protocol, timeout=5)
    assert up['integrity_ok'] is True and up['bytes'] == 3000000
    assert logged(server.wait_for('transfer client='))['direction'] == 'upload'


# ---------------------------------------------------------------------------
# omr.deploy.mptcp_probe's curl command, run for real
# ---------------------------------------------------------------------------

SHELLS = [s for s in (['busybox', 'sh'], ['sh']) if shutil.which(s[0])]


@pytest.fixture
def shim(tmp_path):
    """PATH with a pass-through mptcpize and a rate-limited curl in front (see the docstring)."""
    path = tmp_path / 'shim'
    path.mkdir()
    (path / 'mptcpize').write_text('#!/bin/sh\n[ "$1" = run ] && shift\nexec "$@"\n')
    (path / 'curl').write_text('#!/bin/sh\nexec %s --limit-rate %s "$@"\n' % (CURL, RATE))
    for name in ('mptcpize', 'curl'):
        (path / name).chmod(0o755)
    return str(path)


def run_script(script, shell, path):
    before = set(glob.glob('/tmp/omr-mptcp-probe.*'))
    # What Ansible runs: the command, with ` && sleep 0` appended.
    res = subprocess.run(shell + ['-c', script + ' && sleep 0'], capture_output=True, text=True, timeout=60,
                         check=False, env=dict(os.environ, PATH=path + ':' + os.environ.get('PATH', '/usr/bin:/bin')))
    assert res.returncode == 0, res.stderr
    assert set(glob.glob('/tmp/omr-mptcp-probe.*')) <= before, 'temporary files left behind'
    return res.stdout


@pytest.mark.parametrize('shell', SHELLS, ids=' '.join)
def test_the_curl_command_runs_and_parses(server, shim, shell):
    interfaces = {'lo': '127.0.0.1'}
    out = run_script(curl_script('127.0.0.1', server.port, 1, 5, protocol='mptcp', interfaces=interfaces, timeout=5),
                     shell, shim)
    res = parse_curl_probe(out, 'mptcp', interfaces)
    line = logged(server.wait_for('transfer client=127.0.0.1:'))
    assert res['bytes'] == int(line['bytes']) and res['throughput_mbps'] > 0
    # The shim's curl is plain TCP: the server sees no MPTCP and says so.
    assert res['mptcp'] is False and res['subflows'] == 1 and line['mptcp'] == 'no'
    assert 'fell back to plain TCP' in res['warnings'][0]
    # On loopback the lo counter sees the data once (and the headers, the handshake, the acks).
    assert res['subflow_details'][0]['bytes_received'] >= res['bytes']
    # ss counted the one connection half-way.
    assert re.search(r'^#omr-probe# subflows\n1\n', out, re.M)


def test_the_curl_command_for_one_wan(server, shim):
    out = run_script(curl_script('127.0.0.1', server.port, 1, 6, protocol='tcp', bind_address='127.0.0.1', timeout=5),
                     SHELLS[0], shim)
    res = parse_curl_probe(out, 'tcp', None)
    assert res['protocol'] == 'tcp' and res['subflows'] == 1 and res['warnings'] == [] and res['subflow_details'] == []
    assert res['bytes'] == int(logged(server.wait_for('transfer client=127.0.0.1:'))['bytes'])


@pytest.mark.skipif(not shutil.which('mptcpize') or not mptcp_available(), reason='no mptcpize, or no MPTCP')
def test_the_curl_command_with_the_real_mptcpize(server, shim):
    os.unlink(os.path.join(shim, 'mptcpize'))
    out = run_script(curl_script('127.0.0.1', server.port, 1, 8, protocol='mptcp', timeout=5), SHELLS[0], shim)
    res = parse_curl_probe(out, 'mptcp', None)
    line = logged(server.wait_for('transfer client=127.0.0.1:'))
    assert res['mptcp'] is True and line['mptcp'] == 'yes'
    assert res['subflows'] == int(line['subflows']) == 1      # loopback: no second path
    assert json.dumps(res)
