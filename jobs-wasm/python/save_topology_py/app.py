"""The seed's topology fetcher in Python: asks every network's controller for its topology
and saves them all in the `topology` table with the run's start time."""

from tgrun import Error, api_service, job, log, sql

CREATE = """CREATE TABLE IF NOT EXISTS topology (
    id INT AUTO_INCREMENT PRIMARY KEY,
    network_name VARCHAR(100) NOT NULL,
    topology JSON NOT NULL,
    last_updated DATETIME(3) NOT NULL)"""


@job
def save_topology(start_time_ms: int) -> None:
    results = api_service.request_all("getTopology", timeout=1, return_exceptions=True)
    last_updated = sql.datetime_ms(start_time_ms)
    values = [
        (network_name, topology, last_updated)
        for network_name, topology in results.items()
        if not isinstance(topology, Error)
    ]
    failed = [name for name, topology in results.items() if isinstance(topology, Error)]
    for name in failed:
        log.warn(f"no topology from network '{name}': {results[name]}")

    if values:
        placeholders = ", ".join(["(?, ?, ?)"] * len(values))
        sql.execute(CREATE)
        sql.execute(
            f"INSERT INTO topology (network_name, topology, last_updated) VALUES {placeholders}",
            [v for row in values for v in row],
        )

    if failed:
        raise Error(f"saved the others, but no topology from: {', '.join(failed)}")
