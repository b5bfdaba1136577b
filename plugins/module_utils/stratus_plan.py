# Copyright: Stratus developers
# Apache License 2.0 (see the collection's galaxy.yml)
"""The one place where check mode and a real run part: ``Difference``, ``Plan``, ``Convergence``.

Every convergence (one per resource, in ``stratus_<resource>.py``) implements
``plan()``: it reads what exists, works out what is wanted, records the
difference (``plan.diff``: before/after per key, which makes ``changed`` and
the ``diff`` output) and queues the writes that make it so (``plan.then``).
``plan()`` never writes. ``Convergence.run()`` then returns, in check mode,
the result of the plan as it is; in a real run, the result of the plan
applied. So check mode and a real run come from the same difference and
cannot disagree.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations


class Difference:
    """Differences between what is (before) and what is wanted (after), per key."""

    def __init__(self):
        self.before = {}
        self.after = {}

    def add(self, key, before, after):
        """Record ``key`` if ``before`` and ``after`` differ; True when they do."""
        if before == after:
            return False
        self.before[key] = before
        self.after[key] = after
        return True

    def create(self, after):
        """Everything is new: nothing before."""
        self.before = {}
        self.after = dict(after)

    def delete(self, before):
        """Everything goes: nothing after."""
        self.before = dict(before)
        self.after = {}

    @property
    def changed(self):
        return bool(self.before or self.after)

    def __contains__(self, key):
        return key in self.before or key in self.after

    @property
    def diff(self):
        return {"before": self.before, "after": self.after}


class Plan:
    """What one run does: the difference, and the writes that make it so.

    ``current`` is the resource as it is now (None when it does not exist yet
    or goes). ``then(step)`` queues a write: ``apply()`` runs the steps in
    order, each taking the resource the previous one returned (the first
    takes ``current``) and returning it, changed or read again. ``finish``,
    when given, reads what the result shows from the resource (after the
    steps in a real run, from ``current`` in check mode); it never writes.
    """

    def __init__(self, diff, current=None, finish=None):
        self.diff = diff
        self.current = current
        self.finish = finish
        self.steps = []

    def then(self, step):
        """Queue ``step(resource) -> resource``; returns it (usable as a decorator)."""
        self.steps.append(step)
        return step

    def preview(self):
        """What check mode shows: nothing is written."""
        return self.finish(self.current) if self.finish else self.current

    def apply(self):
        """What a real run shows, once the steps have run."""
        resource = self.current
        for step in self.steps:
            resource = step(resource)
        return self.finish(resource) if self.finish else resource


class Convergence:
    """Base of the convergence of one resource kind (see the module docstring).

    A subclass implements ``plan()`` (reads only; returns a ``Plan`` over
    ``self.diff``), ``result(resource)`` (the module's result dict) and the
    class method ``connect(client, params, check_mode)`` that builds it over
    the real APIs (tests build it over fakes).
    """

    def __init__(self, params, check_mode):
        self.params = params
        self.check_mode = check_mode
        self.diff = Difference()
        self.warnings = []

    @classmethod
    def connect(cls, client, params, check_mode):
        raise NotImplementedError

    def plan(self):
        raise NotImplementedError

    def result(self, resource):
        raise NotImplementedError

    def new_plan(self, current=None, finish=None):
        return Plan(self.diff, current, finish)

    def run(self):
        """Plan, then apply unless in check mode; the result either way."""
        plan = self.plan()
        resource = plan.preview() if self.check_mode else plan.apply()
        return self.result(resource)
