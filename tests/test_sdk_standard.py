"""singer-sdk's standard tap tests (`get_tap_test_class`) against a simulated cloud.

The SDK builds its test class when this module is imported, with a config that must already
name a running server: the simulator starts here, holds a few hundred generated samples of
four meters, and stops when the test session ends.
"""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from ceilometer_simulator import CloudSpec, Simulator
from tap_ceilometer.tap import TapCeilometer
from tests.support.tap import tap_config

_simulator = Simulator().__enter__()
atexit.register(_simulator.__exit__, None, None, None)
_simulator.store.load(
    CloudSpec(seed=3, samples=600, meters=("cpu_util", "disk.read.bytes", "vcpus", "image.size"))
)

TestTapCeilometer = get_tap_test_class(
    TapCeilometer,
    config=tap_config(_simulator, page_size=50),
    suite_config=SuiteConfig(max_records_limit=100),
)
