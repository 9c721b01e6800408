# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vps_net_sysctls
author:
  - omr.deploy maintainers (!UNKNOWN)
version_added: 0.1.0
short_description: Network sysctls for an OMR VPS, sized to its memory
description:
  - Returns the network sysctls an OpenMPTCProuter VPS should carry, as a dictionary of
    sysctl name to value, ready for M(ansible.posix.sysctl) in a loop.
  - C(net.ipv4.tcp_mem) and C(net.ipv4.udp_mem) (in pages) are sized the way OMR's own
    C(omr-net-mem) does (Ysurac/openmptcprouter-vps commit 0d87b2ae). The pressure value
    is 16 % of memory from 768 MB up, 12 % from 192 MB, 8 % below for TCP, 12 % (at
    least the kernel's 1/8) for UDP, with low, pressure and high in the kernel's ratio
    of 3/4, 1 and 3/2. The combined high marks stay below 75 % of memory. The installer's static
    C(409600 819200 1638400) (6.4 GB) exceeds a 1 GB VPS's RAM, so the kernel never
    applies memory pressure there.
  - Per-socket buffer maxima (C(net.core.rmem_max), C(net.core.wmem_max) and the last
    field of C(net.ipv4.tcp_rmem)/C(net.ipv4.tcp_wmem)) are memory/16, clamped to
    4 MB..64 MB, and never above the C(tcp_mem) pressure threshold in bytes.
  - Fixed tuning close to OMR's 6.x C(90-shadowsocks.conf) using upstream keys only,
    and the MPTCP v1 keys C(net.mptcp.*). The out-of-tree v0 keys C(net.mptcp.mptcp_*)
    are never returned.
  - C(net.ipv4.tcp_congestion_control) follows O(congestion_control) among what
    O(congestion_controls) offers; by default C(bbr), else C(cubic), else C(reno). On the
    lab's delayed links BBR bonded more than a loss-based control, which falls to a fraction of
    a lossy delayed link (bench/README.md). Without a list, the key is left out.
  - Values are strings as C(sysctl -n) prints them, with single spaces between fields.
notes:
  - C(tcp_mem), C(udp_mem), C(net.core.*) are global to the kernel, not per network
    namespace. In a container, setting them changes the host, so gate them there.
  - Pass the host's memory as seen by services, for example
    C(ansible_facts.omr_memory.effective_mb) from M(omr.deploy.memory_info).
positional: _input
options:
  _input:
    description: Memory the VPS can use, in MB (MiB).
    type: int
    required: true
  page_size:
    description:
      - Page size of the host in bytes (C(getconf PAGESIZE));
        C(tcp_mem) and C(udp_mem) count pages.
    type: int
    default: 4096
  congestion_controls:
    description:
      - The host's C(net.ipv4.tcp_available_congestion_control) (in a container, C(tcp_allowed_congestion_control)),
        as a list or as the space-separated string C(sysctl -n) prints.
    type: raw
    default: []
  congestion_control:
    description:
      - C(auto) (C(bbr), else C(cubic), else C(reno)), C(loss) (C(cubic), else C(reno)), C(kernel) (leave the
        kernel's), or the name of a control, which O(congestion_controls) must offer.
    type: str
    default: auto
    version_added: 0.2.0
  var:
    description: The variable to name when O(congestion_control) is not offered.
    type: str
    default: omr_vps_congestion_control
    version_added: 0.2.0
seealso:
  - module: omr.deploy.memory_info
  - module: ansible.posix.sysctl
"""

EXAMPLES = r"""
- name: Read memory facts
  omr.deploy.memory_info:

- name: Read the available congestion controls
  ansible.builtin.slurp:
    src: /proc/sys/net/ipv4/tcp_available_congestion_control
  register: __omr_cc

- name: Apply memory-sized network sysctls
  ansible.posix.sysctl:
    name: "{{ item.key }}"
    value: "{{ item.value }}"
    sysctl_file: /etc/sysctl.d/90-omr.conf
  loop: "{{ ansible_facts.omr_memory.effective_mb
            | omr.deploy.vps_net_sysctls(page_size=ansible_facts.omr_memory.page_size,
                                         congestion_controls=__omr_cc.content | b64decode)
            | dict2items }}"

# 1024 | omr.deploy.vps_net_sysctls(congestion_controls='reno cubic bbr') gives, among others:
#   net.ipv4.tcp_mem: "31457 41943 62914"     (high = 246 MB, 24 % of 1 GB)
#   net.ipv4.udp_mem: "24576 32768 49152"
#   net.ipv4.tcp_wmem: "4096 131072 67108864"
#   net.ipv4.tcp_congestion_control: cubic
"""

RETURN = r"""
_value:
  description:
    - Sysctl name to value (string). The keys are C(net.core.netdev_max_backlog),
      C(net.core.rmem_max), C(net.core.somaxconn), C(net.core.wmem_max),
      C(net.ipv4.ip_local_port_range), C(net.ipv4.tcp_fastopen),
      C(net.ipv4.tcp_fin_timeout), C(net.ipv4.tcp_max_syn_backlog),
      C(net.ipv4.tcp_mem), C(net.ipv4.tcp_mtu_probing), C(net.ipv4.tcp_notsent_lowat),
      C(net.ipv4.tcp_rmem), C(net.ipv4.tcp_slow_start_after_idle),
      C(net.ipv4.tcp_tw_reuse), C(net.ipv4.tcp_wmem), C(net.ipv4.udp_mem),
      C(net.mptcp.add_addr_timeout), C(net.mptcp.allow_join_initial_addr_port),
      C(net.mptcp.checksum_enabled), C(net.mptcp.enabled), C(net.mptcp.stale_loss_cnt),
      and C(net.ipv4.tcp_congestion_control) when a control is chosen and offered.
    - C(net.core.somaxconn) is 16384 from 768 MB up, 4096 (the kernel default) below.
  type: dict
  sample:
    net.ipv4.tcp_mem: "11796 15728 23592"
    net.ipv4.udp_mem: "12288 16384 24576"
    net.core.rmem_max: "33554432"
    net.core.wmem_max: "33554432"
    net.ipv4.tcp_rmem: "4096 131072 33554432"
    net.ipv4.tcp_wmem: "4096 131072 33554432"
    net.core.somaxconn: "4096"
    net.mptcp.enabled: "1"
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.omr.deploy.plugins.module_utils._netsysctl import (
    vps_net_sysctls as _plan,
)


def vps_net_sysctls(effective_mb, page_size=4096, congestion_controls=None, congestion_control='auto',
                    var='omr_vps_congestion_control'):
    try:
        return _plan(effective_mb, page_size=page_size, congestion_controls=congestion_controls,
                     congestion_control_choice=congestion_control, var=var)
    except ValueError as e:
        raise AnsibleFilterError('omr.deploy.vps_net_sysctls: %s' % e)


class FilterModule(object):

    def filters(self):
        return {'vps_net_sysctls': vps_net_sysctls}
