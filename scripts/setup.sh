# Sourced by scripts/demo, scripts/test and scripts/bench: installs what is missing from Debian.
# Usage: . scripts/setup.sh [extra packages...]
packages=(cmake ninja-build g++ pkg-config capnproto libcapnp-dev libasio-dev libspdlog-dev libssl-dev openssl catch2 prometheus-cpp-dev libedit-dev tmux "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
jobs=$(nproc 2>/dev/null || echo 2)
