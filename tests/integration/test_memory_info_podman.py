# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr.deploy.memory_info against real podman containers, through Ansible.

Three containers from localhost/omr-lab/debian:12: --memory 512m (sleep), --memory 1g
booted with systemd (for `units`), and one without a limit (sleep). The module runs via
`ansible -c containers.podman.podman` from the repository root, so ./ansible.cfg applies.
Skipped only when podman or the image is missing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = 'localhost/omr-lab/debian:12'
ANSIBLE = os.path.join(ROOT, '.venv', 'bin', 'ansible')
ENV = dict(os.environ)
# runc + cgroupfs: crun fails on these machines (lab notes)
ENV.setdefault('CONTAINERS_CONF', os.path.join(ROOT, 'lab', 'containers.conf'))

CONTAINERS = {
    # name: (podman run options, command)
    'omr-test-mem-512': (['--memory', '512m'], ['sleep', '300']),
    'omr-test-mem-1g': (['--memory', '1g'], ['/lib/systemd/systemd']),
    'omr-test-mem-unlimited': ([], ['sleep', '300']),
}
UNITS = ['systemd-journald', 'omr-test-no-such-unit']


def podman(*args, **kwargs):
    return subprocess.run(['podman'] + list(args), env=ENV, check=False, capture_output=True, text=True,
                          timeout=kwargs.pop('timeout', 120), **kwargs)


def _skip_reason():
    if shutil.which('podman') is None:
        return 'podman is not installed'
    if podman('image', 'exists', IMAGE).returncode != 0:
        return 'image %s is missing (build it with debootstrap + podman import, see the lab notes)' % IMAGE
    if not os.access(ANSIBLE, os.X_OK):
        return '%s is missing' % ANSIBLE
    return None


SKIP = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or '')


def _remove(name):
    # -t 0: sleep and systemd ignore SIGTERM as PID 1; tolerate "no such container"
    podman('rm', '-f', '-t', '0', name)


def _wait_for_systemd(name, timeout=90):
    state = ''
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = podman('exec', name, 'systemctl', 'is-system-running').stdout.strip()
        if state in ('running', 'degraded'):
            return state
        time.sleep(1)
    raise AssertionError('%s: systemd did not come up (is-system-running: %r)' % (name, state))


@pytest.fixture(scope='module')
def containers(request):
    request.addfinalizer(lambda: [_remove(name) for name in CONTAINERS])
    for name, (opts, cmd) in CONTAINERS.items():
        _remove(name)   # leftovers of an earlier, interrupted run
        r = podman('run', '-d', '--rm', '--privileged', '--name', name, *(opts + [IMAGE] + cmd))
        assert r.returncode == 0, r.stderr
    _wait_for_systemd('omr-test-mem-1g')
    return list(CONTAINERS)


RESULT_RE = re.compile(r'^(?P<host>\S+) \| (?P<status>[A-Z!]+)(?: \| rc=\d+)? => ', re.M)


def parse_adhoc(stdout):
    """`host | SUCCESS => {json}` blocks of the minimal callback -> {host: (status, result)}.

    The JSON is decoded from its first brace with raw_decode, so warnings or other text
    around the blocks do not matter.
    """
    decoder = json.JSONDecoder()
    results = {}
    for match in RESULT_RE.finditer(stdout):
        start = stdout.index('{', match.end())
        result, dummy = decoder.raw_decode(stdout, start)
        results[match.group('host')] = (match.group('status'), result)
    return results


def run_module(hosts, args=None, check=False):
    """-> ({host: result}, stderr); the callback prints warnings to stderr, not in the JSON."""
    cmd = [ANSIBLE, 'all', '-i', ','.join(hosts) + ',', '-c', 'containers.podman.podman',
           '-m', 'omr.deploy.memory_info']
    if args is not None:
        cmd += ['-a', json.dumps(args)]
    if check:
        cmd.append('--check')
    env = dict(ENV, ANSIBLE_CALLBACK_RESULT_FORMAT='json', ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', ANSIBLE_LOAD_CALLBACK_PLUGINS='0')
    p = subprocess.run(cmd, cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=300)
    results = parse_adhoc(p.stdout)
    assert sorted(results) == sorted(hosts), 'rc=%d\nstdout:\n%s\nstderr:\n%s' % (p.returncode, p.stdout, p.stderr)
    for host, (status, result) in results.items():
        assert status == 'SUCCESS', (host, result)
    return {host: result for host, (dummy, result) in results.items()}, p.stderr


@pytest.fixture(scope='module')
def adhoc(containers):
    return run_module(containers, {'units': UNITS})


@pytest.fixture(scope='module')
def results(adhoc):
    return adhoc[0]


def facts(results, host):
    res = results[host]
    assert res['changed'] is False
    return res['ansible_facts']['omr_memory']


def test_512m(results):
    f = facts(results, 'omr-test-mem-512')
    assert f['cgroup_limit_mb'] == 512
    assert f['installed_mb'] == 512 and f['installed_source'] == 'cgroup'
    assert f['effective_mb'] == 512
    # /proc/meminfo inside still shows the machine's RAM
    assert f['meminfo_total_mb'] > 512
    assert f['cgroup_version'] in (1, 2)
    assert f['virtualization'] == 'podman' and f['container'] is True
    assert f['page_size'] > 0


def test_1g_systemd(results):
    f = facts(results, 'omr-test-mem-1g')
    assert (f['cgroup_limit_mb'], f['installed_mb'], f['effective_mb']) == (1024, 1024, 1024)
    assert f['installed_source'] == 'cgroup'


def test_unlimited(results):
    f = facts(results, 'omr-test-mem-unlimited')
    assert f['cgroup_limit_mb'] is None
    assert f['effective_mb'] == f['meminfo_total_mb']
    assert f['installed_source'] in ('memory_blocks', 'meminfo')
    assert f['installed_mb'] >= f['meminfo_total_mb']


def test_units_in_systemd_container(results):
    units = facts(results, 'omr-test-mem-1g')['units']
    assert sorted(units) == sorted(UNITS)
    journald = units['systemd-journald']
    assert journald['present'] is True and journald['active'] is True
    assert journald['pids'] and all(isinstance(p, int) for p in journald['pids'])
    assert 0 < journald['rss_mb'] < 1024
    # the pids are the container's own journald: check against systemctl in there
    main_pid = podman('exec', 'omr-test-mem-1g', 'systemctl', 'show', '-p', 'MainPID', '--value',
                      'systemd-journald').stdout.strip()
    assert int(main_pid) in journald['pids']
    assert units['omr-test-no-such-unit'] == {'present': False, 'active': False, 'pids': [], 'rss_mb': 0.0}


def test_units_without_systemd(adhoc):
    # a container running sleep has no systemd: units are reported absent, with a warning
    results, stderr = adhoc
    units = facts(results, 'omr-test-mem-512')['units']
    assert units['systemd-journald'] == {'present': False, 'active': False, 'pids': [], 'rss_mb': 0.0}
    assert 'systemctl show systemd-journald failed' in stderr


def test_check_mode_and_no_units(containers):
    res, dummy = run_module(['omr-test-mem-512'], check=True)
    f = facts(res, 'omr-test-mem-512')
    assert f['cgroup_limit_mb'] == 512 and f['units'] == {}
