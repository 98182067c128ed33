"""The fields of StatefulSet, DaemonSet, Job and CronJob beyond replicas, selector and template.

Part of spec/, called by workloads.py's controller decoder (which reads what every pod
controller has). Here: which fields each of these kinds knows and ignores, a CronJob's
jobTemplate (unwrapped so that its Job spec is decoded as a Job's), and the kind-specific
values, checked as the API server's validation does (podManagementPolicy's two values, a
Job's restartPolicy OnFailure or Never, serviceName a DNS label...). plan/controllers.py
turns the decoded Workload into pods.
"""

from __future__ import annotations

from .decode import Doc
from .model import ControllerFields
from .names import dns1123_label_error

# kind -> (apiVersion, fields decoded, real fields ignored: storage, update strategy, history...)
KINDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "StatefulSet": (
        "apps/v1",
        ("replicas", "selector", "template", "serviceName", "podManagementPolicy"),
        (
            "updateStrategy",
            "revisionHistoryLimit",
            "minReadySeconds",
            "volumeClaimTemplates",
            "persistentVolumeClaimRetentionPolicy",
            "ordinals",
        ),
    ),
    "DaemonSet": ("apps/v1", ("selector", "template"), ("updateStrategy", "minReadySeconds", "revisionHistoryLimit")),
    "Job": (
        "batch/v1",
        ("template", "selector", "parallelism", "completions", "activeDeadlineSeconds"),
        (
            "backoffLimit",
            "backoffLimitPerIndex",
            "maxFailedIndexes",
            "completionMode",
            "ttlSecondsAfterFinished",
            "suspend",
            "manualSelector",
            "podFailurePolicy",
            "podReplacementPolicy",
            "successPolicy",
            "managedBy",
        ),
    ),
}
# A CronJob's own fields; its jobTemplate.spec is a Job's spec (KINDS["Job"]).
CRONJOB = (
    ("schedule", "jobTemplate", "suspend"),
    (
        "timeZone",
        "startingDeadlineSeconds",
        "concurrencyPolicy",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ),
)
# Jobs run to completion: the API server refuses restartPolicy Always (the pod default) in them.
JOB_RESTART_POLICIES = ("OnFailure", "Never")
MAX_PARALLELISM = 10_000  # the same bound as replicas (spec/workloads.MAX_REPLICAS)


def unwrap_cronjob(spec: Doc) -> tuple[Doc | None, str, bool]:
    """A CronJob's spec: (its jobTemplate.spec, the schedule, suspend)."""
    spec.check_keys(*CRONJOB)
    schedule = spec.str("schedule", required=True) or ""
    if schedule and len(schedule.split()) not in (5, 6) and not schedule.startswith("@"):
        spec.error(f"unparseable schedule {schedule[:40]!r}: expected 5 fields (or @hourly, @daily...)", "schedule")
    suspend = bool(spec.bool("suspend", default=False))
    job = spec.mapping("jobTemplate", required=True)
    if job is None:
        return None, schedule, suspend
    job.check_keys(("spec",), ("metadata",))
    return job.mapping("spec", required=True), schedule, suspend


def decode_fields(kind: str, spec: Doc, template: Doc | None) -> tuple[ControllerFields, int]:
    """(the kind's own fields, how many pods run at once: replicas, or a Job's min(parallelism,
    completions); a DaemonSet's follow the nodes, so 0)."""
    if kind == "StatefulSet":
        service = spec.str("serviceName", default="") or ""
        err = dns1123_label_error(service) if service else None
        if err:
            spec.error(err, "serviceName")
        policy = spec.str("podManagementPolicy", default="OrderedReady") or "OrderedReady"
        if policy not in ("OrderedReady", "Parallel"):
            spec.error(f"must be OrderedReady or Parallel, got {policy[:40]!r}", "podManagementPolicy")
        replicas = spec.int("replicas", default=1, minimum=0, maximum=MAX_PARALLELISM)
        return ControllerFields(service_name=service, pod_management=policy), replicas if replicas is not None else 1
    if kind == "DaemonSet":
        return ControllerFields(), 0
    # Job (a CronJob's jobTemplate.spec too)
    parallelism = spec.int("parallelism", default=1, minimum=0, maximum=MAX_PARALLELISM)
    completions = spec.int("completions", default=None, minimum=0, maximum=MAX_PARALLELISM)
    deadline = spec.int("activeDeadlineSeconds", default=None, minimum=1)
    # the API server's defaulting: neither given means one pod to complete once; parallelism alone
    # is a work queue (no completion count)
    if completions is None and not spec.field("parallelism").present():
        completions = 1
    parallelism = 1 if parallelism is None else parallelism
    pspec = template.field("spec") if template is not None else None
    if pspec is not None and isinstance(pspec.value, dict):
        restart = pspec.value.get("restartPolicy", "Always")
        if restart not in JOB_RESTART_POLICIES:
            pspec.error(
                f"a Job's pods must have restartPolicy OnFailure or Never, got {str(restart)[:40]!r}", "restartPolicy"
            )
    running = parallelism if completions is None else min(parallelism, completions)
    return ControllerFields(completions=completions, parallelism=parallelism, active_deadline=deadline), running


def job_labels(job: str) -> dict[str, str]:
    """The labels the API server gives a Job's pod template (and selects them by); the
    controller-uid ones are left out: the testbed's objects have no server-assigned UIDs."""
    return {"batch.kubernetes.io/job-name": job, "job-name": job}
