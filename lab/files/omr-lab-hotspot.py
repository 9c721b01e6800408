# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-lab-hotspot: the lab's public hotspot (a lab instrument, not part of the collection).

From /etc/omr-lab/hotspot.json, which lab/up.yml writes:

  {"subnet": "172.23.208.0/20", "address": "172.23.208.1", "down_mbit": 10, "up_mbit": 10, "loss_pct": 0, "session_timeout": 600}

it addresses the hotspot network (handed out by dnsmasq, inside 172.16.0.0/12 as real hotspots
sometimes do), NATs it onto the "internet" and lets only logged-in clients through: everyone
else's HTTP goes to the captive portal (lab/files/omr-lab-portal.py). A login puts the client
into an nftables set whose elements time out, so sessions end by themselves. Rate: tbf; loss:
nftables numgen. Run at boot by omr-lab-hotspot.service: a hotspot that reboots forgets its
sessions but serves again.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import subprocess
import sys

CONFIG = '/etc/omr-lab/hotspot.json'


def ruleset(config):
    per_mille = int(float(config.get('loss_pct') or 0) * 10)
    loss = '    numgen random mod 1000 < %d drop\n' % per_mille if per_mille > 0 else ''
    return ('table inet omr_lab_hotspot\n'
            'delete table inet omr_lab_hotspot\n'
            'table inet omr_lab_hotspot {\n'
            '  set clients { type ipv4_addr; flags timeout; }\n'
            '  chain prerouting {\n'
            '    type nat hook prerouting priority dstnat; policy accept;\n'
            '    iifname "hotspot" ip saddr != @clients ip daddr != %(address)s tcp dport 80 dnat ip to %(address)s:80\n'
            '  }\n'
            '  chain forward {\n'
            '    type filter hook forward priority filter; policy drop;\n'
            '%(loss)s'
            '    iifname "hotspot" ip saddr @clients accept\n'
            '    oifname "hotspot" ip daddr @clients accept\n'
            '  }\n'
            '  chain postrouting {\n'
            '    type nat hook postrouting priority srcnat; policy accept;\n'
            '    oifname "inet" ip saddr %(subnet)s masquerade\n'
            '  }\n'
            '}\n') % dict(config, loss=loss)


def plan(config):
    """[(argv, stdin)] in order, and the line that says what was set up."""
    prefix = config['subnet'].split('/')[1]
    commands = [
        (['sysctl', '-qw', 'net.ipv4.ip_forward=1'], None),
        (['ip', 'link', 'set', 'dev', 'hotspot', 'up'], None),
        (['ip', 'addr', 'replace', '%s/%s' % (config['address'], prefix), 'dev', 'hotspot'], None),
        (['nft', '-f', '-'], ruleset(config)),
        (['tc', 'qdisc', 'replace', 'dev', 'hotspot', 'root', 'tbf', 'rate', '%smbit' % config['down_mbit'],
          'burst', '32kb', 'latency', '100ms'], None),
        (['tc', 'qdisc', 'replace', 'dev', 'inet', 'root', 'tbf', 'rate', '%smbit' % config['up_mbit'],
          'burst', '32kb', 'latency', '100ms'], None),
    ]
    report = ('hotspot %s: down %s Mbit/s, up %s Mbit/s (tbf), loss %s %% (nftables), session %s s'
              % (config['subnet'], config['down_mbit'], config['up_mbit'], config.get('loss_pct') or 0,
                 config['session_timeout']))
    return commands, report


def main(argv=None):
    parser = argparse.ArgumentParser(prog='omr-lab-hotspot', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--config', default=CONFIG)
    args = parser.parse_args(argv)
    with open(args.config, encoding='utf-8') as f:
        config = json.load(f)
    commands, report = plan(config)
    for argv_, stdin in commands:
        proc = subprocess.run(argv_, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              universal_newlines=True, check=False)
        if proc.returncode != 0:
            sys.stderr.write('omr-lab-hotspot: %s failed: %s\n' % (' '.join(argv_), proc.stderr.strip()))
            return 1
    print(report)
    return 0


if __name__ == '__main__':
    sys.exit(main())
