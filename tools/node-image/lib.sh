# Shared by nspawn-node.sh, qemu-node.sh and the KVM platform's pod entrypoint
# (tools/qemu-node/entrypoint.sh) (sourced): messages, the command line, the seed check, the
# `wait` loop and what both ways of running a VM node share (accelerator, seed ISO, QEMU's
# command line). The sourcing script sets PROG (its name in messages).

die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
# The script's header comment is its usage text.
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2; exit 2; }
need() { [ -n "$2" ] || die "$CMD: $1 is required"; }

# parse_args "<allowed option names>" ARGS...: sets NAME, MACHINE, STATE, SEED, BRIDGE, ADDRESS,
# IMAGE, STAGE, TIMEOUT, ACCEL, CPUS, MEMORY, DISK_GIB, MAC, PURGE from --name,
# int_in NAME VALUE MIN MAX: dies unless VALUE is an integer from MIN to MAX.
int_in() { [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || die "$1 '$2': an integer from $3 to $4"; }

# --state-dir, ...; every --bind-ro SRC:DST adds to BINDS; what follows `--` goes to CMD_ARGS.
parse_args() {
  local allowed=" $1 " opt
  shift
  CMD_ARGS=()
  BINDS=()
  while [ "$#" -gt 0 ]; do
    [ "$1" != -- ] || { shift && CMD_ARGS=("$@") && return; }
    opt="${1#--}"
    [[ "$1" == --* && "$allowed" == *" $opt "* ]] ||
      die "$CMD: unknown argument '$1' (run without arguments for usage)"
    if [ "$opt" = purge ]; then PURGE=1 && shift && continue; fi
    [ "$#" -ge 2 ] || die "$CMD: $1 needs a value"
    case "$opt" in
    name) NAME="$2" ;;
    machine) MACHINE="$2" ;;
    state-dir) STATE="$2" ;;
    seed) SEED="$2" ;;
    bridge) BRIDGE="$2" ;;
    address) ADDRESS="$2" ;;
    image) IMAGE="$2" ;;
    for) STAGE="$2" ;;
    timeout) TIMEOUT="$2" ;;
    accel) ACCEL="$2" ;;
    cpus) CPUS="$2" ;;
    memory) MEMORY="$2" ;;
    disk-gib) DISK_GIB="$2" ;;
    mac) MAC="$2" ;;
    bind-ro) BINDS+=("$2") ;;
    esac
    shift 2
  done
}

# `up`'s common checks: a DNS-label name and a NoCloud seed folder.
check_node_args() {
  need --name "$NAME" && need --state-dir "$STATE" && need --seed "$SEED"
  [[ "$NAME" =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] ||
    die "--name '$NAME': a DNS label (lower-case letters, digits, '-')"
  [ -f "$SEED/meta-data" ] && [ -f "$SEED/user-data" ] ||
    die "--seed '$SEED': needs the NoCloud files meta-data and user-data (network-config optional)"
}

# wait_stage <probe command> <is-alive command> <poll seconds>: polls `<probe command> SH`
# with the stage's shell test until it succeeds, then prints "<stage> after <s> s",
# counted from DIR/started-at (written by `up`).
wait_stage() {
  local probe_fn="$1" alive_fn="$2" every="$3" test start deadline
  case "$STAGE" in
  booted) test='systemctl is-active -q multi-user.target' ;;
  cloud-init) test='test -f /var/lib/cloud/instance/boot-finished' ;;
  containerd) test='ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1' ;;
  *) die "--for '$STAGE': one of booted, cloud-init, containerd" ;;
  esac
  start="$(cat "$STATE/started-at")"
  deadline=$(($(date +%s) + TIMEOUT))
  until "$probe_fn" "$test" </dev/null >/dev/null 2>&1; do
    "$alive_fn" || { tail -n 30 "$STATE/console.log" >&2; die "the node in $STATE is not running"; }
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 30 "$STATE/console.log" >&2; die "no '$STAGE' after ${TIMEOUT} s"; }
    sleep "$every"
  done
  awk -v s="$start" -v n="$(date +%s.%N)" -v st="$STAGE" 'BEGIN { printf "%s after %.1f s\n", st, n - s }'
}

# resolve_accel <tcg|kvm|auto> <what names the setting>: the accelerator QEMU gets. auto is
# KVM when /dev/kvm can run a stock kernel: PVM-based nested KVM (module kvm_pvm, kernel log
# "kvm-pvm") runs only PVM-enabled guest kernels, and a stock one hangs right after its boot
# stub there, so auto means tcg on such a host.
resolve_accel() {
  case "$1" in
  tcg) echo tcg ;;
  kvm) [ -w /dev/kvm ] || die "$2 kvm: /dev/kvm is missing or not writable" && echo kvm ;;
  auto)
    if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && ! { dmesg 2>/dev/null | grep -q kvm-pvm; }; then
      echo kvm
    else
      echo tcg
    fi
    ;;
  *) die "$2 '$1': one of tcg, kvm, auto" ;;
  esac
}

# seed_iso <out.iso> <meta-data> <user-data> [network-config]: a NoCloud volume (label cidata).
seed_iso() {
  local out="$1"
  shift
  command -v genisoimage >/dev/null || die "genisoimage is missing: apt-get install genisoimage"
  genisoimage -quiet -output "$out" -volid cidata -joliet -rock "$@"
}

# qemu_node_argv <name> <accel> <cpus> <memory MiB> <image dir> <disk> <seed iso> <mac> <netdev>
# <run dir>: QEMU's command line for a node, in QEMU_ARGV: the image's kernel and initrd booted
# directly, the disk and the seed on virtio, one NIC, the guest agent on <run dir>/qga.sock and
# QEMU's PID in <run dir>/qemu.pid. The caller adds the console and anything else.
qemu_node_argv() {
  local name="$1" accel="$2" cpus="$3" memory="$4" image="$5" disk="$6" seed="$7" mac="$8" netdev="$9"
  local run="${10}" accel_opts="$2"
  # TCG keeps a translation cache of 1 GiB by default; 256 MiB keeps a node's RSS down.
  [ "$accel" != tcg ] || accel_opts="tcg,tb-size=256"
  QEMU_ARGV=(
    -name "$name" -machine q35 -accel "$accel_opts" -cpu max -smp "$cpus" -m "$memory"
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img"
    -append "root=/dev/vda rw console=ttyS0 systemd.show_status=1"
    -drive "file=$disk,if=virtio,format=qcow2,discard=unmap"
    -drive "file=$seed,if=virtio,format=raw,readonly=on"
    -netdev "$netdev" -device "virtio-net-pci,netdev=net0,mac=$mac"
    -device virtio-rng-pci
    -chardev "socket,id=qga0,path=$run/qga.sock,server=on,wait=off"
    -device virtio-serial -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0
    -display none -pidfile "$run/qemu.pid"
  )
}
