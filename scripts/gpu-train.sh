#!/usr/bin/env bash
# Distillation on a GPU machine (see ../shared/gpu/README.md): one command, at most about 9 minutes, that
# trains a prior-free model with the RIFE teacher there and returns its weights in fp16.
#
#   bash scripts/gpu-train.sh pack INIT TEACHER CLIP_DIR...   here, on the CPU: fill .gpu/ (git-ignored)
#   bash scripts/gpu-train.sh run                             there, with carry [".gpu"]
#
# pack copies the clips, the RIFE HDv3 teacher (converted to fp16 safetensors) and the weights to start
# from (a weights file or a run's checkpoint, stored in fp16; MODEL=FILE.json names a wider --model-config
# to grow them into), and checks that the tree that travels stays under 64 MiB. run needs no PyAV (the GPU
# machines have none, and its wheel would not fit beside the clips): OpenCV decodes the clips into the
# training cache, which training then finds filled. The teacher runs on the GPU before training; training
# stops TRAIN_SECONDS (default 330, the warm-up included) after it began, with a checkpoint. The weights
# come back exported with 3 flow scales (an IFNet model's with its one), in fp16, with the run's metrics,
# config and log, in OUT (default $OUT, else ./gpu-results). The next GPU session packs those weights as
# INIT (the optimiser starts afresh).
# The recipe is the one measured best on the CPU: synthetic scenes are 9% of the items (SYNTHETIC=0.1 beside
# the one folder of clips, as in vfi-fast's recipe; at 23% with lr 3e-5, bikes and Big Buck Bunny lost
# 0.1-0.2 dB) and the teacher's flows weigh 1 + |flow| / 2 px (MOTION_SCALE=2; the falling drops of
# kampos_drop-water gained 0.65 dB).
# TRAIN_ARGS adds options to a fresh run's `vfi train` (e.g. "--lambda smoothness=0.02").
# When INIT is an IFNet model (flow_module "ifnet", e.g. the default vfi-ifnet), run trains it as its CPU run
# did: the paper's full objective (STAGE=full), lr 1e-5, no motion weighting, exported at one flow scale.
# Tried on the CPU first with: DEVICE=cpu SMALL=1 bash scripts/gpu-train.sh run
set -u
pack=.gpu
if [ "${1:-}" = pack ]; then
    [ $# -ge 4 ] || { echo "usage: $0 pack INIT TEACHER CLIP_DIR..." >&2; exit 2; }
    init=$2; teacher=$3; shift 3
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
    rm -rf "$pack" && mkdir -p "$pack/clips" || exit 1
    for folder in "$@"; do cp "$folder"/*.* "$pack/clips/" || exit 1; done
    [ -z "${MODEL:-}" ] || cp "$MODEL" "$pack/model.json" || exit 1
    python3 - "$init" "$teacher" "$pack" <<'PY' || exit 1
import subprocess, sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from vfi_cli.config import ModelConfig
from vfi_cli.model.weights import load_weights, save_weights
from vfi_cli.training.teachers.rife import load_ifnet_state

init, teacher, pack = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
save_file({k: v.half().contiguous() for k, v in load_ifnet_state(teacher).items()}, str(pack / "rife.safetensors"))
if init.suffix == ".pt":  # a run's checkpoint
    subprocess.run([sys.executable, "-m", "vfi_cli", "export", str(init), str(pack / "init.safetensors"), "--half", "--overwrite"], check=True)
else:
    model, card = load_weights(init)  # its card carries the checked config
    save_weights(model, ModelConfig.from_dict(card["config"]), pack / "init.safetensors", recipe=card.get("recipe"),
                 metrics=card.get("metrics"), dtype=torch.float16)
PY
    tracked=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print s}')
    packed=$(du -cb "$pack" | tail -1 | cut -f1)
    echo "tree that travels: $(( (tracked + packed) / 1048576 )) MiB (limit 64)"
    [ $(( tracked + packed )) -lt $(( 63 * 1048576 )) ] || { echo "too large: pack fewer clips" >&2; exit 1; }
    exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 pack INIT TEACHER CLIP_DIR... | run" >&2; exit 2; }
out=${OUT:-gpu-results}
device=${DEVICE:-cuda}
run_dir=${RUN_DIR:-/tmp/vfi-gpu-run}
cache=${CACHE_DIR:-/tmp/vfi-gpu-cache}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$out"
log=$out/train.log
{ date; nvidia-smi --query-gpu=name --format=csv,noheader; python3 -c 'import torch; print("torch", torch.__version__)'; } > "$log" 2>&1
python3 - "$pack/clips" "$cache" >> "$log" 2>&1 <<'PY' || exit 1
import os, sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from vfi_cli.datasets.cache import cache_clip, opencv_frames
from vfi_cli.video.paths import VIDEO_SUFFIXES


def prime(clip):
    return clip.name, cache_clip(clip, Path(sys.argv[2]), decode=opencv_frames).frame_count


clips = sorted(p for p in Path(sys.argv[1]).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
with ProcessPoolExecutor(min(8, os.cpu_count() or 1)) as pool:  # one clip a process: decoding is single-threaded
    for name, count in pool.map(prime, clips):
        print(name, count, "frames", flush=True)
PY
if [ "${SMALL:-0}" = 1 ]; then
    size=(--crop 128 --batch-size 2 --workers 1 --clip-starts 2 --val-every 20 --checkpoint-every 10)
else
    size=(--crop 256 --batch-size 16 --workers 14 --clip-starts 120 --val-every 2000 --checkpoint-every 500)
fi
model=()
[ -f "$pack/model.json" ] && model=(--model-config "$pack/model.json")
if grep -q '"flow_module": "ifnet"' "$pack/init.card.json"; then
    stage=${STAGE:-full} lr=${LR:-1e-5} motion=${MOTION_SCALE:-0} scales=${FLOW_SCALES:-1}
else
    stage=${STAGE:-flow} lr=${LR:-4e-5} motion=${MOTION_SCALE:-2} scales=${FLOW_SCALES:-3}
fi
if [ -f "$run_dir/config.json" ]; then
    args=(--resume)
else
    args=(--stage "$stage" --data "videos:$pack/clips" --data "synthetic@${SYNTHETIC:-0.1}" --teacher "rife:$pack/rife.safetensors"
          --init-weights "$pack/init.safetensors" "${model[@]}" --steps 1000000 --lr "$lr" --lr-decay 0.5
          --lr-decay-epochs 60 --teacher-weight 1.0 --teacher-decay-steps 1000000 --lambda teacher_mask=0.1
          --motion-crops 0.75 --teacher-motion-scale "$motion" --sample-every 1000000 --cache-dir "$cache" --device "$device" "${size[@]}" ${TRAIN_ARGS:-})
fi
# SIGINT stops training as Ctrl-C does: the checkpoint is written, then the command returns.
timeout -s INT -k 60 "${TRAIN_SECONDS:-330}" python3 -m vfi_cli train --run-dir "$run_dir" "${args[@]}" -q >> "$log" 2>&1
echo "train exit $?" >> "$log"
python3 -m vfi_cli export "$run_dir/checkpoints/last.pt" "$out/vfi-gpu.safetensors" --half --flow-scales "$scales" --overwrite >> "$log" 2>&1
cp "$run_dir/metrics.jsonl" "$run_dir/config.json" "$out/" 2>/dev/null
tail -5 "$log"
