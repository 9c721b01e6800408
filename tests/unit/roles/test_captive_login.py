"""roles/wifi_bridge/files/omr-captive-login.py against a real (local) captive portal."""
import importlib.util
import json
import os
import re
import socket
import stat
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, 'roles', 'wifi_bridge', 'files', 'omr-captive-login.py')

USER = 'bridge-user'
PASSWORD = 'S3cret p@ss&word='   # needs URL encoding; must never appear in the output
T0 = 1700000000.0

METRIC_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? '
                         r'-?[0-9]+(\.[0-9]+)?$')


@pytest.fixture(scope='module')
def cl():
    spec = importlib.util.spec_from_file_location('omr_captive_login', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    dont_write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True   # no __pycache__ under roles/
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.dont_write_bytecode = dont_write_bytecode
        sys.modules.pop(spec.name, None)


class Portal(object):
    """A captive portal: /generate_204 redirects to /login until a login with the right credentials."""

    def __init__(self, session_seconds=None):
        self.session_seconds = session_seconds
        self.logged_in_until = None     # None: logged out; float('inf') or a time: logged in
        self.requests = []              # (method, path, query dict, form dict, client address)
        self.release = threading.Event()
        self.lock = threading.Lock()
        portal = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):   # keep the test output clean
                pass

            def answer(self, status, location=None, body=b''):
                self.send_response(status)
                if location:
                    self.send_header('Location', location)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle_any(self, method):
                parts = urlsplit(self.path)
                form = {}
                if method == 'POST':
                    length = int(self.headers.get('Content-Length') or 0)
                    assert self.headers.get('Content-Type') == 'application/x-www-form-urlencoded'
                    form = parse_qs(self.rfile.read(length).decode('ascii'))
                query = parse_qs(parts.query)
                with portal.lock:
                    portal.requests.append((method, parts.path, query, form, self.client_address[0]))
                if parts.path == '/generate_204':
                    if portal.online():
                        self.answer(204)
                    else:
                        self.answer(302, portal.url('/login'), b'<html>log in first</html>')
                elif parts.path == '/login':
                    given = form if method == 'POST' else query
                    if not given:
                        self.answer(200, body=b'<form method="post">...</form>')
                    elif given.get('username') == [USER] and given.get('password') == [PASSWORD]:
                        portal.log_in()
                        self.answer(302, portal.url('/welcome'))
                    else:
                        self.answer(403, body=b'wrong password')
                elif parts.path == '/inline':      # a portal that serves its page in place of the 204
                    self.answer(200, body=b'<html>portal</html>')
                elif parts.path == '/slow':
                    portal.release.wait(5)
                    self.answer(204)
                else:
                    self.answer(404)

            def do_GET(self):
                self.handle_any('GET')

            def do_POST(self):
                self.handle_any('POST')

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def online(self):
        with self.lock:
            return self.logged_in_until is not None and time.time() < self.logged_in_until

    def log_in(self):
        with self.lock:
            self.logged_in_until = float('inf') if self.session_seconds is None else time.time() + self.session_seconds

    def expire(self):
        with self.lock:
            self.logged_in_until = None

    def logins(self):
        with self.lock:
            return [r for r in self.requests if r[1] == '/login']

    def posts(self):
        with self.lock:
            return [r for r in self.requests if r[0] == 'POST']


@pytest.fixture
def portal():
    p = Portal()
    p.thread.start()
    try:
        yield p
    finally:
        p.release.set()
        p.server.shutdown()
        p.server.server_close()


@pytest.fixture
def closed_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Clock(object):
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def raw_config(portal, tmp_path, **override):
    raw = {
        'check_url': portal.url('/generate_204'),
        'login_url': portal.url('/login'),
        'method': 'POST',
        'fields': {'username': USER, 'password': PASSWORD},
        'timeout': 2,
        'interval': 60,
        'metrics_file': str(tmp_path / 'textfile' / 'omr_wifi_bridge_portal.prom'),
        'state_file': str(tmp_path / 'state' / 'portal.json'),
    }
    raw.update(override)
    return raw


def make_config(cl, portal, tmp_path, **override):
    return cl.validate_config(raw_config(portal, tmp_path, **override))


def read_state(config):
    with open(config['state_file'], encoding='utf-8') as f:
        return json.load(f)


def read_metrics(config):
    with open(config['metrics_file'], encoding='utf-8') as f:
        text = f.read()
    values = {}
    for line in text.splitlines():
        if not line.startswith('#'):
            name, value = line.rsplit(' ', 1)
            values[name] = float(value)
    return text, values


def lines(out):
    return out.splitlines()


# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------

def test_online_does_not_log_in_and_stays_quiet(cl, portal, tmp_path, capsys):
    portal.log_in()
    config = make_config(cl, portal, tmp_path)
    assert cl.check(config) == (True, None)
    assert cl.run(config, now_fn=Clock()) == 0
    assert cl.run(config, now_fn=Clock(T0 + 60)) == 0
    out, err = capsys.readouterr()
    assert out == '' and err == ''
    assert portal.logins() == [] and portal.posts() == []
    state = read_state(config)
    assert state['online'] is True and state['last_attempt'] is None
    assert state['logins_success'] == 0 and state['logins_failure'] == 0 and state['sessions_expired'] == 0
    values = read_metrics(config)[1]
    assert values['omr_wifi_bridge_portal_online'] == 1
    assert values['omr_wifi_bridge_portal_last_login_success'] == 1      # no attempt yet
    assert values['omr_wifi_bridge_portal_last_login_timestamp_seconds'] == 0
    assert values['omr_wifi_bridge_portal_last_check_timestamp_seconds'] == T0 + 60


def test_expired_session_logs_in_once(cl, portal, tmp_path, capsys):
    config = make_config(cl, portal, tmp_path)
    assert cl.run(config, now_fn=Clock()) == 0
    out, err = capsys.readouterr()
    assert lines(out) == [
        'session expired: redirected to %s' % portal.url('/login'),
        'logged in via %s (HTTP 302)' % portal.url('/login'),
    ]
    assert err == ''
    assert len(portal.posts()) == 1
    method, path, query, form, client = portal.posts()[0]
    assert (method, path, query, client) == ('POST', '/login', {}, '127.0.0.1')
    assert form == {'username': [USER], 'password': [PASSWORD]}
    assert portal.online()

    state = read_state(config)
    assert state['online'] is True and state['last_login_ok'] is True and state['last_error'] is None
    assert state['last_attempt'] == T0 and state['last_success'] == T0
    assert (state['logins_success'], state['logins_failure'], state['sessions_expired']) == (1, 0, 1)
    text = read_metrics(config)[0]
    assert text == (
        '# HELP omr_wifi_bridge_portal_online 1 if the captive-portal connectivity check passed at the last run.\n'
        '# TYPE omr_wifi_bridge_portal_online gauge\n'
        'omr_wifi_bridge_portal_online 1\n'
        '# HELP omr_wifi_bridge_portal_logins_total Captive-portal login attempts, by result.\n'
        '# TYPE omr_wifi_bridge_portal_logins_total counter\n'
        'omr_wifi_bridge_portal_logins_total{result="success"} 1\n'
        'omr_wifi_bridge_portal_logins_total{result="failure"} 0\n'
        '# HELP omr_wifi_bridge_portal_last_login_success 1 if the last login attempt succeeded (or none was needed yet).\n'
        '# TYPE omr_wifi_bridge_portal_last_login_success gauge\n'
        'omr_wifi_bridge_portal_last_login_success 1\n'
        '# HELP omr_wifi_bridge_portal_last_login_timestamp_seconds Time of the last successful login (0: none yet).\n'
        '# TYPE omr_wifi_bridge_portal_last_login_timestamp_seconds gauge\n'
        'omr_wifi_bridge_portal_last_login_timestamp_seconds 1700000000\n'
        '# HELP omr_wifi_bridge_portal_last_check_timestamp_seconds Time of the last connectivity check.\n'
        '# TYPE omr_wifi_bridge_portal_last_check_timestamp_seconds gauge\n'
        'omr_wifi_bridge_portal_last_check_timestamp_seconds 1700000000\n'
        '# HELP omr_wifi_bridge_portal_session_expired_total Checks that found the portal session expired or missing.\n'
        '# TYPE omr_wifi_bridge_portal_session_expired_total counter\n'
        'omr_wifi_bridge_portal_session_expired_total 1\n'
    )

    # The next run finds the session active: quiet, no new login.
    assert cl.run(config, now_fn=Clock(T0 + 60)) == 0
    assert capsys.readouterr() == ('', '')
    assert len(portal.posts()) == 1


def test_session_expiring_again_logs_in_again(cl, portal, tmp_path, capsys):
    config = make_config(cl, portal, tmp_path)
    cl.run(config, now_fn=Clock())
    portal.expire()
    assert cl.run(config, now_fn=Clock(T0 + 3600)) == 0
    out = capsys.readouterr()[0]
    assert lines(out)[-1] == 'logged in via %s (HTTP 302)' % portal.url('/login')
    state = read_state(config)
    assert (state['logins_success'], state['sessions_expired'], state['last_success']) == (2, 2, T0 + 3600)
    values = read_metrics(config)[1]
    assert values['omr_wifi_bridge_portal_session_expired_total'] == 2
    assert values['omr_wifi_bridge_portal_logins_total{result="success"}'] == 2


def test_portal_session_with_expiry(cl, tmp_path, capsys):
    p = Portal(session_seconds=0.3)
    p.thread.start()
    try:
        config = make_config(cl, p, tmp_path)
        cl.run(config, now_fn=Clock())
        assert cl.check(config) == (True, None)
        time.sleep(0.4)
        assert cl.check(config) == (False, 'redirected to %s' % p.url('/login'))
        cl.run(config, now_fn=Clock(T0 + 60))
    finally:
        p.server.shutdown()
        p.server.server_close()
    out = capsys.readouterr()[0]
    assert lines(out).count('logged in via %s (HTTP 302)' % p.url('/login')) == 2
    assert len(p.posts()) == 2


def test_wrong_password_is_a_logged_failure(cl, portal, tmp_path, capsys):
    config = make_config(cl, portal, tmp_path, fields={'username': USER, 'password': 'not-' + PASSWORD})
    assert cl.run(config, now_fn=Clock()) == 0
    out, err = capsys.readouterr()
    login_url = portal.url('/login')
    assert lines(out) == [
        'session expired: redirected to %s' % login_url,
        '<3>login failed via %s: HTTP 403, check still redirected to %s' % (login_url, login_url),
    ]
    assert err == ''
    assert PASSWORD not in out and 'not-' not in out
    assert len(portal.posts()) == 1
    state = read_state(config)
    assert state['online'] is False and state['last_login_ok'] is False
    assert state['last_success'] is None and state['last_attempt'] == T0
    assert state['last_error'] == 'HTTP 403, check still redirected to %s' % login_url
    assert (state['logins_success'], state['logins_failure']) == (0, 1)
    values = read_metrics(config)[1]
    assert values['omr_wifi_bridge_portal_online'] == 0
    assert values['omr_wifi_bridge_portal_logins_total{result="failure"}'] == 1
    assert values['omr_wifi_bridge_portal_logins_total{result="success"}'] == 0
    assert values['omr_wifi_bridge_portal_last_login_success'] == 0
    assert values['omr_wifi_bridge_portal_last_login_timestamp_seconds'] == 0


def test_rate_limit_after_a_failure(cl, portal, tmp_path, capsys):
    config = make_config(cl, portal, tmp_path, fields={'username': USER, 'password': 'wrong'})
    cl.run(config, now_fn=Clock())
    capsys.readouterr()
    assert len(portal.posts()) == 1

    # Started again by hand right away, and 10 s later: no login request.
    assert cl.run(config, now_fn=Clock(T0)) == 0
    assert cl.run(config, now_fn=Clock(T0 + 10)) == 0
    out = capsys.readouterr()[0]
    assert lines(out) == [
        'session expired: redirected to %s' % portal.url('/login'),
        'login skipped: last attempt 0s ago, interval 60s',
        'session expired: redirected to %s' % portal.url('/login'),
        'login skipped: last attempt 10s ago, interval 60s',
    ]
    assert len(portal.posts()) == 1
    state = read_state(config)
    assert (state['logins_failure'], state['sessions_expired'], state['last_attempt']) == (1, 3, T0)
    values = read_metrics(config)[1]
    assert values['omr_wifi_bridge_portal_session_expired_total'] == 3
    assert values['omr_wifi_bridge_portal_logins_total{result="failure"}'] == 1
    assert values['omr_wifi_bridge_portal_last_check_timestamp_seconds'] == T0 + 10

    # The timer firing up to 1 s early still gets its attempt.
    assert cl.run(config, now_fn=Clock(T0 + 59.2)) == 0
    assert len(portal.posts()) == 2
    assert read_state(config)['logins_failure'] == 2


def test_online_after_offline_is_logged_once(cl, portal, tmp_path, capsys):
    config = make_config(cl, portal, tmp_path, fields={'username': USER, 'password': 'wrong'})
    cl.run(config, now_fn=Clock())
    portal.log_in()          # someone logged in by other means
    cl.run(config, now_fn=Clock(T0 + 60))
    cl.run(config, now_fn=Clock(T0 + 120))
    out = capsys.readouterr()[0]
    assert lines(out)[-1] == 'session active: %s answered HTTP 204' % portal.url('/generate_204')
    assert lines(out).count(lines(out)[-1]) == 1
    assert read_state(config)['online'] is True


def test_get_method_sends_fields_as_query(cl, portal, tmp_path, capsys):
    config = make_config(cl, portal, tmp_path, method='get', login_url=portal.url('/login?zone=lobby'))
    assert cl.run(config, now_fn=Clock()) == 0
    out = capsys.readouterr()[0]
    assert lines(out)[-1] == 'logged in via %s (HTTP 302)' % portal.url('/login?zone=lobby')
    assert portal.posts() == []
    method, path, query, form, client = portal.logins()[0]
    assert (method, path, form, client) == ('GET', '/login', {}, '127.0.0.1')
    assert query == {'zone': ['lobby'], 'username': [USER], 'password': [PASSWORD]}
    assert PASSWORD not in out


def test_source_address_is_bound(cl, portal, tmp_path, capsys):
    config = make_config(cl, portal, tmp_path, source_address='127.0.0.2')
    assert cl.run(config, now_fn=Clock()) == 0
    assert lines(capsys.readouterr()[0])[-1].startswith('logged in via ')
    assert {r[4] for r in portal.requests} == {'127.0.0.2'}


def test_other_status_is_the_reason(cl, portal, tmp_path):
    config = make_config(cl, portal, tmp_path, check_url=portal.url('/inline'))
    assert cl.check(config) == (False, 'HTTP 200')
    config = make_config(cl, portal, tmp_path, check_url=portal.url('/inline'), check_status=200)
    assert cl.check(config) == (True, None)


def test_timeout_and_connection_refused(cl, portal, tmp_path, closed_port, capsys):
    refused = 'http://127.0.0.1:%d/generate_204' % closed_port
    config = make_config(cl, portal, tmp_path, check_url=refused)
    assert cl.check(config) == (False, 'connection refused')
    config = make_config(cl, portal, tmp_path, check_url=portal.url('/slow'), timeout=0.3)
    started = time.monotonic()
    assert cl.check(config) == (False, 'timed out')
    assert time.monotonic() - started < 2

    # A run: slow check, portal down for the login.
    login_url = 'http://127.0.0.1:%d/login' % closed_port
    config = make_config(cl, portal, tmp_path, check_url=portal.url('/slow'), timeout=0.3, login_url=login_url)
    assert cl.login(config) == (None, 'connection refused')
    assert cl.run(config, now_fn=Clock()) == 0
    out, err = capsys.readouterr()
    assert lines(out) == [
        'session expired: timed out',
        '<3>login failed via %s: connection refused, check still timed out' % login_url,
    ]
    assert err == ''
    assert read_state(config)['last_error'] == 'connection refused, check still timed out'


def test_main_with_config_file(cl, portal, tmp_path, capsys):
    path = tmp_path / 'portal.json'
    path.write_text(json.dumps(raw_config(portal, tmp_path)), encoding='utf-8')
    assert cl.main(['--config', str(path)]) == 0
    assert cl.main(['--config', str(path)]) == 0
    out = capsys.readouterr()[0]
    assert lines(out) == [
        'session expired: redirected to %s' % portal.url('/login'),
        'logged in via %s (HTTP 302)' % portal.url('/login'),
    ]
    assert len(portal.posts()) == 1


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('key,value', [
    ('check_url', None),                  # None: key removed
    ('login_url', None),
    ('check_url', 'ftp://portal/'),
    ('login_url', 'http://user:pw@portal/login'),
    ('check_status', '204'),
    ('check_status', 700),
    ('method', 'PUT'),
    ('fields', ['username']),
    ('timeout', 0),
    ('interval', True),
    ('source_address', 'eth0'),
    ('metrics_file', 'relative.prom'),
    ('state_file', 5),
    ('check_urll', 'http://typo/'),       # unknown key
])
def test_bad_config_exits_2_naming_the_key(cl, portal, tmp_path, capsys, key, value):
    raw = raw_config(portal, tmp_path)
    if value is None:
        del raw[key]
    else:
        raw[key] = value
    path = tmp_path / 'portal.json'
    path.write_text(json.dumps(raw), encoding='utf-8')
    assert cl.main(['--config', str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ''
    assert err.startswith('omr-captive-login: %s: %s: ' % (path, key))
    assert portal.requests == []
    assert not os.path.exists(str(tmp_path / 'state'))


def test_unreadable_config_exits_2(cl, tmp_path, capsys):
    assert cl.main(['--config', str(tmp_path / 'missing.json')]) == 2
    assert 'cannot read' in capsys.readouterr()[1]
    path = tmp_path / 'portal.json'
    path.write_text('{"check_url": ', encoding='utf-8')
    assert cl.main(['--config', str(path)]) == 2
    assert 'not valid JSON' in capsys.readouterr()[1]


def test_field_values_are_not_shown_in_config_errors(cl, portal, tmp_path):
    with pytest.raises(cl.ConfigError) as info:
        make_config(cl, portal, tmp_path, fields={'username': USER, 'password': [PASSWORD]})
    assert str(info.value) == 'fields: password: must be a string or a number'


def test_config_defaults(cl, portal):
    config = cl.validate_config({'check_url': portal.url('/generate_204'), 'login_url': portal.url('/login')})
    assert config['check_status'] == 204 and config['method'] == 'POST' and config['fields'] == {}
    assert config['timeout'] == 5 and config['interval'] == 60 and config['source_address'] is None
    assert config['metrics_file'] == '/var/lib/prometheus/node-exporter/omr_wifi_bridge_portal.prom'
    assert config['state_file'] == '/var/lib/omr-wifi-bridge/portal.json'


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def test_metrics_and_state_files(cl, portal, tmp_path, capsys):
    config = make_config(cl, portal, tmp_path, fields={'username': USER, 'password': 'wrong'})
    for step in range(3):
        cl.run(config, now_fn=Clock(T0 + 30.5 * step))
    capsys.readouterr()
    text, values = read_metrics(config)
    names = set()
    for line in text.splitlines():
        if line.startswith('# HELP '):
            names.add(line.split()[2])
        elif line.startswith('# TYPE '):
            assert line.split()[3] in ('gauge', 'counter')
        else:
            assert METRIC_LINE.match(line), line
            assert re.split(r'[{ ]', line)[0] in names      # HELP/TYPE come first
    assert names == {
        'omr_wifi_bridge_portal_online',
        'omr_wifi_bridge_portal_logins_total',
        'omr_wifi_bridge_portal_last_login_success',
        'omr_wifi_bridge_portal_last_login_timestamp_seconds',
        'omr_wifi_bridge_portal_last_check_timestamp_seconds',
        'omr_wifi_bridge_portal_session_expired_total',
    }
    assert values['omr_wifi_bridge_portal_last_check_timestamp_seconds'] == T0 + 61
    assert values['omr_wifi_bridge_portal_logins_total{result="failure"}'] == 2
    # Written atomically: no temporary files left, the final modes are right.
    metrics_dir = os.path.dirname(config['metrics_file'])
    state_dir = os.path.dirname(config['state_file'])
    assert os.listdir(metrics_dir) == ['omr_wifi_bridge_portal.prom']
    assert sorted(os.listdir(state_dir)) == ['portal.json', 'portal.json.lock']
    assert stat.S_IMODE(os.stat(config['metrics_file']).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(config['state_file']).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    assert PASSWORD not in open(config['state_file'], encoding='utf-8').read()


def test_write_failure_leaves_no_temp_file(cl, tmp_path, monkeypatch):
    target = tmp_path / 'out.prom'
    target.write_text('old\n', encoding='utf-8')

    def broken_replace(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(cl.os, 'replace', broken_replace)
    with pytest.raises(OSError):
        cl.write_atomic(str(target), 'new\n', 0o644, 0o755)
    assert os.listdir(str(tmp_path)) == ['out.prom']
    assert target.read_text(encoding='utf-8') == 'old\n'


def test_damaged_state_file_starts_afresh(cl, portal, tmp_path, capsys):
    config = make_config(cl, portal, tmp_path)
    os.makedirs(os.path.dirname(config['state_file']))
    with open(config['state_file'], 'w', encoding='utf-8') as f:
        f.write('{"last_attempt": ')
    assert cl.run(config, now_fn=Clock()) == 0
    out = capsys.readouterr()[0]
    assert lines(out)[0].startswith('state file %s unreadable, starting afresh' % config['state_file'])
    assert lines(out)[-1] == 'logged in via %s (HTTP 302)' % portal.url('/login')
    assert read_state(config)['logins_success'] == 1


def test_render_metrics_before_any_attempt(cl):
    text = cl.render_metrics(dict(cl.STATE_DEFAULTS), 1700000000.25)
    assert 'omr_wifi_bridge_portal_online 0\n' in text
    assert 'omr_wifi_bridge_portal_last_login_success 1\n' in text
    assert 'omr_wifi_bridge_portal_last_login_timestamp_seconds 0\n' in text
    assert 'omr_wifi_bridge_portal_last_check_timestamp_seconds 1700000000.250\n' in text
    assert 'nan' not in text.lower()
