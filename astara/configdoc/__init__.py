"""The appliance configuration document (DESIGN §5): :mod:`astara.configdoc.validate` for now.

The module becomes this package; the next commit splits it, one module a job.
"""

from astara.configdoc.validate import *  # noqa: F403
from astara.configdoc.validate import _MODELS, _Invalid, _ipv4_text  # noqa: F401
