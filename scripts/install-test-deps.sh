#!/usr/bin/env bash
# System tools the tests use as real peers: sshd + rsync (the training "instance"), packer (build-ami),
# git. moto (S3/EC2 API) comes with this image's Python. Installs only what is missing.
set -euo pipefail
missing=()
command -v git >/dev/null || missing+=(git)
command -v rsync >/dev/null || missing+=(rsync)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null || missing+=(openssh-client)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v packer >/dev/null || missing+=(packer)
command -v zip >/dev/null || missing+=(zip)
command -v unzip >/dev/null || missing+=(unzip)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -c 'import moto.server' 2>/dev/null || {
  echo "moto (with its server extra) is missing from python3: pip install 'moto[server]'" >&2
  exit 1
}
