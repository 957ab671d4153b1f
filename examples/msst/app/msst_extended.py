"""msst-inference as an app with an extended runtime starts it: the extended set is imported first."""

import sys

import huggingface_hub  # noqa: F401  (model downloads)
import julius  # noqa: F401  (resampling)
import onnx  # noqa: F401
import onnxruntime  # noqa: F401  (ONNX models beside the torch ones)
import pytorch_lightning  # noqa: F401  (checkpoints saved by Lightning)
import resampy  # noqa: F401
import samplerate  # noqa: F401
from msst.cli import inference

sys.exit(inference())
