#!/usr/bin/env bash
# Runs a g8s node image as a QEMU VM (README.md, "Virtual machines"): direct kernel boot of
# the image's kernel and initrd, its disk as a copy-on-write overlay on virtio, cloud-init
# from a NoCloud `cidata` ISO, the serial console to a file, the QEMU guest agent for exec.
#
#   qemu-node.sh up   --name NAME --state-dir DIR --seed SEED [--image DIR] [--accel tcg|kvm|auto]
#                     [--cpus N] [--memory MIB] [--disk-gib N] [--bridge BR [--mac MAC]]
#   qemu-node.sh down --state-dir DIR [--purge]
#   qemu-node.sh exec --state-dir DIR -- COMMAND...     (stdin is passed; stdout, exit code back)
#   qemu-node.sh wait --state-dir DIR --for booted|cloud-init|containerd [--timeout S]
#   qemu-node.sh status --state-dir DIR                 (QEMU's RSS and the guest's memory)
#
# Networking: user-mode (default; the guest gets 10.0.2.15 by DHCP and reaches nothing but
# the host) or, with --bridge, a tap device on that bridge (the seed's network-config then
# gives the address; match the MAC, printed by `up`, default derived from NAME).
# DIR/qemu.pid is QEMU's PID, DIR/console.log the serial console, DIR/disk.qcow2 the overlay
# (kept by `down`, removed with --purge). --accel auto uses KVM when /dev/kvm can run this
# kernel; on PVM-based nested KVM (kernel log "kvm-pvm") it cannot, so auto means tcg there.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DEFAULT_IMAGE="$REPO/.tools/share/node-image"
STOP_TIMEOUT=120

PROG=qemu-node
# shellcheck source=lib.sh
. "$HERE/lib.sh"

CMD="${1:-}"
[ -n "$CMD" ] || usage
shift
NAME="" STATE="" SEED="" IMAGE="$DEFAULT_IMAGE" ACCEL=tcg CPUS=2 MEMORY=2048 DISK_GIB=20 BRIDGE="" MAC=""
PURGE=0 STAGE="" TIMEOUT=1800
parse_args "name state-dir seed image accel cpus memory disk-gib bridge mac purge for timeout" "$@"

# Talks to the guest agent (QGA) on DIR/qga.sock: `qga exec CMD...` runs CMD with stdin
# as input and returns its output and exit code; `qga ping` succeeds once the agent answers.
QGA_PY='
import base64, json, os, select, socket, stat, sys, time
sock_path, timeout, op, args = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
s = socket.socket(socket.AF_UNIX)
s.settimeout(timeout)
s.connect(sock_path)
f = s.makefile("rwb")
def reply():
    while True:
        line = f.readline().lstrip(b"\xff")
        if not line:
            raise SystemExit("guest agent closed the connection")
        if line.strip():
            return json.loads(line)
def call(cmd, **a):
    f.write(json.dumps({"execute": cmd, "arguments": a}).encode() + b"\n"); f.flush()
    r = reply()
    if "error" in r:
        raise SystemExit("guest agent: " + r["error"].get("desc", str(r)))
    return r["return"]
# A sync with a fresh id: replies left over from an earlier, interrupted client (and
# their errors) are read and dropped until the one carrying this id.
sync_id = int(time.time() * 1000) % 2**31
f.write(json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": sync_id}}).encode() + b"\n"); f.flush()
while reply().get("return") != sync_id:
    pass
if op == "ping":
    sys.exit(0)
# stdin goes to the command when it is a file, or a pipe with data (or EOF) within 1 s.
data = b""
mode = os.fstat(0).st_mode
if stat.S_ISREG(mode) or (stat.S_ISFIFO(mode) and select.select([0], [], [], 1)[0]):
    data = sys.stdin.buffer.read()
a = {"path": args[0], "arg": args[1:], "capture-output": True}
if data:
    a["input-data"] = base64.b64encode(data).decode()
pid = call("guest-exec", **a)["pid"]
while True:
    st = call("guest-exec-status", pid=pid)
    if st["exited"]:
        break
    time.sleep(0.2)
sys.stdout.buffer.write(base64.b64decode(st.get("out-data", "")))
sys.stderr.buffer.write(base64.b64decode(st.get("err-data", "")))
sys.exit(st.get("exitcode", 128 + st.get("signal", 0)))
'
qga() { # <timeout> ping | exec CMD...
  local t="$1"
  shift
  python3 -c "$QGA_PY" "$STATE/qga.sock" "$t" "$@"
}

qmp() { # <command>: one QMP command on DIR/qmp.sock
  python3 -c '
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1]); f = s.makefile("rwb")
f.readline()
for c in ("qmp_capabilities", sys.argv[2]):
    f.write(json.dumps({"execute": c}).encode() + b"\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r: break
' "$STATE/qmp.sock" "$1"
}

running() { [ -f "$STATE/qemu.pid" ] && kill -0 "$(cat "$STATE/qemu.pid")" 2>/dev/null; }

case "$CMD" in
up)
  check_node_args
  for f in disk.qcow2 vmlinuz initrd.img; do
    [ -f "$IMAGE/$f" ] || die "--image '$IMAGE': no $f; build it with 'bash tools/build.sh node-image'"
  done
  int_in --cpus "$CPUS" 1 64 && int_in --memory "$MEMORY" 512 262144 && int_in --disk-gib "$DISK_GIB" 2 4096
  command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing: apt-get install qemu-system-x86"
  accel="$(resolve_accel "$ACCEL" --accel)"
  mkdir -p "$STATE"
  STATE="$(cd "$STATE" && pwd)"
  IMAGE="$(cd "$IMAGE" && pwd)"
  running && die "node in $STATE is already running (pid $(cat "$STATE/qemu.pid")); '$0 down --state-dir $STATE' first"
  [ -n "$MAC" ] || MAC="52:54:00:$(printf %s "$NAME" | sha256sum | sed 's/^\(..\)\(..\)\(..\).*/\1:\2:\3/')"
  [[ "$MAC" =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] || die "--mac '$MAC': six lower-case hex pairs joined by ':'"
  # The node's disk: copy-on-write over the image's, grown to --disk-gib (cloud-init's
  # resize_rootfs grows the file system at first boot). Kept across down/up.
  if [ ! -f "$STATE/disk.qcow2" ]; then
    qemu-img create -q -f qcow2 -F qcow2 -b "$IMAGE/disk.qcow2" "$STATE/disk.qcow2" "${DISK_GIB}G"
  fi
  cp "$IMAGE/vmlinuz" "$IMAGE/initrd.img" "$STATE/"
  seed_files=("$SEED/meta-data" "$SEED/user-data")
  [ ! -f "$SEED/network-config" ] || seed_files+=("$SEED/network-config")
  seed_iso "$STATE/seed.iso" "${seed_files[@]}"
  netdev=user,id=net0
  if [ -n "$BRIDGE" ]; then
    ip link show "$BRIDGE" >/dev/null 2>&1 || die "--bridge '$BRIDGE' does not exist"
    tap="g8t-$(printf %s "$STATE" | sha256sum | cut -c1-8)"
    ip link show "$tap" >/dev/null 2>&1 || ip tuntap add dev "$tap" mode tap
    ip link set "$tap" master "$BRIDGE" up
    echo "$tap" >"$STATE/tap"
    netdev="tap,id=net0,ifname=$tap,script=no,downscript=no"
  fi
  rm -f "$STATE/qemu.pid" "$STATE/qga.sock" "$STATE/qmp.sock"
  : >"$STATE/console.log"
  date +%s.%N >"$STATE/started-at"
  qemu_node_argv "$NAME" "$accel" "$CPUS" "$MEMORY" "$STATE" "$STATE/disk.qcow2" "$STATE/seed.iso" "$MAC" \
    "$netdev" "$STATE"
  qemu-system-x86_64 "${QEMU_ARGV[@]}" -qmp "unix:$STATE/qmp.sock,server=on,wait=off" \
    -serial "file:$STATE/console.log" -monitor none -daemonize
  printf 'NAME=%s\nMAC=%s\nACCEL=%s\n' "$NAME" "$MAC" "$accel" >"$STATE/node.env"
  echo "node $NAME: qemu pid $(cat "$STATE/qemu.pid") ($accel, $CPUS CPUs, $MEMORY MiB), MAC $MAC, console $STATE/console.log"
  ;;

down)
  need --state-dir "$STATE"
  [ -d "$STATE" ] || exit 0
  if running; then
    pid="$(cat "$STATE/qemu.pid")"
    # An ACPI power button press: the guest's systemd shuts down in order.
    qmp system_powerdown 2>/dev/null || true
    for _ in $(seq $((STOP_TIMEOUT * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      sleep 2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$STATE/qemu.pid" "$STATE/qga.sock" "$STATE/qmp.sock"
  if [ -f "$STATE/tap" ]; then
    ip link del "$(cat "$STATE/tap")" 2>/dev/null || true
    rm -f "$STATE/tap"
  fi
  if [ "$PURGE" = 1 ]; then rm -rf "$STATE"; fi
  ;;

exec)
  need --state-dir "$STATE"
  [ "${#CMD_ARGS[@]}" -gt 0 ] || die "exec: a command is required after --"
  running || die "no node running in $STATE"
  # guest-exec takes a path and arguments, no PATH search: run through env.
  qga 600 exec /usr/bin/env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${CMD_ARGS[@]}"
  ;;

wait)
  need --state-dir "$STATE" && need --for "$STAGE"
  in_node() { qga 5 exec /bin/sh -c "$1"; }
  wait_stage in_node running 2
  ;;

status)
  need --state-dir "$STATE"
  running || die "no node running in $STATE"
  pid="$(cat "$STATE/qemu.pid")"
  rss="$(awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$pid/status")"
  used="$(qga 30 exec /bin/sh -c "free -m | awk '/^Mem:/ { print \$3 }'" </dev/null || echo '?')"
  echo "[qemu-node] $(sed -n 's/^NAME=//p' "$STATE/node.env"): QEMU RSS $rss MiB, guest memory used $used MiB"
  ;;

*) usage ;;
esac
