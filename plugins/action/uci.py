# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr.deploy.uci: bring an OpenWrt router's UCI to the desired sections with the minimal
`uci batch`, planned on the controller (the router has no Python). Documented in
plugins/modules/uci.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import secrets as _secrets

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.omr.deploy.plugins.module_utils._uci import (
    DIGEST_PREFIX, MASK, UciError, changes_match, check_spec, diff, mask_script, parse_show, plan_batch)

MARKER = '#omr-uci#'


def read_script(salt, packages):
    """Each package's `uci -X show` and pending `uci changes`, secrets masked on the router."""
    lines = [mask_script(salt), 'command -v uci >/dev/null 2>&1 || { echo "no uci command" >&2; false; } &&', '{']
    for pkg in packages:
        lines += ['echo "%s show %s"' % (MARKER, pkg), 'uci -q -X show %s | omr_uci_mask' % pkg,
                  'echo "%s changes %s"' % (MARKER, pkg), 'uci -q changes %s | omr_uci_mask' % pkg]
    lines.append('echo "%s end"; }' % MARKER)
    return '\n'.join(lines)


def changes_script(salt, packages):
    """`uci batch` on stdin (its stderr is the command's), then the pending changes, masked."""
    lines = [mask_script(salt), 'uci batch >/dev/null']
    for pkg in packages:
        lines += ['echo "%s changes %s"' % (MARKER, pkg), 'uci -q changes %s 2>/dev/null | omr_uci_mask' % pkg]
    lines.append('echo "%s end"' % MARKER)
    return '\n'.join(lines)


def split_output(stdout):
    """{(kind, package): [lines]} of read_script / changes_script output; None if it is cut short."""
    out, current, ended = {}, None, False
    for raw in (stdout or '').splitlines():
        line = raw.rstrip('\r')
        if line.startswith(MARKER):
            words = line[len(MARKER):].split()
            if words == ['end']:
                ended = True
                current = None
            elif len(words) == 2:
                current = (words[0], words[1])
                out.setdefault(current, [])
            continue
        if current is not None and line:
            out[current].append(line)
    return out if ended else None


def add_secrets(sections, values):
    """Put each secret ({"pkg.section.option": value}) into its named section's options. An empty
    value leaves the option out: the router keeps what it has."""
    sections = copy.deepcopy(sections)
    for path, value in (values or {}).items():
        parts = str(path).split('.')
        if len(parts) != 3:
            raise AnsibleActionFail('secrets: %r must be package.section.option' % (path,))
        pkg, name, opt = parts
        target = [s for s in sections if isinstance(s, dict) and s.get('package') == pkg and s.get('name') == name]
        if not target:
            raise AnsibleActionFail('secrets: %s names no section of `sections` (%s.%s)' % (path, pkg, name))
        if value is None or to_text(value) == '':
            continue
        spec = target[0]
        spec.setdefault('options', {})
        spec['options'] = dict(spec['options'], **{opt: to_text(value)})
        spec['secrets'] = list(spec.get('secrets') or []) + [opt]
    return sections


def unmask(lines):
    """Predicted or printed changes for a report: digests shown as the mask."""
    out = []
    for line in lines:
        at = line.find("'" + DIGEST_PREFIX)
        out.append(line[:at] + "'" + MASK + "'" if at >= 0 else line)
    return out


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_async = False

    def _run(self, cmd, in_data=None):
        return self._low_level_execute_command(cmd, in_data=in_data)

    def _fail(self, msg, **extra):
        raise AnsibleActionFail(msg, result=extra)

    def _revert(self, packages):
        self._run(' ; '.join('uci -q revert %s' % p for p in packages))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _valid, args = self.validate_argument_spec(argument_spec=dict(
            sections=dict(type='list', elements='dict', required=True),
            secrets=dict(type='dict', default={}, no_log=True),
            commit=dict(type='bool', default=True),
        ))
        sections = add_secrets(args['sections'], args['secrets'])
        # Names are checked before any of them reaches the router's shell.
        try:
            checked = [check_spec(s, 'sections[%d]' % i) for i, s in enumerate(sections)]
        except UciError as exc:
            raise AnsibleActionFail(to_text(exc))
        packages = []
        for spec in checked:
            if spec['package'] not in packages:
                packages.append(spec['package'])
        salt = _secrets.token_hex(16)

        # 1. read the packages (secrets as salted digests) and what is pending in them
        res = self._run(read_script(salt, packages))
        parts = split_output(res.get('stdout'))
        if res.get('rc') != 0 or parts is None:
            self._fail('reading uci on the router failed (rc=%s): %s' % (res.get('rc'), (res.get('stderr') or '').strip()),
                       rc=res.get('rc'))
        try:
            current, _skipped = parse_show('\n'.join(line for (kind, _pkg), lines in parts.items()
                                                     if kind == 'show' for line in lines))
            plan = plan_batch(current, sections, digests=True, salt=salt)
        except UciError as exc:
            raise AnsibleActionFail(to_text(exc))

        pending = dict((pkg, parts.get(('changes', pkg)) or []) for pkg in plan['packages'])
        pending = dict((pkg, lines) for pkg, lines in pending.items() if lines)
        if pending:
            lines = '; '.join(unmask(sum(pending.values(), [])))
            self._fail('%s ha%s uncommitted changes on the router (`uci changes`): %s; commit or revert them first, '
                       'omr.deploy.uci commits only its own'
                       % (', '.join(sorted(pending)), 's' if len(pending) == 1 else 've', lines),
                       pending=dict((k, unmask(v)) for k, v in pending.items()))

        result.update(changed=plan['changed'], packages=plan['packages'], batch=plan['shown'],
                      changes=dict((k, unmask(v)) for k, v in plan['changes'].items()),
                      sections_changed=self._sections_changed(plan))
        if plan['changed']:
            result['diff'] = diff(plan)
        if not plan['changed'] or self._task.check_mode:
            return result

        # 2. the batch on stdin (never on a command line, which -vvv prints), then what uci recorded
        res = self._run(changes_script(salt, plan['packages']), in_data='\n'.join(plan['batch']) + '\n')
        recorded = split_output(res.get('stdout'))
        errors = (res.get('stderr') or '').strip()
        # `uci batch` exits 0 even when lines fail: any message on stderr is a failure.
        if res.get('rc') != 0 or errors or recorded is None:
            self._revert(plan['packages'])
            self._fail('uci batch failed on the router, reverted %s: %s (rc=%s)'
                       % (', '.join(plan['packages']), errors or 'no output', res.get('rc')), batch=plan['shown'])
        for pkg in plan['packages']:
            have = recorded.get(('changes', pkg)) or []
            if not changes_match(plan['changes'].get(pkg, []), have):
                self._revert(plan['packages'])
                self._fail('uci recorded other changes in %s than planned, reverted %s: planned %s, recorded %s'
                           % (pkg, ', '.join(plan['packages']), unmask(plan['changes'].get(pkg, [])), unmask(have)),
                           batch=plan['shown'])
        if not args['commit']:
            return result

        # 3. commit only the touched packages
        res = self._run(' && '.join('uci commit %s' % p for p in plan['packages']))
        if res.get('rc') != 0:
            self._fail('uci commit failed on the router (rc=%s): %s' % (res.get('rc'), (res.get('stderr') or '').strip()))
        return result

    @staticmethod
    def _sections_changed(plan):
        """pkg.section of every section a batch line touches (the handlers key on them)."""
        out = []
        for line in plan['shown']:
            words = line.split(' ', 2)
            if words[0] == 'add':
                name = '%s.@%s[-1]' % (words[1], words[2])
            else:
                name = '.'.join(words[1].split('=', 1)[0].split('.')[:2])
            if name not in out:
                out.append(name)
        return out
