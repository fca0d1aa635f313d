"""A faithful simulator of the Illuminate Education API over a deterministic synthetic district.

    from simulator import Simulator, SimulatorConfig
    with Simulator(SimulatorConfig(students=300, seed=1)) as sim:
        ...  # sim.base_url, sim.env(), sim.query("Students", {...}), sim.inject_fault(...), sim.mutate(...)
"""

from simulator.district import District
from simulator.server import Simulator, SimulatorConfig, serve_forever

__all__ = ["District", "Simulator", "SimulatorConfig", "serve_forever"]
