"""Memory bounds: row chunks within ``working_memory``, and the particles'
working set against the memory of the machine.

Every pass over the samples that forms an (n_samples, n_particles) array
runs over chunks of rows sized by scikit-learn's ``working_memory``
(``sklearn.set_config``, in MiB): :func:`row_chunks`. Before a fit allocates
its particles, :func:`check_particle_memory` compares the least memory the
fit will hold whatever ``n_samples`` (the particles, their gradient and a
trial copy, the L-BFGS history, and one row of activations) to the memory
the machine has available, so that an impossible ``n_particles`` fails at
once with a ValueError instead of allocating until the machine runs out.
"""

import os

from sklearn import get_config

__all__ = ["available_memory", "check_particle_memory", "row_chunks"]


def row_chunks(n_rows, row_bytes):
    """Slices of rows such that ``rows * row_bytes`` fits in
    ``working_memory`` (at least one row per chunk).

    Parameters
    ----------
    n_rows : int
    row_bytes : int
        Bytes held per row of a chunk while it is processed.

    Returns
    -------
    list of slice
    """
    budget = get_config()["working_memory"] * 2**20  # MiB to bytes
    rows = max(1, min(n_rows, int(budget // max(row_bytes, 1))))
    return [slice(i, min(i + rows, n_rows)) for i in range(0, n_rows, rows)]


def available_memory():
    """Bytes the process can still allocate, or None when unknown.

    The least of: ``MemAvailable + SwapFree`` from ``/proc/meminfo`` (the
    memory the kernel can give without swapping out, plus free swap; else
    the physical memory ``SC_PHYS_PAGES * SC_PAGE_SIZE``); the room left
    under the process's control group limit (containers: ``limit - usage``
    plus the reclaimable inactive file cache); and the room left under the
    address-space limit ``RLIMIT_AS`` (``ulimit -v``).
    """
    bounds = [_system_available(), _cgroup_available(), _rlimit_available()]
    bounds = [b for b in bounds if b is not None]
    return max(min(bounds), 0) if bounds else None


def _read_fields(path, unit=1):
    """``{name: int}`` of the "name value" lines of a /proc or /sys file."""
    fields = {}
    with open(path) as f:
        for line in f:
            parts = line.replace(":", " ").split()
            if len(parts) >= 2 and parts[1].isdigit():
                fields[parts[0]] = int(parts[1]) * unit
    return fields


def _read_int(path):
    with open(path) as f:
        text = f.read().strip()
    return None if text == "max" else int(text)


def _system_available():
    try:
        info = _read_fields("/proc/meminfo", unit=1024)
        return info["MemAvailable"] + info.get("SwapFree", 0)
    except (OSError, KeyError, ValueError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


#: (limit, usage, stat, reclaimable field) of cgroup v2 and v1
_CGROUPS = [
    ("memory.max", "memory.current", "memory.stat", "inactive_file"),
    (
        "memory/memory.limit_in_bytes",
        "memory/memory.usage_in_bytes",
        "memory/memory.stat",
        "total_inactive_file",
    ),
]


def _cgroup_available():
    for limit_file, usage_file, stat_file, field in _CGROUPS:
        try:
            limit = _read_int(f"/sys/fs/cgroup/{limit_file}")
            if limit is None or limit >= 2**60:  # no limit
                return None
            usage = _read_int(f"/sys/fs/cgroup/{usage_file}")
            try:
                usage -= _read_fields(f"/sys/fs/cgroup/{stat_file}").get(field, 0)
            except OSError:
                pass
            return limit - usage
        except (OSError, ValueError, TypeError):
            continue
    return None


def _rlimit_available():
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        return soft - _read_fields("/proc/self/status", unit=1024)["VmSize"]
    except (ImportError, OSError, KeyError, ValueError):
        return None


#: copies of the particles a solver holds at least: the particles, their
#: gradient and the trial step (a copy, or the L-BFGS iterate); Adam adds
#: its two moments
_PARTICLE_COPIES = {"adam": 5}


def particle_bytes(n_particles, n_params, n_outputs, itemsize, solver, n_corrections):
    """``(particles, working_set)``: the bytes of the particles, and the least
    bytes a fit holds besides the data.

    ``N = m (n_params + n_outputs)`` values per copy of the particles;
    every solver holds ``3 N`` values of ``itemsize`` bytes (particles,
    gradient, trial step; Adam ``5 N`` with its moments) and one row of
    activations and sensitivities (``2 m`` values); L-BFGS adds scipy's
    L-BFGS-B workspace of ``(2 n_corrections + 5) N`` float64 values (its
    gradient pairs and work vectors; ``n_corrections`` defaults to that of
    :class:`~sklearn_meanfield._lbfgs.LBFGS`).
    """
    values = n_particles * (n_params + n_outputs)
    copies = _PARTICLE_COPIES.get(solver, 3)
    need = copies * values * itemsize + 2 * n_particles * itemsize
    if solver == "lbfgs":
        need += (2 * n_corrections + 5) * values * 8
    return values * itemsize, need


def check_particle_memory(
    n_particles, n_params, n_outputs, itemsize, solver, n_corrections=20
):
    """Raise a ValueError when the fit's least working set cannot fit in the
    memory available (:func:`available_memory`), before anything is
    allocated.

    Raises
    ------
    ValueError
        Naming ``n_particles``, the bytes needed and the bytes available.
    """
    particles, need = particle_bytes(
        n_particles, n_params, n_outputs, itemsize, solver, n_corrections
    )
    available = available_memory()
    if available is not None and need > available:
        raise ValueError(
            f"n_particles={n_particles} needs at least {_gib(need)} of memory "
            f"with solver={solver!r} ({_gib(particles)} per copy of the "
            f"{n_particles} particles of {n_params} position values and "
            f"{n_outputs} weights), more than the {_gib(available)} available. "
            + (
                "Use fewer particles, or solver='adam' (L-BFGS keeps "
                f"{2 * n_corrections + 5} more float64 copies)."
                if solver == "lbfgs"
                else "Use fewer particles."
            )
        )


def _gib(n_bytes):
    return f"{n_bytes / 2**30:.3g} GiB"
