# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-wifi-monitor: one quality sample of a WiFi bridge's uplink towards the OpenMPTCProuter VPS.

Standard library only. A systemd oneshot service runs it from a timer; every run takes one sample:

  latency, loss   `ping -n -q -c COUNT -i INTERVAL -w DEADLINE -I INTERFACE TARGET` (iputils; the
                  busybox summary is understood too). With -w, iputils stops after COUNT replies or
                  at DEADLINE, so it may send more than COUNT probes on a lossy link.
  radio           `iw dev INTERFACE link` when "wireless" is true: SSID, frequency, signal, bitrates.
  throughput      optional: a short download from the VPS's omr-mptcp-speedtest server
                  (roles/vps/files/omr-mptcp-speedtest.py) over plain TCP: one request line
                  {"direction": "download", "seconds": N}, then read until the server closes.
                  An answer starting with "{" is the server's error line. Skipped when no ping came back.

Outputs:
  - a Prometheus text file for node-exporter's textfile collector, replaced atomically;
  - one line on stdout (the journal), prefixed with <4> (warning) when a configured threshold fails.

Config (JSON, --config, default /etc/omr-wifi-bridge/monitor.json):
  interface (required), target (required, IPv4 of the VPS), wireless (false), ping_count (10),
  ping_interval (0.2), ping_deadline (5), source_address (null: IPv4 to bind the throughput socket to),
  throughput {enabled (false), port (65432), seconds (2)},
  thresholds {max_loss_pct, max_rtt_ms, min_signal_dbm, min_throughput_mbit} (each optional),
  metrics_file (/var/lib/prometheus/node-exporter/omr_wifi_bridge_link.prom).

Exit status: 0 after a sample, also when the link is down (that is a measurement); 1 when the
metrics file cannot be written; 2 on a bad config, with the offending key named on stderr.

Run it as `python3 omr-wifi-monitor.py --config FILE`. It has no shebang on purpose: ansible-test
sanity only accepts `#!/usr/bin/env python` outside modules, and Debian has no `python` command by default.
"""

from __future__ import absolute_import, division, print_function

import argparse
import errno
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import time

# The collection's shared modules: installed beside this file (Python looks there first), or in
# plugins/module_utils of a checkout. No __pycache__ beside the installed copies.
sys.dont_write_bytecode = True
sys.path.insert(1, os.path.join(os.path.dirname(os.path.realpath(__file__)), '..', '..', '..', 'plugins', 'module_utils'))
from _host import parse_ping, write_atomic  # noqa: E402  pylint: disable=wrong-import-position

DEFAULT_CONFIG = '/etc/omr-wifi-bridge/monitor.json'
DEFAULT_METRICS_FILE = '/var/lib/prometheus/node-exporter/omr_wifi_bridge_link.prom'
DEFAULT_SPEEDTEST_PORT = 65432
IW_TIMEOUT = 10
ERROR_LINE_LIMIT = 4096
NO_DATA = 'server closed the connection without data (is this address in its --allow?)'

THRESHOLD_KEYS = ('max_loss_pct', 'max_rtt_ms', 'min_signal_dbm', 'min_throughput_mbit')
TOP_KEYS = ('interface', 'wireless', 'target', 'ping_count', 'ping_interval', 'ping_deadline',
            'source_address', 'throughput', 'thresholds', 'metrics_file')
THROUGHPUT_KEYS = ('enabled', 'port', 'seconds')


class ConfigError(Exception):
    """A bad configuration value; the message names the key."""


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(conf, key, default, name=None, integer=False, minimum=None, above=None, maximum=None):
    name = name or key
    value = conf.get(key, default)
    if value is None:
        value = default
    if integer:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError('%s must be an integer, not %s' % (name, json.dumps(value)))
    elif not _is_number(value):
        raise ConfigError('%s must be a number, not %s' % (name, json.dumps(value)))
    if minimum is not None and value < minimum:
        raise ConfigError('%s must be at least %g, not %s' % (name, minimum, json.dumps(value)))
    if above is not None and value <= above:
        raise ConfigError('%s must be above %g, not %s' % (name, above, json.dumps(value)))
    if maximum is not None and value > maximum:
        raise ConfigError('%s must be at most %g, not %s' % (name, maximum, json.dumps(value)))
    return value


def _boolean(conf, key, default, name=None):
    value = conf.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, bool):
        raise ConfigError('%s must be true or false, not %s' % (name or key, json.dumps(value)))
    return value


def _ipv4(value, name):
    if not isinstance(value, str):
        raise ConfigError('%s must be an IPv4 address, not %s' % (name, json.dumps(value)))
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ConfigError('%s must be an IPv4 address, not %s' % (name, json.dumps(value)))


def _unknown(conf, known, prefix=''):
    extra = sorted(k for k in conf if k not in known)
    if extra:
        raise ConfigError('%s%s: unknown key (known: %s)' % (prefix, extra[0], ', '.join(known)))


def _section(conf, key, allowed):
    """An optional nested object of the config: {} when absent, only `allowed` keys."""
    section = conf.get(key)
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError('%s must be an object, not %s' % (key, json.dumps(section)))
    _unknown(section, allowed, key + '.')
    return section


def validate_config(conf):
    """Check a config dict and fill in the defaults -> a new dict. Raises ConfigError naming the key."""
    if not isinstance(conf, dict):
        raise ConfigError('the config must be a JSON object')
    _unknown(conf, TOP_KEYS)
    out = {}
    interface = conf.get('interface')
    if not isinstance(interface, str) or not re.match(r'^[^\s/:"\\]{1,15}$', interface):
        raise ConfigError('interface must be a network device name (1-15 characters, no blanks, "/" or ":"), not %s'
                          % json.dumps(interface))
    out['interface'] = interface
    out['wireless'] = _boolean(conf, 'wireless', False)
    if conf.get('target') is None:
        raise ConfigError('target is required: the IPv4 address of the OMR VPS')
    out['target'] = _ipv4(conf['target'], 'target')
    out['ping_count'] = _number(conf, 'ping_count', 10, integer=True, minimum=1, maximum=10000)
    out['ping_interval'] = _number(conf, 'ping_interval', 0.2, minimum=0.002, maximum=60)
    out['ping_deadline'] = _number(conf, 'ping_deadline', 5, integer=True, minimum=1, maximum=3600)
    source = conf.get('source_address')
    out['source_address'] = None if source in (None, '') else _ipv4(source, 'source_address')

    throughput = _section(conf, 'throughput', THROUGHPUT_KEYS)
    enabled = _boolean(throughput, 'enabled', False, 'throughput.enabled')
    out['throughput'] = {
        'enabled': enabled,
        'port': _number(throughput, 'port', DEFAULT_SPEEDTEST_PORT, 'throughput.port', integer=True, minimum=1, maximum=65535),
        # 0 seconds is fine while the sample is off.
        'seconds': _number(throughput, 'seconds', 2, 'throughput.seconds', above=0 if enabled else None,
                           minimum=None if enabled else 0, maximum=60),
    }

    thresholds = _section(conf, 'thresholds', THRESHOLD_KEYS)
    out['thresholds'] = {}
    for key in THRESHOLD_KEYS:
        if thresholds.get(key) is not None:
            out['thresholds'][key] = _number(thresholds, key, None, 'thresholds.' + key)

    metrics_file = conf.get('metrics_file')
    if metrics_file is None:
        metrics_file = DEFAULT_METRICS_FILE
    if not isinstance(metrics_file, str) or not metrics_file.strip():
        raise ConfigError('metrics_file must be a file path, not %s' % json.dumps(metrics_file))
    out['metrics_file'] = metrics_file
    return out


def load_config(path):
    """Read and validate the JSON config file. Raises ConfigError."""
    try:
        with open(path, 'r', encoding='utf-8') as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        raise ConfigError('cannot read %s: %s' % (path, exc))
    try:
        conf = json.loads(text)
    except ValueError as exc:
        raise ConfigError('%s is not valid JSON: %s' % (path, exc))
    return validate_config(conf)


# ---------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------

def _unescape_ssid(raw):
    """iw prints unprintable SSID bytes (and leading/trailing blanks) as \\xNN."""
    data = bytearray()
    pos = 0
    for match in re.finditer(r'\\x([0-9a-fA-F]{2})', raw):
        data += raw[pos:match.start()].encode('utf-8')
        data.append(int(match.group(1), 16))
        pos = match.end()
    data += raw[pos:].encode('utf-8')
    return bytes(data).decode('utf-8', 'replace')


def _bitrate(value):
    match = re.match(r'\s*([0-9.]+)\s*MBit/s', value)
    return int(round(float(match.group(1)) * 1e6)) if match else None


def parse_iw_link(text):
    """`iw dev X link` -> dict(connected, bssid, ssid, freq_mhz, signal_dbm, rx_bitrate_bps, tx_bitrate_bps).

    Unknown values are None. Understands the iw 5.x and 6.x layouts (freq "2437" or "5500.0",
    "bss flags" lines, MLO links indented by two tabs: the first link's values are taken).
    """
    result = {'connected': False, 'bssid': None, 'ssid': None, 'freq_mhz': None, 'signal_dbm': None,
              'rx_bitrate_bps': None, 'tx_bitrate_bps': None}
    for line in (text or '').splitlines():
        head = re.match(r'^(?:Connected to|Joined IBSS) ([0-9a-fA-F:]{17})', line)
        if head:
            result['connected'] = True
            result['bssid'] = head.group(1).lower()
            continue
        if ':' not in line or not line[:1].isspace():
            continue
        key, value = line.strip().split(':', 1)
        value = value.strip()
        if key == 'SSID' and result['ssid'] is None:
            result['ssid'] = _unescape_ssid(line.split('SSID: ', 1)[1] if 'SSID: ' in line else value)
        elif key == 'freq' and result['freq_mhz'] is None:
            try:
                freq = float(value)
            except ValueError:
                continue
            result['freq_mhz'] = int(freq) if freq.is_integer() else freq
        elif key == 'signal' and result['signal_dbm'] is None:
            match = re.match(r'(-?\d+)', value)
            if match:
                result['signal_dbm'] = int(match.group(1))
        elif key == 'rx bitrate' and result['rx_bitrate_bps'] is None:
            result['rx_bitrate_bps'] = _bitrate(value)
        elif key == 'tx bitrate' and result['tx_bitrate_bps'] is None:
            result['tx_bitrate_bps'] = _bitrate(value)
    return result


# ---------------------------------------------------------------------------
# Throughput
# ---------------------------------------------------------------------------

def throughput_sample(host, port, seconds, source_address=None):
    """Download for `seconds` from an omr-mptcp-speedtest server -> dict(bits_per_second, bytes, seconds, error).

    bits_per_second = bytes * 8 / elapsed, elapsed from the established connection to the server's
    close; None (with error set) when the server refused, closed without data or the transfer failed.
    """
    result = {'bits_per_second': None, 'bytes': 0, 'seconds': None, 'error': None}
    timeout = seconds + 5
    try:
        sock = socket.create_connection((host, port), timeout=timeout,
                                        source_address=(source_address, 0) if source_address else None)
    except OSError as exc:
        result['error'] = 'cannot connect to %s port %d: %s' % (host, port, exc)
        return result
    head = bytearray()
    received = 0
    try:
        started = time.monotonic()
        request = {'direction': 'download', 'seconds': seconds}
        sock.sendall(json.dumps(request, sort_keys=True).encode('ascii') + b'\n')
        buf = bytearray(256 * 1024)
        while True:
            count = sock.recv_into(buf)
            if not count:
                break
            if received == 0 and buf[:1] == b'{':
                head += buf[:count]
            elif head and len(head) < ERROR_LINE_LIMIT:
                head += buf[:min(count, ERROR_LINE_LIMIT - len(head))]
            received += count
        elapsed = time.monotonic() - started
    except socket.timeout:
        result['bytes'] = received
        result['error'] = 'timed out after %g seconds (%d bytes received)' % (timeout, received)
        return result
    except OSError as exc:
        result['bytes'] = received
        if received == 0 and exc.errno in (errno.ECONNRESET, errno.EPIPE):
            # A client outside the server's --allow is closed at once; our unread request turns that into a reset.
            result['error'] = NO_DATA + ' (%s)' % exc.strerror
        else:
            result['error'] = 'transfer failed after %d bytes: %s' % (received, exc)
        return result
    finally:
        sock.close()
    result['bytes'] = received
    result['seconds'] = elapsed
    if head:
        line = bytes(head).split(b'\n', 1)[0].decode('utf-8', 'replace')
        try:
            answer = json.loads(line)
            error = answer.get('error') if isinstance(answer, dict) else None
        except ValueError:
            error = None
        result['error'] = 'server refused: %s' % (error or line.strip())
        return result
    if received == 0:
        result['error'] = NO_DATA
        return result
    if elapsed <= 0:
        result['error'] = 'no time elapsed'
        return result
    result['bits_per_second'] = received * 8.0 / elapsed
    return result


# ---------------------------------------------------------------------------
# Evaluation and output
# ---------------------------------------------------------------------------

def _fmt_ms(value):
    if value >= 100:
        return '%.0f' % value
    if value >= 1:
        return '%.1f' % value
    return '%.2f' % value


def evaluate(sample, thresholds):
    """Check a sample against the thresholds -> (ok, reasons). A missing measurement fails its threshold."""
    reasons = []
    thresholds = thresholds or {}
    ping = sample.get('ping') or {}
    wifi = sample.get('wifi') or {}
    throughput = sample.get('throughput') or {}
    limit = thresholds.get('max_loss_pct')
    if limit is not None:
        loss = ping.get('loss_pct')
        if loss is None:
            reasons.append('loss not measured')
        elif loss > limit:
            reasons.append('loss %.1f %% > %g %%' % (loss, limit))
    limit = thresholds.get('max_rtt_ms')
    if limit is not None:
        rtt = ping.get('rtt_ms')
        if rtt is None:
            reasons.append('rtt not measured')
        elif rtt > limit:
            reasons.append('rtt %s ms > %g ms' % (_fmt_ms(rtt), limit))
    limit = thresholds.get('min_signal_dbm')
    if limit is not None:
        signal_dbm = wifi.get('signal_dbm')
        if signal_dbm is None:
            reasons.append('signal not measured')
        elif signal_dbm < limit:
            reasons.append('signal %d dBm < %g dBm' % (signal_dbm, limit))
    limit = thresholds.get('min_throughput_mbit')
    if limit is not None:
        bps = throughput.get('bits_per_second')
        if bps is None:
            reasons.append('throughput not measured')
        elif bps / 1e6 < limit:
            reasons.append('throughput %.2f Mbit/s < %g Mbit/s' % (bps / 1e6, limit))
    return not reasons, reasons


METRICS = (
    ('omr_wifi_bridge_link_up', 'gauge', '1 if the uplink answered at least one ping to the VPS in the last sample.'),
    ('omr_wifi_bridge_link_rtt_seconds', 'gauge', 'Average ping round-trip time to the VPS in the last sample.'),
    ('omr_wifi_bridge_link_loss_ratio', 'gauge', 'Ping loss to the VPS in the last sample (0 to 1).'),
    ('omr_wifi_bridge_link_throughput_bits_per_second', 'gauge',
     'Download throughput from the VPS speed-test server in the last sample.'),
    ('omr_wifi_bridge_link_signal_dbm', 'gauge', 'WiFi signal of the uplink in dBm (iw dev link).'),
    ('omr_wifi_bridge_link_tx_bitrate_bits_per_second', 'gauge', 'WiFi transmit bitrate of the uplink (iw dev link).'),
    ('omr_wifi_bridge_link_rx_bitrate_bits_per_second', 'gauge', 'WiFi receive bitrate of the uplink (iw dev link).'),
    ('omr_wifi_bridge_link_quality_ok', 'gauge', '1 if the last sample met every configured threshold.'),
    ('omr_wifi_bridge_link_last_sample_timestamp_seconds', 'gauge', 'Unix time of the last sample.'),
)


def _label(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _value(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def render_metrics(sample, now):
    """The sample as Prometheus text exposition format (HELP/TYPE, one labelled series per metric)."""
    ping = sample.get('ping') or {}
    wifi = sample.get('wifi') or {}
    throughput = sample.get('throughput') or {}
    values = {
        'omr_wifi_bridge_link_up': 1 if (ping.get('received') or 0) > 0 else 0,
        'omr_wifi_bridge_link_rtt_seconds': None if ping.get('rtt_ms') is None else ping['rtt_ms'] / 1000.0,
        'omr_wifi_bridge_link_loss_ratio': None if ping.get('loss_pct') is None else min(1.0, max(0.0, ping['loss_pct'] / 100.0)),
        'omr_wifi_bridge_link_throughput_bits_per_second': throughput.get('bits_per_second'),
        'omr_wifi_bridge_link_signal_dbm': wifi.get('signal_dbm'),
        'omr_wifi_bridge_link_tx_bitrate_bits_per_second': wifi.get('tx_bitrate_bps'),
        'omr_wifi_bridge_link_rx_bitrate_bits_per_second': wifi.get('rx_bitrate_bps'),
        'omr_wifi_bridge_link_quality_ok': sample.get('quality_ok'),
        'omr_wifi_bridge_link_last_sample_timestamp_seconds': round(float(now), 3),
    }
    labels = '{interface="%s"}' % _label(sample.get('interface', ''))
    lines = []
    for name, kind, text in METRICS:
        if values[name] is None:
            continue
        lines.append('# HELP %s %s' % (name, text))
        lines.append('# TYPE %s %s' % (name, kind))
        lines.append('%s%s %s' % (name, labels, _value(values[name])))
    return '\n'.join(lines) + '\n'


def journal_line(sample):
    """One line for the journal; <4> (warning) in front when a threshold failed."""
    ping = sample.get('ping') or {}
    parts = []
    if ping.get('transmitted') is None:
        parts.append('ping failed: %s' % (ping.get('error') or 'no statistics'))
    else:
        parts.append('rtt -' if ping.get('rtt_ms') is None else 'rtt %s ms' % _fmt_ms(ping['rtt_ms']))
        parts.append('loss %.1f %%' % ping['loss_pct'])
    throughput = sample.get('throughput')
    if throughput:
        if throughput.get('bits_per_second') is not None:
            parts.append('throughput %.2f Mbit/s' % (throughput['bits_per_second'] / 1e6))
        else:
            parts.append('throughput failed: %s' % throughput.get('error'))
    wifi = sample.get('wifi')
    if wifi:
        if wifi.get('error'):
            parts.append('iw failed: %s' % wifi['error'])
        elif not wifi.get('connected'):
            parts.append('wifi not connected')
        else:
            if wifi.get('signal_dbm') is not None:
                parts.append('signal %d dBm' % wifi['signal_dbm'])
            if wifi.get('tx_bitrate_bps') is not None:
                parts.append('tx %.1f Mbit/s' % (wifi['tx_bitrate_bps'] / 1e6))
            if wifi.get('rx_bitrate_bps') is not None:
                parts.append('rx %.1f Mbit/s' % (wifi['rx_bitrate_bps'] / 1e6))
    line = 'uplink %s: %s' % (sample.get('interface'), ', '.join(parts))
    if sample.get('quality_ok') is False:
        line = '<4>%s; quality poor: %s' % (line, ', '.join(sample.get('reasons') or []))
    return line


# ---------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------

def _first_line(text):
    for line in (text or '').splitlines():
        if line.strip():
            return line.strip()
    return ''


def _command(runner, args, timeout):
    """Run a command -> (returncode, stdout, error text or None)."""
    env = dict(os.environ, LC_ALL='C')
    try:
        proc = runner(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                      timeout=timeout, env=env, check=False)
    except (OSError, ValueError) as exc:
        return None, '', '%s: %s' % (args[0], exc)
    except subprocess.TimeoutExpired:
        return None, '', '%s: no answer within %g seconds' % (args[0], timeout)
    error = None
    if proc.returncode != 0:
        error = _first_line(proc.stderr) or '%s exited with status %s' % (args[0], proc.returncode)
    return proc.returncode, proc.stdout or '', error


def measure_ping(config, runner):
    args = ['ping', '-n', '-q', '-c', str(config['ping_count']), '-i', '%g' % config['ping_interval'],
            '-w', str(config['ping_deadline']), '-I', config['interface'], config['target']]
    returncode, stdout, error = _command(runner, args, config['ping_deadline'] + 10)
    result = parse_ping(stdout)
    # ping exits 1 when replies are missing: that is a measurement, not an error.
    result['error'] = None if result['transmitted'] is not None else (error or 'ping printed no statistics')
    result['exit_status'] = returncode
    return result


def measure_wifi(config, runner):
    returncode, stdout, error = _command(runner, ['iw', 'dev', config['interface'], 'link'], IW_TIMEOUT)
    result = parse_iw_link(stdout)
    result['error'] = error
    result['exit_status'] = returncode
    return result


def run(config, runner=subprocess.run, now=None):
    """Take one sample, write the metrics file and print the journal line -> the sample dict.

    Raises ConfigError on a bad config and OSError when the metrics file cannot be written.
    """
    config = validate_config(config)
    wifi = measure_wifi(config, runner) if config['wireless'] else None
    ping = measure_ping(config, runner)
    sample = {'interface': config['interface'], 'target': config['target'], 'ping': ping, 'wifi': wifi,
              'throughput': None, 'quality_ok': None, 'reasons': []}
    if config['throughput']['enabled']:
        if ping['received'] == 0:
            sample['throughput'] = {'bits_per_second': None, 'bytes': 0, 'seconds': None,
                                    'error': 'skipped, no ping reply from %s' % config['target']}
        else:
            sample['throughput'] = throughput_sample(config['target'], config['throughput']['port'],
                                                     config['throughput']['seconds'], config['source_address'])
    if config['thresholds']:
        sample['quality_ok'], sample['reasons'] = evaluate(sample, config['thresholds'])
    sample['timestamp'] = time.time() if now is None else now
    write_atomic(config['metrics_file'], render_metrics(sample, sample['timestamp']), 0o644, 0o755)
    sample['journal'] = journal_line(sample)
    print(sample['journal'])
    sys.stdout.flush()
    return sample


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='omr-wifi-monitor',
        description='Sample the quality of a WiFi bridge uplink towards the OMR VPS once; '
                    'write Prometheus metrics and one journal line.')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='JSON config file (default %s)' % DEFAULT_CONFIG)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(args.config)
        run(config)
    except ConfigError as exc:
        sys.stderr.write('omr-wifi-monitor: config %s: %s\n' % (args.config, exc))
        return 2
    except (IOError, OSError) as exc:
        sys.stderr.write('omr-wifi-monitor: cannot write the metrics file: %s\n' % exc)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
