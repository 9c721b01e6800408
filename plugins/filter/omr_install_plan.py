# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: omr_install_plan
short_description: Check the settings for OMR's own VPS installer and return the plan to run it
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Validates the vps role's settings for C(omr_vps_stack=omr), before anything on a host changes, and returns
    the URL and checksum of OpenMPTCProuter's installer (C(debian-x86_64.sh) of the chosen channel) and the
    environment to run it with. Errors name the role variable.
  - Refuses an installer without a sha256 (no unverified script ever runs), a malformed checksum, a kernel the
    installer does not offer (C(5.4 6.1 6.6 6.10 6.11 6.12 6.18)), a float kernel YAML made ambiguous (C(6.10)
    is read as 6.1, so quote it), an unknown channel, an empty or unquoted numeric version, a switch or secret name
    the installer does not read, a switch value other than yes, no, true or false, a C(reboot_ok) that is not a
    real boolean, a timeout that is not a positive number and an installer URL that is not http(s).
  - Secret values never reach this filter; O(_input.secrets) only says which ones the role passes, and a value
    that is not a boolean is refused without being shown.
  - With C(stack=native) returns only C(stack) and ignores the rest.
options:
  _input:
    description: The settings.
    type: dict
    required: true
    suboptions:
      stack:
        description: C(omr_vps_stack), C(native) or C(omr).
        type: str
        required: true
      channel:
        description: C(omr_vps_omr_channel), C(stable) (C(/server/)), C(rc) (C(/server-rc/)) or C(test) (C(/server-test/)).
        type: str
      version:
        description: C(omr_vps_omr_version), the omr-server version the installer writes to C(/etc/motd), e.g. C('0.1052').
        type: str
      kernel:
        description: C(omr_vps_omr_kernel), the installer's C(KERNEL); empty means its default, C(6.18).
        type: str
      installer_url:
        description: C(omr_vps_omr_installer_url), an http(s) URL replacing the channel's.
        type: str
      installer_sha256:
        description: C(omr_vps_omr_installer_sha256), C(sha256sum) of the installer you reviewed (64 hex digits, C(sha256:) prefix allowed).
        type: str
      features:
        description: "C(omr_vps_omr_features), C({SWITCH: yes|no}) for the installer's feature and behaviour switches."
        type: dict
      secrets:
        description: "C({NAME: true|false}): which of the installer's secrets (C(OMR_ADMIN_PASS), C(PSK), ...) the role sets."
        type: dict
      reboot_ok:
        description: C(omr_vps_reboot_ok), a real boolean.
        type: bool
      install_timeout:
        description: C(omr_vps_omr_install_timeout), seconds.
        type: int
      key_file:
        description: Where the role keeps the harvested Server key; passed through.
        type: str
"""

EXAMPLES = r"""
- name: Check the installer settings before any change
  ansible.builtin.set_fact:
    __omr_vps_omr_plan: >-
      {{ {'stack': omr_vps_stack, 'channel': omr_vps_omr_channel, 'version': omr_vps_omr_version,
          'kernel': omr_vps_omr_kernel, 'installer_url': omr_vps_omr_installer_url,
          'installer_sha256': omr_vps_omr_installer_sha256, 'features': omr_vps_omr_features,
          'secrets': dict(omr_vps_omr_secrets | list
                          | zip(omr_vps_omr_secrets.values() | map('default', '', true) | map('ternary', true, false))),
          'reboot_ok': omr_vps_reboot_ok, 'install_timeout': omr_vps_omr_install_timeout}
         | omr.deploy.omr_install_plan }}
# Only whether each secret is set goes in: the task needs no no_log, and its error stays readable.

- name: Download the installer, refused unless its checksum matches
  ansible.builtin.get_url:
    url: "{{ __omr_vps_omr_plan.url }}"
    checksum: "sha256:{{ __omr_vps_omr_plan.sha256 }}"
    dest: /root/omr-install.sh
    mode: "0700"
"""

RETURN = r"""
_value:
  description:
    - For C(stack=omr), C({stack, url, sha256, channel, version, kernel, env, secret_names, omr_admin, reboot_ok, timeout, key_file}).
    - C(env) is the non-secret environment, C(KERNEL) and the declared switches as yes or no, sorted by name.
    - C(secret_names) lists, sorted, the secrets the role passes (their values are added in a C(no_log) task).
    - C(omr_admin) tells whether the installer sets up omr-admin, where the Server key lives.
    - For C(stack=native), C({stack}).
  type: dict
  sample:
    stack: omr
    url: https://www.openmptcprouter.com/server/debian-x86_64.sh
    sha256: 0f343b0931126a20f133d67c2b018a3b5e2d5c8f9e3f5a3c6e4c1f6a7d8e9f00
    channel: stable
    version: "0.1052"
    kernel: "6.18"
    env: {FAIL2BAN: "no", KERNEL: "6.18", UPDATE_OS: "no"}
    secret_names: [OMR_ADMIN_PASS]
    omr_admin: true
    reboot_ok: false
    timeout: 3600
    key_file: null
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._omr_install import OmrInstallError, check_install


def omr_install_plan(settings):
    try:
        return check_install(settings)
    except OmrInstallError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"omr_install_plan": omr_install_plan}
