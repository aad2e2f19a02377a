#!/usr/bin/env bash
# Creates (or reuses) the Python venv that examples/bench_train_torch.py and examples/hf_check.py
# run in, and prints its python path on the last line of stdout, for example:
#
#   PY=$(examples/setup_torch.sh | tail -n1)
#   "$PY" examples/bench_train_torch.py --preset tiny
#
# The venv is .venv-torch in the repository root, or $DAGMATH_TORCH_VENV when set. Installs
# torch, transformers, safetensors and numpy from PyPI; skips the install when they already
# import. Note: PyPI's Linux torch wheel is the CUDA build (several GB with its nvidia-* wheels);
# it runs on CPU fine. For a small CPU-only wheel, run first:
#   $VENV/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DAGMATH_TORCH_VENV:-$repo_root/.venv-torch}
py=$venv/bin/python

if [[ ! -x $py ]]; then
    echo "creating venv $venv" >&2
    "${PYTHON:-python3}" -m venv "$venv"
fi

if "$py" -c "import torch, transformers, safetensors, numpy" 2>/dev/null; then
    echo "torch and transformers already installed in $venv" >&2
else
    echo "installing torch transformers safetensors numpy into $venv" >&2
    "$py" -m pip install --upgrade pip >&2
    "$py" -m pip install torch transformers safetensors numpy >&2
fi

"$py" -c "import torch, transformers; print('torch', torch.__version__, '/ transformers', transformers.__version__)" >&2
echo "$py"
