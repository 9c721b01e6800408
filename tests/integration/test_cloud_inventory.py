# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cloud inventories of inventory.example/cloud/ against fake provider APIs on 127.0.0.1.

The real `ansible-inventory --list` reads a copy of each example in which only the API endpoint
points elsewhere; the token comes from the environment, as in the example pipelines, and so does
the setting both pipelines give every step to make a bad token fatal. Each fake serves what its plugin asks for, in the provider's shapes:
Hetzner's page-numbered /v1/servers filtered by label selector and status, Vultr's cursor-paged
/v2/instances, and each provider's 401 for a wrong token. A fleet larger than one page puts the
run's server on the last page. What the real APIs do beyond this is not shown here (docs/fleet.md).
"""

from __future__ import absolute_import, division, print_function

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLOUD = os.path.join(ROOT, 'inventory.example', 'cloud')
ANSIBLE_INVENTORY = os.path.join(os.path.dirname(sys.executable), 'ansible-inventory')
if not os.path.exists(ANSIBLE_INVENTORY):
    ANSIBLE_INVENTORY = os.path.join(ROOT, '.venv', 'bin', 'ansible-inventory')
TOKEN = 'fake-token-for-the-offline-test'
# As the pipelines name a run, its server and its group.
RUN = 'gh4242a1'
FAIL_SETTING = 'ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED'
RUN_INVENTORY = os.path.join(CLOUD, 'run-inventory.jq')
needs_jq = pytest.mark.skipif(shutil.which('jq') is None, reason='needs jq, as the example pipelines do')


def pipeline_env():
    """The variables both example pipelines give every step; they must make a bad token fatal."""
    with open(os.path.join(CLOUD, 'github-actions.yml'), encoding='utf-8') as f:
        github = yaml.safe_load(f)['env']
    with open(os.path.join(CLOUD, 'gitlab-ci.yml'), encoding='utf-8') as f:
        gitlab = yaml.safe_load(f)['variables']
    assert github.get(FAIL_SETTING) == gitlab.get(FAIL_SETTING) == 'true'
    return {FAIL_SETTING: github[FAIL_SETTING]}


class FakeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler):
        super().__init__(('127.0.0.1', 0), handler)
        self.requests = []
        self.thread = threading.Thread(target=self.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.server_address[1]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        authorized = self.headers.get('Authorization') == 'Bearer ' + TOKEN
        status, body = self.answer(url.path, query, authorized)
        self.server.requests.append({'path': url.path, 'query': query, 'status': status})
        self.reply(status, body)


# ---- Hetzner Cloud ------------------------------------------------------------------------------

def hcloud_server(num, name, labels, status='running'):
    return {
        'id': 1000 + num, 'name': name, 'status': status, 'created': '2026-12-01T10:00:00+00:00',
        'public_net': {
            'ipv4': {'id': 2000 + num, 'ip': '203.0.113.%d' % (num % 250 + 1), 'blocked': False,
                     'dns_ptr': 'static.example.invalid'},
            'ipv6': {'id': 3000 + num, 'ip': '2001:db8:%x::/64' % num, 'blocked': False, 'dns_ptr': []},
            'floating_ips': [], 'firewalls': [{'id': 7, 'status': 'applied'}],
        },
        'private_net': [],
        'server_type': {'id': 104, 'name': 'cx22', 'description': 'CX22', 'cores': 2, 'memory': 4.0, 'disk': 40,
                        'deprecated': False, 'prices': [], 'storage_type': 'local', 'cpu_type': 'shared',
                        'architecture': 'x86'},
        'datacenter': {'id': 4, 'name': 'fsn1-dc14', 'description': 'Falkenstein 1 virtual DC 14',
                       'location': HCLOUD_LOCATION, 'server_types': {'supported': [], 'available': [],
                                                                     'available_for_migration': []}},
        'image': {'id': 114690387, 'type': 'system', 'status': 'available', 'name': 'debian-12',
                  'description': 'Debian 12', 'image_size': None, 'disk_size': 5, 'created': '2023-06-13T06:00:02+00:00',
                  'created_from': None, 'bound_to': None, 'os_flavor': 'debian', 'os_version': '12',
                  'rapid_deploy': True, 'protection': {'delete': False}, 'deprecated': None, 'labels': {},
                  'deleted': None, 'architecture': 'x86'},
        'iso': None, 'rescue_enabled': False, 'locked': False, 'backup_window': None,
        'outgoing_traffic': 0, 'ingoing_traffic': 0, 'included_traffic': 21990232555520,
        'protection': {'delete': False, 'rebuild': False}, 'labels': labels, 'volumes': [],
        'load_balancers': [], 'primary_disk_size': 40, 'placement_group': None,
    }


HCLOUD_LOCATION = {'id': 1, 'name': 'fsn1', 'description': 'Falkenstein DC Park 1', 'country': 'DE',
                   'city': 'Falkenstein', 'latitude': 50.47612, 'longitude': 12.370071, 'network_zone': 'eu-central'}


def hcloud_error(code, message):
    return {'error': {'code': code, 'message': message, 'details': {}}}


def label_matches(selector, labels):
    """Hetzner's label selector: comma-joined k=v, k==v, k!=v, k, !k (what the example uses and more)."""
    for term in selector.split(','):
        term = term.strip()
        if '!=' in term:
            key, value = term.split('!=', 1)
            ok = labels.get(key) != value
        elif '=' in term:
            key, value = term.replace('==', '=').split('=', 1)
            ok = labels.get(key) == value
        elif term.startswith('!'):
            ok = term[1:] not in labels
        elif term and ' ' not in term:
            ok = term in labels
        else:
            raise ValueError(term)
        if not ok:
            return False
    return True


def paginate(items, query, default=25, most=50):
    page, per_page = int(query.get('page', ['1'])[0]), min(int(query.get('per_page', [str(default)])[0]), most)
    last = max(1, -(-len(items) // per_page))
    meta = {'pagination': {'page': page, 'per_page': per_page, 'previous_page': page - 1 if page > 1 else None,
                           'next_page': page + 1 if page < last else None, 'last_page': last,
                           'total_entries': len(items)}}
    return items[(page - 1) * per_page:page * per_page], meta


class HcloudHandler(Handler):
    def answer(self, path, query, authorized):
        if not authorized:
            return 401, hcloud_error('unauthorized', 'unable to authenticate')
        if path == '/v1/locations':
            items, meta = paginate([HCLOUD_LOCATION], query)
            return 200, {'locations': items, 'meta': meta}
        if path == '/v1/servers':
            servers = self.server.servers
            try:
                for selector in query.get('label_selector', []):
                    servers = [s for s in servers if label_matches(selector, s['labels'])]
            except ValueError as e:
                return 400, hcloud_error('invalid_input', 'invalid label_selector: %s' % e)
            if 'status' in query:
                servers = [s for s in servers if s['status'] in query['status']]
            items, meta = paginate(servers, query)
            return 200, {'servers': items, 'meta': meta}
        return 404, hcloud_error('not_found', 'not found')


NEW = 'omr-ci-' + RUN
FLEET = 55  # more than the plugin's 50 a page: the new server is on page 2


@pytest.fixture
def hcloud():
    api = FakeApi(HcloudHandler)
    api.servers = [hcloud_server(n, 'omr-vps-%02d' % n, {'omr_role': 'vps'}) for n in range(FLEET)]
    api.servers += [
        hcloud_server(FLEET, 'unrelated', {'team': 'web'}),
        # The same run's label, still booting: not reachable yet.
        hcloud_server(FLEET + 1, NEW + '-booting', {'omr_role': 'vps', 'omr_run': RUN}, status='initializing'),
        hcloud_server(FLEET + 2, NEW, {'omr_role': 'vps', 'omr_run': RUN}),
    ]
    with api:
        yield api


def inventory_copy(tmp_path, name, endpoint, **changes):
    """The example with only its endpoint (and what a test changes on purpose) replaced."""
    with open(os.path.join(CLOUD, name), encoding='utf-8') as f:
        config = yaml.safe_load(f)
    assert 'api_endpoint' not in config and not {'api_token', 'token', 'api_key'} & set(config), \
        'the example must leave endpoint and token to the environment'
    config['api_endpoint'] = endpoint
    config.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


def inventory(path, env):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(('HCLOUD_', 'VULTR_', 'ANSIBLE_')) and 'proxy' not in k.lower()}
    base.update(ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), NO_PROXY='127.0.0.1', PY_COLORS='0',
                ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1')
    base.update(env)
    return subprocess.run([ANSIBLE_INVENTORY, '-i', path, '--list'], env=base, cwd=os.path.dirname(path),
                          capture_output=True, text=True, check=False, timeout=60)


def plain(value):
    """A plugin's strings as ansible-inventory --list prints them on ansible-core 2.19, unwrapped."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def hosts_of(data, group):
    return sorted(data.get(group, {}).get('hosts', []))


def test_the_new_hetzner_server_lands_in_omr_vps_and_its_run_group(tmp_path, hcloud):
    env = dict(pipeline_env(), HCLOUD_TOKEN=TOKEN)
    res = inventory(inventory_copy(tmp_path, 'hcloud.yml', hcloud.url + '/v1'), env)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    hostvars = data['_meta']['hostvars']
    fleet = ['omr-vps-%02d' % n for n in range(FLEET)]
    assert hosts_of(data, 'omr_vps') == sorted(fleet + [NEW])
    assert hosts_of(data, 'omr_run_' + RUN) == [NEW]
    assert 'unrelated' not in hostvars and NEW + '-booting' not in hostvars
    new = plain(hostvars[NEW])
    assert new['ansible_host'] == hcloud.servers[-1]['public_net']['ipv4']['ip']
    assert (new['ansible_user'], new['ansible_port']) == ('root', 22)
    assert new['hcloud_labels'] == {'omr_role': 'vps', 'omr_run': RUN}
    assert hosts_of(data, 'hcloud_location_fsn1') == sorted(fleet + [NEW])
    # What the plugin asked: the token check, then every page of the label's running servers.
    servers = [r for r in hcloud.requests if r['path'] == '/v1/servers']
    assert hcloud.requests[0]['path'] == '/v1/locations'
    assert [r['query'].get('page') for r in servers] == [['1'], ['2']]
    assert all(r['query']['label_selector'] == ['omr_role=vps'] and r['query']['status'] == ['running']
               for r in servers)
    assert {r['status'] for r in hcloud.requests} == {200}


def test_a_bad_hetzner_token_fails_instead_of_an_empty_inventory(tmp_path, hcloud):
    path = inventory_copy(tmp_path, 'hcloud.yml', hcloud.url + '/v1')
    res = inventory(path, dict(pipeline_env(), HCLOUD_TOKEN='wrong'))
    assert res.returncode != 0
    assert res.stdout.strip() == '', 'an inventory was printed: ' + res.stdout
    assert 'Invalid Hetzner Cloud API Token' in res.stderr
    assert [r['status'] for r in hcloud.requests] == [401]
    # Without the pipelines' setting the same token "succeeds" with no host at all: why they set it.
    res = inventory(path, {'HCLOUD_TOKEN': 'wrong'})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)['_meta']['hostvars'] == {}


def test_strict_refuses_a_bare_number_in_compose(tmp_path, hcloud):
    with open(os.path.join(CLOUD, 'hcloud.yml'), encoding='utf-8') as f:
        compose = yaml.safe_load(f)['compose']
    path = inventory_copy(tmp_path, 'hcloud.yml', hcloud.url + '/v1', compose=dict(compose, ansible_port=22))
    res = inventory(path, dict(pipeline_env(), HCLOUD_TOKEN=TOKEN))
    assert res.returncode != 0 and 'ansible_port' in res.stderr, res.stdout + res.stderr


def run_check(listed, group, host):
    """The pipelines' check: jq -f run-inventory.jq on ansible-inventory --list."""
    return subprocess.run(['jq', '--arg', 'group', group, '--arg', 'host', host, '-f', RUN_INVENTORY],
                          input=listed, capture_output=True, text=True, check=False, timeout=60)


@needs_jq
def test_the_run_inventory_is_the_new_host_alone_and_the_audit_can_read_it(tmp_path, hcloud, monkeypatch):
    env = dict(pipeline_env(), HCLOUD_TOKEN=TOKEN)
    path = inventory_copy(tmp_path, 'hcloud.yml', hcloud.url + '/v1')
    listed = inventory(path, env)
    assert listed.returncode == 0, listed.stderr
    check = run_check(listed.stdout, 'omr_run_' + RUN, NEW)
    assert check.returncode == 0, check.stderr
    snapshot = tmp_path / 'run' / 'run-inventory.yml'
    snapshot.parent.mkdir()
    snapshot.write_text(check.stdout)
    res = inventory(str(snapshot), {})
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    ip = hcloud.servers[-1]['public_net']['ipv4']['ip']
    assert hosts_of(data, 'omr_run_' + RUN) == [NEW] and data['omr_vps']['children'] == ['omr_run_' + RUN]
    assert data['_meta']['hostvars'][NEW]['ansible_host'] == ip
    # pytest-testinfra's own ansible:// reading: the run's inventory gives an ssh host, the cloud
    # inventory itself does not (its strings come out of ansible-inventory wrapped as unsafe; the
    # pipelines' audit step, tests/audit/run.py, unwraps them and takes either).
    from testinfra.utils.ansible_runner import AnsibleRunner
    monkeypatch.setenv('PATH', os.path.dirname(ANSIBLE_INVENTORY) + os.pathsep + os.environ['PATH'])
    monkeypatch.setenv('ANSIBLE_CONFIG', os.path.join(ROOT, 'ansible.cfg'))
    backend = AnsibleRunner(str(snapshot)).get_host(NEW).backend
    assert (backend.NAME, backend.host.name, backend.host.user, str(backend.host.port)) == ('ssh', ip, 'root', '22')
    monkeypatch.setenv('HCLOUD_TOKEN', TOKEN)
    with pytest.raises(AssertionError, match='__ansible_unsafe'):
        AnsibleRunner(path).get_host(NEW)
    # The audit step's runner: from either inventory, the VPS checks over ssh to the new host.
    spec = importlib.util.spec_from_file_location('omr_audit_run', os.path.join(ROOT, 'tests', 'audit', 'run.py'))
    audit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(audit)
    for source in (str(snapshot), path):
        args = audit.parse_args(['-i', source, '-g', 'omr_run_' + RUN, '-o', str(tmp_path / 'audit')])
        items = audit.plan_hosts(args, dict(audit.tool_env(), **pipeline_env()), str(tmp_path))
        assert [(i['name'], [os.path.basename(f) for f in i['files']]) for i in items] == [(NEW, ['test_vps.py'])]
        target = items[0]['target']
        assert (target['kind'], target['address'], target['user'], target['port']) == ('ssh', ip, 'root', 22)


@needs_jq
def test_the_run_check_fails_unless_the_group_holds_exactly_the_new_host(tmp_path, hcloud):
    env = dict(pipeline_env(), HCLOUD_TOKEN=TOKEN)
    path = inventory_copy(tmp_path, 'hcloud.yml', hcloud.url + '/v1')
    hcloud.servers[-2]['status'] = 'running'  # another server with this run's label
    listed = inventory(path, env)
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(listed.stdout)['omr_run_' + RUN]['hosts']) == sorted([NEW, NEW + '-booting'])
    for group, host in (('omr_run_' + RUN, NEW), ('omr_run_' + RUN, 'other'), ('omr_run_none', NEW)):
        res = run_check(listed.stdout, group, host)
        assert res.returncode != 0 and res.stdout == '' and 'not ["%s"]' % host in res.stderr, res.stderr


# ---- Vultr --------------------------------------------------------------------------------------

def vultr_instance(num, label, tags, server_status='ok'):
    booted = server_status == 'ok'
    return {
        'id': 'a1b2c3d4-0000-4000-8000-%012d' % num, 'os': 'Debian 12 x64 (bookworm)', 'ram': 2048, 'disk': 55,
        'main_ip': '198.51.100.%d' % (num % 250 + 1) if booted else '0.0.0.0', 'vcpu_count': 1,
        'region': 'fra', 'plan': 'vc2-1c-2gb', 'date_created': '2026-12-01T10:00:00+00:00',
        'status': 'active' if booted else 'pending', 'allowed_bandwidth': 2048, 'netmask_v4': '255.255.254.0',
        'gateway_v4': '198.51.100.1', 'power_status': 'running', 'server_status': server_status,
        'v6_network': '2001:db8:%x::' % num, 'v6_main_ip': '2001:db8:%x::1' % num, 'v6_network_size': 64,
        'label': label, 'internal_ip': '', 'kvm': '', 'hostname': label, 'tag': '', 'tags': tags, 'os_id': 2136,
        'app_id': 0, 'image_id': '', 'firewall_group_id': 'f1', 'features': ['ipv6'], 'user_scheme': 'root',
    }


class VultrHandler(Handler):
    def answer(self, path, query, authorized):
        if not authorized:
            return 401, {'error': 'Invalid API token.', 'status': 401}
        if path != '/v2/instances':
            return 404, {'error': 'Invalid API call.', 'status': 404}
        per_page = min(int(query.get('per_page', ['100'])[0]), 500)
        start = int(query.get('cursor', ['0'])[0])
        instances = self.server.instances
        following = start + per_page
        nxt = str(following) if following < len(instances) else ''
        return 200, {'instances': instances[start:following],
                     'meta': {'total': len(instances), 'links': {'next': nxt, 'prev': str(start) if start else ''}}}


VULTR_FLEET = 105  # more than the plugin's 100 a page


@pytest.fixture
def vultr():
    api = FakeApi(VultrHandler)
    api.instances = [vultr_instance(n, 'omr-vps-%03d' % n, ['omr_vps']) for n in range(VULTR_FLEET)]
    api.instances += [
        vultr_instance(VULTR_FLEET, 'unrelated', ['web']),
        vultr_instance(VULTR_FLEET + 1, NEW + '-booting', ['omr_vps', 'omr_run_' + RUN], server_status='installingbooting'),
        vultr_instance(VULTR_FLEET + 2, NEW, ['omr_vps', 'omr_run_' + RUN]),
    ]
    with api:
        yield api


def test_the_new_vultr_instance_lands_in_omr_vps_and_its_run_group(tmp_path, vultr):
    env = dict(pipeline_env(), VULTR_API_KEY=TOKEN)
    res = inventory(inventory_copy(tmp_path, 'vultr.yml', vultr.url + '/v2'), env)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    hostvars = data['_meta']['hostvars']
    fleet = ['omr-vps-%03d' % n for n in range(VULTR_FLEET)]
    assert hosts_of(data, 'omr_vps') == sorted(fleet + [NEW])
    assert hosts_of(data, 'omr_run_' + RUN) == [NEW]
    assert 'unrelated' not in hostvars and NEW + '-booting' not in hostvars
    new = plain(hostvars[NEW])
    assert new['ansible_host'] == vultr.instances[-1]['main_ip']
    assert (new['ansible_user'], new['ansible_port']) == ('root', 22)
    assert [r['query'].get('cursor') for r in vultr.requests] == [None, ['100']]
    assert {r['status'] for r in vultr.requests} == {200}


def test_a_bad_vultr_key_fails_instead_of_an_empty_inventory(tmp_path, vultr):
    path = inventory_copy(tmp_path, 'vultr.yml', vultr.url + '/v2')
    res = inventory(path, dict(pipeline_env(), VULTR_API_KEY='wrong'))
    assert res.returncode != 0
    assert res.stdout.strip() == '', 'an inventory was printed: ' + res.stdout
    assert '401' in res.stderr
    assert [r['status'] for r in vultr.requests] == [401]
