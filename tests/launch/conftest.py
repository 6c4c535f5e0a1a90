"""Fixtures of the launch tests: a real local Ray instance shared by a test module."""

from __future__ import annotations

import pytest
import ray


@pytest.fixture(scope="module")
def local_ray(request):
    """``ray.init`` on this machine (2 CPUs) for the module's tests, shut down after them.

    Workers cannot import a test module (tests/ is not a package): the module's own
    functions (scripted trainables, fake stages) are shipped to them by value.
    """
    ray.cloudpickle.register_pickle_by_value(request.module)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
