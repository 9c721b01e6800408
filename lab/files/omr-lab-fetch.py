# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""omr-lab-fetch: the LAN client's download, counted by the receiver (a lab instrument).

  omr-lab-fetch URL [--timeout S]   prints JSON: bytes, seconds, mbps, sha256, error

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


def fetch(url, timeout):
    result = {'url': url, 'bytes': 0, 'seconds': 0.0, 'mbps': 0.0, 'sha256': None, 'error': None}
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            first = response.read(65536)
            start = time.monotonic()
            digest.update(first)
            result['bytes'] = len(first)
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
                result['bytes'] += len(chunk)
            seconds = time.monotonic() - start
    except (OSError, ValueError) as exc:
        result['error'] = str(exc)
        return result
    result['seconds'] = round(seconds, 3)
    result['mbps'] = round((result['bytes'] - len(first)) * 8 / seconds / 1e6, 2) if seconds > 0 else 0.0
    result['sha256'] = digest.hexdigest()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog='omr-lab-fetch', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('url')
    parser.add_argument('--timeout', type=float, default=10.0)
    args = parser.parse_args(argv)
    result = fetch(args.url, args.timeout)
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write('\n')
    return 0 if result['error'] is None else 1


if __name__ == '__main__':
    sys.exit(main())
