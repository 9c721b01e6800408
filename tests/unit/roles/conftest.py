# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the tests of the roles' host programs: load a program from roles/*/files, and a
host that answers read commands from captured output and records every other command."""

import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIXTURES = os.path.join(ROOT, 'tests', 'unit', 'fixtures')


def load_program(role, name):
    """Import roles/<role>/files/<name> as a module (it finds plugins/module_utils itself)."""
    path = os.path.join(ROOT, 'roles', role, 'files', name)
    spec = importlib.util.spec_from_file_location(name.replace('-', '_').replace('.py', ''), path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def fixture_text(*parts):
    with open(os.path.join(FIXTURES, *parts), encoding='utf-8') as f:
        return f.read()


class FakeHost(object):
    """A Host for the programs: `answers` maps argv tuples to stdout (or (rc, stdout)); those are
    the reads. Any other command is recorded in `ran` and succeeds, as a change would."""

    def __init__(self, answers=None, files=None):
        self.answers = dict(answers or {})
        self.files = dict(files or {})
        self.ran = []

    def run(self, argv, stdin=None, check=True):
        key = tuple(argv)
        if key in self.answers:
            answer = self.answers[key]
            rc, out = answer if isinstance(answer, tuple) else (0, answer)
            if check and rc != 0:
                raise RuntimeError('%s failed' % ' '.join(argv))
            return rc, out, ''
        self.ran.append(list(argv) if stdin is None else (list(argv), stdin))
        return 0, '', ''

    def read(self, path):
        return self.files.get(path)

    def write(self, path, text):
        self.files[path] = text


def captured_host(directory, extra=None):
    """A FakeHost answering `ip -j ...`, `ip mptcp ...` and `nft list table ...` from the files of
    tests/unit/fixtures/<directory>/ (see the README there)."""
    def text(name):
        path = os.path.join(FIXTURES, directory, name)
        return fixture_text(directory, name) if os.path.exists(path) else None

    answers = {
        ('ip', '-j', 'link', 'show'): text('ip-j-link.json'),
        ('ip', '-j', 'addr', 'show'): text('ip-j-addr.json'),
        ('ip', '-j', '-4', 'route', 'show', 'table', 'all'): text('ip-j-route.json'),
        ('ip', '-j', '-4', 'rule', 'show'): text('ip-j-rule.json'),
        ('ip', 'mptcp', 'endpoint', 'show'): text('mptcp-endpoint.txt') or '',
        ('ip', 'mptcp', 'limits', 'show'): text('mptcp-limits.txt') or 'add_addr_accepted 0 subflows 2 \n',
    }
    for table in ('ip omr_router', 'ip omr_router_proxy', 'ip omr_router_vpn', 'ip omr_wifi_bridge'):
        name = 'nft-%s.txt' % table.split()[1]
        found = text(name)
        answers[('nft', 'list', 'table') + tuple(table.split())] = (0, found) if found else (1, '')
    answers.update(extra or {})
    files = {'/proc/sys/net/ipv4/ip_forward': text('ip_forward') or '0\n'}
    return FakeHost(answers, files)


@pytest.fixture
def fake_host():
    return FakeHost
