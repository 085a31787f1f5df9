#!/usr/bin/env bash
# `make demo`: a demo site in var/demo, served by a real Apache on http://127.0.0.1:8080.
# `make demo-stop` (or `scripts/demo.sh stop`) stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
demo="$root/var/demo"
conf="$demo/run/apache2.conf"
latchkey="$root/.build/release/latchkey"
port="${LATCHKEY_DEMO_PORT:-8080}"

stop() {
  if [ -f "$conf" ] && [ -f "$demo/run/apache2.pid" ]; then
    apache2 -f "$conf" -k stop 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$demo/run/apache2.pid" ] || break; sleep 0.1; done
  fi
}

if [ "${1:-}" = stop ]; then stop; echo "demo stopped"; exit 0; fi

scripts/install-deps.sh demo
stop
rm -rf "$demo"
mkdir -p "$root/var"
"$latchkey" init "$demo" >/dev/null
python3 - "$demo/latchkey.json" "$port" <<'PY'
import json, sys
path, port = sys.argv[1], sys.argv[2]
config = json.load(open(path))
config["base_url"] = f"http://127.0.0.1:{port}"
json.dump(config, open(path, "w"), indent=2)
PY
export LATCHKEY_CONFIG="$demo/latchkey.json"
"$latchkey" build
mkdir -p "$demo/run"
chmod 0755 "$root/var" "$demo" "$demo/run"
if [ "$(id -u)" = 0 ]; then chown -R www-data:www-data "$demo/var"; fi
"$latchkey" webserver apache --standalone --listen "127.0.0.1:$port" --runtime-dir "$demo/run" --cgi-dir "$root/cgi-bin" > "$conf"
apache2 -f "$conf" -k start
for _ in $(seq 100); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then break; fi
  sleep 0.1
done
demo_user=""
if "$latchkey" --help | grep -q "user add"; then
  demo_user="customer@example.com"
  "$latchkey" offer add members --name "Members" >/dev/null 2>&1 || true
  "$latchkey" user add "$demo_user" --name "Demo Customer" --offer members
  if [ "$(id -u)" = 0 ]; then chown -R www-data:www-data "$demo/var"; fi
fi
demo_staff=""
if "$latchkey" --help | grep -q "staff add"; then
  demo_staff="owner@example.com"
  "$latchkey" staff add "$demo_staff" --role owner --name "Demo Owner"
  if [ "$(id -u)" = 0 ]; then chown -R www-data:www-data "$demo/var"; fi
fi
cat <<MSG

Latchkey demo is running: http://127.0.0.1:$port/
  site config   $demo/latchkey.json   (export LATCHKEY_CONFIG=$demo/latchkey.json to use the admin tool)
  mail lands in $demo/var/mail/new/   (a real Maildir: open it with any mail client, or cat the files)
  server logs   $demo/run/error.log
${demo_user:+  demo customer $demo_user: open the set-password link printed above, or use "Forgot password?"}
${demo_staff:+  staff console http://127.0.0.1:$port/cgi-bin/admin/   ($demo_staff: open the enrolment link printed above)}
Stop it with: make demo-stop
MSG
