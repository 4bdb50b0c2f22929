#!/bin/sh
# Runs yubin under valgrind (memcheck) for `make valgrind`: the tests start
# this script as $YUBIN_BIN, with VALGRIND_YUBIN naming the real binary
# (the optimized build). An error (invalid read or write, use of
# uninitialised memory, a bad free) or a definite leak makes the process
# exit 99 and leaves a report in $VALGRIND_LOG_DIR, which `make valgrind`
# then checks: the report must be empty of errors for every process.
# Only `serve` runs under valgrind; the admin commands the tests use to
# set up accounts run as they are, unless VALGRIND_CLI=1 (slow: each one
# takes a second or two under valgrind).
set -e
: "${VALGRIND_YUBIN:?VALGRIND_YUBIN must name the yubin binary}"
: "${VALGRIND_LOG_DIR:?VALGRIND_LOG_DIR must name a folder for the reports}"
case " $* " in
*" serve "*) ;;
*) [ "${VALGRIND_CLI:-0}" = 1 ] || exec "$VALGRIND_YUBIN" "$@" ;;
esac
exec valgrind --quiet --vgdb=no --error-exitcode=99 --exit-on-first-error=no \
	--leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--track-origins=yes --num-callers=30 \
	--log-file="$VALGRIND_LOG_DIR/vg.%p.log" \
	"$VALGRIND_YUBIN" "$@"
