# Sourced by the scripts that start the api or the workers. There is no default secret: the
# processes refuse to start without JWT_SECRET and CODE_SECRET of at least 32 bytes.
#
#   random_secret          prints a new 64-character secret
#   load_local_secrets     exports JWT_SECRET and CODE_SECRET: from the environment when set,
#                          else from .env.local (git-ignored), which the first call writes with
#                          new random secrets and later calls reuse (a database keeps the
#                          CODE_SECRET it started with, so it must not change between runs)

random_secret() {
  head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 64
  echo
}

load_local_secrets() {
  local file
  file="$(git -C "$(dirname "${BASH_SOURCE[0]}")/.." rev-parse --show-toplevel 2>/dev/null || dirname "${BASH_SOURCE[0]}")/.env.local"
  if [[ ! -f "$file" ]]; then
    umask 077
    {
      echo "# Local secrets made by scripts/run on $(date -u +%FT%TZ); git-ignored. Keep CODE_SECRET"
      echo "# while the local database holds coupon codes."
      echo "JWT_SECRET=$(random_secret)"
      echo "CODE_SECRET=$(random_secret)"
    } >"$file"
    echo "wrote new local secrets to $file" >&2
  fi
  local jwt="${JWT_SECRET:-}" code="${CODE_SECRET:-}"
  set -a
  # shellcheck disable=SC1090
  source "$file"
  set +a
  [[ -n "$jwt" ]] && JWT_SECRET="$jwt"
  [[ -n "$code" ]] && CODE_SECRET="$code"
  export JWT_SECRET CODE_SECRET
}
