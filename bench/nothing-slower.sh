#!/bin/bash
# Usage: bench/nothing-slower.sh OLD_BINARY NEW_BINARY [ROUNDS]   (RUNFILE: a run file to read, e.g. made by `gradflow bench run-file --file F`)
# old vs new, alternated in rounds: bench S and M (tok/s), run-file read of 1M records (wall s), dashboard frame (ms)
OLD=$1; NEW=$2; ROUNDS=${3:-3}
for r in $(seq 1 $ROUNDS); do
  for name in old new; do
    bin=$OLD; [ $name = new ] && bin=$NEW
    s=$($bin bench --preset S --steps 30 --warmup 5 --threads 2 --json 2>/dev/null | grep '^{' | tail -1 | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["tokens_per_second"]))')
    m=$($bin bench --preset M --steps 10 --warmup 3 --threads 2 --json 2>/dev/null | grep '^{' | tail -1 | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["tokens_per_second"]))')
    f=$($bin bench --run-file --file ${RUNFILE:-/tmp/gradflow-bench-1000000.jsonl} --rounds 1 --json 2>/dev/null | grep '^{' | tail -1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["wall_s_median"],3), round(d["cpu_s_median"],3))')
    d=$($bin bench --dashboard --json 2>/dev/null | grep '^{' | tail -1 | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["frame_ms_median"],3))')
    echo "round $r $name S_tok/s $s M_tok/s $m runfile_wall_cpu_s $f frame_ms $d load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
