#!/bin/sh
# What playbooks/diagnose.yml reads on the router and the VPS, run with raw as
#   sh -c "$(cat omr-diagnose.sh)" omr-diagnose COMMAND ARGS...
# POSIX sh (busybox ash on an OMR router, which has no Python). Each part of the output follows a
# line "#omr-diagnose# NAME"; the controller parses it (plugins/module_utils/_diagnose.py, _qdisc.py).
#   snapshot                       the counters the report compares over time: /proc/uptime, stat,
#                                  vmstat, meminfo, net/dev, net/netstat, every process's stat, CLK_TCK
#   qdiscs DEV...                  tc's qdiscs, classes, the filters on them and the ingress filters of
#                                  each DEV, and the same for an IFB an ingress filter redirects to
#   sample INTERVAL COUNT DEV...   starts a sampler in the background and prints "FILE PID": COUNT
#                                  samples of the uptime, the CPU lines of /proc/stat and the DEVs'
#                                  byte counters (DEV "all": every device), every INTERVAL s
#   collect FILE PID               stops that sampler after one last sample, prints what it wrote
#                                  and removes FILE
#   watchdog SECONDS SHELL         runs SHELL (the shaping's restore) in SECONDS s unless disarmed;
#                                  prints its PID
#   disarm PID                     stops that watchdog
# It changes nothing but the sampler's file in /tmp, which `collect` removes (and, armed, the
# watchdog puts back what the playbook removed).
m='#omr-diagnose#'
LC_ALL=C
PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL PATH

sample_once() {
  # One sample: "t UPTIME", the CPU lines of /proc/stat, then "d DEV RX TX" for each DEV.
  echo "t $(cut -d ' ' -f 1 /proc/uptime)"
  grep '^cpu' /proc/stat
  for dev in "$@"; do
    rx=- tx=-
    [ -r "/sys/class/net/$dev/statistics/rx_bytes" ] && read -r rx <"/sys/class/net/$dev/statistics/rx_bytes"
    [ -r "/sys/class/net/$dev/statistics/tx_bytes" ] && read -r tx <"/sys/class/net/$dev/statistics/tx_bytes"
    echo "d $dev $rx $tx"
  done
}

alive() {
  # A process that has not ended: its state (after the name in parentheses) is not Z.
  state=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

tree() {
  # $1: the device; $2: the WAN whose ingress redirects to it, if any
  echo "$m dev $1${2:+ for $2}"
  echo "$m qdisc"
  tc qdisc show dev "$1"
  echo "$m class"
  tc class show dev "$1"
  echo "$m filter"
  for id in $(tc qdisc show dev "$1" | sed -n 's/^qdisc [^ ]* \([0-9a-f]*:\) .*/\1/p') \
            $(tc class show dev "$1" | sed -n 's/^class [^ ]* \([0-9a-f]*:[0-9a-f]*\) .*/\1/p'); do
    case $id in ffff:) continue ;; esac
    tc filter show dev "$1" parent "$id" 2>/dev/null
  done
  echo "$m ingress"
  tc filter show dev "$1" parent ffff: 2>/dev/null
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
snapshot)
  for f in uptime stat vmstat meminfo net/dev net/netstat; do
    echo "$m $f"
    cat "/proc/$f" 2>/dev/null
  done
  echo "$m clk_tck"
  getconf CLK_TCK 2>/dev/null || echo 100
  echo "$m pids"
  # comm only: a command line may hold a secret (ss-server -k).
  cat /proc/[0-9]*/stat 2>/dev/null
  echo "$m end"
  ;;
qdiscs)
  if ! command -v tc >/dev/null 2>&1; then
    echo "$m notc"
    exit 0
  fi
  for dev in "$@"; do
    tree "$dev"
    for ifb in $(tc filter show dev "$dev" parent ffff: 2>/dev/null | sed -n 's/.*Redirect to device \([^) ]*\)).*/\1/p'); do
      tree "$ifb" "$dev"
    done
  done
  echo "$m end"
  ;;
sample)
  interval=$1 count=$2
  shift 2
  if [ "${1:-}" = all ]; then
    set --
    for d in /sys/class/net/*; do
      set -- "$@" "${d##*/}"
    done
  fi
  out=$(mktemp /tmp/omr-diagnose.XXXXXX) || exit 1
  # Ignored here, and so in the sampler: the hang-up when raw's session (ssh -tt, a pty) ends.
  trap '' HUP
  (
    i=0
    while [ "$i" -lt "$count" ]; do
      sample_once "$@" >>"$out"
      # `collect` asks for one last sample, taken after the transfer ended.
      [ -e "$out.stop" ] && break
      i=$((i + 1))
      { sleep "$interval" || sleep 1; } 2>/dev/null
    done
    echo end >>"$out"
  ) </dev/null >/dev/null 2>&1 &
  echo "$out $!"
  ;;
collect)
  out=$1 pid=$2
  case $out in /tmp/omr-diagnose.*) ;; *) echo "not a sampler's file: $out" >&2; exit 2 ;; esac
  # Only our own sampler: its command line names this script. It takes a last sample and ends
  # within one interval; killed if it has not after 3 s. Gone (or a zombie, state Z) before its
  # file is read and removed, so it cannot write it again.
  if grep -q omr-diagnose "/proc/$pid/cmdline" 2>/dev/null; then
    : >"$out.stop"
    n=0
    while alive "$pid" && [ "$n" -lt 30 ]; do
      { sleep 0.1 || sleep 1; } 2>/dev/null
      n=$((n + 1))
    done
    if alive "$pid"; then
      kill "$pid" 2>/dev/null
      sleep 1
    fi
  fi
  echo "$m samples"
  cat "$out" 2>/dev/null
  rm -f "$out" "$out.stop"
  echo "$m end"
  ;;
watchdog)
  # Runs SHELL after SECONDS unless `disarm` stops it first, even if the session that started it ends.
  trap '' HUP
  ( sleep "$1" && sh -c "$2" ) </dev/null >/dev/null 2>&1 &
  echo "$!"
  ;;
disarm)
  if [ -n "${1:-}" ] && grep -q omr-diagnose "/proc/$1/cmdline" 2>/dev/null; then
    kill "$1" 2>/dev/null
  fi
  ;;
*)
  echo "usage: omr-diagnose snapshot | qdiscs DEV... | sample INTERVAL COUNT DEV... | collect FILE PID" >&2
  echo "       | watchdog SECONDS SHELL | disarm PID" >&2
  exit 2
  ;;
esac
