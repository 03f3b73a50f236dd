"""Apply a configuration document to this box, as declarative steps (:mod:`.steps`): each says
what it wants from the document and converges the box to it; one memo rule (:mod:`.memo`)
skips a step whose inputs did not change since its last success.

- :mod:`.appliance`: the whole apply, all or nothing (rollback), and the API's entry points;
- :mod:`.floating`: the incremental path of a floating-IP-only change;
- :mod:`.plan`: networks resolved to NICs; :mod:`.derive`: what steps derive from the document;
- :mod:`.announce`: conntrack flushed and addresses announced after an apply.
"""

from astara.appliance.apply.appliance import STEP_ORDER, Appliance
from astara.appliance.apply.errors import ApplyError, PreconditionFailed, ResolveError
from astara.appliance.apply.plan import Plan

__all__ = ["STEP_ORDER", "Appliance", "ApplyError", "Plan", "PreconditionFailed", "ResolveError"]
