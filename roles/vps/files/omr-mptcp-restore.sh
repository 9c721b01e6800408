#!/bin/sh
# omr-mptcp-restore: runs the program the role installs in /usr/local/lib/omr-deploy (a static wrapper, so the
# Python file needs no interpreter line and Python finds the modules beside it).
exec /usr/bin/python3 /usr/local/lib/omr-deploy/omr-mptcp-restore.py "$@"
