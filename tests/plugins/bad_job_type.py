"""Throwaway plugin: a job type without a ``<plugin>.`` namespace."""

from ff_plugin_sdk import JobType, hookimpl


@hookimpl
def faceforge_job_types(kernel):
    return [JobType(name="greet")]
