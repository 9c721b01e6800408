# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr.deploy.files on real files, run through the `ansible` CLI on localhost in a temporary
directory: made once, then unchanged; only what differs rewritten; check mode and diff; a
failed validation leaves the target and no temporary file; bad input fails before any change."""

from __future__ import absolute_import, division, print_function

import json
import os
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), 'ansible')
if not os.path.exists(ANSIBLE):
    ANSIBLE = os.path.join(ROOT, '.venv', 'bin', 'ansible')

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root: sets files to root:root')


def run(args, check=False, diff=False):
    cmd = [ANSIBLE, 'localhost', '-c', 'local', '-i', 'localhost,', '-e', 'ansible_python_interpreter=' + sys.executable,
           '-m', 'omr.deploy.files', '-a', json.dumps(args)]
    cmd += ['--check'] if check else []
    cmd += ['--diff'] if diff else []
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_STDOUT_CALLBACK='ansible.posix.json',
               ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_NOCOLOR='1')
    res = subprocess.run(cmd, cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=120)
    try:
        return json.loads(res.stdout)['plays'][0]['tasks'][0]['hosts']['localhost']
    except (ValueError, KeyError, IndexError):
        raise AssertionError('no result from ansible (rc=%d)\n%s\n%s' % (res.returncode, res.stdout, res.stderr))


def spec(tmp_path, unit='[Unit]\n'):
    return {'directories': [{'path': str(tmp_path / 'lib'), 'mode': '0700'}],
            'files': [{'path': str(tmp_path / 'lib' / 'prog.py'), 'content': 'print(1)\n', 'mode': '0600'},
                      {'path': str(tmp_path / 'x.service'), 'content': unit, 'mode': '0644'}]}


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_made_once_then_unchanged(tmp_path):
    res = run(spec(tmp_path))
    assert res['changed'] and res['paths'] == [str(tmp_path / 'lib'), str(tmp_path / 'lib' / 'prog.py'),
                                               str(tmp_path / 'x.service')]
    assert mode(tmp_path / 'lib') == 0o700 and mode(tmp_path / 'lib' / 'prog.py') == 0o600
    assert (tmp_path / 'x.service').read_text() == '[Unit]\n' and os.stat(tmp_path / 'x.service').st_uid == 0
    again = run(spec(tmp_path))
    assert not again['changed'] and again['paths'] == []


def test_only_what_differs_is_written_and_check_mode_writes_nothing(tmp_path):
    run(spec(tmp_path))
    before = os.stat(tmp_path / 'lib' / 'prog.py').st_ino
    checked = run(spec(tmp_path, unit='[Unit]\nDescription=x\n'), check=True, diff=True)
    assert checked['changed'] and checked['paths'] == [str(tmp_path / 'x.service')]
    assert checked['diff'] == [{'before_header': '%s (mode 0644, owner 0:0)' % (tmp_path / 'x.service'),
                                'after_header': '%s (mode 0644, owner 0:0)' % (tmp_path / 'x.service'),
                                'before': '[Unit]\n', 'after': '[Unit]\nDescription=x\n'}]
    assert (tmp_path / 'x.service').read_text() == '[Unit]\n'
    os.chmod(tmp_path / 'lib' / 'prog.py', 0o644)
    res = run(spec(tmp_path, unit='[Unit]\nDescription=x\n'))
    assert res['paths'] == [str(tmp_path / 'lib' / 'prog.py'), str(tmp_path / 'x.service')]
    assert mode(tmp_path / 'lib' / 'prog.py') == 0o600
    # A mode fixed in place: the same file, not a new one.
    assert os.stat(tmp_path / 'lib' / 'prog.py').st_ino == before
    assert (tmp_path / 'x.service').read_text() == '[Unit]\nDescription=x\n'


def test_a_refused_validation_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / 'rules.conf'
    target.write_text('ok\n')
    res = run({'files': [{'path': str(target), 'content': 'bad\n', 'mode': '0644', 'validate': 'grep -q ok %s'}]})
    assert res.get('failed') and 'grep -q ok %s refused the new content (rc=1)' in res['msg']
    assert target.read_text() == 'ok\n' and os.listdir(tmp_path) == ['rules.conf']
    res = run({'files': [{'path': str(target), 'content': 'ok again\n', 'mode': '0644', 'validate': 'grep -q ok %s'}]})
    assert res['changed'] and target.read_text() == 'ok again\n'


@pytest.mark.parametrize('change, message', [
    ({'mode': 420}, "mode 420 must be an octal string such as '0644'"),
    ({'owner': 'no-such-user-omr'}, "no user 'no-such-user-omr'"),
    ({'validate': 'nft -c -f'}, "validate 'nft -c -f' has no %s"),
])
def test_bad_input_fails_before_any_change(tmp_path, change, message):
    args = spec(tmp_path)
    args['files'][1].update(change)
    res = run(args)
    assert res.get('failed') and message in res['msg']
    assert os.listdir(tmp_path) == []
