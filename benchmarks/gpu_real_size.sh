#!/usr/bin/env bash
# The study at the size of Speech Commands v0.01 on a GPU: one prepared script for a lent
# device machine (benchmarks/README: one short run inside its time limit).
#
#     bash benchmarks/gpu_real_size.sh            # writes under $OUT (or /tmp/kws-gpu)
#
# Installs the project, then runs benchmarks/bench_real_size.py with --device cuda at
# 64,721 clips and 1,881 speakers: synthesis, features, the 3 reference seeds and 20
# trials, each phase's wall time and peak RSS. The CPU figures to set beside it are the
# "Real size" section of docs/benchmarks.md (2 cores). It then prints the references'
# validation and test au_fa_fr, to compare with the CPU's within the seed noise (+-20 %).
set -euo pipefail
OUT=${OUT:-/tmp/kws-gpu}
mkdir -p "$OUT"
python -m pip install -q -e . 2>&1 | tail -1 || true
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python - <<'EOF'
import torch
assert torch.cuda.is_available(), "no CUDA device visible to torch"
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
EOF
python benchmarks/bench_real_size.py --num-clips 64721 --num-speakers 1881 --trials 20 \
    --device cuda --out "$OUT/run" 2>"$OUT/progress.log" | tee "$OUT/phases.txt"
python - "$OUT/run" <<'EOF' | tee "$OUT/references.txt"
import sys
from pathlib import Path

import optuna

from study.objective import best_feasible
from study.runner import describe

study = optuna.load_study(
    study_name="kws-synthetic-sheila-seed0", storage=f"sqlite:///{Path(sys.argv[1]) / 'study.db'}"
)
attrs = study.user_attrs
for split in ("val", "test"):
    values = ", ".join(f"{v:.3e}" for v in attrs[f"reference_{split}_au_fa_fr_seeds"])
    print(f"reference (BASE) {split} au_fa_fr per seed on cuda: {values}")
best = best_feasible(study)
print("best feasible:", "none" if best is None else describe(best))
EOF
