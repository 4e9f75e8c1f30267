#!/usr/bin/env bash
# Install Debian's Chromium (and a font so text renders) for the real-browser test
# (tests/browser). Idempotent: does nothing when /usr/bin/chromium is already there.
# Playwright's own browser download does not work on these machines; the test drives
# /usr/bin/chromium through Python Playwright's `executable_path`.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "install-browser: /usr/bin/chromium present ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-liberation >/dev/null
echo "install-browser: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium) in $(( $(date +%s) - start ))s"
