#!/bin/sh
# Usage: lab/inventory.sh PROFILE DIR [ROUTER]
# Makes DIR an Ansible inventory of the lab: its hosts (lab/inventory.yml, the one list the demo
# and Molecule share), its group_vars, and link profile PROFILE as group_vars/all.yml, the same
# place molecule/lab/group_vars/ gives it. So a play's own vars override the profile in the demo
# exactly as they do in the scenario (extra vars, -e @profile, would override them instead).
# ROUTER: linux (the Debian router, the default) or omr (the OMR stand-in, omr-lab-omr).
set -eu
profile=$1 dir=$2 router=${3:-linux}
lab=$(cd "$(dirname "$0")" && pwd)
[ -r "$lab/profiles/$profile.yml" ] || { echo "no lab profile $profile (lab/profiles/*.yml)" >&2; exit 4; }
mkdir -p "$dir/group_vars"
rm -f "$dir/hosts.yml"
case $router in
linux) ln -sfn "$lab/inventory.yml" "$dir/hosts.yml" ;;
omr) sed 's/^\( *\)omr-lab-router:  # the router;.*$/\1omr-lab-omr:/' "$lab/inventory.yml" >"$dir/hosts.yml" ;;
*) echo "no lab router $router (linux or omr)" >&2; exit 4 ;;
esac
for f in "$lab"/group_vars/*.yml; do
  ln -sfn "$f" "$dir/group_vars/$(basename "$f")"
done
ln -sfn "$lab/profiles/$profile.yml" "$dir/group_vars/all.yml"
