# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-captive-login: captive-portal auto-login for an OpenMPTCProuter WiFi bridge.

Standard library only. One run checks the connection once and, if the captive portal has
taken it back, logs in once; a systemd timer starts it (Type=oneshot service) every
`interval` seconds, so its stdout goes to the journal.

One run:
  check   GET check_url without following redirects. Exactly check_status (default 204)
          means online: nothing is printed unless the last run was offline ("session active").
  expired any other answer, or a network error, prints "session expired: <reason>".
  limit   if the last login attempt (state file) is less than `interval` seconds old
          (1 s slack), prints "login skipped: ..." and stops, so it never loops faster than
          the timer, even when started by hand.
  login   one request to login_url (POST form or GET query with `fields`, no redirects
          followed), then the check again: "logged in via ..." or, with the systemd priority
          prefix <3> (err), "login failed via ...". Field values (credentials) are never printed.

Configuration, a JSON object (default /etc/omr-wifi-bridge/portal.json, mode 0600):
  check_url, check_status (204), login_url, method ("POST" or "GET"), fields ({name: value}),
  timeout (5 s per HTTP request), interval (60 s), source_address (optional local address to
  bind to), metrics_file, state_file. A missing or invalid key exits with status 2.

The state file (JSON) keeps the counters and the time of the last attempt between runs; the
metrics file is for the node_exporter textfile collector. Both are replaced atomically.
Every other outcome, a failed login included, exits 0: the timer keeps running and the
failure is in the journal and the metrics.

Run it as `python3 omr-captive-login.py --config FILE` (for example ExecStart=/usr/bin/python3 ...
in a systemd unit). It has no shebang on purpose: ansible-test sanity only accepts
`#!/usr/bin/env python` outside modules, and Debian has no `python` command by default.
"""

from __future__ import absolute_import, division, print_function

import argparse
import fcntl
import http.client
import ipaddress
import json
import os
import socket
import ssl
import sys
import time

from urllib.parse import urlencode, urlsplit

# The collection's shared modules: installed beside this file (Python looks there first), or in
# plugins/module_utils of a checkout. No __pycache__ beside the installed copies.
sys.dont_write_bytecode = True
sys.path.insert(1, os.path.join(os.path.dirname(os.path.realpath(__file__)), '..', '..', '..', 'plugins', 'module_utils'))
from _host import write_atomic  # noqa: E402  pylint: disable=wrong-import-position

DEFAULT_CONFIG = '/etc/omr-wifi-bridge/portal.json'
DEFAULT_METRICS_FILE = '/var/lib/prometheus/node-exporter/omr_wifi_bridge_portal.prom'
DEFAULT_STATE_FILE = '/var/lib/omr-wifi-bridge/portal.json'
USER_AGENT = 'omr-captive-login/1'
BODY_LIMIT = 65536        # bytes of an answer read (and thrown away) before closing
RATE_SLACK = 1.0          # seconds: a timer firing a little early still gets its attempt

CONFIG_KEYS = ('check_url', 'check_status', 'login_url', 'method', 'fields', 'timeout', 'interval',
               'source_address', 'metrics_file', 'state_file')

STATE_DEFAULTS = {
    'last_check': None,        # time of the last check (any outcome)
    'last_attempt': None,      # time of the last login attempt
    'last_success': None,      # time of the last successful login
    'last_login_ok': None,     # result of the last login attempt (None: no attempt yet)
    'logins_success': 0,
    'logins_failure': 0,
    'sessions_expired': 0,     # runs that found the connection offline
    'online': None,            # result of the last check (None: never checked)
    'last_error': None,        # why the last login attempt failed (None if it succeeded)
}


def log(msg):
    sys.stdout.write(msg + '\n')
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

class ConfigError(Exception):
    """A missing or invalid configuration key (or an unreadable file)."""


def _url(config, key):
    value = config.get(key)
    if value is None:
        raise ConfigError('%s: missing' % key)
    if not isinstance(value, str) or not value:
        raise ConfigError('%s: must be a non-empty string' % key)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ConfigError('%s: invalid URL: %s' % (key, exc))
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise ConfigError('%s: must be an http:// or https:// URL with a host' % key)
    if parts.username is not None or parts.password is not None:
        raise ConfigError('%s: credentials in the URL are not supported, put them in fields' % key)
    if port == 0:
        raise ConfigError('%s: invalid port 0' % key)
    return value


def _number(config, key, default, integer=False):
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise ConfigError('%s: must be %s' % (key, 'an integer' if integer else 'a number'))
    return value


def _path(config, key, default):
    value = config.get(key, default)
    if not isinstance(value, str) or not os.path.isabs(value) or value.endswith('/'):
        raise ConfigError('%s: must be an absolute file path' % key)
    return value


def validate_config(raw):
    """Check a decoded configuration object -> dict with every key, defaults filled in."""
    if not isinstance(raw, dict):
        raise ConfigError('the configuration must be a JSON object')
    unknown = sorted(k for k in raw if k not in CONFIG_KEYS)
    if unknown:
        raise ConfigError('%s: unknown key' % unknown[0])
    config = {'check_url': _url(raw, 'check_url')}
    config['check_status'] = _number(raw, 'check_status', 204, integer=True)
    if not 100 <= config['check_status'] <= 599:
        raise ConfigError('check_status: must be an HTTP status between 100 and 599')
    config['login_url'] = _url(raw, 'login_url')
    method = raw.get('method', 'POST')
    if not isinstance(method, str) or method.upper() not in ('POST', 'GET'):
        raise ConfigError('method: must be "POST" or "GET"')
    config['method'] = method.upper()
    fields = raw.get('fields', {})
    if not isinstance(fields, dict):
        raise ConfigError('fields: must be an object of form fields')
    for name, value in fields.items():
        if not name:
            raise ConfigError('fields: empty field name')
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            # the value itself is never shown: it may be a password
            raise ConfigError('fields: %s: must be a string or a number' % name)
    config['fields'] = dict((name, str(value)) for name, value in fields.items())
    for key, default in (('timeout', 5), ('interval', 60)):
        config[key] = _number(raw, key, default)
        if config[key] <= 0:
            raise ConfigError('%s: must be above 0' % key)
    source = raw.get('source_address')
    if source is not None:
        try:
            if not isinstance(source, str):
                raise ValueError(source)
            ipaddress.ip_address(source)
        except ValueError:
            raise ConfigError('source_address: must be an IP address')
    config['source_address'] = source
    config['metrics_file'] = _path(raw, 'metrics_file', DEFAULT_METRICS_FILE)
    config['state_file'] = _path(raw, 'state_file', DEFAULT_STATE_FILE)
    return config


def load_config(path):
    """Read and validate the JSON configuration file; ConfigError says which key is wrong."""
    try:
        with open(path, encoding='utf-8') as f:
            raw = json.load(f)
    except OSError as exc:
        raise ConfigError('cannot read: %s' % (exc.strerror or exc))
    except ValueError as exc:
        raise ConfigError('not valid JSON: %s' % exc)
    return validate_config(raw)


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

def describe_error(exc):
    """A short journal-friendly reason for a failed request (never contains request data)."""
    if isinstance(exc, socket.timeout):
        return 'timed out'
    if isinstance(exc, ssl.SSLError):
        return 'TLS error: %s' % (getattr(exc, 'verify_message', None) or exc.reason or exc)
    if isinstance(exc, socket.gaierror):
        return 'cannot resolve host: %s' % exc.strerror
    if isinstance(exc, http.client.HTTPException):
        return 'bad HTTP answer: %s' % (str(exc) or type(exc).__name__)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def http_request(config, method, url, query=None, body=None):
    """One HTTP request, redirects not followed -> (status, Location header or None).

    The connection is bound to config['source_address'] if set; network errors raise
    OSError or http.client.HTTPException.
    """
    parts = urlsplit(url)
    source = (config['source_address'], 0) if config['source_address'] else None
    if parts.scheme == 'https':
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=config['timeout'], source_address=source,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=config['timeout'], source_address=source)
    target = parts.path or '/'
    if parts.query or query:
        target += '?' + '&'.join(q for q in (parts.query, query) if q)
    headers = {'User-Agent': USER_AGENT, 'Cache-Control': 'no-cache', 'Connection': 'close', 'Accept': '*/*'}
    if body is not None:
        headers['Content-Type'] = 'application/x-www-form-urlencoded'
    try:
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read(BODY_LIMIT)
        return resp.status, resp.getheader('Location')
    finally:
        conn.close()


def check(config):
    """Connectivity check -> (online, reason); reason says why not online (None when online)."""
    try:
        status, location = http_request(config, 'GET', config['check_url'])
    except (OSError, http.client.HTTPException) as exc:
        return False, describe_error(exc)
    if status == config['check_status']:
        return True, None
    if 300 <= status < 400:
        return False, 'redirected to %s' % (location or '(no Location header)')
    return False, 'HTTP %d' % status


def login(config):
    """One login request -> (HTTP status or None, error or None). Any status counts as an answer."""
    data = urlencode(config['fields'])
    try:
        if config['method'] == 'GET':
            status = http_request(config, 'GET', config['login_url'], query=data)[0]
        else:
            status = http_request(config, 'POST', config['login_url'], body=data.encode('ascii'))[0]
    except (OSError, http.client.HTTPException) as exc:
        return None, describe_error(exc)
    return status, None


# ---------------------------------------------------------------------------
# State and metrics
# ---------------------------------------------------------------------------

def load_state(path):
    """The state of the previous runs (defaults for a missing, unreadable or damaged file)."""
    state = dict(STATE_DEFAULTS)
    try:
        with open(path, encoding='utf-8') as f:
            saved = json.load(f)
    except FileNotFoundError:
        return state
    except (OSError, ValueError) as exc:
        log('state file %s unreadable, starting afresh: %s' % (path, exc))
        return state
    if not isinstance(saved, dict):
        return state
    for key, default in STATE_DEFAULTS.items():
        value = saved.get(key, default)
        if key.startswith(('logins_', 'sessions_')):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif key in ('online', 'last_login_ok'):
            ok = value is None or isinstance(value, bool)
        elif key == 'last_error':
            ok = value is None or isinstance(value, str)
        else:
            ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
        state[key] = value if ok else default
    return state


def save_state(path, state):
    write_atomic(path, json.dumps(state, indent=2, sort_keys=True) + '\n', 0o600, 0o700)


METRICS = (
    # name, type, help
    ('omr_wifi_bridge_portal_online', 'gauge', '1 if the captive-portal connectivity check passed at the last run.'),
    ('omr_wifi_bridge_portal_logins_total', 'counter', 'Captive-portal login attempts, by result.'),
    ('omr_wifi_bridge_portal_last_login_success', 'gauge', '1 if the last login attempt succeeded (or none was needed yet).'),
    ('omr_wifi_bridge_portal_last_login_timestamp_seconds', 'gauge', 'Time of the last successful login (0: none yet).'),
    ('omr_wifi_bridge_portal_last_check_timestamp_seconds', 'gauge', 'Time of the last connectivity check.'),
    ('omr_wifi_bridge_portal_session_expired_total', 'counter', 'Checks that found the portal session expired or missing.'),
)


def _num(value):
    if isinstance(value, float) and not value.is_integer():
        return '%.3f' % value
    return '%d' % value


def render_metrics(state, now):
    """The node_exporter textfile-collector file for `state`, checked at time `now`."""
    samples = {
        'omr_wifi_bridge_portal_online': [('', 1 if state['online'] else 0)],
        'omr_wifi_bridge_portal_logins_total': [('{result="success"}', state['logins_success']),
                                                ('{result="failure"}', state['logins_failure'])],
        'omr_wifi_bridge_portal_last_login_success': [('', 0 if state['last_login_ok'] is False else 1)],
        'omr_wifi_bridge_portal_last_login_timestamp_seconds': [('', state['last_success'] or 0)],
        'omr_wifi_bridge_portal_last_check_timestamp_seconds': [('', now)],
        'omr_wifi_bridge_portal_session_expired_total': [('', state['sessions_expired'])],
    }
    lines = []
    for name, kind, text in METRICS:
        lines.append('# HELP %s %s' % (name, text))
        lines.append('# TYPE %s %s' % (name, kind))
        for labels, value in samples[name]:
            lines.append('%s%s %s' % (name, labels, _num(value)))
    return '\n'.join(lines) + '\n'


def save_metrics(path, state, now):
    write_atomic(path, render_metrics(state, now), 0o644, 0o755)


# ---------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------

def _run_locked(config, state, now_fn):
    """The check/login logic; updates `state` in place and prints the journal lines."""
    now = now_fn()
    state['last_check'] = now
    online, reason = check(config)
    if online:
        if state['online'] is False:
            log('session active: %s answered HTTP %d' % (config['check_url'], config['check_status']))
        state['online'] = True
        return
    state['online'] = False
    state['sessions_expired'] += 1
    log('session expired: %s' % reason)

    last = state['last_attempt']
    if last is not None and 0 <= now - last < config['interval'] - RATE_SLACK:
        # (a clock that went backwards, now < last, does not block logins)
        log('login skipped: last attempt %ds ago, interval %ds' % (now - last, config['interval']))
        return

    state['last_attempt'] = now
    status, error = login(config)
    answer = 'HTTP %d' % status if status is not None else error
    online, reason = check(config)
    state['last_check'] = now_fn()
    state['online'] = online
    state['last_login_ok'] = online
    if online:
        state['logins_success'] += 1
        state['last_success'] = now
        state['last_error'] = None
        log('logged in via %s (%s)' % (config['login_url'], answer))
    else:
        state['logins_failure'] += 1
        state['last_error'] = '%s, check still %s' % (answer, reason)
        log('<3>login failed via %s: %s' % (config['login_url'], state['last_error']))


def run(config, now_fn=time.time):
    """One check (and login if needed) -> exit status: 0, or 1 if the state cannot be saved."""
    state_file = config['state_file']
    try:
        directory = os.path.dirname(state_file)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        lock = open(state_file + '.lock', 'a', encoding='utf-8')
    except OSError as exc:
        log('<3>cannot open state directory for %s: %s' % (state_file, exc))
        return 1
    with lock:
        # a run started by hand while the timer's run is busy waits for it, then sees its attempt
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        state = load_state(state_file)
        _run_locked(config, state, now_fn)
        try:
            save_state(state_file, state)
        except OSError as exc:
            log('<3>cannot write state file %s: %s' % (state_file, exc))
            return 1
    try:
        save_metrics(config['metrics_file'], state, state['last_check'])
    except OSError as exc:
        log('<4>cannot write metrics file %s: %s' % (config['metrics_file'], exc))
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='omr-captive-login',
        description='Check the connection once and log in to the captive portal if the session expired.')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='JSON configuration file (default %s)' % DEFAULT_CONFIG)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write('omr-captive-login: %s: %s\n' % (args.config, exc))
        return 2
    return run(config)


if __name__ == '__main__':
    sys.exit(main())
