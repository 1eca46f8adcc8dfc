#!/usr/bin/env bash
# The lent device machine receives this checkout's tracked and untracked-not-ignored files plus
# what a call carries, at most 64 MiB in all; results/ alone (run logs and resume weights, the
# shipped checkpoints) is about 210 MB. For the length of the device calls the checkout stands on a
# temporary detached commit without results/, and then goes back:
#   bash experiments/scripts/device_slim.sh enter    # prints what would travel
#   (device run ... carry=[".devicepack"])
#   bash experiments/scripts/device_slim.sh leave    # back to the branch, every file as it was
# enter refuses with uncommitted tracked changes (commit first) and while a training run writes
# under results/ (its logs are tracked files: stop it, or let it finish its chunk, first).
set -euo pipefail
cd "$(dirname "$0")/../.."
state="$(git rev-parse --git-dir)/device-slim"
case ${1:-} in
  enter)
    if [ -f "$state" ]; then echo "device_slim: already entered (from $(head -n 1 "$state")); run: $0 leave" >&2; exit 2; fi
    if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
      echo "device_slim: the checkout has uncommitted changes to tracked files; commit them first" >&2; exit 2
    fi
    if [ "${DEVICE_SLIM_IGNORE_TRAINING:-0}" != 1 ] && ! command -v pgrep >/dev/null; then
      echo "device_slim: pgrep is missing, so a running training cannot be ruled out (install procps, or DEVICE_SLIM_IGNORE_TRAINING=1)" >&2; exit 2
    fi
    if [ "${DEVICE_SLIM_IGNORE_TRAINING:-0}" != 1 ] && pgrep -f "experiments\.train --config" >/dev/null; then
      echo "device_slim: a training run is writing under results/ (stop it first: pkill -f train_rounds.sh; pkill -TERM -f 'experiments.train --config')" >&2; exit 2
    fi
    git symbolic-ref -q --short HEAD > "$state" || git rev-parse HEAD > "$state"
    commit=$(git rev-parse --short HEAD)
    git checkout -q --detach
    git rm -r -q results
    git -c user.name=device-slim -c user.email=device-slim@localhost commit -q --no-verify -m "device slim: results/ left out for a device call (temporary, detached)"
    git rev-parse HEAD >> "$state"  # line 2: the slim commit itself (leave checks nothing was made on it)
    bytes=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
    pack=0; [ -d .devicepack ] && pack=$(find .devicepack -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    awk -v a="$bytes" -v b="$pack" 'BEGIN {printf "device_slim: the checkout now sends %.1f MiB, .devicepack %.1f MiB: %.1f of 64 MiB\n", a/1048576, b/1048576, (a+b)/1048576}'
    echo "device_slim: the device command: COLORIZE_GIT_COMMIT=$commit PACK=.devicepack EXPORT=\$OUT TIME_LIMIT=420 PYTHONUNBUFFERED=1 bash experiments/scripts/gpu_train.sh 300000   (carry: .devicepack; timeout_s 560)"
    ;;
  leave)
    if [ ! -f "$state" ]; then echo "device_slim: not entered" >&2; exit 2; fi
    back=$(head -n 1 "$state"); slim=$(sed -n 2p "$state")
    # never throw work away: edits to tracked files, or commits made on the slim checkout
    if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
      echo "device_slim: tracked files changed while entered; leaving would discard them. Stash them (git stash), leave, then git stash pop" >&2; exit 2
    fi
    if [ -n "$slim" ] && [ "$(git rev-parse HEAD)" != "$slim" ]; then
      echo "device_slim: HEAD moved while entered (commits on the slim checkout: git log $slim..HEAD); cherry-pick them onto $back after leaving: git checkout -f $back" >&2; exit 2
    fi
    git checkout -q -f "$back"
    rm -f "$state"
    echo "device_slim: back on $(git symbolic-ref -q --short HEAD || git rev-parse --short HEAD), results/ restored"
    ;;
  *) echo "usage: $0 enter|leave" >&2; exit 2 ;;
esac
