#!/usr/bin/env bash
# Install the browser the dashboard's browser tests drive (tests/browser): Debian's `chromium` package.
# Quiet and idempotent: does nothing when /usr/bin/chromium (or $PILOTHOUSE_CHROMIUM) already exists.
# The tests drive it with Playwright for Python (a `dev` extra) at that executable path; Playwright's own
# browser downloads (`playwright install`) are never used, so nothing is fetched from a CDN.
set -euo pipefail

CHROMIUM=${PILOTHOUSE_CHROMIUM:-/usr/bin/chromium}
say() { printf '\033[1m[install-browser]\033[0m %s\n' "$*"; }

if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: $CHROMIUM is missing and apt-get is not available; install Chromium yourself and" \
    "set PILOTHOUSE_CHROMIUM to its path" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-browser: installing Chromium needs root (apt-get install chromium); run as root or install sudo" >&2
    exit 1
  fi
fi
say "installing Debian's chromium package (for the dashboard's browser tests)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { "${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq \
  --no-install-recommends chromium fonts-dejavu-core; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-browser: apt-get could not install chromium (output above); the browser tests need it" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "install-browser: apt-get finished but $CHROMIUM is still missing" >&2
  exit 1
fi
say "chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
