"""Data parallelism: each batch split into a fixed number of shards, summed in a fixed order.

A training step with ``shards=S`` (:func:`fnn.train_step`, :func:`fnn.fit`, ``fnn train
--shards S``) splits its batch of ``B`` rows into ``S`` contiguous shards
(:func:`shard_bounds`), computes each shard's loss and gradient on its own rows, and
combines them as ``sum_s (n_s / B) * v_s`` (``n_s`` the shard's rows) over a fixed binary
tree of shard numbers (:func:`reduce_shards`): node ``[lo, hi)`` is the sum of
``[lo, mid)`` and ``[mid, hi)`` with ``mid = (lo + hi) // 2``, the left one first. With
``N`` processes (``N`` dividing ``S``), process ``r`` owns shards ``r * S/N`` to ``(r + 1)
* S/N - 1``. Each process first adds up its own block of shards. When ``N`` is a
power of two, the levels above the blocks are partner swaps: at level ``k`` process
``r`` and ``r ^ 2**k`` exchange their nodes' values and both add ``left + right``, so
every process ends with the root (:func:`reduce_shards`). Otherwise a node is added up
by the process owning its first shard, which receives the right half from its owner
when that is another process (point-to-point messages), and the root, on process 0, is
broadcast to all. The additions are the same whichever process does them, so for a
given ``S`` the bits do not depend on ``N``: one process with ``shards=4`` gives the
bits of four.

When the number of processes is a power of two and the optimizer is elementwise
(:attr:`fnn.optim.Optimizer.elementwise`: Adam, SGD, RMSprop, Adagrad; no penalty),
:func:`fnn.train_step` shares out the update as well: the partner swaps become recursive
halving (:func:`reduce_scatter_shards`: at each level a process sends its partner only
the half the partner keeps, and both add that half in the same order), so each process
ends with its slice of the summed gradient (:func:`span`); it updates that slice of the
params and moments and :func:`gather_spans` gives every process the whole of them. Each
entry is added and updated by the same operations as before, so the bits are those of
one process; every process still ends each step with the same, whole state. Otherwise
every process applies the same update to the whole summed gradient.

Processes talk through a :class:`Communicator`: ``mpi4py.MPI.COMM_WORLD`` (the optional
extra ``fnn[mpi]``), or nothing for one process. What travels: the shards' weighted
gradients, losses, accuracy counts and float model state, and, when the update is shared
out, each process's slice of the new params and optimizer moments. Every process reads
the data itself and keeps the same key and shuffles.

Within a process, ``threads=T`` (:func:`fnn.train_step`, :func:`fnn.fit`, ``fnn train
--threads T``) computes up to ``T`` of its shards at once on threads; their results are
summed in the same tree, so the bits depend neither on ``N`` nor on ``T``.

Every process is given its data and options on its own, so two may differ: the exchanges
then assume sizes that are not there (``MPI_ERR_TRUNCATE``, a crash) or train on different
data without a word. Before training, every process calls :func:`agree` with what must be
equal on all (the configuration, the data's SHA-256, shapes and dtypes, the model's
parameter shapes): if any process's facts differ from process 0's, every process raises
the same :class:`DisagreementError`, one line naming the first differing key, the
processes and both values. And every exchange waits for another process, which may be
stopped or hung: through :func:`with_timeout` (``comm`` wrapped once, before training),
each exchange is made of nonblocking calls tested until done, and a process that waits
longer than the timeout (:data:`DEFAULT_TIMEOUT` suggests 300 s) raises
:class:`TimeoutError`; inside :func:`abort_on_error` it reports that and ends every
process, instead of waiting forever. The messages, and so the bits, are the same.

>>> comm = with_timeout(world(), DEFAULT_TIMEOUT)  # None: one process, not under mpirun
>>> with abort_on_error(comm):
...     agree(comm, {"seed": 0, "data": {"sha256": "ab12"}}, what="the run's setup")
...     # fnn.fit(..., shards=2, comm=comm)

The package holds one concept per module: processes and launching (``_comm``), the
fixed-order sums (``_reduce``), the plan of shards over processes and threads
(``_plan``), the shard threads (``_threads``), the sharded step with its shared-out
update (``_step``), which :func:`fnn.train_step` runs, the check that the processes agree
(``_agree``) and the timeout on their waits (``_timeout``).
"""

from ._agree import DisagreementError as DisagreementError
from ._agree import agree as agree
from ._comm import Communicator as Communicator
from ._comm import NonblockingCommunicator as NonblockingCommunicator
from ._comm import Request as Request
from ._comm import abort_on_error as abort_on_error
from ._comm import launched_processes as launched_processes
from ._comm import rank_and_size as rank_and_size
from ._comm import world as world
from ._plan import check_plan as check_plan
from ._plan import one_blas_thread as one_blas_thread
from ._plan import shards_at_once as shards_at_once
from ._plan import thread_plan as thread_plan
from ._reduce import gather_spans as gather_spans
from ._reduce import owned_shards as owned_shards
from ._reduce import reduce_scatter_shards as reduce_scatter_shards
from ._reduce import reduce_shards as reduce_shards
from ._reduce import scatters as scatters
from ._reduce import shard_bounds as shard_bounds
from ._reduce import span as span
from ._step import BatchFn as BatchFn
from ._step import BatchResult as BatchResult
from ._step import sharded_batch as sharded_batch
from ._step import sharded_update as sharded_update
from ._threads import ShardThreads as ShardThreads
from ._timeout import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._timeout import with_timeout as with_timeout

__all__ = [
    "DEFAULT_TIMEOUT",
    "BatchFn",
    "BatchResult",
    "Communicator",
    "DisagreementError",
    "NonblockingCommunicator",
    "Request",
    "ShardThreads",
    "abort_on_error",
    "agree",
    "check_plan",
    "gather_spans",
    "launched_processes",
    "one_blas_thread",
    "owned_shards",
    "rank_and_size",
    "reduce_scatter_shards",
    "reduce_shards",
    "scatters",
    "shard_bounds",
    "sharded_batch",
    "sharded_update",
    "shards_at_once",
    "span",
    "thread_plan",
    "with_timeout",
    "world",
]
