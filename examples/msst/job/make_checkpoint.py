"""Write job/tiny_bs_roformer.ckpt: random weights for job/tiny_bs_roformer.yaml, built by msst's own
model class (so the file has the key layout every MSST checkpoint has). Run with a Python that has
torch and msst: `python job/make_checkpoint.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from msst.utils.settings import get_model_from_config

HERE = Path(__file__).resolve().parent


def main(out: Path = HERE / "tiny_bs_roformer.ckpt", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model, _config = get_model_from_config("bs_roformer", str(HERE / "tiny_bs_roformer.yaml"))
    tmp = out.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(out)
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "tiny_bs_roformer.ckpt"))
