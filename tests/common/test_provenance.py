"""What a result says about the machine it was measured on."""

import json
import subprocess
import sys
from pathlib import Path

import torch  # noqa: F401  (loaded, as in every training or evaluation)

from common.provenance import provenance

ROOT = Path(__file__).resolve().parents[2]
TORCH_CAPABILITIES = {"DEFAULT", "AVX2", "AVX512", "VSX", "ZVECTOR", "SVE128", "SVE256", "SVE512"}


def test_the_machine_entry_names_the_cpu_and_the_vector_instructions_torch_uses():
    machine = provenance()["machine"]
    assert machine["cpus"] >= 1
    assert isinstance(machine["cpu_model"], str) and machine["cpu_model"].strip()
    assert machine["torch_cpu_capability"] in TORCH_CAPABILITIES


def test_provenance_does_not_import_torch_for_a_result_that_did_not_need_it():
    script = ("import json, sys; from common.provenance import provenance; "
              "print(json.dumps([provenance()['machine']['torch_cpu_capability'], 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [None, False]
