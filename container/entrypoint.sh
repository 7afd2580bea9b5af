#!/bin/sh
# SPDX-License-Identifier: MIT
# Entry point of the callcenter image. The first argument names what runs in
# the foreground, logging to stderr (the container engine keeps the log):
#   bus                  the suite's D-Bus bus on /run/callcenter/bus
#   callcenter-eventd    the event hub (XPUB on $CALLCENTER_EVENTS)
#   callcenter-routerd   the router (TCP on $CALLCENTER_ROUTER)
#   callcenter-taskd     tasks
#   anything else        run as given (callcenterctl --user ..., sh, ...)
# Daemons are started with --user: they use the bus of the "bus" service.
set -eu

wait_for_bus() {
        i=0
        while [ ! -S /run/callcenter/bus ]; do
                i=$((i + 1))
                if [ "$i" -gt 300 ]; then
                        echo "entrypoint: no bus at /run/callcenter/bus after 30s (is the bus service up?)" >&2
                        exit 1
                fi
                sleep 0.1
        done
}

case "${1:-}" in
bus)
        rm -f /run/callcenter/bus
        exec dbus-daemon --nofork --nopidfile --nosyslog \
                --config-file=/usr/share/callcenter/container-bus.conf
        ;;
callcenter-eventd|callcenter-routerd|callcenter-taskd)
        d=$1; shift
        wait_for_bus
        exec "/usr/sbin/$d" --user "$@"
        ;;
"")
        echo "usage: entrypoint bus|callcenter-eventd|callcenter-routerd|callcenter-taskd|COMMAND..." >&2
        exit 2
        ;;
*)
        exec "$@"
        ;;
esac
