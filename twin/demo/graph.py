"""Small graph helpers on edge arrays (node indices ``a`` → ``b``): components, Dijkstra."""

from __future__ import annotations

import heapq

import numpy as np


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` nodes (undirected), by union–find."""
    parent = np.arange(n)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for u, v in zip(a.tolist(), b.tolist(), strict=True):
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    return np.array([find(i) for i in range(n)], dtype=np.int64)


def adjacency(n: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR adjacency of the undirected graph: (offsets, neighbour, edge index)."""
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    eid = np.concatenate([np.arange(len(a)), np.arange(len(a))])
    order = np.argsort(src, kind="stable")
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.add.at(offsets, src + 1, 1)
    return np.cumsum(offsets), dst[order], eid[order]


def dijkstra(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray, sources: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Multi-source shortest paths (undirected, weights ``w``).

    Returns
    -------
    dist, via
        Distance of each node to its nearest source (inf when unreached) and the edge
        index leading towards that source (-1 at sources and unreached nodes).
    """
    offsets, nbr, eid = adjacency(n, a, b)
    dist = np.full(n, np.inf)
    via = np.full(n, -1, dtype=np.int64)
    heap: list[tuple[float, int]] = []
    for s in sources.tolist():
        dist[s] = 0.0
        heap.append((0.0, s))
    heapq.heapify(heap)
    off, nb, ed, ww = offsets.tolist(), nbr.tolist(), eid.tolist(), w.tolist()
    dl = dist.tolist()
    vl = via.tolist()
    while heap:
        d, u = heapq.heappop(heap)
        if d > dl[u]:
            continue
        for k in range(off[u], off[u + 1]):
            v, e = nb[k], ed[k]
            nd = d + ww[e]
            if nd < dl[v]:
                dl[v] = nd
                vl[v] = e
                heapq.heappush(heap, (nd, v))
    return np.array(dl), np.array(vl, dtype=np.int64)
