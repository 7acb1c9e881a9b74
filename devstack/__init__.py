"""The local stack: the jobrelay application on moto, an HTTP front door and the vendor sandboxes."""

import sys
from pathlib import Path

# devstack reads the layer (the vendors' manifests, the schedule expression parser). It is on sys.path
# under pytest (pyproject.toml) but not for `python -m devstack`; appended, so that a function's own
# code and layers still come first when the in-process Lambda runtime runs it.
_LAYER = Path(__file__).resolve().parent.parent / "layers" / "jobrelay"
if str(_LAYER) not in sys.path:
    sys.path.append(str(_LAYER))
