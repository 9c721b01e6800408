#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: memory_info
short_description: Memory an OMR VPS has, and what its services use
version_added: 0.1.0
author:
  - omr.deploy maintainers (!UNKNOWN)
description:
  - Reads how much memory the VPS has and how much of it services can really use, and
    returns it as the C(omr_memory) fact. It changes nothing.
  - RV(ansible_facts.omr_memory.effective_mb) is the smaller of C(MemTotal) and the memory cgroup limit. An
    OpenVZ/LXC/podman VPS often shows the host's RAM in C(/proc/meminfo) while a cgroup
    limit is what binds.
  - RV(ansible_facts.omr_memory.installed_mb) estimates the plan's RAM. A "1 GB" KVM whose C(MemTotal) reads about
    980 MB is recognised as 1024 MB. The estimate comes from the cgroup limit when one at
    or below C(MemTotal) is set, else from the online memory blocks in
    C(/sys/devices/system/memory), else from C(MemTotal) rounded up to a plan size
    (multiples of 128 MB up to 1 GB, 256 MB up to 4 GB, 1 GB up to 16 GB, 2 GB above)
    when the gap is within 12 %.
  - The cgroup limit is the minimum along the process's cgroup path (cgroup v1 and v2,
    including a cgroup namespace whose limit sits at the mount root). The value C(max)
    and the v1 page-counter maximum mean unlimited.
  - With O(units), it also reports the processes and memory (Pss, else VmRSS) of systemd
    units.
extends_documentation_fragment:
  - omr.deploy.attributes
  - omr.deploy.attributes.INFO_MODULE
  - omr.deploy.attributes.FACTS
attributes:
  platform:
    platforms: posix
options:
  units:
    description:
      - systemd units to report on, for example V(shadowsocks-libev-manager@manager) or
        V(glorytun-tcp@tun0.service). A name without a suffix means a C(.service).
      - Units that do not exist are reported with RV(ansible_facts.omr_memory.units.present=false).
    type: list
    elements: str
    default: []
notes:
  - Run it with root privileges to get Pss for every process. Without them the module
    falls back to VmRSS, which counts shared pages in full.
  - Inside a container without a memory limit, C(installed_mb) is the host's RAM.
    That is what the container can use.
  - If the process itself runs under a systemd C(MemoryMax=), for example a limited
    C(user.slice) for SSH sessions, that limit is what the module reports. It is also
    what the session's processes can use.
seealso:
  - plugin: omr.deploy.vps_net_sysctls
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Read memory facts
  omr.deploy.memory_info:

- name: Refuse VPSes below the 1 GB OMR asks for
  ansible.builtin.assert:
    that: ansible_facts.omr_memory.installed_mb >= 1024
    fail_msg: >-
      {{ ansible_facts.omr_memory.installed_mb }} MB
      ({{ ansible_facts.omr_memory.installed_source }}) is below OMR's 1 GB minimum

- name: Memory used by the tunnel daemons
  omr.deploy.memory_info:
    units:
      - shadowsocks-libev-manager@manager
      - glorytun-tcp@tun0
      - omr-admin

- name: Show what each one uses
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.rss_mb }} MB in {{ item.value.pids | length }} processes"
  loop: "{{ ansible_facts.omr_memory.units | dict2items }}"
  when: item.value.present
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    omr_memory:
      description: Memory of the VPS. Sizes are in MB (MiB), rounded down.
      returned: always
      type: dict
      contains:
        meminfo_total_mb:
          description: C(MemTotal) from C(/proc/meminfo).
          returned: always
          type: int
          sample: 979
        meminfo_available_mb:
          description:
            - C(MemAvailable) from C(/proc/meminfo), or MemFree + Buffers + Cached on
              kernels that lack it. In a container without lxcfs this describes the host.
          returned: always
          type: int
          sample: 712
        swap_total_mb:
          description: C(SwapTotal) from C(/proc/meminfo).
          returned: always
          type: int
          sample: 0
        cgroup_version:
          description: Version of the cgroup hierarchy holding the memory controller, V(null) when none does.
          returned: always
          type: int
          sample: 2
        cgroup_limit_mb:
          description: Memory cgroup limit that binds this process (minimum along its cgroup path), V(null) when unlimited.
          returned: always
          type: int
          sample: 512
        effective_mb:
          description: What services can really use, the smaller of C(MemTotal) and the cgroup limit.
          returned: always
          type: int
          sample: 979
        installed_mb:
          description: Best estimate of the plan's RAM.
          returned: always
          type: int
          sample: 1024
        installed_source:
          description: Where RV(ansible_facts.omr_memory.installed_mb) comes from.
          returned: always
          type: str
          choices: [cgroup, memory_blocks, meminfo]
          sample: memory_blocks
        virtualization:
          description:
            - Virtualization technology, as C(systemd-detect-virt) names it, for example
              V(kvm), V(qemu), V(xen), V(vmware), V(podman), V(docker), V(lxc), V(openvz),
              or V(none).
            - Without C(systemd-detect-virt) the module makes similar checks itself and
              answers V(vm-other) for an unknown hypervisor.
          returned: always
          type: str
          sample: kvm
        container:
          description: Whether RV(ansible_facts.omr_memory.virtualization) is a container, which shares the host's kernel-wide sysctls.
          returned: always
          type: bool
          sample: false
        page_size:
          description: Page size in bytes, the unit of C(net.ipv4.tcp_mem) and C(net.ipv4.udp_mem).
          returned: always
          type: int
          sample: 4096
        units:
          description: One entry per unit in O(units), keyed by the name as given. Empty when O(units) is empty.
          returned: always
          type: dict
          sample:
            systemd-journald:
              present: true
              active: true
              pids: [34]
              rss_mb: 7.5
          contains:
            present:
              description: Whether systemd knows the unit (its C(LoadState) is not C(not-found)).
              returned: always
              type: bool
              sample: true
            active:
              description: Whether the unit's C(ActiveState) is C(active).
              returned: always
              type: bool
              sample: true
            pids:
              description: Processes in the unit's cgroup and its sub-cgroups.
              returned: always
              type: list
              elements: int
              sample: [34]
            rss_mb:
              description: Sum of the processes' proportional set size (Pss), or VmRSS where Pss is unreadable, in MB.
              returned: always
              type: float
              sample: 7.5
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.omr.deploy.plugins.module_utils._memory import (
    HostFS,
    gather,
    parse_mountinfo,
    parse_systemctl_show,
    unit_memory,
)

C_LOCALE = {'LANG': 'C', 'LC_ALL': 'C'}


def detect_virt(module):
    path = module.get_bin_path('systemd-detect-virt')
    if not path:
        return None
    # prints "none" and exits 1 on bare metal: the output is the answer, not rc
    dummy, out, dummy = module.run_command([path], environ_update=C_LOCALE)
    return out.strip() or None


def units_info(module, fs, units):
    result = {}
    if not units:
        return result
    mounts = parse_mountinfo(fs.read('/proc/self/mountinfo'))
    systemctl = module.get_bin_path('systemctl')
    absent = {'present': False, 'active': False, 'pids': [], 'rss_mb': 0.0}
    for name in units:
        show = {}
        if systemctl:
            rc, out, err = module.run_command(
                [systemctl, 'show', '-p', 'Id,LoadState,ActiveState,MainPID,ControlGroup', '--', name],
                environ_update=C_LOCALE)
            if rc == 0:
                show = parse_systemctl_show(out)
            else:
                module.warn('systemctl show %s failed (rc=%d): %s' % (name, rc, err.strip()))
        if not show.get('LoadState'):
            result[name] = dict(absent)
            continue
        result[name] = unit_memory(fs, show, mounts)
    if not systemctl:
        module.warn('systemctl not found: units reported as not present')
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            units=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )
    fs = HostFS()
    facts = gather(fs, systemd_detect_virt=detect_virt(module),
                   page_size=os.sysconf('SC_PAGE_SIZE'))
    if facts['meminfo_total_mb'] is None:
        module.fail_json(msg='cannot read MemTotal from /proc/meminfo')
    facts['units'] = units_info(module, fs, module.params['units'])
    module.exit_json(changed=False, ansible_facts={'omr_memory': facts})


if __name__ == '__main__':
    main()
