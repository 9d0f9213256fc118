#!/usr/bin/env python3
"""The suite setup.py names: every test case of the service."""

import unittest

from .distances_tests import DistancesTests
from .thrift_tests import ThriftTests

__all__ = ["DistancesTests", "ThriftTests"]

if __name__ == "__main__":
    unittest.main()
