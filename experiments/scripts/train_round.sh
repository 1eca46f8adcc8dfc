#!/usr/bin/env bash
# A training round that raises every learned method's budget together (issue 10, "Training now" in
# docs/training.md): per method a 160-px trunk at a constant learning rate to TRUNK images
# (results/runs/<method>-t160), then a branch from the trunk's weights whose rate falls linearly to 0
# over the last DECAY images (results/runs/<method>-r<BUDGET/1000>) - warmup-stable-decay, so a later
# round branches off the same trunk further on. Resumable: each call skips what has reached its
# target and resumes the rest from the run's own checkpoint, else its committed resume.<ext>, else
# 64-px-phase weights of an earlier run of the same recipe (read from git). After each branch its
# snapshot mean is kept (snapshot-mean.<ext>) and scored against its last weights. Nothing ships
# until every method has reached the budget; then the round's models ship together, by the README's
# equal-budget rule (python -m experiments.average --method M --run results/runs/M-r400
# --ship-at-budget ...), and the README's tables, grid and cards are remade (SHIP=0: not).
#
#   nohup bash experiments/scripts/train_round.sh >> results/runs/train_round.log 2>&1 &
#   METHODS="gan" BUDGET=400000 DECAY=40000 bash experiments/scripts/train_round.sh
#   DRY_RUN=1 bash experiments/scripts/train_round.sh      # print the commands, train nothing
#   RUNS_DIR=/elsewhere ...                                  # runs outside results/runs
set -u
cd "$(dirname "$0")/../.." || exit 2
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
ALL="classification regression fusion koalarization gan"
METHODS=${METHODS:-$ALL}
BUDGET=${BUDGET:-400000}
DECAY=${DECAY:-40000}
TRUNK=$(( BUDGET - DECAY ))
BRANCH="r$(( BUDGET / 1000 ))"  # the branches' runs: <method>-r400
RUNS=${RUNS_DIR:-results/runs}
where=(); [ -n "${RUNS_DIR:-}" ] && where=("train.runs_dir=$RUNS_DIR")
# the configs' schedule: 200,000 images at batch 32, then batch 12 (160-px crops)
PHASE2=200000; B1=32; B2=12
steps_at() { local n=$1; echo $(( PHASE2 / B1 + (n - PHASE2 + B2 - 1) / B2 )); }
declare -A INIT=(
  [classification]=0bc4f3c:results/runs/classification-squeezenet/resume.pt  # 160,000 images
  [regression]=ed7a256:results/runs/regression-squeezenet/resume.keras        # 180,000
  [fusion]=7d899f1:results/runs/fusion-squeezenet/resume.pt                   # 200,000
  [gan]=6f52774:results/runs/gan-w48-340k/resume.pt                           # 196,704
  [koalarization]=ed7a256:results/runs/koalarization/resume.pt                # 180,000
)
ext() { [ "$1" = regression ] && echo keras || echo pt; }
field() {  # file key default: a JSON file's top-level value (the default when either is missing)
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], sys.argv[3]))' "$1" "$2" "$3" 2>/dev/null || echo "$3"
}
seen() { field "$RUNS/$1/resume.json" images_seen 0; }  # images seen by a run's latest weights (0: none)
say() { echo "[$(date -u '+%F %H:%M:%S')] $*"; }
train() {  # run target init overrides...: one run to its target, resumed where it stands
  local run=$1 target=$2 init=$3; shift 3
  local m=${run%%-*} e; e=$(ext "$m")
  local have; have=$(seen "$run")
  if [ "$have" -ge "$target" ]; then say "$run: at $have images, done"; return 0; fi
  # a run with a checkpoint of its own resumes it (experiments.train then ignores --init-from)
  local from=()
  if [ -f "$RUNS/$run/resume.$e" ]; then from=(--init-from "$RUNS/$run/resume.$e")
  elif [[ "$init" == *:* ]]; then  # REV:PATH, read from git only when a run starts from it
    from=(--init-from "$scratch/$m-init.$e")
    git show "$init" > "${from[1]}" || { say "$run: cannot read $init from git"; return 2; }
  elif [ -n "$init" ]; then from=(--init-from "$init")
  fi
  say "$run: from ${have} to $target images ${from[*]}"
  local cmd=("$PY" -m experiments.train --config "experiments/configs/$m.toml" "train.run=$run" "train.images=$target" "$@" "${where[@]}"
             "${from[@]}" --no-progress)
  [ -n "${DRY_RUN:-}" ] && { echo "${cmd[*]}"; return 0; }
  nice -n 10 "${cmd[@]}" >> "$RUNS/$run.out" 2>&1
}
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
for m in $METHODS; do
  [ -f "experiments/configs/$m.toml" ] || { say "$m: no config"; exit 2; }
  trunk="$m-t160"; branch="$m-$BRANCH"; e=$(ext "$m")
  train "$trunk" "$TRUNK" "${INIT[$m]:-}" train.snapshots_from=$(( BUDGET + 1 )) model.decay_start=0 model.decay_steps=0 || { say "$trunk: failed or stopped"; exit 1; }
  start=$(steps_at "$TRUNK"); n=$(( $(steps_at "$BUDGET") - start ))
  train "$branch" "$BUDGET" "$RUNS/$trunk/resume.$e" "train.snapshots_from=$TRUNK" "model.decay_start=$start" \
    "model.decay_steps=$n" || { say "$branch: failed or stopped"; exit 1; }
  # the rule's second candidate, kept while the snapshots are here (git keeps none): the snapshot
  # mean as the run's snapshot-mean.<ext>, both candidates scored on the 600 validation photos
  if [ ! -f "$RUNS/$branch/snapshot-mean.$e" ]; then
    cmd=("$PY" -m experiments.average --method "$m" --run "$RUNS/$branch" --window "$DECAY" --gate-only --holdout 400)
    if [ -n "${DRY_RUN:-}" ]; then echo "${cmd[*]}"
    else say "$branch: its snapshot mean and last weights scored"; nice -n 10 "${cmd[@]}" >> "$RUNS/$branch.out" 2>&1 || say "$branch: not scored"; fi
  fi
done
say "round to $BUDGET images: every run done"
# Ship the round together, by the equal-budget rule (README): each method's branch - its last weights
# or its snapshot mean, whichever scores higher on the 600 validation photos; the test photos reported
# in the card, not used to choose - then the README's tables, grid and cards from the shipped models.
# A method whose card already names its branch is not shipped again. SHIP=0 stops before this.
[ "${SHIP:-1}" = 0 ] && exit 0
for m in $ALL; do  # all five, whichever METHODS this call trained
  branch="$m-$BRANCH"
  [ "$(seen "$branch")" -ge "$BUDGET" ] || { say "nothing ships yet: $branch has not reached $BUDGET images"; exit 0; }
done
shipped=0
for m in $ALL; do
  branch="$m-$BRANCH"
  if [ "$(field "results/checkpoints/$m.json" run "")" = "$branch" ] && [ -z "${DRY_RUN:-}" ]; then say "$branch: shipped already"; continue; fi
  cmd=("$PY" -m experiments.average --method "$m" --run "$RUNS/$branch" --window "$DECAY" --ship-at-budget --holdout 400
       --guard ../shared/data/test)
  if [ -n "${DRY_RUN:-}" ]; then echo "${cmd[*]}"; shipped=1; continue; fi
  say "$branch: shipping by the equal-budget rule"
  nice -n 10 "${cmd[@]}" >> "$RUNS/$branch.out" 2>&1 || { say "$branch: not shipped (see $RUNS/$branch.out)"; exit 1; }
  shipped=1
done
# after a ship, or when an earlier call shipped and its refresh did not finish (the README is stale)
[ "$shipped" = 1 ] || ! "$PY" -m experiments.readme --check > /dev/null 2>&1 || exit 0
cmd=("$PY" -m experiments.readme --refresh --methods "${ALL// /,}")  # neural_style's committed rows kept
if [ -n "${DRY_RUN:-}" ]; then echo "${cmd[*]}"; exit 0; fi
say "the README's tables, grid and model cards remade from the shipped models"
nice -n 10 "${cmd[@]}" >> "$RUNS/train_round-readme.out" 2>&1 || { say "README refresh failed (see $RUNS/train_round-readme.out)"; exit 1; }
say "round to $BUDGET images shipped: commit results/checkpoints, results/metrics, results/sample_grid.*, README.md"
