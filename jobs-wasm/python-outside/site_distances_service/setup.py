#!/usr/bin/env python3
"""Test fixture: the service's setup.py in tgnms' layout (our own): its package and its
tests beside each other, its dependencies and test suite declared here."""

from setuptools import find_packages, setup

ptr_params = {
    "entry_point_module": "site_distances/main",
    "test_suite": "tests.base",
    "test_suite_timeout": 120,
    "run_black": True,
}

setup(
    name="site_distances",
    version="2026.12.07",
    packages=find_packages(exclude=["tests"]),
    # geopy is pure Python (with geographiclib). Apache Thrift, which the generated types
    # import, is not declared, as tgnms' services do not: tglib's environment gives it.
    # aiohttp and alembic the sandbox meets.
    install_requires=["aiohttp", "alembic>=1.3.3,<2.0", "geopy==2.4.1"],
    extras_require={"ci": ["asynctest>=0.13.0,<1.0", "ptr"], "docs": ["aiohttp-swagger"]},
    test_suite=ptr_params["test_suite"],
)
