# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-lab-udp-burst: a LAN client's UDP burst to the internet host's echo, counted both ways.

Sends numbered datagrams at a steady rate for a while, counts the distinct echoes that come
back, and prints JSON: sent, received (datagrams), sent_bytes, received_bytes, seconds, mbps
(what was sent), lost_pct. Faster than one WAN, the burst needs every WAN the tunnel has.

  omr-lab-udp-burst --target 198.18.0.10 --port 7 --mbps 30 --seconds 5
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import socket
import struct
import sys
import threading
import time

HEADER = struct.Struct('!Q')


def burst(target, port, mbps, seconds, size, linger=2.0, clock=time.monotonic, sleep=time.sleep):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((target, port))
    sock.settimeout(0.2)
    seen = set()
    stop = threading.Event()

    def receive():
        while not stop.is_set():
            try:
                data = sock.recv(65535)
            except socket.timeout:
                continue
            except OSError:
                continue
            if len(data) >= HEADER.size:
                seen.add(HEADER.unpack_from(data)[0])

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    interval = size * 8 / (mbps * 1e6)
    payload = b'\0' * (size - HEADER.size)
    sent = 0
    start = clock()
    while clock() - start < seconds:
        due = start + sent * interval
        now = clock()
        if due > now:
            sleep(due - now)
        try:
            sock.send(HEADER.pack(sent) + payload)
        except OSError:
            pass            # a full queue or an unreachable burst: counted as lost
        sent += 1
    elapsed = clock() - start
    sleep(linger)
    stop.set()
    reader.join()
    received = len(seen)
    return {'sent': sent, 'received': received, 'sent_bytes': sent * size, 'received_bytes': received * size,
            'seconds': round(elapsed, 3), 'mbps': round(sent * size * 8 / elapsed / 1e6, 2) if elapsed else 0.0,
            'lost_pct': round(100.0 * (sent - received) / sent, 2) if sent else 100.0}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='omr-lab-udp-burst', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--target', required=True)
    parser.add_argument('--port', type=int, default=7)
    parser.add_argument('--mbps', type=float, default=30.0)
    parser.add_argument('--seconds', type=float, default=5.0)
    parser.add_argument('--size', type=int, default=1200)
    args = parser.parse_args(argv)
    json.dump(burst(args.target, args.port, args.mbps, args.seconds, args.size), sys.stdout, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
