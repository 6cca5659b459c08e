"""ganstyle core library: no ComfyUI imports here.

Import the pieces you need, e.g.::

    from ganstyle.core.vgg import load_vgg_encoder
    from ganstyle.core.features import compute_style_features
"""
from .errors import ConfigError, GanstyleError, InputError, WeightsError

__all__ = ["GanstyleError", "WeightsError", "ConfigError", "InputError"]
