#!/usr/bin/env bash
# Headless Chromium (Debian) and playwright-core (npm, project-local) for the console's browser test.
# Never fails the caller: without them the e2e test skips and says why.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
            || echo "install-browser: apt-get could not install chromium; the console e2e test will skip" >&2
    else
        echo "install-browser: no apt-get or not root; the console e2e test will skip" >&2
    fi
fi
# Playwright drives the system Chromium; playwright-core downloads no browser of its own.
if [ ! -d .cache/playwright/node_modules/playwright-core ]; then
    if command -v npm >/dev/null 2>&1; then
        mkdir -p .cache/playwright
        npm install --silent --no-audit --no-fund --prefix .cache/playwright playwright-core@1 \
            || echo "install-browser: npm could not install playwright-core; the console e2e test will skip" >&2
    else
        echo "install-browser: npm is missing; the console e2e test will skip" >&2
    fi
fi
exit 0
