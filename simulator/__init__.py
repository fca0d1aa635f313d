"""A faithful simulator of the Illuminate Education API over a deterministic synthetic district.

    from illuminate_sync.simulator import Simulator, SimulatorConfig
    with Simulator(SimulatorConfig(students=300, seed=1, today=datetime.date(2026, 11, 27))) as sim:
        sim.base_url, sim.env(), sim.query("Students", {}), sim.inject_fault("Students", "503", count=2)
        sim.mutate("add_students", count=3); sim.advance_today(1)

Modules: `calendar` (academic years, sessions, instructional days), `district` (generation, lazy attendance),
`routes` (the simulator's own reading of the API reference: every GET endpoint's path, shape, limits, parameters and
documented defaults; nothing is imported from `sources/`), `endpoints` (what each GET endpoint returns, rendered as
the wire sends it), `mutations` (control-API changes and
POST effects), `oauth` (OAuth1 verification, OAuth2 tokens), `faults` (injected failures), `capacity` (workers with
a fair queue and a token-bucket rate limit, off by default), `server` (HTTP server,
routing, control API, `serve_forever` for the CLI), `testing` (helpers for HTTP tests).

Settings worth knowing: the default `limit` is 1000 (also for Students2, whose maximum is 30000); a limit above the
maximum is clamped; a paged endpoint without `page` answers page 1 (the documentation's example code sends none);
endpoints documented as "defaults to today (or nearest in session date)" answer for the nearest in-session date to
`today` when no date parameter is given (see `endpoints.Api.window`); on the assessment aggregates `date`,
`start_date` and `end_date` select the students by enrollment and `date_taken_start`/`date_taken_end` the results.
"""

from illuminate_sync.simulator.district import District
from illuminate_sync.simulator.server import Simulator, SimulatorConfig, serve_forever

__all__ = ["District", "Simulator", "SimulatorConfig", "serve_forever"]
