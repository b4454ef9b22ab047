#!/usr/bin/env bash
# A throwaway S3 store for tests and demos: a single-node Ceph (Debian 12's 16.2.x) with one mon, one OSD on
# memstore and one radosgw, bound to 127.0.0.1 only, everything under one scratch dir, no systemd, no cephx.
#
#   scripts/ceph-rgw.sh start    # installs the packages if missing (apt), starts the daemons, creates an S3 user,
#                                # writes $CEPH_RGW_DIR/s3.env (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...)
#   scripts/ceph-rgw.sh status   # exit 0 when a cluster of ours runs in $CEPH_RGW_DIR
#   scripts/ceph-rgw.sh stop     # stops exactly those daemons (pid files + our conf on their command line), rm -rf
#   scripts/ceph-rgw.sh gateway-stop | gateway-start
#                                # only radosgw: the store is down for clients, the objects stay (tests of outages)
#
# Knobs: CEPH_RGW_DIR (/tmp/audit-trail-rgw), RGW_PORT (7480), MON_PORT (16789), MS_PORT_MIN/MAX (16800/16899),
# MEMSTORE_BYTES (2 GiB), S3_ACCESS_KEY / S3_SECRET_KEY (fixed test keys), SKIP_APT=1, BOOT_TIMEOUT (120 s).
# Why each setting is there: docs/object-store.md, "The test store".
set -euo pipefail

DIR=${CEPH_RGW_DIR:-/tmp/audit-trail-rgw}
RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${MON_PORT:-16789}
MS_PORT_MIN=${MS_PORT_MIN:-16800}
MS_PORT_MAX=${MS_PORT_MAX:-16899}
MEMSTORE_BYTES=${MEMSTORE_BYTES:-$((2 << 30))}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-AUDITTESTACCESSKEY01}
S3_SECRET_KEY=${S3_SECRET_KEY:-auditTestSecretKey0123456789abcdefghijklm}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-120}
CONF=$DIR/ceph.conf
RGW=client.rgw.s3
MARKER=.audit-trail-rgw   # stop only ever deletes a dir carrying this
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

T0=$(date +%s%3N)
log() { local ms=$(($(date +%s%3N) - T0)); printf '[ceph-rgw +%d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"; }
die() { echo "ceph-rgw: $*" >&2; exit 1; }

# A pid counts as ours only while its command line names our conf: a zombie or a recycled pid never does.
ours() { [[ $1 =~ ^[0-9]+$ ]] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$CONF"; }
alive() {
    local f pid
    for f in "$DIR"/run/*.pid; do
        [[ -e $f ]] || continue
        pid=$(cat "$f" 2>/dev/null) || continue
        if ours "$pid"; then echo "$pid"; fi
    done
    return 0
}

stop() {
    [[ -d $DIR ]] || { log "$DIR does not exist; nothing to stop"; return 0; }
    [[ -e $DIR/$MARKER ]] || die "$DIR was not made by this script; refusing to touch it"
    local name f pid i
    # radosgw first (a client of the cluster), the mon last.
    for name in "$RGW" osd.0 mon.a; do
        f=$DIR/run/$name.pid
        [[ -e $f ]] || continue
        pid=$(cat "$f" 2>/dev/null || true)
        ours "$pid" || continue
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do ours "$pid" || break; sleep 0.1; done
        if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        log "$name (pid $pid) stopped"
    done
    for pid in $(alive); do kill -KILL "$pid" 2>/dev/null || true; done
    if [[ ${KEEP_DIR:-0} == 1 ]]; then log "kept $DIR"; else rm -rf -- "$DIR"; log "removed $DIR"; fi
}

start() {
    local need=() p
    for p in radosgw ceph-mon ceph-osd; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
    done
    if ((${#need[@]})); then
        [[ ${SKIP_APT:-0} == 1 ]] && die "missing packages: ${need[*]} (SKIP_APT=1)"
        log "apt-get install ${need[*]} (about 70 MB; the postinst's systemd complaints are harmless)"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
        log "packages installed"
    fi
    if [[ -d $DIR ]]; then
        [[ -e $DIR/$MARKER ]] || die "$DIR exists and was not made by this script"
        [[ -z $(alive) ]] || die "a cluster already runs in $DIR (pids $(alive | tr '\n' ' ')); stop it first"
        rm -rf -- "$DIR"   # a dead cluster's dir (e.g. after kill -9): start afresh
    fi
    # A busy port would make the readiness probe below talk to someone else's server.
    for p in "$MON_PORT" "$RGW_PORT"; do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && die "127.0.0.1:$p is already in use (set MON_PORT / RGW_PORT)"
    done
    mkdir -p "$DIR"/{run,log,crash,mon/a,osd/0,rgw}
    touch "$DIR/$MARKER"
    trap on_failure EXIT

    local fsid
    fsid=$(cat /proc/sys/kernel/random/uuid)
    # \$name and \$id are for Ceph to expand, not bash.
    cat >"$CONF" <<CONF
[global]
    fsid = $fsid
    # msgr2 only, on loopback only (beast's "port=" form would bind every interface; "endpoint=" does not)
    mon host = [v2:127.0.0.1:$MON_PORT]
    public addr = 127.0.0.1
    cluster addr = 127.0.0.1
    ms bind msgr1 = false
    ms bind ipv6 = false
    ms bind port min = $MS_PORT_MIN
    ms bind port max = $MS_PORT_MAX
    # no cephx: only loopback reaches these daemons
    auth cluster required = none
    auth service required = none
    auth client required = none
    keyring = $DIR/keyring
    run dir = $DIR/run
    crash dir = $DIR/crash
    pid file = $DIR/run/\$name.pid
    admin socket = $DIR/run/\$name.asok
    log file = $DIR/log/\$name.log
    log to stderr = false
    err to stderr = false
    # one OSD: pools of one replica, and Pacific must be told that is allowed
    osd pool default size = 1
    osd pool default min size = 1
    osd pool default pg num = 8
    osd pool default pgp num = 8
    osd pool default pg autoscale mode = off
    mon allow pool size one = true
    mon warn on pool no redundancy = false
    osd crush chooseleaf type = 0
    mon max pg per osd = 1000
    # a daemon's launch waits for its mon session; 60 s instead of 300 s when something is wrong
    client mount timeout = 60
[mon]
    mon data = $DIR/mon/a
    mon cluster log file = $DIR/log/cluster.log
    mon data avail crit = 1
    mon data avail warn = 2
    # radosgw creates 6 pools one by one on first start; 0.1 s map proposals instead of 1 s save ~10 s
    paxos propose interval = 0.1
    mon warn on insecure global id reclaim allowed = false
[osd]
    osd data = $DIR/osd/\$id
    # objects live in the OSD's RAM; the size is only what it reports (and fullness is judged by)
    osd objectstore = memstore
    memstore device bytes = $MEMSTORE_BYTES
    osd op num shards = 2
    osd op num threads per shard = 1
[client]
    # radosgw compiles in ms_mon_client_mode = secure, which needs cephx: without this it hangs 300 s
    ms mon client mode = crc
[$RGW]
    rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
    rgw data = $DIR/rgw
    rgw thread pool size = 32
    rgw enable usage log = false
    rgw init timeout = 90
CONF
    local ceph=(timeout 30 ceph -c "$CONF" --connect-timeout 20) osd_uuid osd_id deadline
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
    ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" >"$DIR/log/mon-mkfs.out" 2>&1
    # Each daemon forks and its parent waits for the child to initialise: bound that wait.
    # Daemons get no terminal or pipe of the caller's: they outlive this script, and whoever reads its output
    # (make, CI) would otherwise wait for them; what they print at launch goes beside their logs.
    timeout "$BOOT_TIMEOUT" ceph-mon -c "$CONF" -i a </dev/null >"$DIR/log/mon.a.launch" 2>&1
    log "mon.a pid $(pid_of mon.a)"
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    osd_id=$("${ceph[@]}" osd new "$osd_uuid")
    [[ $osd_id == 0 ]] || die "expected osd id 0, got '$osd_id'"
    timeout "$BOOT_TIMEOUT" ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/osd-mkfs.out" 2>&1
    timeout "$BOOT_TIMEOUT" ceph-osd -c "$CONF" -i 0 </dev/null >"$DIR/log/osd.0.launch" 2>&1
    log "osd.0 pid $(pid_of osd.0)"
    deadline=$(($(date +%s) + BOOT_TIMEOUT))
    until "${ceph[@]}" osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'; do
        (($(date +%s) < deadline)) || die "osd.0 not up after ${BOOT_TIMEOUT}s"
        sleep 0.5
    done
    gateway_start
    timeout 60 radosgw-admin -c "$CONF" user create --uid=audit --display-name=audit \
        --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >"$DIR/log/user-create.json"
    cat >"$DIR/s3.env" <<ENV
AWS_ENDPOINT_URL=http://127.0.0.1:$RGW_PORT
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
AWS_REGION=us-east-1
ENV
    write_probe
    trap - EXIT
    log "S3 ready at http://127.0.0.1:$RGW_PORT; credentials: set -a; . $DIR/s3.env; set +a"
}

# A bucket made, an object written and both deleted: radosgw creates its data pools on the first write, which on a
# loaded machine took longer than the tests' own deadlines (every S3 test of a CI run timed out at once, 300 s, with
# radosgw answering GET /). Ready means writes work.
write_probe() {
    local deadline url="http://127.0.0.1:$RGW_PORT/ready-probe-$$"
    # curl signs the request but does not send the payload's hash, which radosgw requires: it is given here.
    local empty probe
    empty=$(printf '' | sha256sum | cut -d' ' -f1)
    probe=$(printf probe | sha256sum | cut -d' ' -f1)
    local s3=(curl -s -f --max-time 30 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY")
    deadline=$(($(date +%s) + BOOT_TIMEOUT))
    until "${s3[@]}" -H "x-amz-content-sha256: $empty" -X PUT -o /dev/null "$url" &&
        "${s3[@]}" -H "x-amz-content-sha256: $probe" -X PUT --data-binary probe -o /dev/null "$url/object"; do
        (($(date +%s) < deadline)) || die "radosgw does not take writes after ${BOOT_TIMEOUT}s (see $DIR/log)"
        sleep 1
    done
    "${s3[@]}" -H "x-amz-content-sha256: $empty" -X DELETE -o /dev/null "$url/object" &&
        "${s3[@]}" -H "x-amz-content-sha256: $empty" -X DELETE -o /dev/null "$url" ||
        die "radosgw took the probe's writes but not its deletes"
    log "radosgw takes writes"
}

# radosgw alone (the S3 endpoint); the mon and OSD, and so the objects, stay.
gateway_start() {
    local deadline
    rm -f "$DIR/run/$RGW.pid"
    timeout "$BOOT_TIMEOUT" radosgw -c "$CONF" -n "$RGW" </dev/null >>"$DIR/log/$RGW.launch" 2>&1
    log "radosgw pid $(pid_of "$RGW")"
    deadline=$(($(date +%s) + BOOT_TIMEOUT))
    until curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$RGW_PORT/"; do
        (($(date +%s) < deadline)) || die "radosgw not answering on 127.0.0.1:$RGW_PORT after ${BOOT_TIMEOUT}s"
        sleep 0.3
    done
}

gateway_stop() {
    local pid i
    pid=$(cat "$DIR/run/$RGW.pid" 2>/dev/null || true)
    ours "$pid" || die "no radosgw of ours runs in $DIR"
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do ours "$pid" || break; sleep 0.1; done
    if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    log "radosgw (pid $pid) stopped; mon and osd keep the objects"
}

# The daemon writes its pid file after forking; radosgw's parent returns before that, so wait for it.
pid_of() {
    local f=$DIR/run/$1.pid i
    for ((i = 0; i < 100; i++)); do [[ -s $f ]] && { cat "$f"; return 0; }; sleep 0.1; done
    die "no pid file $f after 10 s"
}

on_failure() {
    set +e   # and 'return 0', not a bare 'return', inside a trap handler
    echo "ceph-rgw: start failed; log tails from $DIR/log:" >&2
    for f in "$DIR"/log/*.log "$DIR"/log/*.launch; do [[ -s $f ]] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }; done
    KEEP_DIR=1 stop >&2
    echo "ceph-rgw: daemons stopped; $DIR kept for inspection (scripts/ceph-rgw.sh stop removes it)" >&2
    return 0
}

# The daemons outlive this script: they must not hold descriptors it inherited. A caller waiting for the end of
# a pipe would wait for them, and Foundation's Process learns of its child's exit when the last holder of a socket
# it passed down closes it. That socket's number can be above 255 in a busy test process (a CI run's gateway-start
# "hung" for 180 s after the script had finished), so every descriptor above 2 goes but the one bash reads this
# script from.
self=$(readlink -f "${BASH_SOURCE[0]}")
for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    if ((fd > 2)) && [[ $(readlink "/proc/$$/fd/$fd" 2>/dev/null) != "$self" ]]; then
        eval "exec $fd>&-" 2>/dev/null || true
    fi
done

case ${1:-} in
start) start ;;
stop) stop ;;
status) [[ -n $(alive) ]] && [[ -e $DIR/s3.env ]] ;;
gateway-stop) gateway_stop ;;
gateway-start) gateway_start ;;
*) die "usage: $0 start|stop|status|gateway-stop|gateway-start" ;;
esac
