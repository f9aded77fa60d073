#!/usr/bin/env bash
# Installs headless Chromium from Debian's own `chromium` package, which the status page's browser
# tests drive (internal/statuspage.Capture).
#
# Why Debian's package: the machines reach Debian's archive but no browser download site, so tools that
# fetch their own Chromium build (puppeteer, playwright, chromedp's helpers) cannot work here.
# fonts-dejavu-core gives the page real glyphs in screenshots; without any font Chromium draws boxes.
# Idempotent: when chromium is already on PATH nothing is installed. We run as root in CI and on the
# developers' machines, so there is no sudo; a non-root caller gets an error saying so.
#
# Prints the chromium path on its last line.
set -euo pipefail

if path="$(command -v chromium)"; then
  echo "$path"
  exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
  echo "install-chromium.sh: chromium is not installed and installing it needs root (apt-get)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# The lock timeout lets this wait for another apt-get (a parallel setup step) instead of failing.
apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
echo ">> installing chromium from Debian's archive" >&2
apt-get "${apt_opts[@]}" update >&2
apt-get "${apt_opts[@]}" install -y --no-install-recommends chromium fonts-dejavu-core >&2

path="$(command -v chromium)" || {
  echo "install-chromium.sh: apt-get installed chromium but it is not on PATH" >&2
  exit 1
}
"$path" --version >&2
echo "$path"
