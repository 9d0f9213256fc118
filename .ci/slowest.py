#!/usr/bin/env python3
"""Print the slowest tests of the last `cargo nextest run` (from its JUnit report)."""
import sys
import xml.etree.ElementTree as ET

path = sys.argv[1] if len(sys.argv) > 1 else "target/nextest/default/junit.xml"
count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as e:
    sys.exit(f"slowest tests: cannot read {path}: {e}")
cases = sorted(
    ((float(c.get("time", 0)), c.get("name", "?")) for c in root.iter("testcase")),
    reverse=True,
)
total = sum(t for t, _ in cases)
print(f"The {min(count, len(cases))} slowest of {len(cases)} tests ({total:.0f} s of test time in all):")
for t, name in cases[:count]:
    print(f"  {t:7.2f} s  {name}")
