#!/usr/bin/env bash
# An emulated cluster on one machine: RANKS network namespaces ("machines"), each joined to a
# bridge by a veth link limited to BANDWIDTH in both directions, and `mpirun -np RANKS COMMAND…`
# with one rank in each namespace, over TCP only (docs/SCALING.md, "Measured on an emulated
# cluster"; the recipe is ../shared/MPI.md's).
#
#   bench/cluster.sh RANKS BANDWIDTH [--latency MS] [--mpirun-arg ARG]… -- COMMAND…
#
#   RANKS       ranks, one per namespace (1–50)
#   BANDWIDTH   each link's rate in tc's units: 1gbit, 10gbit, 500mbit, … (or `none`: no limit)
#   --latency   one-way delay added on each namespace's outgoing link, in ms (netem): a message
#               from one rank to another takes MS more, a round trip 2·MS more (needs the
#               sch_netem kernel module; the machines this was measured on lack it)
#   --burst     the token-bucket burst (default: 1 ms at BANDWIDTH, at least 64 KB)
#   --mca NAME VALUE  an MCA setting for mpirun (repeatable)
#   --mpirun-arg  one more argument for mpirun (repeatable), e.g. --mpirun-arg -x --mpirun-arg VAR
#
# Everything it creates carries this process's id in its name (namespaces gfcPID-N, bridge gfbPID,
# links gfvPIDnN, a private subnet 10.A.B.0/24 picked from the id, a temporary folder) and is
# removed on exit, also when the command fails or the script is interrupted (Ctrl-C or SIGTERM stop
# the ranks cleanly first, as with mpirun). It needs root (network namespaces and tc). The exit
# status is mpirun's.
#
# Example (preset S, 2 ranks over 1 Gb/s):
#   bench/cluster.sh 2 1gbit -- .build/release/gradflow bench --preset S --threads 1
set -u

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
ranks=$1; bandwidth=$2; shift 2
latency=""; burst=""; extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --latency) latency=$2; shift 2 ;;
        --burst) burst=$2; shift 2 ;;
        --mpirun-arg) extra+=("$2"); shift 2 ;;
        --mca) extra+=(--mca "$2" "$3"); shift 3 ;;
        --) shift; break ;;
        *) echo "cluster.sh: unknown option $1 (the command comes after --)" >&2; usage ;;
    esac
done
[ $# -ge 1 ] || { echo "cluster.sh: no command after --" >&2; usage; }
case "$ranks" in ''|*[!0-9]*) echo "cluster.sh: RANKS must be a number, not '$ranks'" >&2; exit 2 ;; esac
[ "$ranks" -ge 1 ] && [ "$ranks" -le 50 ] || { echo "cluster.sh: RANKS must be 1–50" >&2; exit 2; }

if [ "$(id -u)" -ne 0 ]; then
    echo "cluster.sh: needs root (it creates network namespaces, a bridge and tc limits); run it with sudo or as root" >&2
    exit 77
fi
for tool in ip tc mpirun; do
    command -v $tool >/dev/null || { echo "cluster.sh: $tool not found (iproute2, openmpi-bin)" >&2; exit 2; }
done

# Names and a private subnet from this process's id, so that two clusters can run side by side.
id=$$
net="10.$((100 + id % 100)).$(((id / 100) % 250))"
bridge="gfb$id"
tmp=$(mktemp -d /tmp/gfcluster.XXXXXX)
namespaces=()

teardown() {
    local status=$?
    trap - EXIT INT TERM
    for ns in "${namespaces[@]}"; do
        # Processes left in a namespace are this job's (mpirun's daemons and ranks).
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null         # its veth pair goes with it
    done
    ip link del "$bridge" 2>/dev/null
    rm -rf "$tmp"
    exit $status
}
job=""
# A signal: mpirun passes SIGTERM on to the ranks, which stop at their next step boundary with a
# checkpoint and their end record (the background job ignores SIGINT, as a non-interactive shell's
# background jobs do, so Ctrl-C reaches the ranks this way only). The namespaces go only once the
# job has ended, or after 120 s; a second signal sends a second SIGTERM, which the ranks take as
# "stop now".
interrupted() {
    if [ -n "$job" ]; then
        kill -TERM "$job" 2>/dev/null
        local tenths=0
        while kill -0 "$job" 2>/dev/null && [ "$tenths" -lt 1200 ]; do sleep 0.1; tenths=$((tenths + 1)); done
    fi
    exit "$1"
}
trap teardown EXIT
trap 'interrupted 130' INT
trap 'interrupted 143' TERM

fail() { echo "cluster.sh: $*" >&2; exit 1; }

# Token bucket: the burst must hold at least a timer tick's worth of bytes at the rate, or the
# link runs below BANDWIDTH; 1 ms at the rate, at least 64 KB.
if [ -z "$burst" ] && [ "$bandwidth" != none ]; then
    bits=$(echo "$bandwidth" | awk '{ v = $0 + 0; u = tolower($0); sub(/^[0-9.]+/, "", u);
        m = (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : (u == "gbit") ? 1e9 : (u == "tbit") ? 1e12 : (u == "bit" || u == "") ? 1 : -1;
        if (m < 0) print -1; else printf "%.0f", v * m }')
    [ "$bits" -gt 0 ] 2>/dev/null || fail "cannot read BANDWIDTH '$bandwidth' (use e.g. 1gbit, 10gbit, 500mbit)"
    bytes=$((bits / 8 / 1000))
    [ $bytes -ge 65536 ] || bytes=65536
    burst="${bytes}b"
fi

limit() {   # limit DEVICE [in NAMESPACE]: tbf at BANDWIDTH, netem delay before it when asked
    local dev=$1; shift
    local run=("$@")
    if [ -n "$latency" ]; then
        "${run[@]}" tc qdisc add dev "$dev" root handle 1: netem delay "${latency}ms" limit 100000 || return 1
        [ "$bandwidth" = none ] || "${run[@]}" tc qdisc add dev "$dev" parent 1:1 handle 10: tbf rate "$bandwidth" burst "$burst" latency 50ms || return 1
    elif [ "$bandwidth" != none ]; then
        "${run[@]}" tc qdisc add dev "$dev" root tbf rate "$bandwidth" burst "$burst" latency 50ms || return 1
    fi
}

ip link add "$bridge" type bridge || fail "cannot create bridge $bridge"
if [ -n "$latency" ]; then   # netem is a kernel module that some kernels (containers) lack
    tc qdisc add dev "$bridge" root netem delay 1ms 2>/dev/null \
        || fail "--latency needs tc's netem (kernel module sch_netem), which this kernel does not offer"
    tc qdisc del dev "$bridge" root 2>/dev/null
fi
ip addr add "$net.1/24" dev "$bridge"
ip link set "$bridge" up
hostfile="$tmp/hosts"; : > "$hostfile"
# The cores of node I (1-based): an equal share of this machine's, at least one.
node_cores() {
    local n per first
    n=$(nproc); per=$(( n / ranks )); [ "$per" -ge 1 ] || per=1
    first=$(( ((($1 - 1) * per)) % n ))
    echo "$first-$(( first + per - 1 ))"
}
agent="$tmp/agent.sh"
{
    echo '#!/bin/sh'
    echo '# mpirun launch agent: ADDRESS COMMAND… → COMMAND in the namespace that owns ADDRESS, with its own host name'
    echo 'host=$1; shift'
    echo 'case "$host" in'
} > "$agent"
for i in $(seq 1 "$ranks"); do
    ns="gfc$id-$i"; host="$net.$((10 + i))"; veth="gfv${id}n$i"
    ip netns add "$ns" || fail "cannot create namespace $ns"
    namespaces+=("$ns")
    ip link add "$veth" type veth peer name eth0 netns "$ns" || fail "cannot create link $veth"
    ip link set "$veth" master "$bridge" up
    ip netns exec "$ns" ip addr add "$host/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
    # Both directions: into the namespace on the bridge side, out of it on eth0.
    limit "$veth" || fail "tc on $veth failed"
    limit eth0 ip netns exec "$ns" || fail "tc in $ns failed"
    echo "$host slots=1" >> "$hostfile"
    # A machine of its own has cores of its own: node i gets its share of this machine's cores
    # (shared round-robin when there are more ranks than cores). Without this, each node's mpirun
    # daemon binds its rank to "its" first core, the same core for every node, and two ranks run at
    # half speed (S: a 94 ms step over 10 Gb/s against 46 ms over shared memory, GEMMs 2× slower).
    cores=$(node_cores "$i")
    echo "  $host) exec ip netns exec $ns unshare --uts taskset -c $cores /bin/sh -c \"hostname node$i; \$*\" ;;" >> "$agent"
done
{
    echo '  *) echo "cluster agent: unknown host $host" >&2; exit 1 ;;'
    echo 'esac'
} >> "$agent"
chmod +x "$agent"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The caller's shared-memory settings (CI exports these) do not apply here.
unset OMPI_MCA_btl OMPI_MCA_oob_tcp_if_include OMPI_MCA_btl_tcp_if_include

echo "cluster.sh: $ranks ranks in namespaces gfc$id-1…$ranks, $net.0/24, links ${bandwidth}${latency:+, +${latency} ms each way}${burst:+, burst $burst}" >&2
mpirun --hostfile "$hostfile" -np "$ranks" --map-by node --bind-to none --stdin none \
    --mca plm_rsh_agent "$agent" --mca routed direct \
    --mca btl self,tcp --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24" \
    ${extra[@]+"${extra[@]}"} "$@" &
job=$!
wait "$job"   # in the background, so that a signal reaches the trap at once
