# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-lab-delay: a userspace delay line for the lab ISP, where the kernel has no netem (a lab
instrument, not part of the collection).

For each link of /etc/omr-lab/delay.json

  {"inet": "inet", "links": [{"name": "wan2", "subnet": "100.64.2.0/24", "rtt_ms": 45, "jitter_ms": 5}]}

it opens a TUN device (dl-<name>) and steers the link's forwarded packets, both directions,
through it with policy routing: what arrives on the link, and what arrives on `inet` for the
link's subnet, is routed into the TUN; this program holds each packet for half the round trip
(plus or minus half the jitter, uniformly) and writes it back, and the kernel routes it on as if
it came in on the TUN. Packets of one flow never overtake each other: a packet is released no
earlier than its flow's previous one. The link's shaping (tbf on its devices) stays where it is.

  omr-lab-delay [--config FILE]     run (omr-lab-delay.service); the routing goes when it stops

Statistics go to stdout every 60 s: packets, bytes, and how late releases were.
"""

from __future__ import absolute_import, division, print_function

import argparse
import fcntl
import heapq
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time

CONFIG = '/etc/omr-lab/delay.json'
TUNSETIFF = 0x400454ca
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
RULE_BASE = 3000          # rule priorities: above the router role's 1000+ and below main's 32766
TABLE_BASE = 3000
PACKET_MAX = 65535
REPORT_EVERY = 60.0


def flow_key(packet):
    """(protocol, source, destination[, ports]) of an IPv4 packet: what must stay in order."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return packet[:1]
    proto = packet[9]
    key = (proto, packet[12:16], packet[16:20])
    ihl = (packet[0] & 0x0F) * 4
    if proto in (6, 17) and len(packet) >= ihl + 4:
        key += (packet[ihl:ihl + 4],)
    return key


class Line(object):
    """One direction-agnostic delay line: packets in, released after their delay, flows in order."""

    def __init__(self, rtt_ms, jitter_ms=0.0, rand=random.random):
        self.one_way = float(rtt_ms) / 2000.0
        self.jitter = float(jitter_ms) / 2000.0
        self.rand = rand
        self.last = {}        # flow -> release time of its latest packet

    def release_time(self, packet, now):
        delay = self.one_way + (self.rand() * 2 - 1) * self.jitter if self.jitter else self.one_way
        key = flow_key(packet)
        at = max(now + max(delay, 0.0), self.last.get(key, 0.0))
        self.last[key] = at
        if len(self.last) > 65536:          # forget flows whose packets are long gone
            self.last = dict((k, t) for k, t in self.last.items() if t > now)
        return at


def routing(config, add):
    """The ip commands that steer each link through its TUN (add) or take that back (not add)."""
    commands = []
    for i, link in enumerate(config['links']):
        tun, table, prio = 'dl-' + link['name'], str(TABLE_BASE + i), RULE_BASE + 2 * i
        if add:
            commands += [['ip', 'link', 'set', 'dev', tun, 'up'],
                         ['sysctl', '-qw', 'net.ipv4.conf.%s.rp_filter=0' % tun],
                         ['ip', 'route', 'replace', 'default', 'dev', tun, 'table', table]]
        for rule in (['iif', link['name'], 'lookup', table, 'priority', str(prio)],
                     ['iif', config.get('inet', 'inet'), 'to', link['subnet'], 'lookup', table, 'priority', str(prio + 1)]):
            commands.append(['ip', 'rule', 'add' if add else 'del'] + rule)
    return commands


def open_tun(name):
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def run_commands(commands, check=True):
    for argv in commands:
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True,
                              check=False)
        if proc.returncode != 0 and check:
            raise RuntimeError('%s failed: %s' % (' '.join(argv), proc.stderr.strip()))


class Stats(object):
    def __init__(self):
        self.packets = self.bytes = self.late_1ms = 0
        self.late_sum = 0.0

    def line(self):
        mean = self.late_sum / self.packets * 1000 if self.packets else 0.0
        return ('%d packets, %d bytes, releases %.3f ms late on average, %d more than 1 ms late'
                % (self.packets, self.bytes, mean, self.late_1ms))


def serve(fds, lines, stop, clock=time.monotonic, out=sys.stdout):
    """The loop: read whatever the TUNs hold, release what is due. fds: {fd: name}."""
    poller = select.epoll()
    for fd in fds:
        poller.register(fd, select.EPOLLIN)
    queue, seq, stats, next_report = [], 0, Stats(), clock() + REPORT_EVERY
    while not stop():
        now = clock()
        timeout = min(queue[0][0] - now, 0.5) if queue else 0.5
        for fd, _event in poller.poll(max(timeout, 0.0)):
            while True:
                try:
                    packet = os.read(fd, PACKET_MAX)
                except BlockingIOError:
                    break
                now = clock()
                heapq.heappush(queue, (lines[fd].release_time(packet, now), seq, fd, packet))
                seq += 1
        now = clock()
        while queue and queue[0][0] <= now:
            at, _seq, fd, packet = heapq.heappop(queue)
            try:
                os.write(fd, packet)
            except OSError:
                continue            # the kernel would not take it: as a drop on the line
            late = now - at
            stats.packets += 1
            stats.bytes += len(packet)
            stats.late_sum += late
            stats.late_1ms += late > 0.001
        if now >= next_report:
            out.write(stats.line() + '\n')
            out.flush()
            next_report = now + REPORT_EVERY
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(prog='omr-lab-delay', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--config', default=CONFIG)
    args = parser.parse_args(argv)
    with open(args.config, encoding='utf-8') as f:
        config = json.load(f)
    if not config['links']:
        print('no link with a delay: nothing to do')
        return 0
    fds, lines = {}, {}
    for link in config['links']:
        fd = open_tun('dl-' + link['name'])
        fds[fd] = link['name']
        lines[fd] = Line(link['rtt_ms'], link.get('jitter_ms', 0))
    run_commands(routing(config, add=False), check=False)     # what a killed run left
    run_commands(routing(config, add=True))
    print('; '.join('%s: %s ms +- %s ms round trip' % (l['name'], l['rtt_ms'], l.get('jitter_ms', 0))
                    for l in config['links']))
    sys.stdout.flush()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_a: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_a: stopping.append(1))
    try:
        stats = serve(fds, lines, lambda: bool(stopping))
    finally:
        run_commands(routing(config, add=False), check=False)
    print('stopped: ' + stats.line())
    return 0


if __name__ == '__main__':
    sys.exit(main())
