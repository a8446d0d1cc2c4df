"""The users axis sharded over 4 host devices gives the single-device result."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

from agenticrec.tools import evolve as ev

from .conftest import CFG, ROUND, U

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np
    from agenticrec.tools import evolve as ev
    from tests.dualagent.conftest import CFG, ROUND, U, synth_arrays

    assert jax.local_device_count() == 4, jax.devices()
    mesh = ev.users_mesh()
    start = np.load(sys.argv[1])
    problem = ev.make_problem(**synth_arrays())
    args = (problem, start["lists"], start["ne"], start["eps0"], start["seeds"])
    args = ev.shard(args, mesh)
    out, _, m = ev.evolve(*args, start=0, total=2 * ROUND, n_gens=ROUND, cfg=CFG,
                          mesh=mesh)
    assert len(out.lists.sharding.device_set) == 4
    np.savez(sys.argv[2], lists=np.asarray(out.lists), hv=np.asarray(m.hypervolume))
    """
)


def test_four_host_devices_give_the_single_device_result(tmp_path, synth):
    _, problem = synth
    seeds, ne = np.arange(U, dtype=np.uint32) + 7, np.full(U, 12)
    pop, eps0 = ev.init_population(problem, seeds, ne, CFG)
    one, _, m = ev.evolve(
        problem,
        pop.lists,
        ne,
        eps0,
        seeds,
        start=0,
        total=2 * ROUND,
        n_gens=ROUND,
        cfg=CFG,
    )
    start = tmp_path / "start.npz"
    np.savez(
        start, lists=np.asarray(pop.lists), ne=ne, eps0=np.asarray(eps0), seeds=seeds
    )
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
        JAX_PLATFORMS="cpu",
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    out = tmp_path / "sharded.npz"
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(start), str(out)],
        env=env,
        cwd=root,
        check=True,
        timeout=300,
    )
    got = np.load(out)
    np.testing.assert_array_equal(got["lists"], np.asarray(one.lists))
    np.testing.assert_allclose(got["hv"], np.asarray(m.hypervolume), rtol=1e-6)
