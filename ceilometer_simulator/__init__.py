"""A stand-in for OpenStack Ceilometer API v2 (Pike) and Keystone, for tests and benchmarks.

One process serves Ceilometer at the root and Keystone under ``/identity`` on the same port::

    with Simulator() as sim:
        sim.store.load(CloudSpec(samples=10_000))
        ...  # point keystoneauth1 at sim.auth_url, user admin / admin-secret, project admin
"""

from __future__ import annotations

from ceilometer_simulator.faults import FaultRule
from ceilometer_simulator.generator import CloudSpec, generate_samples, project_id, user_id
from ceilometer_simulator.keystone import Identities
from ceilometer_simulator.metadata import flatten_metadata
from ceilometer_simulator.server import RecordedRequest, Simulator
from ceilometer_simulator.store import Store
from ceilometer_simulator.tls import make_self_signed_cert

__all__ = [
    "CloudSpec",
    "FaultRule",
    "Identities",
    "RecordedRequest",
    "Simulator",
    "Store",
    "flatten_metadata",
    "generate_samples",
    "make_self_signed_cert",
    "project_id",
    "user_id",
]
