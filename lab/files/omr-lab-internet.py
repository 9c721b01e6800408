# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-lab-internet: a server on the lab's internet, beyond the VPS (a lab instrument).

Serves the files of a directory over HTTP (what a LAN client downloads) and echoes UDP
datagrams back to their sender (what the VPN must carry):

  omr-lab-internet --listen 198.18.0.10 --http-port 80 --udp-port 7 --directory /srv/omr-lab
"""

from __future__ import absolute_import, division, print_function

import argparse
import functools
import http.server
import socket
import sys
import threading


class Handler(http.server.SimpleHTTPRequestHandler):
    # Large writes: the sender, not this loop, should set the pace.
    wbufsize = 1 << 20

    def log_message(self, fmt, *args):
        sys.stdout.write('%s %s\n' % (self.client_address[0], fmt % args))
        sys.stdout.flush()


def udp_echo(address, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, port))
    while True:
        data, peer = sock.recvfrom(65535)
        sock.sendto(data, peer)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='omr-lab-internet', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--listen', required=True)
    parser.add_argument('--http-port', type=int, default=80)
    parser.add_argument('--udp-port', type=int, default=7)
    parser.add_argument('--directory', required=True)
    args = parser.parse_args(argv)
    threading.Thread(target=udp_echo, args=(args.listen, args.udp_port), daemon=True).start()
    handler = functools.partial(Handler, directory=args.directory)
    server = http.server.ThreadingHTTPServer((args.listen, args.http_port), handler)
    server.serve_forever()
    return 0


if __name__ == '__main__':
    sys.exit(main())
