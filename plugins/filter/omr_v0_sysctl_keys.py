# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: omr_v0_sysctl_keys
short_description: The out-of-tree MPTCP (v0) keys a sysctl.d file sets
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Returns the C(net.mptcp.mptcp_*) keys a sysctl.d file sets, in file order. They belong to the out-of-tree
    MPTCP v0 kernels (OMR's 5.4); upstream kernels (5.6 and later, MPTCP v1) have none of them.
  - OMR's installer writes them into C(/etc/sysctl.d/90-shadowsocks.conf) even for 6.x kernels and hides the
    errors with C(sysctl -p ... || true); C(systemd-sysctl) then logs an error for each at every boot.
    The role can report them, or comment them out, instead of failing on them.
  - Blank lines, C(#) and C(;) comments are skipped; the slash form (C(net/mptcp/mptcp_version)) and a leading
    C(-) are understood, as C(systemd-sysctl) reads them.
options:
  _input:
    description: The text of the sysctl.d file.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Read OMR's sysctl file
  ansible.builtin.slurp:
    src: /etc/sysctl.d/90-shadowsocks.conf
  register: __omr_vps_ss_sysctl

- name: Say which keys this kernel does not have
  ansible.builtin.debug:
    msg: "{{ __omr_vps_ss_sysctl.content | b64decode | omr.deploy.omr_v0_sysctl_keys }}"
"""

RETURN = r"""
_value:
  description: The v0 keys as the file spells them, in file order.
  type: list
  elements: str
  sample: [net.mptcp.mptcp_checksum, net.mptcp.mptcp_path_manager, net.mptcp.mptcp_scheduler,
           net.mptcp.mptcp_syn_retries, net.mptcp.mptcp_version]
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._omr_install import v0_sysctl_keys


def omr_v0_sysctl_keys(text):
    if text is not None and not isinstance(text, str):
        raise AnsibleFilterError("omr_v0_sysctl_keys: the input must be the file's text, got %s" % type(text).__name__)
    return v0_sysctl_keys(text)


class FilterModule(object):
    def filters(self):
        return {"omr_v0_sysctl_keys": omr_v0_sysctl_keys}
