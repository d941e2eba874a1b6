"""Two CPU processes (gloo): data-parallel steps keep the ranks' weights identical, and the model the main process
saves loads with `from_pretrained`.

Launched with torchrun + ACCELERATE_USE_CPU, which Accelerate reads as a multi-CPU run: `accelerate launch` sends a
MULTI_CPU config through mpirun, which a plain machine lacks (see train/README.md)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from gexbert_hf import GexBertForMaskedExpression

REPOSITORY = Path(__file__).resolve().parents[1]

WORKER = """
import sys
import torch
from accelerate import PartialState
from safetensors.torch import save_file
from gexbert_hf.training.pretrain import PretrainArguments, pretrain

torch.set_num_threads(1)
args = PretrainArguments(dataset=sys.argv[1], output_dir=sys.argv[2], preset="tiny", max_steps=4, batch_size=8,
                         save_steps=2, logging_steps=2, eval_steps=2, progress=False)
result = pretrain(args)
state = PartialState()
weights = {name: tensor.detach().cpu().contiguous() for name, tensor in result.model.state_dict().items()}
save_file(weights, f"{sys.argv[2]}/rank{state.process_index}-of-{state.num_processes}.safetensors")
"""


def _free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


def test_two_cpu_processes_end_with_identical_weights_and_a_loadable_model(synthetic_cohort, tmp_path):
    from gexbert_hf.data.build import build_dataset

    dataset, output = tmp_path / "dataset", tmp_path / "run"
    build_dataset(synthetic_cohort, output=dataset, verbose=False)
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), str(worker), str(dataset), str(output)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true",
                   "PYTHONPATH": str(REPOSITORY)}
    finished = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "2 process(es)" in finished.stdout

    rank0 = load_file(output / "rank0-of-2.safetensors")
    rank1 = load_file(output / "rank1-of-2.safetensors")
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    model = GexBertForMaskedExpression.from_pretrained(output)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, rank0[name]), name
    assert (output / "checkpoints" / "step-00000002").is_dir()  # checkpoints written by both ranks together
