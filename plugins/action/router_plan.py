# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr.deploy.router_plan: check the router's settings on the controller, read the router's
raw state in one round trip (plain shell, as mptcp_info does), and plan it all once.
Documented in plugins/modules/router_plan.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import secrets
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.omr.deploy.plugins.module_utils._mptcp import (
    GATHER_SCRIPT, MptcpParseError, parse_gather, split_sections)
from ansible_collections.omr.deploy.plugins.module_utils._openwrt import (
    OpenwrtError, check_omr, gather_script as openwrt_gather_script, has_secret, leases as openwrt_leases,
    parse_state as parse_openwrt_state, saved_allocation, uci_intent)
from ansible_collections.omr.deploy.plugins.module_utils._router import (
    RouterPlanError, check_config, host_plan, plan_router)
from ansible_collections.omr.deploy.plugins.module_utils._uci import digest, masked, quote
from ansible_collections.omr.deploy.plugins.module_utils._router_runtime import (
    LEASE_DIR, LEASE_LOCK, parse_lease_files)

PLAN_PATH = '/etc/omr-router/plan.json'
# Where omr.deploy.router 0.1 kept the transit allocation; read when no plan exists yet.
OLD_FACT = '/etc/ansible/facts.d/omr_router_transit.fact'


def gather_script(dhcp_devices, timeout, lease_dir=LEASE_DIR, plan_path=PLAN_PATH, old_fact=OLD_FACT):
    """POSIX sh, printed as #omr-mptcp# sections: the DHCP leases (after waiting up to
    `timeout` s for the missing ones, then under the hook's lock, shared), the saved plan and
    the routes. Leases come first: the hook changes the routes and endpoints when one comes.
    No `exit` and no trailing newline (see _mptcp.GATHER_SCRIPT)."""
    devices = ' '.join(shlex.quote(d) for d in dhcp_devices)
    d = shlex.quote(lease_dir)
    lock = shlex.quote(lease_dir + '/' + LEASE_LOCK.rsplit('/', 1)[1])
    return '\n'.join([
        'm="#omr-mptcp#"; LC_ALL=C; PATH="$PATH:/usr/sbin:/sbin"; export LC_ALL PATH',
        'echo "$m router-begin"',
        'i=0',
        'while [ -n "%s" ] && [ "$i" -lt %d ]; do' % (devices, int(timeout)),
        '  missing=0',
        '  for dev in %s; do grep -q "^ADDRESS=." %s/"$dev".env 2>/dev/null || missing=1; done' % (devices, d),
        '  [ "$missing" = 0 ] && break',
        '  i=$((i + 1)); sleep 1',
        'done',
        'echo "$m router-waited $i"',
        'echo "$m router-leases"',
        '[ -d %s ] && flock -s %s sh -c "grep -H . %s/*.env 2>/dev/null"' % (d, lock, d),
        'echo "$m router-saved"',
        # A file without a final newline must not run into the next marker.
        '{ cat %s || cat %s; } 2>/dev/null; echo' % (shlex.quote(plan_path), shlex.quote(old_fact)),
        'echo "$m router-routes"',
        'ip -4 -o route show table all',
        'echo "$m router-end"',
    ])


def parse_router_state(stdout):
    """The router sections of the gather output -> {leases, saved, routes}."""
    sections, _values = split_sections(stdout)
    if 'router-begin' not in sections or 'router-end' not in sections:
        raise MptcpParseError('the router gather output is incomplete')
    saved = None
    text = '\n'.join(sections.get('router-saved', [])).strip()
    if text:
        try:
            saved = json.loads(text)
        except ValueError:
            saved = None   # a damaged file: plan as if there were none
    return {'leases': parse_lease_files('\n'.join(sections.get('router-leases', []))),
            'saved': saved, 'routes': '\n'.join(sections.get('router-routes', []))}


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_async = False

    @staticmethod
    def _peers(config, task_vars):
        """{inventory name: uplink network} of the transit links' peers (omr.deploy.wifi_bridge
        hosts), from this run's fact or the peer's local fact, where the controller has them."""
        hostvars = task_vars.get('hostvars') or {}
        peers = {}
        for link in config.get('transit_links') or []:
            peer = link.get('peer') if isinstance(link, dict) else None
            if not peer or peer not in hostvars:
                continue
            hv = hostvars[peer]
            uplink = hv.get('omr_wifi_bridge_uplink') or \
                ((hv.get('ansible_local') or {}).get('omr_wifi_bridge') or {}).get('uplink') or {}
            network = to_text(uplink.get('network') or '')
            if network:
                peers[to_text(peer)] = network
        return peers

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _valid, args = self.validate_argument_spec(argument_spec=dict(
            config=dict(type='dict', required=True),
            gather=dict(type='bool', default=True),
        ))
        config = args['config']
        peers = self._peers(config, task_vars or {})
        # Bad input fails here, on the controller, before the router is even read.
        try:
            checked = check_config(config, peers)
        except RouterPlanError as exc:
            raise AnsibleActionFail(to_text(exc))
        if not args['gather']:
            result.update(changed=False, config_digest=checked['digest'], dhcp_devices=checked['dhcp_devices'])
            return result

        if checked['config']['backend'] == 'openwrt':
            return self._plan_openwrt(result, config, checked, peers, task_vars or {})

        script = gather_script(checked['dhcp_devices'], checked['config']['dhcp_timeout']) + '\n' + GATHER_SCRIPT
        res = self._low_level_execute_command(script)
        if res.get('rc') != 0:
            raise AnsibleActionFail('reading the router failed (rc=%s): %s'
                                    % (res.get('rc'), (res.get('stderr') or res.get('stdout') or '').strip()))
        stdout = res.get('stdout', '')
        try:
            state = parse_router_state(stdout)
            mptcp = parse_gather(stdout)
        except MptcpParseError as exc:
            raise AnsibleActionFail('%s; is /bin/sh a POSIX shell on the router?' % exc,
                                    result=dict(stdout=stdout, stderr=res.get('stderr')))
        try:
            plan = plan_router(config, state, peers)
        except RouterPlanError as exc:
            raise AnsibleActionFail(to_text(exc))
        result.update(
            changed=False,
            host_plan=host_plan(plan),
            ansible_facts={
                'omr_router_plan': plan,
                # omr.deploy 0.1's name for the allocation, kept for playbooks written against it.
                'omr_router_transit': plan['transit'],
                'omr_mptcp': mptcp,
            },
        )
        return result

    def _plan_openwrt(self, result, config, checked, peers, task_vars):
        """An OMR router: the same plan from its UCI, addresses and routes (one round trip, secrets
        masked on the router), and the UCI it must hold (omr_router_plan.openwrt)."""
        # Digests of the router's secrets are salted per run: -vvv shows what the router printed.
        salt = secrets.token_hex(16)
        res = self._low_level_execute_command(openwrt_gather_script(salt) + '\n' + GATHER_SCRIPT)
        if res.get('rc') != 0:
            raise AnsibleActionFail('reading the OMR router failed (rc=%s): %s'
                                    % (res.get('rc'), (res.get('stderr') or res.get('stdout') or '').strip()))
        stdout = res.get('stdout', '')
        host = to_text(task_vars.get('inventory_hostname') or 'the router')
        try:
            state = parse_openwrt_state(stdout)
            check_omr(state, host)
            mptcp = parse_gather(stdout)
        except (OpenwrtError, MptcpParseError) as exc:
            raise AnsibleActionFail(to_text(exc))
        wans = checked['config']['wans']
        plan_state = {
            'leases': openwrt_leases(state, checked['dhcp_devices']),
            'routes': state['routes'],
            'saved': {'allocations': saved_allocation(state['uci'], checked['config']['transit_links'], wans)},
        }
        try:
            plan = plan_router(config, plan_state, peers)
            intent = uci_intent(plan, checked['config'], state['uci'])
        except (RouterPlanError, OpenwrtError) as exc:
            raise AnsibleActionFail(to_text(exc))
        plan['openwrt'] = {
            'release': state['release'],
            'ubus': bool(state['tools'].get('ubus')),
            'uci': intent['sections'],
            'interfaces': intent['interfaces'],
            'removed': intent['removed'],
            # Which secrets the role must hand omr.deploy.uci, and which the router already holds
            # (kept when the inventory gives none).
            'secrets': dict((path, {'kind': kind, 'present': has_secret(state['uci'], path, salt)})
                            for path, kind in intent['secrets'].items()),
            'pending': dict((pkg, lines) for pkg, lines in state['pending'].items() if lines),
        }
        result.update(
            changed=False,
            ansible_facts={
                'omr_router_plan': plan,
                'omr_router_transit': plan['transit'],
                'omr_mptcp': mptcp,
                # The UCI as read, every secret masked.
                'omr_router_uci': masked(state['uci'], (), digest(salt, quote(''))),
            },
        )
        return result
