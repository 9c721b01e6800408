#!/bin/sh
# omr-wifi-bridge-net: runs the program the role installs in /usr/local/lib/omr-wifi-bridge (a static wrapper, so the
# Python file needs no interpreter line and Python finds the modules beside it).
exec /usr/bin/python3 /usr/local/lib/omr-wifi-bridge/omr-wifi-bridge-net.py "$@"
