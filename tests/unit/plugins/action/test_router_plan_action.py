# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr.deploy.router_plan's one round trip: the gather script run by a real POSIX sh (dash and, where
installed, busybox ash) against a lease directory and a saved plan, and its output parsed as the
action plugin parses it on the controller."""

import json
import os
import shutil
import subprocess
import time

import pytest

from ansible_collections.omr.deploy.plugins.action.router_plan import gather_script, parse_router_state
from ansible_collections.omr.deploy.plugins.module_utils._mptcp import GATHER_SCRIPT, parse_gather

SHELLS = [s for s in (['sh'], ['busybox', 'sh']) if shutil.which(s[0])]


def run(script, shell):
    return subprocess.run(shell + ['-c', script], capture_output=True, text=True, timeout=30, check=False).stdout


@pytest.mark.parametrize('shell', SHELLS, ids=' '.join)
def test_leases_saved_plan_and_routes_in_one_read(tmp_path, shell):
    leases = tmp_path / 'dhcp'
    leases.mkdir()
    (leases / 'wan2.env').write_text('ADDRESS=100.64.2.134\nPREFIX=24\nGATEWAY=100.64.2.254\nNETWORK=100.64.2.0/24\n')
    (leases / 'wwan0.env').write_text('ADDRESS=10.0.0.5\n')    # half written: not a lease
    plan = tmp_path / 'plan.json'
    plan.write_text(json.dumps({'version': 1, 'transit': {'wifi1': {'subnet': '172.20.0.8/29'}}}))
    script = gather_script(['wan2'], 5, str(leases), str(plan), str(tmp_path / 'none.fact')) + '\n' + GATHER_SCRIPT
    out = run(script, shell)
    state = parse_router_state(out)
    assert state['leases'] == {'wan2': {'address': '100.64.2.134', 'prefix': 24, 'gateway': '100.64.2.254',
                                        'network': '100.64.2.0/24'}}
    assert state['saved']['transit']['wifi1']['subnet'] == '172.20.0.8/29'
    assert isinstance(state['routes'], str)
    # The MPTCP half of the same output is what omr.deploy.mptcp_info reads.
    assert parse_gather(out)['flavour'] in ('v1', 'v0', 'none')


def test_it_waits_for_a_missing_lease_then_goes_on(tmp_path):
    started = time.monotonic()
    out = run(gather_script(['wan9'], 2, str(tmp_path / 'dhcp'), str(tmp_path / 'no.json'), str(tmp_path / 'no.fact')),
              ['sh'])
    assert 1.5 < time.monotonic() - started < 10
    state = parse_router_state(out)
    assert state == {'leases': {}, 'saved': None, 'routes': state['routes']}
    assert '#omr-mptcp# router-waited 2' in out


def test_the_0_1_fact_is_read_when_there_is_no_plan(tmp_path):
    fact = tmp_path / 'omr_router_transit.fact'
    fact.write_text('{"allocations": {"wifi1": "172.17.29.136/29"}, "pool": "172.16.0.0/12"}')
    out = run(gather_script([], 30, str(tmp_path), str(tmp_path / 'no.json'), str(fact)), ['sh'])
    assert parse_router_state(out)['saved'] == {'allocations': {'wifi1': '172.17.29.136/29'}, 'pool': '172.16.0.0/12'}


def test_a_damaged_plan_counts_as_none():
    out = '#omr-mptcp# router-begin\n#omr-mptcp# router-saved\n{"version": \n#omr-mptcp# router-end\n'
    assert parse_router_state(out)['saved'] is None


def test_device_names_are_quoted():
    assert "'wan 2'" in gather_script(['wan 2'], 1)
    assert os.path.basename(__file__)
