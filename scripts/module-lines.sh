#!/bin/bash
# Lines and files of Swift source per module (Sources/*) and test target (Tests/*):
#   bash scripts/module-lines.sh [REPO]
cd "${1:-.}" || exit 1
for d in Sources/*/ Tests/*/; do
    n=$(find "$d" -name '*.swift' -print0 | xargs -0 cat 2>/dev/null | wc -l)
    f=$(find "$d" -name '*.swift' | wc -l)
    [ "$f" -gt 0 ] && printf "%-28s %6d lines %3d files\n" "${d%/}" "$n" "$f"
done
