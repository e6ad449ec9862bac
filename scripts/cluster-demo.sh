#!/usr/bin/env bash
# Runs a 3-node Confab cluster behind HAProxy on this machine, exercises it through the balancer
# and kills one node with SIGKILL on the way. See docs/operations.md, "Running a cluster".
#
#   scripts/cluster-demo.sh          # from the repository root, after `npm install`
#
# What it does:
#  1. creates a fresh PostgreSQL database (createdb confab_demo_<pid>) and picks a Redis key
#     prefix and a JWT secret of its own;
#  2. starts 3 nodes (`confab serve`) on 127.0.0.1, waits for each /readyz;
#  3. starts HAProxy with deploy/haproxy/haproxy.cfg and waits until it sees the 3 nodes UP;
#  4. through the balancer: registers alice and bob, bob tails the conversation while alice
#     sends 3 messages (the tail must print seq 1, 2, 3);
#  5. starts a second tail (after seq 3), finds the node holding its WebSocket (HAProxy's
#     per-node session count) and kill -9s that node; at once, before any health check can
#     notice, opens 6 connections and sends 3 messages through the balancer (HAProxy resends
#     what it routed to the dead node to another one); waits until HAProxy marks the node
#     DOWN and sends a 4th: the tail must reconnect and print seq 4..7, and the history must
#     be exactly seq 1..7;
#  6. stops everything it started (by PID), drops the database and the Redis keys, removes its
#     temporary directory, prints PASS or FAIL and exits non-zero on failure.
#
# Needs: node (20.10+), haproxy, socat (or curl for the stats page), createdb/dropdb/psql
# reaching PostgreSQL without a password, redis-cli. Every wait is bounded, and a watchdog
# ends the run after DEMO_DEADLINE seconds (default 150). All traffic stays on 127.0.0.1.
#
# Environment (all optional):
#   LB_PORT (8080)  NODE_PORTS ("8081 8082 8083")  STATS_PORT (8404)
#   PGHOST (127.0.0.1)  PGPORT (5432)  REDIS_URL (redis://127.0.0.1:6379)  DEMO_DEADLINE (150)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

LB_PORT=${LB_PORT:-8080}
read -r -a NODE_PORTS <<< "${NODE_PORTS:-8081 8082 8083}"
[ "${#NODE_PORTS[@]}" = 3 ] || { echo "NODE_PORTS must list 3 ports" >&2; exit 2; }
STATS_PORT=${STATS_PORT:-8404}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
DEADLINE=${DEMO_DEADLINE:-150}

LB=http://127.0.0.1:$LB_PORT
DB=confab_demo_$$
PREFIX="confab-demo-$$-$(date +%s):"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/confab-demo.XXXXXX")
SOCK=$WORK/haproxy.sock
T0=$(date +%s)

declare -a NODE_PIDS=() RESULTS=()
HAPROXY_PID='' WATCHDOG_PID='' DB_CREATED='' FAILED=0
declare -a BG_PIDS=()

log() { printf '[%3ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
pass() { RESULTS+=("PASS  $*"); log "ok: $*"; }
fail() { RESULTS+=("FAIL  $*"); FAILED=1; log "FAILED: $*"; }
die() { fail "$*"; exit 1; }

# until_ok SECONDS WHAT CMD...: runs CMD every 0.25 s until it succeeds, at most SECONDS.
until_ok() {
  local secs=$1 what=$2; shift 2
  local end=$(($(date +%s) + secs))
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < end)) || { log "timed out after ${secs}s waiting for: $what"; return 1; }
    sleep 0.25
  done
}

# wait_pid PID SECONDS: waits for a background job to exit (its status in $?), at most SECONDS.
wait_pid() {
  local pid=$1 end=$(($(date +%s) + $2))
  while kill -0 "$pid" 2>/dev/null; do
    (($(date +%s) < end)) || return 124
    sleep 0.2
  done
  wait "$pid"
}

# The `confab` command as a user would run it, through the balancer, as USER (own config dir).
# Every call is bounded by `timeout`, which also ends npx's children (it signals its group).
confab_as() {
  local user=$1 secs=$2; shift 2
  CONFAB_CONFIG_DIR=$WORK/$user timeout "$secs" npx --no-install confab "$@" --server "$LB"
}
# npm's own warnings (about the user's npmrc, say) are not part of the demo.
export NPM_CONFIG_LOGLEVEL=error
# The same in the background; $! is then the pid of `timeout` itself (the subshell execs it),
# so one `kill <pid>` stops the command and its children.
confab_bg() {
  local user=$1 secs=$2 out=$3; shift 3
  (export CONFAB_CONFIG_DIR=$WORK/$user; exec timeout "$secs" npx --no-install confab "$@" --server "$LB" >"$out.out" 2>"$out.err") &
  BG_PIDS+=($!)
}

# HAProxy's statistics as CSV: from the admin socket (socat), else from the stats page.
lb_csv() {
  if command -v socat >/dev/null; then
    echo 'show stat' | timeout 5 socat -t 2 stdio "UNIX-CONNECT:$SOCK"
  else
    curl -fsS --max-time 5 "http://127.0.0.1:$STATS_PORT/stats;csv"
  fi
}
# One line per node of backend "confab": name, state, open sessions, last check.
lb_servers() {
  lb_csv | awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) { h = $i; sub(/^# /, "", h); col[h] = i } next }
    $1 == "confab" && $2 != "BACKEND" { printf "%s %s scur=%s check=%s/%s\n", $2, $col["status"], $col["scur"], $col["check_status"], $col["check_code"] }'
}
lb_state_is() { lb_servers | grep -q "^$1 $2 "; }
# "UP 1/2" is a node on its way up (1 of the 2 checks in "rise 2"): only "UP" counts.
lb_all_up() { [ "$(lb_servers | grep -c '^node[0-9]* UP scur=')" = 3 ]; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The script's own stdout and stderr, for the summary: a trap can fire while a command's
# output is redirected to a file, and would otherwise write the summary there.
exec 8>&1 9>&2

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  exec 1>&8 2>&9
  set +e
  [ -n "$WATCHDOG_PID" ] && kill "$WATCHDOG_PID" 2>/dev/null
  for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  [ -n "$HAPROXY_PID" ] && kill -TERM "$HAPROXY_PID" 2>/dev/null
  # SIGTERM drains each node (it closes its sockets and removes itself from Redis at once).
  for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${NODE_PIDS[@]}" $HAPROXY_PID "${BG_PIDS[@]}"; do
    wait_pid "$pid" 10 >/dev/null 2>&1
    if kill -0 "$pid" 2>/dev/null; then log "pid $pid did not stop in 10 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null; fi
  done
  if [ -n "$DB_CREATED" ]; then
    timeout 15 dropdb --if-exists --force "$DB" && log "dropped database $DB" || log "could not drop database $DB"
  fi
  local keys
  keys=$(timeout 10 redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" | wc -l)
  timeout 10 redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" | xargs -r timeout 10 redis-cli -u "$REDIS_URL" del >/dev/null
  log "deleted $keys Redis keys under $PREFIX"
  if [ "$status" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
    log "logs of this run (last lines):"
    for f in "$WORK"/*.log "$WORK"/*.err; do [ -s "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done
  fi
  rm -rf "$WORK"
  echo
  echo "== cluster demo summary ($(($(date +%s) - T0)) s) =="
  printf '%s\n' "${RESULTS[@]}"
  if [ "$status" -ne 0 ] || [ "$FAILED" -ne 0 ]; then echo "RESULT: FAIL"; exit 1; fi
  echo "RESULT: PASS"
  exit 0
}
trap cleanup EXIT
trap 'fail "interrupted or past the ${DEADLINE}s deadline"; exit 1' INT TERM

# The watchdog: whatever happens, the run ends after DEADLINE seconds (SIGTERM runs cleanup).
# Short sleeps in a loop, so that killing the watchdog at the end leaves no long sleep behind.
(
  for ((i = 0; i < DEADLINE * 4; i++)); do sleep 0.25; done
  kill -TERM $$
) >/dev/null 2>&1 &
WATCHDOG_PID=$!

for tool in node haproxy createdb dropdb redis-cli curl; do
  command -v "$tool" >/dev/null || die "missing command: $tool"
done
[ -f packages/cli/dist/main.js ] || die "packages are not built: run npm install (or npm run build)"
for port in "$LB_PORT" "${NODE_PORTS[@]}" "$STATS_PORT"; do
  port_free "$port" || die "port $port is in use (set LB_PORT, NODE_PORTS, STATS_PORT)"
done

# --- 1. A fresh database, a Redis prefix and a token secret for this run -------------------
timeout 15 createdb "$DB" || die "createdb $DB failed (is PostgreSQL on $PGHOST:$PGPORT, without a password?)"
DB_CREATED=1
timeout 5 redis-cli -u "$REDIS_URL" ping >/dev/null || die "Redis does not answer at $REDIS_URL"
JWT_SECRET=$(openssl rand -base64 48 2>/dev/null || node -e "process.stdout.write(require('crypto').randomBytes(48).toString('base64'))")
log "database $DB, Redis prefix $PREFIX, temp dir $WORK"

# --- 2. Three nodes -----------------------------------------------------------------------
for i in 1 2 3; do
  port=${NODE_PORTS[$((i - 1))]}
  mkdir -p "$WORK/node$i"
  STORE=postgres DATABASE_URL="postgres://$PGHOST:$PGPORT/$DB" \
  BUS=redis REDIS_URL="$REDIS_URL" REDIS_KEY_PREFIX="$PREFIX" \
  JWT_SECRET="$JWT_SECRET" DATA_DIR="$WORK/node$i" TRUST_PROXY=127.0.0.1 \
    node packages/cli/bin/confab.js serve --host 127.0.0.1 --port "$port" --node-id "node$i" \
    >"$WORK/node$i.log" 2>&1 &
  NODE_PIDS+=($!)
  log "node$i: pid $! on 127.0.0.1:$port"
done
for i in 1 2 3; do
  port=${NODE_PORTS[$((i - 1))]}
  until_ok 30 "node$i /readyz" curl -fsS --max-time 2 "http://127.0.0.1:$port/readyz" || die "node$i never became ready"
done
pass "3 nodes ready (/readyz 200) on ports ${NODE_PORTS[*]}"

# --- 3. HAProxy in front of them ----------------------------------------------------------
CONFAB_LB_BIND=127.0.0.1:$LB_PORT CONFAB_STATS_BIND=127.0.0.1:$STATS_PORT CONFAB_HAPROXY_SOCKET=$SOCK \
CONFAB_NODE1=127.0.0.1:${NODE_PORTS[0]} CONFAB_NODE2=127.0.0.1:${NODE_PORTS[1]} CONFAB_NODE3=127.0.0.1:${NODE_PORTS[2]} \
  haproxy -f deploy/haproxy/haproxy.cfg >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
log "haproxy: pid $HAPROXY_PID on $LB (stats: http://127.0.0.1:$STATS_PORT/stats)"
haproxy_up_all() { kill -0 "$HAPROXY_PID" 2>/dev/null || die "haproxy exited at start (its log is below)"; lb_all_up; }
until_ok 15 "haproxy sees 3 nodes UP" haproxy_up_all || { lb_servers || true; die "haproxy did not mark the 3 nodes UP"; }
lb_servers | sed 's/^/        /' || true
pass "haproxy up, health checks on /readyz mark the 3 nodes UP"

# --- 4. Two users, a tail and three messages through the balancer ------------------------
confab_as alice 30 register alice --password 'alice password' --json >"$WORK/alice.out" || die "register alice failed"
confab_as bob 30 register bob --password 'bob password' --json >"$WORK/bob.out" || die "register bob failed"
pass "registered alice and bob through $LB"

confab_bg bob 60 "$WORK/tail1" tail --to alice --count 3 --json
TAIL1=$!
for i in 1 2 3; do
  confab_as alice 30 send --to bob --json "hello $i" >>"$WORK/send.out" || fail "send 'hello $i' failed"
done
rc=0; wait_pid "$TAIL1" 30 || rc=$?
seqs=$(grep -o '"seq":[0-9]*' "$WORK/tail1.out" | cut -d: -f2 | paste -sd, -)
log "tail 1 (rc $rc) printed seq [$seqs]:"; sed 's/^/        /' "$WORK/tail1.out" | cut -c1-160
if [ "$rc" = 0 ] && [ "$seqs" = "1,2,3" ]; then pass "tail through the balancer printed 3 messages, seq 1,2,3"
else fail "tail through the balancer: rc $rc, seq [$seqs], expected 1,2,3"; fi

# --- 5. Kill the node that holds a live WebSocket -----------------------------------------
confab_bg bob 90 "$WORK/tail2" tail --to alice --after 3 --count 4 --json
TAIL2=$!
# The tail's WebSocket is the only long-lived connection: the node with an open session holds it.
ws_node() { lb_servers | awk '{ split($3, s, "="); if (s[2] > 0) print $1 }' | head -n 1; }
# A REST call of the tail (it looks the conversation up first) is open for milliseconds only:
# the same node seen twice, 0.5 s apart, is the WebSocket's (this also lets its sync finish).
victim='' seen=''
end=$(($(date +%s) + 20))
while [ -z "$victim" ] && (($(date +%s) < end)); do
  now=$(ws_node || true)
  if [ -n "$now" ] && [ "$now" = "$seen" ]; then victim=$now; else seen=$now; sleep 0.5; fi
done
if [ -z "$victim" ]; then log "no open session seen on any node; killing node2"; victim=node2; fi
vi=${victim#node}; vpid=${NODE_PIDS[$((vi - 1))]}
log "bob's WebSocket is on $victim: kill -9 $vpid"
lb_servers | sed 's/^/        before: /' || true
KILLED_AT=$(date +%s%N)
{ kill -9 "$vpid"; wait "$vpid"; } 2>/dev/null || true # (no "Killed" job notice from bash)

# At once, before the health checks notice: new connections through the balancer. leastconn
# rotates among nodes with equal load, so some go to the dead node; its port refuses them and
# "retries 3 / option redispatch 1" resend them to another node: the client sees only 200s.
ok=0
for i in 1 2 3 4 5 6; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$LB/readyz" || true)
  [ "$code" = 200 ] && ok=$((ok + 1))
done
if [ "$ok" = 6 ]; then pass "6 new connections through the balancer right after kill -9: 6 x 200"
else fail "6 new connections right after kill -9: only $ok answered 200"; fi
# Sends, still before the health checks notice (the CLI's requests reuse one connection).
if printf 'after the kill %s\n' 1 2 3 | confab_as alice 30 send --to bob --stdin --json >>"$WORK/send.out"; then
  pass "3 sends right after kill -9 (before the node is marked DOWN) succeeded through the balancer"
else fail "sends right after kill -9 failed"; fi

if until_ok 15 "haproxy marks $victim DOWN" lb_state_is "$victim" DOWN; then
  ms=$((($(date +%s%N) - KILLED_AT) / 1000000))
  lb_servers | sed 's/^/        after:  /' || true
  pass "haproxy marked $victim DOWN ${ms} ms after the kill; the other 2 stay UP"
else
  lb_servers | sed 's/^/        after:  /' || true
  fail "haproxy did not mark $victim DOWN within 15 s"
fi

if confab_as alice 30 send --to bob --json "with $victim down" >>"$WORK/send.out"; then
  pass "a send with $victim DOWN succeeded through the balancer"
else fail "a send with $victim DOWN failed"; fi

rc=0; wait_pid "$TAIL2" 40 || rc=$?
seqs=$(grep -o '"seq":[0-9]*' "$WORK/tail2.out" | cut -d: -f2 | paste -sd, -)
log "tail 2 (rc $rc) stderr: $(tr '\n' ' ' <"$WORK/tail2.err")"
log "tail 2 printed seq [$seqs]:"; sed 's/^/        /' "$WORK/tail2.out" | cut -c1-160
if grep -q 'reconnecting' "$WORK/tail2.err"; then pass "the tail's WebSocket was cut by the kill and the client reconnected through the balancer"
else fail "tail 2 never reported a lost connection: its WebSocket was not on $victim?"; fi
if [ "$rc" = 0 ] && [ "$seqs" = "4,5,6,7" ]; then pass "the reconnected tail printed seq 4,5,6,7: nothing lost, nothing twice"
else fail "tail 2: rc $rc, seq [$seqs], expected 4,5,6,7"; fi

seqs=$(confab_as bob 30 history --to alice --json | grep -o '"seq":[0-9]*' | cut -d: -f2 | paste -sd, -) || true
if [ "$seqs" = "1,2,3,4,5,6,7" ]; then pass "history through the balancer: seq 1..7, no gap, no duplicate"
else fail "history through the balancer: seq [$seqs], expected 1..7"; fi

# Counters of the backend: connection retries (wretr) and redispatches to another node (wredis).
lb_csv | awk -F, '
  NR == 1 { for (i = 1; i <= NF; i++) { h = $i; sub(/^# /, "", h); col[h] = i } next }
  $1 == "confab" && $2 == "BACKEND" { print "        haproxy backend: " $col["stot"] " sessions, " $col["wretr"] " retries, " $col["wredis"] " redispatched, " $col["econ"] " connection errors" }' || true
log "haproxy log: bob's WebSockets (101; the 5th field ends with the connection's lifetime, ms) and the last sends:"
grep -E 'GET /v1/ws|POST /v1/conversations/[^d]' "$WORK/haproxy.log" | tail -n 8 | sed -E 's/^[^ ]+ //; s/^/        /' | cut -c1-170 || true
