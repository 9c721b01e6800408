# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr.deploy.sysctl_dropin against a real kernel, inside a throwaway network namespace.

Each test gets a fresh network namespace and runs the real module through the `ansible` CLI
inside it with `ip netns exec`, with the drop-in in a temporary directory (never /etc).
Only per-netns keys are written (net.ipv4.tcp_rmem, tcp_wmem, tcp_notsent_lowat, ip_forward,
net.mptcp.checksum_enabled), so the host is not touched; every test checks that the host's own
values stayed as they were. Live values are read from /proc/sys inside the namespace by a
separate Python, not by the module.

A child netns does not expose net.ipv4.tcp_mem / udp_mem (kernel-wide) and shows
net.core.rmem_max read-only: those are the keys the module must skip.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), 'ansible')
if not os.path.exists(ANSIBLE):
    ANSIBLE = os.path.join(ROOT, '.venv', 'bin', 'ansible')
# One prefix per checkout; the pid keeps two concurrent runs apart, and lets a run remove
# the namespaces a crashed earlier run left behind (their pid is gone).
PREFIX = 'omr-sysctl-it-' + hashlib.sha1(ROOT.encode()).hexdigest()[:6] + '-'
MODULE = 'omr.deploy.sysctl_dropin'
HEADER = 'Managed by omr.deploy integration tests'

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason='needs root: creates network namespaces and writes /proc/sys in them'),
    pytest.mark.skipif(shutil.which('ip') is None, reason='iproute2 `ip` not installed'),
]


def sh(*argv, check=True):
    res = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise AssertionError('%s failed (rc=%d): %s' % (' '.join(argv), res.returncode, res.stderr))
    return res.stdout


def remove_leftovers():
    for line in sh('ip', 'netns', 'list', check=False).splitlines():
        name = line.split()[0] if line.split() else ''
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX):].split('-')[0]
        if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists('/proc/%s' % pid):
            sh('ip', 'netns', 'del', name, check=False)


# Keys the module may write in these tests: all per network namespace.
KEYS = ('net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem', 'net.ipv4.tcp_notsent_lowat', 'net.ipv4.ip_forward',
        'net.mptcp.checksum_enabled')

READ = '''
import json, os, sys
out = {}
for key in sys.argv[1:]:
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with open(path) as f:
            out[key] = {"value": " ".join(f.read().split()), "writable": os.access(path, os.W_OK)}
    except FileNotFoundError:
        out[key] = None
print(json.dumps(out))
'''


def proc_read(ns, *keys):
    """{key: {'value', 'writable'} or None when absent}, read in NS (None: the host's namespace)."""
    prefix = ['ip', 'netns', 'exec', ns] if ns else []
    return json.loads(sh(*(prefix + [sys.executable, '-c', READ] + list(keys))))


def live(ns, *keys):
    return {k: (v or {}).get('value') for k, v in proc_read(ns, *(keys or KEYS)).items()}


@pytest.fixture
def netns():
    remove_leftovers()
    host = live(None)
    name = '%s%d-%s' % (PREFIX, os.getpid(), os.urandom(3).hex())
    sh('ip', 'netns', 'del', name, check=False)
    sh('ip', 'netns', 'add', name)
    try:
        yield name
    finally:
        sh('ip', 'netns', 'del', name, check=False)
        assert live(None) == host, "the host's own sysctls changed"


@pytest.fixture
def wanted(netns):
    """Values that differ from what the fresh namespace holds, for every per-netns key it has."""
    fresh = live(netns)
    values = {
        'net.ipv4.tcp_rmem': '4096 131071 7340033',
        'net.ipv4.tcp_wmem': '4096 16383 7340035',
        'net.ipv4.tcp_notsent_lowat': '131073',
        'net.ipv4.ip_forward': '0' if fresh['net.ipv4.ip_forward'] == '1' else '1',
        'net.mptcp.checksum_enabled': '0' if fresh['net.mptcp.checksum_enabled'] == '1' else '1',
    }
    if fresh['net.mptcp.checksum_enabled'] is None:   # kernel without MPTCP
        del values['net.mptcp.checksum_enabled']
    for key, value in values.items():
        assert fresh[key] != value, key
    return values


def ansible(ns, args, check=False, diff=False):
    cmd = ['ip', 'netns', 'exec', ns, ANSIBLE, 'localhost', '-c', 'local', '-i', 'localhost,',
           '-e', 'ansible_python_interpreter=' + sys.executable, '-m', MODULE, '-a', json.dumps(args)]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
               ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_NOCOLOR='1')
    res = subprocess.run(cmd, cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=180)
    try:
        out = json.loads(res.stdout)
    except ValueError:
        raise AssertionError('no JSON from ansible (rc=%d)\nstdout: %s\nstderr: %s'
                             % (res.returncode, res.stdout, res.stderr))
    return out['plays'][0]['tasks'][0]['hosts']['localhost']


def dropin(ns, path, sysctls, check=False, diff=False, **args):
    return ansible(ns, dict(args, path=str(path), sysctls=sysctls), check=check, diff=diff)


def file_text(values, header=HEADER):
    lines = ['# ' + header] if header else []
    return ''.join(line + '\n' for line in lines + ['%s = %s' % (k, values[k]) for k in sorted(values)])


def ok(res):
    assert res.get('failed') is not True, res
    return res


# ---------------------------------------------------------------- tests

def test_first_run_changes_second_does_not(netns, wanted, tmp_path):
    path = tmp_path / '95-omr-deploy-net.conf'
    before = live(netns, *wanted)
    # Whitespace in values is folded, the way /proc/sys and `sysctl -n` print them.
    given = dict(wanted, **{'net.ipv4.tcp_rmem': ' 4096\t131071   7340033 ', 'net.ipv4.tcp_notsent_lowat': 131073})

    first = ok(dropin(netns, path, given, header=HEADER))
    assert first['changed'] is True
    assert first['path'] == str(path)
    assert live(netns, *wanted) == wanted
    assert first['applied'] == wanted
    assert first['unavailable'] == {}
    assert first['live_changed'] == {k: {'before': before[k], 'after': wanted[k]} for k in wanted}
    assert path.read_text() == file_text(wanted)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert 'diff' not in first

    second = ok(dropin(netns, path, given, header=HEADER))
    assert second['changed'] is False
    assert second['live_changed'] == {}
    assert second['applied'] == wanted
    assert path.read_text() == file_text(wanted)
    # No temporary file left next to the drop-in.
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_live_value_drift_is_fixed(netns, wanted, tmp_path):
    path = tmp_path / 'net.conf'
    ok(dropin(netns, path, wanted))
    sh('ip', 'netns', 'exec', netns, 'sh', '-c', 'echo 131074 > /proc/sys/net/ipv4/tcp_notsent_lowat')
    res = ok(dropin(netns, path, wanted))
    assert res['changed'] is True
    assert res['live_changed'] == {'net.ipv4.tcp_notsent_lowat': {'before': '131074', 'after': '131073'}}
    assert live(netns, *wanted) == wanted


def test_check_mode_changes_nothing(netns, wanted, tmp_path):
    path = tmp_path / 'net.conf'
    before = live(netns, *wanted)

    res = ok(dropin(netns, path, wanted, check=True, header=HEADER))
    assert res['changed'] is True
    assert not path.exists()
    assert live(netns, *wanted) == before
    assert res['applied'] == wanted
    assert res['live_changed'] == {k: {'before': before[k], 'after': wanted[k]} for k in wanted}

    # An existing file that differs stays as it is too.
    path.write_text('net.ipv4.ip_forward = %s\n' % before['net.ipv4.ip_forward'])
    path.chmod(0o600)
    res = ok(dropin(netns, path, wanted, check=True, diff=True))
    assert res['changed'] is True
    assert path.read_text() == 'net.ipv4.ip_forward = %s\n' % before['net.ipv4.ip_forward']
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert res['diff']['after'] == file_text(wanted, header=None)
    assert live(netns, *wanted) == before

    # Once applied, check mode reports no change.
    ok(dropin(netns, path, wanted))
    res = ok(dropin(netns, path, wanted, check=True))
    assert res['changed'] is False and res['live_changed'] == {}


def test_diff_shows_the_file(netns, wanted, tmp_path):
    path = tmp_path / 'net.conf'
    path.write_text('# old\nnet.ipv4.tcp_rmem = 4096 1 2\nnet.ipv4.tcp_mem = 1 2 3\n')
    res = ok(dropin(netns, path, wanted, diff=True, header=HEADER))
    assert res['changed'] is True
    assert res['diff'] == {
        'before': '# old\nnet.ipv4.tcp_rmem = 4096 1 2\nnet.ipv4.tcp_mem = 1 2 3\n',
        'after': file_text(wanted),
        'before_header': str(path),
        'after_header': str(path),
    }
    assert set(res['live_changed']) == set(wanted)

    # A new file diffs from nothing.
    new = tmp_path / 'new.conf'
    res = ok(dropin(netns, new, {'net.ipv4.tcp_notsent_lowat': 131073}, diff=True))
    assert res['diff']['before'] == ''
    assert res['diff']['after'] == 'net.ipv4.tcp_notsent_lowat = 131073\n'
    # Nothing to change: the diff is empty.
    res = ok(dropin(netns, new, {'net.ipv4.tcp_notsent_lowat': 131073}, diff=True))
    assert res['changed'] is False
    assert res['diff']['before'] == res['diff']['after']


def test_keys_the_namespace_does_not_expose_are_skipped(netns, wanted, tmp_path):
    seen = proc_read(netns, 'net.ipv4.tcp_mem', 'net.ipv4.udp_mem', 'net.core.rmem_max')
    assert seen['net.ipv4.tcp_mem'] is None and seen['net.ipv4.udp_mem'] is None, seen
    path = tmp_path / 'net.conf'
    given = dict(wanted, **{'net.ipv4.tcp_mem': '56832 75776 113664', 'net.ipv4.udp_mem': '113664 151552 227328'})
    # net.core.rmem_max is read-only in a child netns on the kernels this was written on; the module
    # is only given it where that holds, so the host's (global) value can never be written.
    readonly = seen['net.core.rmem_max'] is not None and seen['net.core.rmem_max']['writable'] is False
    if readonly:
        given['net.core.rmem_max'] = 33554432

    res = ok(dropin(netns, path, given))
    # The task itself ran: Ansible does not mistake the skipped keys for a skipped task.
    assert not res.get('skipped'), res
    assert res['changed'] is True
    assert res['applied'] == wanted
    assert set(res['unavailable']) == {'net.ipv4.tcp_mem', 'net.ipv4.udp_mem'} | ({'net.core.rmem_max'} if readonly else set())
    assert res['unavailable']['net.ipv4.tcp_mem'] == (
        'not exposed by this kernel or network namespace (/proc/sys/net/ipv4/tcp_mem does not exist)')
    if readonly:
        assert res['unavailable']['net.core.rmem_max'] == 'not writable here (/proc/sys/net/core/rmem_max: Permission denied)'
    text = path.read_text()
    assert text == file_text(wanted, header=None)
    assert 'tcp_mem' not in text and 'udp_mem' not in text and 'rmem_max' not in text
    assert live(netns, *wanted) == wanted
    # Skipping is stable: nothing to do the second time.
    again = ok(dropin(netns, path, given))
    assert again['changed'] is False and again['unavailable'] == res['unavailable']


def test_missing_fail_names_the_key_and_changes_nothing(netns, wanted, tmp_path):
    path = tmp_path / 'net.conf'
    before = live(netns, *wanted)
    res = dropin(netns, path, dict(wanted, **{'net.ipv4.tcp_mem': '56832 75776 113664'}), missing='fail')
    assert res['failed'] is True
    assert 'net.ipv4.tcp_mem' in res['msg'] and 'does not exist' in res['msg']
    assert list(res['unavailable']) == ['net.ipv4.tcp_mem']
    assert not path.exists()
    assert live(netns, *wanted) == before

    # Without the unavailable key, missing=fail is happy.
    ok(dropin(netns, path, wanted, missing='fail'))
    assert path.read_text() == file_text(wanted, header=None)


def test_key_removed_from_sysctls_leaves_the_file(netns, wanted, tmp_path):
    path = tmp_path / 'net.conf'
    ok(dropin(netns, path, wanted, header=HEADER))
    assert 'net.ipv4.tcp_wmem = ' in path.read_text()

    fewer = {k: v for k, v in wanted.items() if k != 'net.ipv4.tcp_wmem'}
    res = ok(dropin(netns, path, fewer, header=HEADER))
    assert res['changed'] is True
    assert res['live_changed'] == {}
    assert res['applied'] == fewer
    assert path.read_text() == file_text(fewer)
    assert 'tcp_wmem' not in path.read_text()
    # The live value of a dropped key is left alone.
    assert live(netns, 'net.ipv4.tcp_wmem') == {'net.ipv4.tcp_wmem': wanted['net.ipv4.tcp_wmem']}

    # Foreign lines are removed too, and an empty sysctls leaves only the header.
    path.write_text(path.read_text() + 'kernel.foo = 1\n')
    assert ok(dropin(netns, path, fewer, header=HEADER))['changed'] is True
    assert path.read_text() == file_text(fewer)
    assert ok(dropin(netns, path, {}, header=HEADER))['changed'] is True
    assert path.read_text() == '# %s\n' % HEADER


def test_apply_false_only_writes_the_file(netns, wanted, tmp_path):
    path = tmp_path / 'net.conf'
    before = live(netns, *wanted)
    res = ok(dropin(netns, path, wanted, apply=False))
    assert res['changed'] is True
    assert res['live_changed'] == {}
    assert path.read_text() == file_text(wanted, header=None)
    assert live(netns, *wanted) == before
    assert ok(dropin(netns, path, wanted, apply=False))['changed'] is False


def test_mode_is_fixed(netns, wanted, tmp_path):
    path = tmp_path / 'net.conf'
    ok(dropin(netns, path, wanted))
    path.chmod(0o600)
    res = ok(dropin(netns, path, wanted))
    assert res['changed'] is True and res['live_changed'] == {}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_value_the_kernel_refuses_fails_and_keeps_the_file(netns, tmp_path):
    path = tmp_path / 'net.conf'
    path.write_text('net.ipv4.tcp_notsent_lowat = 131073\n')
    before = live(netns, 'net.ipv4.tcp_notsent_lowat')
    res = dropin(netns, path, {'net.ipv4.tcp_notsent_lowat': 'lots'})
    assert res['failed'] is True
    assert 'net.ipv4.tcp_notsent_lowat' in res['msg'] and 'Invalid argument' in res['msg']
    assert path.read_text() == 'net.ipv4.tcp_notsent_lowat = 131073\n'
    assert live(netns, 'net.ipv4.tcp_notsent_lowat') == before


@pytest.mark.parametrize('sysctls, words', [
    ({'net.ipv4.ip_forward': 1, 'net/ipv4/ip_forward': 1}, ['same file']),
    ({'net..ipv4': 1}, ['net..ipv4']),
    ({'net.ipv4.conf.*.forwarding': 1}, ['glob']),
    ({'net.ipv4': 1}, ['net.ipv4', 'is a directory']),
    ({'net.ipv4.ip_forward': 1.5}, ['net.ipv4.ip_forward', 'float']),
])
def test_bad_arguments_rejected(netns, tmp_path, sysctls, words):
    path = tmp_path / 'net.conf'
    res = dropin(netns, path, sysctls)
    assert res['failed'] is True
    for word in words:
        assert word in res['msg'], res['msg']
    assert not path.exists()


def test_missing_directory_fails(netns, tmp_path):
    res = dropin(netns, tmp_path / 'nope' / 'net.conf', {'net.ipv4.ip_forward': 1})
    assert res['failed'] is True and 'does not exist' in res['msg']
