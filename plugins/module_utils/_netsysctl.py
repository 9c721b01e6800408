# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: no compatibility promise, may change in any release.
#
# Network sysctls for an OMR VPS, sized to the memory it really has.
#
# tcp_mem/udp_mem follow OMR's own omr-net-mem:
#   Ysurac/openmptcprouter-vps  omr-net-mem             @ 0d87b2aed714979e51f0a5ab07456a0bc620b94b
#   (its tests: tests/test_net_mem.sh at the same commit; the router twin is
#   Ysurac/openmptcprouter-feeds openmptcprouter/files/bin/omr-net-mem @ fdd418952ddea8117726982d09f514b869c2bce1)
# The installer's static tcp_mem "409600 819200 1638400" pages (pressure 3.2 GB, ceiling
# 6.4 GB) is above a 1 GB VPS's RAM, so the kernel never applies memory pressure and
# socket memory grows until the OOM killer picks a tunnel daemon. MPTCP draws on the same
# pool (mptcp_prot.sysctl_mem = sysctl_tcp_mem), subflows included.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

MIB = 1024 * 1024

# omr-net-mem: the *pressure* value (tcp_mem[1]) is this share of RAM. The tiers sit
# below the nominal sizes because MemTotal reads short (a 1 GB VPS shows ~960 MB).
TCP_TIERS = ((768, 16), (192, 12), (0, 8))   # (from MB, percent)
UDP_PERCENT = 12
# never below the kernel's own choice (tcp_init_mem(): RAM/16, udp_init(): RAM/8) nor
# its 128-page minimum
KERNEL_TCP_DIV = 16
KERNEL_UDP_DIV = 8
MIN_LIMIT_PAGES = 128
# tcp high + udp high must stay below this share of RAM, or the brake is useless again
CEILING_PERCENT = 75

# Per-socket buffer maximum: RAM/16, at least 4 MB (the kernel's default tcp_wmem max),
# at most 64 MB. The lab's links have little delay, so 4, 16 and 64 MB bonded alike there
# (0.97 with reno); the ceiling is for long real-world paths, the RAM share for small VPSes.
SOCKBUF_DIV = 16
SOCKBUF_MIN = 4 * MIB
SOCKBUF_MAX = 64 * MIB
SOCKBUF_DEFAULT = 131072

# Below the "1 GB" tier the accept queue is kept at the kernel's default: every queued
# connection is a full socket with buffers, which a 512 MB VPS should not hoard.
SOMAXCONN_BIG = 16384
SOMAXCONN_SMALL = 4096
BIG_FROM_MB = 768

# The congestion control of the subflows. On delayed links with random loss the lab bonded more
# with BBR (make bench, 2026-12-03, bench/README.md): a loss-based control falls to the Mathis rate
# on such a link (reno 1.2 Mbit/s of 10 at 80 ms and 1 %), which BBR ignores, and fills the queues.
# On clean, unequal links reno bonded more; `loss` keeps that choice for whoever has them.
PREFERRED_CC = ('bbr', 'cubic', 'reno')
LOSS_BASED_CC = ('cubic', 'reno')
CC_CHOICES = ('auto', 'loss', 'kernel')

# Fixed tuning: the upstream keys of OMR's 90-shadowsocks.conf (6.x), minus the v0
# net.mptcp.mptcp_* keys that do not exist on upstream kernels, with tcp_mtu_probing on
# (black-hole detection matters on tunnels with reduced MTU).
FIXED = {
    'net.core.netdev_max_backlog': '10000',
    'net.ipv4.tcp_fastopen': '3',
    'net.ipv4.tcp_slow_start_after_idle': '0',
    'net.ipv4.tcp_notsent_lowat': '131072',
    'net.ipv4.tcp_mtu_probing': '1',
    'net.ipv4.tcp_fin_timeout': '30',
    'net.ipv4.tcp_tw_reuse': '1',
    'net.ipv4.ip_local_port_range': '9999 65000',
    'net.ipv4.tcp_max_syn_backlog': '4096',
    # MPTCP v1 (upstream), Documentation/networking/mptcp-sysctl.rst
    'net.mptcp.enabled': '1',
    'net.mptcp.checksum_enabled': '0',
    'net.mptcp.allow_join_initial_addr_port': '1',
    'net.mptcp.add_addr_timeout': '120',
    'net.mptcp.stale_loss_cnt': '4',
}


def _positive_int(value, name):
    if isinstance(value, bool):
        raise ValueError('%s must be an integer, got %r' % (name, value))
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError('%s must be an integer, got %r' % (name, value))
    if n <= 0 or (isinstance(value, float) and value != n):
        raise ValueError('%s must be a positive integer, got %r' % (name, value))
    return n


def parse_congestion_controls(value):
    """'reno cubic bbr' (sysctl -n, tabs or spaces) or a list -> ['reno', 'cubic', 'bbr']."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        items = []
        for v in value:
            items.extend(str(v).split())
        return items
    return str(value).split()


def congestion_control(available, choice='auto', var='omr_vps_congestion_control'):
    """The control to set, or None to leave the kernel's.

    choice: `auto` (the first of PREFERRED_CC the host offers), `loss` (the first of
    LOSS_BASED_CC), `kernel` (leave it), or a control's name, which the host must offer.
    available: what the host offers (in a container's namespace, its allowed list)."""
    offered = parse_congestion_controls(available)
    choice = str(choice or 'auto')
    if choice == 'kernel':
        return None
    if choice in ('auto', 'loss'):
        for cc in PREFERRED_CC if choice == 'auto' else LOSS_BASED_CC:
            if cc in offered:
                return cc
        return None
    if offered and choice not in offered:
        raise ValueError('%s %s is not offered by this host (it offers %s)' % (var, choice, ' '.join(offered)))
    return choice


def tcp_percent(ram_mb):
    for start, pct in TCP_TIERS:
        if ram_mb >= start:
            return pct
    return TCP_TIERS[-1][1]


def _triple(limit):
    # the kernel's own 3/4 : 1 : 3/2 shape (tcp_init_mem(), udp_init())
    return (limit * 3 // 4, limit, limit * 3 // 2)


def socket_mem(ram_mb, page_size=4096):
    """tcp_mem and udp_mem (pages) for `ram_mb` MB, the way omr-net-mem sizes them."""
    ram_mb = _positive_int(ram_mb, 'memory (MB)')
    page_size = _positive_int(page_size, 'page_size')
    ram_pages = ram_mb * MIB // page_size
    tcp_limit = max(ram_pages * tcp_percent(ram_mb) // 100, ram_pages // KERNEL_TCP_DIV, MIN_LIMIT_PAGES)
    udp_limit = max(ram_pages * UDP_PERCENT // 100, ram_pages // KERNEL_UDP_DIV, MIN_LIMIT_PAGES)
    tcp, udp = _triple(tcp_limit), _triple(udp_limit)
    if tcp[2] + udp[2] >= ram_pages * CEILING_PERCENT // 100:
        raise ValueError('%d MB is too little memory: tcp_mem and udp_mem ceilings (%d pages) '
                         'would reach %d%% of RAM' % (ram_mb, tcp[2] + udp[2], CEILING_PERCENT))
    return {'tcp_mem': tcp, 'udp_mem': udp, 'ram_pages': ram_pages}


def socket_buffer_max(ram_mb, tcp_pressure_bytes):
    """Largest per-socket buffer: clamp(RAM/16, 4 MB, 64 MB), and never above the
    tcp_mem pressure threshold (omr-net-mem's cap: one socket at full stretch may reach
    it, never pass it; that also keeps it below the high mark)."""
    size = max(SOCKBUF_MIN, min(SOCKBUF_MAX, ram_mb * MIB // SOCKBUF_DIV))
    return min(size, tcp_pressure_bytes)


def vps_net_sysctls(effective_mb, page_size=4096, congestion_controls=None, congestion_control_choice='auto',
                    var='omr_vps_congestion_control'):
    """{sysctl name: value as `sysctl -n` prints it, single-spaced} for a VPS with
    `effective_mb` MB usable memory."""
    effective_mb = _positive_int(effective_mb, 'effective memory (MB)')
    page_size = _positive_int(page_size, 'page_size')
    mem = socket_mem(effective_mb, page_size)
    tcp, udp = mem['tcp_mem'], mem['udp_mem']
    buf_max = socket_buffer_max(effective_mb, tcp[1] * page_size)
    buf_default = min(SOCKBUF_DEFAULT, buf_max)

    result = dict(FIXED)
    result.update({
        'net.ipv4.tcp_mem': '%d %d %d' % tcp,
        'net.ipv4.udp_mem': '%d %d %d' % udp,
        'net.core.rmem_max': str(buf_max),
        'net.core.wmem_max': str(buf_max),
        'net.ipv4.tcp_rmem': '4096 %d %d' % (buf_default, buf_max),
        'net.ipv4.tcp_wmem': '4096 %d %d' % (buf_default, buf_max),
        'net.core.somaxconn': str(SOMAXCONN_BIG if effective_mb >= BIG_FROM_MB else SOMAXCONN_SMALL),
    })
    # setting a congestion control the kernel does not have fails the whole sysctl task
    cc = congestion_control(congestion_controls, congestion_control_choice, var) if congestion_controls else None
    if cc:
        result['net.ipv4.tcp_congestion_control'] = cc
    return dict(sorted(result.items()))
