# -*- coding: utf-8 -*-
# Copyright: omr.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: the speed test's deterministic data stream.

The VPS's speed-test server (roles/vps/files/omr-mptcp-speedtest.py, which gets a copy of this
file beside it) sends it, and omr.deploy.mptcp_probe (through _mptcp_sock) checks every byte it
receives against it, so an MPTCP transfer is known to be intact and in order.

Standard library only and no imports from the collection.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import struct

STREAM_BLOCK = 65536
STREAM_MAGIC = b'omr-mptcp-speedtest/1'


def stream_base(seed):
    """64 KiB of SHA-256 output in counter mode, seeded: the body of every stream block."""
    prefix = STREAM_MAGIC + struct.pack('>Q', seed)
    return b''.join(hashlib.sha256(prefix + struct.pack('>I', i)).digest() for i in range(STREAM_BLOCK // 32))


class DataStream(object):
    """Endless deterministic byte stream for one seed.

    Block k (64 KiB) is the 8-byte big-endian block number k followed by bytes 8..65535
    of stream_base(seed), so no two blocks are alike and a misplaced block is caught.
    The stream starts with eight zero bytes, never with `{`, so a receiver can tell
    data from a JSON error line.
    """

    def __init__(self, seed=0):
        self.seed = int(seed) & 0xFFFFFFFFFFFFFFFF
        self._tail = stream_base(self.seed)[8:]
        self._index = None
        self._block = None

    def block(self, index):
        if index != self._index:
            self._block = struct.pack('>Q', index) + self._tail
            self._index = index
        return self._block

    def read(self, offset, length):
        """Bytes [offset, offset + length) of the stream."""
        parts = []
        while length > 0:
            index, pos = divmod(offset, STREAM_BLOCK)
            piece = self.block(index)[pos:pos + length]
            parts.append(piece)
            offset += len(piece)
            length -= len(piece)
        return b''.join(parts)

    def view(self, offset, limit=None):
        """A memoryview from `offset` to the end of its block (at most `limit` bytes), for send()."""
        index, pos = divmod(offset, STREAM_BLOCK)
        end = STREAM_BLOCK if limit is None else min(STREAM_BLOCK, pos + limit)
        return memoryview(self.block(index))[pos:end]
