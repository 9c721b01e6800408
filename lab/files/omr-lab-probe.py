# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-lab-probe: what a host on the internet sees of another's TCP ports.

Connects to each port and prints JSON {port: state}: `open` (the handshake completed),
`refused` (a reset: nothing listens, but the port is not filtered) or `filtered` (no answer
within the timeout: a firewall dropped the SYN).

  omr-lab-probe --host 198.51.100.10 --timeout 2 22 65101 65301 8080 9100
"""

from __future__ import absolute_import, division, print_function

import argparse
import errno
import json
import socket
import sys


def probe(host, port, timeout):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        return 'open'
    except socket.timeout:
        return 'filtered'
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return 'refused'
        # An ICMP error (host or port unreachable, admin prohibited): a firewall's reject.
        return 'filtered'
    finally:
        sock.close()


def main(argv=None):
    parser = argparse.ArgumentParser(prog='omr-lab-probe', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--host', required=True)
    parser.add_argument('--timeout', type=float, default=2.0)
    parser.add_argument('ports', type=int, nargs='+')
    args = parser.parse_args(argv)
    json.dump(dict((str(p), probe(args.host, p, args.timeout)) for p in args.ports), sys.stdout, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
