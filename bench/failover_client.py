"""Run inside the lab router: download a fixed number of bytes over MPTCP from the speed-test
server, check every byte against the stream it sends (the collection's _mptcp_stream.py), and record the receiver's
byte count over time so the bench can see the dip and the recovery around a WAN cut.

Usage: python3 failover_client.py STREAM_FILE HOST PORT BYTES
"""
import importlib.util
import json
import socket
import sys
import time


def main():
    stream_file, host, port, nbytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    spec = importlib.util.spec_from_file_location("omr_mptcp_stream", stream_file)
    streams = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(streams)
    stream = streams.DataStream(0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
    sock.settimeout(60)
    sock.connect((host, port))
    sock.sendall(json.dumps({"direction": "download", "bytes": nbytes}).encode() + b"\n")
    start_wall, start = time.time(), time.monotonic()
    received, intact, samples, last = 0, True, [(0.0, 0)], 0.0
    while received < nbytes:
        buf = sock.recv(262144)
        if not buf:
            break
        if intact and buf != stream.read(received, len(buf)):
            intact = False
        received += len(buf)
        now = time.monotonic() - start
        if now - last >= 0.05:
            samples.append((round(now, 3), received))
            last = now
    elapsed = time.monotonic() - start
    samples.append((round(elapsed, 3), received))
    sock.close()
    print(json.dumps({"bytes": nbytes, "received": received, "intact": intact, "seconds": elapsed,
                      "start_wall": start_wall, "samples": samples}))


if __name__ == "__main__":
    main()
