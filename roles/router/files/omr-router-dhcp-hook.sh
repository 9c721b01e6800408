#!/bin/sh
# dhcpcd runs this (its `script`) on every event of the router's DHCP WANs, with the lease in
# its environment (new_ip_address, new_subnet_cidr, new_routers). omr-router-net keeps the
# lease and moves the WAN's table, source rule, default route and MPTCP endpoint to it.
exec /usr/local/sbin/omr-router-net lease "${interface:-}" "${reason:-}"
