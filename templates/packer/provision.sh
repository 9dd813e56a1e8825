#!/usr/bin/env bash
# Provisions the training AMI: GPU drivers, Python, the repo's Python dependencies.
# Runs as root on the builder instance (packer's shell provisioner). Start from it and adjust.
set -euo pipefail

WATCHDOG_MINUTES="${WATCHDOG_MINUTES:-120}"
REQUIREMENTS="${REQUIREMENTS:-/tmp/model-pipeline-requirements.txt}"
VENV="${VENV:-/opt/model-pipeline/venv}"
PYTHON_PACKAGES="${PYTHON_PACKAGES:-python3 python3-venv python3-pip}"

# If CI dies mid-build, nobody stops this instance: it powers itself off, and shutdown_behavior=terminate
# turns that into a termination. The schedule lives in /run, so the finished image does not inherit it.
shutdown -P "+${WATCHDOG_MINUTES}" "model-pipeline: AMI build time limit reached" || {
  echo "cannot schedule the watchdog poweroff; refusing to build an instance that could leak" >&2
  exit 1
}

export DEBIAN_FRONTEND=noninteractive

# cloud-init may still hold the apt lock on first boot
if command -v cloud-init >/dev/null; then
  cloud-init status --wait >/dev/null || true
fi

apt_get() {
  apt-get -o DPkg::Lock::Timeout=600 -y -q "$@"
}

apt_get update
apt_get upgrade
# shellcheck disable=SC2086 # a space separated package list
apt_get install --no-install-recommends build-essential git curl ${PYTHON_PACKAGES}

# The Deep Learning AMI ships NVIDIA drivers and CUDA; a plain Ubuntu base gets the recommended driver.
if ! command -v nvidia-smi >/dev/null; then
  apt_get install --no-install-recommends ubuntu-drivers-common
  ubuntu-drivers install || ubuntu-drivers autoinstall
fi

python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip wheel
if [ -s "$REQUIREMENTS" ]; then
  "$VENV/bin/pip" install -r "$REQUIREMENTS"
fi

echo "${AMI_VERSION:-unknown}" >/etc/model-pipeline-ami-version

apt_get clean
rm -rf /var/lib/apt/lists/* "$REQUIREMENTS"
# instances booted from the image run cloud-init afresh (new host keys, new instance id)
cloud-init clean --logs 2>/dev/null || true
