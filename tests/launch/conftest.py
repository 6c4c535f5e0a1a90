"""Fixtures of the launch tests: a real local Ray instance shared by a test module, and a
real S3 protocol server (moto) with one bucket."""

from __future__ import annotations

import logging
import uuid

import pytest
import ray
from s3server import BUCKET, free_port


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


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server with one bucket; AWS test credentials in the environment.

    The environment is set before any Ray starts here, so Ray's workers (which upload
    checkpoints) inherit the same credentials, as nodes would from where `ray start` ran.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            endpoint = f"127.0.0.1:{port}"
            boto3.client("s3", endpoint_url=f"http://{endpoint}").create_bucket(Bucket=BUCKET)
            yield endpoint
        finally:
            server.stop()


@pytest.fixture
def s3_root(s3_endpoint) -> str:
    """A fresh prefix in the bucket, as a ``--storage`` URI with query parameters."""
    prefix = f"ray-{uuid.uuid4().hex[:8]}"
    return f"s3://{BUCKET}/{prefix}?endpoint_override={s3_endpoint}&scheme=http"
