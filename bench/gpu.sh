#!/usr/bin/env bash
# The GPU run, one command and no network: builds the 1.7B shape on this machine, then measures eval RTFx at batch
# 1, 8 and 32 (bfloat16), the app's side-by-side latency on a 5 s clip and one training step at the card's batch 92,
# printing them and writing OUT_DIR/gpu.json. Under 8 minutes on one H100.
#
#   bash bench/gpu.sh OUT_DIR                                        # the full run
#   bash bench/gpu.sh OUT_DIR --size tiny --eval-batches 1 2 --clips 2 --train-batch 2 --repeats 1   # CPU dry run
#
# Python: $PYTHON, else the repository's .venv, else python3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: bash bench/gpu.sh OUT_DIR [options of bench/gpu.py]}"
shift
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$here/../.venv/bin/python" ]]; then python="$here/../.venv/bin/python"; else python=python3; fi
fi
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false
exec "$python" "$here/gpu.py" "$out" "$@"
