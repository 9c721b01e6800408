# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-lab-isp: the lab ISP's lines (a lab instrument, not part of the collection).

Routes every WAN to the "internet" (the VPS network) and shapes each WAN in both directions
from /etc/omr-lab/isp.json, which lab/up.yml writes from the link profile:

  {"links": [{"name": "wan1", "subnet": "100.64.1.0/24", "down_mbit": 20, "up_mbit": 20,
              "loss_pct": 0, "delay_ms": 10, "jitter_ms": 0, "isp_address": null}, ...],
   "routes": [{"network": "198.18.0.0/24", "via": "198.51.100.10"}]}

delay_ms is the round trip the line adds, jitter_ms its spread (plus or minus). Rate: netem where
the kernel has it, else tbf. Loss: netem, else nftables numgen. Delay: netem (half of it on each
direction), else the userspace delay line omr-lab-delay, to which this program hands the links
with a delay (/etc/omr-lab/delay.json). The upload is shaped on an IFB device fed from the WAN's
ingress. A link with `isp_address` is one the router gets by DHCP: the ISP addresses its own end
here and dnsmasq hands out the rest. Run at boot by omr-lab-isp.service, so a restarted ISP
serves again.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import subprocess
import sys

CONFIG = '/etc/omr-lab/isp.json'
DELAY_CONFIG = '/etc/omr-lab/delay.json'


def shape(dev, rate_mbit, link, netem):
    if netem:
        # netem delays each direction: half the round trip, and half the jitter, on each.
        delay = ['delay', '%gms' % (float(link.get('delay_ms') or 0) / 2)]
        if link.get('jitter_ms'):
            delay += ['%gms' % (float(link['jitter_ms']) / 2), 'distribution', 'uniform']
        return ['tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'netem'] + delay + \
            ['loss', '%s%%' % link['loss_pct'], 'rate', '%smbit' % rate_mbit, 'limit', '1000']
    return ['tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', '%smbit' % rate_mbit, 'burst', '32kb',
            'latency', '100ms']


def plan(config, netem):
    """(commands, report lines). A command is an argv list; those marked optional may fail
    (removing what an earlier run left)."""
    commands = [(['sysctl', '-qw', 'net.ipv4.ip_forward=1'], False),
                (['nft', 'delete', 'table', 'inet', 'omr_lab_loss'], True),
                (['nft', 'add', 'table', 'inet', 'omr_lab_loss'], False),
                (['nft', 'add', 'chain', 'inet', 'omr_lab_loss', 'forward',
                  '{ type filter hook forward priority 0; policy accept; }'], False)]
    report = []
    # Networks beyond a host on the "internet" (the lab's internet host, behind the VPS).
    for route in config.get('routes') or []:
        commands.append((['ip', 'route', 'replace', route['network'], 'via', route['via']], False))
        report.append('route %s via %s' % (route['network'], route['via']))
    for link in config['links']:
        dev = link['name']
        if link.get('isp_address'):
            commands += [(['ip', 'link', 'set', 'dev', dev, 'up'], False),
                         (['ip', 'addr', 'replace', link['isp_address'], 'dev', dev], False)]
            report.append('%s: ISP %s, the router gets its address by DHCP' % (dev, link['isp_address']))
        ifb = 'ifb-' + dev
        commands += [(['tc', 'qdisc', 'del', 'dev', dev, 'root'], True),
                     (['tc', 'qdisc', 'del', 'dev', dev, 'ingress'], True),
                     (['ip', 'link', 'del', ifb], True),
                     (shape(dev, link['down_mbit'], link, netem), False),
                     (['ip', 'link', 'add', ifb, 'type', 'ifb'], False),
                     (['ip', 'link', 'set', ifb, 'up'], False),
                     (['tc', 'qdisc', 'add', 'dev', dev, 'handle', 'ffff:', 'ingress'], False),
                     (['tc', 'filter', 'add', 'dev', dev, 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u32',
                       '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', ifb], False),
                     (shape(ifb, link['up_mbit'], link, netem), False)]
        per_mille = int(float(link['loss_pct']) * 10)
        if per_mille > 0 and not netem:
            for side in ('iifname', 'oifname'):
                commands.append((['nft', 'add', 'rule', 'inet', 'omr_lab_loss', 'forward', side, dev,
                                  'numgen', 'random', 'mod', '1000', '<', str(per_mille), 'drop'], False))
        jitter = ' +- %s ms' % link['jitter_ms'] if link.get('jitter_ms') else ''
        report.append('%s: down %s Mbit/s, up %s Mbit/s, loss %s %%, round trip %s ms%s'
                      % (dev, link['down_mbit'], link['up_mbit'], link['loss_pct'], link.get('delay_ms') or 0, jitter))
    delayed = delay_config(config, netem)['links']
    if netem:
        report.append('shaping: netem (rate, delay and loss)')
    elif delayed:
        report.append('shaping: tbf for rate, nftables numgen for loss, the delay line omr-lab-delay for delay'
                      ' (this kernel has no netem)')
    else:
        report.append('shaping: tbf for rate, nftables numgen for loss; no link asks for delay')
    return commands, report


def delay_config(config, netem):
    """What omr-lab-delay gets: the links with a delay, unless netem does it."""
    links = [] if netem else [{'name': l['name'], 'subnet': l['subnet'], 'rtt_ms': l['delay_ms'],
                               'jitter_ms': l.get('jitter_ms') or 0}
                              for l in config['links'] if float(l.get('delay_ms') or 0) > 0]
    return {'inet': 'inet', 'links': links}


def has_netem(run):
    if run(['tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '0ms']) == 0:
        run(['tc', 'qdisc', 'del', 'dev', 'lo', 'root'])
        return True
    return False


def _run(argv):
    return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(prog='omr-lab-isp', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--config', default=CONFIG)
    args = parser.parse_args(argv)
    with open(args.config, encoding='utf-8') as f:
        config = json.load(f)
    netem = has_netem(_run)
    commands, report = plan(config, netem)
    with open(DELAY_CONFIG, 'w', encoding='utf-8') as f:
        json.dump(delay_config(config, netem), f, indent=2)
    for command, optional in commands:
        proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True,
                              check=False)
        if proc.returncode != 0 and not optional:
            sys.stderr.write('omr-lab-isp: %s failed: %s\n' % (' '.join(command), proc.stderr.strip()))
            return 1
    print('\n'.join(report))
    return 0


if __name__ == '__main__':
    sys.exit(main())
