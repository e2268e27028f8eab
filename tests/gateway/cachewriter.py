"""Child process of the cache crash tests: puts the given files into a gateway cache in a loop.

``python -m tests.gateway.cachewriter DIR MAX_BYTES FILE...``: opens an
:class:`~xdsi.store.gateway.cache.InstanceCache` in ``DIR`` and puts the files round and round
(evicting, as ``MAX_BYTES`` holds only some of them), printing one line per put, until killed.
"""

from __future__ import annotations

import io
import sys
from itertools import cycle
from pathlib import Path

from xdsi.store.gateway.cache import InstanceCache


def main(argv: list[str]) -> None:
    directory, max_bytes, *names = argv
    cache = InstanceCache(Path(directory), int(max_bytes), pin_seconds=60)
    contents = [Path(name).read_bytes() for name in names]
    for n, data in enumerate(cycle(contents), 1):
        cache.put(io.BytesIO(data))
        print(n, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
