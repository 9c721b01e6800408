# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/wifi_bridge/files/omr-wifi-monitor.py: parsers, the speed-test client against the real
roles/vps/files/omr-mptcp-speedtest.py server, thresholds, metrics and whole runs with the real ping.

Fixtures (tests/unit/fixtures/wifi/):
  ping_*.txt        real captures on this host (iputils 20221126, busybox 1.35) against 127.0.0.1 in a
                    private network namespace, `ping -n -q -c 10 -i 0.2 -w 5 -I lo 127.0.0.1`
                    (the busybox one without -n); the lossy and all-lost ones with an nftables rule
                    dropping a random 30 % (respectively all) of the echo replies.
  iw_link_*.txt     no WiFi hardware here: assembled line by line from the printf formats of iw's
                    link.c (5.x layout in iw_link_connected.txt, 6.x layout with "freq: 5500.0",
                    bss flags/dtim/beacon lines and a \\xNN-escaped UTF-8 SSID in iw_link_vht.txt).
"""

from __future__ import absolute_import, division, print_function

import importlib.util
import json
import os
import re
import select
import shutil
import socket
import stat
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, 'roles', 'wifi_bridge', 'files', 'omr-wifi-monitor.py')
SERVER = os.path.join(ROOT, 'roles', 'vps', 'files', 'omr-mptcp-speedtest.py')
FIXTURES = os.path.join(ROOT, 'tests', 'unit', 'fixtures', 'wifi')
T0 = 1700000000.0

# `make unit` installs iputils-ping; only a hand-run outside CI may lack it.
needs_ping = pytest.mark.skipif(shutil.which('ping') is None and not os.environ.get('CI'),
                                reason='no ping command (Debian package iputils-ping)')


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding='utf-8') as f:
        return f.read()


@pytest.fixture(scope='module')
def wm():
    spec = importlib.util.spec_from_file_location('omr_wifi_monitor', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def free_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


def start_server(allow, max_seconds=3):
    """The real speed-test server on 127.0.0.1 and a free port -> (process, port)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, SERVER, '--bind', '127.0.0.1', '--port', str(port), '--allow', allow,
                             '--max-seconds', str(max_seconds), '--timeout', '5'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    deadline = time.monotonic() + 15
    seen = []
    while time.monotonic() < deadline:
        ready = select.select([proc.stdout], [], [], 0.5)[0]
        if ready:
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith('listening on'):
                return proc, port
            if not line and proc.poll() is not None:
                break
    stop_server(proc)
    pytest.fail('speed-test server did not start: %r' % seen)
    return None, None


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    proc.stdout.close()


@pytest.fixture(scope='module')
def server():
    proc, port = start_server('127.0.0.1/32')
    yield port
    stop_server(proc)


@pytest.fixture(scope='module')
def strict_server():
    """A server whose --allow leaves 127.0.0.1 out: it closes such clients at once."""
    proc, port = start_server('10.0.0.0/8')
    yield port
    stop_server(proc)


# ---------------------------------------------------------------------------
# Prometheus text format, checked independently of the script
# ---------------------------------------------------------------------------

METRIC_NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
SAMPLE_RE = re.compile(r'^(%s)\{interface="((?:[^"\\\n]|\\["\\n])*)"\} (\S+)$' % METRIC_NAME)


def parse_prometheus(text):
    """Validate text exposition format -> {name: (label value, float)}; fails the test on any violation."""
    assert text.endswith('\n')
    helped, typed, values = set(), set(), {}
    for line in text.splitlines():
        assert line == line.strip() and line, repr(line)
        if line.startswith('# HELP '):
            name = line.split(' ')[2]
            assert re.match('^%s$' % METRIC_NAME, name) and name not in helped, line
            helped.add(name)
        elif line.startswith('# TYPE '):
            name, kind = line.split(' ')[2:4]
            assert kind == 'gauge' and name in helped and name not in typed, line
            typed.add(name)
        else:
            match = SAMPLE_RE.match(line)
            assert match, line
            name = match.group(1)
            assert name in typed and name not in values, 'sample before its TYPE or repeated: ' + line
            values[name] = (match.group(2), float(match.group(3)))
    assert helped == typed == set(values)
    return values


# ---------------------------------------------------------------------------
# ping
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('name,transmitted,received,loss,rtt', [
    ('ping_iputils.txt', 10, 10, 0.0, 0.049),
    ('ping_iputils_loss.txt', 17, 10, 41.1765, 0.046),
    ('ping_iputils_all_lost.txt', 10, 0, 100.0, None),
    ('ping_busybox.txt', 10, 9, 10.0, 0.082),
])
def test_parse_ping_fixtures(wm, name, transmitted, received, loss, rtt):
    result = wm.parse_ping(fixture(name))
    assert result['transmitted'] == transmitted
    assert result['received'] == received
    assert result['loss_pct'] == pytest.approx(loss)
    assert result['rtt_ms'] == (None if rtt is None else pytest.approx(rtt))
    assert result['errors'] == 0


def test_parse_ping_errors_and_busybox_all_lost(wm):
    # Real iputils output for an unreachable address (ICMP errors from the gateway).
    iputils = ('PING 198.51.100.1 (198.51.100.1) 56(84) bytes of data.\n\n--- 198.51.100.1 ping statistics ---\n'
               '1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms\n\n')
    assert wm.parse_ping(iputils) == {'transmitted': 1, 'received': 0, 'loss_pct': 100.0, 'rtt_ms': None, 'errors': 1}
    # Real busybox output with every reply dropped.
    busybox = ('PING 127.0.0.1 (127.0.0.1): 56 data bytes\n\n--- 127.0.0.1 ping statistics ---\n'
               '3 packets transmitted, 0 packets received, 100% packet loss\n')
    assert wm.parse_ping(busybox) == {'transmitted': 3, 'received': 0, 'loss_pct': 100.0, 'rtt_ms': None, 'errors': 0}
    # iputils with duplicates, errors and a pipe note.
    mixed = ('5 packets transmitted, 4 received, +1 duplicates, +2 errors, 20% packet loss, time 4005ms\n'
             'rtt min/avg/max/mdev = 10.1/12.3/15.0/1.2 ms, pipe 2\n')
    assert wm.parse_ping(mixed) == {'transmitted': 5, 'received': 4, 'loss_pct': 20.0, 'rtt_ms': 12.3, 'errors': 2}


@pytest.mark.parametrize('text', ['', 'ping: SO_BINDTODEVICE wlan0: No such device\n', 'ping: connect: Network is unreachable\n'])
def test_parse_ping_without_statistics(wm, text):
    assert wm.parse_ping(text) == {'transmitted': None, 'received': None, 'loss_pct': None, 'rtt_ms': None, 'errors': 0}


# ---------------------------------------------------------------------------
# iw
# ---------------------------------------------------------------------------

def test_parse_iw_link_connected(wm):
    assert wm.parse_iw_link(fixture('iw_link_connected.txt')) == {
        'connected': True, 'bssid': 'aa:bb:cc:dd:ee:ff', 'ssid': 'HotelGuest', 'freq_mhz': 2437, 'signal_dbm': -67,
        'rx_bitrate_bps': 65000000, 'tx_bitrate_bps': 72200000}


def test_parse_iw_link_vht_newer_iw(wm):
    assert wm.parse_iw_link(fixture('iw_link_vht.txt')) == {
        'connected': True, 'bssid': '12:34:56:78:9a:bc', 'ssid': u'Caf\u00e9 Gast 5G', 'freq_mhz': 5500, 'signal_dbm': -58,
        'rx_bitrate_bps': 780000000, 'tx_bitrate_bps': 866700000}


def test_parse_iw_link_not_connected(wm):
    result = wm.parse_iw_link(fixture('iw_link_not_connected.txt'))
    assert result['connected'] is False
    assert all(result[k] is None for k in ('bssid', 'ssid', 'freq_mhz', 'signal_dbm', 'rx_bitrate_bps', 'tx_bitrate_bps'))


def test_parse_iw_link_unknown_bitrate_and_old_bss_flags(wm):
    text = ('Connected to 00:11:22:33:44:55 (on wlan1)\n\tSSID: \\x20lead\n\tfreq: 2412\n\tsignal: -80 dBm\n'
            '\ttx bitrate: (unknown)\n\n\tbss flags:\tshort-preamble short-slot-time\n\tdtim period:\t2\n\tbeacon int:\t100\n')
    result = wm.parse_iw_link(text)
    assert result['ssid'] == ' lead'
    assert result['signal_dbm'] == -80
    assert result['tx_bitrate_bps'] is None and result['rx_bitrate_bps'] is None


# ---------------------------------------------------------------------------
# throughput against the real speed-test server
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('source', [None, '127.0.0.1'])
def test_throughput_sample_real_server(wm, server, source):
    started = time.monotonic()
    result = wm.throughput_sample('127.0.0.1', server, 1, source_address=source)
    assert result['error'] is None, result
    assert result['bytes'] > 0
    assert result['bits_per_second'] > 0
    # One second, or less when the server's --max-bytes (1 GiB) runs out first, as it may on loopback.
    assert 0 < result['seconds'] <= 4
    assert result['bits_per_second'] == pytest.approx(result['bytes'] * 8 / result['seconds'])
    assert time.monotonic() - started < 6


def test_throughput_sample_error_line(wm, server):
    # 5 seconds is over the server's --max-seconds 3: it answers one JSON error line.
    result = wm.throughput_sample('127.0.0.1', server, 5)
    assert result['bits_per_second'] is None
    assert result['error'].startswith('server refused: seconds must be above 0 and at most 3')


def test_throughput_sample_client_not_allowed(wm, strict_server):
    result = wm.throughput_sample('127.0.0.1', strict_server, 1)
    assert result['bits_per_second'] is None
    assert result['bytes'] == 0
    # Closed before any data: a plain close or, as the request was never read, a reset.
    assert result['error'].startswith('server closed the connection without data (is this address in its --allow?)')


def test_throughput_sample_port_closed(wm):
    port = free_port()
    result = wm.throughput_sample('127.0.0.1', port, 1)
    assert result['bits_per_second'] is None
    assert result['error'].startswith('cannot connect to 127.0.0.1 port %d' % port)


def test_throughput_sample_silent_server(wm):
    """A server that accepts and never answers: the client gives up after seconds + 5."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    try:
        started = time.monotonic()
        result = wm.throughput_sample('127.0.0.1', listener.getsockname()[1], 0.5)
        assert 5 <= time.monotonic() - started < 8
        assert result['bits_per_second'] is None
        assert result['error'].startswith('timed out after 5.5 seconds')
    finally:
        listener.close()


# ---------------------------------------------------------------------------
# thresholds
# ---------------------------------------------------------------------------

def sample_of(loss=0.0, rtt=12.3, received=10, signal=-60, bps=20e6, wifi=True, throughput=True):
    return {
        'interface': 'wlan0',
        'ping': {'transmitted': 10, 'received': received, 'loss_pct': loss, 'rtt_ms': rtt, 'errors': 0, 'error': None},
        'wifi': {'connected': True, 'signal_dbm': signal, 'tx_bitrate_bps': 72200000, 'rx_bitrate_bps': 65000000,
                 'error': None} if wifi else None,
        'throughput': {'bits_per_second': bps, 'bytes': 1000, 'error': None if bps else 'failed'} if throughput else None,
        'quality_ok': None, 'reasons': [],
    }


ALL = {'max_loss_pct': 5, 'max_rtt_ms': 100, 'min_signal_dbm': -75, 'min_throughput_mbit': 5}


def test_evaluate_all_hold(wm):
    assert wm.evaluate(sample_of(), ALL) == (True, [])
    assert wm.evaluate(sample_of(loss=5.0, rtt=100.0, signal=-75, bps=5e6), ALL) == (True, [])   # limits are inclusive
    assert wm.evaluate(sample_of(loss=100.0, rtt=None, wifi=False, throughput=False), {}) == (True, [])


def test_evaluate_failures(wm):
    ok, reasons = wm.evaluate(sample_of(loss=12.0, rtt=250.4, signal=-80, bps=3.21e6), ALL)
    assert not ok
    assert reasons == ['loss 12.0 % > 5 %', 'rtt 250 ms > 100 ms', 'signal -80 dBm < -75 dBm',
                       'throughput 3.21 Mbit/s < 5 Mbit/s']
    ok, reasons = wm.evaluate(sample_of(loss=12.0), {'max_loss_pct': 5, 'max_rtt_ms': 100})
    assert (ok, reasons) == (False, ['loss 12.0 % > 5 %'])


def test_evaluate_missing_measurements_fail(wm):
    sample = sample_of(loss=100.0, rtt=None, received=0, wifi=False, bps=None)
    ok, reasons = wm.evaluate(sample, ALL)
    assert not ok
    assert reasons == ['loss 100.0 % > 5 %', 'rtt not measured', 'signal not measured', 'throughput not measured']
    sample['ping'] = {'transmitted': None, 'received': None, 'loss_pct': None, 'rtt_ms': None}
    assert wm.evaluate(sample, {'max_loss_pct': 50})[1] == ['loss not measured']


# ---------------------------------------------------------------------------
# metrics and journal line
# ---------------------------------------------------------------------------

def test_render_metrics_full(wm):
    sample = sample_of(loss=10.0, rtt=12.5)
    sample['quality_ok'] = True
    values = parse_prometheus(wm.render_metrics(sample, T0))
    assert {k: v[1] for k, v in values.items()} == {
        'omr_wifi_bridge_link_up': 1,
        'omr_wifi_bridge_link_rtt_seconds': pytest.approx(0.0125),
        'omr_wifi_bridge_link_loss_ratio': pytest.approx(0.1),
        'omr_wifi_bridge_link_throughput_bits_per_second': 20e6,
        'omr_wifi_bridge_link_signal_dbm': -60,
        'omr_wifi_bridge_link_tx_bitrate_bits_per_second': 72200000,
        'omr_wifi_bridge_link_rx_bitrate_bits_per_second': 65000000,
        'omr_wifi_bridge_link_quality_ok': 1,
        'omr_wifi_bridge_link_last_sample_timestamp_seconds': T0,
    }
    assert set(v[0] for v in values.values()) == {'wlan0'}


def test_render_metrics_link_down(wm):
    sample = sample_of(loss=100.0, rtt=None, received=0, wifi=False, bps=None)
    sample['interface'] = 'odd"\\if'
    text = wm.render_metrics(sample, T0)
    values = parse_prometheus(text)
    assert sorted(values) == ['omr_wifi_bridge_link_last_sample_timestamp_seconds', 'omr_wifi_bridge_link_loss_ratio',
                              'omr_wifi_bridge_link_up']
    assert values['omr_wifi_bridge_link_up'][1] == 0
    assert values['omr_wifi_bridge_link_loss_ratio'][1] == 1
    assert 'interface="odd\\"\\\\if"' in text


def test_journal_line(wm):
    sample = sample_of(loss=0.0, rtt=12.34, bps=9.81e6, signal=-67)
    assert wm.journal_line(sample) == ('uplink wlan0: rtt 12.3 ms, loss 0.0 %, throughput 9.81 Mbit/s, signal -67 dBm, '
                                       'tx 72.2 Mbit/s, rx 65.0 Mbit/s')
    sample = sample_of(loss=100.0, rtt=None, received=0, wifi=False, throughput=False)
    sample['quality_ok'], sample['reasons'] = False, ['loss 100.0 % > 5 %', 'rtt not measured']
    assert wm.journal_line(sample) == '<4>uplink wlan0: rtt -, loss 100.0 %; quality poor: loss 100.0 % > 5 %, rtt not measured'


# ---------------------------------------------------------------------------
# whole runs
# ---------------------------------------------------------------------------

class FakeRunner(object):
    """Answers `iw` and `ping` with fixture text, records the commands."""

    def __init__(self, iw=None, ping=None, ping_rc=0, iw_rc=0):
        self.outputs = {'iw': (iw, iw_rc), 'ping': (ping, ping_rc)}
        self.calls = []

    def __call__(self, args, **kwargs):
        self.calls.append(list(args))
        assert kwargs['check'] is False and kwargs['timeout'] > 0
        text, returncode = self.outputs[args[0]]
        if text is None:
            raise OSError(2, 'No such file or directory', args[0])
        return subprocess.CompletedProcess(args, returncode, stdout=text, stderr='')


def read_metrics(path):
    with open(path, encoding='utf-8') as f:
        return parse_prometheus(f.read())


@needs_ping
def test_run_real_ping_on_lo(wm, tmp_path, capsys):
    metrics = tmp_path / 'textfile' / 'omr_wifi_bridge_link.prom'
    config = {'interface': 'lo', 'wireless': False, 'target': '127.0.0.1', 'ping_count': 3, 'ping_deadline': 3,
              'metrics_file': str(metrics)}
    sample = wm.run(config)
    assert sample['ping']['received'] == 3 and sample['ping']['loss_pct'] == 0.0
    assert sample['ping']['rtt_ms'] > 0
    values = read_metrics(str(metrics))
    assert values['omr_wifi_bridge_link_up'] == ('lo', 1)
    assert values['omr_wifi_bridge_link_loss_ratio'] == ('lo', 0)
    assert 0 < values['omr_wifi_bridge_link_rtt_seconds'][1] < 0.1
    assert abs(values['omr_wifi_bridge_link_last_sample_timestamp_seconds'][1] - time.time()) < 60
    for name in ('quality_ok', 'throughput_bits_per_second', 'signal_dbm', 'tx_bitrate_bits_per_second'):
        assert 'omr_wifi_bridge_link_' + name not in values
    assert stat.S_IMODE(os.stat(str(metrics)).st_mode) == 0o644
    assert os.listdir(str(metrics.parent)) == ['omr_wifi_bridge_link.prom']   # no temp file left
    out = capsys.readouterr().out
    assert re.match(r'^uplink lo: rtt [0-9.]+ ms, loss 0\.0 %\n$', out), out


@needs_ping
def test_run_real_ping_and_real_server_with_thresholds(wm, tmp_path, capsys, server):
    metrics = tmp_path / 'link.prom'
    config = {'interface': 'lo', 'target': '127.0.0.1', 'ping_count': 3, 'ping_interval': 0.1, 'source_address': '127.0.0.1',
              'throughput': {'enabled': True, 'port': server, 'seconds': 1},
              'thresholds': {'max_loss_pct': 5, 'max_rtt_ms': 0.0001, 'min_throughput_mbit': 1},
              'metrics_file': str(metrics)}
    sample = wm.run(config)
    assert sample['throughput']['error'] is None and sample['throughput']['bits_per_second'] > 1e6
    assert sample['quality_ok'] is False
    assert len(sample['reasons']) == 1 and sample['reasons'][0].startswith('rtt ')
    values = read_metrics(str(metrics))
    assert values['omr_wifi_bridge_link_quality_ok'] == ('lo', 0)
    assert values['omr_wifi_bridge_link_throughput_bits_per_second'][1] == pytest.approx(sample['throughput']['bits_per_second'])
    out = capsys.readouterr().out
    assert re.match(r'^<4>uplink lo: rtt [0-9.]+ ms, loss 0\.0 %, throughput [0-9.]+ Mbit/s; quality poor: rtt [0-9.]+ ms > 0\.0001 ms\n$',
                    out), out


def test_run_wireless_fake_runner(wm, tmp_path, capsys):
    runner = FakeRunner(iw=fixture('iw_link_connected.txt'), ping=fixture('ping_iputils_loss.txt'))
    metrics = tmp_path / 'link.prom'
    config = {'interface': 'wlan0', 'wireless': True, 'target': '192.0.2.1', 'metrics_file': str(metrics),
              'thresholds': {'max_loss_pct': 5, 'min_signal_dbm': -70}}
    sample = wm.run(config, runner=runner, now=T0)
    assert runner.calls == [['iw', 'dev', 'wlan0', 'link'],
                            ['ping', '-n', '-q', '-c', '10', '-i', '0.2', '-w', '5', '-I', 'wlan0', '192.0.2.1']]
    assert sample['quality_ok'] is False
    values = read_metrics(str(metrics))
    assert values['omr_wifi_bridge_link_signal_dbm'] == ('wlan0', -67)
    assert values['omr_wifi_bridge_link_tx_bitrate_bits_per_second'] == ('wlan0', 72200000)
    assert values['omr_wifi_bridge_link_rx_bitrate_bits_per_second'] == ('wlan0', 65000000)
    assert values['omr_wifi_bridge_link_loss_ratio'][1] == pytest.approx(0.411765)
    assert values['omr_wifi_bridge_link_last_sample_timestamp_seconds'][1] == T0
    assert capsys.readouterr().out == ('<4>uplink wlan0: rtt 0.05 ms, loss 41.2 %, signal -67 dBm, tx 72.2 Mbit/s, rx 65.0 Mbit/s; '
                                       'quality poor: loss 41.2 % > 5 %\n')


def test_run_link_down_skips_throughput(wm, tmp_path, capsys):
    runner = FakeRunner(iw=fixture('iw_link_not_connected.txt'), ping=fixture('ping_iputils_all_lost.txt'), ping_rc=1)
    metrics = tmp_path / 'link.prom'
    config = {'interface': 'wlan0', 'wireless': True, 'target': '192.0.2.1', 'metrics_file': str(metrics),
              'throughput': {'enabled': True, 'port': free_port(), 'seconds': 1}}
    sample = wm.run(config, runner=runner, now=T0)
    assert sample['throughput']['error'].startswith('skipped')
    assert sample['quality_ok'] is None
    values = read_metrics(str(metrics))
    assert sorted(values) == ['omr_wifi_bridge_link_last_sample_timestamp_seconds', 'omr_wifi_bridge_link_loss_ratio',
                              'omr_wifi_bridge_link_up']
    assert values['omr_wifi_bridge_link_up'][1] == 0
    assert capsys.readouterr().out == ('uplink wlan0: rtt -, loss 100.0 %, throughput failed: skipped, no ping reply from 192.0.2.1, '
                                       'wifi not connected\n')


def test_run_without_ping_and_iw(wm, tmp_path, capsys):
    runner = FakeRunner()
    config = {'interface': 'wlan0', 'wireless': True, 'target': '192.0.2.1', 'metrics_file': str(tmp_path / 'l.prom'),
              'thresholds': {'max_loss_pct': 5}}
    sample = wm.run(config, runner=runner, now=T0)
    assert sample['ping']['error'].startswith('ping: ')
    assert sample['reasons'] == ['loss not measured']
    values = read_metrics(str(tmp_path / 'l.prom'))
    assert values['omr_wifi_bridge_link_up'][1] == 0 and values['omr_wifi_bridge_link_quality_ok'][1] == 0
    out = capsys.readouterr().out
    assert out.startswith('<4>uplink wlan0: ping failed: ping: ') and 'iw failed: iw: ' in out


# ---------------------------------------------------------------------------
# main: config errors and exit codes
# ---------------------------------------------------------------------------

GOOD = {'interface': 'lo', 'target': '127.0.0.1', 'ping_count': 2, 'ping_interval': 0.1, 'ping_deadline': 2}


@pytest.mark.parametrize('change,key', [
    ({'interface': None}, 'interface'),
    ({'interface': 'a b'}, 'interface'),
    ({'target': None}, 'target'),
    ({'target': '2001:db8::1'}, 'target'),
    ({'wireless': 'yes'}, 'wireless'),
    ({'ping_count': 0}, 'ping_count'),
    ({'ping_count': 2.5}, 'ping_count'),
    ({'ping_interval': 'fast'}, 'ping_interval'),
    ({'ping_deadline': True}, 'ping_deadline'),
    ({'source_address': 'eth0'}, 'source_address'),
    ({'throughput': {'enabled': 1}}, 'throughput.enabled'),
    ({'throughput': {'enabled': True, 'port': 70000}}, 'throughput.port'),
    ({'throughput': {'enabled': True, 'seconds': 0}}, 'throughput.seconds'),
    ({'throughput': {'direction': 'upload'}}, 'throughput.direction'),
    ({'thresholds': {'max_rtt': 3}}, 'thresholds.max_rtt'),
    ({'thresholds': {'max_loss_pct': '5'}}, 'thresholds.max_loss_pct'),
    ({'thresholds': {'min_signal_dbm': '-70'}}, 'thresholds.min_signal_dbm'),
    ({'thresholds': {'min_throughput_mbit': False}}, 'thresholds.min_throughput_mbit'),
    ({'thresholds': [1]}, 'thresholds'),
    ({'metrics_file': ''}, 'metrics_file'),
    ({'targets': '127.0.0.1'}, 'targets'),
])
def test_main_bad_config_exits_2_naming_the_key(wm, tmp_path, capsys, change, key):
    conf = dict(GOOD, metrics_file=str(tmp_path / 'm.prom'))
    conf.update(change)
    conf = {k: v for k, v in conf.items() if v is not None}
    path = tmp_path / 'monitor.json'
    path.write_text(json.dumps(conf))
    assert wm.main(['--config', str(path)]) == 2
    err = capsys.readouterr().err
    assert re.search(r'config %s: %s\b' % (re.escape(str(path)), re.escape(key)), err), err
    assert not (tmp_path / 'm.prom').exists()


def test_validate_config_defaults_and_role_shape(wm):
    """The shape roles/wifi_bridge/tasks/monitor.yml writes, with the throughput sample off (0 seconds)."""
    conf = {'interface': 'eth1', 'wireless': False, 'target': '203.0.113.7', 'ping_count': 10,
            'throughput': {'enabled': False, 'port': 65432, 'seconds': 0}, 'thresholds': {},
            'metrics_file': '/var/lib/prometheus/node-exporter/omr_wifi_bridge_link.prom'}
    assert wm.validate_config(conf) == dict(conf, ping_interval=0.2, ping_deadline=5, source_address=None)
    assert wm.validate_config({'interface': 'wlan0', 'target': '203.0.113.7', 'thresholds': {'max_rtt_ms': None}}) == {
        'interface': 'wlan0', 'wireless': False, 'target': '203.0.113.7', 'ping_count': 10, 'ping_interval': 0.2,
        'ping_deadline': 5, 'source_address': None, 'throughput': {'enabled': False, 'port': 65432, 'seconds': 2},
        'thresholds': {}, 'metrics_file': '/var/lib/prometheus/node-exporter/omr_wifi_bridge_link.prom'}


def test_run_wired_with_signal_threshold_fails_as_not_measured(wm, tmp_path, capsys):
    runner = FakeRunner(ping=fixture('ping_iputils.txt'))
    config = {'interface': 'eth1', 'target': '192.0.2.1', 'metrics_file': str(tmp_path / 'l.prom'),
              'thresholds': {'max_loss_pct': 5, 'min_signal_dbm': -75}}
    sample = wm.run(config, runner=runner, now=T0)
    assert [c[0] for c in runner.calls] == ['ping']
    assert (sample['quality_ok'], sample['reasons']) == (False, ['signal not measured'])
    assert capsys.readouterr().out == '<4>uplink eth1: rtt 0.05 ms, loss 0.0 %; quality poor: signal not measured\n'


def test_main_unreadable_or_invalid_config(wm, tmp_path, capsys):
    assert wm.main(['--config', str(tmp_path / 'missing.json')]) == 2
    assert 'cannot read' in capsys.readouterr().err
    (tmp_path / 'bad.json').write_text('{"interface": ')
    assert wm.main(['--config', str(tmp_path / 'bad.json')]) == 2
    assert 'not valid JSON' in capsys.readouterr().err


@needs_ping
def test_main_runs_as_a_script(tmp_path):
    """python3 omr-wifi-monitor.py --config FILE, as the systemd unit runs it."""
    metrics = tmp_path / 'm.prom'
    path = tmp_path / 'monitor.json'
    path.write_text(json.dumps(dict(GOOD, metrics_file=str(metrics))))
    proc = subprocess.run([sys.executable, SCRIPT, '--config', str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('uplink lo: rtt ') and proc.stderr == ''
    assert read_metrics(str(metrics))['omr_wifi_bridge_link_up'] == ('lo', 1)


def test_main_metrics_not_writable_exits_1(wm, tmp_path, capsys, monkeypatch):
    (tmp_path / 'file').write_text('')   # a file where the metrics directory should be
    path = tmp_path / 'monitor.json'
    path.write_text(json.dumps({'interface': 'lo', 'target': '127.0.0.1', 'metrics_file': str(tmp_path / 'file' / 'm.prom')}))
    runner = FakeRunner(ping=fixture('ping_iputils.txt'))
    original = wm.run
    monkeypatch.setattr(wm, 'run', lambda config: original(config, runner=runner))
    assert wm.main(['--config', str(path)]) == 1
    assert 'cannot write the metrics file' in capsys.readouterr().err


def test_script_header(wm):
    with open(SCRIPT, encoding='utf-8') as f:
        text = f.read()
    assert text.startswith('# -*- coding: utf-8 -*-\n# Copyright: omr.deploy contributors\n')
    assert 'from __future__ import absolute_import, division, print_function\n' in text
    assert all(len(line) <= 160 and line == line.rstrip() for line in text.splitlines())
    assert wm.DEFAULT_CONFIG == '/etc/omr-wifi-bridge/monitor.json'
    assert wm.DEFAULT_METRICS_FILE == '/var/lib/prometheus/node-exporter/omr_wifi_bridge_link.prom'
