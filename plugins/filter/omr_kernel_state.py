# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: omr_kernel_state
short_description: Whether a VPS runs the newest kernel it has installed, from uname and dpkg-query
version_added: 0.2.0
author: omr.deploy maintainers (!UNKNOWN)
description:
  - Reads C(uname -r) and the installed C(linux-image-*) packages and says whether a reboot is still needed.
    OMR's installer puts its kernel in place but the old one keeps running until a reboot, and sometimes after
    it when GRUB does not default to the new one (openmptcprouter#4291, #4088).
  - Only installed images count; metapackages (C(linux-image-amd64), C(linux-image-cloud-amd64)), debug symbols
    and removed packages that left configuration files are ignored. The kernel release is the package name
    without C(linux-image-) (C(6.18.32-20260519.x64v3-omr), C(6.12.67-x64v3-xanmod1), C(6.1.0-18-cloud-amd64)).
  - The newest image is ordered by release, as dpkg orders versions, the package version breaking ties. With
    O(family), the newest of that series when one is installed, since OMR pins its kernel in GRUB.
  - No image at all means a container, running its host's kernel.
options:
  _input:
    description: The output of C(uname -r).
    type: str
    required: true
  dpkg_query:
    description:
      - "The output of C(dpkg-query -W -f='${Package}\\t${Version}\\t${Status}\\n' 'linux-image-*'), as text or as a list of lines."
      - It is empty in a container, where dpkg-query also exits 1.
    type: raw
    required: true
  family:
    description: The kernel series asked for (the installer's C(KERNEL), e.g. C(6.18)); omit to skip that check.
    type: str
"""

EXAMPLES = r"""
- name: List the kernel images (dpkg-query exits 1 when there are none, as in a container)
  ansible.builtin.command:
    argv: [dpkg-query, -W, "-f=${Package}\t${Version}\t${Status}\n", linux-image-*]
  register: __omr_vps_kernel_images
  changed_when: false
  failed_when: __omr_vps_kernel_images.rc not in [0, 1]

- name: Read the running kernel (after a reboot, gather again)
  ansible.builtin.setup:
    gather_subset: [min]

- name: Check the VPS boots the kernel the installer installed
  ansible.builtin.assert:
    that: not __omr_vps_kernel.reboot_needed and __omr_vps_kernel.family_ok
    fail_msg: "{{ __omr_vps_kernel.message }}"
    quiet: true
  vars:
    __omr_vps_kernel: >-
      {{ ansible_facts.kernel
         | omr.deploy.omr_kernel_state(__omr_vps_kernel_images.stdout_lines, family=__omr_vps_omr_plan.kernel) }}
"""

RETURN = r"""
_value:
  description:
    - C(running), the running release; C(installed), C([{package, version, release}]) newest first; C(newest), a release or null.
    - C(reboot_needed), the newest installed release is not the running one; C(running_installed), the running release has its package.
    - C(family) and C(family_ok) (null without O(family)), whether the running release is of that series.
    - C(container), no image installed; C(unfinished), packages dpkg left half-installed or half-configured.
    - C(message), one sentence saying what is wrong or that all is well.
  type: dict
  sample:
    running: 6.1.0-18-cloud-amd64
    installed:
      - {package: linux-image-6.18.32-20260519.x64v3-omr, version: 6.18.32-20260519.x64v3-omr, release: 6.18.32-20260519.x64v3-omr}
      - {package: linux-image-6.1.0-18-cloud-amd64, version: 6.1.76-1, release: 6.1.0-18-cloud-amd64}
    newest: 6.18.32-20260519.x64v3-omr
    reboot_needed: true
    running_installed: true
    family: "6.18"
    family_ok: false
    container: false
    unfinished: []
    message: >-
      installed 6.18.32-20260519.x64v3-omr but still running 6.1.0-18-cloud-amd64: reboot (omr_vps_reboot_ok)
      or the OMR kernel is not the default in GRUB (openmptcprouter#4291)
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.omr.deploy.plugins.module_utils._omr_install import OmrInstallError, kernel_state


def omr_kernel_state(uname_r, dpkg_query, family=None):
    try:
        return kernel_state(uname_r, dpkg_query, family)
    except (OmrInstallError, ValueError) as exc:
        raise AnsibleFilterError("omr_kernel_state: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"omr_kernel_state": omr_kernel_state}
