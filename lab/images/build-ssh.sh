#!/usr/bin/env bash
# Build a lab image with sshd on top of another lab image, only when either changed.
# Usage: build-ssh.sh BASE TAG    e.g. build-ssh.sh localhost/omr-lab/debian:12 localhost/omr-lab/debian-ssh:12
# `make bench` converges these over ssh, as fleets run (pipelining, ControlPersist): podman's
# connection cannot pipeline, so converge times through it measure podman exec. A script of its
# own, so that the lab images' recipes (build.sh's hash) do not change with it.
set -euo pipefail
base=$1 tag=$2
here=$(cd "$(dirname "$0")" && pwd)
: "${CONTAINERS_CONF:=$here/../containers.conf}"
export CONTAINERS_CONF
base_recipe=$(podman image inspect --format '{{ index .Labels "omr.recipe" }}' "$base")
recipe=$( (cat "$0"; echo "$base $base_recipe") | sha256sum | cut -c1-16)
have=$(podman image inspect --format '{{ index .Labels "omr.recipe" }}' "$tag" 2>/dev/null || true)
if [ "$have" = "$recipe" ]; then
  echo "$tag is up to date (recipe $recipe)"
  exit 0
fi
echo "building $tag from $base (recipe $recipe)"
# The host keys are made here, so every container of the image shares them: a lab, not a fleet.
podman build --quiet --label "omr.recipe=$recipe" --tag "$tag" --file - <<EOF
FROM $base
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server \
    && rm -rf /var/lib/apt/lists/* && systemctl enable ssh.service && install -d -m 0700 /root/.ssh
EOF
