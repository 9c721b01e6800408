# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-lab-portal: the lab's captive-portal simulator (lab only, not part of the collection).

Two modes, both standard library only:

  portal  runs on omr-lab-hotspot. Clients outside the nftables set of logged-in clients have
          their HTTP redirected here by the hotspot's DNAT rule and get `302 Location: /login`.
          POST /login with the right username and password puts the client's address in the
          set with the session timeout (an nftables element timeout), so the session ends by
          itself; wrong credentials get 403. Every event is one line on stdout (the journal).
  check   runs on the lab's "internet" (omr-lab-isp): GET /generate_204 answers 204, like the
          connectivity checks of Android and ChromeOS.

Run as `python3 omr-lab-portal.py portal|check [options]`. No shebang: see
roles/vps/files/omr-mptcp-speedtest.py.
"""

from __future__ import absolute_import, division, print_function

import argparse
import subprocess
import sys

try:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs
except ImportError:  # pragma: no cover - Python 2 is not supported, the import keeps sanity quiet
    BaseHTTPRequestHandler = object
    ThreadingHTTPServer = None

LOGIN_PAGE = (b'<html><body><form method="post" action="/login">'
              b'<input name="username"><input name="password" type="password">'
              b'<input type="submit" value="Log in"></form></body></html>\n')


def log(msg):
    sys.stdout.write(msg + '\n')
    sys.stdout.flush()


class Portal(BaseHTTPRequestHandler):
    """The hotspot's portal; settings come in as class attributes (see serve())."""

    settings = None
    server_version = 'omr-lab-portal'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def reply(self, status, body=b'', headers=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Connection', 'close')
        self.end_headers()
        if body and self.command != 'HEAD':
            self.wfile.write(body)

    def do_GET(self):
        s = self.settings
        if s.mode == 'check':
            if self.path.split('?')[0] == '/generate_204':
                self.reply(204)
            else:
                self.reply(404, b'not found\n')
            return
        if self.path.split('?')[0] == '/login':
            self.reply(200, LOGIN_PAGE, {'Content-Type': 'text/html'})
            return
        log('redirect %s: http://%s%s' % (self.client_address[0], self.headers.get('Host', '-'), self.path))
        self.reply(302, b'', {'Location': 'http://%s/login' % s.portal_host})

    def do_POST(self):
        s = self.settings
        if s.mode != 'portal' or self.path.split('?')[0] != '/login':
            self.reply(404, b'not found\n')
            return
        length = int(self.headers.get('Content-Length') or 0)
        form = parse_qs(self.rfile.read(min(length, 65536)).decode('utf-8', 'replace'))
        user = (form.get('username') or [''])[0]
        password = (form.get('password') or [''])[0]
        client = self.client_address[0]
        if user != s.username or password != s.password:
            log('login refused for %s: wrong credentials for user %r' % (client, user))
            self.reply(403, b'login failed\n', {'Content-Type': 'text/plain'})
            return
        # A fresh element restarts the session: delete may fail when there is none.
        subprocess.call(['nft', 'delete', 'element'] + s.nft_set.split() + ['{ %s }' % client],
                        stderr=subprocess.DEVNULL)
        rc = subprocess.call(['nft', 'add', 'element'] + s.nft_set.split()
                             + ['{ %s timeout %ds }' % (client, s.session_timeout)])
        if rc != 0:
            log('login of %s failed: nft returned %d' % (client, rc))
            self.reply(500, b'portal error\n')
            return
        log('login ok for %s (user %s), session %d s' % (client, user, s.session_timeout))
        self.reply(200, b'logged in\n', {'Content-Type': 'text/plain'})


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('mode', choices=['portal', 'check'])
    p.add_argument('--listen', default='0.0.0.0')
    p.add_argument('--port', type=int, default=80)
    p.add_argument('--portal-host', default='', help='host[:port] the redirect points at (default: --listen)')
    p.add_argument('--username', default='guest')
    p.add_argument('--password-file', help='file holding the password (first line)')
    p.add_argument('--session-timeout', type=int, default=30)
    p.add_argument('--nft-set', default='inet omr_lab_hotspot clients', help='family table set')
    args = p.parse_args(argv)
    args.portal_host = args.portal_host or args.listen
    args.password = ''
    if args.password_file:
        with open(args.password_file) as f:
            args.password = f.readline().strip()
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    handler = type('Handler', (Portal,), {'settings': args})
    server = ThreadingHTTPServer((args.listen, args.port), handler)
    session = ', session %d s' % args.session_timeout if args.mode == 'portal' else ''
    log('%s listening on %s:%d%s' % (args.mode, args.listen, args.port, session))
    server.serve_forever()


if __name__ == '__main__':
    main()
