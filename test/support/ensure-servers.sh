#!/usr/bin/env bash
# Makes sure the real servers the tests and benchmarks run are installed:
# etcd, Consul, Chromium (skip with CAIRN_SKIP_BROWSER=1), nginx, haproxy, wrk, keepalived (config check of examples/ha).
# Idempotent and quiet when everything is present (the fast path only stats files).
# Consul is not in Debian bookworm, so its bullseye package is fetched with a private
# apt configuration (the system's sources are left alone) and its binary is cached in
# $CAIRN_CACHE_DIR/bin (default ~/.cache/cairn/bin), outside the work tree so fresh clones reuse it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { echo "ensure-servers: $*"; }
die() {
  echo "ensure-servers: $*" >&2
  exit 1
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -n "${CAIRN_CACHE_DIR:-}" ]]; then
  cache_dir="$CAIRN_CACHE_DIR"
elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then
  cache_dir="$XDG_CACHE_HOME/cairn"
elif [[ -n "${HOME:-}" && -d "${HOME:-}" && -w "${HOME:-}" ]]; then
  cache_dir="$HOME/.cache/cairn"
else
  cache_dir="$repo_root/.cache"
fi
consul_bin="$cache_dir/bin/consul"
consul_suite="bullseye"

# "binary path|Debian package|label", one per thing the tests need from Debian.
wanted=(
  "/usr/bin/etcd|etcd-server|etcd"
  "/usr/sbin/nginx|nginx|nginx"
  "/usr/sbin/haproxy|haproxy|haproxy"
  "/usr/bin/wrk|wrk|wrk"
  "/usr/sbin/keepalived|keepalived|keepalived"
)
if [[ "${CAIRN_SKIP_BROWSER:-}" != "1" ]]; then
  wanted+=("/usr/bin/chromium|chromium|chromium")
fi

missing_packages() {
  local entry bin pkg
  for entry in "${wanted[@]}"; do
    IFS='|' read -r bin pkg _ <<<"$entry"
    [[ -x "$bin" ]] || echo "$pkg"
  done
}

consul_present() { [[ -x "$consul_bin" ]]; }

# Fast path: nothing to do.
mapfile -t missing < <(missing_packages)
if [[ ${#missing[@]} -eq 0 ]] && consul_present; then
  exit 0
fi

mkdir -p "$cache_dir/bin" || die "cannot create cache dir $cache_dir"

# Several test runs may start at once in one tree; one installs, the others wait.
exec 9>"$cache_dir/ensure-servers.lock"
flock -w 900 9 || die "timed out waiting for another ensure-servers run ($cache_dir/ensure-servers.lock)"
mapfile -t missing < <(missing_packages)

is_root() { [[ "$(id -u)" -eq 0 ]]; }

apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

install_debian_packages() {
  local log="$cache_dir/apt-install.log"
  local made_policy=0
  # Never let a postinst start a daemon (nginx, haproxy, etcd) on this machine.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local ok=0
  if apt-get install "${apt_opts[@]}" "$@" >"$log" 2>&1; then
    ok=1
  else
    if apt-get update -q -o DPkg::Lock::Timeout=600 >>"$log" 2>&1 &&
      apt-get install "${apt_opts[@]}" "$@" >>"$log" 2>&1; then
      ok=1
    fi
  fi
  if [[ $made_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
  [[ $ok -eq 1 ]] || die "apt-get install $* failed: $(grep -E '^E:' "$log" | tail -n 1 || true) (log: $log)"
}

if [[ ${#missing[@]} -gt 0 ]]; then
  is_root || die "missing ${missing[*]}; run: sudo apt-get install -y --no-install-recommends ${missing[*]}"
  install_debian_packages "${missing[@]}"
  for entry in "${wanted[@]}"; do
    IFS='|' read -r bin pkg label <<<"$entry"
    for m in "${missing[@]}"; do
      if [[ "$m" == "$pkg" ]]; then
        [[ -x "$bin" ]] || die "package $pkg installed but $bin is missing"
        say "installed $label ($bin)"
      fi
    done
  done
fi

debian_mirror() {
  # The mirror the system already uses (deb822 or one-line format), minus security/updates.
  local uri=""
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    uri="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
      /etc/apt/sources.list.d/debian.sources)"
  fi
  if [[ -z "$uri" && -r /etc/apt/sources.list ]]; then
    uri="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) { print $i; exit } else break } }' \
      /etc/apt/sources.list)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

fetch_consul() {
  work="$(mktemp -d "${TMPDIR:-/tmp}/cairn-consul.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/parts" "$work/lists/partial" "$work/cache/archives/partial" "$work/deb" "$work/x"
  local signed=""
  if [[ -r /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
    signed="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
  fi
  echo "deb ${signed}$(debian_mirror) $consul_suite main" >"$work/sources.list"
  local apt_private=(
    -o "Dir::Etc::sourcelist=$work/sources.list"
    -o "Dir::Etc::sourceparts=$work/parts"
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work/cache"
    -o "Dir::Cache::pkgcache=$work/cache/pkgcache.bin"
    -o "Dir::Cache::srcpkgcache=$work/cache/srcpkgcache.bin"
    -o "Acquire::Languages=none"
    # The private dirs are ours (mode 0700); apt's _apt sandbox user could not write them.
    -o "APT::Sandbox::User=$(id -un)"
  )
  local log="$cache_dir/consul-fetch.log"
  apt-get "${apt_private[@]}" -q update >"$log" 2>&1 ||
    die "apt-get update for $consul_suite failed: $(grep -E '^(E|W):' "$log" | tail -n 1 || true) (log: $log)"
  (cd "$work/deb" && apt-get "${apt_private[@]}" -q download consul) >>"$log" 2>&1 ||
    die "apt-get download consul ($consul_suite) failed: $(grep -E '^E:' "$log" | tail -n 1 || true) (log: $log)"
  local deb
  deb="$(ls "$work"/deb/consul_*.deb 2>/dev/null | head -n 1 || true)"
  [[ -n "$deb" ]] || die "apt-get download consul produced no .deb (log: $log)"
  dpkg-deb -x "$deb" "$work/x" || die "dpkg-deb -x $deb failed"
  [[ -x "$work/x/usr/bin/consul" ]] || die "$deb has no usr/bin/consul"
  "$work/x/usr/bin/consul" version >/dev/null 2>&1 || die "the fetched consul binary does not run"
  cp "$work/x/usr/bin/consul" "$consul_bin.tmp.$$"
  mv -f "$consul_bin.tmp.$$" "$consul_bin"
  say "installed consul $("$consul_bin" version | head -n 1 | awk '{ print $2 }') ($consul_bin)"
}

if ! consul_present; then
  fetch_consul
fi
