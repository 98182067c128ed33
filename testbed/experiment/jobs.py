"""Jobs run and complete; CronJobs are triggered (pure, part of experiment/).

How long an emulated Job runs (its pods are real network namespaces, but run no program that
could finish): a Job runs from when it is created — the cluster's build, an `apply` action, or
a CronJob's trigger — to the end of that experiment step, probes and captures included; then
its pods have succeeded: the Job is Complete (completions reached), its pods are gone from the
network as a finished pod's sandbox is, and later steps see no pod of it. In the interactive
shell (no steps) a Job runs until it is deleted. A CronJob creates nothing on its schedule
(the emulation has no clock worth waiting for): the `trigger` action (or the shell's
`kubectl create job NAME --from=cronjob/CRON`) creates its Job at once, as kubectl does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import Problem, SpecError
from ..plan.build import replan
from ..plan.model import Plan
from ..spec.controllers import job_labels
from ..spec.model import ClusterSpec, ControllerFields, Manifests, ObjectRef, Workload
from ..spec.names import dns1123_subdomain_error
from ..spec.selectors import LabelSelector


@dataclass(frozen=True)
class Trigger:
    """`kubectl create job JOB --from=cronjob/CRONJOB`: the CronJob's Job, now."""

    cronjob: str
    namespace: str = "default"
    job: str = ""  # "" = <cronjob>-manual


def job_name(action: Trigger) -> str:
    return action.job or f"{action.cronjob}-manual"


def trigger(action: Trigger, manifests: Manifests, source: str = "experiment") -> Manifests:
    """The manifests with the CronJob's Job added (its pods then start with the next replan)."""
    cron = next(
        (
            w
            for w in manifests.workloads
            if (w.ref.kind, w.ref.namespace, w.ref.name) == ("CronJob", action.namespace, action.cronjob)
        ),
        None,
    )
    if cron is None:
        raise SpecError([Problem(source, "trigger.cronjob", f"no CronJob {action.namespace}/{action.cronjob}")])
    name = job_name(action)
    err = dns1123_subdomain_error(name)
    if err:
        raise SpecError([Problem(source, "trigger.job", err)])
    if any((w.ref.kind, w.ref.namespace, w.ref.name) == ("Job", action.namespace, name) for w in manifests.workloads):
        raise SpecError([Problem(source, "trigger.job", f'jobs.batch "{name}" already exists')])
    labels = job_labels(name)
    fields = dataclasses.replace(
        cron.controller or ControllerFields(), schedule="", suspend=False, owner=f"CronJob/{cron.ref.name}"
    )
    template = dataclasses.replace(cron.template, labels={**cron.template.labels, **labels})
    selector = cron.selector if not cron.selector.is_empty() else LabelSelector.of(labels)
    job = Workload(ObjectRef(source, "Job", action.namespace, name), cron.replicas, selector, template, fields)
    return dataclasses.replace(manifests, workloads=manifests.workloads + (job,))


def running(manifests: Manifests) -> list[Workload]:
    """The Jobs whose pods run now."""
    return [
        w
        for w in manifests.workloads
        if w.ref.kind == "Job" and not (w.controller is not None and w.controller.complete)
    ]


def finish(cluster: ClusterSpec, manifests: Manifests, plan: Plan) -> tuple[Manifests, Plan, str] | None:
    """The end of a step: every running Job completes. None when no Job ran."""
    jobs = running(manifests)
    if not jobs:
        return None
    done = set(map(id, jobs))
    workloads = tuple(
        dataclasses.replace(w, controller=dataclasses.replace(w.controller or ControllerFields(), complete=True))
        if id(w) in done
        else w
        for w in manifests.workloads
    )
    manifests = dataclasses.replace(manifests, workloads=workloads)
    what = "jobs complete: " + ", ".join(f"{w.ref.namespace}/{w.ref.name}" for w in jobs)
    return manifests, replan(cluster, manifests, plan.seed, prev=plan), what


def completions(w: Workload) -> str:
    """kubectl get jobs' COMPLETIONS column: succeeded/wanted."""
    fields = w.controller or ControllerFields()
    wanted = fields.completions if fields.completions is not None else 1
    return f"{wanted if fields.complete else 0}/{wanted}"
