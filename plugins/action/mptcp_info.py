# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Runs instead of plugins/modules/mptcp_info.py: the OpenWrt router has no Python,
# so the gather script goes over the connection as a raw shell command and is
# parsed here, on the controller.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.omr.deploy.plugins.module_utils._mptcp import (
    GATHER_SCRIPT,
    MptcpParseError,
    parse_gather,
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        # No options: this rejects any that were given, with Ansible's usual message.
        self.validate_argument_spec(argument_spec={})

        res = self._low_level_execute_command(GATHER_SCRIPT)
        rc = res.get('rc')
        if rc != 0:
            raise AnsibleActionFail(
                'The MPTCP gather command could not run on the target (rc=%s): %s'
                % (rc, (res.get('stderr') or res.get('stdout') or '').strip()),
                result=dict(rc=rc, stdout=res.get('stdout'), stderr=res.get('stderr')))
        try:
            facts = parse_gather(res.get('stdout', ''))
        except MptcpParseError as exc:
            raise AnsibleActionFail(
                '%s; is /bin/sh a POSIX shell on the target?' % exc,
                result=dict(rc=rc, stdout=res.get('stdout'), stderr=res.get('stderr')))

        result.update(changed=False, ansible_facts={'omr_mptcp': facts})
        return result
