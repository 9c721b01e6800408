#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mptcp_info
short_description: Gather Multipath TCP (MPTCP) kernel, path-manager and endpoint facts
version_added: 0.1.0
description:
  - Detects which MPTCP implementation the running kernel has
    (upstream MPTCPv1, the out-of-tree v0 kernels older OpenMPTCProuter releases use, or none),
    the same way OpenMPTCProuter's C(multipath) helper does
    (C(/proc/sys/net/mptcp/enabled) means v1, C(/proc/sys/net/mptcp/mptcp_enabled) means v0).
  - Reads every file in C(/proc/sys/net/mptcp/), the kernel release,
    and the in-kernel path manager state from C(ip mptcp limits show) and C(ip mptcp endpoint show).
  - Everything is collected with one POSIX shell command, and the output is parsed on the controller.
  - Returns the result as the C(omr_mptcp) fact. Nothing on the target is changed.
  - MPTCP settings, endpoints and limits are per network namespace; the facts describe the namespace
    the connection lands in.
author:
  - omr.deploy maintainers (!UNKNOWN)
options: {}
extends_documentation_fragment:
  - omr.deploy.attributes
  - omr.deploy.attributes.INFO_MODULE
  - omr.deploy.attributes.FACTS
attributes:
  platform:
    support: full
    platforms: [linux, openwrt]
    details:
      - Any Linux with a POSIX C(sh) (dash, bash or busybox ash), C(uname), C(grep) and C(head).
      - On OpenWrt (the OpenMPTCProuter router) it needs no Python, because it runs as an action plugin.
      - C(ip mptcp) needs the full iproute2 C(ip) (OpenWrt package C(ip-full)); with busybox C(ip)
        the C(ip_mptcp) fact is false, C(limits) is null and C(endpoints) is empty.
notes:
  - This runs as an action plugin. The gather command goes over the connection as a raw shell command
    and its output is parsed on the controller, so the target needs no Python.
    The module file itself is only a fallback that does the same thing locally with Python.
  - Missing pieces (no MPTCP at all, no C(ip mptcp) support) do not make the task fail; they show in the facts.
    The task fails only when the command cannot run or its output is truncated.
  - Values under C(sysctl) are integers when the file holds one integer, else strings
    (space-separated lists such as C(available_schedulers) stay strings).
seealso:
  - module: omr.deploy.mptcp_endpoint
  - name: MPTCP sysctl reference
    description: Upstream kernel documentation of the C(net.mptcp.*) sysctls.
    link: https://docs.kernel.org/networking/mptcp-sysctl.html
"""

EXAMPLES = r"""
- name: Gather MPTCP facts (works on the OpenWrt router without Python, and on the VPS)
  omr.deploy.mptcp_info:

- name: The VPS must run upstream MPTCP, enabled
  ansible.builtin.assert:
    that:
      - ansible_facts.omr_mptcp.flavour == 'v1'
      - ansible_facts.omr_mptcp.enabled
    fail_msg: "MPTCP is {{ ansible_facts.omr_mptcp.flavour }} on kernel {{ ansible_facts.omr_mptcp.kernel }}"

- name: Every public address of the VPS is announced (signal) and limits are 8/8
  ansible.builtin.assert:
    that:
      - "ansible_facts.omr_mptcp.limits == {'subflows': 8, 'add_addr_accepted': 8}"
      - ansible_facts.omr_mptcp.endpoints | selectattr('flags', 'contains', 'signal')
        | map(attribute='address') | list | length > 0

- name: Show the scheduler in use
  ansible.builtin.debug:
    msg: "{{ ansible_facts.omr_mptcp.scheduler }} of {{ ansible_facts.omr_mptcp.available_schedulers }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    omr_mptcp:
      description: MPTCP state of the target's network namespace.
      returned: always
      type: dict
      contains:
        flavour:
          description:
            - C(v1) when C(/proc/sys/net/mptcp/enabled) exists (upstream MPTCP, kernel 5.6 and later).
            - C(v0) when C(/proc/sys/net/mptcp/mptcp_enabled) exists (out-of-tree multipath-tcp.org kernel).
            - C(none) when neither exists.
          returned: always
          type: str
          choices: [v1, v0, none]
          sample: v1
        enabled:
          description: Whether MPTCP is switched on (C(net.mptcp.enabled) or C(net.mptcp.mptcp_enabled) is not 0). False for C(none).
          returned: always
          type: bool
          sample: true
        kernel:
          description: Kernel release, as C(uname -r) prints it.
          returned: always
          type: str
          sample: 6.18.44-fc-v782
        sysctl:
          description:
            - Every file in C(/proc/sys/net/mptcp/), keyed by full sysctl name.
            - Integers are returned as int, anything else as a string. Empty when the directory is missing.
          returned: always
          type: dict
          sample:
            net.mptcp.add_addr_timeout: 120
            net.mptcp.allow_join_initial_addr_port: 1
            net.mptcp.available_path_managers: kernel userspace
            net.mptcp.available_schedulers: default
            net.mptcp.blackhole_timeout: 3600
            net.mptcp.checksum_enabled: 0
            net.mptcp.close_timeout: 60
            net.mptcp.enabled: 1
            net.mptcp.path_manager: kernel
            net.mptcp.pm_type: 0
            net.mptcp.scheduler: default
            net.mptcp.stale_loss_cnt: 4
            net.mptcp.syn_retrans_before_tcp_fallback: 2
        path_manager:
          description:
            - v1, the C(path_manager) sysctl (kernel 6.15 and later), else C(pm_type) mapped
              0 to C(kernel) and 1 to C(userspace).
            - v0, the C(mptcp_path_manager) sysctl (for example C(fullmesh)).
            - Null for C(none), or when the kernel exposes neither.
          returned: always
          type: str
          sample: kernel
        scheduler:
          description: v1 C(scheduler) sysctl (kernel 6.6 and later), v0 C(mptcp_scheduler). Null when absent.
          returned: always
          type: str
          sample: default
        available_schedulers:
          description: v1 C(available_schedulers) split on spaces. Empty for v0, C(none), or older kernels.
          returned: always
          type: list
          elements: str
          sample: [default]
        available_path_managers:
          description: v1 C(available_path_managers) split on spaces. Empty when the kernel does not expose it.
          returned: always
          type: list
          elements: str
          sample: [kernel, userspace]
        limits:
          description: In-kernel path manager limits from C(ip mptcp limits show). Null when C(ip mptcp) is unusable.
          returned: always
          type: dict
          sample: {subflows: 8, add_addr_accepted: 8}
          contains:
            subflows:
              description: Maximum number of additional subflows per connection.
              type: int
              returned: when C(ip_mptcp) is true
              sample: 8
            add_addr_accepted:
              description: Maximum number of ADD_ADDR announcements accepted per connection.
              type: int
              returned: when C(ip_mptcp) is true
              sample: 8
        endpoints:
          description: Endpoints from C(ip mptcp endpoint show), in kernel order. Empty when C(ip mptcp) is unusable.
          returned: always
          type: list
          elements: dict
          sample:
            - {id: 1, address: 192.0.2.1, dev: eth0, port: null, flags: [signal]}
            - {id: 2, address: 198.51.100.7, dev: wan2, port: null, flags: [subflow, backup, fullmesh]}
          contains:
            id:
              description: Endpoint id.
              type: int
              returned: always
              sample: 1
            address:
              description: IPv4 or IPv6 address, as C(ip) prints it.
              type: str
              returned: always
              sample: 192.0.2.1
            dev:
              description: Interface the endpoint is bound to, or null.
              type: str
              returned: always
              sample: eth0
            port:
              description: Port announced with the address (signal endpoints only), or null.
              type: int
              returned: always
              sample: null
            flags:
              description:
                - Endpoint flags in kernel order, among C(signal), C(subflow), C(backup), C(fullmesh),
                  C(implicit) and C(laminar).
                - Older iproute2 prints unknown kernel flags as C(rawflags XX); known bits are named, other bits
                  are kept as a C(0xNN) string.
              type: list
              elements: str
              returned: always
              sample: [signal]
        ip_mptcp:
          description: Whether both C(ip mptcp limits show) and C(ip mptcp endpoint show) succeeded.
          returned: always
          type: bool
          sample: true
        congestion_control:
          description:
            - The TCP congestion control in use (C(current)), those the kernel has (C(available)), and those a
              network namespace that is not the host's may choose from (C(allowed)).
            - The network sysctls of M(omr.deploy.sysctl_dropin) pick from them.
          returned: always
          type: dict
          version_added: 0.2.0
          sample:
            current: bbr
            available: [reno, cubic, bbr]
            allowed: [reno, bbr]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.omr.deploy.plugins.module_utils._mptcp import (
    GATHER_SCRIPT,
    MptcpParseError,
    parse_gather,
)


def main():
    # Fallback only: the action plugin of the same name normally runs instead.
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    rc, out, err = module.run_command(['/bin/sh', '-c', GATHER_SCRIPT],
                                      environ_update={'LANG': 'C', 'LC_ALL': 'C'})
    if rc != 0:
        module.fail_json(msg='The MPTCP gather command failed (rc=%d): %s' % (rc, err.strip()),
                         rc=rc, stdout=out, stderr=err)
    try:
        facts = parse_gather(out)
    except MptcpParseError as exc:
        module.fail_json(msg=str(exc), rc=rc, stdout=out, stderr=err)
    module.exit_json(changed=False, ansible_facts={'omr_mptcp': facts})


if __name__ == '__main__':
    main()
