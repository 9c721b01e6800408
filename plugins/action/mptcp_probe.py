# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr.deploy.mptcp_probe: client=python runs the module on the target; client=curl, for a router
without Python, runs one shell command (curl against the server's HTTP mode) over the connection
and parses its output here. Documented in plugins/modules/mptcp_probe.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import secrets

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash
from ansible_collections.omr.deploy.plugins.module_utils._speedtest import (
    SpeedtestError, curl_script, parse_curl_probe)

# The module's options (plugins/modules/mptcp_probe.py); a unit test keeps them the same.
ARGUMENT_SPEC = dict(
    host=dict(type='str', required=True),
    port=dict(type='int', default=65432),
    direction=dict(type='str', choices=['download', 'upload'], default='download'),
    seconds=dict(type='int', default=5),
    bytes=dict(type='int'),
    bind_address=dict(type='str'),
    protocol=dict(type='str', choices=['mptcp', 'tcp'], default='mptcp'),
    timeout=dict(type='int', default=10),
    client=dict(type='str', choices=['python', 'curl'], default='python'),
    interfaces=dict(type='dict'),
)


def check_curl_args(args):
    """What client=curl cannot do, refused before anything runs on the target."""
    if args['direction'] != 'download':
        return 'client=curl measures downloads only; direction=upload needs client=python (Python on the target)'
    if args['bytes'] is not None:
        return 'client=curl sends for seconds; bytes needs client=python (Python on the target)'
    if not 1 <= args['port'] <= 65535:
        return 'port must be between 1 and 65535, got %d' % args['port']
    if args['seconds'] <= 0:
        return 'seconds must be above 0, got %d' % args['seconds']
    if args['timeout'] <= 0:
        return 'timeout must be above 0, got %d' % args['timeout']
    for dev, address in (args['interfaces'] or {}).items():
        if not isinstance(address, str) or not address:
            return 'interfaces: %s must map to its WAN address (a string), got %r' % (dev, address)
    return None


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        if self._task.args.get('client', 'python') != 'curl':
            # The module itself, as the normal action would run it (it checks its own options).
            wrap_async = self._task.async_val and not self._connection.has_native_async
            result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result

        if self._task.async_val:
            raise AnsibleActionFail('client=curl cannot run async')
        _valid, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        problem = check_curl_args(args)
        if problem:
            raise AnsibleActionFail(problem)
        interfaces = dict((str(k), str(v)) for k, v in (args['interfaces'] or {}).items())
        try:
            cmd = curl_script(args['host'], args['port'], args['seconds'], secrets.randbits(63),
                              protocol=args['protocol'], bind_address=args['bind_address'],
                              interfaces=interfaces, timeout=args['timeout'])
        except SpeedtestError as exc:
            raise AnsibleActionFail(str(exc))
        res = self._low_level_execute_command(cmd)
        try:
            probe = parse_curl_probe(res.get('stdout', ''), protocol=args['protocol'], interfaces=interfaces)
        except SpeedtestError as exc:
            stderr = (res.get('stderr') or '').strip()
            raise AnsibleActionFail(
                '%s (to %s port %d)%s' % (exc, args['host'], args['port'],
                                          '; rc=%s: %s' % (res.get('rc'), stderr) if res.get('rc') else ''),
                result=dict(rc=res.get('rc'), stdout=res.get('stdout'), stderr=res.get('stderr')))
        warnings = probe.pop('warnings')
        result.update(probe, changed=False)
        if warnings:
            result['warnings'] = warnings
        return result
