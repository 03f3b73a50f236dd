"""The incremental path: a document that differs from the running one in its floating IPs
only, applied as map elements in one small ``nft`` transaction and addresses by netlink,
when the box is as the last complete apply left it (otherwise the full path)."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from astara.appliance.apply.announce import after_apply
from astara.appliance.apply.errors import ApplyError
from astara.appliance.body import AppliedBody
from astara.appliance.state import write_atomic
from astara.configdoc import Document, with_floating_ips

if TYPE_CHECKING:
    from astara.appliance.apply.appliance import Appliance

LOG = logging.getLogger(__name__)


def put_floating_ips(
    app: Appliance, floating_ips: Any, body: AppliedBody, started: float
) -> tuple[Document, list[str]] | None:
    """Apply the running document with ``floating_ips`` (the JSON of a floating-IP array)
    as its floating IPs; ``body``: the whole document's body with them.

    Only the floating IPs are validated (:func:`with_floating_ips`); when the box is as the
    last complete apply left it they are applied alone, else the document is applied as a
    whole. None if they are not valid: the caller parses the whole document, which reports
    every error with its path.
    """
    applied, current = app.applied_body, app.current
    assert applied is not None
    if current is None:
        return None
    doc: Document | None = current
    compared = started
    if floating_ips is not applied.floating_ips and floating_ips != applied.floating_ips:
        compared = time.monotonic()
        doc = with_floating_ips(current, floating_ips, applied.floating_ips)
    if doc is None:
        return None
    done = time.monotonic()
    changed = _apply(app, doc, body, floating_ips)
    if changed is None:  # the box is not as the last apply left it: the full path
        return doc, app.apply(doc, body.raw, floating_ips)
    app.timings = {"compare": compared - started, "validate": done - compared, **app.timings}
    return doc, changed


def box_as_left(app: Appliance) -> bool:
    """Is the box as the last complete apply left it: same NICs (no link event since), and
    every step's inputs (daemons' PIDs, the management record) as at its last success?"""
    plan, watch = app.plan_applied, app.link_watch
    return bool(
        app.memo
        and plan is not None
        and app.firewall.live is not None
        and watch is not None
        and not watch.changed()
        and all(app.memo.unchanged(step.name, step.wants(plan)) for step in app.steps)
    )


def _apply(app: Appliance, doc: Document, body: AppliedBody, floating_ips: Any) -> list[str] | None:
    """Apply ``doc``, which differs from the current document in its floating IPs only
    (``floating_ips``: their JSON).

    None if the box is not as the last apply left it (take the full path).
    """
    started = time.monotonic()
    app.timings = {}
    if not box_as_left(app):
        return None
    app.timings["box"] = time.monotonic() - started
    assert app.current is not None and app.plan_applied is not None
    old_doc, old_plan = app.current, app.plan_applied
    # what the old plan derived holds but the floating IPs' pairs (the same networks)
    plan = dataclasses.replace(old_plan, conf=doc.configuration,
                               memo={**old_plan.memo, "fips json": floating_ips})  # fmt: skip
    plan.memo.pop("fips", None)
    old_fips, new_fips = app.box.fips.of_plan(old_plan), app.box.fips.of_plan(plan)
    changed = []
    step = "firewall"
    try:  # the map elements first: a refused transaction changed nothing
        if app.firewall.change_floating_ips(plan):
            changed.append("firewall")
        step = "links"
        if app.links.change_floating_ips(plan, old_fips, new_fips):
            changed.insert(0, "links")
    except Exception as exc:
        LOG.error("step %s failed (%s): rolling back", step, exc)
        app.rollback(old_doc, [app.links, app.firewall])
        raise ApplyError(step, str(exc)) from exc
    for done in (app.firewall, app.links):
        app.memo.remember(done.name, done.wants(plan))
    app.timings["incremental"] = time.monotonic() - started - app.timings["box"]
    after = time.monotonic()
    after_apply(old_doc.configuration, plan, old_fips, new_fips)
    app.last_pairs = (doc.configuration, new_fips)
    app.timings["after"] = time.monotonic() - after
    if app.applied_body is None or body.raw != app.applied_body.raw:
        after = time.monotonic()
        write_atomic(app.state.path / "applied.json", body.raw, compare=False)
        app.timings["save"] = time.monotonic() - after
    app.set_current(doc)
    app.plan_applied, app.applied_body = plan, body
    LOG.info(
        "configuration applied in %.3fs (floating IPs only), changed: %s",
        time.monotonic() - started,
        ", ".join(changed) or "nothing",
    )
    return changed
