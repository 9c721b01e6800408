# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-lab-fetch: the LAN client's download, counted by the receiver (a lab instrument).

  omr-lab-fetch URL [--timeout S] [--samples]   prints JSON: bytes, seconds, mbps, sha256, error
                                                (--samples: also [seconds, bytes] every 50 ms and
                                                the wall clock at the first byte, for make bench)

The client knows nothing of MPTCP: a plain TCP connection, as a laptop behind the router makes.
The clock starts at the first byte of the body, so the rate is the transfer's, not the set-up's.
"""

from __future__ import absolute_import, division, print_function

import argparse
import hashlib
import json
import sys
import time
import urllib.request


def fetch(url, timeout, sampled=False):
    result = {'url': url, 'bytes': 0, 'seconds': 0.0, 'mbps': 0.0, 'sha256': None, 'error': None}
    digest = hashlib.sha256()
    samples, last = [], 0.0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            first = response.read(65536)
            start = time.monotonic()
            result['start_wall'] = time.time()
            digest.update(first)
            result['bytes'] = len(first)
            while True:
                # Small reads when sampling, so the samples follow the rate closely.
                chunk = response.read(1 << 16 if sampled else 1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
                result['bytes'] += len(chunk)
                now = time.monotonic() - start
                if sampled and now - last >= 0.05:
                    samples.append([round(now, 3), result['bytes']])
                    last = now
            seconds = time.monotonic() - start
    except (OSError, ValueError) as exc:
        result['error'] = str(exc)
        return result
    result['seconds'] = round(seconds, 3)
    result['mbps'] = round((result['bytes'] - len(first)) * 8 / seconds / 1e6, 2) if seconds > 0 else 0.0
    result['sha256'] = digest.hexdigest()
    if sampled:
        result['samples'] = [[0.0, len(first)]] + samples + [[round(seconds, 3), result['bytes']]]
    else:
        result.pop('start_wall', None)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog='omr-lab-fetch', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('url')
    parser.add_argument('--timeout', type=float, default=10.0)
    parser.add_argument('--samples', action='store_true')
    args = parser.parse_args(argv)
    result = fetch(args.url, args.timeout, args.samples)
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write('\n')
    return 0 if result['error'] is None else 1


if __name__ == '__main__':
    sys.exit(main())
